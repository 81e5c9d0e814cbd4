//! The HTTP surface: the router and its tower-http layers.

mod accept;
mod access;
mod calendar;
mod graphql;
mod health;
mod playground;
pub mod server;
mod ws;

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use axum::{
    Router,
    extract::ConnectInfo,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    cors::{AllowOrigin, Any, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{config::Config, graphql::Schemas, state::Services};

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub schemas: Schemas,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers browsers may send cross-origin: ours, and those Apollo's clients
/// and tracing libraries add to every request (a preflight that refuses one
/// fails the whole request).
const CORS_HEADERS: [HeaderName; 7] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("apollographql-client-name"),
    HeaderName::from_static("apollographql-client-version"),
    HeaderName::from_static("traceparent"),
    REQUEST_ID,
];

/// The client's address: the connection's, or behind a trusted proxy the
/// last address in the header it sets (the one it added itself; those
/// before it are whatever the client claimed).
fn client_address(
    config: &Config,
    headers: &HeaderMap,
    connection: Option<&ConnectInfo<SocketAddr>>,
) -> Option<IpAddr> {
    match &config.trusted_proxy_header {
        Some(name) => headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|item| item.trim().parse::<IpAddr>().ok())
            .next_back(),
        None => connection.map(|ConnectInfo(address)| address.ip()),
    }
}

pub fn router(state: AppState) -> Router {
    let config = state.services.config.clone();
    let access_log = axum::middleware::from_fn_with_state(state.clone(), access::log);
    Router::new()
        .route("/", get(playground::lead_browsers))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/calendar/meets/{file}", get(calendar::meet))
        .route("/calendar/feed/{user}/{file}", get(calendar::feed))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .merge(playground::router())
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(access_log)
                // The request's span: what its log lines carry, and with
                // traces on, the root of its trace (or a child of the
                // caller's, given a `traceparent`).
                .layer(TraceLayer::new_for_http().make_span_with(
                    |request: &axum::http::Request<_>| {
                        let request_id = request
                            .headers()
                            .get(REQUEST_ID)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        let span = tracing::info_span!(
                            "request",
                            method = %request.method(),
                            path = %request.uri().path(),
                            request_id,
                            operation = tracing::field::Empty,
                        );
                        crate::telemetry::adopt_parent(&span, request.headers());
                        span
                    },
                ))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(RequestBodyLimitLayer::new(config.body_limit))
                .layer(cors(&config))
                .layer(CompressionLayer::new())
                // The whole request, a slowly sent body included (a WebSocket
                // is done here once upgraded).
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    config.request_timeout,
                )),
        )
}

fn cors(config: &Config) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(CORS_HEADERS)
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(3600));
    if config.cors_origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any)
    } else {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        layer.allow_origin(AllowOrigin::list(origins))
    }
}
