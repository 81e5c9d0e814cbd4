use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "meets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub host_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub venue_name: String,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub region: Option<String>,
    /// `region` lower-cased: the key the case-insensitive region filter uses.
    pub region_key: Option<String>,
    /// IANA zone the meet's local time is shown in (e-mails); None = the configured default.
    pub time_zone: Option<String>,
    pub starts_at: DateTimeUtc,
    pub ends_at: Option<DateTimeUtc>,
    /// `ends_at`, or 4 hours after the start without one: what "has ended" compares.
    pub effective_end_at: DateTimeUtc,
    pub capacity: Option<i32>,
    /// Kept by conditional updates in the same transaction as the attendance
    /// change; a CHECK holds it within capacity.
    pub going_count: i32,
    pub checked_in_count: i32,
    /// Attendances HERE and ON_MY_WAY, kept like `going_count`; they read 0
    /// once the meet has ended.
    pub here_count: i32,
    pub on_the_way_count: i32,
    pub visibility: Visibility,
    /// Who may see the guest list's names (the counts are everyone's).
    pub attendee_visibility: AttendeeVisibility,
    pub status: MeetStatus,
    pub cancellation_reason: Option<String>,
    pub cancelled_at: Option<DateTimeUtc>,
    /// Go / no-go: with a minimum (and a `decide_by`, set together), a
    /// scheduled meet is TENTATIVE until `confirmed_at`, set by the answer
    /// that reaches it; at `decide_by` without it, the meet is cancelled.
    pub minimum_going: Option<i32>,
    pub decide_by: Option<DateTimeUtc>,
    pub confirmed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Visibility {
    #[sea_orm(string_value = "PUBLIC")]
    Public,
    #[sea_orm(string_value = "INVITE_ONLY")]
    InviteOnly,
}

/// Who, of those who may see a meet, may see who is coming (`api`'s
/// `meets::visibility` holds the rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum AttendeeVisibility {
    #[sea_orm(string_value = "PUBLIC")]
    Public,
    #[sea_orm(string_value = "ATTENDEES")]
    Attendees,
    #[sea_orm(string_value = "ARRIVED")]
    Arrived,
    #[sea_orm(string_value = "HOST")]
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum MeetStatus {
    #[sea_orm(string_value = "SCHEDULED")]
    Scheduled,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::HostId",
        to = "super::users::Column::Id"
    )]
    Host,
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Host.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
