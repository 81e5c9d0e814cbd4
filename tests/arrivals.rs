//! Who shows up (issue 15), as clients see it: arrivals on the night
//! (`setArrival`, the live counts, the end of the night), newcomers and
//! veterans, what attendees ask of the night (`updateAttendance`), and the
//! guest list's privacy walked setting by setting and viewer by viewer
//! through the list and the live event.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{
    TestServer, code,
    ws::{Protocol, WsClient},
};
use serde_json::{Value, json};

fn in_minutes(minutes: i64) -> String {
    (Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339()
}

async fn set_arrival(
    server: &TestServer,
    token: &str,
    meet: &str,
    state: &str,
    eta: Option<i64>,
) -> Value {
    server
        .op(
            Some(token),
            "SetArrival",
            json!({ "meetId": meet, "state": state, "etaMinutes": eta }),
        )
        .await
}

async fn arrive(server: &TestServer, token: &str, meet: &str, state: &str) -> Value {
    let response = set_arrival(server, token, meet, state, None).await;
    assert!(response.get("errors").is_none(), "{state}: {response:#}");
    response["data"]["setArrival"].clone()
}

async fn who_is_here(
    server: &TestServer,
    token: Option<&str>,
    meet: &str,
    arrival: Value,
) -> Value {
    server
        .ok(
            token,
            "WhoIsHere",
            json!({ "id": meet, "arrival": arrival }),
        )
        .await["meet"]
        .clone()
}

/// Handles on a WhoIsHere page, in order.
fn handles(meet: &Value) -> Vec<String> {
    meet["attendees"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            e["node"]["user"]["handle"]
                .as_str()
                .expect("handle")
                .to_owned()
        })
        .collect()
}

/// A `MeetActivity` subscriber on `meet`, under id "m".
async fn watch(server: &TestServer, token: Option<&str>, meet: &str) -> WsClient {
    let mut client = WsClient::connect(&server.ws_url(), Protocol::TransportWs).await;
    client.init(token).await.expect("connection acknowledged");
    client
        .subscribe(
            "m",
            &server.contract.operation("MeetActivity"),
            "MeetActivity",
            json!({ "meetId": meet }),
        )
        .await;
    client
}

/// Neither protocol acknowledges a subscription: give the server time to
/// register it before events are made.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

