//! Meets: hosting, discovery, answers with a waitlist, check-ins.

mod common;

use chrono::{Duration, Utc};
use common::{TestServer, assert_nothing_within, code};
use serde_json::{Value, json};

fn at(hours: i64) -> String {
    (Utc::now() + Duration::hours(hours)).to_rfc3339()
}

/// The meet the hosting tests use: in Toronto at the Rose & Crown, for 10,
/// far in the future.
fn stagehands_meet() -> Value {
    json!({
        "title": "Stagehands at the Rose & Crown", "venueName": "Rose & Crown", "region": "Toronto",
        "startsAt": "2099-12-01T19:00:00-05:00", "capacity": 10, "latitude": 43.65, "longitude": -79.38,
    })
}

async fn update_meet(server: &TestServer, token: &str, id: &str, input: Value) -> Value {
    server
        .op(
            Some(token),
            "UpdateMeet",
            json!({ "id": id, "input": input }),
        )
        .await
}

async fn cancel_meet(server: &TestServer, token: &str, id: &str, reason: &str) -> Value {
    server
        .op(
            Some(token),
            "CancelMeet",
            json!({ "id": id, "reason": reason }),
        )
        .await
}

async fn a_new_meet_is_stored_in_utc_with_the_host_going(server: TestServer) {
    let (host, _) = server.register("host").await;
    let created = server
        .ok(
            Some(&host),
            "CreateMeet",
            json!({ "input": stagehands_meet() }),
        )
        .await;
    let meet = &created["createMeet"];
    assert_eq!(
        meet["startsAt"], "2099-12-02T00:00:00+00:00",
        "stored in UTC, any offset accepted"
    );
    assert_eq!(meet["goingCount"], 1, "the host is going");
    assert_eq!(meet["spotsLeft"], 9);
    assert_eq!(meet["status"], "SCHEDULED");
    assert_eq!(meet["visibility"], "PUBLIC");
    assert_eq!(meet["viewerAttendance"]["status"], "GOING");
}

async fn invalid_meets_are_refused_naming_the_field(server: TestServer) {
    let (host, _) = server.register("host").await;
    for (input, field) in [
        (
            json!({ "title": "", "venueName": "v", "startsAt": at(2) }),
            "title",
        ),
        (
            json!({ "title": "x".repeat(121), "venueName": "v", "startsAt": at(2) }),
            "title",
        ),
        (
            json!({ "title": "t", "venueName": "", "startsAt": at(2) }),
            "venueName",
        ),
        (
            json!({ "title": "t", "venueName": "v", "startsAt": at(-2) }),
            "startsAt",
        ),
        (
            json!({ "title": "t", "venueName": "v", "startsAt": at(2), "endsAt": at(1) }),
            "endsAt",
        ),
        (
            json!({ "title": "t", "venueName": "v", "startsAt": at(2), "capacity": 0 }),
            "capacity",
        ),
        (
            json!({ "title": "t", "venueName": "v", "startsAt": at(2), "capacity": 10001 }),
            "capacity",
        ),
        (
            json!({ "title": "t", "venueName": "v", "startsAt": at(2), "latitude": 43.0 }),
            "longitude",
        ),
        (
            json!({ "title": "t", "venueName": "v", "startsAt": at(2), "latitude": 91.0, "longitude": 0.0 }),
            "latitude",
        ),
        (
            json!({ "title": "t", "venueName": "v", "startsAt": at(2), "latitude": 0.0, "longitude": 181.0 }),
            "longitude",
        ),
        // Far-off dates are refused, not overflowed.
        (
            json!({ "title": "t", "venueName": "v", "startsAt": "+262142-12-31T23:00:00Z" }),
            "startsAt",
        ),
        (
            json!({ "title": "t", "venueName": "v", "startsAt": at(2), "endsAt": "+262142-12-31T23:00:00Z" }),
            "endsAt",
        ),
    ] {
        let response = server
            .op(Some(&host), "CreateMeet", json!({ "input": input }))
            .await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{input}");
        assert_eq!(
            response["errors"][0]["extensions"]["field"], field,
            "{input}"
        );
    }
}

