//! Automatic persisted queries, as Apollo's clients send them: over POST,
//! over GET (cacheable when anonymous), over WebSocket, and with Apollo
//! Client's own link.

mod common;

use std::time::Duration;

use common::{
    Contract, TestServer, code,
    ws::{Protocol, WsClient},
};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha256(query: &str) -> String {
    Sha256::digest(query.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(server: &TestServer, body: Value) -> Value {
    reqwest::Client::new()
        .post(server.url("/graphql"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Unknown hash, then hash and query, then the hash alone: the protocol's
/// three steps, with the contract's feed.
async fn a_query_is_registered_once_then_sent_by_hash(server: TestServer) {
    let query = Contract::load().operation("MeetFeed");
    let hash = sha256(&query);
    let unknown = post(&server, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");

    let registered = post(
        &server,
        json!({ "query": query, "variables": { "first": 5 }, "extensions": persisted(&hash) }),
    )
    .await;
    assert!(
        registered["data"]["meets"]["edges"].is_array(),
        "{registered}"
    );

    let by_hash = post(
        &server,
        json!({ "variables": { "first": 5 }, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(by_hash["data"], registered["data"]);
}

async fn a_hash_that_does_not_match_is_refused(server: TestServer) {
    let wrong = post(
        &server,
        json!({ "query": "{ __typename }", "extensions": persisted(&sha256("{ other }")) }),
    )
    .await;
    assert_eq!(code(&wrong), "BAD_USER_INPUT");
    for malformed in [
        json!({ "persistedQuery": { "version": 1, "sha256Hash": "abc" } }),
        json!({ "persistedQuery": { "version": 2, "sha256Hash": sha256("{ __typename }") } }),
        json!({ "persistedQuery": "yes" }),
    ] {
        let refused = post(
            &server,
            json!({ "query": "{ __typename }", "extensions": malformed }),
        )
        .await;
        assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    }
    // The refused hash was not registered.
    let unknown = post(
        &server,
        json!({ "extensions": persisted(&sha256("{ other }")) }),
    )
    .await;
    assert_eq!(code(&unknown), "PERSISTED_QUERY_NOT_FOUND");
}

/// GET by hash: anonymous answers are cacheable and revalidate with 304;
/// signed-in ones are never stored; a hashed mutation is still refused.
async fn get_by_hash_is_cacheable_when_anonymous(server: TestServer) {
    let query = "query Feed { meets(first: 3) { edges { node { id title } } } }";
    let hash = sha256(query);
    post(
        &server,
        json!({ "query": query, "extensions": persisted(&hash) }),
    )
    .await;
    let client = reqwest::Client::new();
    let get = |token: Option<&str>, etag: Option<&str>| {
        let mut request = client.get(server.url("/graphql")).query(&[
            ("operationName", "Feed"),
            ("extensions", &persisted(&hash).to_string()),
        ]);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        request.send()
    };
    let first = get(None, None).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[header::CACHE_CONTROL], "public, max-age=5");
    let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
    let body: Value = first.json().await.unwrap();
    assert!(body["data"]["meets"]["edges"].is_array(), "{body}");

    let revalidated = get(None, Some(&etag)).await.unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert!(revalidated.bytes().await.unwrap().is_empty());

    // A change makes a new answer, with a new tag.
    server.host_meet(json!({})).await;
    let changed = get(None, Some(&etag)).await.unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()[header::ETAG].to_str().unwrap(), etag);

    let (token, _) = server.register("signed_in").await;
    let private = get(Some(&token), Some(&etag)).await.unwrap();
    assert_eq!(private.status(), StatusCode::OK);
    assert_eq!(
        private.headers()[header::CACHE_CONTROL],
        "private, no-store"
    );
    assert!(private.headers().get(header::ETAG).is_none());

    let mutation = "mutation Out { logout(refreshToken: \"x\") }";
    let mutation_hash = sha256(mutation);
    post(
        &server,
        json!({ "query": mutation, "extensions": persisted(&mutation_hash) }),
    )
    .await;
    let refused = client
        .get(server.url("/graphql"))
        .query(&[("extensions", persisted(&mutation_hash).to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "a mutation stays POST-only"
    );
}

/// A subscription sent by hash over the socket, from the cache HTTP filled.
async fn a_subscription_is_sent_by_hash(server: TestServer) {
    let subscription = "subscription Announced { meetAnnounced { id title } }";
    let hash = sha256(subscription);
    let mut socket = WsClient::connect(&server.ws_url(), Protocol::TransportWs).await;
    socket.init(None).await.unwrap();
    socket
        .subscribe_with("unknown", json!({ "extensions": persisted(&hash) }))
        .await;
    let unknown = socket.next_payload("unknown").await;
    assert_eq!(code(&unknown), "PERSISTED_QUERY_NOT_FOUND");

    post(
        &server,
        json!({ "query": subscription, "extensions": persisted(&hash) }),
    )
    .await;
    socket
        .subscribe_with("announced", json!({ "extensions": persisted(&hash) }))
        .await;
    // The subscription is live once the server has it; announce until seen.
    let (host, _) = server.register("host").await;
    let meet = common::poll_until(
        Duration::from_secs(10),
        async || {
            let meet = server.meet(&host, json!({})).await;
            match socket.receive(Duration::from_millis(500)).await {
                Some(Ok(message)) => {
                    Some(message["payload"]["data"]["meetAnnounced"]["id"].clone())
                }
                _ => None,
            }
            .filter(|id| id.is_string())
            .map(|_| meet)
        },
        Option::is_some,
    )
    .await;
    assert!(meet.is_some(), "the hashed subscription delivered an event");
}

/// Apollo Client 4's PersistedQueryLink, as the mobile app runs it: the first
/// client sends the hash, is told it is unknown and sends the query too; a
/// second client sends only the hash, over GET.
async fn apollo_clients_persisted_query_link_works(server: TestServer) {
    let query = Contract::load().operation("MeetFeed");
    let Some((ok, output)) = common::node::run(
        "Apollo's persisted query link",
        "apollo.mjs",
        &[server.url("/graphql")],
        &query,
    )
    .await
    else {
        return;
    };
    assert!(ok, "apollo.mjs failed: {output}");
    let report: Value = serde_json::from_str(output.trim()).expect("apollo.mjs prints JSON");
    let first = &report["first"];
    assert_eq!(first["error"], Value::Null, "{report:#}");
    assert_eq!(
        first["requests"],
        json!([
            { "method": "POST", "sentQuery": false, "status": 200, "code": "PERSISTED_QUERY_NOT_FOUND" },
            { "method": "POST", "sentQuery": true, "status": 200, "code": null },
        ]),
        "{report:#}"
    );
    assert!(first["data"]["meets"]["edges"].is_array());
    let second = &report["second"];
    assert_eq!(
        second["requests"],
        json!([{ "method": "GET", "sentQuery": false, "status": 200, "code": null }]),
        "{report:#}"
    );
    assert_eq!(second["data"], first["data"]);
}

on_both_databases!(
    a_query_is_registered_once_then_sent_by_hash,
    a_hash_that_does_not_match_is_refused,
    get_by_hash_is_cacheable_when_anonymous,
    a_subscription_is_sent_by_hash,
    apollo_clients_persisted_query_link_works
);