async fn through_the_night(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (ben, _) = server.register("ben").await;
    let meet = server
        .meet(&host, json!({ "startsAt": in_minutes(30) }))
        .await;
    server.rsvp_ok(&ann, &meet, "GOING").await;
    server.rsvp_ok(&ben, &meet, "MAYBE").await;
    let mut live = watch(&server, None, &meet).await;
    settle().await;

    let before = Utc::now();
    let on_the_way = arrive(&server, &ann, &meet, "ON_MY_WAY").await;
    assert_eq!(on_the_way["arrival"], "ON_MY_WAY");
    assert_eq!(on_the_way["etaAt"], Value::Null, "no ETA given");
    let with_eta = set_arrival(&server, &ann, &meet, "ON_MY_WAY", Some(15)).await;
    let eta: DateTime<Utc> = with_eta["data"]["setArrival"]["etaAt"]
        .as_str()
        .and_then(|at| at.parse().ok())
        .unwrap_or_else(|| panic!("an etaAt: {with_eta:#}"));
    assert!(eta >= before + chrono::Duration::minutes(15));
    assert!(eta <= Utc::now() + chrono::Duration::minutes(15));
    for _ in 0..2 {
        let event = live.next_payload("m").await;
        let activity = &event["data"]["meetActivity"];
        assert_eq!(activity["kind"], "ARRIVAL_CHANGED", "{event:#}");
        assert_eq!(activity["attendance"]["arrival"], "ON_MY_WAY");
        assert_eq!(activity["attendance"]["user"]["handle"], "ann");
        assert_eq!(activity["meet"]["onTheWayCount"], 1);
    }
    let meet_now = who_is_here(&server, Some(&host), &meet, Value::Null).await;
    assert_eq!(meet_now["onTheWayCount"], 1);
    assert_eq!(meet_now["hereCount"], 0);
    assert_eq!(
        handles(&who_is_here(&server, Some(&host), &meet, json!("ON_MY_WAY")).await),
        ["ann"]
    );

    let here = arrive(&server, &ann, &meet, "HERE").await;
    assert_eq!(here["arrival"], "HERE");
    assert!(here["checkedInAt"].is_string());
    assert_eq!(here["etaAt"], Value::Null);
    let event = live.next_payload("m").await;
    let activity = &event["data"]["meetActivity"];
    assert_eq!(activity["kind"], "CHECKED_IN", "{event:#}");
    assert_eq!(activity["attendance"]["arrival"], "HERE");
    assert_eq!(activity["meet"]["hereCount"], 1);
    assert_eq!(activity["meet"]["onTheWayCount"], 0);
    assert_eq!(activity["meet"]["checkedInCount"], 1);
    assert_eq!(
        handles(&who_is_here(&server, Some(&host), &meet, json!("HERE")).await),
        ["ann"]
    );
    // The same state again changes nothing and says nothing.
    arrive(&server, &ann, &meet, "HERE").await;
    assert_eq!(
        code(&set_arrival(&server, &ann, &meet, "NOT_YET", None).await),
        "CONFLICT",
        "NOT_YET only takes back an ON_MY_WAY"
    );
    assert_eq!(
        code(&set_arrival(&server, &ann, &meet, "ON_MY_WAY", None).await),
        "CONFLICT",
        "here already"
    );

    let left = arrive(&server, &ann, &meet, "LEFT").await;
    assert_eq!(left["arrival"], "LEFT");
    assert!(left["leftAt"].is_string());
    assert_eq!(
        left["checkedInAt"], here["checkedInAt"],
        "the check-in stays"
    );
    let event = live.next_payload("m").await;
    assert_eq!(event["data"]["meetActivity"]["kind"], "ARRIVAL_CHANGED");
    assert_eq!(event["data"]["meetActivity"]["meet"]["hereCount"], 0);
    assert_eq!(event["data"]["meetActivity"]["meet"]["checkedInCount"], 1);
    let back = arrive(&server, &ann, &meet, "HERE").await;
    assert_eq!(back["leftAt"], Value::Null);
    assert_eq!(
        back["checkedInAt"], here["checkedInAt"],
        "the first check-in's time"
    );
    assert_eq!(
        live.next_payload("m").await["data"]["meetActivity"]["meet"]["checkedInCount"],
        1
    );

    // Refusals: not GOING, out-of-range ETA, ETA without ON_MY_WAY, anonymous.
    assert_eq!(
        code(&set_arrival(&server, &ben, &meet, "HERE", None).await),
        "FORBIDDEN"
    );
    let later = server
        .meet(&host, json!({ "startsAt": in_minutes(300) }))
        .await;
    server.rsvp_ok(&ben, &later, "GOING").await;
    assert_eq!(
        code(&set_arrival(&server, &ben, &later, "ON_MY_WAY", None).await),
        "CONFLICT",
        "on my way opens three hours before"
    );
    server.rsvp_ok(&ben, &meet, "GOING").await;
    for eta in [-1, 241] {
        assert_eq!(
            code(&set_arrival(&server, &ben, &meet, "ON_MY_WAY", Some(eta)).await),
            "BAD_USER_INPUT"
        );
    }
    assert_eq!(
        code(&set_arrival(&server, &ben, &meet, "HERE", Some(5)).await),
        "BAD_USER_INPUT"
    );
    let anonymous = server
        .op(
            None,
            "SetArrival",
            json!({ "meetId": meet, "state": "HERE" }),
        )
        .await;
    assert_eq!(code(&anonymous), "UNAUTHENTICATED");

    // Answering again starts the night over, and the counts follow.
    arrive(&server, &ben, &meet, "ON_MY_WAY").await;
    server.rsvp_ok(&ann, &meet, "MAYBE").await;
    server.rsvp_ok(&ben, &meet, "NOT_GOING").await;
    let meet_now = who_is_here(&server, Some(&host), &meet, Value::Null).await;
    assert_eq!(meet_now["hereCount"], 0);
    assert_eq!(meet_now["onTheWayCount"], 0);
    let ann_row = &meet_now["attendees"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["node"]["user"]["handle"] == "ann")
        .expect("ann is listed")["node"];
    assert_eq!(ann_row["arrival"], "NOT_YET");
    assert_eq!(ann_row["checkedInAt"], Value::Null);
}

