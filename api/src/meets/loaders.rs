//! Per-request batch loaders of the meets domain.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use chrono::{DateTime, Utc};
use entity::{
    attendances::{self, RsvpStatus},
    meets,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, JoinType,
    QueryFilter, QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::visibility;
use crate::auth::Viewer;

/// Meets by id, only those the viewer may see.
pub struct MeetLoader {
    pub db: DatabaseConnection,
    pub viewer: Viewer,
}

impl Loader<Uuid> for MeetLoader {
    type Value = meets::Model;
    type Error = Arc<DbErr>;

    #[tracing::instrument(name = "load meets", level = "debug", skip_all)]
    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, meets::Model>, Self::Error> {
        let rows = meets::Entity::find()
            .filter(
                Condition::all()
                    .add(meets::Column::Id.is_in(ids.iter().copied()))
                    .add(visibility::condition(self.viewer)),
            )
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|m| (m.id, m)).collect())
    }
}

/// The viewer's own attendance, by meet id.
pub struct ViewerAttendanceLoader {
    pub db: DatabaseConnection,
    pub user_id: Uuid,
}

impl Loader<Uuid> for ViewerAttendanceLoader {
    type Value = attendances::Model;
    type Error = Arc<DbErr>;

    #[tracing::instrument(name = "load viewer attendance", level = "debug", skip_all)]
    async fn load(
        &self,
        meet_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, attendances::Model>, Self::Error> {
        let rows = attendances::Entity::find()
            .filter(attendances::Column::UserId.eq(self.user_id))
            .filter(attendances::Column::MeetId.is_in(meet_ids.iter().copied()))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|a| (a.meet_id, a)).collect())
    }
}

/// What a user's check-ins say of them: how many meets they checked in to,
/// and when the earliest of those started (`None`: never checked in).
#[derive(Clone, Copy, Debug, Default)]
pub struct AttendanceRecord {
    pub meets_attended: i64,
    pub first_attended: Option<DateTime<Utc>>,
}

impl AttendanceRecord {
    /// Whether they had checked in to no meet that started before `starts_at`.
    pub fn newcomer_at(&self, starts_at: DateTime<Utc>) -> bool {
        self.first_attended.is_none_or(|first| first >= starts_at)
    }
}

/// Users' attendance records, by user id: one grouped statement per batch
/// (a guest list's page, a feed's hosts), whatever the batch's size.
pub struct AttendanceRecordLoader(pub DatabaseConnection);

impl Loader<Uuid> for AttendanceRecordLoader {
    type Value = AttendanceRecord;
    type Error = Arc<DbErr>;

    #[tracing::instrument(name = "load attendance records", level = "debug", skip_all)]
    async fn load(&self, users: &[Uuid]) -> Result<HashMap<Uuid, AttendanceRecord>, Self::Error> {
        Ok(attendance_records(&self.0, users).await?)
    }
}

/// The records of `users`; those who never checked in are left out.
pub async fn attendance_records(
    db: &impl ConnectionTrait,
    users: &[Uuid],
) -> Result<HashMap<Uuid, AttendanceRecord>, DbErr> {
    if users.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i64, DateTime<Utc>)> = attendances::Entity::find()
        .select_only()
        .column(attendances::Column::UserId)
        .column_as(attendances::Column::Id.count(), "meets_attended")
        .column_as(meets::Column::StartsAt.min(), "first_attended")
        .inner_join(meets::Entity)
        .filter(attendances::Column::UserId.is_in(users.iter().copied()))
        .filter(attendances::Column::CheckedInAt.is_not_null())
        .group_by(attendances::Column::UserId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(user, meets_attended, first)| {
            (
                user,
                AttendanceRecord {
                    meets_attended,
                    first_attended: Some(first),
                },
            )
        })
        .collect())
}

/// How many of each meet's GOING attendees are newcomers, by meet id.
pub struct NewcomerCountLoader(pub DatabaseConnection);

impl Loader<Uuid> for NewcomerCountLoader {
    type Value = i64;
    type Error = Arc<DbErr>;

    #[tracing::instrument(name = "load newcomer counts", level = "debug", skip_all)]
    async fn load(&self, meets: &[Uuid]) -> Result<HashMap<Uuid, i64>, Self::Error> {
        Ok(newcomer_counts(&self.0, meets).await?)
    }
}

/// GOING attendees with no check-in at a meet that started before theirs,
/// counted per meet in one statement:
///
/// ```sql
/// SELECT g.meet_id, COUNT(g.id) FROM attendances g JOIN meets m ON m.id = g.meet_id
/// WHERE g.meet_id IN (…) AND g.status = 'GOING' AND NOT EXISTS (
///   SELECT 1 FROM attendances c JOIN meets cm ON cm.id = c.meet_id
///   WHERE c.user_id = g.user_id AND c.checked_in_at IS NOT NULL
///     AND cm.starts_at < m.starts_at)
/// GROUP BY g.meet_id
/// ```
pub async fn newcomer_counts(
    db: &impl ConnectionTrait,
    meet_ids: &[Uuid],
) -> Result<HashMap<Uuid, i64>, DbErr> {
    if meet_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let (g, m, c, cm) = (
        Alias::new("g"),
        Alias::new("m"),
        Alias::new("c"),
        Alias::new("cm"),
    );
    let earlier_check_in = Query::select()
        .expr(Expr::val(1))
        .from_as(attendances::Entity, c.clone())
        .join_as(
            JoinType::InnerJoin,
            meets::Entity,
            cm.clone(),
            Expr::col((cm.clone(), meets::Column::Id))
                .equals((c.clone(), attendances::Column::MeetId)),
        )
        .and_where(
            Expr::col((c.clone(), attendances::Column::UserId))
                .equals((g.clone(), attendances::Column::UserId)),
        )
        .and_where(Expr::col((c.clone(), attendances::Column::CheckedInAt)).is_not_null())
        .and_where(
            Expr::col((cm.clone(), meets::Column::StartsAt))
                .lt(Expr::col((m.clone(), meets::Column::StartsAt))),
        )
        .to_owned();
    let query = Query::select()
        .column((g.clone(), attendances::Column::MeetId))
        .expr(Expr::col((g.clone(), attendances::Column::Id)).count())
        .from_as(attendances::Entity, g.clone())
        .join_as(
            JoinType::InnerJoin,
            meets::Entity,
            m.clone(),
            Expr::col((m.clone(), meets::Column::Id))
                .equals((g.clone(), attendances::Column::MeetId)),
        )
        .and_where(
            Expr::col((g.clone(), attendances::Column::MeetId)).is_in(meet_ids.iter().copied()),
        )
        .and_where(Expr::col((g.clone(), attendances::Column::Status)).eq(RsvpStatus::Going))
        .and_where(Expr::exists(earlier_check_in).not())
        .group_by_col((g, attendances::Column::MeetId))
        .to_owned();
    let rows = db.query_all(&query).await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}
