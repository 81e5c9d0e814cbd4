//! Rate limits on guessing, hashing and mailing: per client address and per
//! account, counted per call (aliases included), across server processes
//! sharing a PostgreSQL database.

mod common;

use std::{fmt::Write, sync::Arc};

use common::{TestDatabase, TestServer, code};
use serde_json::{Value, json};

/// The server as deployed: every limit at its default.
async fn strict(db: Arc<TestDatabase>) -> TestServer {
    TestServer::start_with(db, &[("TWEETMEET_RATE_LIMIT_FACTOR", "1")]).await
}

async fn login(server: &TestServer, email: &str) -> Value {
    server
        .op(
            None,
            "Login",
            json!({ "email": email, "password": "a wrong password" }),
        )
        .await
}

fn retry_after(response: &Value) -> u64 {
    response["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_u64()
        .unwrap_or_default()
}

/// Each scenario on SQLite, and on PostgreSQL when it is configured.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::TestDatabase::sqlite().await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = super::TestDatabase::postgres(stringify!($name)).await {
                        super::$name(db).await;
                    }
                }
            }
        )*
    };
}

async fn ten_wrong_passwords_and_the_account_waits(db: TestDatabase) {
    let server = strict(Arc::new(db)).await;
    server.register("victim").await;
    for _ in 0..10 {
        let answer = login(&server, "victim@example.com").await;
        assert_eq!(code(&answer), "UNAUTHENTICATED", "{answer}");
    }
    let refused = login(&server, "VICTIM@example.com ").await;
    assert_eq!(code(&refused), "RATE_LIMITED", "{refused}");
    assert!((1..=900).contains(&retry_after(&refused)), "{refused}");
    // Another account is not held up by it.
    let other = login(&server, "someone@example.com").await;
    assert_eq!(code(&other), "UNAUTHENTICATED", "{other}");
}

async fn aliases_count_one_call_each(db: TestDatabase) {
    let server = strict(Arc::new(db)).await;
    server.register("victim").await;
    // A hundred right guesses in one request would be a hundred password
    // hashes: each alias is one call, and the eleventh is refused.
    let mut query = String::from("mutation {");
    for n in 0..100 {
        write!(
            query,
            " a{n}: login(email: \"victim@example.com\", password: \"correct horse battery\") {{ accessToken }}"
        )
        .unwrap();
    }
    query.push('}');
    let response = server.graphql(None, json!({ "query": query })).await;
    assert_eq!(code(&response), "RATE_LIMITED", "{response:#}");
    assert_eq!(
        response["errors"][0]["path"],
        json!(["a10"]),
        "ten signed in, the eleventh refused: {response:#}"
    );
}

on_both_databases!(
    ten_wrong_passwords_and_the_account_waits,
    aliases_count_one_call_each
);

/// Two processes on one database share the per-account count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_limit_holds_across_processes() {
    let Some(db) = TestDatabase::postgres("the_account_limit_holds_across_processes").await else {
        return;
    };
    let db = Arc::new(db);
    let first = strict(db.clone()).await;
    let second = strict(db).await;
    first.register("victim").await;
    for n in 0..10 {
        let server = if n % 2 == 0 { &first } else { &second };
        let answer = login(server, "victim@example.com").await;
        assert_eq!(code(&answer), "UNAUTHENTICATED", "{answer}");
    }
    for server in [&first, &second] {
        let refused = login(server, "victim@example.com").await;
        assert_eq!(code(&refused), "RATE_LIMITED", "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_from_one_address_are_limited() {
    let server = strict(Arc::new(TestDatabase::sqlite().await)).await;
    for n in 0..10 {
        server.register(&format!("member{n}")).await;
    }
    let refused = server
        .op(
            None,
            "Register",
            json!({ "input": {
                "email": "eleventh@example.com",
                "password": "a long enough password",
                "handle": "eleventh",
                "displayName": "Eleventh",
            } }),
        )
        .await;
    assert_eq!(code(&refused), "RATE_LIMITED", "{refused}");
    assert!(retry_after(&refused) >= 1, "{refused}");
}
