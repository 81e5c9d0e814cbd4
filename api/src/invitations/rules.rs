//! Who may do what with invitations: invite, and see an invitation's
//! address and invitee. (Who may see or answer the meet itself is the meets
//! domain's rule, `meets::visibility`.)

use std::future::Future;

use entity::{
    attendances::RsvpStatus,
    invitations,
    meets::{self, Visibility},
};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    auth::Viewer,
    error::{ApiError, ApiResult},
    meets::attendance,
};

/// The host may invite to any of their meets; a GOING attendee to a PUBLIC one.
pub async fn may_invite(
    db: &impl ConnectionTrait,
    meet: &meets::Model,
    user_id: Uuid,
) -> ApiResult<()> {
    if meet.host_id == user_id {
        return Ok(());
    }
    let going = attendance::attendance_of(db, meet.id, user_id)
        .await?
        .is_some_and(|a| a.status == RsvpStatus::Going);
    if going && meet.visibility == Visibility::Public {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the host, or a going attendee of a public meet, may invite".into(),
        ))
    }
}

/// Whether the viewer may see the address an invitation went to: the
/// inviter, the invitee, the meet's host and administrators. `host_of_meet`
/// is asked only when the answer depends on it.
pub async fn may_see_email<F>(
    invitation: &invitations::Model,
    viewer: Viewer,
    host_of_meet: impl FnOnce() -> F,
) -> ApiResult<bool>
where
    F: Future<Output = ApiResult<Option<Uuid>>>,
{
    let Some(user_id) = viewer.user_id() else {
        return Ok(false);
    };
    if viewer.is_admin()
        || user_id == invitation.inviter_id
        || Some(user_id) == invitation.invitee_id
    {
        return Ok(true);
    }
    Ok(host_of_meet().await? == Some(user_id))
}

/// Whether the viewer may see who the invitee is. An invitation by address
/// shows its member only to that member and administrators: an address must
/// not reveal whose account it is.
pub fn may_see_invitee(invitation: &invitations::Model, viewer: Viewer) -> bool {
    invitation.email.is_none()
        || invitation
            .invitee_id
            .is_some_and(|id| viewer.user_id() == Some(id))
        || viewer.is_admin()
}
