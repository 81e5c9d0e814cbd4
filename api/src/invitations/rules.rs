//! Who may do what with invitations: invite (and how many), see an
//! invitation's address and invitee, and which of their invitations an
//! invitee is shown. (Who may see or answer the meet itself is the meets
//! domain's rule, `meets::visibility`.)

use std::{
    future::Future,
    sync::atomic::{AtomicUsize, Ordering},
};

use chrono::{DateTime, Utc};

use entity::{
    attendances::RsvpStatus,
    invitations,
    meets::{self, Visibility},
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    auth::Viewer,
    config::Config,
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

/// Handles and addresses one request may name, across all its
/// `inviteToMeet` fields (aliases): what one request can make the server
/// mail.
pub const MAX_PER_REQUEST: usize = 50;

/// How many handles and addresses a request has named so far. One per HTTP
/// request in the GraphQL context; a WebSocket connection has one for its
/// whole life.
#[derive(Default)]
pub struct RequestAllowance(AtomicUsize);

impl RequestAllowance {
    /// Counts `wanted` more, or refuses them all (`BAD_USER_INPUT`: the same
    /// request will never pass).
    pub fn take(&self, wanted: usize) -> ApiResult<()> {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                used.checked_add(wanted)
                    .filter(|&total| total <= MAX_PER_REQUEST)
            })
            .map(|_| ())
            .map_err(|_| {
                ApiError::bad_input(
                    "handles",
                    format!(
                        "at most {MAX_PER_REQUEST} handles and e-mails in one request, \
                         across all its invitations"
                    ),
                )
            })
    }
}

const DAY: chrono::Duration = chrono::Duration::hours(24);

/// Whether `inviter_id` may create `new` more invitations: at most
/// `TWEETMEET_INVITES_PER_DAY` in any 24 hours, counted from the table (so
/// across processes; the caller holds the inviter's row lock so concurrent
/// requests count one after the other). `RATE_LIMITED` says when enough of
/// them will have aged out.
pub async fn within_daily_limit(
    db: &impl ConnectionTrait,
    config: &Config,
    inviter_id: Uuid,
    new: u64,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    if new == 0 {
        return Ok(());
    }
    let limit = config.invites_per_day;
    if new > limit {
        return Err(ApiError::bad_input(
            "handles",
            format!("at most {limit} invitations in 24 hours"),
        ));
    }
    let recent = invitations::Entity::find()
        .filter(invitations::Column::InviterId.eq(inviter_id))
        .filter(invitations::Column::CreatedAt.gt(now - DAY));
    let made = recent.clone().count(db).await?;
    let excess = (made + new).saturating_sub(limit);
    if excess == 0 {
        return Ok(());
    }
    // Room for `new` comes when the `excess`-th oldest ages out (there is
    // one: `new` alone fits in a day).
    let frees_room = recent
        .order_by_asc(invitations::Column::CreatedAt)
        .offset(excess - 1)
        .one(db)
        .await?
        .map_or(now + DAY, |oldest| oldest.created_at + DAY);
    Err(ApiError::RateLimited {
        message: format!(
            "at most {limit} invitations in 24 hours: {made} made, {new} more asked for"
        ),
        retry_after_secs: u64::try_from((frees_room - now).num_seconds())
            .unwrap_or(0)
            .max(1),
    })
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
