//! Firebase Cloud Messaging, HTTP v1 API (Android): an OAuth 2.0 access
//! token from the service account's key (an RS256 JWT assertion exchanged
//! at the key's `token_uri`, kept until shortly before it expires), then
//! `POST /v1/projects/{project}/messages:send` per device.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::devices::{self, Platform};
use http_body_util::Full;
use hyper::{Request, body::Bytes};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{PushError, PushMessage, PushTransport, http};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// An access token is renewed this long before it expires.
const EARLY: chrono::Duration = chrono::Duration::seconds(60);

/// The fields of a service-account key file this needs.
#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key_id: Option<String>,
    private_key: String,
    client_email: String,
    token_uri: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

pub struct Fcm {
    account: ServiceAccount,
    signing: EncodingKey,
    /// `https://fcm.googleapis.com`, or a stand-in.
    base: String,
    client: http::Client,
    token: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl Fcm {
    /// From a service-account key file (JSON) and the API's base address.
    pub fn new(key_file: &str, base: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(key_file)
            .with_context(|| format!("reading the FCM service-account key {key_file}"))?;
        let account: ServiceAccount = serde_json::from_str(&text)
            .with_context(|| format!("{key_file} is not a service-account key"))?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&account.private_key)
            .with_context(|| format!("the private_key in {key_file}"))?;
        let der = key.to_pkcs1_der().context("encoding the FCM key")?;
        Ok(Self {
            signing: EncodingKey::from_rsa_der(der.as_bytes()),
            account,
            base: base.trim_end_matches('/').to_owned(),
            client: http::client(false),
            token: Mutex::new(None),
        })
    }

    /// A current access token: the cached one, or a new one.
    async fn access_token(&self) -> Result<String, PushError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Utc::now() < *until
        {
            return Ok(token.clone());
        }
        let now = Utc::now().timestamp();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.account.private_key_id.clone();
        let claims = serde_json::json!({
            "iss": self.account.client_email,
            "scope": SCOPE,
            "aud": self.account.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let assertion = jsonwebtoken::encode(&header, &claims, &self.signing)
            .context("signing the FCM assertion")?;
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let request = Request::post(self.account.token_uri.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(anyhow::Error::from)?;
        let answer = http::send(&self.client, request).await?;
        if answer.status != 200 {
            return Err(http::retry_or(&answer, "the FCM token endpoint"));
        }
        let token: TokenAnswer =
            serde_json::from_slice(&answer.body).context("the FCM token endpoint's answer")?;
        let until = Utc::now() + chrono::Duration::seconds(token.expires_in) - EARLY;
        *cached = Some((token.access_token.clone(), until));
        Ok(token.access_token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }
}

/// Whether an FCM error answer names the token unregistered.
fn unregistered(body: &[u8]) -> bool {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let error = &answer["error"];
    error["status"] == "NOT_FOUND"
        || error["details"]
            .as_array()
            .is_some_and(|details| details.iter().any(|d| d["errorCode"] == "UNREGISTERED"))
}

#[async_trait]
impl PushTransport for Fcm {
    fn platform(&self) -> Platform {
        Platform::Android
    }

    async fn send(&self, device: &devices::Model, message: &PushMessage) -> Result<(), PushError> {
        let token = self.access_token().await?;
        let body = serde_json::json!({
            "message": {
                "token": device.token,
                "notification": { "title": message.title, "body": message.body },
                "data": message.data,
                "android": { "priority": "HIGH" },
            }
        });
        let url = format!(
            "{}/v1/projects/{}/messages:send",
            self.base, self.account.project_id
        );
        let request = Request::post(url)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(anyhow::Error::from)?;
        let answer = http::send(&self.client, request).await?;
        match answer.status {
            200..=299 => Ok(()),
            404 => Err(PushError::Gone("FCM answered 404".into())),
            400 | 403 if unregistered(&answer.body) => {
                Err(PushError::Gone("FCM: UNREGISTERED".into()))
            }
            401 => {
                self.forget_token().await;
                Err(PushError::Retry {
                    reason: "FCM refused the access token".into(),
                    after: Some(Duration::from_secs(1)),
                })
            }
            _ => Err(http::retry_or(&answer, "FCM")),
        }
    }
}
