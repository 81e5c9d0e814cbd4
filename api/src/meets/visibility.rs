//! Who may see, answer and edit a meet: the meets domain's access rules, in
//! one place.
//!
//! Seeing: a PUBLIC meet, everyone, anonymous callers included. An
//! INVITE_ONLY meet: its host, users holding a pending or accepted invitation
//! to it, and administrators; to anyone else it does not exist. Written twice
//! on purpose, and only here: as a query condition for lists, and as an
//! in-memory check (`can_see`) for events already loaded and for the
//! recipients of notices (`who_may_see`).
//!
//! Answering: whoever sees a PUBLIC meet; an INVITE_ONLY one, its host and
//! its invitees (an administrator sees it but was not invited).
//!
//! Editing (changing, cancelling, listing invitations): the host or an
//! administrator.
//!
//! Seeing the guest list's names (`attendee_visibility`), among those who see
//! the meet: the host and administrators always; otherwise PUBLIC, everyone;
//! ATTENDEES, whoever answered GOING, MAYBE or WAITLISTED; ARRIVED, whoever
//! has checked in; HOST, nobody else. Everyone who sees the meet sees its
//! counts, and their own attendance. Written twice, and only here: in memory
//! from the viewer's own attendance (`sees_attendees`), and as the set of
//! users it admits (`attendee_seers`) for live events, checked per
//! subscriber by `sees_attendees_among`.

use std::collections::HashSet;

use entity::{
    attendances::{self, RsvpStatus},
    invitations::{self, InvitationStatus},
    meets::{self, AttendeeVisibility, Visibility},
    users::{self, Role},
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    QuerySelect, QueryTrait, sea_query::IntoCondition,
};
use uuid::Uuid;

use crate::{
    auth::Viewer,
    error::{ApiError, ApiResult},
};

/// Invitation states that let their invitee see an INVITE_ONLY meet.
pub const SEEING_INVITATIONS: [InvitationStatus; 2] =
    [InvitationStatus::Pending, InvitationStatus::Accepted];

/// A condition on `meets` rows: those the viewer may see. Every look-up of a
/// meet on a viewer's behalf goes through it (`find_visible`, `lock_visible`,
/// the lists, the loaders).
pub fn condition(viewer: Viewer) -> Condition {
    match viewer {
        Viewer::Anonymous => meets::Column::Visibility
            .eq(Visibility::Public)
            .into_condition(),
        Viewer::User { .. } if viewer.is_admin() => Condition::all(),
        Viewer::User { id, .. } => Condition::any()
            .add(meets::Column::Visibility.eq(Visibility::Public))
            .add(meets::Column::HostId.eq(id))
            .add(meets::Column::Id.in_subquery(invited_meets(id))),
    }
}

