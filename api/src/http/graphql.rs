//! `/graphql` as the GraphQL-over-HTTP specification says: POST with a JSON
//! body, GET for queries only; answers in `application/json` or
//! `application/graphql-response+json` as the client accepts. We answer
//! ourselves because async-graphql-axum always uses the latter, which fails a
//! MUST of the spec for clients that only accept `application/json`.

use std::net::{IpAddr, SocketAddr};

use async_graphql::{
    Executor,
    parser::types::{DocumentOperations, OperationType},
};
use axum::{
    Extension,
    body::Bytes,
    extract::{ConnectInfo, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use sha2::{Digest, Sha256};

use super::{AppState, accept, access::GraphqlSummary, client_address, playground};
use crate::{
    auth::viewer,
    error::ApiError,
    graphql::{limits, request_data, server_error},
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// The media type the client gets, from its `Accept` header.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MediaType {
    Json,
    GraphqlResponseJson,
}

/// The client's most preferred type of the two we answer in; JSON when it
/// sends no `Accept`.
fn negotiate(headers: &HeaderMap) -> Option<MediaType> {
    let Some(preferences) = accept::preferences(headers) else {
        return Some(MediaType::Json);
    };
    preferences.iter().find_map(|media| match media.as_str() {
        GRAPHQL_RESPONSE_JSON => Some(MediaType::GraphqlResponseJson),
        JSON | "application/*" | "*/*" => Some(MediaType::Json),
        _ => None,
    })
}

/// A response body. Errors about the request itself (it could not be parsed,
/// validated or authenticated: `data` is null and no error has a path) carry
/// no `data` key, as GraphQL over HTTP says; once execution started, `data`
/// is there, null when a non-null root field failed.
#[derive(serde::Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a async_graphql::Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

/// Whether execution started: some data, or an error at a field's path.
fn executed(response: &async_graphql::Response) -> bool {
    response.data != async_graphql::Value::Null
        || response.errors.iter().any(|error| !error.path.is_empty())
}

impl<'a> From<&'a async_graphql::Response> for Body<'a> {
    fn from(response: &'a async_graphql::Response) -> Self {
        Self {
            data: executed(response).then_some(&response.data),
            errors: &response.errors,
            extensions: &response.extensions,
        }
    }
}

fn respond(media: MediaType, status: StatusCode, response: &async_graphql::Response) -> Response {
    match encode(response) {
        Some(bytes) => reply(media, status, bytes),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn encode(response: &async_graphql::Response) -> Option<Vec<u8>> {
    serde_json::to_vec(&Body::from(response))
        .inspect_err(|err| tracing::error!(error = %err, "serializing a response"))
        .ok()
}

fn reply(media: MediaType, status: StatusCode, body: Vec<u8>) -> Response {
    let content_type = match media {
        MediaType::Json => "application/json; charset=utf-8",
        MediaType::GraphqlResponseJson => "application/graphql-response+json; charset=utf-8",
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// A response with one request-level error and no data.
fn request_error(media: MediaType, status: StatusCode, error: ApiError) -> Response {
    let mut response = respond(
        media,
        status,
        &async_graphql::Response::from_errors(vec![server_error(&error)]),
    );
    if status == StatusCode::UNAUTHORIZED {
        // RFC 6750: the scheme the client should authenticate with, and that
        // the token it sent was not accepted.
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
    }
    response
}

fn bad_request(media: MediaType, message: &str) -> Response {
    request_error(
        media,
        StatusCode::BAD_REQUEST,
        ApiError::BadInput {
            field: None,
            message: message.into(),
        },
    )
}

/// A GET request's parameters, named as GraphQL over HTTP names them
/// (async-graphql's own parser expects `operation_name`).
#[derive(serde::Deserialize)]
pub struct GetParams {
    #[serde(default)]
    query: String,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    /// JSON, as the specification says.
    variables: Option<String>,
    extensions: Option<String>,
}

impl GetParams {
    fn into_request(self) -> Result<async_graphql::Request, String> {
        let mut request = async_graphql::Request::new(self.query);
        request.operation_name = self.operation_name.filter(|name| !name.is_empty());
        if let Some(variables) = self.variables.filter(|v| !v.is_empty()) {
            request.variables = serde_json::from_str(&variables)
                .map_err(|err| format!("invalid variables: {err}"))?;
        }
        if let Some(extensions) = self.extensions.filter(|e| !e.is_empty()) {
            request.extensions = serde_json::from_str(&extensions)
                .map_err(|err| format!("invalid extensions: {err}"))?;
        }
        Ok(request)
    }
}

pub async fn get(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    params: Result<Query<GetParams>, QueryRejection>,
) -> Response {
    // A browser opening the endpoint's address: show it the playground.
    if accept::wants_html(&headers)
        && params
            .as_ref()
            .is_ok_and(|Query(params)| params.query.is_empty() && params.extensions.is_none())
    {
        return playground::redirect();
    }
    let Some(media) = negotiate(&headers) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    let mut request = match params
        .map_err(|err| err.body_text())
        .and_then(|Query(params)| params.into_request())
    {
        Ok(request) => request,
        Err(err) => return bad_request(media, &format!("invalid query string: {err}")),
    };
    // A persisted query's text first: the check below needs it.
    if let Err(err) = state.schemas.persisted.resolve(&mut request) {
        return persisted_query_error(media, err);
    }
    // Only queries over GET: a GET must never change anything (it can be
    // prefetched, cached, or sent by an <img> on another site).
    // (An oversized document is refused unparsed when it executes; one that
    // parses here is not parsed again.)
    if operation_type(&mut request).is_some_and(|ty| ty != OperationType::Query) {
        let mut response = request_error(
            media,
            StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadInput {
                field: None,
                message: "only queries may be sent over GET; use POST".into(),
            },
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let client = client_address(
        &state.services.config,
        &headers,
        connection.as_ref().map(|Extension(info)| info),
    );
    execute(state, headers, client, media, request, Method::Get).await
}

pub async fn post(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(media) = negotiate(&headers) else {
        return StatusCode::NOT_ACCEPTABLE.into_response();
    };
    // Only JSON bodies: this also refuses the "simple" cross-site form posts
    // (text/plain, form-urlencoded) that CORS does not preflight.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(JSON));
    if !is_json {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as application/json",
        )
            .into_response();
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return bad_request(media, "batched requests are not supported");
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return bad_request(media, &format!("invalid request body: {err}")),
    };
    let client = client_address(
        &state.services.config,
        &headers,
        connection.as_ref().map(|Extension(info)| info),
    );
    let mut request = request;
    if let Err(err) = state.schemas.persisted.resolve(&mut request) {
        return persisted_query_error(media, err);
    }
    execute(state, headers, client, media, request, Method::Post).await
}

/// A persisted query that could not be used. An unknown hash is a 200, as
/// Apollo's servers answer it (its clients then send the query along).
fn persisted_query_error(media: MediaType, err: ApiError) -> Response {
    let status = match err {
        ApiError::PersistedQueryNotFound => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    };
    let summary = GraphqlSummary {
        error_codes: vec![err.code().to_owned()],
        ..GraphqlSummary::default()
    };
    with_summary(request_error(media, status, err), summary)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

async fn execute(
    state: AppState,
    headers: HeaderMap,
    client: Option<IpAddr>,
    media: MediaType,
    mut request: async_graphql::Request,
    method: Method,
) -> Response {
    let mut summary = GraphqlSummary {
        operation_name: request.operation_name.clone(),
        operation_type: operation_type(&mut request).map(|ty| match ty {
            OperationType::Query => "query",
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
        }),
        ..GraphqlSummary::default()
    };
    crate::telemetry::record_operation(summary.operation_name.as_deref());
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let (viewer, _) =
        match viewer::resolve(&state.services.db, &state.services.keys, authorization).await {
            Ok(resolved) => resolved,
            Err(err) => {
                let status = match err {
                    ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                    _ => StatusCode::UNAUTHORIZED,
                };
                summary.error_codes = vec![err.code().to_owned()];
                return with_summary(request_error(media, status, err), summary);
            }
        };
    summary.viewer = viewer.user_id();
    let request = request_data(request, &state.services, viewer, client);
    let schema = state
        .schemas
        .for_viewer(viewer, state.services.config.is_production());
    let response = schema.execute(request).await;
    summary.error_codes = GraphqlSummary::codes_of(&response);
    // With graphql-response+json, a request that could not execute at all
    // (parse or validation errors: no `data`) is a 400, as the spec says.
    let status = if media == MediaType::GraphqlResponseJson && !executed(&response) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let Some(body) = encode(&response) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let answer = match method {
        Method::Post => reply(media, status, body),
        Method::Get => {
            let cacheable =
                authorization.is_none() && status == StatusCode::OK && response.errors.is_empty();
            let etag = cacheable.then(|| entity_tag(&body));
            cache_headers(&headers, etag, reply(media, status, body))
        }
    };
    with_summary(answer, summary)
}

/// The type of the operation the request runs, from the parse execution then
/// reuses; none for a document too large to parse or that does not parse.
fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    if request.query.len() > limits::MAX_DOCUMENT_BYTES {
        return None;
    }
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let operation = match &document.operations {
        DocumentOperations::Single(op) => op,
        DocumentOperations::Multiple(ops) => match &name {
            Some(name) => ops.get(name.as_str())?,
            None => ops.values().next()?,
        },
    };
    Some(operation.node.ty)
}

fn with_summary(mut response: Response, summary: GraphqlSummary) -> Response {
    response.extensions_mut().insert(summary);
    response
}

/// How long a shared cache may keep an anonymous GET's answer: what anyone
/// may see, a few seconds stale at most.
const ANONYMOUS_MAX_AGE: HeaderValue = HeaderValue::from_static("public, max-age=5");

/// A GET's caching: an anonymous answer without errors is cacheable, with an
/// `ETag` (a hash of its body) for which `If-None-Match` is answered `304`;
/// any other answer is the viewer's alone and never stored.
fn cache_headers(request: &HeaderMap, etag: Option<String>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Authorization"),
    );
    let Some((etag, etag_value)) =
        etag.and_then(|etag| HeaderValue::from_str(&etag).ok().map(|value| (etag, value)))
    else {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        return response;
    };
    headers.insert(header::CACHE_CONTROL, ANONYMOUS_MAX_AGE);
    let unchanged = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|tag| {
            let tag = tag.trim();
            // Weak comparison, as If-None-Match asks.
            tag == "*" || tag.trim_start_matches("W/") == etag.trim_start_matches("W/")
        });
    headers.insert(header::ETAG, etag_value);
    if unchanged {
        headers.remove(header::CONTENT_TYPE);
        let (mut parts, _) = response.into_parts();
        parts.status = StatusCode::NOT_MODIFIED;
        return Response::from_parts(parts, axum::body::Body::empty());
    }
    response
}

/// A weak entity tag (the compression layer may re-encode the body): the
/// first 128 bits of the body's SHA-256.
fn entity_tag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("W/\"{hex}\"")
}
