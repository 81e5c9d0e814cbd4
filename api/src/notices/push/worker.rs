//! The push delivery worker, the e-mail worker's twin (`notices::worker`)
//! over `push_notices`: claims due notices with a short lease (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL, so several processes never take the same
//! one), renews it while sending, and records each outcome: sent; the device
//! gone (it is removed, and its notices with it); or a retry after the
//! backoff, or the push service's `Retry-After` when longer, until the last
//! allowed attempt, after which the notice is dead and logged once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use entity::{devices, push_notices};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement, sea_query::Expr,
};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{PushError, PushMessage, Pushers};
use crate::{
    background::{self, lease_until},
    events::Event,
    notices::worker::{Policy, backoff_secs},
    outage::Outage,
};

const BATCH: i64 = 20;

/// Claims up to `BATCH` due, living push notices for this worker.
async fn claim(
    db: &DatabaseConnection,
    lease: Duration,
) -> Result<Vec<push_notices::Model>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let txn = crate::db::begin_write(db).await?;
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT * FROM push_notices WHERE sent_at IS NULL AND dead_at IS NULL \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        }
        _ => {
            "SELECT * FROM push_notices WHERE sent_at IS NULL AND dead_at IS NULL \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
        }
    };
    let due = push_notices::Model::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [Utc::now().into(), BATCH.into()],
    ))
    .all(&txn)
    .await?;
    if !due.is_empty() {
        push_notices::Entity::update_many()
            .col_expr(
                push_notices::Column::NextAttemptAt,
                Expr::value(lease_until(lease)),
            )
            .filter(push_notices::Column::Id.is_in(due.iter().map(|n| n.id)))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(due)
}

/// Renews the lease of the batch's notices not yet recorded.
async fn hold(db: &DatabaseConnection, ids: &[Uuid], lease: Duration) {
    let held = push_notices::Entity::update_many()
        .col_expr(
            push_notices::Column::NextAttemptAt,
            Expr::value(lease_until(lease)),
        )
        .filter(push_notices::Column::Id.is_in(ids.iter().copied()))
        .filter(push_notices::Column::SentAt.is_null())
        .filter(push_notices::Column::DeadAt.is_null())
        .exec(db)
        .await;
    if let Err(err) = held {
        tracing::error!(error = %err, "holding claimed push notices");
    }
}

/// Records the outcome of one attempt.
async fn record(
    db: &DatabaseConnection,
    policy: Policy,
    notice: &push_notices::Model,
    device: Option<&devices::Model>,
    outcome: Result<(), PushError>,
) -> Result<(), sea_orm::DbErr> {
    let attempts = notice.attempts + 1;
    let update = push_notices::Entity::update_many()
        .filter(push_notices::Column::Id.eq(notice.id))
        .col_expr(push_notices::Column::Attempts, Expr::value(attempts));
    let now = Utc::now();
    let (reason, after) = match outcome {
        Ok(()) => {
            update
                .col_expr(push_notices::Column::SentAt, Expr::value(now))
                .exec(db)
                .await?;
            if let Some(device) = device {
                devices::Entity::update_many()
                    .col_expr(devices::Column::LastUsedAt, Expr::value(now))
                    .filter(devices::Column::Id.eq(device.id))
                    .exec(db)
                    .await?;
            }
            tracing::info!(notice = %notice.id, kind = %notice.kind, "push notice sent");
            return Ok(());
        }
        Err(PushError::Gone(reason)) => {
            // The device's notices go with it (ON DELETE CASCADE).
            devices::Entity::delete_by_id(notice.device_id)
                .exec(db)
                .await?;
            tracing::info!(device = %notice.device_id, %reason, "push device gone; removed");
            return Ok(());
        }
        Err(PushError::Retry { reason, after }) => (reason, after),
    };
    let update = update.col_expr(push_notices::Column::LastError, Expr::value(reason.clone()));
    if attempts >= policy.max_attempts {
        update
            .col_expr(push_notices::Column::DeadAt, Expr::value(now))
            .exec(db)
            .await?;
        tracing::warn!(notice = %notice.id, kind = %notice.kind, attempts, error = %reason, "push notice undeliverable; giving up");
    } else {
        let wait = backoff_secs(attempts).max(after.map_or(0, |a| a.as_secs() as i64));
        let retry_at = now + chrono::Duration::seconds(wait);
        update
            .col_expr(push_notices::Column::NextAttemptAt, Expr::value(retry_at))
            .exec(db)
            .await?;
        tracing::warn!(notice = %notice.id, attempts, error = %reason, %retry_at, "push delivery failed; will retry");
    }
    Ok(())
}

