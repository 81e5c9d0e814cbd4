//! E-mail delivery over real SMTP: retried until delivered, never twice.

mod common;

use std::{sync::Arc, time::Duration};

use common::{TestDatabase, TestServer, assert_nothing_within, smtp, wait_until};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use tokio::net::TcpListener;

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How many notices have had a delivery attempt fail.
async fn failed_deliveries(db: &impl ConnectionTrait) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) FROM notices WHERE last_error IS NOT NULL",
        ))
        .await
        .expect("count failed notices")
        .expect("a row");
    row.try_get_by_index(0).expect("a count")
}

/// Delivered with its claim link; after a failed first attempt (the SMTP
/// server is down), delivered once it is back, exactly once.
async fn delivery_survives_an_outage(backend: common::Backend) {
    let Some(db) = TestDatabase::for_backend(backend, "delivery_survives_an_outage").await else {
        return;
    };
    let port = free_port().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let server = TestServer::start_with(Arc::new(db), &[("TWEETMEET_SMTP_URL", &url)]).await;
    let (host, _) = server.register("host").await;
    let meet = server
        .meet(&host, json!({ "title": "Freight brokers" }))
        .await;
    server
        .invite_ok(&host, &meet, json!({ "emails": ["zed@example.com"] }))
        .await;

    // Nothing listens yet: the first attempt fails and is retried with backoff.
    let db = api::db::connect(&server.db.url).await.expect("connect");
    wait_until(
        Duration::from_secs(10),
        "a failed first delivery",
        async || failed_deliveries(&db).await > 0,
    )
    .await;
    let mailbox = smtp::serve(TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    let received = mailbox.wait_for(1, 15).await;
    assert_eq!(received.len(), 1, "delivered once the server is back");
    assert_eq!(received[0].to, ["zed@example.com"]);
    assert!(
        received[0]
            .data
            .contains("Subject: host invited you to Freight brokers")
    );
    assert!(
        smtp::unfold(&received[0].data).contains("https://tweetmeet.test/invitations/claim?token=")
    );
    assert_nothing_within(
        Duration::from_secs(3),
        "a second delivery (it must be exactly once)",
        async || mailbox.messages().len() > 1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_survives_an_outage_sqlite() {
    delivery_survives_an_outage(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_survives_an_outage_postgres() {
    delivery_survives_an_outage(common::Backend::Postgres).await;
}

/// Two server processes' workers on one PostgreSQL database share the
/// outbox: 100 notices, each delivered exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_deliver_each_notice_once() {
    let Some(db) = TestDatabase::postgres("two_processes_deliver_each_notice_once").await else {
        return;
    };
    let db = Arc::new(db);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let mailbox = smtp::serve(listener);
    let first = TestServer::start_with(db.clone(), &[("TWEETMEET_SMTP_URL", &url)]).await;
    let _second = TestServer::start_with(db.clone(), &[("TWEETMEET_SMTP_URL", &url)]).await;
    let (host, _) = first.register("host").await;
    for round in 0..2 {
        let meet = first
            .meet(&host, json!({ "title": format!("Round {round}") }))
            .await;
        let emails: Vec<String> = (0..50).map(|i| format!("guest{i}@example.com")).collect();
        first
            .invite_ok(&host, &meet, json!({ "emails": emails }))
            .await;
    }
    let received = mailbox.wait_for(100, 30).await;
    assert_eq!(received.len(), 100);
    assert_nothing_within(
        Duration::from_secs(2),
        "a notice delivered twice",
        async || mailbox.messages().len() > 100,
    )
    .await;
    let received = mailbox.messages();
    let mut ids: Vec<String> = received
        .iter()
        .map(|m| {
            m.data
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(received.len(), 100, "no notice twice");
    assert_eq!(ids.len(), 100, "100 different notices");
}
