use sea_orm::entity::prelude::*;

/// An invitation to a meet: by handle (`invitee_id`, no `email`; one per
/// member and meet), or by address (`email`; one per address and meet), with
/// `invitee_id` set when the address is a member's or once claimed, and a
/// claim token stored only as a hash. A member may hold one of each kind.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub meet_id: Uuid,
    pub inviter_id: Uuid,
    pub invitee_id: Option<Uuid>,
    /// Lower-cased address the invitation was sent to, when sent by e-mail.
    pub email: Option<String>,
    pub message: Option<String>,
    pub status: InvitationStatus,
    #[sea_orm(unique)]
    pub claim_token_hash: Option<String>,
    pub claim_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub responded_at: Option<DateTimeUtc>,
    /// The invite link the invitee came through, when they did.
    pub invite_link_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum InvitationStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "ACCEPTED")]
    Accepted,
    #[sea_orm(string_value = "DECLINED")]
    Declined,
    #[sea_orm(string_value = "REVOKED")]
    Revoked,
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
