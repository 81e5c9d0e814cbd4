use sea_orm::entity::prelude::*;

/// Work due at a time: one row per kind and subject (rescheduling moves it).
/// A runner claims due rows by setting `claimed_until` (a lease); the work
/// deletes its row in the transaction that does it, so it is done once, and
/// a claim whose process died runs out and is taken again.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduled_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: JobKind,
    /// What the job is about (a meet to decide, an attendance to remind).
    pub subject_id: Uuid,
    pub due_at: DateTimeUtc,
    pub claimed_until: Option<DateTimeUtc>,
    /// Claims so far: a job that keeps failing backs off.
    pub attempts: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum JobKind {
    /// A TENTATIVE meet's deadline: cancel it unless enough are going.
    #[sea_orm(string_value = "DECIDE_MEET")]
    DecideMeet,
    /// A reminder to one GOING attendee (the subject is the attendance).
    #[sea_orm(string_value = "REMIND")]
    Remind,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
