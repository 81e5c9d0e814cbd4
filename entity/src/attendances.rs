use sea_orm::entity::prelude::*;

/// One user's answer to one meet (unique per pair).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attendances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub meet_id: Uuid,
    pub user_id: Uuid,
    pub status: RsvpStatus,
    /// When the current answer was given; the waitlist is served in this order.
    pub responded_at: DateTimeUtc,
    /// Set by the first check-in (a HERE); kept when the attendee leaves.
    pub checked_in_at: Option<DateTimeUtc>,
    /// As stored: once the meet has ended, HERE reads LEFT and ON_MY_WAY reads
    /// NOT_YET (`api`'s `rules::arrival_now`), so nothing has to run at the end.
    pub arrival: ArrivalState,
    /// When an attendee ON_MY_WAY expects to arrive.
    pub eta_at: Option<DateTimeUtc>,
    pub left_at: Option<DateTimeUtc>,
    /// The attendee would like the host to introduce them around.
    pub introduce_me: bool,
    /// Who or what they came for (0 to 140 characters).
    pub hoping_to_meet: Option<String>,
}

/// Where an attendee is on the night; anything but NOT_YET only while GOING
/// (a CHECK holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ArrivalState {
    #[sea_orm(string_value = "NOT_YET")]
    NotYet,
    #[sea_orm(string_value = "ON_MY_WAY")]
    OnMyWay,
    #[sea_orm(string_value = "HERE")]
    Here,
    #[sea_orm(string_value = "LEFT")]
    Left,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum RsvpStatus {
    #[sea_orm(string_value = "GOING")]
    Going,
    #[sea_orm(string_value = "MAYBE")]
    Maybe,
    #[sea_orm(string_value = "NOT_GOING")]
    NotGoing,
    #[sea_orm(string_value = "WAITLISTED")]
    Waitlisted,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::meets::Entity",
        from = "Column::MeetId",
        to = "super::meets::Column::Id"
    )]
    Meet,
    #[sea_orm(
        belongs_to = "super::users::Entity",
        from = "Column::UserId",
        to = "super::users::Column::Id"
    )]
    User,
}

impl Related<super::meets::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Meet.def()
    }
}

impl Related<super::users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
