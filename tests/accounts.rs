//! Identity and auth, as a client sees them.

mod common;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestServer, code};
use serde_json::{Value, json};

fn register_input(email: &str, handle: &str) -> Value {
    json!({ "input": { "email": email, "password": "correct horse battery", "handle": handle, "displayName": "Ada L." } })
}

async fn registration_and_sessions(server: TestServer) {
    let data = server
        .ok(None, "Register", register_input("Ada@Example.com", "Ada_L"))
        .await;
    let session = &data["register"];
    assert_eq!(
        session["user"]["handle"], "ada_l",
        "handles are stored lower-case"
    );
    assert_eq!(
        session["user"]["email"], "ada@example.com",
        "the user sees their own e-mail"
    );
    assert_eq!(session["user"]["role"], "MEMBER");
    let access = session["accessToken"].as_str().unwrap();
    let refresh = session["refreshToken"].as_str().unwrap().to_owned();
    assert!(session["accessTokenExpiresAt"].as_str().unwrap().len() >= 20);

    // Unique case-insensitively.
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

    let me = server.ok(Some(access), "Me", json!({})).await;
    assert_eq!(me["me"]["handle"], "ada_l");
    assert!(me["me"]["createdAt"].is_string());
    assert_eq!(
        server.ok(None, "Me", json!({})).await["me"],
        Value::Null,
        "anonymous: no one"
    );

    // Login: a wrong e-mail and a wrong password get the same error.
    let wrong_password = server
        .op(
            None,
            "Login",
            json!({ "email": "ada@example.com", "password": "wrong password!" }),
        )
        .await;
    let wrong_email = server
        .op(
            None,
            "Login",
            json!({ "email": "nobody@example.com", "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(code(&wrong_password), "UNAUTHENTICATED");
    assert_eq!(
        wrong_password["errors"][0]["message"],
        wrong_email["errors"][0]["message"]
    );
    assert_eq!(code(&wrong_email), "UNAUTHENTICATED");
    let login = server
        .ok(
            None,
            "Login",
            json!({ "email": "ADA@example.com", "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(login["login"]["user"]["handle"], "ada_l");

    // Refresh rotates; the old token is spent; reusing it revokes the family.
    let rotated = server
        .ok(None, "RefreshSession", json!({ "refreshToken": refresh }))
        .await;
    let next = rotated["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(next, refresh);
    let reused = server
        .op(None, "RefreshSession", json!({ "refreshToken": refresh }))
        .await;
    assert_eq!(code(&reused), "UNAUTHENTICATED");
    let descendant = server
        .op(None, "RefreshSession", json!({ "refreshToken": next }))
        .await;
    assert_eq!(
        code(&descendant),
        "UNAUTHENTICATED",
        "reuse revoked the whole family"
    );
    // The other login's family is untouched; logout revokes its token.
    let other = login["login"]["refreshToken"].as_str().unwrap();
    let other_next = server
        .ok(None, "RefreshSession", json!({ "refreshToken": other }))
        .await["refreshSession"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        server
            .ok(None, "Logout", json!({ "refreshToken": other_next }))
            .await["logout"],
        true
    );
    assert_eq!(
        code(
            &server
                .op(
                    None,
                    "RefreshSession",
                    json!({ "refreshToken": other_next })
                )
                .await
        ),
        "UNAUTHENTICATED"
    );
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

async fn passwords_and_profiles(server: TestServer) {
    let (token, _) = server.register("grace").await;
    let login = server
        .ok(
            None,
            "Login",
            json!({ "email": "grace@example.com", "password": "correct horse battery" }),
        )
        .await;
    let refresh = login["login"]["refreshToken"].as_str().unwrap().to_owned();

    let wrong = server
        .op(
            Some(&token),
            "ChangePassword",
            json!({ "currentPassword": "not my password", "newPassword": "a brand new password" }),
        )
        .await;
    assert_eq!(code(&wrong), "BAD_USER_INPUT");
    let changed = server
        .ok(Some(&token), "ChangePassword", json!({ "currentPassword": "correct horse battery", "newPassword": "a brand new password" }))
        .await;
    assert_eq!(changed["changePassword"], true);
    assert_eq!(
        code(
            &server
                .op(None, "RefreshSession", json!({ "refreshToken": refresh }))
                .await
        ),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(
            &server
                .op(
                    None,
                    "Login",
                    json!({ "email": "grace@example.com", "password": "correct horse battery" })
                )
                .await
        ),
        "UNAUTHENTICATED"
    );
    server
        .ok(
            None,
            "Login",
            json!({ "email": "grace@example.com", "password": "a brand new password" }),
        )
        .await;

    let anonymous = server
        .op(
            None,
            "ChangePassword",
            json!({ "currentPassword": "x", "newPassword": "yyyyyyyyyyyy" }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");

    // Left out stays, null clears, a value sets.
    let updated = server
        .ok(
            Some(&token),
            "UpdateProfile",
            json!({ "input": { "headline": "Stagehand", "bio": "20 years", "region": "Toronto" } }),
        )
        .await;
    assert_eq!(updated["updateProfile"]["headline"], "Stagehand");
    let updated = server
        .ok(
            Some(&token),
            "UpdateProfile",
            json!({ "input": { "bio": null } }),
        )
        .await;
    assert_eq!(updated["updateProfile"]["bio"], Value::Null);
    assert_eq!(updated["updateProfile"]["headline"], "Stagehand");
    let bad = server
        .op(
            Some(&token),
            "UpdateProfile",
            json!({ "input": { "avatarUrl": "javascript:alert(1)" } }),
        )
        .await;
    assert_eq!(bad["errors"][0]["extensions"]["field"], "avatarUrl");
    let bad = server
        .op(
            Some(&token),
            "UpdateProfile",
            json!({ "input": { "displayName": null } }),
        )
        .await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");

    // E-mail: the user and administrators only.
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

on_both_databases!(
    registration_and_sessions,
    validation_names_fields,
    passwords_and_profiles,
    forged_tokens_are_refused
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
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        code(&server.op(Some(&token), "Me", json!({})).await),
        "UNAUTHENTICATED"
    );
}
