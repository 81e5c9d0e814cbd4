//! GraphQL types of devices and push.

use async_graphql::{Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::devices;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::devices::Platform")]
pub enum DevicePlatform {
    Ios,
    Android,
    Web,
}

/// A phone or browser the viewer's push notices go to.
pub struct Device(pub devices::Model);

#[Object]
impl Device {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn platform(&self) -> DevicePlatform {
        self.0.platform.into()
    }

    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When a push last reached it.
    async fn last_used_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_used_at
    }
}

/// `IOS`: an APNs device token (hex); `ANDROID`: an FCM registration token;
/// `WEB`: a Web Push subscription: its endpoint URL as the token, with its
/// `p256dh` and `auth` keys (base64url, as `PushSubscription.toJSON()` gives them).
#[derive(InputObject)]
pub struct RegisterDeviceInput {
    pub platform: DevicePlatform,
    pub token: String,
    pub name: Option<String>,
    #[graphql(name = "webPushP256dh")]
    pub web_push_p256dh: Option<String>,
    pub web_push_auth: Option<String>,
}

/// What a client needs to receive push notices from this server.
#[derive(SimpleObject)]
pub struct PushSetup {
    /// The VAPID public key (`applicationServerKey`, base64url); `null`
    /// when this server has no Web Push.
    pub web_push_public_key: Option<String>,
    /// The platforms this server can push to.
    pub platforms: Vec<DevicePlatform>,
}
