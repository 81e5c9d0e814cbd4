//! Identity and auth, as a client sees them.

mod common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestServer, code, wait_until};
use serde_json::{Value, json};

fn register_input(email: &str, handle: &str) -> Value {
    json!({ "input": { "email": email, "password": "correct horse battery", "handle": handle, "displayName": "Ada L." } })
}

/// Registers Ada as "Ada_L" with "Ada@Example.com"; returns the `register` payload.
async fn register_ada(server: &TestServer) -> Value {
    server
        .ok(None, "Register", register_input("Ada@Example.com", "Ada_L"))
        .await["register"]
        .clone()
}

/// Logs in with `email` and the password every test member has.
async fn login(server: &TestServer, email: &str) -> Value {
    server
        .op(
            None,
            "Login",
            json!({ "email": email, "password": "correct horse battery" }),
        )
        .await
}

async fn refresh(server: &TestServer, token: &str) -> Value {
    server
        .op(None, "RefreshSession", json!({ "refreshToken": token }))
        .await
}

/// The refresh token a successful `RefreshSession` returns.
fn rotated(response: &Value) -> String {
    response["data"]["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap_or_else(|| panic!("a new refresh token: {response:#}"))
        .to_owned()
}

async fn registering_stores_the_handle_lower_case_and_opens_a_session(server: TestServer) {
    let session = register_ada(&server).await;
    assert_eq!(
        session["user"]["handle"], "ada_l",
        "handles are stored lower-case"
    );
    assert_eq!(
        session["user"]["email"], "ada@example.com",
        "the user sees their own e-mail"
    );
    assert_eq!(session["user"]["role"], "MEMBER");
    assert!(session["accessTokenExpiresAt"].as_str().unwrap().len() >= 20);
}

async fn emails_and_handles_are_unique_in_any_case(server: TestServer) {
    register_ada(&server).await;
    let again = server
        .op(
            None,
            "Register",
            register_input("ADA@example.com", "someone_else"),
        )
        .await;
    assert_eq!(code(&again), "CONFLICT");
    let again = server
        .op(
            None,
            "Register",
            register_input("other@example.com", "ADA_L"),
        )
        .await;
    assert_eq!(code(&again), "CONFLICT");
}

async fn me_is_the_token_holder_or_no_one(server: TestServer) {
    let session = register_ada(&server).await;
    let access = session["accessToken"].as_str().unwrap();
    let me = server.ok(Some(access), "Me", json!({})).await;
    assert_eq!(me["me"]["handle"], "ada_l");
    assert!(me["me"]["createdAt"].is_string());
    assert_eq!(
        server.ok(None, "Me", json!({})).await["me"],
        Value::Null,
        "anonymous: no one"
    );
}

async fn a_wrong_email_and_a_wrong_password_get_the_same_error(server: TestServer) {
    register_ada(&server).await;
    let wrong_password = server
        .op(
            None,
            "Login",
            json!({ "email": "ada@example.com", "password": "wrong password!" }),
        )
        .await;
    let wrong_email = login(&server, "nobody@example.com").await;
    assert_eq!(code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password["errors"][0]["message"],
        wrong_email["errors"][0]["message"]
    );
    assert_eq!(code(&wrong_email), "UNAUTHENTICATED");
}

async fn login_takes_the_email_in_any_case(server: TestServer) {
    register_ada(&server).await;
    let login = login(&server, "ADA@example.com").await;
    assert_eq!(login["data"]["login"]["user"]["handle"], "ada_l");
}

/// With the grace period at 2 s: a token presented again after it is reuse.
async fn reusing_a_spent_refresh_token_revokes_its_family_only(server: TestServer) {
    let spent = register_ada(&server).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_family = login(&server, "ada@example.com").await["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // Refresh rotates; the old token is spent; reusing it after the grace
    // period revokes the family.
    let next = rotated(&refresh(&server, &spent).await);
    assert_ne!(next, spent);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(code(&refresh(&server, &spent).await), "UNAUTHENTICATED");
    assert_eq!(
        code(&refresh(&server, &next).await),
        "UNAUTHENTICATED",
        "reuse revoked the whole family"
    );
    // The other login's family is untouched.
    rotated(&refresh(&server, &other_family).await);
}

/// Two tabs, or the HTTP link and the socket, refreshing with one token at
/// the same moment: every call within the grace period gets a session of its
/// own, and each of them works and refreshes on.
async fn concurrent_refreshes_within_the_grace_all_succeed(server: TestServer) {
    let token = register_ada(&server).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let calls = (0..12).map(|_| refresh(&server, &token));
    let sessions: Vec<Value> = futures::future::join_all(calls).await;
    let mut next_tokens = Vec::new();
    for session in &sessions {
        let access = session["data"]["refreshSession"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("every refresh within the grace succeeds: {session:#}"));
        assert_eq!(
            server.ok(Some(access), "Me", json!({})).await["me"]["handle"],
            "ada_l"
        );
        next_tokens.push(rotated(session));
    }
    next_tokens.sort();
    next_tokens.dedup();
    assert_eq!(
        next_tokens.len(),
        12,
        "each call got a refresh token of its own"
    );
    for next in &next_tokens {
        rotated(&refresh(&server, next).await);
    }
}

/// With the grace period at 2 s: two tabs refresh at once, then the first
/// token comes back after the grace, and every session of the family ends.
async fn a_reuse_after_the_grace_revokes_every_session_of_the_family(server: TestServer) {
    let token = register_ada(&server).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let (first_tab, second_tab) = tokio::join!(refresh(&server, &token), refresh(&server, &token));
    let tabs = [rotated(&first_tab), rotated(&second_tab)];

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(code(&refresh(&server, &token).await), "UNAUTHENTICATED");
    for tab in &tabs {
        assert_eq!(
            code(&refresh(&server, tab).await),
            "UNAUTHENTICATED",
            "the reuse revoked the family"
        );
    }
}

async fn logout_revokes_the_refresh_token(server: TestServer) {
    register_ada(&server).await;
    let first = login(&server, "ada@example.com").await["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = rotated(&refresh(&server, &first).await);
    assert_eq!(
        server
            .ok(None, "Logout", json!({ "refreshToken": token }))
            .await["logout"],
        true
    );
    assert_eq!(code(&refresh(&server, &token).await), "UNAUTHENTICATED");
}

async fn validation_names_fields(server: TestServer) {
    for (input, field) in [
        (
            json!({ "email": "not-an-email", "password": "long enough pw", "handle": "abc", "displayName": "A" }),
            "email",
        ),
        (
            json!({ "email": "a@b.co", "password": "short", "handle": "abc", "displayName": "A" }),
            "password",
        ),
        (
            json!({ "email": "a@b.co", "password": "x".repeat(129), "handle": "abc", "displayName": "A" }),
            "password",
        ),
        (
            json!({ "email": "a@b.co", "password": "long enough pw", "handle": "a-b", "displayName": "A" }),
            "handle",
        ),
        (
            json!({ "email": "a@b.co", "password": "long enough pw", "handle": "ab", "displayName": "A" }),
            "handle",
        ),
        (
            json!({ "email": "a@b.co", "password": "long enough pw", "handle": "abc", "displayName": "" }),
            "displayName",
        ),
        (
            json!({ "email": "a@b.co", "password": "long enough pw", "handle": "abc", "displayName": "x".repeat(81) }),
            "displayName",
        ),
    ] {
        let response = server.op(None, "Register", json!({ "input": input })).await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{input}");
        assert_eq!(
            response["errors"][0]["extensions"]["field"], field,
            "{input}"
        );
    }
}

async fn change_password(server: &TestServer, token: &str, current: &str) -> Value {
    server
        .op(
            Some(token),
            "ChangePassword",
            json!({ "currentPassword": current, "newPassword": "a brand new password" }),
        )
        .await
}

async fn update_profile(server: &TestServer, token: &str, input: Value) -> Value {
    server
        .op(Some(token), "UpdateProfile", json!({ "input": input }))
        .await
}

async fn changing_the_password_takes_the_current_one(server: TestServer) {
    let (token, _) = server.register("grace").await;
    let wrong = change_password(&server, &token, "not my password").await;
    assert_eq!(code(&wrong), "BAD_USER_INPUT");
}

async fn a_new_password_ends_sessions_and_the_old_password(server: TestServer) {
    let (token, _) = server.register("grace").await;
    let session = login(&server, "grace@example.com").await;
    let refresh_token = session["data"]["login"]["refreshToken"].as_str().unwrap();

    let changed = change_password(&server, &token, "correct horse battery").await;
    assert_eq!(changed["data"]["changePassword"], true, "{changed}");
    assert_eq!(
        code(&refresh(&server, refresh_token).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(&login(&server, "grace@example.com").await),
        "UNAUTHENTICATED"
    );
    server
        .ok(
            None,
            "Login",
            json!({ "email": "grace@example.com", "password": "a brand new password" }),
        )
        .await;
}

async fn anonymous_callers_cannot_change_a_password(server: TestServer) {
    let anonymous = server
        .op(
            None,
            "ChangePassword",
            json!({ "currentPassword": "x", "newPassword": "yyyyyyyyyyyy" }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
}

/// Left out stays, null clears, a value sets.
async fn profile_updates_keep_what_is_left_out(server: TestServer) {
    let (token, _) = server.register("grace").await;
    let updated = update_profile(
        &server,
        &token,
        json!({ "headline": "Stagehand", "bio": "20 years", "region": "Toronto" }),
    )
    .await;
    assert_eq!(updated["data"]["updateProfile"]["headline"], "Stagehand");
    let updated = update_profile(&server, &token, json!({ "bio": null })).await;
    assert_eq!(updated["data"]["updateProfile"]["bio"], Value::Null);
    assert_eq!(updated["data"]["updateProfile"]["headline"], "Stagehand");
}

async fn invalid_profile_updates_are_refused(server: TestServer) {
    let (token, _) = server.register("grace").await;
    let bad = update_profile(
        &server,
        &token,
        json!({ "avatarUrl": "javascript:alert(1)" }),
    )
    .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "avatarUrl");
    let bad = update_profile(&server, &token, json!({ "displayName": null })).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
}

async fn an_email_is_shown_to_its_owner_and_administrators_only(server: TestServer) {
    let (token, _) = server.register("grace").await;
    update_profile(&server, &token, json!({ "headline": "Stagehand" })).await;
    let (other, _) = server.register("hopper").await;
    let seen_by_other = server
        .ok(Some(&other), "UserProfile", json!({ "handle": "GRACE" }))
        .await;
    assert_eq!(seen_by_other["user"]["email"], Value::Null);
    assert_eq!(seen_by_other["user"]["headline"], "Stagehand");
    assert_eq!(
        server
            .ok(None, "UserProfile", json!({ "handle": "grace" }))
            .await["user"]["email"],
        Value::Null
    );
    assert_eq!(
        server
            .ok(Some(&token), "UserProfile", json!({ "handle": "grace" }))
            .await["user"]["email"],
        "grace@example.com"
    );
    let (admin, _) = server.admin("root_admin").await;
    assert_eq!(
        server
            .ok(Some(&admin), "UserProfile", json!({ "handle": "grace" }))
            .await["user"]["email"],
        "grace@example.com"
    );
}

async fn an_unknown_handle_is_no_one(server: TestServer) {
    assert_eq!(
        server
            .ok(None, "UserProfile", json!({ "handle": "nobody_here" }))
            .await["user"],
        Value::Null
    );
}

fn forge(
    token: &str,
    edit: impl Fn(&mut Value),
    header: Option<Value>,
    signature: Option<&str>,
) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut claims);
    let header = header
        .map(|h| URL_SAFE_NO_PAD.encode(h.to_string()))
        .unwrap_or_else(|| parts[0].to_owned());
    format!(
        "{header}.{}.{}",
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        signature.unwrap_or(parts[2])
    )
}

async fn forged_tokens_are_refused(server: TestServer) {
    let data = server
        .ok(None, "Register", register_input("eve@example.com", "eve"))
        .await;
    let token = data["register"]["accessToken"].as_str().unwrap();
    let refresh = data["register"]["refreshToken"].as_str().unwrap();
    let (_, victim) = server.register("victim").await;
    let forgeries = [
        forge(
            token,
            |_| {},
            Some(json!({ "alg": "none", "typ": "JWT" })),
            Some(""),
        ),
        forge(token, |c| c["sub"] = json!(victim), None, None),
        forge(token, |c| c["exp"] = json!(9_999_999_999_i64), None, None),
        forge(
            token,
            |_| {},
            None,
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        forge(
            token,
            |_| {},
            Some(json!({ "alg": "HS512", "typ": "JWT" })),
            None,
        ),
        refresh.to_owned(),
        "garbage".to_owned(),
    ];
    for forged in forgeries {
        let response = server.op(Some(&forged), "Me", json!({})).await;
        assert_eq!(code(&response), "UNAUTHENTICATED", "{forged}");
        assert!(response["data"].is_null());
    }
    assert_eq!(
        server.ok(Some(token), "Me", json!({})).await["me"]["handle"],
        "eve"
    );
}

/// Who is asking is looked up on every signed-in request: it reads the
/// role and the suspension, never the password hash or the e-mail.
async fn the_viewer_lookup_reads_no_secrets(server: TestServer) {
    let (token, id) = server.register("reader").await;
    let response = server
        .graphql(Some(&token), json!({ "query": "{ __typename }" }))
        .await;
    assert!(response.get("errors").is_none(), "{response}");
    let lookup = server
        .last_sql(&["FROM \"users\" WHERE", &id])
        .expect("the viewer's lookup");
    assert!(lookup.contains("\"role\""), "{lookup}");
    assert!(!lookup.contains("password_hash"), "{lookup}");
    assert!(!lookup.contains("\"email\""), "{lookup}");
}

on_both_databases!(
    the_viewer_lookup_reads_no_secrets,
    registering_stores_the_handle_lower_case_and_opens_a_session,
    emails_and_handles_are_unique_in_any_case,
    me_is_the_token_holder_or_no_one,
    a_wrong_email_and_a_wrong_password_get_the_same_error,
    login_takes_the_email_in_any_case,
    concurrent_refreshes_within_the_grace_all_succeed,
    logout_revokes_the_refresh_token,
    validation_names_fields,
    changing_the_password_takes_the_current_one,
    a_new_password_ends_sessions_and_the_old_password,
    anonymous_callers_cannot_change_a_password,
    profile_updates_keep_what_is_left_out,
    invalid_profile_updates_are_refused,
    an_email_is_shown_to_its_owner_and_administrators_only,
    an_unknown_handle_is_no_one,
    forged_tokens_are_refused
);

on_both_databases!(
    with &[("TWEETMEET_REFRESH_GRACE_SECS", "2")];
    reusing_a_spent_refresh_token_revokes_its_family_only,
    a_reuse_after_the_grace_revokes_every_session_of_the_family
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_tokens_are_refused() {
    let db = std::sync::Arc::new(common::TestDatabase::sqlite().await);
    let server = TestServer::start_with(db, &[("TWEETMEET_ACCESS_TOKEN_TTL_SECS", "1")]).await;
    let (token, _) = server.register("shortlived").await;
    assert_eq!(
        server.ok(Some(&token), "Me", json!({})).await["me"]["handle"],
        "shortlived"
    );
    // It lives 1 s: the server refuses it once that has passed.
    wait_until(
        Duration::from_secs(5),
        "the expired token to be refused",
        async || {
            let me = server.op(Some(&token), "Me", json!({})).await;
            me["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        },
    )
    .await;
}
