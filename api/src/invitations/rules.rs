//! Who may do what with invitations: invite, see an invitation's address
//! and invitee, and which of their invitations an invitee is shown. (Who may see or answer the meet itself is the meets
//! domain's rule, `meets::visibility`.)

use std::future::Future;

use entity::{
    attendances::RsvpStatus,
    invitations,
    meets::{self, Visibility},
};
use sea_orm::{Condition, ConnectionTrait, sea_query::Expr};
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

/// An invitee may hold several invitations to one meet (by handle and by
/// address, or at two addresses): the inviters see each apart, the invitee
/// sees one, the one they answered last, else the newest pending one; a
/// revoked one only when they hold nothing else. A condition on
/// `invitations` rows: no other of the invitee's invitations to the same
/// meet ranks before this one.
pub fn shown_to_invitee() -> Condition {
    const RANK: &str = "CASE WHEN {t}.status = 'REVOKED' THEN 2 \
         WHEN {t}.responded_at IS NULL THEN 1 ELSE 0 END";
    const LATEST: &str = "COALESCE({t}.responded_at, {t}.created_at)";
    let [rank, other_rank, latest, other_latest] = [
        (RANK, "invitations"),
        (RANK, "other"),
        (LATEST, "invitations"),
        (LATEST, "other"),
    ]
    .map(|(expr, table)| expr.replace("{t}", table));
    Condition::all().add(Expr::cust(format!(
        "NOT EXISTS (SELECT 1 FROM invitations other \
         WHERE other.meet_id = invitations.meet_id \
         AND other.invitee_id = invitations.invitee_id \
         AND other.id <> invitations.id \
         AND ({other_rank} < {rank} OR ({other_rank} = {rank} \
         AND ({other_latest} > {latest} OR ({other_latest} = {latest} \
         AND other.id > invitations.id)))))"
    )))
}
