//! One access line per request at the default level: method, path, status,
//! latency, request id, client address, and for GraphQL the operation's name
//! and type, the error codes and the viewer. Never tokens, passwords, e-mail
//! addresses or the query string (a GET's query and variables).

use std::{net::SocketAddr, time::Instant};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::Response,
};
use uuid::Uuid;

use super::{AppState, REQUEST_ID, client_address};

/// What the GraphQL handler tells the access line about its request.
#[derive(Clone, Default)]
pub struct GraphqlSummary {
    pub operation_name: Option<String>,
    /// `query`, `mutation` or `subscription`; none when it did not parse.
    pub operation_type: Option<&'static str>,
    /// The distinct `extensions.code`s of the response's errors, in order.
    pub error_codes: Vec<String>,
    pub viewer: Option<Uuid>,
}

impl GraphqlSummary {
    pub fn codes_of(response: &async_graphql::Response) -> Vec<String> {
        let mut codes: Vec<String> = Vec::new();
        for error in &response.errors {
            let code = error
                .extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                .map(|code| code.to_string().trim_matches('"').to_owned())
                .unwrap_or_else(|| "BAD_USER_INPUT".to_owned());
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        codes
    }
}

pub async fn log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let client = client_address(
        &state.services.config,
        request.headers(),
        request.extensions().get::<ConnectInfo<SocketAddr>>(),
    );
    let response = next.run(request).await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let summary = response.extensions().get::<GraphqlSummary>();
    let status = response.status().as_u16();
    let client = client.map(|address| address.to_string());
    record(summary, status, latency_ms);
    match summary {
        Some(summary) => tracing::info!(
            target: "tweetmeet::access",
            %method,
            path,
            status,
            latency_ms = format_args!("{latency_ms:.2}"),
            request_id,
            client = client.as_deref().unwrap_or("-"),
            operation = summary.operation_name.as_deref().unwrap_or("-"),
            operation_type = summary.operation_type.unwrap_or("-"),
            errors = summary.error_codes.join(","),
            viewer = summary.viewer.map(|id| id.to_string()).as_deref().unwrap_or("-"),
            "request"
        ),
        None => tracing::info!(
            target: "tweetmeet::access",
            %method,
            path,
            status,
            latency_ms = format_args!("{latency_ms:.2}"),
            request_id,
            client = client.as_deref().unwrap_or("-"),
            "request"
        ),
    }
    response
}

fn record(summary: Option<&GraphqlSummary>, status: u16, latency_ms: f64) {
    let failed = status >= 400 || summary.is_some_and(|s| !s.error_codes.is_empty());
    let outcome = if failed { "error" } else { "ok" };
    let operation =
        crate::metrics::operation_label(summary.and_then(|s| s.operation_name.as_deref()));
    metrics::counter!("tweetmeet_http_requests_total", "operation" => operation.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("tweetmeet_http_request_duration_seconds", "operation" => operation, "outcome" => outcome)
        .record(latency_ms / 1000.0);
    for code in summary.iter().flat_map(|s| &s.error_codes) {
        metrics::counter!("tweetmeet_graphql_errors_total", "code" => code.clone()).increment(1);
    }
}
