use sea_orm::entity::prelude::*;

/// A user's channels for one kind of notice; a kind without a row keeps the
/// defaults (`api`'s `notices::preferences`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_preferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: NoticeKind,
    pub email: bool,
    pub push: bool,
}

/// What a notice is about, as people choose how to hear of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum NoticeKind {
    #[sea_orm(string_value = "INVITATION")]
    Invitation,
    #[sea_orm(string_value = "WAITLIST_PROMOTED")]
    WaitlistPromoted,
    #[sea_orm(string_value = "MEET_CHANGED")]
    MeetChanged,
    #[sea_orm(string_value = "MEET_CONFIRMED")]
    MeetConfirmed,
    #[sea_orm(string_value = "MEET_CANCELLED")]
    MeetCancelled,
    #[sea_orm(string_value = "REMINDER")]
    Reminder,
    #[sea_orm(string_value = "STORY_ABOUT_MY_MEET")]
    StoryAboutMyMeet,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
