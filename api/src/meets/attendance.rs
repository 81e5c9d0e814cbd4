//! Attendance: answers (GOING, MAYBE, NOT_GOING), the waitlist, seats and
//! check-ins, and the guest list. Seats are taken with conditional updates
//! on the going count inside the meet's write transaction, so capacity holds
//! under any concurrency; a CHECK constraint backs it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{
    attendances::{self, ArrivalState, RsvpStatus},
    meets::{self, MeetStatus},
    users,
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, Order, QueryFilter,
    QueryOrder, QuerySelect,
    sea_query::{Alias, Expr, ExprTrait},
};
use uuid::Uuid;

use super::{
    lifecycle, reminders,
    rules::{self, require_open},
    visibility::{self, lock_visible},
};
use crate::{
    auth::Viewer,
    config::Config,
    db::{begin_write, with_related},
    error::{ApiError, ApiResult},
    events::{ActivityKind, Event},
    keyset::{Page, Paged, RankedTimeKey, TimeKey, after_ranked_key},
    notices,
    state::Services,
    validate,
};

/// The answers a member may give (WAITLISTED is the server's to give).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Going,
    Maybe,
    NotGoing,
}

/// The viewer's answers to a page of meets, in one statement.
#[tracing::instrument(name = "meets::attendances_of", level = "debug", skip_all)]
pub async fn attendances_of(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    meet_ids: impl IntoIterator<Item = Uuid>,
) -> ApiResult<HashMap<Uuid, attendances::Model>> {
    let rows = attendances::Entity::find()
        .filter(attendances::Column::UserId.eq(user_id))
        .filter(attendances::Column::MeetId.is_in(meet_ids))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|a| (a.meet_id, a)).collect())
}

