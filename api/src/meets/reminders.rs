//! Reminders: one per GOING attendance, `reminder_minutes_before` (the
//! attendee's choice) before the start, as timed work keyed by the
//! attendance. Scheduled in the transaction of the answer that makes someone
//! GOING, moved with the start time or the attendee's choice, removed with
//! the answer or the meet. Sent once (the job is done in the transaction that
//! writes the notice), and only if, when due, the attendee is still going to
//! a meet still on.

use chrono::{DateTime, Duration, Utc};
use entity::{
    attendances::{self, RsvpStatus},
    meets::{self, MeetStatus},
    scheduled_jobs::{self, JobKind},
    users,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait};
use uuid::Uuid;

use crate::{db::begin_write, error::ApiResult, events::Event, jobs, notices, state::Services};

/// When `user`'s reminder of a meet starting at `starts_at` is due, if they
/// want one and it is still ahead.
fn due_at(
    minutes: Option<i32>,
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    minutes
        .map(|m| starts_at - Duration::minutes(i64::from(m)))
        .filter(|due| *due > now)
}

/// Schedules (or moves, or drops) the reminder of one GOING attendance.
pub(crate) async fn schedule(
    db: &impl ConnectionTrait,
    attendance: &attendances::Model,
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let minutes = users::Entity::find_by_id(attendance.user_id)
        .one(db)
        .await?
        .and_then(|user| user.reminder_minutes_before);
    match due_at(minutes, starts_at, now) {
        Some(due) => jobs::schedule(db, JobKind::Remind, attendance.id, due).await,
        None => jobs::unschedule(db, JobKind::Remind, attendance.id).await,
    }
}

/// Drops an attendance's reminder (it is no longer GOING).
pub(crate) async fn drop(db: &impl ConnectionTrait, attendance_id: Uuid) -> ApiResult<()> {
    jobs::unschedule(db, JobKind::Remind, attendance_id).await
}

/// The meet's GOING attendances.
async fn going(db: &impl ConnectionTrait, meet_id: Uuid) -> ApiResult<Vec<attendances::Model>> {
    Ok(attendances::Entity::find()
        .filter(attendances::Column::MeetId.eq(meet_id))
        .filter(attendances::Column::Status.eq(RsvpStatus::Going))
        .all(db)
        .await?)
}

/// The meet's start moved: every GOING attendee's reminder moves with it.
pub(crate) async fn reschedule_meet(
    db: &impl ConnectionTrait,
    meet: &meets::Model,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    for attendance in going(db, meet.id).await? {
        schedule(db, &attendance, meet.starts_at, now).await?;
    }
    Ok(())
}

/// The meet is off: its reminders go.
pub(crate) async fn drop_meet(db: &impl ConnectionTrait, meet_id: Uuid) -> ApiResult<()> {
    let attendances_of_meet = attendances::Entity::find()
        .select_only()
        .column(attendances::Column::Id)
        .filter(attendances::Column::MeetId.eq(meet_id))
        .into_query();
    scheduled_jobs::Entity::delete_many()
        .filter(scheduled_jobs::Column::Kind.eq(JobKind::Remind))
        .filter(scheduled_jobs::Column::SubjectId.in_subquery(attendances_of_meet))
        .exec(db)
        .await?;
    Ok(())
}

/// The user chose another lead time: their reminders of meets ahead move.
pub(crate) async fn reschedule_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<()> {
    let ahead = attendances::Entity::find()
        .find_also_related(meets::Entity)
        .filter(attendances::Column::UserId.eq(user_id))
        .filter(attendances::Column::Status.eq(RsvpStatus::Going))
        .filter(meets::Column::StartsAt.gt(now))
        .filter(meets::Column::Status.eq(MeetStatus::Scheduled))
        .all(db)
        .await?;
    for (attendance, meet) in ahead {
        if let Some(meet) = meet {
            schedule(db, &attendance, meet.starts_at, now).await?;
        }
    }
    Ok(())
}

/// A due reminder (a `REMIND` job): sent if the attendee is still GOING to a
/// meet still on and ahead, and still wants reminders.
#[tracing::instrument(name = "meets::remind", level = "debug", skip_all)]
pub(crate) async fn remind(services: &Services, job: &scheduled_jobs::Model) -> ApiResult<()> {
    let txn = begin_write(&services.db).await?;
    let now = Utc::now();
    let mut events = Vec::new();
    let found = attendances::Entity::find_by_id(job.subject_id)
        .find_also_related(meets::Entity)
        .one(&txn)
        .await?;
    if let Some((attendance, Some(meet))) = found
        && attendance.status == RsvpStatus::Going
        && meet.status == MeetStatus::Scheduled
        && meet.starts_at > now
        && let Some(user) = users::Entity::find_by_id(attendance.user_id)
            .one(&txn)
            .await?
        && user.reminder_minutes_before.is_some()
        && notices::reminder(&txn, &services.config, &meet, &user).await?
    {
        events.push(Event::NoticesQueued);
    }
    jobs::done(&txn, job).await?;
    services.events.commit(txn, events).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reminder_is_due_its_lead_time_before_the_start_if_still_ahead() {
        let now = Utc::now();
        let start = now + Duration::hours(3);
        assert_eq!(
            due_at(Some(120), start, now),
            Some(start - Duration::hours(2))
        );
        assert_eq!(due_at(Some(240), start, now), None, "already past");
        assert_eq!(due_at(None, start, now), None, "reminders off");
    }
}