/// Once the meet ends, whoever is here reads LEFT and whoever is on their
/// way NOT_YET, with nothing run at the end.
async fn the_night_ends(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (ben, _) = server.register("ben").await;
    let ends_at = Utc::now() + chrono::Duration::seconds(6);
    let meet = server
        .meet(
            &host,
            json!({ "startsAt": in_minutes(-30), "endsAt": ends_at.to_rfc3339() }),
        )
        .await;
    server.rsvp_ok(&ann, &meet, "GOING").await;
    server.rsvp_ok(&ben, &meet, "GOING").await;
    arrive(&server, &ann, &meet, "HERE").await;
    arrive(&server, &ben, &meet, "ON_MY_WAY").await;
    let during = who_is_here(&server, Some(&host), &meet, Value::Null).await;
    assert_eq!(
        (during["hereCount"].clone(), during["onTheWayCount"].clone()),
        (json!(1), json!(1))
    );

    let wait = (ends_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    let after = who_is_here(&server, Some(&host), &meet, Value::Null).await;
    assert_eq!(after["hereCount"], 0);
    assert_eq!(after["onTheWayCount"], 0);
    assert_eq!(after["goingCount"], 3);
    let rows = after["attendees"]["edges"].as_array().expect("edges");
    let row = |handle: &str| {
        rows.iter()
            .find(|e| e["node"]["user"]["handle"] == handle)
            .map(|e| e["node"].clone())
            .expect("listed")
    };
    assert_eq!(row("ann")["arrival"], "LEFT");
    assert_eq!(row("ben")["arrival"], "NOT_YET");
    assert_eq!(row("ben")["etaAt"], Value::Null);
    assert_eq!(
        handles(&who_is_here(&server, Some(&host), &meet, json!("LEFT")).await),
        ["ann"]
    );
    assert!(handles(&who_is_here(&server, Some(&host), &meet, json!("HERE")).await).is_empty());
    assert_eq!(
        code(&set_arrival(&server, &ann, &meet, "LEFT", None).await),
        "CONFLICT",
        "the meet has ended"
    );
}

/// Newcomers are told apart from veterans by check-ins at earlier meets, and
/// say what they would like from the night.
async fn newcomers_and_veterans(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (vet, _) = server.register("vet").await;
    let (newbie, _) = server.register("newbie").await;
    let (lurker, _) = server.register("lurker").await;
    let tonight = server
        .meet(&host, json!({ "startsAt": in_minutes(30) }))
        .await;
    let next_week = server
        .meet(&host, json!({ "startsAt": in_minutes(60 * 24 * 7) }))
        .await;
    for meet in [&tonight, &next_week] {
        server.rsvp_ok(&vet, meet, "GOING").await;
        server.rsvp_ok(&newbie, meet, "GOING").await;
    }
    arrive(&server, &host, &tonight, "HERE").await;
    arrive(&server, &vet, &tonight, "HERE").await;

    let row = |meet: &Value, handle: &str| {
        meet["attendees"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .find(|e| e["node"]["user"]["handle"] == handle)
            .map(|e| e["node"].clone())
            .unwrap_or_else(|| panic!("{handle} listed"))
    };
    let first = who_is_here(&server, Some(&newbie), &tonight, Value::Null).await;
    // Tonight is everyone's first: nobody checked in anywhere before it.
    assert_eq!(first["newcomerCount"], 3);
    assert_eq!(row(&first, "vet")["newcomer"], true);
    assert_eq!(row(&first, "vet")["user"]["meetsAttended"], 1);
    let later = who_is_here(&server, Some(&newbie), &next_week, Value::Null).await;
    assert_eq!(later["newcomerCount"], 1, "only newbie is new by next week");
    assert_eq!(row(&later, "vet")["newcomer"], false);
    assert_eq!(row(&later, "host")["newcomer"], false);
    assert_eq!(row(&later, "newbie")["newcomer"], true);
    assert_eq!(row(&later, "newbie")["user"]["meetsAttended"], 0);

    let wishes = |token: &str, input: Value| {
        let server = &server;
        let token = token.to_owned();
        let meet = next_week.clone();
        async move {
            server
                .op(
                    Some(&token),
                    "UpdateAttendance",
                    json!({ "meetId": meet, "input": input }),
                )
                .await
        }
    };
    let asked = wishes(
        &newbie,
        json!({ "introduceMe": true, "hopingToMeet": "  people who build bridges  " }),
    )
    .await;
    let asked = &asked["data"]["updateAttendance"];
    assert_eq!(asked["introduceMe"], true, "{asked:#}");
    assert_eq!(asked["hopingToMeet"], "people who build bridges");
    let kept = wishes(&newbie, json!({ "introduceMe": false })).await;
    assert_eq!(
        kept["data"]["updateAttendance"]["hopingToMeet"],
        "people who build bridges"
    );
    let cleared = wishes(&newbie, json!({ "hopingToMeet": null })).await;
    assert_eq!(
        cleared["data"]["updateAttendance"]["hopingToMeet"],
        Value::Null
    );
    wishes(
        &newbie,
        json!({ "introduceMe": true, "hopingToMeet": "veterans" }),
    )
    .await;
    let listed = row(
        &who_is_here(&server, Some(&host), &next_week, Value::Null).await,
        "newbie",
    );
    assert_eq!(
        (
            listed["introduceMe"].clone(),
            listed["hopingToMeet"].clone()
        ),
        (json!(true), json!("veterans"))
    );

    for bad in [
        json!({ "hopingToMeet": "x".repeat(141) }),
        json!({ "hopingToMeet": "line\nbreak" }),
        json!({ "hopingToMeet": "nul\u{0}" }),
        json!({ "introduceMe": null }),
    ] {
        assert_eq!(
            code(&wishes(&newbie, bad.clone()).await),
            "BAD_USER_INPUT",
            "{bad}"
        );
    }
    assert_eq!(
        code(&wishes(&lurker, json!({ "introduceMe": true })).await),
        "FORBIDDEN",
        "only someone who answered"
    );
}

/// A page of attendees costs the same statements at 10 rows as at 100,
/// newcomer flags and attendance records included.
async fn guest_list_pages_cost_the_same(server: TestServer) {
    let (host, _) = server.register("host").await;
    let small = server
        .meet(&host, json!({ "startsAt": in_minutes(30) }))
        .await;
    let large = server
        .meet(&host, json!({ "startsAt": in_minutes(30) }))
        .await;
    for i in 0..100 {
        let (fan, _) = server.register(&format!("fan{i:03}")).await;
        if i < 10 {
            server.rsvp_ok(&fan, &small, "GOING").await;
        }
        server.rsvp_ok(&fan, &large, "GOING").await;
        if i % 3 == 0 {
            arrive(&server, &fan, &large, "HERE").await;
        }
    }
    let query = server
        .contract
        .operation("WhoIsHere")
        .replace("first: 50", "first: 100");
    let cost = |meet: &str| {
        let server = &server;
        let body =
            json!({ "query": query, "operationName": "WhoIsHere", "variables": { "id": meet } });
        let host = host.clone();
        async move {
            let before = server.statements();
            let response = server.graphql(Some(&host), body).await;
            assert!(response.get("errors").is_none(), "{response:#}");
            let rows = response["data"]["meet"]["attendees"]["edges"]
                .as_array()
                .map_or(0, Vec::len);
            (server.statements() - before, rows)
        }
    };
    let (small_cost, small_rows) = cost(&small).await;
    let (large_cost, large_rows) = cost(&large).await;
    assert_eq!((small_rows, large_rows), (11, 100));
    assert_eq!(
        small_cost, large_cost,
        "10 or 100 attendees, the same statements"
    );
    assert!(large_cost <= 7, "WhoIsHere costs {large_cost} statements");
}

/// The kinds of viewer the guest list's privacy tells apart.
const VIEWERS: [&str; 9] = [
    "anonymous",
    "member",
    "maybe",
    "going",
    "waitlisted",
    "arrived",
    "left",
    "host",
    "admin",
];

/// Whether `viewer` sees names under `setting` (the README's rule).
fn sees_names(setting: &str, viewer: &str) -> bool {
    match viewer {
        "host" | "admin" => true,
        _ => match setting {
            "PUBLIC" => true,
            "ATTENDEES" => ["maybe", "going", "waitlisted", "arrived", "left"].contains(&viewer),
            "ARRIVED" => ["arrived", "left"].contains(&viewer),
            _ => false,
        },
    }
}

/// Each guest-list setting × each kind of viewer, through `WhoIsHere` and
/// a live `MeetActivity` event about someone else.
async fn guest_list_privacy_matrix(server: TestServer) {
    let mut tokens = std::collections::HashMap::new();
    for viewer in VIEWERS.iter().filter(|v| **v != "anonymous") {
        let (token, _) = if *viewer == "admin" {
            server.admin(viewer).await
        } else {
            server.register(viewer).await
        };
        tokens.insert(*viewer, token);
    }
    let (sam, _) = server.register("sam").await;
    let token = |viewer: &str| tokens.get(viewer).cloned();
    for setting in ["PUBLIC", "ATTENDEES", "ARRIVED", "HOST"] {
        let host = token("host").expect("host");
        // Seats for the host, going, arrived and left: waitlisted waits.
        let meet = server
            .meet(
                &host,
                json!({ "startsAt": in_minutes(30), "capacity": 4, "attendeeVisibility": setting }),
            )
            .await;
        for (viewer, answer) in [
            ("maybe", "MAYBE"),
            ("going", "GOING"),
            ("arrived", "GOING"),
            ("left", "GOING"),
            ("waitlisted", "GOING"),
        ] {
            let data = server.rsvp_ok(&tokens[viewer], &meet, answer).await;
            if viewer == "waitlisted" {
                assert_eq!(data["rsvp"]["status"], "WAITLISTED");
            }
        }
        arrive(&server, &tokens["arrived"], &meet, "HERE").await;
        arrive(&server, &tokens["left"], &meet, "HERE").await;
        arrive(&server, &tokens["left"], &meet, "LEFT").await;

        let mut subscribers = Vec::new();
        for viewer in VIEWERS {
            subscribers.push((
                viewer,
                watch(&server, token(viewer).as_deref(), &meet).await,
            ));
        }
        settle().await;
        server.rsvp_ok(&sam, &meet, "MAYBE").await;

        for (viewer, mut subscriber) in subscribers {
            let expected = sees_names(setting, viewer);
            let case = format!("{setting} × {viewer}");
            let listed = who_is_here(&server, token(viewer).as_deref(), &meet, Value::Null).await;
            assert_eq!(listed["attendeeVisibility"], setting, "{case}");
            assert_eq!(listed["viewerCanSeeAttendees"], expected, "{case}");
            assert_eq!(listed["goingCount"], 4, "{case}: counts are everyone's");
            assert_eq!(listed["hereCount"], 1, "{case}");
            let names = handles(&listed);
            if expected {
                assert!(names.contains(&"sam".to_owned()), "{case}: {names:?}");
                assert!(names.contains(&"going".to_owned()), "{case}: {names:?}");
            } else {
                let own: Vec<String> = match viewer {
                    "anonymous" | "member" => Vec::new(),
                    own => vec![own.to_owned()],
                };
                assert_eq!(names, own, "{case}: only their own attendance");
            }
            let event = subscriber.next_payload("m").await;
            let activity = &event["data"]["meetActivity"];
            assert_eq!(activity["kind"], "RSVP_CHANGED", "{case}: {event:#}");
            assert_eq!(activity["meet"]["goingCount"], 4, "{case}");
            if expected {
                assert_eq!(activity["attendance"]["user"]["handle"], "sam", "{case}");
            } else {
                assert_eq!(activity["attendance"], Value::Null, "{case}");
            }
        }
    }
}

on_both_databases!(
    through_the_night,
    the_night_ends,
    newcomers_and_veterans,
    guest_list_pages_cost_the_same,
    guest_list_privacy_matrix,
);
