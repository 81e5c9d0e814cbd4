use sea_orm::entity::prelude::*;

/// When an address was last mailed an invitation to a meet: what holds it to
/// one such e-mail per interval, however often it is invited.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitation_mails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub meet_id: Uuid,
    /// Lower-cased.
    #[sea_orm(primary_key, auto_increment = false)]
    pub email: String,
    pub sent_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
