use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Stored lower-case, so uniqueness is case-insensitive.
    #[sea_orm(unique)]
    pub email: String,
    /// Stored lower-case, so uniqueness is case-insensitive.
    #[sea_orm(unique)]
    pub handle: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: Role,
    pub headline: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub region: Option<String>,
    /// Whether the member wants an e-mail when invited.
    pub email_notices: bool,
    pub suspended_at: Option<DateTimeUtc>,
    pub suspension_reason: Option<String>,
    /// Minutes before a meet they are GOING to that they are reminded
    /// (15 to 1,440); `None`: no reminders.
    pub reminder_minutes_before: Option<i32>,
    /// What their calendar feed's secret token is derived from (with the
    /// server's key); a new one ends the old address.
    pub calendar_feed_nonce: Option<String>,
    /// The SHA-256 of that token: how a fetched feed finds its owner.
    pub calendar_feed_hash: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Role {
    #[sea_orm(string_value = "MEMBER")]
    Member,
    #[sea_orm(string_value = "ADMIN")]
    Admin,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