/// The meet if the viewer may see it; otherwise it does not exist for them.
#[tracing::instrument(name = "meets::find_visible", level = "debug", skip_all)]
pub async fn find_visible(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<Option<meets::Model>> {
    Ok(meets::Entity::find_by_id(id)
        .filter(condition(viewer))
        .one(db)
        .await?)
}

/// The meet with its host, if the viewer may see it (one statement).
#[tracing::instrument(name = "meets::find_visible_with_host", level = "debug", skip_all)]
pub async fn find_visible_with_host(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<Option<(meets::Model, users::Model)>> {
    let row = meets::Entity::find_by_id(id)
        .find_also_related(users::Entity)
        .filter(condition(viewer))
        .one(db)
        .await?;
    Ok(row.and_then(|(meet, host)| host.map(|h| (meet, h))))
}

/// Loads and row-locks a visible meet inside a write transaction.
pub async fn lock_visible(
    txn: &DatabaseTransaction,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<meets::Model> {
    meets::Entity::find_by_id(id)
        .filter(condition(viewer))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("meet"))
}

/// `SELECT meet_id FROM invitations` that let `user_id` see the meet.
fn invited_meets(user_id: Uuid) -> sea_orm::sea_query::SelectStatement {
    invitations::Entity::find()
        .select_only()
        .column(invitations::Column::MeetId)
        .filter(invitations::Column::InviteeId.eq(user_id))
        .filter(invitations::Column::Status.is_in(SEEING_INVITATIONS))
        .into_query()
}

/// Of `users`, those holding an invitation that lets them see (and answer)
/// the meet: one statement.
async fn invitees_among(
    db: &impl ConnectionTrait,
    meet_id: Uuid,
    users: &[Uuid],
) -> Result<HashSet<Uuid>, DbErr> {
    if users.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = invitations::Entity::find()
        .filter(invitations::Column::MeetId.eq(meet_id))
        .filter(invitations::Column::InviteeId.is_in(users.iter().copied()))
        .filter(invitations::Column::Status.is_in(SEEING_INVITATIONS))
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(|i| i.invitee_id).collect())
}

/// The answering rule for a meet in memory, given who of those asked about
/// holds a seeing invitation.
fn may_answer(meet: &meets::Model, user_id: Uuid, invitees: &HashSet<Uuid>) -> bool {
    meet.visibility == Visibility::Public || meet.host_id == user_id || invitees.contains(&user_id)
}

/// Of `users` (who see the meet), those who may answer it: one statement
/// for an INVITE_ONLY meet, none for a PUBLIC one.
pub async fn who_may_answer(
    db: &impl ConnectionTrait,
    meet: &meets::Model,
    users: &[Uuid],
) -> Result<HashSet<Uuid>, DbErr> {
    let invitees = match meet.visibility {
        Visibility::Public => HashSet::new(),
        Visibility::InviteOnly => invitees_among(db, meet.id, users).await?,
    };
    Ok(users
        .iter()
        .copied()
        .filter(|&user| may_answer(meet, user, &invitees))
        .collect())
}

/// Whether `user_id`, who sees the meet, may answer it.
pub async fn require_may_answer(
    db: &impl ConnectionTrait,
    meet: &meets::Model,
    user_id: Uuid,
) -> ApiResult<()> {
    if !who_may_answer(db, meet, &[user_id])
        .await?
        .contains(&user_id)
    {
        return Err(ApiError::Forbidden(
            "only the host and invitees may answer an invite-only meet".into(),
        ));
    }
    Ok(())
}

/// Of `users`, those who may see the meet (`can_see` for each): for whom
/// notices about it are. One statement for an INVITE_ONLY meet, none for a
/// PUBLIC one.
pub async fn who_may_see<'u>(
    db: &impl ConnectionTrait,
    meet: &meets::Model,
    users: &'u [users::Model],
) -> Result<Vec<&'u users::Model>, DbErr> {
    let invitees = match meet.visibility {
        Visibility::Public => HashSet::new(),
        Visibility::InviteOnly => {
            // The host and administrators see it whatever they hold.
            let others: Vec<Uuid> = users
                .iter()
                .filter(|u| u.id != meet.host_id && u.role != Role::Admin)
                .map(|u| u.id)
                .collect();
            invitees_among(db, meet.id, &others).await?
        }
    };
    Ok(users
        .iter()
        .filter(|user| {
            let viewer = Viewer::User {
                id: user.id,
                role: user.role,
            };
            can_see(meet, viewer, &invitees)
        })
        .collect())
}

/// `action`: what is refused, as in "only the host or an administrator may …".
pub fn require_host_or_admin(meet: &meets::Model, viewer: Viewer, action: &str) -> ApiResult<()> {
    if viewer.user_id() == Some(meet.host_id) || viewer.is_admin() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "only the host or an administrator may {action}"
        )))
    }
}

/// Everyone holding a seeing invitation to the meet: what `can_see` needs.
pub async fn invitees(db: &impl ConnectionTrait, meet_id: Uuid) -> Result<HashSet<Uuid>, DbErr> {
    let rows = invitations::Entity::find()
        .filter(invitations::Column::MeetId.eq(meet_id))
        .filter(invitations::Column::Status.is_in(SEEING_INVITATIONS))
        .filter(invitations::Column::InviteeId.is_not_null())
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(|i| i.invitee_id).collect())
}

/// The same rule for a meet already in memory, given who holds a seeing
/// invitation to it (only needed for INVITE_ONLY meets).
pub fn can_see(meet: &meets::Model, viewer: Viewer, invitees: &HashSet<Uuid>) -> bool {
    match (meet.visibility, viewer) {
        (Visibility::Public, _) => true,
        (Visibility::InviteOnly, Viewer::Anonymous) => false,
        (Visibility::InviteOnly, Viewer::User { id, .. }) => {
            viewer.is_admin() || meet.host_id == id || invitees.contains(&id)
        }
    }
}

/// Answers that let their holder see an ATTENDEES guest list.
const ATTENDING: [RsvpStatus; 3] = [RsvpStatus::Going, RsvpStatus::Maybe, RsvpStatus::Waitlisted];

