//! A meet's lifecycle: hosting, changing and cancelling it. Every write runs
//! in one transaction that first locks the meet's row (PostgreSQL) or holds
//! SQLite's write lock (IMMEDIATE).

use chrono::{DateTime, Utc};
use entity::{
    attendances::RsvpStatus,
    meets::{self, AttendeeVisibility, MeetStatus, Visibility},
    scheduled_jobs::{self, JobKind},
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, ExprTrait},
};
use uuid::Uuid;

use super::{attendance, reminders, rules, visibility};
use crate::{
    auth::Viewer,
    config::Config,
    db::begin_write,
    error::{ApiError, ApiResult},
    events::{ActivityKind, Event},
    jobs,
    notices::{self, MeetChange},
    state::Services,
    validate,
};

pub struct MeetDraft {
    pub title: String,
    pub description: Option<String>,
    pub venue_name: String,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub region: Option<String>,
    pub time_zone: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub capacity: Option<i32>,
    pub visibility: Visibility,
    pub attendee_visibility: AttendeeVisibility,
    /// Go / no-go: the meet is TENTATIVE until this many are going…
    pub minimum_going: Option<i32>,
    /// …and cancelled at this time if they are not.
    pub decide_by: Option<DateTime<Utc>>,
}

/// Changes to a meet: `None` keeps a field, `Some(None)` clears it.
#[derive(Default)]
pub struct MeetChanges {
    pub title: Option<Option<String>>,
    pub description: Option<Option<String>>,
    pub venue_name: Option<Option<String>>,
    pub address: Option<Option<String>>,
    pub latitude: Option<Option<f64>>,
    pub longitude: Option<Option<f64>>,
    pub region: Option<Option<String>>,
    pub time_zone: Option<Option<String>>,
    pub starts_at: Option<Option<DateTime<Utc>>>,
    pub ends_at: Option<Option<DateTime<Utc>>>,
    pub capacity: Option<Option<i32>>,
    pub visibility: Option<Option<Visibility>>,
    pub attendee_visibility: Option<Option<AttendeeVisibility>>,
    pub minimum_going: Option<Option<i32>>,
    pub decide_by: Option<Option<DateTime<Utc>>>,
}

