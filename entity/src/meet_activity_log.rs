use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// One event on a meet, as live subscriptions replay it: numbered per meet
/// (`seq`, from 1, without gaps), kept for a configured time.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "meet_activity_log")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub meet_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    pub kind: ActivityKind,
    /// The attendee whose answer or arrival it was.
    pub user_id: Option<Uuid>,
    /// The story published about the meet.
    pub story_id: Option<Uuid>,
    pub at: DateTimeUtc,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum ActivityKind {
    #[sea_orm(string_value = "RSVP_CHANGED")]
    RsvpChanged,
    #[sea_orm(string_value = "CHECKED_IN")]
    CheckedIn,
    /// On my way, left, or an on-my-way taken back (HERE is CHECKED_IN).
    #[sea_orm(string_value = "ARRIVAL_CHANGED")]
    ArrivalChanged,
    #[sea_orm(string_value = "MEET_UPDATED")]
    MeetUpdated,
    /// A TENTATIVE meet reached its minimum: it goes ahead.
    #[sea_orm(string_value = "MEET_CONFIRMED")]
    MeetConfirmed,
    #[sea_orm(string_value = "MEET_CANCELLED")]
    MeetCancelled,
    #[sea_orm(string_value = "STORY_PUBLISHED")]
    StoryPublished,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
