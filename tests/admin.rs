//! Administration, the audit log, and what production hides from non-admins.

mod common;

use std::sync::Arc;

use common::{TestDatabase, TestServer, code};
use serde_json::{Value, json};

async fn members_cannot_administer(server: TestServer) {
    let (member, _) = server.register("member").await;
    let (_, target) = server.register("target").await;
    for (name, variables) in [
        ("AdminUsers", json!({})),
        ("SetUserRole", json!({ "userId": target, "role": "ADMIN" })),
        ("SuspendUser", json!({ "userId": target, "reason": "spam" })),
        ("UnsuspendUser", json!({ "userId": target })),
    ] {
        assert_eq!(
            code(&server.op(Some(&member), name, variables.clone()).await),
            "FORBIDDEN",
            "{name}"
        );
        assert_eq!(
            code(&server.op(None, name, variables).await),
            "UNAUTHENTICATED",
            "{name}"
        );
    }
    let log = server
        .graphql(
            Some(&member),
            json!({ "query": "{ adminAuditLog { edges { cursor } } }" }),
        )
        .await;
    assert_eq!(code(&log), "FORBIDDEN");
}

/// A member registered as "troll" with "Troll@Example.com", who has
/// published a story.
struct Troll {
    token: String,
    refresh: String,
    id: String,
}

async fn troll(server: &TestServer) -> Troll {
    let data = server
        .ok(None, "Register", json!({ "input": { "email": "Troll@Example.com", "password": "correct horse battery", "handle": "troll", "displayName": "Under Bridge" } }))
        .await;
    let session = &data["register"];
    let troll = Troll {
        token: session["accessToken"].as_str().unwrap().to_owned(),
        refresh: session["refreshToken"].as_str().unwrap().to_owned(),
        id: session["user"]["id"].as_str().unwrap().to_owned(),
    };
    server
        .ok(
            Some(&troll.token),
            "PublishStory",
            json!({ "input": { "title": "Troll story", "body": "b" } }),
        )
        .await;
    troll
}

async fn login_troll(server: &TestServer) -> Value {
    server
        .op(
            None,
            "Login",
            json!({ "email": "troll@example.com", "password": "correct horse battery" }),
        )
        .await
}

async fn suspend(server: &TestServer, admin: &str, user_id: &str) -> Value {
    server
        .ok(
            Some(admin),
            "SuspendUser",
            json!({ "userId": user_id, "reason": "Spamming the feed" }),
        )
        .await
}

/// Sets a user's role; panics on any error and returns `data`.
async fn set_role(server: &TestServer, admin: &str, user_id: &str, role: &str) -> Value {
    server
        .ok(
            Some(admin),
            "SetUserRole",
            json!({ "userId": user_id, "role": role }),
        )
        .await
}

/// Search by handle, display name or e-mail; e-mail, role and suspension shown.
async fn admins_find_users_by_handle_name_or_email(server: TestServer) {
    let (admin, _) = server.admin("root").await;
    troll(&server).await;
    for search in ["TROLL", "bridge", "troll@example"] {
        let found = server
            .ok(Some(&admin), "AdminUsers", json!({ "search": search }))
            .await;
        let edges = found["users"]["edges"].as_array().unwrap();
        assert_eq!(edges.len(), 1, "{search}");
        assert_eq!(edges[0]["node"]["email"], "troll@example.com");
        assert_eq!(edges[0]["node"]["role"], "MEMBER");
        assert_eq!(edges[0]["node"]["suspendedAt"], Value::Null);
    }
}

