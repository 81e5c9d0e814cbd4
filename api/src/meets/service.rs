//! Meets: hosting, discovery, answers with a waitlist, check-ins. Every write
//! runs in one transaction that first locks the meet's row (PostgreSQL) or
//! holds SQLite's write lock (IMMEDIATE), and seats are taken with
//! conditional updates on the going count, so capacity holds under any
//! concurrency; a CHECK constraint backs it.

use chrono::{DateTime, Utc};
use entity::{
    attendances::{self, RsvpStatus},
    meets::{self, MeetStatus, Visibility},
    users,
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, Order, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
    sea_query::{Expr, ExprTrait, Func},
};
use uuid::Uuid;

use super::{rules, visibility};
use crate::validate;
use crate::{
    auth::Viewer,
    config::Config,
    db::{begin_write, with_related},
    error::{ApiError, ApiResult},
    events::{ActivityKind, Event},
    graphql::pagination::{Direction, Page, RankedTimeKey, TimeKey, after_ranked_key, keyset},
    notices::{self, MeetChange},
    state::Services,
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
}

#[derive(Default)]
pub struct MeetFilter {
    pub region: Option<String>,
    pub starts_after: Option<DateTime<Utc>>,
    pub starts_before: Option<DateTime<Utc>>,
    pub search: Option<String>,
    pub host_handle: Option<String>,
    pub near: Option<Near>,
    pub include_past: bool,
}

#[derive(Clone, Copy)]
pub struct Near {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
}

/// The answers a member may give (WAITLISTED is the server's to give).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Going,
    Maybe,
    NotGoing,
}

/// The meet if the viewer may see it; otherwise it does not exist for them.
pub async fn find_visible(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<Option<meets::Model>> {
    Ok(meets::Entity::find_by_id(id)
        .filter(visibility::condition(viewer))
        .one(db)
        .await?)
}

/// The meet with its host, if the viewer may see it (one statement).
pub async fn find_visible_with_host(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<Option<(meets::Model, users::Model)>> {
    let row = meets::Entity::find_by_id(id)
        .find_also_related(users::Entity)
        .filter(visibility::condition(viewer))
        .one(db)
        .await?;
    Ok(row.and_then(|(meet, host)| host.map(|h| (meet, h))))
}

/// The viewer's answers to a page of meets, in one statement.
pub async fn attendances_of(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    meet_ids: impl IntoIterator<Item = Uuid>,
) -> ApiResult<std::collections::HashMap<Uuid, attendances::Model>> {
    let rows = attendances::Entity::find()
        .filter(attendances::Column::UserId.eq(user_id))
        .filter(attendances::Column::MeetId.is_in(meet_ids))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|a| (a.meet_id, a)).collect())
}

