use sea_orm::entity::prelude::*;

/// The push outbox: one notice for one device, written in the transaction of
/// the change that causes it and delivered by a background worker with
/// retries, like `notices` (e-mail).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_notices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub device_id: Uuid,
    pub kind: String,
    pub title: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// A JSON object of strings: what a client needs to open the right
    /// screen (`kind`, `meetId`, `invitationId`, `url`).
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    /// Set when the last allowed attempt failed: never claimed again.
    pub dead_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
