use sea_orm::entity::prelude::*;

/// A phone or browser a member's push notices go to; one per (platform, token).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub platform: Platform,
    /// An APNs device token, an FCM registration token, or a Web Push
    /// subscription's endpoint URL.
    pub token: String,
    pub name: Option<String>,
    /// A Web Push subscription's P-256 public key (base64url, uncompressed point).
    pub web_push_p256dh: Option<String>,
    /// A Web Push subscription's authentication secret (base64url, 16 bytes).
    pub web_push_auth: Option<String>,
    pub created_at: DateTimeUtc,
    /// When a push last reached it.
    pub last_used_at: Option<DateTimeUtc>,
}

/// Which push service reaches a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
pub enum Platform {
    #[sea_orm(string_value = "IOS")]
    Ios,
    #[sea_orm(string_value = "ANDROID")]
    Android,
    #[sea_orm(string_value = "WEB")]
    Web,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
