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

/// The notice's attempts and whether it is dead, as the database holds them.
async fn attempts_and_dead(db: &impl ConnectionTrait) -> Option<(i32, bool)> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT attempts, dead_at IS NOT NULL AS dead FROM notices",
        ))
        .await
        .expect("read the notice")?;
    Some((
        row.try_get_by_index(0).expect("attempts"),
        row.try_get_by_index(1).expect("dead"),
    ))
}

/// With an SMTP server that never answers, a notice is tried
/// `TWEETMEET_NOTICE_MAX_ATTEMPTS` times, then dead: never tried again, not
/// even once the server is back.
async fn a_notice_that_keeps_failing_dies(backend: common::Backend) {
    let Some(db) = TestDatabase::for_backend(backend, "a_notice_that_keeps_failing_dies").await
    else {
        return;
    };
    let port = free_port().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let server = TestServer::start_with(
        Arc::new(db),
        &[
            ("TWEETMEET_SMTP_URL", &url),
            ("TWEETMEET_NOTICE_MAX_ATTEMPTS", "2"),
        ],
    )
    .await;
    let (host, meet) = server.host_meet(json!({})).await;
    server
        .invite_ok(&host, &meet, json!({ "emails": ["zed@example.com"] }))
        .await;
    let db = api::db::connect(&server.db.url).await.expect("connect");
    // The first attempt, a 2 s backoff, the second attempt.
    wait_until(Duration::from_secs(10), "the notice to die", async || {
        attempts_and_dead(&db).await == Some((2, true))
    })
    .await;
    let mailbox = smtp::serve(TcpListener::bind(("127.0.0.1", port)).await.unwrap());
    // A third attempt would have come 4 s after the second.
    assert_nothing_within(
        Duration::from_secs(6),
        "a dead notice tried again",
        async || !mailbox.messages().is_empty() || attempts_and_dead(&db).await != Some((2, true)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_that_keeps_failing_dies_sqlite() {
    a_notice_that_keeps_failing_dies(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_that_keeps_failing_dies_postgres() {
    a_notice_that_keeps_failing_dies(common::Backend::Postgres).await;
}

/// An SMTP server that accepts connections and never says a word: a send
/// to it stays in flight. Returns how many connections it has taken.
fn silent_smtp(listener: TcpListener) -> Arc<std::sync::atomic::AtomicUsize> {
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    accepted
}

/// A process killed with SIGKILL mid-send: while it lived, its heartbeat
/// kept the claim (another process did not send the notice too); once dead,
/// its claim runs out within the short lease and the other process sends
/// the notice, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_claims_are_retried_within_the_lease() {
    let Some(db) =
        TestDatabase::postgres("a_killed_process_claims_are_retried_within_the_lease").await
    else {
        return;
    };
    let db = Arc::new(db);
    let connection = api::db::connect(&db.url).await.expect("connect");
    api::db::migrate(&connection).await.expect("migrate");
    let now = chrono::Utc::now();
    connection
        .execute_raw(Statement::from_sql_and_values(
            connection.get_database_backend(),
            "INSERT INTO notices (id, kind, recipient, subject, body_text, body_html, attempts, \
             next_attempt_at, created_at) VALUES ($1, 'test', 'zed@example.com', 'Lease', \
             'text', '<p>html</p>', 0, $2, $2)",
            [uuid::Uuid::now_v7().into(), now.into()],
        ))
        .await
        .expect("a due notice");

    // The first process: its SMTP server never answers, so its send hangs.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("smtp://{}", silent.local_addr().unwrap());
    let accepted = silent_smtp(silent);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut first = tokio::process::Command::new(env!("CARGO_BIN_EXE_tweetmeet"))
        .current_dir(dir.path())
        .env("TWEETMEET_DATABASE_URL", &db.url)
        .env("TWEETMEET_BIND", "127.0.0.1:0")
        .env(
            "TWEETMEET_JWT_SECRET",
            "test-secret-test-secret-test-secret!",
        )
        .env("TWEETMEET_SMTP_URL", &silent_url)
        .env("TWEETMEET_NOTICE_LEASE_SECS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the first process");
    wait_until(
        Duration::from_secs(20),
        "the first process to be sending",
        async || accepted.load(std::sync::atomic::Ordering::SeqCst) > 0,
    )
    .await;

    // The second process, with a working SMTP server and the same lease.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let mailbox = smtp::serve(listener);
    let _second = TestServer::start_with(
        db.clone(),
        &[
            ("TWEETMEET_SMTP_URL", &url),
            ("TWEETMEET_NOTICE_LEASE_SECS", "1"),
        ],
    )
    .await;
    assert_nothing_within(
        Duration::from_secs(3),
        "the notice taken from a living process (three leases long)",
        async || !mailbox.messages().is_empty(),
    )
    .await;

    first.kill().await.expect("SIGKILL the first process");
    let received = mailbox.wait_for(1, 5).await;
    assert_eq!(received.len(), 1, "sent by the second process");
    assert_nothing_within(
        Duration::from_secs(2),
        "the notice sent twice",
        async || mailbox.messages().len() > 1,
    )
    .await;
}

/// An empty outbox is not polled twice a second: the worker sleeps until a
/// change queues a notice (or its 30 s safety poll), and a queued notice
/// still goes out at once.
async fn an_idle_worker_sleeps_until_notices_are_queued(backend: common::Backend) {
    let Some(db) = TestDatabase::for_backend(backend, "an_idle_worker_sleeps").await else {
        return;
    };
    let server = TestServer::start(db).await;
    let (host, _) = server.register("host").await;
    let meet = server.meet(&host, json!({})).await;
    let outbox = ["\"notices\""];
    let looked = server.recorded(&outbox);
    assert_nothing_within(
        Duration::from_secs(3),
        "the worker polling an empty outbox",
        async || server.recorded(&outbox) > looked,
    )
    .await;
    server
        .invite_ok(&host, &meet, json!({ "emails": ["guest@example.com"] }))
        .await;
    // Within the wait, far less than the safety poll.
    assert_eq!(server.mail_to("guest@example.com", 1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_sleeps_until_notices_are_queued_sqlite() {
    an_idle_worker_sleeps_until_notices_are_queued(common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_sleeps_until_notices_are_queued_postgres() {
    an_idle_worker_sleeps_until_notices_are_queued(common::Backend::Postgres).await;
}
