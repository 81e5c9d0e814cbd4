//! Invite links and go / no-go meets (issue 16), as clients see them: a
//! link per channel followed from an open to an invitation, an answer and
//! an arrival; uses that never pass `maxUses`; meets that happen only if
//! enough people come, decided once, by any process, at their deadline.

mod common;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use common::{
    TestDatabase, TestServer, code, poll_until,
    ws::{Protocol, WsClient},
};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

fn in_seconds(seconds: i64) -> String {
    (Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

async fn create_link(server: &TestServer, token: &str, meet: &str, input: Value) -> Value {
    server
        .op(
            Some(token),
            "CreateInviteLink",
            json!({ "meetId": meet, "input": input }),
        )
        .await
}

async fn link(server: &TestServer, host: &str, meet: &str, input: Value) -> Value {
    let response = create_link(server, host, meet, input).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"]["createInviteLink"].clone()
}

/// The token a link's `url` carries.
fn token_of(link: &Value) -> String {
    let url = link["url"].as_str().expect("url");
    url.rsplit('/').next().expect("token").to_owned()
}

async fn open(server: &TestServer, viewer: Option<&str>, token: &str) -> Value {
    server
        .op(viewer, "OpenInviteLink", json!({ "token": token }))
        .await
}

/// The host's funnel, by channel.
async fn funnel(server: &TestServer, host: &str, meet: &str) -> Vec<Value> {
    server
        .ok(Some(host), "InviteLinkFunnel", json!({ "meetId": meet }))
        .await["meet"]["inviteLinks"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

fn channel<'a>(links: &'a [Value], name: &str) -> &'a Value {
    links
        .iter()
        .find(|l| l["channel"] == name)
        .unwrap_or_else(|| panic!("no {name} link in {links:?}"))
}

async fn links_follow_people_to_the_door(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let meet = server
        .meet(
            &host,
            json!({ "startsAt": in_seconds(30 * 60), "visibility": "INVITE_ONLY" }),
        )
        .await;
    let tweet = link(&server, &host, &meet, json!({ "channel": "tweet" })).await;
    assert_eq!(tweet["channel"], "tweet");
    assert!(
        tweet["url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://tweetmeet.test/l/")),
        "{tweet}"
    );
    assert!(token_of(&tweet).len() >= 43, "at least 256 bits of token");
    let newsletter = link(
        &server,
        &host,
        &meet,
        json!({ "channel": "newsletter", "maxUses": 5, "expiresAt": in_seconds(3600) }),
    )
    .await;
    assert_eq!(newsletter["maxUses"], 5);

    // Only the host (or an administrator) makes links, and only sound ones.
    assert_eq!(
        code(&create_link(&server, &ann, &meet, json!({ "channel": "x" })).await),
        "NOT_FOUND",
        "ann cannot see the invite-only meet yet"
    );
    for bad in [
        json!({ "channel": "" }),
        json!({ "channel": "x".repeat(41) }),
        json!({ "channel": "tab\there" }),
        json!({ "channel": "x", "maxUses": 0 }),
        json!({ "channel": "x", "maxUses": 10_001 }),
        json!({ "channel": "x", "expiresAt": in_seconds(-60) }),
    ] {
        assert_eq!(
            code(&create_link(&server, &host, &meet, bad.clone()).await),
            "BAD_USER_INPUT",
            "{bad}"
        );
    }

    // Anonymous opens show the invite-only meet and count each time.
    let tweet_token = token_of(&tweet);
    for _ in 0..2 {
        let opened = open(&server, None, &tweet_token).await;
        let opening = &opened["data"]["openInviteLink"];
        assert_eq!(opening["channel"], "tweet", "{opened:#}");
        assert_eq!(opening["meet"]["id"], meet);
        assert_eq!(opening["meet"]["host"]["handle"], "host");
        assert_eq!(opening["invitation"], Value::Null);
    }
    // Signed in, an invitation through the link; again, the same one, and
    // the open counted once.
    let first = open(&server, Some(&ann), &tweet_token).await;
    let invitation = first["data"]["openInviteLink"]["invitation"].clone();
    assert_eq!(invitation["status"], "PENDING", "{first:#}");
    let again = open(&server, Some(&ann), &tweet_token).await;
    assert_eq!(
        again["data"]["openInviteLink"]["invitation"]["id"],
        invitation["id"]
    );
    let mine = server.ok(Some(&ann), "MyInvitations", json!({})).await;
    assert_eq!(
        mine["myInvitations"]["edges"][0]["node"]["inviter"]["handle"], "host",
        "the link's invitation is an invitation like any"
    );
    server
        .ok(
            Some(&ann),
            "RespondToInvitation",
            json!({ "id": invitation["id"], "accept": true }),
        )
        .await;
    server
        .ok(Some(&ann), "CheckIn", json!({ "meetId": meet }))
        .await;

    // Registering with a link opens it for the new account.
    let registered = server
        .op(
            None,
            "Register",
            json!({ "input": {
                "email": "bob@example.com", "password": "correct horse battery",
                "handle": "bob", "displayName": "Bob", "inviteLink": token_of(&newsletter),
            }}),
        )
        .await;
    let bob = registered["data"]["register"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{registered:#}"))
        .to_owned();
    let bobs = server.ok(Some(&bob), "MyInvitations", json!({})).await;
    assert_eq!(
        bobs["myInvitations"]["edges"][0]["node"]["meet"]["id"],
        meet
    );
    // An unusable link refuses the registration, and no account is made.
    let refused = server
        .op(
            None,
            "Register",
            json!({ "input": {
                "email": "cal@example.com", "password": "correct horse battery",
                "handle": "cal", "displayName": "Cal", "inviteLink": "no-such-token",
            }}),
        )
        .await;
    assert_eq!(code(&refused), "NOT_FOUND");
    server.register("cal").await;

    let links = funnel(&server, &host, &meet).await;
    let tweet_now = channel(&links, "tweet");
    assert_eq!(
        [
            &tweet_now["opens"],
            &tweet_now["joined"],
            &tweet_now["going"],
            &tweet_now["arrived"]
        ],
        [&json!(3), &json!(1), &json!(1), &json!(1)],
        "{tweet_now:#}"
    );
    let newsletter_now = channel(&links, "newsletter");
    assert_eq!(
        [
            &newsletter_now["opens"],
            &newsletter_now["joined"],
            &newsletter_now["going"]
        ],
        [&json!(1), &json!(1), &json!(0)]
    );
    assert_eq!(links[0]["channel"], "newsletter", "newest first");
    let foreign = server
        .op(Some(&ann), "InviteLinkFunnel", json!({ "meetId": meet }))
        .await;
    assert_eq!(code(&foreign), "FORBIDDEN");

    // Revoked, expired and unknown links are NOT_FOUND and change nothing.
    let revoke = |token: &str, id: &Value| {
        let server = &server;
        let (token, id) = (token.to_owned(), id.clone());
        async move {
            server
                .op(Some(&token), "RevokeInviteLink", json!({ "id": id }))
                .await
        }
    };
    assert_eq!(code(&revoke(&ann, &tweet["id"]).await), "FORBIDDEN");
    let revoked = revoke(&host, &tweet["id"]).await;
    assert!(revoked["data"]["revokeInviteLink"]["revokedAt"].is_string());
    assert_eq!(code(&open(&server, None, &tweet_token).await), "NOT_FOUND");
    let short = link(
        &server,
        &host,
        &meet,
        json!({ "channel": "chat", "expiresAt": in_seconds(2) }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        code(&open(&server, None, &token_of(&short)).await),
        "NOT_FOUND"
    );
    assert_eq!(code(&open(&server, None, "nope").await), "NOT_FOUND");
    assert_eq!(
        code(&open(&server, None, &"x".repeat(5000)).await),
        "NOT_FOUND"
    );
    let links = funnel(&server, &host, &meet).await;
    assert_eq!(
        channel(&links, "tweet")["opens"],
        3,
        "a refused open counts nothing"
    );
    assert_eq!(channel(&links, "chat")["opens"], 0);
}

/// Many users opening a link at once: exactly `maxUses` get invitations.
async fn concurrent_opens_never_pass_max_uses(server: TestServer) {
    let (host, _) = server.register("host").await;
    let meet = server.meet(&host, json!({})).await;
    let limited = link(
        &server,
        &host,
        &meet,
        json!({ "channel": "tweet", "maxUses": 3 }),
    )
    .await;
    let token = token_of(&limited);
    let mut openers = Vec::new();
    for i in 0..12 {
        openers.push(server.register(&format!("fan{i:02}")).await.0);
    }
    let opens = openers
        .iter()
        .map(|viewer| open(&server, Some(viewer), &token));
    let results = futures::future::join_all(opens).await;
    let invited = results
        .iter()
        .filter(|r| r["data"]["openInviteLink"]["invitation"]["status"] == "PENDING")
        .count();
    let refused = results
        .iter()
        .filter(|r| r.get("errors").is_some() && code(r) == "NOT_FOUND")
        .count();
    assert_eq!((invited, refused), (3, 9), "{results:#?}");
    let links = funnel(&server, &host, &meet).await;
    assert_eq!(channel(&links, "tweet")["joined"], 3);
    assert_eq!(
        channel(&links, "tweet")["opens"],
        3,
        "refused opens count nothing"
    );
}

/// A page of 50 links and their funnels costs what a page of 5 does.
async fn link_pages_cost_the_same(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (fan, _) = server.register("fan").await;
    let (few, many) = (
        server.meet(&host, json!({})).await,
        server.meet(&host, json!({})).await,
    );
    for (meet, count) in [(&few, 5), (&many, 50)] {
        for i in 0..count {
            let made = link(&server, &host, meet, json!({ "channel": format!("c{i}") })).await;
            if i == 0 {
                let opened = open(&server, Some(&fan), &token_of(&made)).await;
                assert!(opened.get("errors").is_none(), "{opened:#}");
            }
        }
    }
    let cost = async |meet: &str| {
        let before = server.statements();
        let links = funnel(&server, &host, meet).await;
        (server.statements() - before, links.len())
    };
    let (few_cost, few_links) = cost(&few).await;
    let (many_cost, many_links) = cost(&many).await;
    assert_eq!((few_links, many_links), (5, 50));
    assert_eq!(few_cost, many_cost, "5 or 50 links, the same statements");
    assert!(
        many_cost <= 4,
        "InviteLinkFunnel costs {many_cost} statements"
    );
}

async fn meet_status(server: &TestServer, token: &str, meet: &str) -> Value {
    server
        .ok(Some(token), "MeetDetail", json!({ "id": meet }))
        .await["meet"]
        .clone()
}

/// A TENTATIVE meet goes ahead with the answer that reaches its minimum.
async fn enough_people_confirm_a_meet(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    let starts = in_seconds(2 * 3600);
    let meet = server
        .meet(
            &host,
            json!({ "startsAt": starts, "minimumGoing": 3, "decideBy": in_seconds(3600) }),
        )
        .await;
    let detail = meet_status(&server, &host, &meet).await;
    assert_eq!(detail["status"], "TENTATIVE");
    let feed = server.ok(None, "MeetFeed", json!({})).await;
    assert!(
        feed["meets"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|e| e["node"]["id"] == meet),
        "a tentative meet is listed"
    );
    let mut live = WsClient::connect(&server.ws_url(), Protocol::TransportWs).await;
    live.init(None).await.expect("acknowledged");
    live.subscribe(
        "m",
        &server.contract.operation("MeetActivity"),
        "MeetActivity",
        json!({ "meetId": meet }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    server.rsvp_ok(&ann, &meet, "GOING").await;
    assert_eq!(
        meet_status(&server, &host, &meet).await["status"],
        "TENTATIVE"
    );
    server.rsvp_ok(&bob, &meet, "GOING").await;
    assert_eq!(
        meet_status(&server, &host, &meet).await["status"],
        "SCHEDULED"
    );
    let kinds: Vec<Value> = [
        live.next_payload("m").await,
        live.next_payload("m").await,
        live.next_payload("m").await,
    ]
    .iter()
    .map(|e| e["data"]["meetActivity"]["kind"].clone())
    .collect();
    assert_eq!(kinds, ["RSVP_CHANGED", "RSVP_CHANGED", "MEET_CONFIRMED"]);
    for who in ["ann", "bob", "host"] {
        let mail = server.mail_to(&format!("{who}@example.com"), 1).await;
        assert!(mail[0].contains("It's on"), "{who}: {}", mail[0]);
    }

    // The rules of a go / no-go condition.
    let capped = |extra: Value| {
        let server = &server;
        let host = host.clone();
        let starts = starts.clone();
        async move {
            let mut input =
                json!({ "title": "t", "venueName": "v", "startsAt": starts, "capacity": 10 });
            if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
                input.extend(extra.clone());
            }
            server
                .op(Some(&host), "CreateMeet", json!({ "input": input }))
                .await
        }
    };
    for bad in [
        json!({ "minimumGoing": 3 }),
        json!({ "decideBy": in_seconds(600) }),
        json!({ "minimumGoing": 1, "decideBy": in_seconds(600) }),
        json!({ "minimumGoing": 11, "decideBy": in_seconds(600) }),
        json!({ "minimumGoing": 3, "decideBy": in_seconds(-600) }),
        json!({ "minimumGoing": 3, "decideBy": in_seconds(3 * 3600) }),
    ] {
        assert_eq!(code(&capped(bad.clone()).await), "BAD_USER_INPUT", "{bad}");
    }
    // Lowering the minimum to what is already going confirms at once.
    let lowered = server
        .meet(
            &host,
            json!({ "startsAt": starts, "minimumGoing": 4, "decideBy": in_seconds(3600) }),
        )
        .await;
    server.rsvp_ok(&ann, &lowered, "GOING").await;
    server
        .ok(
            Some(&host),
            "UpdateMeet",
            json!({ "id": lowered, "input": { "minimumGoing": 2 } }),
        )
        .await;
    assert_eq!(
        meet_status(&server, &host, &lowered).await["status"],
        "SCHEDULED"
    );
}

/// The scheduled decisions of `meet` still waiting, read straight from the
/// database.
async fn jobs_for(server: &TestServer, meet: &str) -> i64 {
    let db = sea_orm::Database::connect(&server.db.url)
        .await
        .expect("connect");
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT COUNT(*) FROM scheduled_jobs WHERE subject_id = $1",
            [uuid::Uuid::parse_str(meet).expect("uuid").into()],
        ))
        .await
        .expect("count")
        .expect("a row");
    row.try_get_by_index(0).expect("count")
}

/// Short of its minimum at its deadline, a meet is called off, and everyone
/// who answered hears; a moved deadline waits; a meet cancelled by hand has
/// nothing left to decide.
async fn deadlines_call_off_meets_short_of_people(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (cal, _) = server.register("cal").await;
    let tentative = |decide_in: i64| {
        let server = &server;
        let host = host.clone();
        async move {
            server
                .meet(
                    &host,
                    json!({ "startsAt": in_seconds(3600), "minimumGoing": 5, "decideBy": in_seconds(decide_in) }),
                )
                .await
        }
    };
    let short = tentative(3).await;
    let moved = tentative(3).await;
    let by_hand = tentative(3).await;
    server.rsvp_ok(&ann, &short, "GOING").await;
    server.rsvp_ok(&cal, &short, "MAYBE").await;
    server
        .ok(
            Some(&host),
            "UpdateMeet",
            json!({ "id": moved, "input": { "decideBy": in_seconds(1800) } }),
        )
        .await;
    assert_eq!(jobs_for(&server, &by_hand).await, 1);
    server
        .ok(Some(&host), "CancelMeet", json!({ "id": by_hand }))
        .await;
    assert_eq!(jobs_for(&server, &by_hand).await, 0, "cancelled by hand");

    let decided = poll_until(
        Duration::from_secs(15),
        async || meet_status(&server, &host, &short).await,
        |meet| meet["status"] == "CANCELLED",
    )
    .await;
    assert_eq!(decided["status"], "CANCELLED", "{decided:#}");
    assert_eq!(
        decided["cancellationReason"],
        "Not enough people could make it"
    );
    for who in ["ann", "cal"] {
        let mail = server.mail_to(&format!("{who}@example.com"), 1).await;
        assert!(mail[0].contains("Cancelled"), "{who}: {}", mail[0]);
        assert!(mail[0].contains("Not enough people could make it"));
    }
    assert_eq!(jobs_for(&server, &short).await, 0, "done");
    assert_eq!(
        meet_status(&server, &host, &moved).await["status"],
        "TENTATIVE"
    );
    assert_eq!(
        jobs_for(&server, &moved).await,
        1,
        "waiting for its new time"
    );
}

/// Two server processes on one PostgreSQL database: 200 meets due at once
/// are each decided exactly once, and a claim held by a process that died
/// runs out and is taken by another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_are_decided_once_across_processes() {
    let Some(db) = TestDatabase::postgres("deadlines_once").await else {
        return;
    };
    let db = Arc::new(db);
    let first = TestServer::start_with(db.clone(), &[]).await;
    let second = TestServer::start_with(db.clone(), &[]).await;
    let (host, _) = first.register("host").await;
    let mut meets = Vec::new();
    for i in 0..200 {
        let server = if i % 2 == 0 { &first } else { &second };
        meets.push(
            server
                .meet(
                    &host,
                    json!({ "startsAt": in_seconds(7200), "minimumGoing": 2, "decideBy": in_seconds(3600) }),
                )
                .await,
        );
    }
    // All 200 deadlines pass at once; one job is left as a process that
    // died holding it would leave it: claimed, its lease not yet run out.
    let connection = sea_orm::Database::connect(&db.url).await.expect("connect");
    for sql in [
        "UPDATE meets SET decide_by = now() - interval '1 second' WHERE decide_by IS NOT NULL",
        "UPDATE scheduled_jobs SET due_at = now() - interval '1 second' WHERE kind = 'DECIDE_MEET'",
    ] {
        connection
            .execute_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
            .await
            .expect("due now");
    }
    connection
        .execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "UPDATE scheduled_jobs SET claimed_until = now() + interval '5 seconds' \
             WHERE subject_id = $1",
            [uuid::Uuid::parse_str(&meets[0]).expect("uuid").into()],
        ))
        .await
        .expect("claim");
    // A change to any meet wakes both runners (no event announced the
    // deadlines moved by hand above; they would otherwise look within 30 s).
    let (fan, _) = second.register("fan").await;
    let elsewhere = first.meet(&host, json!({ "title": "Elsewhere" })).await;
    second.rsvp_ok(&fan, &elsewhere, "GOING").await;
    let remaining = poll_until(
        Duration::from_secs(60),
        async || {
            connection
                .query_one_raw(Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT COUNT(*) FROM scheduled_jobs WHERE kind = 'DECIDE_MEET'",
                ))
                .await
                .expect("count")
                .map(|row| row.try_get_by_index::<i64>(0).expect("count"))
                .unwrap_or(0)
        },
        |left| *left == 0,
    )
    .await;
    assert_eq!(remaining, 0, "every deadline ran");
    let counts = connection
        .query_all_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT m.id, (SELECT COUNT(*) FROM meet_activity_log l \
             WHERE l.meet_id = m.id AND l.kind = 'MEET_CANCELLED') FROM meets m \
             WHERE m.minimum_going IS NOT NULL",
        ))
        .await
        .expect("counts");
    assert_eq!(counts.len(), 200);
    for row in counts {
        let cancelled: i64 = row.try_get_by_index(1).expect("count");
        assert_eq!(cancelled, 1, "each meet decided exactly once");
    }
    let notices = connection
        .query_one_raw(Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT COUNT(*) FROM notices WHERE recipient = 'host@example.com'",
        ))
        .await
        .expect("notices")
        .map(|row| row.try_get_by_index::<i64>(0).expect("count"))
        .unwrap_or(0);
    assert_eq!(notices, 200, "one notice per meet called off");
}

on_both_databases!(
    links_follow_people_to_the_door,
    concurrent_opens_never_pass_max_uses,
    link_pages_cost_the_same,
    enough_people_confirm_a_meet,
    deadlines_call_off_meets_short_of_people,
);
