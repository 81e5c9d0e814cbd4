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
    pub checked_in_at: Option<DateTimeUtc>,
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