/// At once, for tokens already issued too; their content stays.
async fn a_suspension_locks_the_user_out_at_once(server: TestServer) {
    let (admin, _) = server.admin("root").await;
    let troll = troll(&server).await;
    let suspended = suspend(&server, &admin, &troll.id).await;
    assert!(suspended["suspendUser"]["suspendedAt"].is_string());
    assert_eq!(
        code(&server.op(Some(&troll.token), "Me", json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        code(
            &server
                .op(
                    None,
                    "RefreshSession",
                    json!({ "refreshToken": troll.refresh })
                )
                .await
        ),
        "UNAUTHENTICATED"
    );
    assert_eq!(code(&login_troll(&server).await), "UNAUTHENTICATED");
    let feed = server.ok(None, "StoryFeed", json!({})).await;
    assert_eq!(
        feed["stories"]["edges"][0]["node"]["title"], "Troll story",
        "their content stays"
    );
}

async fn an_unsuspended_user_may_log_in_again(server: TestServer) {
    let (admin, _) = server.admin("root").await;
    let troll = troll(&server).await;
    suspend(&server, &admin, &troll.id).await;
    server
        .ok(Some(&admin), "UnsuspendUser", json!({ "userId": troll.id }))
        .await;
    let login = login_troll(&server).await;
    assert!(login.get("errors").is_none(), "{login:#}");
}

async fn the_last_admin_cannot_demote_or_suspend_themself(server: TestServer) {
    let (admin, admin_id) = server.admin("root").await;
    assert_eq!(
        code(
            &server
                .op(
                    Some(&admin),
                    "SetUserRole",
                    json!({ "userId": admin_id, "role": "MEMBER" })
                )
                .await
        ),
        "CONFLICT"
    );
    assert_eq!(
        code(
            &server
                .op(
                    Some(&admin),
                    "SuspendUser",
                    json!({ "userId": admin_id, "reason": "tired" })
                )
                .await
        ),
        "CONFLICT"
    );
}

async fn a_demotion_takes_effect_at_once(server: TestServer) {
    let (admin, admin_id) = server.admin("root").await;
    let troll = troll(&server).await;
    let promoted = set_role(&server, &admin, &troll.id, "ADMIN").await;
    assert_eq!(promoted["setUserRole"]["role"], "ADMIN");
    set_role(&server, &admin, &admin_id, "MEMBER").await;
    assert_eq!(
        code(&server.op(Some(&admin), "AdminUsers", json!({})).await),
        "FORBIDDEN",
        "a demotion takes effect at once"
    );
}

/// Every action is in the audit log, newest first; refused ones are not.
async fn the_audit_log_records_every_action(server: TestServer) {
    let (admin, admin_id) = server.admin("root").await;
    let troll = troll(&server).await;
    suspend(&server, &admin, &troll.id).await;
    server
        .ok(Some(&admin), "UnsuspendUser", json!({ "userId": troll.id }))
        .await;
    // Refused: the last administrator may not demote or suspend themself.
    server
        .op(
            Some(&admin),
            "SetUserRole",
            json!({ "userId": admin_id, "role": "MEMBER" }),
        )
        .await;
    server
        .op(
            Some(&admin),
            "SuspendUser",
            json!({ "userId": admin_id, "reason": "tired" }),
        )
        .await;
    set_role(&server, &admin, &troll.id, "ADMIN").await;
    set_role(&server, &admin, &admin_id, "MEMBER").await;

    let new_admin = login_troll(&server).await;
    let token = new_admin["data"]["login"]["accessToken"].as_str().unwrap();
    let log = server
        .graphql(Some(token), json!({ "query": "{ adminAuditLog(first: 10) { edges { node { action detail actor { handle } target { handle } createdAt } } } }" }))
        .await;
    let entries: Vec<(String, Option<String>, Option<String>)> =
        log["data"]["adminAuditLog"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("{log}"))
            .iter()
            .map(|e| {
                let n = &e["node"];
                (
                    n["action"].as_str().unwrap().to_owned(),
                    n["actor"]["handle"].as_str().map(str::to_owned),
                    n["target"]["handle"].as_str().map(str::to_owned),
                )
            })
            .collect();
    let entries: Vec<(&str, Option<&str>, Option<&str>)> = entries
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_deref(), c.as_deref()))
        .collect();
    assert_eq!(
        entries,
        [
            ("set_role_member", Some("root"), Some("root")),
            ("set_role_admin", Some("root"), Some("troll")),
            ("unsuspend", Some("root"), Some("troll")),
            ("suspend", Some("root"), Some("troll")),
            ("promote", None, Some("root")),
        ]
    );
    assert_eq!(
        log["data"]["adminAuditLog"]["edges"][3]["node"]["detail"],
        "Spamming the feed"
    );
}

