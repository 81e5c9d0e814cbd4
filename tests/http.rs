//! The HTTP surface: GraphQL over HTTP, health, the playground.

mod common;

use common::{TestDatabase, TestServer, code};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start(TestDatabase::sqlite().await).await
}

const QUERY: &str = "{ meets(first: 1) { edges { cursor } } }";

/// POST with JSON, answered as JSON when the client accepts JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_is_answered_as_json() {
    let server = server().await;
    let response = reqwest::Client::new()
        .post(server.url("/graphql"))
        .header(header::ACCEPT, "application/json")
        .json(&json!({ "query": QUERY }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["data"]["meets"]["edges"].is_array());
}

/// Answered as graphql-response+json when the client prefers it; a request
/// that cannot execute is then a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_response_json_when_preferred() {
    let server = server().await;
    let client = reqwest::Client::new();
    let response = client
        .post(server.url("/graphql"))
        .header(
            header::ACCEPT,
            "application/graphql-response+json, application/json;q=0.9",
        )
        .json(&json!({ "query": QUERY }))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/graphql-response+json")
    );
    let invalid = client
        .post(server.url("/graphql"))
        .header(header::ACCEPT, "application/graphql-response+json")
        .json(&json!({ "query": "{ nope }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        invalid.status(),
        StatusCode::BAD_REQUEST,
        "a request that cannot execute is a 400 in graphql-response+json"
    );
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT", "every error has a code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_runs_queries_only() {
    let server = server().await;
    let client = reqwest::Client::new();
    let response = client
        .get(server.url("/graphql"))
        .query(&[("query", QUERY)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mutation = r#"mutation { logout(refreshToken: "x") }"#;
    let response = client
        .get(server.url("/graphql"))
        .query(&[("query", mutation)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");
}

/// Only JSON bodies (no CSRF through simple form posts), no batches, no garbage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_one_request_as_json_is_accepted() {
    let server = server().await;
    let client = reqwest::Client::new();
    let response = client
        .post(server.url("/graphql"))
        .header(header::CONTENT_TYPE, "text/plain")
        .body(json!({ "query": QUERY }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = client
        .post(server.url("/graphql"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("query=%7Bme%7Bid%7D%7D")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let response = client
        .post(server.url("/graphql"))
        .json(&json!([{ "query": QUERY }, { "query": QUERY }]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = client
        .post(server.url("/graphql"))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413() {
    let server = server().await;
    let huge = "x".repeat(1024 * 1024 + 10);
    let response = reqwest::Client::new()
        .post(server.url("/graphql"))
        .json(&json!({ "query": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_unauthenticated_not_anonymous() {
    let server = server().await;
    let response = reqwest::Client::new()
        .post(server.url("/graphql"))
        .bearer_auth("nope")
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(body.get("data").is_none(), "nothing executed: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id() {
    let server = server().await;
    let response = reqwest::Client::new()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_never_gets_a_5xx() {
    let server = server().await;
    let client = reqwest::Client::new();
    let bodies = [
        json!({ "query": "{ meet(id: \"not-a-uuid\") { id } }" }),
        json!({ "query": "{ meets(first: 1000) { edges { cursor } } }" }),
        json!({ "query": "{ meets(after: \"%%%\") { edges { cursor } } }" }),
        json!({ "query": "{ meets(filter: { near: { latitude: 500, longitude: 0, radiusKm: -1 } }) { edges { cursor } } }" }),
        json!({ "query": "query($x: Int) { meets(first: $x) { edges { cursor } } }", "variables": { "x": "twelve" } }),
        json!({ "query": "{ story(id: \"\") { id } user(handle: \"\\u0000\") { id } }" }),
        json!({ "query": 42 }),
        json!({}),
    ];
    for body in bodies {
        let response = client
            .post(server.url("/graphql"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success() || response.status().is_client_error(),
            "{body}: {}",
            response.status()
        );
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if let Some(errors) = answer["errors"].as_array() {
            for error in errors {
                assert_ne!(error["extensions"]["code"], "INTERNAL", "{body}: {error}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let server = server().await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// The playground works with no internet: the page and its assets come from
/// this server, and the page names no other host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playground_is_served_entirely_by_the_server() {
    let server = server().await;
    let client = reqwest::Client::new();
    let response = client.get(server.url("/playground")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    let references: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.starts_with("/playground/assets/"))
        .collect();
    assert!(
        references.len() >= 3,
        "the page loads its scripts and styles from us: {references:?}"
    );
    for attribute in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "unpkg",
        "jsdelivr",
        "cdnjs",
    ] {
        assert!(
            !html.contains(attribute),
            "the page references another host ({attribute})"
        );
    }
    for asset in references {
        let response = client.get(server.url(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.bytes().await.unwrap().len() > 1000,
            "{asset} is a real bundle"
        );
    }
    assert_eq!(
        client
            .get(server.url("/playground/assets/nope.js"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// graphql-http's audit of the GraphQL-over-HTTP specification (the
/// reference implementation's own checks, run by Node.js) against the running
/// server: every MUST passes, and no SHOULD is left as a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_over_http_audit_passes() {
    let server = server().await;
    let Some((passed, report)) = common::node::run(
        "the GraphQL-over-HTTP audit",
        "audit.mjs",
        &[server.url("/graphql")],
        "",
    )
    .await
    else {
        return;
    };
    assert!(passed, "a MUST failed:\n{report}");
    assert!(
        report.contains(" 0 warn, ") && report.contains(" 0 error;"),
        "a SHOULD failed:\n{report}"
    );
}

/// Browsers opening the API's addresses are led to the playground; API
/// clients are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_are_led_to_the_playground() {
    let server = server().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for path in ["/", "/graphql"] {
        let response = client
            .get(server.url(path))
            .header(header::ACCEPT, BROWSER)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_redirection(), "{path}");
        assert_eq!(
            response.headers()[header::LOCATION],
            "/playground",
            "{path}"
        );
    }
    let api_client = client
        .get(server.url("/graphql"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert!(!api_client.status().is_redirection());
    let body: Value = api_client.json().await.unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT", "no query to run");
    let query_from_a_browser = client
        .get(server.url("/graphql"))
        .query(&[("query", "{ __typename }")])
        .header(header::ACCEPT, BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_from_a_browser.status(),
        StatusCode::OK,
        "a query runs"
    );
    let root = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::NOT_FOUND);
}

/// Accept's q-values choose the type: JSON preferred here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_q_values_are_honoured() {
    let server = server().await;
    let response = reqwest::Client::new()
        .post(server.url("/graphql"))
        .header(
            header::ACCEPT,
            "application/graphql-response+json;q=0.9, application/json",
        )
        .json(&json!({ "query": "{ nope }" }))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("data").is_none(),
        "a request that did not execute has no data key: {body}"
    );
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

/// Apollo's and tracing clients' headers pass a CORS preflight from an
/// allowed origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_headers_apollo_and_tracing_send() {
    let db = std::sync::Arc::new(TestDatabase::sqlite().await);
    let server = TestServer::start_with(
        db,
        &[("TWEETMEET_CORS_ORIGINS", "https://app.tweetmeet.test")],
    )
    .await;
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, server.url("/graphql"))
        .header(header::ORIGIN, "https://app.tweetmeet.test")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            "content-type,authorization,apollographql-client-name,apollographql-client-version,traceparent,x-request-id",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let allowed = preflight.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in [
        "apollographql-client-name",
        "apollographql-client-version",
        "traceparent",
        "x-request-id",
        "authorization",
    ] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
    assert_eq!(
        preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://app.tweetmeet.test"
    );
}

/// `DateTime` says what it is and points at RFC 3339, so codegen tools map
/// it cleanly: in introspection, and in `print-schema`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn date_time_is_specified_by_rfc_3339() {
    let server = server().await;
    let body = server
        .graphql(
            None,
            json!({ "query": "{ __type(name: \"DateTime\") { description specifiedByURL } }" }),
        )
        .await;
    let scalar = &body["data"]["__type"];
    assert_eq!(
        scalar["specifiedByURL"],
        "https://datatracker.ietf.org/doc/html/rfc3339"
    );
    let description = scalar["description"].as_str().unwrap();
    assert!(
        description.contains("RFC 3339") && !description.contains("Utc>"),
        "{description}"
    );
    assert!(api::graphql::sdl().contains(
        "scalar DateTime @specifiedBy(url: \"https://datatracker.ietf.org/doc/html/rfc3339\")"
    ));
}
