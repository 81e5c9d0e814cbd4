//! Registering and removing devices, and their rules: a token is the
//! device's identity on its platform (registering it again updates that
//! device, whoever registers it: a browser or phone changing hands); a Web
//! Push subscription's endpoint must be an https URL, with its two keys.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use entity::devices::{self, Platform};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};
use uuid::Uuid;

use crate::{
    auth::viewer::Viewer,
    config::Config,
    error::{ApiError, ApiResult},
};

/// The most devices one member keeps; registering one more forgets the one
/// used least recently.
pub const MAX_DEVICES: usize = 20;
const MAX_TOKEN: usize = 2048;
const MAX_NAME: usize = 100;

/// A device as a client registers it.
pub struct NewDevice {
    pub platform: Platform,
    pub token: String,
    pub name: Option<String>,
    pub web_push_p256dh: Option<String>,
    pub web_push_auth: Option<String>,
}

/// A base64url value of `len` bytes (padding tolerated).
fn key_bytes(field: &str, value: &str, len: usize) -> ApiResult<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| ApiError::bad_input(field, format!("{field} must be base64url")))?;
    if bytes.len() != len {
        return Err(ApiError::bad_input(
            field,
            format!("{field} must be {len} bytes"),
        ));
    }
    Ok(bytes)
}

/// Checks a registration against the platform's rules; the token and keys
/// as they are stored.
fn validate(config: &Config, device: NewDevice) -> ApiResult<NewDevice> {
    let token = device.token.trim().to_owned();
    if token.is_empty() || token.len() > MAX_TOKEN || token.chars().any(char::is_whitespace) {
        return Err(ApiError::bad_input(
            "token",
            format!("token must be 1 to {MAX_TOKEN} characters without spaces"),
        ));
    }
    let name = match device.name.as_deref().map(str::trim) {
        Some("") | None => None,
        Some(name) if name.chars().count() > MAX_NAME => {
            return Err(ApiError::bad_input(
                "name",
                format!("name must be at most {MAX_NAME} characters"),
            ));
        }
        Some(name) => Some(name.to_owned()),
    };
    let (p256dh, auth) = match device.platform {
        Platform::Web => {
            let secure = token.starts_with("https://");
            let stand_in = config
                .web_push_insecure_base
                .as_deref()
                .is_some_and(|base| token.starts_with(base));
            if !(secure || stand_in) || token.parse::<hyper::Uri>().is_err() {
                return Err(ApiError::bad_input(
                    "token",
                    "a Web Push token is the subscription's https endpoint URL",
                ));
            }
            let (Some(p256dh), Some(auth)) = (&device.web_push_p256dh, &device.web_push_auth)
            else {
                return Err(ApiError::bad_input(
                    "webPushP256dh",
                    "a Web Push subscription needs webPushP256dh and webPushAuth",
                ));
            };
            let point = key_bytes("webPushP256dh", p256dh.trim(), 65)?;
            if p256::PublicKey::from_sec1_bytes(&point).is_err() || point[0] != 0x04 {
                return Err(ApiError::bad_input(
                    "webPushP256dh",
                    "webPushP256dh must be an uncompressed P-256 point",
                ));
            }
            let secret = key_bytes("webPushAuth", auth.trim(), 16)?;
            (
                Some(URL_SAFE_NO_PAD.encode(point)),
                Some(URL_SAFE_NO_PAD.encode(secret)),
            )
        }
        Platform::Ios | Platform::Android => {
            if device.web_push_p256dh.is_some() || device.web_push_auth.is_some() {
                return Err(ApiError::bad_input(
                    "webPushP256dh",
                    "webPushP256dh and webPushAuth are for WEB devices only",
                ));
            }
            if device.platform == Platform::Ios
                && !(token.len() >= 32 && token.chars().all(|c| c.is_ascii_hexdigit()))
            {
                return Err(ApiError::bad_input(
                    "token",
                    "an APNs device token is hexadecimal",
                ));
            }
            (None, None)
        }
    };
    Ok(NewDevice {
        platform: device.platform,
        token,
        name,
        web_push_p256dh: p256dh,
        web_push_auth: auth,
    })
}

/// Registers (or takes over) a device for the viewer.
pub async fn register(
    db: &impl ConnectionTrait,
    config: &Config,
    viewer: &Viewer,
    device: NewDevice,
) -> ApiResult<devices::Model> {
    let user = viewer.require()?;
    let device = validate(config, device)?;
    let now = Utc::now();
    devices::Entity::insert(devices::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user),
        platform: Set(device.platform),
        token: Set(device.token.clone()),
        name: Set(device.name),
        web_push_p256dh: Set(device.web_push_p256dh),
        web_push_auth: Set(device.web_push_auth),
        created_at: Set(now),
        last_used_at: Set(None),
    })
    .on_conflict(
        OnConflict::columns([devices::Column::Platform, devices::Column::Token])
            .update_columns([
                devices::Column::UserId,
                devices::Column::Name,
                devices::Column::WebPushP256dh,
                devices::Column::WebPushAuth,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    let registered = devices::Entity::find()
        .filter(devices::Column::Platform.eq(device.platform))
        .filter(devices::Column::Token.eq(device.token))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("device"))?;
    forget_beyond_limit(db, user).await?;
    Ok(registered)
}

/// Keeps a member's newest `MAX_DEVICES` devices (by last use, then
/// registration): an abandoned browser profile does not pile up forever.
async fn forget_beyond_limit(db: &impl ConnectionTrait, user: Uuid) -> ApiResult<()> {
    let mut all = of_user(db, user).await?;
    if all.len() <= MAX_DEVICES {
        return Ok(());
    }
    all.sort_by_key(|d| std::cmp::Reverse(d.last_used_at.unwrap_or(d.created_at)));
    let extra: Vec<Uuid> = all[MAX_DEVICES..].iter().map(|d| d.id).collect();
    devices::Entity::delete_many()
        .filter(devices::Column::Id.is_in(extra))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes one of the viewer's devices; `false` when they have none by that id.
pub async fn unregister(db: &impl ConnectionTrait, viewer: &Viewer, id: &str) -> ApiResult<bool> {
    let user = viewer.require()?;
    let Ok(id) = Uuid::parse_str(id) else {
        return Ok(false);
    };
    let removed = devices::Entity::delete_many()
        .filter(devices::Column::Id.eq(id))
        .filter(devices::Column::UserId.eq(user))
        .exec(db)
        .await?;
    Ok(removed.rows_affected > 0)
}

/// A member's devices, oldest first.
pub async fn of_user(db: &impl ConnectionTrait, user: Uuid) -> ApiResult<Vec<devices::Model>> {
    Ok(devices::Entity::find()
        .filter(devices::Column::UserId.eq(user))
        .order_by_asc(devices::Column::CreatedAt)
        .order_by_asc(devices::Column::Id)
        .all(db)
        .await?)
}
