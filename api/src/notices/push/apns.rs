//! Apple Push Notification service (iOS): HTTP/2 to `/3/device/{token}`,
//! authenticated with a provider token (an ES256 JWT signed with the team's
//! `.p8` key, its key id in the header and team id as issuer), made anew
//! before its hour runs out (Apple refuses one older than an hour, and one
//! renewed more often than every 20 minutes).

use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use entity::devices::{self, Platform};
use http_body_util::Full;
use hyper::{Request, body::Bytes};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use tokio::sync::Mutex;

use super::{PushError, PushMessage, PushTransport, http};

/// A provider token is made anew after this long (well inside its hour).
const TOKEN_LIFE: Duration = Duration::from_secs(50 * 60);
/// How long APNs keeps a notice for a phone that is off.
const EXPIRATION_SECS: i64 = 4 * 3600;

/// What APNs needs from the configuration.
pub struct ApnsSettings<'a> {
    pub key_file: &'a str,
    pub key_id: &'a str,
    pub team_id: &'a str,
    pub topic: &'a str,
    pub base: &'a str,
}

pub struct Apns {
    signing: EncodingKey,
    key_id: String,
    team_id: String,
    topic: String,
    base: String,
    client: http::Client,
    token: Mutex<Option<(String, Instant)>>,
}

impl Apns {
    pub fn new(settings: ApnsSettings<'_>) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(settings.key_file)
            .with_context(|| format!("reading the APNs key {}", settings.key_file))?;
        let key = super::web::parse_private_key(&text)
            .with_context(|| format!("{} is not a .p8 (P-256) key", settings.key_file))?;
        let der = key.to_pkcs8_der().context("encoding the APNs key")?;
        Ok(Self {
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            key_id: settings.key_id.to_owned(),
            team_id: settings.team_id.to_owned(),
            topic: settings.topic.to_owned(),
            base: settings.base.trim_end_matches('/').to_owned(),
            client: http::client(true),
            token: Mutex::new(None),
        })
    }

    /// The current provider token, made anew when it is old.
    async fn provider_token(&self) -> Result<String, PushError> {
        let mut cached = self.token.lock().await;
        if let Some((token, made)) = cached.as_ref()
            && made.elapsed() < TOKEN_LIFE
        {
            return Ok(token.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = serde_json::json!({
            "iss": self.team_id,
            "iat": chrono::Utc::now().timestamp(),
        });
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)
            .context("signing the APNs provider token")?;
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }
}

/// The `reason` of an APNs error answer.
fn reason(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[async_trait]
impl PushTransport for Apns {
    fn platform(&self) -> Platform {
        Platform::Ios
    }

    async fn send(&self, device: &devices::Model, message: &PushMessage) -> Result<(), PushError> {
        let token = self.provider_token().await?;
        let mut payload = serde_json::json!({
            "aps": {
                "alert": { "title": message.title, "body": message.body },
                "sound": "default",
            }
        });
        for (key, value) in &message.data {
            payload[key] = serde_json::Value::String(value.clone());
        }
        let request = Request::post(format!("{}/3/device/{}", self.base, device.token))
            .version(hyper::Version::HTTP_2)
            .header("authorization", format!("bearer {token}"))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header(
                "apns-expiration",
                (chrono::Utc::now().timestamp() + EXPIRATION_SECS).to_string(),
            )
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(payload.to_string())))
            .map_err(anyhow::Error::from)?;
        let answer = http::send(&self.client, request).await?;
        let why = reason(&answer.body);
        match answer.status {
            200..=299 => Ok(()),
            410 => Err(PushError::Gone(format!("APNs answered 410 {why}"))),
            400 if why == "BadDeviceToken" || why == "DeviceTokenNotForTopic" => {
                Err(PushError::Gone(format!("APNs: {why}")))
            }
            403 if why == "ExpiredProviderToken" || why == "InvalidProviderToken" => {
                self.forget_token().await;
                Err(PushError::Retry {
                    reason: format!("APNs: {why}"),
                    after: Some(Duration::from_secs(1)),
                })
            }
            _ => Err(http::retry_or(&answer, "APNs")),
        }
    }
}