/// Loads and row-locks a visible meet inside a write transaction.
pub(crate) async fn lock_visible(
    txn: &DatabaseTransaction,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<meets::Model> {
    meets::Entity::find_by_id(id)
        .filter(visibility::condition(viewer))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("meet"))
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
    let region = validate::optional_text("region", draft.region.as_deref(), 80)?;
    let meet = meets::ActiveModel {
        id: Set(Uuid::now_v7()),
        host_id: Set(host_id),
        title: Set(title),
        description: Set(validate::optional_text(
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
        visibility: Set(draft.visibility),
        status: Set(MeetStatus::Scheduled),
        cancellation_reason: Set(None),
        cancelled_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let txn = begin_write(&services.db).await?;
    let meet = meet.insert(&txn).await?;
    attendances::ActiveModel {
        id: Set(Uuid::now_v7()),
        meet_id: Set(meet.id),
        user_id: Set(host_id),
        status: Set(RsvpStatus::Going),
        responded_at: Set(now),
        checked_in_at: Set(None),
    }
    .insert(&txn)
    .await?;
    services
        .events
        .commit(txn, vec![Event::MeetAnnounced { meet_id: meet.id }])
        .await?;
    Ok(meet)
}

pub async fn update(
    services: &Services,
    viewer: Viewer,
    id: Uuid,
    changes: MeetChanges,
) -> ApiResult<meets::Model> {
    viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let meet = lock_visible(&txn, viewer, id).await?;
    require_host_or_admin(&meet, viewer, "change this meet")?;
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
        active.description = Set(validate::optional_text(
            "description",
            description.as_deref(),
            5000,
        )?);
    }
    if let Some(address) = changes.address {
        active.address = Set(validate::optional_text("address", address.as_deref(), 300)?);
    }
    if let Some(region) = changes.region {
        let region = validate::optional_text("region", region.as_deref(), 80)?;
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
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    let mut events = vec![meet_activity(ActivityKind::MeetUpdated, id, None, now)];
    if capacity_raised {
        events.extend(promote_waitlisted(&txn, &services.config, &updated, now).await?);
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
    }
    let meet = meets::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("meet"))?;
    services.events.commit(txn, events).await?;
    Ok(meet)
}

pub async fn cancel(
    services: &Services,
    viewer: Viewer,
    id: Uuid,
    reason: Option<String>,
) -> ApiResult<meets::Model> {
    viewer.require()?;
    let reason = validate::optional_text("reason", reason.as_deref(), 500)?;
    let txn = begin_write(&services.db).await?;
    let meet = lock_visible(&txn, viewer, id).await?;
    require_host_or_admin(&meet, viewer, "change this meet")?;
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
            vec![meet_activity(ActivityKind::MeetCancelled, id, None, now)],
        )
        .await?;
    Ok(meet)
}

fn meet_activity(
    kind: ActivityKind,
    meet_id: Uuid,
    user_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> Event {
    Event::MeetActivity {
        kind,
        meet_id,
        user_id,
        story_id: None,
        at,
    }
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

/// Gives up a seat (and a check-in with it).
async fn release_seat(
    txn: &DatabaseTransaction,
    meet_id: Uuid,
    was_checked_in: bool,
) -> ApiResult<()> {
    let mut update = meets::Entity::update_many()
        .col_expr(
            meets::Column::GoingCount,
            Expr::col(meets::Column::GoingCount).sub(1),
        )
        .filter(meets::Column::Id.eq(meet_id));
    if was_checked_in {
        update = update.col_expr(
            meets::Column::CheckedInCount,
            Expr::col(meets::Column::CheckedInCount).sub(1),
        );
    }
    update.exec(txn).await?;
    Ok(())
}

/// Seats the longest-waiting attendees while seats are free, in answer order.
/// Returns an event for each one promoted.
async fn promote_waitlisted(
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
        notices::promoted(txn, config, meet, next.user_id).await?;
        events.push(meet_activity(
            ActivityKind::RsvpChanged,
            meet_id,
            Some(next.user_id),
            now,
        ));
    }
    Ok(events)
}

/// A meet takes answers and invitations until it is cancelled or over.
pub(crate) fn require_open(meet: &meets::Model, now: DateTime<Utc>) -> ApiResult<()> {
    if meet.status == MeetStatus::Cancelled {
        return Err(ApiError::Conflict("this meet is cancelled".into()));
    }
    if meet.effective_end_at <= now {
        return Err(ApiError::Conflict("this meet has ended".into()));
    }
    Ok(())
}

pub async fn rsvp(
    services: &Services,
    viewer: Viewer,
    meet_id: Uuid,
    answer: Answer,
) -> ApiResult<attendances::Model> {
    let user_id = viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let meet = lock_visible(&txn, viewer, meet_id).await?;
    if meet.visibility == Visibility::InviteOnly
        && meet.host_id != user_id
        && !visibility::holds_seeing_invitation(&txn, meet_id, user_id).await?
    {
        return Err(ApiError::Forbidden(
            "only the host and invitees may answer an invite-only meet".into(),
        ));
    }
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
    if was_going {
        release_seat(
            txn,
            meet.id,
            existing.as_ref().is_some_and(|a| a.checked_in_at.is_some()),
        )
        .await?;
    }
    let attendance = match existing {
        Some(existing) => {
            let mut active: attendances::ActiveModel = existing.into();
            active.status = Set(status);
            active.responded_at = Set(now);
            active.checked_in_at = Set(None);
            active.update(txn).await?
        }
        None => {
            attendances::ActiveModel {
                id: Set(Uuid::now_v7()),
                meet_id: Set(meet.id),
                user_id: Set(user_id),
                status: Set(status),
                responded_at: Set(now),
                checked_in_at: Set(None),
            }
            .insert(txn)
            .await?
        }
    };
    events.push(meet_activity(
        ActivityKind::RsvpChanged,
        meet.id,
        Some(user_id),
        now,
    ));
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

pub async fn check_in(
    services: &Services,
    viewer: Viewer,
    meet_id: Uuid,
) -> ApiResult<attendances::Model> {
    let user_id = viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let meet = lock_visible(&txn, viewer, meet_id).await?;
    let now = Utc::now();
    if meet.status == MeetStatus::Cancelled {
        return Err(ApiError::Conflict("this meet is cancelled".into()));
    }
    let attendance = attendance_of(&txn, meet_id, user_id)
        .await?
        .filter(|a| a.status == RsvpStatus::Going)
        .ok_or_else(|| ApiError::Forbidden("only attendees who are going can check in".into()))?;
    if attendance.checked_in_at.is_some() {
        // A second check-in keeps the first time.
        return Ok(attendance);
    }
    if !rules::check_in_open(meet.starts_at, meet.effective_end_at, now) {
        return Err(ApiError::Conflict(
            "check-in is open from one hour before the start until the meet ends".into(),
        ));
    }
    let mut active: attendances::ActiveModel = attendance.into();
    active.checked_in_at = Set(Some(now));
    let attendance = active.update(&txn).await?;
    meets::Entity::update_many()
        .col_expr(
            meets::Column::CheckedInCount,
            Expr::col(meets::Column::CheckedInCount).add(1),
        )
        .filter(meets::Column::Id.eq(meet_id))
        .exec(&txn)
        .await?;
    services
        .events
        .commit(
            txn,
            vec![meet_activity(
                ActivityKind::CheckedIn,
                meet_id,
                Some(user_id),
                now,
            )],
        )
        .await?;
    Ok(attendance)
}

/// `lower(column) LIKE '%word%'`, with the word's own wildcards escaped.
fn contains_word(column: meets::Column, word: &str) -> Condition {
    Condition::all().add(Func::lower(Expr::col(column)).like(crate::db::contains_pattern(word)))
}

/// The discovery list: meets the viewer may see, with their hosts, filtered,
/// soonest first. Returns up to `page.limit()` rows.
pub async fn list(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    filter: MeetFilter,
    page: &Page<TimeKey>,
) -> ApiResult<Vec<(meets::Model, users::Model)>> {
    let mut condition = Condition::all().add(visibility::condition(viewer));
    if !filter.include_past {
        condition = condition
            .add(meets::Column::Status.eq(MeetStatus::Scheduled))
            .add(meets::Column::EffectiveEndAt.gt(Utc::now()));
    }
    if let Some(region) = rules::region_key(filter.region.as_deref()) {
        condition = condition.add(meets::Column::RegionKey.eq(region));
    }
    if let Some(after) = filter.starts_after {
        condition = condition.add(meets::Column::StartsAt.gte(after));
    }
    if let Some(before) = filter.starts_before {
        condition = condition.add(meets::Column::StartsAt.lt(before));
    }
    if let Some(search) = &filter.search {
        for word in search.split_whitespace().take(10).map(str::to_lowercase) {
            condition = condition.add(
                Condition::any()
                    .add(contains_word(meets::Column::Title, &word))
                    .add(contains_word(meets::Column::Description, &word))
                    .add(contains_word(meets::Column::VenueName, &word)),
            );
        }
    }
    if let Some(handle) = &filter.host_handle {
        let host = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .filter(users::Column::Handle.eq(validate::handle_key(handle)))
            .into_query();
        condition = condition.add(meets::Column::HostId.in_subquery(host));
    }
    if let Some(near) = filter.near {
        rules::near(near.latitude, near.longitude, near.radius_km)?;
        let ((lat_lo, lat_hi), lon) =
            rules::bounding_box((near.latitude, near.longitude), near.radius_km);
        condition = condition.add(meets::Column::Latitude.between(lat_lo, lat_hi));
        if let Some((lon_lo, lon_hi)) = lon {
            condition = condition.add(meets::Column::Longitude.between(lon_lo, lon_hi));
        }
        return list_near(db, condition, near, page).await;
    }
    Ok(page_of_meets(db, condition, page.after, page.limit()).await?)
}

async fn page_of_meets(
    db: &impl ConnectionTrait,
    condition: Condition,
    after: Option<TimeKey>,
    limit: u64,
) -> Result<Vec<(meets::Model, users::Model)>, sea_orm::DbErr> {
    let query = meets::Entity::find()
        .find_also_related(users::Entity)
        .filter(condition);
    let query = keyset(
        query,
        meets::Column::StartsAt,
        meets::Column::Id,
        Direction::Ascending,
        after.as_ref(),
        limit,
    );
    let rows = query.all(db).await?;
    Ok(with_related(rows))
}

/// The bounding box narrows in SQL; the exact great-circle distance filters
/// here, batch after batch on the same keyset, until the page is full.
async fn list_near(
    db: &impl ConnectionTrait,
    condition: Condition,
    near: Near,
    page: &Page<TimeKey>,
) -> ApiResult<Vec<(meets::Model, users::Model)>> {
    let wanted = page.limit() as usize;
    let batch = Ord::max(page.limit(), 50);
    let mut after = page.after;
    let mut found = Vec::with_capacity(wanted);
    loop {
        let rows = page_of_meets(db, condition.clone(), after, batch).await?;
        let exhausted = (rows.len() as u64) < batch;
        after = rows.last().map(|(m, _)| meet_key(m));
        found.extend(
            rows.into_iter()
                .filter(|(m, _)| match (m.latitude, m.longitude) {
                    (Some(lat), Some(lon)) => {
                        rules::distance_km((near.latitude, near.longitude), (lat, lon))
                            <= near.radius_km
                    }
                    _ => false,
                }),
        );
        if found.len() >= wanted || exhausted {
            found.truncate(wanted);
            return Ok(found);
        }
    }
}

/// Meets a user hosts that the viewer may see, latest start first.
pub async fn hosted_by(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    host_id: Uuid,
    page: &Page<TimeKey>,
) -> ApiResult<Vec<meets::Model>> {
    let query = meets::Entity::find().filter(
        Condition::all()
            .add(visibility::condition(viewer))
            .add(meets::Column::HostId.eq(host_id)),
    );
    let query = keyset(
        query,
        meets::Column::StartsAt,
        meets::Column::Id,
        Direction::Descending,
        page.after.as_ref(),
        page.limit(),
    );
    Ok(query.all(db).await?)
}

/// The meets a user answered GOING, MAYBE or WAITLISTED, soonest first.
/// Only the user themself may read it.
pub async fn attending(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    user_id: Uuid,
    page: &Page<TimeKey>,
) -> ApiResult<Vec<(attendances::Model, meets::Model)>> {
    if viewer.user_id() != Some(user_id) {
        return Err(ApiError::Forbidden(
            "only the user themself may see what they attend".into(),
        ));
    }
    let condition = Condition::all()
        .add(visibility::condition(viewer))
        .add(attendances::Column::UserId.eq(user_id))
        .add(attendances::Column::Status.is_in([
            RsvpStatus::Going,
            RsvpStatus::Maybe,
            RsvpStatus::Waitlisted,
        ]));
    let query = attendances::Entity::find()
        .find_also_related(meets::Entity)
        .filter(condition);
    let query = keyset(
        query,
        meets::Column::StartsAt,
        meets::Column::Id,
        Direction::Ascending,
        page.after.as_ref(),
        page.limit(),
    );
    let rows = query.all(db).await?;
    Ok(with_related(rows))
}

/// `0` for GOING, `1` for every other answer: attendees list GOING first.
fn attendee_rank() -> Expr {
    Expr::case(
        Expr::col((attendances::Entity, attendances::Column::Status)).eq("GOING"),
        0,
    )
    .finally(1)
    .into()
}

/// A meet's cursor key in lists ordered by start (`keyset(StartsAt, Id)`).
pub fn meet_key(meet: &meets::Model) -> TimeKey {
    TimeKey {
        at: meet.starts_at,
        id: meet.id,
    }
}

pub fn attendee_key(attendance: &attendances::Model) -> RankedTimeKey {
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

/// A meet's attendances with their users: GOING first, then by answer time.
/// Without a status, those who said NOT_GOING are left out (they are not
/// attending); ask for NOT_GOING to list them.
pub async fn attendees(
    db: &impl ConnectionTrait,
    meet_id: Uuid,
    status: Option<RsvpStatus>,
    page: &Page<RankedTimeKey>,
) -> ApiResult<Vec<(attendances::Model, users::Model)>> {
    let mut condition = Condition::all().add(attendances::Column::MeetId.eq(meet_id));
    condition = match status {
        Some(status) => condition.add(attendances::Column::Status.eq(status)),
        None => condition.add(attendances::Column::Status.ne(RsvpStatus::NotGoing)),
    };
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
    Ok(with_related(rows))
}
