//! `meetActivity(after:)`: a subscriber that lost its socket resumes from the
//! last event it saw, from the durable activity log, with no gap and no
//! repeat; one that falls behind is caught up, not dropped; a cursor older
//! than the log keeps ends with `EVENTS_MISSED`.

mod common;

use std::{sync::Arc, time::Duration};

use common::{
    TestDatabase, TestServer, code,
    ws::{Protocol, WsClient},
};
use serde_json::json;

/// Subscribes to the meet's activity, after `cursor` when given, under id "m".
async fn watch(server: &TestServer, meet: &str, cursor: Option<&str>) -> WsClient {
    let mut client = WsClient::connect(&server.ws_url(), Protocol::TransportWs).await;
    client.init(None).await.expect("connection acknowledged");
    client
        .subscribe(
            "m",
            &server.contract.operation("MeetActivity"),
            "MeetActivity",
            json!({ "meetId": meet, "after": cursor }),
        )
        .await;
    // Neither protocol acknowledges a subscription: give the server time to
    // register it before events are made.
    tokio::time::sleep(Duration::from_millis(400)).await;
    client
}

/// The next `n` events' (kind, answerer's handle, cursor).
async fn take(client: &mut WsClient, n: usize) -> Vec<(String, String, String)> {
    let mut events = Vec::new();
    for _ in 0..n {
        let payload = client.next_payload("m").await;
        let activity = &payload["data"]["meetActivity"];
        assert!(activity.is_object(), "an event: {payload}");
        events.push((
            activity["kind"].as_str().unwrap().to_owned(),
            activity["attendance"]["user"]["handle"]
                .as_str()
                .unwrap_or("-")
                .to_owned(),
            activity["cursor"].as_str().unwrap().to_owned(),
        ));
    }
    events
}

/// Members "m0".."m{n}" answering GOING on `meet` through `server`, in turn.
async fn answers(server: &TestServer, members: &[String], meet: &str) {
    for token in members {
        server.rsvp_ok(token, meet, "GOING").await;
    }
}

async fn members(server: &TestServer, prefix: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..n {
        tokens.push(server.register(&format!("{prefix}{i}")).await.0);
    }
    tokens
}

/// Take 3 events, disconnect, make 5 changes through `writer`, resume on
/// `reader` with the last cursor: exactly those 5, in order, then live ones.
async fn resume_after_a_lost_socket(reader: &TestServer, writer: &TestServer) {
    let (host, _) = reader.register("host").await;
    let meet = reader.meet(&host, json!({})).await;
    let before = members(reader, "early", 3).await;
    let after = members(reader, "late", 5).await;

    let mut phone = watch(reader, &meet, None).await;
    answers(reader, &before, &meet).await;
    let seen = take(&mut phone, 3).await;
    assert_eq!(
        seen.iter()
            .map(|(_, who, _)| who.as_str())
            .collect::<Vec<_>>(),
        ["early0", "early1", "early2"]
    );
    drop(phone);

    answers(writer, &after, &meet).await;
    let last_cursor = &seen[2].2;
    let mut phone = watch(reader, &meet, Some(last_cursor)).await;
    let replayed = take(&mut phone, 5).await;
    assert_eq!(
        replayed
            .iter()
            .map(|(kind, who, _)| (kind.as_str(), who.as_str()))
            .collect::<Vec<_>>(),
        [
            ("RSVP_CHANGED", "late0"),
            ("RSVP_CHANGED", "late1"),
            ("RSVP_CHANGED", "late2"),
            ("RSVP_CHANGED", "late3"),
            ("RSVP_CHANGED", "late4"),
        ],
        "exactly the five missed, in order"
    );
    phone.expect_silence("m", Duration::from_millis(500)).await;

    // Then live, with no repeat at the seam.
    writer.rsvp_ok(&before[0], &meet, "MAYBE").await;
    let live = take(&mut phone, 1).await;
    assert_eq!(
        (live[0].0.as_str(), live[0].1.as_str()),
        ("RSVP_CHANGED", "early0")
    );
    phone.expect_silence("m", Duration::from_millis(500)).await;

    // Every cursor is distinct, and resuming from the newest replays nothing.
    let mut cursors: Vec<&String> = seen
        .iter()
        .chain(&replayed)
        .chain(&live)
        .map(|(_, _, c)| c)
        .collect();
    cursors.dedup();
    assert_eq!(cursors.len(), 9);
    let mut caught_up = watch(reader, &meet, Some(&live[0].2)).await;
    caught_up
        .expect_silence("m", Duration::from_millis(500))
        .await;
}

