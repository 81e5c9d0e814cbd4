//! Notices as people choose them (issue 17, the part built so far): each
//! kind's channels, reminders before a meet, and calendars, as clients and
//! calendar apps see them.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{TestServer, assert_nothing_within, code};
use icalendar::{Calendar, CalendarComponent, CalendarDateTime, Component, DatePerhapsTime};
use serde_json::{Value, json};

const SETTINGS: &str = "query { me { id notificationPreferences { kind channels } reminderMinutesBefore calendarFeedUrl } }";

async fn settings(server: &TestServer, token: &str) -> Value {
    let response = server
        .graphql(Some(token), json!({ "query": SETTINGS }))
        .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    response["data"]["me"].clone()
}

async fn prefer(server: &TestServer, token: &str, variables: Value) -> Value {
    server
        .op(Some(token), "UpdateNotificationPreferences", variables)
        .await
}

fn channels_of(me: &Value, kind: &str) -> Value {
    me["notificationPreferences"]
        .as_array()
        .expect("preferences")
        .iter()
        .find(|p| p["kind"] == kind)
        .map(|p| p["channels"].clone())
        .unwrap_or_else(|| panic!("no {kind} in {me:#}"))
}

async fn each_kind_goes_where_its_reader_chose(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    let me = settings(&server, &ann).await;
    assert_eq!(
        me["notificationPreferences"].as_array().map(Vec::len),
        Some(7)
    );
    assert_eq!(channels_of(&me, "MEET_CANCELLED"), json!(["EMAIL", "PUSH"]));
    assert_eq!(channels_of(&me, "STORY_ABOUT_MY_MEET"), json!(["PUSH"]));
    assert_eq!(me["reminderMinutesBefore"], 120);

    let chosen = prefer(
        &server,
        &ann,
        json!({ "preferences": [{ "kind": "MEET_CANCELLED", "channels": [] }] }),
    )
    .await;
    let chosen = &chosen["data"]["updateNotificationPreferences"];
    assert_eq!(
        channels_of(chosen, "MEET_CANCELLED"),
        json!([]),
        "{chosen:#}"
    );
    assert_eq!(chosen["reminderMinutesBefore"], 120, "left out: kept");
    for bad in [
        json!({ "preferences": [], "reminderMinutesBefore": 10 }),
        json!({ "preferences": [], "reminderMinutesBefore": 1441 }),
        json!({ "preferences": [
            { "kind": "REMINDER", "channels": ["EMAIL"] },
            { "kind": "REMINDER", "channels": [] },
        ] }),
    ] {
        assert_eq!(
            code(&prefer(&server, &ann, bad.clone()).await),
            "BAD_USER_INPUT",
            "{bad}"
        );
    }
    let off = prefer(
        &server,
        &bob,
        json!({ "preferences": [], "reminderMinutesBefore": null }),
    )
    .await;
    assert_eq!(
        off["data"]["updateNotificationPreferences"]["reminderMinutesBefore"],
        Value::Null
    );
    let anonymous = server
        .op(
            None,
            "UpdateNotificationPreferences",
            json!({ "preferences": [] }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");

    let meet = server.meet(&host, json!({ "title": "Quiz night" })).await;
    server.rsvp_ok(&ann, &meet, "GOING").await;
    server.rsvp_ok(&bob, &meet, "GOING").await;
    server
        .ok(Some(&host), "CancelMeet", json!({ "id": meet }))
        .await;
    let to_bob = server.mail_to("bob@example.com", 1).await;
    assert!(to_bob[0].contains("Cancelled: Quiz night"), "{to_bob:?}");
    assert_nothing_within(Duration::from_secs(1), "a mail to ann", async || {
        server
            .mail_files()
            .iter()
            .any(|m| m.contains("To: ann@example.com"))
    })
    .await;
}

/// A reminder goes once, its lead time before the start, to those still
/// going who want one; none for a meet called off.
async fn reminders_come_before_the_start(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    let (cal, _) = server.register("cal").await;
    prefer(
        &server,
        &ann,
        json!({ "preferences": [], "reminderMinutesBefore": 15 }),
    )
    .await;
    prefer(
        &server,
        &cal,
        json!({ "preferences": [], "reminderMinutesBefore": 15 }),
    )
    .await;
    prefer(
        &server,
        &bob,
        json!({ "preferences": [], "reminderMinutesBefore": null }),
    )
    .await;
    // Due three seconds from now for a 15-minute lead time.
    let starts = (Utc::now() + chrono::Duration::seconds(15 * 60 + 3)).to_rfc3339();
    let soon = server
        .meet(&host, json!({ "title": "Soon drinks", "startsAt": starts }))
        .await;
    let off = server
        .meet(&host, json!({ "title": "Off drinks", "startsAt": starts }))
        .await;
    server.rsvp_ok(&ann, &soon, "GOING").await;
    server.rsvp_ok(&bob, &soon, "GOING").await;
    server.rsvp_ok(&cal, &soon, "GOING").await;
    server.rsvp_ok(&cal, &soon, "NOT_GOING").await;
    server.rsvp_ok(&ann, &off, "GOING").await;
    server
        .ok(Some(&host), "CancelMeet", json!({ "id": off }))
        .await;

    let to_ann = server.mail_to("ann@example.com", 2).await;
    let reminders: Vec<&String> = to_ann
        .iter()
        .filter(|m| m.contains("Subject: Soon"))
        .collect();
    assert_eq!(reminders.len(), 1, "{to_ann:?}");
    assert!(reminders[0].contains("Soon drinks"));
    assert_nothing_within(Duration::from_secs(2), "another reminder", async || {
        server
            .mail_files()
            .iter()
            .filter(|m| m.contains("Subject: Soon"))
            .count()
            > 1
    })
    .await;
    let anyone_else = server
        .mail_files()
        .iter()
        .filter(|m| m.contains("Subject: Soon") && !m.contains("To: ann@example.com"))
        .count();
    assert_eq!(anyone_else, 0, "bob wants none, cal is not going");
}

/// The first event of an iCalendar file.
fn first_event(text: &str) -> icalendar::Event {
    let calendar: Calendar = text.parse().expect("an iCalendar file");
    calendar
        .components
        .into_iter()
        .find_map(|c| match c {
            CalendarComponent::Event(event) => Some(event),
            _ => None,
        })
        .expect("an event")
}

/// GETs a calendar address the server gave (under the public URL).
async fn fetch(server: &TestServer, url: &str) -> (u16, String) {
    let local = url.replacen("https://tweetmeet.test", &server.url(""), 1);
    let response = reqwest::get(&local).await.expect("GET calendar");
    let status = response.status().as_u16();
    if status == 200 {
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(kind.starts_with("text/calendar"), "{kind}");
    }
    (status, response.text().await.expect("body"))
}

async fn calendar_url(server: &TestServer, token: Option<&str>, meet: &str) -> Option<String> {
    server
        .ok(token, "MeetCalendar", json!({ "id": meet }))
        .await["meet"]["calendarUrl"]
        .as_str()
        .map(str::to_owned)
}

async fn calendars_follow_meets_and_who_may_see_them(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let public = server
        .meet(
            &host,
            json!({ "title": "Open mic", "timeZone": "America/Toronto", "description": "Bring a song" }),
        )
        .await;
    let url = calendar_url(&server, None, &public).await.expect("a url");
    let (status, text) = fetch(&server, &url).await;
    assert_eq!(status, 200, "{text}");
    let event = first_event(&text);
    assert_eq!(event.get_summary(), Some("Open mic"));
    assert_eq!(
        event.get_uid(),
        Some(format!("{public}@tweetmeet").as_str())
    );
    assert_eq!(event.property_value("STATUS"), Some("CONFIRMED"));
    match event.get_start() {
        Some(DatePerhapsTime::DateTime(CalendarDateTime::WithTimezone { tzid, .. })) => {
            assert_eq!(tzid, "America/Toronto");
        }
        other => panic!("a start in the meet's zone: {other:?}"),
    }
    let sequence = |event: &icalendar::Event| {
        event
            .property_value("SEQUENCE")
            .and_then(|s| s.parse::<u32>().ok())
            .expect("a SEQUENCE")
    };
    let before = sequence(&event);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server
        .ok(
            Some(&host),
            "UpdateMeet",
            json!({ "id": public, "input": { "title": "Open mic night" } }),
        )
        .await;
    let changed = first_event(&fetch(&server, &url).await.1);
    assert_eq!(changed.get_summary(), Some("Open mic night"));
    assert!(sequence(&changed) > before, "SEQUENCE rises with a change");
    server
        .ok(Some(&host), "CancelMeet", json!({ "id": public }))
        .await;
    let cancelled = first_event(&fetch(&server, &url).await.1);
    assert_eq!(cancelled.property_value("STATUS"), Some("CANCELLED"));

    // An invite-only meet: only through an address given to someone who may
    // see it, and only while they may.
    let private = server
        .meet(
            &host,
            json!({ "title": "Back room", "visibility": "INVITE_ONLY" }),
        )
        .await;
    let plain = url.replace(&public, &private);
    assert_eq!(fetch(&server, &plain).await.0, 404, "anonymous");
    let invited = server
        .invite_ok(&host, &private, json!({ "handles": ["ann"] }))
        .await;
    let invitation = invited["inviteToMeet"][0]["id"].clone();
    let ann_url = calendar_url(&server, Some(&ann), &private)
        .await
        .expect("a url");
    assert_eq!(fetch(&server, &ann_url).await.0, 200);
    let forged = format!("{}x", ann_url);
    assert_eq!(
        fetch(&server, &forged).await.0,
        404,
        "a key that is not the server's"
    );
    server
        .ok(Some(&host), "RevokeInvitation", json!({ "id": invitation }))
        .await;
    assert_eq!(
        fetch(&server, &ann_url).await.0,
        404,
        "no longer hers to see"
    );

    // Ann's own feed: the meets she answered; rotating ends the old address.
    let listed = server.meet(&host, json!({ "title": "Karaoke" })).await;
    server.rsvp_ok(&ann, &listed, "MAYBE").await;
    let feed = settings(&server, &ann).await["calendarFeedUrl"]
        .as_str()
        .expect("a feed")
        .to_owned();
    let (status, text) = fetch(&server, &feed).await;
    assert_eq!(status, 200);
    let calendar: Calendar = text.parse().expect("a feed");
    let titles: Vec<String> = calendar
        .components
        .iter()
        .filter_map(|c| match c {
            CalendarComponent::Event(event) => event.get_summary().map(str::to_owned),
            _ => None,
        })
        .collect();
    assert_eq!(titles, ["Karaoke"], "{text}");
    let rotated = server.ok(Some(&ann), "RotateCalendarFeed", json!({})).await;
    let new_feed = rotated["rotateCalendarFeed"].as_str().expect("a url");
    assert_ne!(new_feed, feed);
    assert_eq!(
        fetch(&server, &feed).await.0,
        404,
        "the old address is dead"
    );
    assert_eq!(fetch(&server, new_feed).await.0, 200);
    let host_view = server
        .graphql(
            Some(&host),
            json!({ "query": format!("query {{ user(handle: \"ann\") {{ calendarFeedUrl }} }}") }),
        )
        .await;
    assert_eq!(
        host_view["data"]["user"]["calendarFeedUrl"],
        Value::Null,
        "{host_view:#}"
    );
}

on_both_databases!(
    each_kind_goes_where_its_reader_chose,
    reminders_come_before_the_start,
    calendars_follow_meets_and_who_may_see_them,
);