/// Whether the host's setting alone decides for `viewer`: `Some(true)` for
/// the host, administrators and a PUBLIC list, `Some(false)` for a HOST list
/// and anonymous callers of any other; `None` when it depends on the
/// viewer's own attendance.
fn attendee_rule(meet: &meets::Model, viewer: Viewer) -> Option<bool> {
    if viewer.is_admin() || viewer.user_id() == Some(meet.host_id) {
        return Some(true);
    }
    match (meet.attendee_visibility, viewer) {
        (AttendeeVisibility::Public, _) => Some(true),
        (AttendeeVisibility::Host, _) | (_, Viewer::Anonymous) => Some(false),
        (AttendeeVisibility::Attendees | AttendeeVisibility::Arrived, _) => None,
    }
}

/// Whether `viewer`, who sees the meet, may see its guest list's names,
/// given their own attendance to it (`None` if they never answered).
pub fn sees_attendees(
    meet: &meets::Model,
    viewer: Viewer,
    own: Option<&attendances::Model>,
) -> bool {
    attendee_rule(meet, viewer).unwrap_or_else(|| match (meet.attendee_visibility, own) {
        (AttendeeVisibility::Attendees, Some(own)) => ATTENDING.contains(&own.status),
        (AttendeeVisibility::Arrived, Some(own)) => own.checked_in_at.is_some(),
        _ => false,
    })
}

/// The users whose own attendance lets them see the meet's names (the host
/// and administrators aside): one statement for an ATTENDEES or ARRIVED
/// list, none otherwise.
pub async fn attendee_seers(
    db: &impl ConnectionTrait,
    meet: &meets::Model,
) -> Result<HashSet<Uuid>, DbErr> {
    let admitted = match meet.attendee_visibility {
        AttendeeVisibility::Attendees => attendances::Column::Status.is_in(ATTENDING),
        AttendeeVisibility::Arrived => attendances::Column::CheckedInAt.is_not_null(),
        AttendeeVisibility::Public | AttendeeVisibility::Host => return Ok(HashSet::new()),
    };
    let users: Vec<Uuid> = attendances::Entity::find()
        .select_only()
        .column(attendances::Column::UserId)
        .filter(attendances::Column::MeetId.eq(meet.id))
        .filter(admitted)
        .into_tuple()
        .all(db)
        .await?;
    Ok(users.into_iter().collect())
}

/// `sees_attendees` for a live event, given `attendee_seers`.
pub fn sees_attendees_among(meet: &meets::Model, viewer: Viewer, seers: &HashSet<Uuid>) -> bool {
    attendee_rule(meet, viewer)
        .unwrap_or_else(|| viewer.user_id().is_some_and(|id| seers.contains(&id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use entity::meets::MeetStatus;

    fn meet(visibility: Visibility, host_id: Uuid) -> meets::Model {
        let now = Utc::now();
        meets::Model {
            id: Uuid::now_v7(),
            host_id,
            title: "t".into(),
            description: None,
            venue_name: "v".into(),
            address: None,
            latitude: None,
            longitude: None,
            region: None,
            region_key: None,
            time_zone: None,
            starts_at: now,
            ends_at: None,
            effective_end_at: now,
            capacity: None,
            going_count: 1,
            checked_in_count: 0,
            here_count: 0,
            on_the_way_count: 0,
            visibility,
            attendee_visibility: AttendeeVisibility::Public,
            status: MeetStatus::Scheduled,
            cancellation_reason: None,
            cancelled_at: None,
            minimum_going: None,
            decide_by: None,
            confirmed_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn invite_only_meets_are_seen_by_host_invitees_and_admins() {
        let (host, invitee, stranger, admin) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let private = meet(Visibility::InviteOnly, host);
        let invitees = HashSet::from([invitee]);
        let user = |id| Viewer::User {
            id,
            role: Role::Member,
        };
        assert!(can_see(&private, user(host), &invitees));
        assert!(can_see(&private, user(invitee), &invitees));
        assert!(can_see(
            &private,
            Viewer::User {
                id: admin,
                role: Role::Admin
            },
            &invitees
        ));
        assert!(!can_see(&private, user(stranger), &invitees));
        assert!(!can_see(&private, Viewer::Anonymous, &invitees));
        assert!(can_see(
            &meet(Visibility::Public, host),
            Viewer::Anonymous,
            &HashSet::new()
        ));
    }
}
