//! The meet activity log: every `MeetActivity` event, numbered per meet and
//! written in its change's transaction, so a subscriber can resume after the
//! last event it saw, or catch up after falling behind, from the database.
//! Kept for `TWEETMEET_EVENT_RETENTION_SECS`, then pruned.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::meet_activity_log::{self, ActivityKind};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Alias, Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

/// Takes the meet's next number and writes the event under it. The head
/// row's upsert locks it until `db`'s transaction ends, so events on one meet
/// commit in the order of their numbers, with no gaps: a subscriber that
/// sees number n + 2 after n knows n + 1 is in the log.
pub async fn append(
    db: &impl ConnectionTrait,
    meet_id: Uuid,
    kind: ActivityKind,
    user_id: Option<Uuid>,
    story_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<i64, DbErr> {
    let heads = Alias::new("meet_activity_heads");
    let (meet, seq) = (Alias::new("meet_id"), Alias::new("seq"));
    let next = Query::insert()
        .into_table(heads.clone())
        .columns([meet.clone(), seq.clone()])
        .values_panic([meet_id.into(), 1i64.into()])
        .on_conflict(
            OnConflict::column(meet)
                .value(seq.clone(), Expr::col((heads, seq.clone())).add(1))
                .to_owned(),
        )
        .returning_col(seq)
        .to_owned();
    let row = db
        .query_one(&next)
        .await?
        .ok_or_else(|| DbErr::Custom("the activity head upsert returned no row".into()))?;
    let seq: i64 = row.try_get("", "seq")?;
    meet_activity_log::Entity::insert(meet_activity_log::ActiveModel {
        meet_id: Set(meet_id),
        seq: Set(seq),
        kind: Set(kind),
        user_id: Set(user_id),
        story_id: Set(story_id),
        at: Set(at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(seq)
}

/// The number of the meet's latest event (0 before its first).
pub async fn head(db: &impl ConnectionTrait, meet_id: Uuid) -> Result<i64, DbErr> {
    let row = db
        .query_one(
            Query::select()
                .column(Alias::new("seq"))
                .from(Alias::new("meet_activity_heads"))
                .and_where(Expr::col(Alias::new("meet_id")).eq(meet_id)),
        )
        .await?;
    Ok(match row {
        Some(row) => row.try_get("", "seq")?,
        None => 0,
    })
}

/// Up to `limit` of the meet's events after number `after`, in order.
pub async fn after(
    db: &impl ConnectionTrait,
    meet_id: Uuid,
    after: i64,
    limit: u64,
) -> Result<Vec<meet_activity_log::Model>, DbErr> {
    meet_activity_log::Entity::find()
        .filter(meet_activity_log::Column::MeetId.eq(meet_id))
        .filter(meet_activity_log::Column::Seq.gt(after))
        .order_by_asc(meet_activity_log::Column::Seq)
        .limit(limit)
        .all(db)
        .await
}

/// Deletes the events older than `before`; returns how many.
pub async fn prune(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(meet_activity_log::Entity::delete_many()
        .filter(meet_activity_log::Column::At.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

/// Prunes the log in the background: events older than `retention` go, a
/// few times per retention period (at least hourly).
pub fn spawn_pruner(db: DatabaseConnection, retention: Duration) {
    let every = (retention / 4).clamp(Duration::from_millis(250), Duration::from_secs(3600));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Ok(retention) = chrono::Duration::from_std(retention) else {
                return;
            };
            match prune(&db, Utc::now() - retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::debug!(pruned, "pruned the meet activity log"),
                Err(err) => tracing::warn!(error = %err, "pruning the meet activity log"),
            }
        }
    });
}
