//! Discovery: the lists of meets (the feed with its filters, a host's
//! meets, what a user attends), each with its order declared once.

use chrono::{DateTime, Utc};
use entity::{
    attendances::{self, RsvpStatus},
    meets::{self, MeetStatus},
    users,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    sea_query::{Alias, Expr, ExprTrait},
};
use uuid::Uuid;

use super::{rules, search, visibility};
use crate::{
    auth::Viewer,
    db::with_related,
    error::{ApiError, ApiResult},
    keyset::{Direction, Page, Paged, TimeKey, TimeOrder},
    validate,
};

/// Meets soonest first: the feed and what a user attends.
const BY_START: TimeOrder<meets::Column, meets::Model> = TimeOrder {
    time: meets::Column::StartsAt,
    id: meets::Column::Id,
    direction: Direction::Ascending,
    key: |meet| TimeKey {
        at: meet.starts_at,
        id: meet.id,
    },
};

/// Meets latest start first: a host's meets.
const BY_START_LATEST_FIRST: TimeOrder<meets::Column, meets::Model> = TimeOrder {
    direction: Direction::Descending,
    ..BY_START
};

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

/// The discovery list: meets the viewer may see, with their hosts, filtered,
/// soonest first.
#[tracing::instrument(name = "meets::list", level = "debug", skip_all)]
pub async fn list(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    filter: MeetFilter,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<(meets::Model, users::Model)>> {
    let mut condition = Condition::all().add(visibility::condition(viewer));
    // The earliest start the filter lets in, and the first it keeps out.
    let mut from = None;
    let mut until = None;
    if !filter.include_past {
        let now = Utc::now();
        // Not ended yet, as a range of the start-time index the order
        // walks: nothing lasts longer than MAX_LENGTH, so the walk starts a
        // week back instead of at the first meet ever held.
        from = Some(now - rules::MAX_LENGTH);
        condition = condition
            .add(meets::Column::Status.eq(MeetStatus::Scheduled))
            .add(meets::Column::EffectiveEndAt.gt(now));
    }
    let region = match &filter.region {
        Some(raw) => Some(validate::lookup("region", raw, rules::REGION_MAX)?),
        None => None,
    };
    if let Some(region) = rules::region_key(region.as_deref()) {
        condition = condition.add(meets::Column::RegionKey.eq(region));
    }
    if let Some(after) = filter.starts_after {
        from = Ord::max(from, Some(validate::instant("startsAfter", after)?));
    }
    if let Some(before) = filter.starts_before {
        let before = validate::instant("startsBefore", before)?;
        until = Some(before);
        condition = condition.add(meets::Column::StartsAt.lt(before));
    }
    // One lower bound on the start, the tightest: given two, SQLite may seek
    // the index by the looser. A page's cursor is one (keyset), when later.
    let cursor = page.after.map(|key| key.at);
    if let Some(from) = from
        && cursor.is_none_or(|at| at < from)
    {
        condition = condition.add(meets::Column::StartsAt.gte(from));
    }
    let from = Ord::max(from, cursor);
    if let Some(search) = &filter.search
        && let Some(words) = validate::search_words("search", search)?
    {
        if words.is_empty() {
            return Ok(Paged::none());
        }
        let backend = db.get_database_backend();
        condition = condition.add(search::matching(backend, &words, from, until));
    }
    if let Some(handle) = &filter.host_handle {
        // Not a possible handle: nobody hosts under it.
        let Some(handle) = validate::handle_key(handle) else {
            return Ok(Paged::none());
        };
        let host = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .filter(users::Column::Handle.eq(handle))
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
        // The grid cells under the circle: an index range per cell within
        // the time range, rather than every meet of the time range.
        if let Some((grid, cells)) =
            rules::covering_cells((near.latitude, near.longitude), near.radius_km)
        {
            let cell = Expr::col((meets::Entity, Alias::new(grid.column)));
            condition = condition.add(cell.is_in(cells));
        }
        return list_near(db, condition, near, page).await;
    }
    let rows = page_of_meets(db, condition, page).await?;
    Ok(BY_START.paged(rows, page, |(m, _)| m))
}

async fn page_of_meets(
    db: &impl ConnectionTrait,
    condition: Condition,
    page: &Page<TimeKey>,
) -> Result<Vec<(meets::Model, users::Model)>, sea_orm::DbErr> {
    let query = meets::Entity::find()
        .find_also_related(users::Entity)
        .filter(condition);
    let rows = BY_START.select(query, page).all(db).await?;
    Ok(with_related(rows))
}

/// The bounding box narrows in SQL; the exact great-circle distance filters
/// here, batch after batch on the same keyset, until the page is full.
async fn list_near(
    db: &impl ConnectionTrait,
    condition: Condition,
    near: Near,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<(meets::Model, users::Model)>> {
    let wanted = page.limit() as usize;
    let mut batch = Page {
        first: Ord::max(page.first, 50),
        after: page.after,
    };
    let mut found = Vec::with_capacity(wanted);
    loop {
        let rows = page_of_meets(db, condition.clone(), &batch).await?;
        let exhausted = (rows.len() as u64) < batch.limit();
        batch.after = rows.last().map(|(m, _)| (BY_START.key)(m));
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
            return Ok(BY_START.paged(found, page, |(m, _)| m));
        }
    }
}

/// Meets a user hosts that the viewer may see, latest start first.
#[tracing::instrument(name = "meets::hosted_by", level = "debug", skip_all)]
pub async fn hosted_by(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    host_id: Uuid,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<meets::Model>> {
    let query = meets::Entity::find().filter(
        Condition::all()
            .add(visibility::condition(viewer))
            .add(meets::Column::HostId.eq(host_id)),
    );
    let rows = BY_START_LATEST_FIRST.select(query, page).all(db).await?;
    Ok(BY_START_LATEST_FIRST.paged(rows, page, |m| m))
}

/// The meets a user answered GOING, MAYBE or WAITLISTED, soonest first.
/// Only the user themself may read it.
#[tracing::instrument(name = "meets::attending", level = "debug", skip_all)]
pub async fn attending(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    user_id: Uuid,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<(attendances::Model, meets::Model)>> {
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
    let rows = with_related(BY_START.select(query, page).all(db).await?);
    Ok(BY_START.paged(rows, page, |(_, m)| m))
}
