//! One HTTPS client for the push services, on hyper (already serving the
//! API) with rustls: HTTP/1.1 or HTTP/2 as the server offers (ALPN), or
//! HTTP/2 only for APNs. Plain `http://` is allowed too, for local stand-ins.

use std::time::Duration;

use anyhow::Context;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, body::Bytes};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client as Legacy, connect::HttpConnector},
    rt::TokioExecutor,
};

/// How long one request to a push service may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a push service's answer read (errors are short JSON).
const MAX_ANSWER: usize = 64 * 1024;

pub type Client = Legacy<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An answer: its status, `Retry-After` (in seconds, when given as such) and body.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

pub fn client(http2_only: bool) -> Client {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    let mut builder = Legacy::builder(TokioExecutor::new());
    builder.http2_only(http2_only);
    builder.build(https)
}

/// Sends `request`; an answer of any status is `Ok`, no answer is an error.
pub async fn send(client: &Client, request: Request<Full<Bytes>>) -> anyhow::Result<Answer> {
    let host = request.uri().host().unwrap_or_default().to_owned();
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .with_context(|| format!("{host} did not answer in {TIMEOUT:?}"))?
        .with_context(|| format!("cannot reach {host}"))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = tokio::time::timeout(
        TIMEOUT,
        Limited::new(response.into_body(), MAX_ANSWER).collect(),
    )
    .await
    .with_context(|| format!("{host} did not finish its answer"))?
    .map_err(|err| anyhow::anyhow!("reading {host}'s answer: {err}"))?
    .to_bytes();
    Ok(Answer {
        status,
        retry_after,
        body,
    })
}

/// What a status says, for the statuses every push service shares: 429 and
/// 5xx are worth retrying (after `Retry-After` when given).
pub fn retry_or(answer: &Answer, service: &str) -> super::PushError {
    let text = String::from_utf8_lossy(&answer.body);
    let text: String = text.chars().take(300).collect();
    super::PushError::Retry {
        reason: format!("{service} answered {}: {text}", answer.status),
        after: answer.retry_after,
    }
}