/// Takes a seat if one is free: the conditional update is the capacity check.
async fn take_seat(txn: &DatabaseTransaction, meet_id: Uuid) -> ApiResult<bool> {
    let result = meets::Entity::update_many()
        .col_expr(
            meets::Column::GoingCount,
            Expr::col(meets::Column::GoingCount).add(1),
        )
        .filter(meets::Column::Id.eq(meet_id))
        .filter(
            Condition::any()
                .add(meets::Column::Capacity.is_null())
                .add(Expr::col(meets::Column::GoingCount).lt(Expr::col(meets::Column::Capacity))),
        )
        .exec(txn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives up a seat, and with it the attendance's check-in and arrival.
async fn release_seat(txn: &DatabaseTransaction, seated: &attendances::Model) -> ApiResult<()> {
    let mut update = meets::Entity::update_many()
        .col_expr(
            meets::Column::GoingCount,
            Expr::col(meets::Column::GoingCount).sub(1),
        )
        .filter(meets::Column::Id.eq(seated.meet_id));
    if seated.checked_in_at.is_some() {
        update = update.col_expr(
            meets::Column::CheckedInCount,
            Expr::col(meets::Column::CheckedInCount).sub(1),
        );
    }
    for (column, delta) in arrival_counts(seated.arrival, ArrivalState::NotYet) {
        update = update.col_expr(column, Expr::col(column).add(delta));
    }
    update.exec(txn).await?;
    Ok(())
}

/// The meet's arrival counters a move from `from` to `to` changes, by how much.
fn arrival_counts(from: ArrivalState, to: ArrivalState) -> Vec<(meets::Column, i32)> {
    let counter = |state| match state {
        ArrivalState::Here => Some(meets::Column::HereCount),
        ArrivalState::OnMyWay => Some(meets::Column::OnTheWayCount),
        ArrivalState::NotYet | ArrivalState::Left => None,
    };
    if from == to {
        return Vec::new();
    }
    counter(from)
        .map(|c| (c, -1))
        .into_iter()
        .chain(counter(to).map(|c| (c, 1)))
        .collect()
}

/// Seats the longest-waiting attendees while seats are free, in answer order.
/// Returns an event for each one promoted.
pub(super) async fn promote_waitlisted(
    txn: &DatabaseTransaction,
    config: &Config,
    meet: &meets::Model,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Event>> {
    let meet_id = meet.id;
    let mut events = Vec::new();
    loop {
        let Some(next) = attendances::Entity::find()
            .filter(attendances::Column::MeetId.eq(meet_id))
            .filter(attendances::Column::Status.eq(RsvpStatus::Waitlisted))
            .order_by_asc(attendances::Column::RespondedAt)
            .order_by_asc(attendances::Column::Id)
            .one(txn)
            .await?
        else {
            break;
        };
        if !take_seat(txn, meet_id).await? {
            break;
        }
        // The answer time stays: it is when they answered, not when seated.
        attendances::Entity::update_many()
            .col_expr(attendances::Column::Status, Expr::value(RsvpStatus::Going))
            .filter(attendances::Column::Id.eq(next.id))
            .exec(txn)
            .await?;
        reminders::schedule(txn, &next, meet.starts_at, now).await?;
        notices::promoted(txn, config, meet, next.user_id).await?;
        events.push(Event::NoticesQueued);
        events.push(Event::meet_activity(
            ActivityKind::RsvpChanged,
            meet_id,
            Some(next.user_id),
            now,
        ));
    }
    Ok(events)
}

#[tracing::instrument(name = "meets::rsvp", level = "debug", skip_all)]
pub async fn rsvp(
    services: &Services,
    viewer: Viewer,
    meet_id: Uuid,
    answer: Answer,
) -> ApiResult<attendances::Model> {
    let user_id = viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let meet = lock_visible(&txn, viewer, meet_id).await?;
    visibility::require_may_answer(&txn, &meet, user_id).await?;
    let now = Utc::now();
    require_open(&meet, now)?;
    let existing = attendance_of(&txn, meet_id, user_id).await?;
    let (attendance, events) = answer_in(
        &txn,
        &services.config,
        &meet,
        user_id,
        existing,
        answer,
        now,
    )
    .await?;
    services.events.commit(txn, events).await?;
    Ok(attendance)
}

/// Takes a member's answer back (it becomes NOT_GOING, a seat going to the
/// waitlist), unless there is none to take back or the meet has ended.
/// Returns the events to publish with the change.
pub(crate) async fn withdraw_answer(
    txn: &DatabaseTransaction,
    config: &Config,
    meet: &meets::Model,
    user_id: Uuid,
    existing: Option<attendances::Model>,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Event>> {
    match existing {
        Some(attendance)
            if attendance.status != RsvpStatus::NotGoing && meet.effective_end_at > now =>
        {
            let (_, events) = answer_in(
                txn,
                config,
                meet,
                user_id,
                Some(attendance),
                Answer::NotGoing,
                now,
            )
            .await?;
            Ok(events)
        }
        _ => Ok(Vec::new()),
    }
}

/// When a meet becomes INVITE_ONLY: takes back, as `withdraw_answer` does,
/// the answers of those who may no longer answer it (no seeing invitation;
/// the host keeps theirs), their seats going to the waitlist. The waitlisted
/// and the undecided go first, so no one about to lose their answer is
/// seated on the way. Returns the events to publish with the change.
pub(super) async fn withdraw_uninvited(
    txn: &DatabaseTransaction,
    config: &Config,
    meet: &meets::Model,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Event>> {
    let mut answers = attendances::Entity::find()
        .filter(attendances::Column::MeetId.eq(meet.id))
        .filter(attendances::Column::Status.ne(RsvpStatus::NotGoing))
        .all(txn)
        .await?;
    let users: Vec<Uuid> = answers.iter().map(|a| a.user_id).collect();
    let may_answer = visibility::who_may_answer(txn, meet, &users).await?;
    answers.retain(|a| !may_answer.contains(&a.user_id));
    answers.sort_by_key(|a| a.status == RsvpStatus::Going);
    let mut events = Vec::new();
    for answer in answers {
        let user_id = answer.user_id;
        events.extend(withdraw_answer(txn, config, meet, user_id, Some(answer), now).await?);
    }
    Ok(events)
}

/// Records `answer` inside an open write transaction holding the meet's lock
/// (shared with accepting an invitation). The same answer twice changes
/// nothing, and keeps the original answer time.
pub(crate) async fn answer_in(
    txn: &DatabaseTransaction,
    config: &Config,
    meet: &meets::Model,
    user_id: Uuid,
    existing: Option<attendances::Model>,
    answer: Answer,
    now: DateTime<Utc>,
) -> ApiResult<(attendances::Model, Vec<Event>)> {
    let current = existing.as_ref().map(|a| a.status);
    let unchanged = matches!(
        (current, answer),
        (
            Some(RsvpStatus::Going | RsvpStatus::Waitlisted),
            Answer::Going
        ) | (Some(RsvpStatus::Maybe), Answer::Maybe)
            | (Some(RsvpStatus::NotGoing), Answer::NotGoing)
    );
    if let (true, Some(existing)) = (unchanged, existing.clone()) {
        return Ok((existing, Vec::new()));
    }
    if meet.host_id == user_id {
        return Err(ApiError::bad_input(
            "status",
            "the host is always going; cancel the meet instead",
        ));
    }
    let mut events = Vec::new();
    let status = match answer {
        Answer::Going if take_seat(txn, meet.id).await? => RsvpStatus::Going,
        Answer::Going => RsvpStatus::Waitlisted,
        Answer::Maybe => RsvpStatus::Maybe,
        Answer::NotGoing => RsvpStatus::NotGoing,
    };
    let was_going = current == Some(RsvpStatus::Going);
    if let Some(seated) = existing.as_ref().filter(|_| was_going) {
        release_seat(txn, seated).await?;
    }
    // A new answer starts the night over: no check-in, no arrival.
    let attendance = match existing {
        Some(existing) => {
            let mut active: attendances::ActiveModel = existing.into();
            active.status = Set(status);
            active.responded_at = Set(now);
            active.checked_in_at = Set(None);
            active.arrival = Set(ArrivalState::NotYet);
            active.eta_at = Set(None);
            active.left_at = Set(None);
            active.update(txn).await?
        }
        None => {
            new_attendance(meet.id, user_id, status, now)
                .insert(txn)
                .await?
        }
    };
    if status == RsvpStatus::Going {
        reminders::schedule(txn, &attendance, meet.starts_at, now).await?;
    } else if was_going {
        reminders::drop(txn, attendance.id).await?;
    }
    events.push(Event::meet_activity(
        ActivityKind::RsvpChanged,
        meet.id,
        Some(user_id),
        now,
    ));
    if status == RsvpStatus::Going {
        events.extend(lifecycle::confirm_if_enough(txn, config, meet.id, now).await?);
    }
    if was_going {
        events.extend(promote_waitlisted(txn, config, meet, now).await?);
    }
    Ok((attendance, events))
}

/// The user's answer to the meet, if any.
pub(crate) async fn attendance_of(
    db: &impl ConnectionTrait,
    meet_id: Uuid,
    user_id: Uuid,
) -> ApiResult<Option<attendances::Model>> {
    Ok(attendances::Entity::find()
        .filter(attendances::Column::MeetId.eq(meet_id))
        .filter(attendances::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}

/// A new attendance: answered now, not arrived, asking for nothing.
pub(crate) fn new_attendance(
    meet_id: Uuid,
    user_id: Uuid,
    status: RsvpStatus,
    now: DateTime<Utc>,
) -> attendances::ActiveModel {
    attendances::ActiveModel {
        id: Set(Uuid::now_v7()),
        meet_id: Set(meet_id),
        user_id: Set(user_id),
        status: Set(status),
        responded_at: Set(now),
        checked_in_at: Set(None),
        arrival: Set(ArrivalState::NotYet),
        eta_at: Set(None),
        left_at: Set(None),
        introduce_me: Set(false),
        hoping_to_meet: Set(None),
    }
}

/// The viewer's GOING attendance to a meet that is open for arrivals, with
/// the meet, locked for the change.
async fn lock_arriving(
    txn: &DatabaseTransaction,
    viewer: Viewer,
    meet_id: Uuid,
) -> ApiResult<(meets::Model, attendances::Model)> {
    let user_id = viewer.require()?;
    let meet = lock_visible(txn, viewer, meet_id).await?;
    if meet.status == MeetStatus::Cancelled {
        return Err(ApiError::Conflict("this meet is cancelled".into()));
    }
    let attendance = attendance_of(txn, meet_id, user_id)
        .await?
        .filter(|a| a.status == RsvpStatus::Going)
        .ok_or_else(|| {
            ApiError::Forbidden("only attendees who are going can check in or arrive".into())
        })?;
    Ok((meet, attendance))
}

/// Moves a GOING attendance to `wanted` (the rules: `rules::arrival_change`)
/// with the meet's counters, in the caller's transaction; the event to
/// publish, if anything changed. HERE is the check-in: the first one sets
/// `checked_in_at` and counts, later ones (back after leaving) keep it.
async fn arrive_in(
    txn: &DatabaseTransaction,
    meet: &meets::Model,
    attendance: attendances::Model,
    wanted: ArrivalState,
    eta_minutes: Option<i32>,
    now: DateTime<Utc>,
) -> ApiResult<(attendances::Model, Option<Event>)> {
    let changed = rules::arrival_change(
        attendance.arrival,
        wanted,
        eta_minutes,
        meet.starts_at,
        meet.effective_end_at,
        now,
    )?;
    if !changed {
        return Ok((attendance, None));
    }
    let first_check_in = wanted == ArrivalState::Here && attendance.checked_in_at.is_none();
    let counts = arrival_counts(attendance.arrival, wanted);
    let user_id = attendance.user_id;
    let mut active: attendances::ActiveModel = attendance.into();
    active.arrival = Set(wanted);
    active.eta_at = Set(eta_minutes.map(|m| now + Duration::minutes(i64::from(m))));
    active.left_at = Set((wanted == ArrivalState::Left).then_some(now));
    if first_check_in {
        active.checked_in_at = Set(Some(now));
    }
    let attendance = active.update(txn).await?;
    let mut update = meets::Entity::update_many().filter(meets::Column::Id.eq(meet.id));
    for (column, delta) in counts {
        update = update.col_expr(column, Expr::col(column).add(delta));
    }
    if first_check_in {
        update = update.col_expr(
            meets::Column::CheckedInCount,
            Expr::col(meets::Column::CheckedInCount).add(1),
        );
    }
    update.exec(txn).await?;
    let kind = if wanted == ArrivalState::Here {
        ActivityKind::CheckedIn
    } else {
        ActivityKind::ArrivalChanged
    };
    Ok((
        attendance,
        Some(Event::meet_activity(kind, meet.id, Some(user_id), now)),
    ))
}

/// `setArrival`: the attendee's own arrival on the night. Returns the
/// attendance with its meet as it stands after the change.
#[tracing::instrument(name = "meets::set_arrival", level = "debug", skip_all)]
pub async fn set_arrival(
    services: &Services,
    viewer: Viewer,
    meet_id: Uuid,
    wanted: ArrivalState,
    eta_minutes: Option<i32>,
) -> ApiResult<(attendances::Model, meets::Model)> {
    let txn = begin_write(&services.db).await?;
    let (meet, attendance) = lock_arriving(&txn, viewer, meet_id).await?;
    let now = Utc::now();
    let (attendance, event) = arrive_in(&txn, &meet, attendance, wanted, eta_minutes, now).await?;
    let meet = meets::Entity::find_by_id(meet_id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("meet"))?;
    services
        .events
        .commit(txn, event.into_iter().collect())
        .await?;
    Ok((attendance, meet))
}

/// `checkIn`, as it always was: HERE once; checking in again keeps the
/// first time (and whatever the attendee did since).
#[tracing::instrument(name = "meets::check_in", level = "debug", skip_all)]
pub async fn check_in(
    services: &Services,
    viewer: Viewer,
    meet_id: Uuid,
) -> ApiResult<attendances::Model> {
    let txn = begin_write(&services.db).await?;
    let (meet, attendance) = lock_arriving(&txn, viewer, meet_id).await?;
    if attendance.checked_in_at.is_some() {
        return Ok(attendance);
    }
    let (attendance, event) = arrive_in(
        &txn,
        &meet,
        attendance,
        ArrivalState::Here,
        None,
        Utc::now(),
    )
    .await?;
    services
        .events
        .commit(txn, event.into_iter().collect())
        .await?;
    Ok(attendance)
}

/// What an attendee would like from the night; `None` keeps a field,
/// `Some(None)` clears `hoping_to_meet`.
#[derive(Default)]
pub struct AttendanceWishes {
    pub introduce_me: Option<bool>,
    pub hoping_to_meet: Option<Option<String>>,
}

/// `updateAttendance`: for someone who answered (GOING, MAYBE or
/// WAITLISTED) a meet that is still open.
#[tracing::instrument(name = "meets::update_attendance", level = "debug", skip_all)]
pub async fn update_attendance(
    services: &Services,
    viewer: Viewer,
    meet_id: Uuid,
    wishes: AttendanceWishes,
) -> ApiResult<attendances::Model> {
    let user_id = viewer.require()?;
    let hoping_to_meet = wishes
        .hoping_to_meet
        .map(|text| {
            validate::optional_text("hopingToMeet", text.as_deref(), rules::HOPING_TO_MEET_MAX)
        })
        .transpose()?;
    let txn = begin_write(&services.db).await?;
    let meet = lock_visible(&txn, viewer, meet_id).await?;
    require_open(&meet, Utc::now())?;
    let attendance = attendance_of(&txn, meet_id, user_id)
        .await?
        .filter(|a| a.status != RsvpStatus::NotGoing)
        .ok_or_else(|| ApiError::Forbidden("answer the meet first".into()))?;
    let mut active: attendances::ActiveModel = attendance.clone().into();
    if let Some(introduce_me) = wishes.introduce_me {
        active.introduce_me = Set(introduce_me);
    }
    if let Some(hoping_to_meet) = hoping_to_meet {
        active.hoping_to_meet = Set(hoping_to_meet);
    }
    let attendance = if active.is_changed() {
        active.update(&txn).await?
    } else {
        attendance
    };
    txn.commit().await?;
    Ok(attendance)
}

/// The guest list's order: GOING first, then by answer time. The rank is
/// written twice on purpose: as the generated column `guest_rank` (migration
/// m20261126_000005), which the index `attendances_guest_list` holds for the
/// order and the cursor to seek by, and here in Rust for the key of a row
/// already loaded.
fn attendee_rank() -> Expr {
    Expr::col((attendances::Entity, Alias::new("guest_rank")))
}

fn attendee_key(attendance: &attendances::Model) -> RankedTimeKey {
    RankedTimeKey {
        rank: if attendance.status == RsvpStatus::Going {
            0
        } else {
            1
        },
        key: TimeKey {
            at: attendance.responded_at,
            id: attendance.id,
        },
    }
}

/// Which of a meet's attendances a guest list shows.
pub struct GuestListFilter {
    /// Without one, those who said NOT_GOING are left out (they are not
    /// attending); ask for NOT_GOING to list them.
    pub status: Option<RsvpStatus>,
    /// By arrival as it reads now (`rules::arrival_now`).
    pub arrival: Option<ArrivalState>,
    /// Only this user's attendance (`Some(None)`: nobody's): for a viewer
    /// the guest list's privacy shows no one else.
    pub only: Option<Option<Uuid>>,
}

/// A meet's attendances with their users, in the guest list's order.
#[tracing::instrument(name = "meets::attendees", level = "debug", skip_all)]
pub async fn attendees(
    db: &impl ConnectionTrait,
    meet: &meets::Model,
    filter: GuestListFilter,
    page: &Page<RankedTimeKey>,
) -> ApiResult<Paged<(attendances::Model, users::Model), RankedTimeKey>> {
    let mut condition = Condition::all().add(attendances::Column::MeetId.eq(meet.id));
    condition = match filter.status {
        Some(status) => condition.add(attendances::Column::Status.eq(status)),
        None => condition.add(attendances::Column::Status.ne(RsvpStatus::NotGoing)),
    };
    if let Some(arrival) = filter.arrival {
        // Stored states that read as `arrival` now.
        let over = rules::arrivals_over(meet, Utc::now());
        let stored: Vec<ArrivalState> = [
            ArrivalState::NotYet,
            ArrivalState::OnMyWay,
            ArrivalState::Here,
            ArrivalState::Left,
        ]
        .into_iter()
        .filter(|&state| rules::arrival_now(state, over) == arrival)
        .collect();
        condition = condition.add(attendances::Column::Arrival.is_in(stored));
    }
    match filter.only {
        Some(Some(user_id)) => condition = condition.add(attendances::Column::UserId.eq(user_id)),
        Some(None) => return Ok(Paged::none()),
        None => {}
    }
    if let Some(key) = &page.after {
        condition = condition.add(after_ranked_key(
            attendee_rank(),
            attendances::Column::RespondedAt,
            attendances::Column::Id,
            key,
        ));
    }
    let rows = attendances::Entity::find()
        .find_also_related(users::Entity)
        .filter(condition)
        .order_by(attendee_rank(), Order::Asc)
        .order_by(attendances::Column::RespondedAt, Order::Asc)
        .order_by(attendances::Column::Id, Order::Asc)
        .limit(page.limit())
        .all(db)
        .await?;
    Ok(Paged::new(with_related(rows), page, |(a, _)| {
        attendee_key(a)
    }))
}