/// Sends a claimed batch one notice at a time, renewing the claims of the
/// rest every third of a lease while a send is in flight.
async fn deliver(
    db: &DatabaseConnection,
    pushers: &Pushers,
    policy: Policy,
    batch: Vec<push_notices::Model>,
) -> Result<(), sea_orm::DbErr> {
    let ids: Vec<Uuid> = batch.iter().map(|n| n.device_id).collect();
    let devices: HashMap<Uuid, devices::Model> = devices::Entity::find()
        .filter(devices::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect();
    let mut pending: Vec<Uuid> = batch.iter().map(|n| n.id).collect();
    let mut heartbeat = tokio::time::interval(policy.lease / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    for notice in batch {
        pending.retain(|id| *id != notice.id);
        let device = devices.get(&notice.device_id);
        let outcome = match device.map(|d| (d, pushers.transport(d.platform))) {
            // Removed since (its notices with it): nothing to record.
            None => continue,
            Some((device, None)) => Err(PushError::Retry {
                reason: format!("no push service is configured for {:?}", device.platform),
                after: None,
            }),
            Some((device, Some(transport))) => {
                let message = PushMessage {
                    title: notice.title.clone(),
                    body: notice.body.clone(),
                    data: serde_json::from_str(&notice.data).unwrap_or_default(),
                };
                let send = transport.send(device, &message);
                tokio::pin!(send);
                loop {
                    tokio::select! {
                        outcome = &mut send => break outcome,
                        _ = heartbeat.tick() => hold(db, &pending, policy.lease).await,
                    }
                }
            }
        };
        metrics::counter!(
            "tweetmeet_push_deliveries_total",
            "platform" => device.map_or("none", |d| match d.platform {
                devices::Platform::Ios => "ios",
                devices::Platform::Android => "android",
                devices::Platform::Web => "web",
            }),
            "outcome" => match &outcome {
                Ok(()) => "sent",
                Err(PushError::Gone(_)) => "gone",
                Err(PushError::Retry { .. }) => "failed",
            }
        )
        .increment(1);
        record(db, policy, &notice, device, outcome).await?;
    }
    Ok(())
}

/// Runs forever: delivers what is due, then sleeps until the next push
/// notice falls due, a change says notices were queued, or the safety poll.
pub async fn run(
    db: DatabaseConnection,
    pushers: Arc<Pushers>,
    policy: Policy,
    mut wake: broadcast::Receiver<Arc<Event>>,
) {
    let mut database = Outage::new("the database (push outbox)");
    loop {
        match claim(&db, policy.lease).await {
            Ok(due) if !due.is_empty() => {
                database.recovered();
                if let Err(err) = deliver(&db, &pushers, policy, due).await {
                    let wait = database.failed(&err);
                    tokio::time::sleep(wait).await;
                }
                continue;
            }
            Ok(_) => database.recovered(),
            Err(err) => {
                let wait = database.failed(&err);
                tokio::time::sleep(wait).await;
                continue;
            }
        }
        let rest = match next_due(&db).await {
            Ok(next) => background::rest_until(next),
            Err(err) => database.failed(&err),
        };
        background::rest(rest, &mut wake, |event| {
            matches!(event, Event::NoticesQueued | Event::Missed)
        })
        .await;
    }
}

/// When the next living push notice falls due, if any is waiting.
async fn next_due(
    db: &DatabaseConnection,
) -> Result<Option<chrono::DateTime<Utc>>, sea_orm::DbErr> {
    Ok(push_notices::Entity::find()
        .select_only()
        .column_as(push_notices::Column::NextAttemptAt.min(), "due")
        .filter(push_notices::Column::SentAt.is_null())
        .filter(push_notices::Column::DeadAt.is_null())
        .into_tuple::<Option<chrono::DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten())
}
