//! Optional OpenTelemetry traces. With `TWEETMEET_OTLP_ENDPOINT` set, spans
//! go to an OpenTelemetry collector over OTLP/HTTP (protobuf); unset, there
//! is no tracing layer at all.
//!
//! What is traced: a span per HTTP request (`request`, with its method,
//! path, request id and GraphQL operation; a W3C `traceparent` header makes
//! it part of the caller's trace), and inside it a span per service call
//! that touches the database (named after the function: `login`, `rsvp`,
//! `list`, …) and per DataLoader batch. Those inner spans are at DEBUG:
//! the log's filter (`RUST_LOG`, `info` by default) leaves them out, and
//! without an endpoint no layer wants them, so their callsites are disabled
//! and cost one cached check, not a span. (A per-field async-graphql
//! extension was measured as costly, so resolvers are traced through the
//! services they call instead.)
//!
//! Spans are batched and exported every few seconds on the SDK's own thread
//! (`OTEL_BSP_*` tune it; `OTEL_TRACES_SAMPLER` samples; the exporter reads
//! `OTEL_EXPORTER_OTLP_HEADERS` for a collector that wants a key). The last
//! batch is flushed when the process exits. A collector that cannot be
//! reached is an outage (`crate::outage`): one line when it goes, a summary
//! a minute, one when it is back, and batches are dropped meanwhile rather
//! than piling up in memory.

use std::{
    fmt,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use axum::http::{HeaderMap, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HeaderExtractor, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tokio::runtime::Handle;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    Layer,
    filter::{LevelFilter, Targets},
    registry::LookupSpan,
};

use crate::outage::Outage;

/// How long one export may take, connecting included.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// A collector answers an export with a small message; more is not read.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// How long the last batch may take to leave when the process stops.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether traces are exported, so per-request work for them (reading a
/// `traceparent`, recording the operation) is skipped when they are not.
static ENABLED: AtomicBool = AtomicBool::new(false);

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The collector's traces URL: the endpoint as configured when it already
/// names `/v1/traces`, otherwise with it appended (as the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is read).
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim().trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// Checks an endpoint as the configuration is read: an `http://` URL with a
/// host. (No TLS: a collector or agent runs beside the process and forwards.)
pub fn check_endpoint(endpoint: &str) -> anyhow::Result<()> {
    let uri: Uri = traces_url(endpoint)
        .parse()
        .with_context(|| format!("{endpoint:?} is not a URL"))?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http") && uri.host().is_some(),
        "{endpoint:?} must be an http:// URL with a host, e.g. http://127.0.0.1:4318"
    );
    Ok(())
}

/// The tracer provider exporting to `endpoint`. Call within the Tokio
/// runtime: exports are sent on it.
pub fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let client = Collector {
        runtime: Handle::try_current().context("traces are exported on the Tokio runtime")?,
        state: Arc::new(Mutex::new(CollectorState {
            outage: Outage::new("the trace collector"),
            retry_at: None,
        })),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("TWEETMEET_OTLP_ENDPOINT")?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("tweetmeet").build())
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    Ok(provider)
}

/// The layer that turns this crate's spans into OpenTelemetry spans: the
/// request spans (INFO) and the service and loader spans (DEBUG), whatever
/// `RUST_LOG` lets the log show; nothing from other crates.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("tweetmeet"))
        .with_filter(Targets::new().with_target("api", LevelFilter::DEBUG))
}

/// Exports what is left and stops the exporter. The SDK's shutdown blocks
/// until the last export is done, and that export runs on this runtime, so
/// it waits on the blocking pool rather than on a worker the export needs.
pub async fn shutdown(provider: SdkTracerProvider) {
    let stopped =
        tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT)).await;
    match stopped {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "flushing the last traces"),
        Err(err) => tracing::warn!(error = %err, "flushing the last traces"),
    }
}

/// Makes a request's span a child of the caller's trace when the request
/// carries a W3C `traceparent` header (and traces are on).
pub fn adopt_parent(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Fails only for a span no layer records; it then has no parent to take.
    let _ = span.set_parent(parent);
}

/// Names the GraphQL operation on the current request's span: a name as
/// GraphQL spells one, of at most 64 characters (the client chose it),
/// else `other`; `-` without one.
pub fn record_operation(name: Option<&str>) {
    if !enabled() {
        return;
    }
    let name = match name {
        None => "-",
        Some(name)
            if !name.is_empty()
                && name.len() <= 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            name
        }
        Some(_) => "other",
    };
    tracing::Span::current().record("operation", name);
}

/// Posts exports to the collector. The SDK's batch processor runs exports
/// on a thread of its own, outside the Tokio runtime, so each request is
/// sent as a task on the runtime and awaited from there.
#[derive(Clone)]
struct Collector {
    runtime: Handle,
    state: Arc<Mutex<CollectorState>>,
}

struct CollectorState {
    outage: Outage,
    /// While the collector is down: no export before this (the backoff).
    retry_at: Option<Instant>,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Collector")
    }
}

impl Collector {
    fn state(&self) -> std::sync::MutexGuard<'_, CollectorState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait::async_trait]
impl HttpClient for Collector {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        if self.state().retry_at.is_some_and(|at| Instant::now() < at) {
            return Err("the trace collector is down; batch dropped".into());
        }
        // The timeout is made inside the task: its timer needs the runtime,
        // which this thread is not on.
        let sent = self
            .runtime
            .spawn(async move { tokio::time::timeout(EXPORT_TIMEOUT, post(request)).await })
            .await;
        let outcome: Result<Response<Bytes>, HttpError> = match sent {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_elapsed)) => {
                Err(format!("no answer within {} s", EXPORT_TIMEOUT.as_secs()).into())
            }
            Err(join) => Err(Box::new(join)),
        };
        let mut state = self.state();
        let failure = match &outcome {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("it answered {}", response.status())),
            Err(err) => Some(err.to_string()),
        };
        match failure {
            None => {
                state.outage.recovered();
                state.retry_at = None;
            }
            Some(failure) => {
                let wait = state.outage.failed(&failure);
                state.retry_at = Some(Instant::now() + wait);
            }
        }
        outcome
    }
}

/// One POST on a connection of its own: exports leave every few seconds, so
/// a pool would hold a connection open for little.
async fn post(request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
    let (mut parts, body) = request.into_parts();
    let host = parts.uri.host().ok_or("the endpoint has no host")?;
    let port = parts.uri.port_u16().unwrap_or(80);
    let authority = match parts.uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let stream = tokio::net::TcpStream::connect((host, port)).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    // An HTTP/1.1 request names its path and its host apart.
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .parse()?;
    parts.headers.insert(header::HOST, authority.parse()?);
    let response = sender
        .send_request(hyper::Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await?
        .to_bytes();
    drop(sender);
    connection.abort();
    Ok(Response::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_name_the_traces_path_once() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces"),
            "http://collector:4318/v1/traces"
        );
        assert!(check_endpoint("http://127.0.0.1:4318").is_ok());
        assert!(check_endpoint("https://collector:4318").is_err());
        assert!(check_endpoint("collector:4318").is_err());
        assert!(check_endpoint("http://").is_err());
    }
}