async fn a_subscriber_resumes_after_a_lost_socket(server: TestServer) {
    resume_after_a_lost_socket(&server, &server).await;
}

/// On PostgreSQL the missed changes are made through another server process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_resumes_changes_made_through_another_process() {
    let Some(db) = TestDatabase::postgres("resumes_across_processes").await else {
        return;
    };
    let db = Arc::new(db);
    let reader = TestServer::start_with(db.clone(), &[]).await;
    let writer = TestServer::start_with(db.clone(), &[]).await;
    resume_after_a_lost_socket(&reader, &writer).await;
}

/// With a buffer of 2 events, a subscriber whose socket is full (it reads
/// nothing while events of about 100 KB each are made, more than the socket
/// buffers on both ends hold) falls behind the hub; once it reads again it
/// gets every event, in order: caught up from the log, not dropped.
async fn a_lagging_subscriber_gets_every_event(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (fan, _) = server.register("fan").await;
    let meet = server
        .meet(&host, json!({ "description": "war story ".repeat(500) }))
        .await;
    let send_buffer_max: usize = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|v| v.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20);
    let rounds = 2 * send_buffer_max / 100_000 + 10;
    let selection: String = (0..20)
        .map(|i| format!("m{i}: meet {{ description }} "))
        .collect();
    let big = format!(
        "subscription Big($meetId: ID!) {{ meetActivity(meetId: $meetId) {{ cursor kind {selection}}} }}"
    );
    let mut slow =
        WsClient::connect_with_receive_buffer(&server.ws_url(), Protocol::TransportWs, 4096).await;
    slow.init(None).await.expect("connection acknowledged");
    slow.subscribe("m", &big, "Big", json!({ "meetId": meet }))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answers = ["GOING", "MAYBE"];
    for round in 0..rounds {
        server.rsvp_ok(&fan, &meet, answers[round % 2]).await;
    }
    let mut cursors = Vec::new();
    for _ in 0..rounds {
        let event = slow.next_payload("m").await;
        assert_eq!(
            event["data"]["meetActivity"]["kind"], "RSVP_CHANGED",
            "{event}"
        );
        cursors.push(
            event["data"]["meetActivity"]["cursor"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut distinct = cursors.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), rounds, "every event once");
    slow.expect_silence("m", Duration::from_millis(500)).await;
}

/// With a retention of 1 s, a cursor from before it ends the subscription
/// with EVENTS_MISSED; one from another meet, or made up, is BAD_USER_INPUT.
async fn an_expired_cursor_is_events_missed(server: TestServer) {
    let (host, _) = server.register("host").await;
    let meet = server.meet(&host, json!({})).await;
    let other = server.meet(&host, json!({})).await;
    let people = members(&server, "pal", 2).await;
    let mut phone = watch(&server, &meet, None).await;
    server.rsvp_ok(&people[0], &meet, "GOING").await;
    let first = take(&mut phone, 1).await;
    drop(phone);
    server.rsvp_ok(&people[1], &meet, "GOING").await;

    // Past the retention, and pruned (the pruner runs every 250 ms here).
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    let mut late = watch(&server, &meet, Some(&first[0].2)).await;
    let ended = late.next_payload("m").await;
    assert_eq!(code(&ended), "EVENTS_MISSED", "{ended}");

    for cursor in [first[0].2.as_str(), "bm9wZQ", "not a cursor"] {
        let target = if cursor == first[0].2 { &other } else { &meet };
        let mut refused = watch(&server, target, Some(cursor)).await;
        let payload = refused.next_payload("m").await;
        assert_eq!(code(&payload), "BAD_USER_INPUT", "{payload}");
    }
}

on_both_databases!(a_subscriber_resumes_after_a_lost_socket);
on_both_databases!(
    with &[("TWEETMEET_LIVE_BUFFER", "2")];
    a_lagging_subscriber_gets_every_event
);
on_both_databases!(
    with &[("TWEETMEET_EVENT_RETENTION_SECS", "1")];
    an_expired_cursor_is_events_missed
);
