//! Push notices: to the phones and browsers people registered (`devices`),
//! through the same kind of outbox as e-mail (`push_notices`, written in the
//! transaction of the change, delivered by `worker`). One transport per push
//! service behind `PushTransport`: Web Push (`web`), FCM (`fcm`), APNs
//! (`apns`). A platform without its configuration has no transport: its
//! devices get no notices (none are written), and `pushSetup` leaves it out.

pub mod apns;
pub mod fcm;
pub mod http;
pub mod web;
pub mod worker;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;
use entity::{
    devices::{self, Platform},
    push_notices,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{config::Config, error::ApiResult};

/// What a push says: a short title and body, and the ids a client needs to
/// open the right screen.
#[derive(Clone, Debug)]
pub struct PushMessage {
    pub title: String,
    pub body: String,
    /// `kind` (the `NoticeKind`), `meetId`, `invitationId`, `storyId`, `url`.
    pub data: BTreeMap<String, String>,
}

impl PushMessage {
    /// The JSON a Web Push service worker (or an app) reads:
    /// `{"title", "body", "data": {…}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "title": self.title, "body": self.body, "data": self.data })
    }
}

/// Why a push did not go.
#[derive(Debug)]
pub enum PushError {
    /// The push service says the device is gone (unsubscribed, uninstalled,
    /// a token it no longer knows): the device is removed.
    Gone(String),
    /// Worth trying again: the service was busy (429), failing (5xx) or out
    /// of reach; `after` is its `Retry-After`, when it said.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gone(reason) => write!(f, "device gone: {reason}"),
            Self::Retry { reason, .. } => f.write_str(reason),
        }
    }
}

impl From<anyhow::Error> for PushError {
    fn from(err: anyhow::Error) -> Self {
        Self::Retry {
            reason: format!("{err:#}"),
            after: None,
        }
    }
}

/// A push service: delivers one message to one device of its platform.
#[async_trait]
pub trait PushTransport: Send + Sync {
    fn platform(&self) -> Platform;
    async fn send(&self, device: &devices::Model, message: &PushMessage) -> Result<(), PushError>;
}

/// The push services this server is configured for.
#[derive(Clone, Default)]
pub struct Pushers {
    web: Option<Arc<web::WebPush>>,
    others: Vec<Arc<dyn PushTransport>>,
}

impl Pushers {
    /// From the configuration; `vapid_key` is the configured or the
    /// development key (none: no Web Push).
    pub fn from_config(config: &Config, vapid_key: Option<&str>) -> anyhow::Result<Self> {
        let web = match vapid_key {
            Some(key) => Some(Arc::new(web::WebPush::new(
                key,
                config.vapid_subject.clone(),
            )?)),
            None => None,
        };
        let mut others: Vec<Arc<dyn PushTransport>> = Vec::new();
        if let Some(key_file) = &config.fcm_credentials {
            others.push(Arc::new(
                fcm::Fcm::new(key_file, &config.fcm_base).context("TWEETMEET_FCM_CREDENTIALS")?,
            ));
        }
        if let Some(apns) = &config.apns {
            others.push(Arc::new(
                apns::Apns::new(apns::ApnsSettings {
                    key_file: &apns.key_file,
                    key_id: &apns.key_id,
                    team_id: &apns.team_id,
                    topic: &apns.topic,
                    base: &apns.base,
                })
                .context("TWEETMEET_APNS_KEY_FILE")?,
            ));
        }
        Ok(Self { web, others })
    }

    /// The transport for `platform`, if configured.
    pub fn transport(&self, platform: Platform) -> Option<Arc<dyn PushTransport>> {
        if platform == Platform::Web {
            return self.web.clone().map(|web| web as Arc<dyn PushTransport>);
        }
        self.others
            .iter()
            .find(|t| t.platform() == platform)
            .cloned()
    }

    /// The platforms pushes can go to.
    pub fn platforms(&self) -> Vec<Platform> {
        let mut platforms: Vec<Platform> = self.others.iter().map(|t| t.platform()).collect();
        if self.web.is_some() {
            platforms.push(Platform::Web);
        }
        platforms.sort_by_key(|p| match p {
            Platform::Ios => 0,
            Platform::Android => 1,
            Platform::Web => 2,
        });
        platforms
    }

    /// The VAPID public key (base64url, uncompressed point) browsers
    /// subscribe with.
    pub fn web_push_public_key(&self) -> Option<String> {
        self.web.as_ref().map(|web| web.public_key())
    }
}

/// The platforms the configuration makes push services for: a statement of
/// `Pushers::from_config`'s choice that needs no keys loaded (for writing
/// notices inside transactions).
pub fn configured_platforms(config: &Config) -> Vec<Platform> {
    let mut platforms = Vec::new();
    if config.apns.is_some() {
        platforms.push(Platform::Ios);
    }
    if config.fcm_credentials.is_some() {
        platforms.push(Platform::Android);
    }
    if config.vapid_private_key.is_some() || !config.is_production() {
        platforms.push(Platform::Web);
    }
    platforms
}

/// Writes `message` to the push outbox for each device of `users` on a
/// configured platform, inside the caller's transaction. Returns how many.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    config: &Config,
    kind: &str,
    users: &[Uuid],
    message: &PushMessage,
) -> ApiResult<usize> {
    let platforms = configured_platforms(config);
    if users.is_empty() || platforms.is_empty() {
        return Ok(0);
    }
    let targets = devices::Entity::find()
        .filter(devices::Column::UserId.is_in(users.iter().copied()))
        .filter(devices::Column::Platform.is_in(platforms))
        .all(db)
        .await?;
    if targets.is_empty() {
        return Ok(0);
    }
    let now = Utc::now();
    let data = serde_json::to_string(&message.data).unwrap_or_else(|_| "{}".to_owned());
    let rows: Vec<push_notices::ActiveModel> = targets
        .iter()
        .map(|device| push_notices::ActiveModel {
            id: Set(Uuid::now_v7()),
            device_id: Set(device.id),
            kind: Set(kind.to_owned()),
            title: Set(message.title.clone()),
            body: Set(message.body.clone()),
            data: Set(data.clone()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            sent_at: Set(None),
            last_error: Set(None),
            dead_at: Set(None),
            created_at: Set(now),
        })
        .collect();
    let count = rows.len();
    push_notices::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(count)
}
