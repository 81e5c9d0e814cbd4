//! Hostile query shapes: whatever a document's size within the body limit,
//! the server answers or refuses it at once, with BAD_USER_INPUT, and keeps
//! serving everyone else. (The work is bounded in the server's own unit
//! tests, `graphql::limits`, by a counter; nothing here times anything.)

mod common;

use std::fmt::Write;

use common::{
    TestDatabase, TestServer, code,
    ws::{Protocol, Refusal, WsClient},
};
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start(TestDatabase::sqlite().await).await
}

/// `levels` fragments, each spreading the next `fan_out` times.
fn fan_out(levels: usize, fan_out: usize) -> String {
    let mut query = String::from("query Q { ...F0 }\n");
    for level in 0..levels {
        write!(query, "fragment F{level} on Query {{").unwrap();
        for _ in 0..fan_out {
            write!(query, " ...F{}", level + 1).unwrap();
        }
        query.push_str(" }\n");
    }
    writeln!(
        query,
        "fragment F{levels} on Query {{ meets {{ edges {{ cursor }} }} }}"
    )
    .unwrap();
    query
}

async fn refused(server: &TestServer, query: &str) -> Value {
    let response = server.graphql(None, json!({ "query": query })).await;
    assert_eq!(code(&response), "BAD_USER_INPUT", "{response:.300}");
    assert!(
        response.get("data").is_none_or(Value::is_null),
        "{response:.300}"
    );
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doubling_fragments_are_refused_at_once() {
    let server = server().await;
    let query = fan_out(40, 2);
    assert!(query.len() < 2_000, "about a kilobyte");
    let response = refused(&server, &query).await;
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("fragments are expanded"),
        "{response}"
    );
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert!(health.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_spreads_by_eight_levels_are_refused_at_once() {
    let server = server().await;
    refused(&server, &fan_out(8, 10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_refused_at_once_leave_the_server_serving() {
    let server = server().await;
    let query = fan_out(40, 2);
    let hostile = (0..4).map(|_| refused(&server, &query));
    let (_, health) = tokio::join!(
        futures::future::join_all(hostile),
        reqwest::get(server.url("/healthz"))
    );
    assert!(health.unwrap().status().is_success());
    let meets = server
        .graphql(None, json!({ "query": "{ meets { edges { cursor } } }" }))
        .await;
    assert!(meets.get("errors").is_none(), "{meets}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_over_100_kb_is_refused_unparsed() {
    let server = server().await;
    let query = format!("{{ me {{ id }} }} #{}", "x".repeat(100_000));
    let response = refused(&server, &query).await;
    assert!(
        response
            .to_string()
            .contains("send large values as variables"),
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_aliases_are_refused() {
    let server = server().await;
    let mut query = String::from("{");
    for n in 0..5_000 {
        write!(query, " a{n}: __typename").unwrap();
    }
    query.push('}');
    refused(&server, &query).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_deeper_than_the_parser_allows_is_refused() {
    let server = server().await;
    // About 80 KB, under the document limit: far deeper than the parser goes.
    let depth = 20_000;
    let query = format!("{{{}{}", "me {".repeat(depth), "}".repeat(depth + 1));
    refused(&server, &query).await;
    let values = format!(
        "{{ meets(filter: {{ search: {}\"x\"{} }}) {{ edges {{ cursor }} }} }}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    refused(&server, &values).await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert!(health.status().is_success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_few_and_short_whatever_the_input() {
    let server = server().await;
    let mut query = String::from("query Q { __typename }");
    for n in 0..10_000 {
        write!(query, " fragment U{n} on Query {{ __typename }}").unwrap();
    }
    let body = server.graphql(None, json!({ "query": query })).await;
    let errors = body["errors"].as_array().expect("errors");
    assert!(errors.len() <= 20, "{} errors", errors.len());
    assert!(
        body.to_string().len() < 20_000,
        "{} bytes",
        body.to_string().len()
    );

    // A megabyte of e-mail address, echoed by the error that refuses it.
    let body = server
        .op(
            None,
            "Register",
            json!({ "input": {
                "email": "x".repeat(1_000_000),
                "password": "a long enough password",
                "handle": "echo",
                "displayName": "Echo",
            } }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:.300}");
    assert!(
        body.to_string().len() < 2_000,
        "{} bytes",
        body.to_string().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_that_expands_too_far_is_refused_on_the_socket() {
    let server = server().await;
    let mut query = String::from("subscription S { ...F0 }\n");
    for level in 0..40 {
        writeln!(
            query,
            "fragment F{level} on Subscription {{ ...F{next} ...F{next} }}",
            next = level + 1
        )
        .unwrap();
    }
    query.push_str("fragment F40 on Subscription { meetAnnounced { id } }\n");
    for protocol in [Protocol::TransportWs, Protocol::LegacyWs] {
        let mut client = WsClient::connect(&server.ws_url(), protocol).await;
        client.init(None).await.expect("connection acknowledged");
        client.subscribe("s", &query, "S", json!({})).await;
        let payload = client.next_payload("s").await;
        assert_eq!(code(&payload), "BAD_USER_INPUT", "{payload}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_runs_the_operation_it_names() {
    let server = server().await;
    let document = "query Feed { meets { edges { cursor } } } \
                    mutation Leave { logout(refreshToken: \"x\") }";
    let get = |name: &'static str| {
        reqwest::Client::new()
            .get(server.url("/graphql"))
            .query(&[("query", document), ("operationName", name)])
            .send()
    };
    let feed = get("Feed").await.unwrap();
    assert_eq!(feed.status(), reqwest::StatusCode::OK);
    let body: Value = feed.json().await.unwrap();
    assert!(body["data"]["meets"].is_object(), "{body}");
    let leave = get("Leave").await.unwrap();
    assert_eq!(leave.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_variable_left_out_is_refused_even_under_skip() {
    let server = server().await;
    let response = server
        .graphql(
            None,
            json!({ "query": "query Q($s: Boolean!) { me @skip(if: $s) { id } __typename }" }),
        )
        .await;
    assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
    assert!(
        response.get("data").is_none_or(Value::is_null),
        "{response}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_before_connection_init_closes_with_4401() {
    let server = server().await;
    let mut client = WsClient::connect(&server.ws_url(), Protocol::TransportWs).await;
    client
        .subscribe("s", "subscription { meetAnnounced { id } }", "", json!({}))
        .await;
    let closed = client.receive(std::time::Duration::from_secs(10)).await;
    assert_eq!(closed, Some(Err(4401)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_account_answers_as_a_wrong_password_does() {
    let server = server().await;
    let (admin, _) = server.admin("boss").await;
    let (_, troll_id) = server.register("troll").await;
    let suspended = server
        .op(
            Some(&admin),
            "SuspendUser",
            json!({ "userId": troll_id, "reason": "spam" }),
        )
        .await;
    assert!(suspended.get("errors").is_none(), "{suspended}");
    let login = |password: &'static str| {
        server.op(
            None,
            "Login",
            json!({ "email": "troll@example.com", "password": password }),
        )
    };
    let right = login("correct horse battery").await;
    let wrong = login("not the password at all").await;
    assert_eq!(code(&right), "UNAUTHENTICATED", "{right}");
    assert_eq!(right, wrong);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_connection_init_closes_with_1009() {
    let server = server().await;
    let mut client = WsClient::connect(&server.ws_url(), Protocol::TransportWs).await;
    let huge_token = "x".repeat(100_000);
    let refused = client.init(Some(&huge_token)).await;
    assert_eq!(refused, Err(Refusal::Closed(1009)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enum_written_as_a_string_is_refused() {
    let server = server().await;
    let (host, _) = server.register("host").await;
    let meet = server.meet(&host, json!({})).await;
    let (guest, _) = server.register("guest").await;
    let quoted = format!(r#"mutation {{ rsvp(meetId: "{meet}", status: "GOING") {{ status }} }}"#);
    let response = server
        .graphql(Some(&guest), json!({ "query": quoted }))
        .await;
    assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
    let bare = format!(r#"mutation {{ rsvp(meetId: "{meet}", status: GOING) {{ status }} }}"#);
    let response = server.graphql(Some(&guest), json!({ "query": bare })).await;
    assert_eq!(response["data"]["rsvp"]["status"], "GOING", "{response}");
}