#[tracing::instrument(name = "meets::create", level = "debug", skip_all)]
pub async fn create(
    services: &Services,
    viewer: Viewer,
    draft: MeetDraft,
) -> ApiResult<meets::Model> {
    let host_id = viewer.require()?;
    let now = Utc::now();
    let title = rules::title(&draft.title)?;
    let venue_name = rules::venue_name(&draft.venue_name)?;
    let coordinates = rules::coordinates(draft.latitude, draft.longitude)?;
    let capacity = rules::capacity(draft.capacity)?;
    rules::times(draft.starts_at, draft.ends_at, now, true)?;
    rules::go_no_go(
        draft.minimum_going,
        draft.decide_by,
        capacity,
        draft.starts_at,
        now,
    )?;
    let region = validate::optional_text("region", draft.region.as_deref(), rules::REGION_MAX)?;
    let meet = meets::ActiveModel {
        id: Set(Uuid::now_v7()),
        host_id: Set(host_id),
        title: Set(title),
        description: Set(validate::optional_multiline_text(
            "description",
            draft.description.as_deref(),
            5000,
        )?),
        venue_name: Set(venue_name),
        address: Set(validate::optional_text(
            "address",
            draft.address.as_deref(),
            300,
        )?),
        latitude: Set(coordinates.map(|c| c.0)),
        longitude: Set(coordinates.map(|c| c.1)),
        region_key: Set(rules::region_key(region.as_deref())),
        region: Set(region),
        time_zone: Set(rules::time_zone(draft.time_zone)?),
        starts_at: Set(draft.starts_at),
        ends_at: Set(draft.ends_at),
        effective_end_at: Set(rules::effective_end(draft.starts_at, draft.ends_at)),
        capacity: Set(capacity),
        // The host is GOING from the start.
        going_count: Set(1),
        checked_in_count: Set(0),
        here_count: Set(0),
        on_the_way_count: Set(0),
        visibility: Set(draft.visibility),
        attendee_visibility: Set(draft.attendee_visibility),
        status: Set(MeetStatus::Scheduled),
        cancellation_reason: Set(None),
        cancelled_at: Set(None),
        minimum_going: Set(draft.minimum_going),
        decide_by: Set(draft.decide_by),
        confirmed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = begin_write(&services.db).await?;
    let meet = meet.insert(&txn).await?;
    let hosting = attendance::new_attendance(meet.id, host_id, RsvpStatus::Going, now)
        .insert(&txn)
        .await?;
    reminders::schedule(&txn, &hosting, meet.starts_at, now).await?;
    if let Some(decide_by) = meet.decide_by {
        jobs::schedule(&txn, JobKind::DecideMeet, meet.id, decide_by).await?;
    }
    services
        .events
        .commit(txn, vec![Event::MeetAnnounced { meet_id: meet.id }])
        .await?;
    Ok(meet)
}

#[tracing::instrument(name = "meets::update", level = "debug", skip_all)]
pub async fn update(
    services: &Services,
    viewer: Viewer,
    id: Uuid,
    changes: MeetChanges,
) -> ApiResult<meets::Model> {
    viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let meet = visibility::lock_visible(&txn, viewer, id).await?;
    visibility::require_host_or_admin(&meet, viewer, "change this meet")?;
    if meet.status == MeetStatus::Cancelled {
        return Err(ApiError::Conflict(
            "a cancelled meet cannot be changed".into(),
        ));
    }
    let now = Utc::now();
    let mut active: meets::ActiveModel = meet.clone().into();

    if let Some(title) = changes.title {
        active.title =
            Set(rules::title(&title.ok_or_else(|| {
                ApiError::bad_input("title", "title cannot be empty")
            })?)?);
    }
    if let Some(venue) = changes.venue_name {
        active.venue_name = Set(rules::venue_name(&venue.ok_or_else(|| {
            ApiError::bad_input("venueName", "venueName cannot be empty")
        })?)?);
    }
    if let Some(description) = changes.description {
        active.description = Set(validate::optional_multiline_text(
            "description",
            description.as_deref(),
            5000,
        )?);
    }
    if let Some(address) = changes.address {
        active.address = Set(validate::optional_text("address", address.as_deref(), 300)?);
    }
    if let Some(region) = changes.region {
        let region = validate::optional_text("region", region.as_deref(), rules::REGION_MAX)?;
        active.region_key = Set(rules::region_key(region.as_deref()));
        active.region = Set(region);
    }
    if let Some(zone) = changes.time_zone {
        active.time_zone = Set(rules::time_zone(zone)?);
    }
    if changes.latitude.is_some() || changes.longitude.is_some() {
        let latitude = changes.latitude.unwrap_or(meet.latitude);
        let longitude = changes.longitude.unwrap_or(meet.longitude);
        let coordinates = rules::coordinates(latitude, longitude)?;
        active.latitude = Set(coordinates.map(|c| c.0));
        active.longitude = Set(coordinates.map(|c| c.1));
    }
    let starts_at = match changes.starts_at {
        None => meet.starts_at,
        Some(value) => {
            value.ok_or_else(|| ApiError::bad_input("startsAt", "startsAt cannot be empty"))?
        }
    };
    let ends_at = changes.ends_at.unwrap_or(meet.ends_at);
    rules::times(starts_at, ends_at, now, starts_at != meet.starts_at)?;
    active.starts_at = Set(starts_at);
    active.ends_at = Set(ends_at);
    active.effective_end_at = Set(rules::effective_end(starts_at, ends_at));
    if let Some(visibility) = changes.visibility {
        active.visibility = Set(visibility
            .ok_or_else(|| ApiError::bad_input("visibility", "visibility cannot be empty"))?);
    }
    if let Some(attendee_visibility) = changes.attendee_visibility {
        active.attendee_visibility = Set(attendee_visibility.ok_or_else(|| {
            ApiError::bad_input("attendeeVisibility", "attendeeVisibility cannot be empty")
        })?);
    }
    let mut capacity_raised = false;
    if let Some(capacity) = changes.capacity {
        let capacity = rules::capacity(capacity)?;
        if capacity.is_some_and(|c| c < meet.going_count) {
            return Err(ApiError::bad_input(
                "capacity",
                format!(
                    "capacity cannot go below the {} people already going",
                    meet.going_count
                ),
            ));
        }
        capacity_raised = match (meet.capacity, capacity) {
            (Some(old), Some(new)) => new > old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        active.capacity = Set(capacity);
    }
    // Go / no-go: only while the meet is still waiting (a confirmed meet
    // has gone ahead); a minimum taken away confirms it.
    if changes.minimum_going.is_some() || changes.decide_by.is_some() {
        if meet.confirmed_at.is_some() {
            return Err(ApiError::bad_input(
                "minimumGoing",
                "this meet is already confirmed",
            ));
        }
        let minimum_going = changes.minimum_going.unwrap_or(meet.minimum_going);
        let decide_by = changes.decide_by.unwrap_or(meet.decide_by);
        let capacity = match &active.capacity {
            sea_orm::ActiveValue::Set(capacity) | sea_orm::ActiveValue::Unchanged(capacity) => {
                *capacity
            }
            sea_orm::ActiveValue::NotSet => meet.capacity,
        };
        rules::go_no_go(minimum_going, decide_by, capacity, starts_at, now)?;
        active.minimum_going = Set(minimum_going);
        active.decide_by = Set(decide_by);
        match decide_by {
            Some(decide_by) => jobs::schedule(&txn, JobKind::DecideMeet, id, decide_by).await?,
            None => jobs::unschedule(&txn, JobKind::DecideMeet, id).await?,
        }
    }
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    let mut events = vec![Event::meet_activity(
        ActivityKind::MeetUpdated,
        id,
        None,
        now,
    )];
    events.extend(confirm_if_enough(&txn, &services.config, id, now).await?);
    if capacity_raised {
        events.extend(attendance::promote_waitlisted(&txn, &services.config, &updated, now).await?);
    }
    // An invite-only meet does not exist for those not invited: they lose
    // their answers (and seats) with the change, and hear no more of it.
    if meet.visibility == Visibility::Public && updated.visibility == Visibility::InviteOnly {
        events.extend(attendance::withdraw_uninvited(&txn, &services.config, &updated, now).await?);
    }
    if updated.starts_at != meet.starts_at {
        reminders::reschedule_meet(&txn, &updated, now).await?;
    }
    // Attendees hear of a new time or a new venue.
    let change = if updated.starts_at != meet.starts_at {
        Some(MeetChange::Rescheduled)
    } else if updated.venue_name != meet.venue_name || updated.address != meet.address {
        Some(MeetChange::Moved)
    } else {
        None
    };
    if let (Some(change), Some(editor)) = (change, viewer.user_id()) {
        notices::meet_changed(&txn, &services.config, &updated, change, editor).await?;
        events.push(Event::NoticesQueued);
    }
    let meet = meets::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("meet"))?;
    services.events.commit(txn, events).await?;
    Ok(meet)
}

#[tracing::instrument(name = "meets::cancel", level = "debug", skip_all)]
pub async fn cancel(
    services: &Services,
    viewer: Viewer,
    id: Uuid,
    reason: Option<String>,
) -> ApiResult<meets::Model> {
    viewer.require()?;
    let reason = validate::optional_text("reason", reason.as_deref(), 500)?;
    let txn = begin_write(&services.db).await?;
    let meet = visibility::lock_visible(&txn, viewer, id).await?;
    visibility::require_host_or_admin(&meet, viewer, "change this meet")?;
    if meet.status == MeetStatus::Cancelled {
        // Cancelling a cancelled meet changes nothing.
        return Ok(meet);
    }
    let now = Utc::now();
    let mut active: meets::ActiveModel = meet.into();
    active.status = Set(MeetStatus::Cancelled);
    active.cancellation_reason = Set(reason);
    active.cancelled_at = Set(Some(now));
    active.updated_at = Set(now);
    let meet = active.update(&txn).await?;
    jobs::unschedule(&txn, JobKind::DecideMeet, id).await?;
    reminders::drop_meet(&txn, id).await?;
    if let Some(canceller) = viewer.user_id() {
        notices::meet_changed(
            &txn,
            &services.config,
            &meet,
            MeetChange::Cancelled,
            canceller,
        )
        .await?;
    }
    services
        .events
        .commit(
            txn,
            vec![
                Event::NoticesQueued,
                Event::meet_activity(ActivityKind::MeetCancelled, id, None, now),
            ],
        )
        .await?;
    Ok(meet)
}

/// Confirms a TENTATIVE meet whose going count has reached its minimum, in
/// the transaction of the change that reached it: one conditional update,
/// so only one change ever confirms it. Returns the events to publish (none
/// if it was not confirmed now).
pub(crate) async fn confirm_if_enough(
    txn: &DatabaseTransaction,
    config: &Config,
    meet_id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Event>> {
    let confirmed = meets::Entity::update_many()
        .col_expr(meets::Column::ConfirmedAt, Expr::value(now))
        .filter(meets::Column::Id.eq(meet_id))
        .filter(meets::Column::Status.eq(MeetStatus::Scheduled))
        .filter(meets::Column::ConfirmedAt.is_null())
        .filter(meets::Column::MinimumGoing.is_not_null())
        .filter(Expr::col(meets::Column::GoingCount).gte(Expr::col(meets::Column::MinimumGoing)))
        .exec(txn)
        .await?;
    if confirmed.rows_affected == 0 {
        return Ok(Vec::new());
    }
    jobs::unschedule(txn, JobKind::DecideMeet, meet_id).await?;
    let meet = meets::Entity::find_by_id(meet_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("meet"))?;
    notices::meet_decided(txn, config, &meet, true).await?;
    Ok(vec![
        Event::NoticesQueued,
        Event::meet_activity(ActivityKind::MeetConfirmed, meet_id, None, now),
    ])
}

/// A go / no-go meet's deadline (a `DECIDE_MEET` job): still TENTATIVE, it
/// is cancelled ("Not enough people could make it") and everyone who
/// answered hears of it. Whatever happened since (confirmed, cancelled by
/// hand, deadline moved) is read under the meet's lock, so running twice
/// changes nothing; the job is done in the same transaction.
#[tracing::instrument(name = "meets::decide", level = "debug", skip_all)]
pub(crate) async fn decide(services: &Services, job: &scheduled_jobs::Model) -> ApiResult<()> {
    let txn = begin_write(&services.db).await?;
    let meet = meets::Entity::find_by_id(job.subject_id)
        .lock_exclusive()
        .one(&txn)
        .await?;
    let now = Utc::now();
    let mut events = Vec::new();
    match meet {
        // Moved later since the claim: it waits for its new time.
        Some(meet) if rules::is_tentative(&meet) && meet.decide_by.is_some_and(|at| at > now) => {
            txn.rollback().await?;
            return Ok(());
        }
        Some(meet) if rules::is_tentative(&meet) => {
            let mut active: meets::ActiveModel = meet.into();
            active.status = Set(MeetStatus::Cancelled);
            active.cancellation_reason = Set(Some(NOT_ENOUGH.to_owned()));
            active.cancelled_at = Set(Some(now));
            active.updated_at = Set(now);
            let meet = active.update(&txn).await?;
            notices::meet_decided(&txn, &services.config, &meet, false).await?;
            reminders::drop_meet(&txn, meet.id).await?;
            events.push(Event::NoticesQueued);
            events.push(Event::meet_activity(
                ActivityKind::MeetCancelled,
                meet.id,
                None,
                now,
            ));
        }
        // Confirmed, cancelled or gone: nothing left to decide.
        _ => {}
    }
    jobs::done(&txn, job).await?;
    services.events.commit(txn, events).await
}

/// The reason a go / no-go meet is cancelled with at its deadline.
pub const NOT_ENOUGH: &str = "Not enough people could make it";