on_both_databases!(
    members_cannot_administer,
    admins_find_users_by_handle_name_or_email,
    a_suspension_locks_the_user_out_at_once,
    an_unsuspended_user_may_log_in_again,
    the_last_admin_cannot_demote_or_suspend_themself,
    a_demotion_takes_effect_at_once,
    the_audit_log_records_every_action
);

const INTROSPECTION: &str = "{ __schema { queryType { name } types { name fields { name type { name kind ofType { name kind ofType { name kind ofType { name kind ofType { name } } } } } } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_per_environment_and_role() {
    // Development: open to all.
    let development = TestServer::start(TestDatabase::sqlite().await).await;
    let open = development
        .graphql(None, json!({ "query": INTROSPECTION }))
        .await;
    assert_eq!(open["data"]["__schema"]["queryType"]["name"], "Query");
    let typo = development
        .graphql(None, json!({ "query": "{ meetz { edges { cursor } } }" }))
        .await;
    assert!(
        typo["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Did you mean"),
        "{typo}"
    );

    // Production: administrators only, and no suggestions for anyone else.
    let db = Arc::new(TestDatabase::sqlite().await);
    let production = TestServer::start_with(db, &[("TWEETMEET_ENV", "production")]).await;
    let (member, _) = production.register("member").await;
    let (admin, _) = production.admin("admin").await;
    for token in [None, Some(member.as_str())] {
        let refused = production
            .graphql(token, json!({ "query": INTROSPECTION }))
            .await;
        assert!(
            refused["data"].is_null() || refused["data"]["__schema"].is_null(),
            "{refused}"
        );
        let typo = production
            .graphql(token, json!({ "query": "{ meetz { edges { cursor } } }" }))
            .await;
        assert!(
            !typo["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("Did you mean"),
            "{typo}"
        );
    }
    let allowed = production
        .graphql(Some(&admin), json!({ "query": INTROSPECTION }))
        .await;
    assert_eq!(allowed["data"]["__schema"]["queryType"]["name"], "Query");
    // The contract still works for everyone.
    production.ok(Some(&member), "MyMeets", json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depth_and_complexity_limits_apply_to_everyone() {
    let server = TestServer::start(TestDatabase::sqlite().await).await;
    // meets > edges > node, then (attendees > edges > node > meet) five times: depth 24.
    let mut deep = String::from("{ meets { edges { node { ");
    for _ in 0..5 {
        deep.push_str("attendees(first: 1) { edges { node { meet { ");
    }
    deep.push_str("id");
    deep.push_str(&" }".repeat(5 * 4 + 3));
    deep.push_str(" }");
    let response = server.graphql(None, json!({ "query": deep })).await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("nested too deep"),
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_pages_multiply_into_the_complexity_limit() {
    let server = TestServer::start(TestDatabase::sqlite().await).await;
    let wide = "{ meets(first: 100) { edges { node { attendees(first: 100) { edges { node { user { hostedMeets(first: 100) { edges { node { id } } } } } } } } } } }";
    let response = server.graphql(None, json!({ "query": wide })).await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("too complex"),
        "{response}"
    );
    assert_eq!(code(&response), "BAD_USER_INPUT");
    // The contract's largest operation still fits, at the largest page.
    let (token, _) = server.register("someone").await;
    server
        .ok(Some(&token), "MyMeets", json!({ "first": 100 }))
        .await;
    server.ok(None, "MeetFeed", json!({ "first": 100 })).await;
}
