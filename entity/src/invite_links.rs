use sea_orm::entity::prelude::*;

/// A link a host shares a meet through on one channel (a tweet, a
/// newsletter). Its token is kept for the host's `url` and looked up by its
/// SHA-256 (`token_hash`, unique); `uses` counts the invitations it gave,
/// within `max_uses` (a CHECK), `opens` every open (a signed-in user once).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invite_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub meet_id: Uuid,
    pub created_by: Uuid,
    pub channel: String,
    pub token: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub expires_at: Option<DateTimeUtc>,
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub opens: i32,
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::meets::Entity",
        from = "Column::MeetId",
        to = "super::meets::Column::Id"
    )]
    Meet,
}

impl Related<super::meets::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Meet.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
