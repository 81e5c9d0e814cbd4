//! The lists of invitations: the viewer's own (one per meet, however they
//! were invited) and a meet's, for its host and administrators.

use entity::{
    invitations::{self, InvitationStatus},
    meets,
};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};

use super::rules;
use crate::{
    auth::Viewer,
    error::ApiResult,
    keyset::{Direction, Page, Paged, TimeKey, TimeOrder},
    meets::visibility,
};

/// The viewer's invitations, newest first, one per meet.
#[tracing::instrument(name = "invitations::mine", level = "debug", skip_all)]
pub async fn mine(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    status: Option<InvitationStatus>,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<invitations::Model>> {
    let user_id = viewer.require()?;
    let mut condition = Condition::all()
        .add(invitations::Column::InviteeId.eq(user_id))
        .add(rules::shown_to_invitee());
    if let Some(status) = status {
        condition = condition.add(invitations::Column::Status.eq(status));
    }
    list(db, condition, page).await
}

/// A meet's invitations, for its host and administrators.
#[tracing::instrument(name = "invitations::for_meet", level = "debug", skip_all)]
pub async fn for_meet(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    meet: &meets::Model,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<invitations::Model>> {
    visibility::require_host_or_admin(meet, viewer, "see a meet's invitations")?;
    list(
        db,
        Condition::all().add(invitations::Column::MeetId.eq(meet.id)),
        page,
    )
    .await
}

/// Invitations newest first.
const NEWEST_FIRST: TimeOrder<invitations::Column, invitations::Model> = TimeOrder {
    time: invitations::Column::CreatedAt,
    id: invitations::Column::Id,
    direction: Direction::Descending,
    key: |invitation| TimeKey {
        at: invitation.created_at,
        id: invitation.id,
    },
};

async fn list(
    db: &impl ConnectionTrait,
    condition: Condition,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<invitations::Model>> {
    let query = NEWEST_FIRST.select(invitations::Entity::find().filter(condition), page);
    Ok(NEWEST_FIRST.paged(query.all(db).await?, page, |i| i))
}