async fn anonymous_callers_cannot_host(server: TestServer) {
    let anonymous = server
        .op(
            None,
            "CreateMeet",
            json!({ "input": { "title": "t", "venueName": "v", "startsAt": at(2) } }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");
}

/// A meet called "now" may have started up to an hour ago.
async fn a_meet_may_start_up_to_an_hour_ago(server: TestServer) {
    let (host, _) = server.register("host").await;
    server
        .meet(
            &host,
            json!({ "startsAt": (Utc::now() - Duration::minutes(30)).to_rfc3339() }),
        )
        .await;
}

/// Left out stays, null clears.
async fn updates_keep_what_is_left_out_and_clear_nulls(server: TestServer) {
    let (host, id) = server.host_meet(stagehands_meet()).await;
    let updated = update_meet(
        &server,
        &host,
        &id,
        json!({ "region": null, "description": "Bring cards" }),
    )
    .await;
    let updated = &updated["data"]["updateMeet"];
    assert_eq!(updated["region"], Value::Null, "{updated}");
    assert_eq!(updated["description"], "Bring cards");
    assert_eq!(updated["venueName"], "Rose & Crown");
}

async fn only_the_host_or_an_admin_may_update_a_meet(server: TestServer) {
    let (_, id) = server.host_meet(stagehands_meet()).await;
    let (stranger, _) = server.register("stranger").await;
    let forbidden = update_meet(&server, &stranger, &id, json!({ "title": "Mine" })).await;
    assert_eq!(code(&forbidden), "FORBIDDEN");
    let (admin, _) = server.admin("boss").await;
    server
        .ok(
            Some(&admin),
            "UpdateMeet",
            json!({ "id": id, "input": { "title": "Renamed by an admin" } }),
        )
        .await;
}

async fn capacity_never_drops_below_the_going_count(server: TestServer) {
    let (host, id) = server.host_meet(stagehands_meet()).await;
    let (guest, _) = server.register("guest").await;
    server.rsvp_ok(&guest, &id, "GOING").await;
    let lowered = update_meet(&server, &host, &id, json!({ "capacity": 1 })).await;
    assert_eq!(lowered["errors"][0]["extensions"]["field"], "capacity");
    server
        .ok(
            Some(&host),
            "UpdateMeet",
            json!({ "id": id, "input": { "capacity": 2 } }),
        )
        .await;
}

async fn only_the_host_may_cancel_a_meet(server: TestServer) {
    let (_, id) = server.host_meet(stagehands_meet()).await;
    let (stranger, _) = server.register("stranger").await;
    assert_eq!(
        code(&cancel_meet(&server, &stranger, &id, "no").await),
        "FORBIDDEN"
    );
}

/// Cancelling keeps the reason; twice changes nothing.
async fn a_cancelled_meet_keeps_the_first_reason(server: TestServer) {
    let (host, id) = server.host_meet(stagehands_meet()).await;
    let cancelled = cancel_meet(&server, &host, &id, "Venue flooded").await;
    assert_eq!(cancelled["data"]["cancelMeet"]["status"], "CANCELLED");
    assert_eq!(
        cancelled["data"]["cancelMeet"]["cancellationReason"],
        "Venue flooded"
    );
    let again = cancel_meet(&server, &host, &id, "other").await;
    assert_eq!(
        again["data"]["cancelMeet"]["cancellationReason"],
        "Venue flooded"
    );
    let detail = server.ok(None, "MeetDetail", json!({ "id": id })).await;
    assert_eq!(detail["meet"]["status"], "CANCELLED");
    assert_eq!(detail["meet"]["cancellationReason"], "Venue flooded");
}

async fn a_cancelled_meet_refuses_answers_and_check_ins(server: TestServer) {
    let (host, id) = server.host_meet(stagehands_meet()).await;
    let (guest, _) = server.register("guest").await;
    server.rsvp_ok(&guest, &id, "GOING").await;
    server
        .ok(
            Some(&host),
            "CancelMeet",
            json!({ "id": id, "reason": "Venue flooded" }),
        )
        .await;
    let (late, _) = server.register("late").await;
    assert_eq!(code(&server.rsvp(&late, &id, "GOING").await), "CONFLICT");
    assert_eq!(
        code(
            &server
                .op(Some(&guest), "CheckIn", json!({ "meetId": id }))
                .await
        ),
        "CONFLICT"
    );
}

/// A meet for 2 of "host"'s, with ann going, bob then cat waitlisted and dan
/// a maybe; returns the host's token, the meet's id and ann's, bob's, cat's
/// and dan's tokens.
async fn full_meet_with_a_waitlist(server: &TestServer) -> (String, String, Vec<String>) {
    let (host, meet) = server.host_meet(json!({ "capacity": 2 })).await;
    let mut people = Vec::new();
    for (name, answer) in [
        ("ann", "GOING"),
        ("bob", "GOING"),
        ("cat", "GOING"),
        ("dan", "MAYBE"),
    ] {
        let (token, _) = server.register(name).await;
        server.rsvp_ok(&token, &meet, answer).await;
        people.push(token);
    }
    (host, meet, people)
}

async fn the_same_answer_twice_changes_nothing(server: TestServer) {
    let (_, meet) = server.host_meet(json!({ "capacity": 2 })).await;
    let (ann, _) = server.register("ann").await;
    let first = server.rsvp(&ann, &meet, "GOING").await;
    assert_eq!(first["data"]["rsvp"]["status"], "GOING");
    assert_eq!(first["data"]["rsvp"]["meet"]["spotsLeft"], 0);
    let answered_at = first["data"]["rsvp"]["respondedAt"].clone();
    let same = server.rsvp(&ann, &meet, "GOING").await;
    assert_eq!(
        same["data"]["rsvp"]["respondedAt"], answered_at,
        "the same answer twice changes nothing"
    );
    assert_eq!(same["data"]["rsvp"]["meet"]["goingCount"], 2);
}

/// A maybe on a full meet stays a maybe.
async fn going_to_a_full_meet_joins_the_waitlist(server: TestServer) {
    let (_, meet) = server.host_meet(json!({ "capacity": 2 })).await;
    let mut people = Vec::new();
    for name in ["ann", "bob", "cat", "dan"] {
        people.push(server.register(name).await.0);
    }
    let (ann, bob, cat, dan) = (&people[0], &people[1], &people[2], &people[3]);
    server.rsvp_ok(ann, &meet, "GOING").await;
    assert_eq!(
        server.rsvp(bob, &meet, "GOING").await["data"]["rsvp"]["status"],
        "WAITLISTED"
    );
    assert_eq!(
        server.rsvp(cat, &meet, "GOING").await["data"]["rsvp"]["status"],
        "WAITLISTED"
    );
    assert_eq!(
        server.rsvp(dan, &meet, "MAYBE").await["data"]["rsvp"]["status"],
        "MAYBE"
    );
}

async fn waitlisted_is_not_an_answer_to_give(server: TestServer) {
    let (_, meet) = server.host_meet(json!({ "capacity": 2 })).await;
    let (dan, _) = server.register("dan").await;
    assert_eq!(
        code(&server.rsvp(&dan, &meet, "WAITLISTED").await),
        "BAD_USER_INPUT"
    );
}

async fn anonymous_callers_cannot_answer(server: TestServer) {
    let (_, meet) = server.host_meet(json!({ "capacity": 2 })).await;
    assert_eq!(
        code(
            &server
                .op(None, "Rsvp", json!({ "meetId": meet, "status": "GOING" }))
                .await
        ),
        "UNAUTHENTICATED"
    );
}

/// Ann leaves: the longest-waiting (Bob) goes.
async fn leaving_promotes_the_longest_waiting(server: TestServer) {
    let (_, meet, people) = full_meet_with_a_waitlist(&server).await;
    let left = server.rsvp(&people[0], &meet, "NOT_GOING").await;
    assert_eq!(left["data"]["rsvp"]["meet"]["goingCount"], 2);
    let attendees = server
        .ok(None, "MeetAttendees", json!({ "id": meet }))
        .await;
    let rows: Vec<(String, String)> = attendees["meet"]["attendees"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["user"]["handle"].as_str().unwrap().to_owned(),
                e["node"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("host", "GOING"),
        ("bob", "GOING"),
        ("cat", "WAITLISTED"),
        ("dan", "MAYBE"),
    ];
    let rows: Vec<(&str, &str)> = rows.iter().map(|(h, s)| (h.as_str(), s.as_str())).collect();
    assert_eq!(
        rows, expected,
        "GOING first, then by answer time; NOT_GOING left out"
    );
}

async fn those_not_going_are_listed_when_asked_for(server: TestServer) {
    let (_, meet, people) = full_meet_with_a_waitlist(&server).await;
    server.rsvp_ok(&people[0], &meet, "NOT_GOING").await;
    let not_going = server
        .ok(
            None,
            "MeetAttendees",
            json!({ "id": meet, "status": "NOT_GOING" }),
        )
        .await;
    assert_eq!(
        not_going["meet"]["attendees"]["edges"][0]["node"]["user"]["handle"],
        "ann"
    );
}

async fn raising_capacity_seats_the_waitlist(server: TestServer) {
    let (host, meet, people) = full_meet_with_a_waitlist(&server).await;
    // Ann leaves (Bob takes her seat); Cat still waits.
    server.rsvp_ok(&people[0], &meet, "NOT_GOING").await;
    let raised = server
        .ok(
            Some(&host),
            "UpdateMeet",
            json!({ "id": meet, "input": { "capacity": 5 } }),
        )
        .await;
    assert_eq!(raised["updateMeet"]["goingCount"], 3);
    let mine = server.ok(Some(&people[2]), "MyMeets", json!({})).await;
    assert_eq!(
        mine["me"]["attending"]["edges"][0]["node"]["status"],
        "GOING"
    );
}

/// What a user attends: the user themself only.
async fn only_the_user_sees_what_they_attend(server: TestServer) {
    let (bob, _) = server.register("bob").await;
    server.register("cat").await;
    let others = server
        .op(Some(&bob), "UserProfile", json!({ "handle": "cat" }))
        .await;
    assert!(others.get("errors").is_none());
    let forbidden = server
        .graphql(
            Some(&bob),
            json!({ "query": "{ user(handle: \"cat\") { attending { edges { cursor } } } }" }),
        )
        .await;
    assert_eq!(code(&forbidden), "FORBIDDEN");
}

async fn capacity_holds_under_concurrency(server: TestServer) {
    let (host, _) = server.register("host").await;
    let meet = server.meet(&host, json!({ "capacity": 10 })).await;
    let mut tokens = Vec::new();
    for i in 0..50 {
        tokens.push(server.register(&format!("fan{i:02}")).await.0);
    }
    let server = std::sync::Arc::new(server);
    let answers = futures::future::join_all(tokens.iter().map(|token| {
        let server = server.clone();
        let meet = meet.clone();
        let token = token.clone();
        async move { server.rsvp(&token, &meet, "GOING").await }
    }))
    .await;
    let going = answers
        .iter()
        .filter(|a| a["data"]["rsvp"]["status"] == "GOING")
        .count();
    let waitlisted = answers
        .iter()
        .filter(|a| a["data"]["rsvp"]["status"] == "WAITLISTED")
        .count();
    assert_eq!(
        going + waitlisted,
        50,
        "every answer succeeded: {answers:?}"
    );
    assert_eq!(going, 9, "the host holds the tenth seat");
    let detail = server.ok(None, "MeetDetail", json!({ "id": meet })).await;
    assert_eq!(detail["meet"]["goingCount"], 10);
    assert_eq!(detail["meet"]["spotsLeft"], 0);
    let listed_going = detail["meet"]["attendees"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["status"] == "GOING")
        .count();
    assert_eq!(listed_going, 10);
}

async fn check_ins(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (guest, _) = server.register("guest").await;
    let (maybe, _) = server.register("maybe").await;
    let now_meet = server
        .meet(
            &host,
            json!({ "startsAt": (Utc::now() + Duration::minutes(30)).to_rfc3339() }),
        )
        .await;
    let later = server.meet(&host, json!({ "startsAt": at(5) })).await;
    server.rsvp(&guest, &now_meet, "GOING").await;
    server.rsvp(&guest, &later, "GOING").await;
    server.rsvp(&maybe, &now_meet, "MAYBE").await;

    let first = server
        .ok(Some(&guest), "CheckIn", json!({ "meetId": now_meet }))
        .await;
    assert_eq!(first["checkIn"]["meet"]["checkedInCount"], 1);
    let second = server
        .ok(Some(&guest), "CheckIn", json!({ "meetId": now_meet }))
        .await;
    assert_eq!(
        second["checkIn"]["checkedInAt"], first["checkIn"]["checkedInAt"],
        "a second check-in keeps the first time"
    );
    assert_eq!(second["checkIn"]["meet"]["checkedInCount"], 1);
    assert_eq!(
        code(
            &server
                .op(Some(&maybe), "CheckIn", json!({ "meetId": now_meet }))
                .await
        ),
        "FORBIDDEN"
    );
    assert_eq!(
        code(
            &server
                .op(Some(&guest), "CheckIn", json!({ "meetId": later }))
                .await
        ),
        "CONFLICT",
        "too early"
    );

    // Leaving gives up the check-in too.
    server.rsvp(&guest, &now_meet, "NOT_GOING").await;
    let detail = server
        .ok(None, "MeetDetail", json!({ "id": now_meet }))
        .await;
    assert_eq!(detail["meet"]["checkedInCount"], 0);
}

async fn discovery_filters(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (other, _) = server.register("other_host").await;
    // Toronto, Mississauga (~25 km), Hamilton (~60 km).
    server.meet(&host, json!({ "title": "Broadcast engineers", "venueName": "Red Lion", "region": "Toronto", "latitude": 43.6532, "longitude": -79.3832, "startsAt": at(3) })).await;
    server.meet(&host, json!({ "title": "Sound techs", "venueName": "Iron Horse", "description": "Mixing desk war stories", "region": "Peel", "latitude": 43.5890, "longitude": -79.6441, "startsAt": at(4) })).await;
    server.meet(&other, json!({ "title": "Line cooks", "venueName": "Copper Kettle", "region": "Hamilton", "latitude": 43.2557, "longitude": -79.8711, "startsAt": at(50) })).await;
    let past = server.meet(&host, json!({ "title": "Earlier", "startsAt": (Utc::now() - Duration::minutes(50)).to_rfc3339(), "endsAt": (Utc::now() - Duration::minutes(1)).to_rfc3339() })).await;

    let titles = |data: &Value| -> Vec<String> {
        data["meets"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let feed = |filter: Value| server.ok(None, "MeetFeed", json!({ "filter": filter }));
    assert_eq!(
        titles(&feed(json!({})).await),
        ["Broadcast engineers", "Sound techs", "Line cooks"],
        "soonest first, ended ones left out"
    );
    assert!(titles(&feed(json!({ "includePast": true })).await).contains(&"Earlier".to_owned()));
    assert_eq!(
        titles(&feed(json!({ "region": "toronto" })).await),
        ["Broadcast engineers"]
    );
    assert_eq!(
        titles(&feed(json!({ "search": "WAR mixing" })).await),
        ["Sound techs"],
        "words in description, any case"
    );
    assert_eq!(
        titles(&feed(json!({ "search": "kettle" })).await),
        ["Line cooks"],
        "words in the venue"
    );
    assert_eq!(
        titles(&feed(json!({ "search": "100%" })).await),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(&feed(json!({ "hostHandle": "OTHER_HOST" })).await),
        ["Line cooks"]
    );
    assert_eq!(
        titles(&feed(json!({ "startsAfter": at(10) })).await),
        ["Line cooks"]
    );
    assert_eq!(
        titles(&feed(json!({ "startsBefore": at(10) })).await),
        ["Broadcast engineers", "Sound techs"]
    );
    let near = |radius: f64| {
        feed(json!({ "near": { "latitude": 43.6532, "longitude": -79.3832, "radiusKm": radius } }))
    };
    assert_eq!(titles(&near(10.0).await), ["Broadcast engineers"]);
    assert_eq!(
        titles(&near(40.0).await),
        ["Broadcast engineers", "Sound techs"]
    );
    assert_eq!(titles(&near(100.0).await).len(), 3);
    let bad = server.op(None, "MeetFeed", json!({ "filter": { "near": { "latitude": 43.0, "longitude": -79.0, "radiusKm": 0 } } })).await;
    assert_eq!(code(&bad), "BAD_USER_INPUT");
    assert_eq!(
        code(&server.op(None, "MeetFeed", json!({ "first": 101 })).await),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        code(
            &server
                .op(None, "MeetFeed", json!({ "after": "bogus" }))
                .await
        ),
        "BAD_USER_INPUT"
    );
    let _ = past;
}

async fn pagination_while_meets_are_added(server: TestServer) {
    let (host, _) = server.register("host").await;
    let mut expected = Vec::new();
    for i in 0..25 {
        expected.push(
            server
                .meet(
                    &host,
                    json!({ "title": format!("meet {i}"), "startsAt": at(2 + i) }),
                )
                .await,
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let data = server
            .ok(None, "MeetFeed", json!({ "first": 7, "after": after }))
            .await;
        let connection = &data["meets"];
        for edge in connection["edges"].as_array().unwrap() {
            seen.push(edge["node"]["id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        // Between pages: a meet before the cursor and one after it appear,
        // one already seen is cancelled.
        server
            .meet(&host, json!({ "title": "earlier", "startsAt": at(1) }))
            .await;
        if pages == 1 {
            server
                .ok(Some(&host), "CancelMeet", json!({ "id": expected[0] }))
                .await;
        }
        if connection["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = connection["pageInfo"]["endCursor"]
            .as_str()
            .map(str::to_owned);
    }
    assert!(pages >= 4, "{pages} pages");
    assert_eq!(seen, expected, "no meet repeated or skipped");
}

async fn visibility_of_invite_only_meets(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (invitee, _) = server.register("invitee").await;
    let (stranger, _) = server.register("stranger").await;
    let (admin, _) = server.admin("admin").await;
    let secret = server
        .meet(
            &host,
            json!({ "title": "Secret supper", "visibility": "INVITE_ONLY" }),
        )
        .await;
    server
        .invite_ok(&host, &secret, json!({ "handles": ["invitee"] }))
        .await;

    let sees = |token: Option<String>| {
        let secret = secret.clone();
        let server = &server;
        async move {
            let detail = server
                .ok(token.as_deref(), "MeetDetail", json!({ "id": secret }))
                .await;
            let feed = server.ok(token.as_deref(), "MeetFeed", json!({})).await;
            let hosted = server
                .ok(token.as_deref(), "UserProfile", json!({ "handle": "host" }))
                .await;
            let listed = feed["meets"]["edges"].as_array().unwrap().len();
            let on_profile = hosted["user"]["hostedMeets"]["edges"]
                .as_array()
                .unwrap()
                .len();
            assert_eq!(listed, on_profile);
            (!detail["meet"].is_null(), listed == 1)
        }
    };
    assert_eq!(sees(None).await, (false, false), "anonymous");
    assert_eq!(
        sees(Some(stranger.clone())).await,
        (false, false),
        "stranger"
    );
    assert_eq!(sees(Some(invitee.clone())).await, (true, true), "invitee");
    assert_eq!(sees(Some(host.clone())).await, (true, true), "host");
    assert_eq!(sees(Some(admin.clone())).await, (true, true), "admin");

    // Only the host and invitees may answer; to strangers it does not exist.
    assert_eq!(
        code(&server.rsvp(&stranger, &secret, "GOING").await),
        "NOT_FOUND"
    );
    assert_eq!(
        server.rsvp(&invitee, &secret, "GOING").await["data"]["rsvp"]["status"],
        "GOING"
    );
    assert_eq!(
        code(&server.rsvp(&admin, &secret, "GOING").await),
        "FORBIDDEN"
    );
}

/// A public meet for 4 made invite-only: bob and eve (going) and dan
/// (waitlisted), never invited, lose their answers; one of the two seats
/// freed goes to cat (invited, waitlisted after dan), ann (invited, going)
/// keeps hers, and news of the meet reaches the invited only.
async fn making_a_meet_invite_only_withdraws_the_uninvited(server: TestServer) {
    let (host, meet) = server
        .host_meet(json!({ "title": "Quiet drinks", "capacity": 4 }))
        .await;
    let mut tokens = Vec::new();
    for handle in ["ann", "bob", "eve", "dan", "cat"] {
        tokens.push(server.register(handle).await.0);
    }
    let [ann, bob, eve, dan, cat] = &tokens[..] else {
        unreachable!("five members")
    };
    server
        .invite_ok(&host, &meet, json!({ "handles": ["ann", "cat"] }))
        .await;
    for (token, expected) in [
        (ann, "GOING"),
        (bob, "GOING"),
        (eve, "GOING"),
        (dan, "WAITLISTED"),
        (cat, "WAITLISTED"),
    ] {
        let answered = server.rsvp_ok(token, &meet, "GOING").await;
        assert_eq!(answered["rsvp"]["status"], expected);
    }
    let made_private = update_meet(
        &server,
        &host,
        &meet,
        json!({ "visibility": "INVITE_ONLY" }),
    )
    .await;
    assert!(made_private.get("errors").is_none(), "{made_private}");
    assert_eq!(
        made_private["data"]["updateMeet"]["goingCount"], 3,
        "4 going before: the host, ann, and cat instead of bob and eve"
    );

    let detail = server
        .ok(Some(&host), "MeetDetail", json!({ "id": meet }))
        .await;
    let mut attending: Vec<&str> = detail["meet"]["attendees"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["user"]["handle"].as_str().unwrap())
        .collect();
    attending.sort_unstable();
    assert_eq!(
        attending,
        ["ann", "cat", "host"],
        "bob, eve and dan are out"
    );
    let cat_sees = server
        .ok(Some(cat), "MeetDetail", json!({ "id": meet }))
        .await;
    assert_eq!(cat_sees["meet"]["viewerAttendance"]["status"], "GOING");
    assert!(
        server
            .mail_to("cat@example.com", 2)
            .await
            .iter()
            .any(|m| m.contains("You're in: Quiet drinks")),
        "cat hears she is in"
    );
    for uninvited in [bob, eve, dan] {
        let gone = server
            .ok(Some(uninvited), "MeetDetail", json!({ "id": meet }))
            .await;
        assert!(
            gone["meet"].is_null(),
            "to the uninvited it no longer exists"
        );
    }

    update_meet(&server, &host, &meet, json!({ "venueName": "The Foundry" })).await;
    // Each has had an invitation; cat also her seat.
    for (invited, mails) in [("ann@example.com", 2), ("cat@example.com", 3)] {
        assert!(
            server
                .mail_to(invited, mails)
                .await
                .iter()
                .any(|m| m.contains("New venue: Quiet drinks")),
            "{invited} hears of the new venue"
        );
    }
    assert_nothing_within(
        std::time::Duration::from_millis(500),
        "news of the meet reached bob, eve or dan",
        async || {
            server.mail_files().iter().any(|m| {
                ["bob", "eve", "dan"]
                    .iter()
                    .any(|h| m.contains(&format!("To: {h}@example.com")))
                    && m.contains("Quiet drinks")
            })
        },
    )
    .await;
}

/// Hosts, counts, viewer attendance and attendee users load per page in a
/// constant number of statements.
async fn no_n_plus_one(server: TestServer) {
    let mut hosts = Vec::new();
    for i in 0..12 {
        hosts.push(server.register(&format!("host{i:02}")).await.0);
    }
    let (viewer, _) = server.register("viewer").await;
    let mut meets = Vec::new();
    for i in 0..110 {
        meets.push(
            server
                .meet(
                    &hosts[i % hosts.len()],
                    json!({ "title": format!("meet {i}"), "startsAt": at(2 + i as i64) }),
                )
                .await,
        );
    }
    for meet in meets.iter().take(30) {
        server.rsvp(&viewer, meet, "GOING").await;
    }
    let mut fans = Vec::new();
    for i in 0..100 {
        fans.push(server.register(&format!("fan{i:03}")).await.0);
    }
    let (small, large) = (&meets[100], &meets[101]);
    for (n, fan) in fans.iter().enumerate() {
        if n < 10 {
            server.rsvp(fan, small, "GOING").await;
        }
        server.rsvp(fan, large, "GOING").await;
    }
    let story = json!({ "input": { "title": "War story", "body": "It was a dark and stormy night", "meetId": large } });
    for fan in fans.iter().take(6) {
        server.ok(Some(fan), "PublishStory", story.clone()).await;
    }

    let cost = |token: Option<String>, name: &'static str, variables: Value| {
        let server = &server;
        async move {
            let before = server.statements();
            server.ok(token.as_deref(), name, variables).await;
            server.statements() - before
        }
    };
    for token in [None, Some(viewer.clone())] {
        let feed_10 = cost(token.clone(), "MeetFeed", json!({ "first": 10 })).await;
        let feed_100 = cost(token.clone(), "MeetFeed", json!({ "first": 100 })).await;
        assert_eq!(feed_10, feed_100, "MeetFeed costs the same at 10 and 100");
        assert!(feed_100 <= 6, "MeetFeed costs {feed_100} statements");
        let detail_small = cost(token.clone(), "MeetDetail", json!({ "id": small })).await;
        let detail_large = cost(token.clone(), "MeetDetail", json!({ "id": large })).await;
        assert_eq!(
            detail_small, detail_large,
            "MeetDetail costs the same with 10 and 100 attendees"
        );
        assert!(
            detail_large <= 6,
            "MeetDetail costs {detail_large} statements"
        );
    }
}

/// Titles of a MeetFeed page, in order.
fn feed_titles(data: &Value) -> Vec<String> {
    data["meets"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["title"].as_str().expect("title").to_owned())
        .collect()
}

/// Every title the feed lists for `filter`, page after page of `first`.
async fn all_titles(
    server: &TestServer,
    token: Option<&str>,
    filter: Value,
    first: u32,
) -> Vec<String> {
    let mut titles = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = server
            .ok(
                token,
                "MeetFeed",
                json!({ "filter": filter, "first": first, "after": after }),
            )
            .await;
        titles.extend(feed_titles(&page));
        let info = &page["meets"]["pageInfo"];
        if info["hasNextPage"] != true {
            return titles;
        }
        after = info["endCursor"].clone();
    }
}

/// A search word finds the words it begins, in title, description or venue,
/// any case; every word must be found; results keep the feed's order and
/// visibility, page after page.
async fn search_finds_words_by_their_beginning(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (stranger, _) = server.register("stranger").await;
    server.meet(&host, json!({ "title": "Brewing workshop", "venueName": "Iron Kettle", "description": "Hands-on mash tun", "startsAt": at(2) })).await;
    server
        .meet(
            &host,
            json!({ "title": "Coffee brewers", "venueName": "Bean There", "startsAt": at(3) }),
        )
        .await;
    server
        .meet(
            &host,
            json!({ "title": "Secret brewing", "visibility": "INVITE_ONLY", "startsAt": at(4) }),
        )
        .await;
    server
        .meet(
            &host,
            json!({ "title": "Café über Straße", "venueName": "हिन्दी भवन", "startsAt": at(5) }),
        )
        .await;
    server
        .meet(
            &host,
            json!({ "title": "Supercalifragilistic evening", "startsAt": at(6) }),
        )
        .await;
    let search = |token: Option<String>, text: &str| {
        let server = &server;
        let filter = json!({ "search": text });
        async move { all_titles(server, token.as_deref(), filter, 20).await }
    };
    assert_eq!(
        search(None, "brew").await,
        ["Brewing workshop", "Coffee brewers"]
    );
    assert_eq!(
        search(Some(host.clone()), "BREW").await,
        ["Brewing workshop", "Coffee brewers", "Secret brewing"],
        "the host sees their invite-only meet"
    );
    assert_eq!(
        search(Some(stranger), "brew").await,
        ["Brewing workshop", "Coffee brewers"]
    );
    assert_eq!(
        search(None, "brew kettle").await,
        ["Brewing workshop"],
        "every word, venue too"
    );
    assert_eq!(
        search(None, "mash-tun").await,
        ["Brewing workshop"],
        "the description's words"
    );
    assert!(
        search(None, "ewing").await.is_empty(),
        "a word's beginning, not any part"
    );
    assert!(search(None, "brew pottery").await.is_empty());
    assert_eq!(search(None, "CAFÉ straße").await, ["Café über Straße"]);
    assert_eq!(
        search(None, "हिन्दी").await,
        ["Café über Straße"],
        "combining marks within a word"
    );
    assert_eq!(
        search(None, "supercalifragilisticexpialidocious").await,
        ["Supercalifragilistic evening"],
        "a long word counts by its first sixteen characters"
    );

    // Order and pages: soonest first, each meet once.
    for hour in [30, 10, 50, 20, 40] {
        server
            .meet(
                &host,
                json!({ "title": format!("Jazz {hour}"), "startsAt": at(hour) }),
            )
            .await;
    }
    let jazz = all_titles(&server, None, json!({ "search": "jazz" }), 2).await;
    assert_eq!(
        jazz,
        ["Jazz 10", "Jazz 20", "Jazz 30", "Jazz 40", "Jazz 50"]
    );
    let later = all_titles(
        &server,
        None,
        json!({ "search": "jazz", "startsAfter": at(25), "startsBefore": at(45) }),
        1,
    )
    .await;
    assert_eq!(later, ["Jazz 30", "Jazz 40"], "within a time window");
}

/// What a client types is searched as plain words: quotes, operators of
/// either database's query syntax, wildcards, emoji, SQL, a thousand
/// characters. Never an error; no words at all find nothing.
async fn odd_searches_are_plain_words(server: TestServer) {
    let (host, _) = server.register("host").await;
    server
        .meet(
            &host,
            json!({ "title": "Brewing workshop", "venueName": "Iron Kettle", "startsAt": at(2) }),
        )
        .await;
    server
        .meet(
            &host,
            json!({ "title": "Pottery and kilns", "venueName": "The Shed", "startsAt": at(3) }),
        )
        .await;
    let brewing = vec!["Brewing workshop".to_owned()];
    let nothing: Vec<String> = Vec::new();
    let thousand = "brew ".repeat(200);
    for (text, expected) in [
        (r#""brew""#, &brewing),
        ("brew*", &brewing),
        ("brew:*", &brewing),
        ("(brew)", &brewing),
        ("-brew", &brewing),
        ("!brew", &brewing),
        ("%brew%", &brewing),
        ("brew_", &brewing),
        ("brew & kettle", &brewing),
        ("🍺 brew 🍺", &brewing),
        ("brew\\", &brewing),
        (thousand.as_str(), &brewing),
        ("brew | pottery", &nothing),
        ("brew OR pottery", &nothing),
        ("brew NEAR kettle", &nothing),
        ("NOT brew", &nothing),
        ("'; DROP TABLE meets; --", &nothing),
        ("\"unbalanced", &nothing),
        ("%", &nothing),
        ("_", &nothing),
        ("🍺", &nothing),
        ("*:&|!()", &nothing),
    ] {
        let response = server
            .op(None, "MeetFeed", json!({ "filter": { "search": text } }))
            .await;
        assert!(response.get("errors").is_none(), "{text}: {response:#}");
        assert_eq!(&feed_titles(&response["data"]), expected, "{text}");
    }
    let blank = server
        .ok(None, "MeetFeed", json!({ "filter": { "search": "   " } }))
        .await;
    assert_eq!(
        feed_titles(&blank).len(),
        2,
        "a blank search filters nothing"
    );
    let too_long = server
        .op(
            None,
            "MeetFeed",
            json!({ "filter": { "search": "x".repeat(1_001) } }),
        )
        .await;
    assert_eq!(code(&too_long), "BAD_USER_INPUT");
}

/// The index follows edits: a new title, description or venue is searched,
/// the old one no longer; a meet moved in time is still found.
async fn search_follows_edits(server: TestServer) {
    let (host, _) = server.register("host").await;
    let id = server
        .meet(
            &host,
            json!({ "title": "Pottery night", "startsAt": at(2) }),
        )
        .await;
    let search = |text: &'static str| {
        let server = &server;
        async move { all_titles(server, None, json!({ "search": text }), 20).await }
    };
    assert_eq!(search("pott").await, ["Pottery night"]);
    let updated = update_meet(
        &server,
        &host,
        &id,
        json!({ "title": "Woodturning night", "venueName": "Lathe Hall", "startsAt": at(48) }),
    )
    .await;
    assert!(updated.get("errors").is_none(), "{updated:#}");
    assert!(search("pott").await.is_empty());
    assert_eq!(search("wood lathe").await, ["Woodturning night"]);
    let updated = update_meet(&server, &host, &id, json!({ "startsAt": at(200) })).await;
    assert!(updated.get("errors").is_none(), "{updated:#}");
    assert_eq!(
        search("wood").await,
        ["Woodturning night"],
        "after moving in time"
    );
}

/// `near`: within the exact great-circle radius, soonest first, page after
/// page across grid cells; never a meet without coordinates; a meet that
/// moves is found at its new place only; across the antimeridian too.
async fn near_finds_meets_within_the_radius(server: TestServer) {
    use api::meets::rules::distance_km;
    let (host, _) = server.register("host").await;
    let toronto = (43.6532, -79.3832);
    // East of Toronto, the longitude `km` away.
    let east = |km: f64| {
        let mut lon = toronto.1;
        while distance_km(toronto, (toronto.0, lon)) < km {
            lon += 0.000_01;
        }
        lon
    };
    let near = |lat: f64, lon: f64, radius: f64| json!({ "near": { "latitude": lat, "longitude": lon, "radiusKm": radius } });
    server.meet(&host, json!({ "title": "Inside", "latitude": toronto.0, "longitude": east(4.95), "startsAt": at(3) })).await;
    server.meet(&host, json!({ "title": "Outside", "latitude": toronto.0, "longitude": east(5.05), "startsAt": at(2) })).await;
    server
        .meet(&host, json!({ "title": "Nowhere", "startsAt": at(1) }))
        .await;
    assert_eq!(
        all_titles(&server, None, near(toronto.0, toronto.1, 5.0), 20).await,
        ["Inside"]
    );

    // Twelve meets around the centre, 1 to 34 km away in every direction
    // (many cells), listed soonest first across pages of five.
    for n in 0..12 {
        let bearing = f64::from(n) * 30.0_f64.to_radians();
        let km = 1.0 + 3.0 * f64::from(n);
        let lat = toronto.0 + km / 111.195 * bearing.cos();
        let lon = toronto.1 + km / (111.195 * toronto.0.to_radians().cos()) * bearing.sin();
        server.meet(&host, json!({ "title": format!("Ring {n:02}"), "latitude": lat, "longitude": lon, "startsAt": at(100 - i64::from(n)) })).await;
    }
    let ring = all_titles(&server, None, near(toronto.0, toronto.1, 40.0), 5).await;
    let mut expected: Vec<String> = (0..12).rev().map(|n| format!("Ring {n:02}")).collect();
    expected.insert(0, "Inside".into());
    expected.insert(0, "Outside".into());
    assert_eq!(ring, expected);
    let everywhere = all_titles(&server, None, near(0.0, 0.0, 20_000.0), 50).await;
    assert_eq!(
        everywhere.len(),
        14,
        "the widest radius: every meet with a place"
    );
    assert!(!everywhere.contains(&"Nowhere".to_owned()));

    // A meet that moves to Ottawa is found there, not in Toronto.
    let moving = server.meet(&host, json!({ "title": "Moving", "latitude": toronto.0, "longitude": toronto.1, "startsAt": at(5) })).await;
    let ottawa = (45.4215, -75.6972);
    let updated = update_meet(
        &server,
        &host,
        &moving,
        json!({ "latitude": ottawa.0, "longitude": ottawa.1 }),
    )
    .await;
    assert!(updated.get("errors").is_none(), "{updated:#}");
    assert!(
        !all_titles(&server, None, near(toronto.0, toronto.1, 10.0), 20)
            .await
            .contains(&"Moving".to_owned())
    );
    assert_eq!(
        all_titles(&server, None, near(ottawa.0, ottawa.1, 10.0), 20).await,
        ["Moving"]
    );

    // Either side of 180°.
    server
        .meet(
            &host,
            json!({ "title": "Fiji", "latitude": -17.7, "longitude": 179.99, "startsAt": at(4) }),
        )
        .await;
    assert_eq!(
        all_titles(&server, None, near(-17.7, -179.99, 10.0), 20).await,
        ["Fiji"]
    );
}

on_both_databases!(
    a_new_meet_is_stored_in_utc_with_the_host_going,
    invalid_meets_are_refused_naming_the_field,
    anonymous_callers_cannot_host,
    a_meet_may_start_up_to_an_hour_ago,
    updates_keep_what_is_left_out_and_clear_nulls,
    only_the_host_or_an_admin_may_update_a_meet,
    capacity_never_drops_below_the_going_count,
    only_the_host_may_cancel_a_meet,
    a_cancelled_meet_keeps_the_first_reason,
    a_cancelled_meet_refuses_answers_and_check_ins,
    the_same_answer_twice_changes_nothing,
    going_to_a_full_meet_joins_the_waitlist,
    waitlisted_is_not_an_answer_to_give,
    anonymous_callers_cannot_answer,
    leaving_promotes_the_longest_waiting,
    those_not_going_are_listed_when_asked_for,
    raising_capacity_seats_the_waitlist,
    only_the_user_sees_what_they_attend,
    capacity_holds_under_concurrency,
    check_ins,
    discovery_filters,
    pagination_while_meets_are_added,
    visibility_of_invite_only_meets,
    making_a_meet_invite_only_withdraws_the_uninvited,
    no_n_plus_one,
    the_feed_seeks_the_start_index_from_a_week_back,
    a_meet_lasts_at_most_seven_days,
    search_finds_words_by_their_beginning,
    odd_searches_are_plain_words,
    search_follows_edits,
    near_finds_meets_within_the_radius,
);

/// The feed's "not ended yet" is a range of the start-time index, so its
/// cost follows the page, not the years of meets behind it: the plan seeks
/// the index from a week back instead of walking it from the first meet.
async fn the_feed_seeks_the_start_index_from_a_week_back(server: TestServer) {
    let (host, _) = server.register("host").await;
    server.meet(&host, json!({})).await;
    server.ok(None, "MeetFeed", json!({})).await;
    let sql = server
        .last_sql(&["FROM \"meets\"", "ORDER BY \"meets\".\"starts_at\""])
        .expect("the feed's statement");
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let connection = sea_orm::Database::connect(&server.db.url)
        .await
        .expect("connect");
    let backend = connection.get_database_backend();
    let txn = connection.begin().await.expect("begin");
    let plan = match backend {
        sea_orm::DbBackend::Postgres => {
            // Whatever the table's size, may the index serve the range?
            txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                .await
                .expect("set");
            format!("EXPLAIN {sql}")
        }
        _ => format!("EXPLAIN QUERY PLAN {sql}"),
    };
    let rows = txn
        .query_all_raw(sea_orm::Statement::from_string(backend, plan))
        .await
        .expect("explain");
    let plan: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            row.try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<String>(3))
                .ok()
        })
        .collect();
    let plan = plan.join("\n");
    match backend {
        sea_orm::DbBackend::Postgres => assert!(
            plan.contains("Index Cond") && plan.contains("starts_at >"),
            "{plan}"
        ),
        _ => assert!(
            plan.contains("USING INDEX") && plan.contains("starts_at>?"),
            "{plan}"
        ),
    }
}

/// What lets the feed seek the index: no meet lasts longer than a week.
async fn a_meet_lasts_at_most_seven_days(server: TestServer) {
    let (host, _) = server.register("host").await;
    let starts = chrono::Utc::now() + chrono::Duration::hours(1);
    let create = |days: i64, extra_secs: i64| {
        json!({ "input": {
            "title": "Festival",
            "venueName": "The Park",
            "startsAt": starts.to_rfc3339(),
            "endsAt": (starts + chrono::Duration::days(days) + chrono::Duration::seconds(extra_secs)).to_rfc3339(),
        } })
    };
    server.ok(Some(&host), "CreateMeet", create(7, 0)).await;
    let refused = server.op(Some(&host), "CreateMeet", create(7, 1)).await;
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["field"], "endsAt");
}
