//! The delivery worker: claims due notices, sends them, marks them sent, and
//! retries failures with exponential backoff, up to a number of attempts
//! after which a notice is dead (kept, with its last error, but never tried
//! again). A claim is a short lease (the notice's next attempt moves into
//! the future), renewed while the worker is still at its batch, so after a
//! crash the work is picked up again once the lease runs out, and a slow send
//! never lets another worker take the same notice. On PostgreSQL the claim
//! uses `FOR UPDATE SKIP LOCKED`, so several processes never take the same
//! notice. A mail server out of reach is an outage (`crate::outage`): one
//! line when it goes, a summary a minute, one when it is back, and the
//! worker backs off instead of trying every due notice against it.

use std::{sync::Arc, time::Duration};

use super::transport::Transport;
use chrono::Utc;
use entity::notices;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, Statement, sea_query::Expr,
};
use tokio::sync::broadcast;

use crate::{
    background::{self, lease_until},
    events::Event,
    outage::Outage,
};
use uuid::Uuid;

const BATCH: i64 = 20;
const MAX_BACKOFF_SECS: i64 = 3600;

/// How the worker holds and retries notices (from the configuration).
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Attempts before a notice is dead.
    pub max_attempts: i32,
    /// How long a claim holds without renewal: how late a crashed process's
    /// notices go out.
    pub lease: Duration,
}

/// Seconds to wait before attempt `attempts + 1`: 2, 4, 8, … up to an hour.
pub fn backoff_secs(attempts: i32) -> i64 {
    2_i64
        .saturating_pow(attempts.clamp(1, 20) as u32)
        .min(MAX_BACKOFF_SECS)
}

/// Claims up to `BATCH` due, living notices for this worker.
async fn claim(
    db: &DatabaseConnection,
    lease: Duration,
) -> Result<Vec<notices::Model>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let now = Utc::now();
    let txn = crate::db::begin_write(db).await?;
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT * FROM notices WHERE sent_at IS NULL AND dead_at IS NULL \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        }
        _ => {
            "SELECT * FROM notices WHERE sent_at IS NULL AND dead_at IS NULL \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
        }
    };
    let due = notices::Model::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [now.into(), BATCH.into()],
    ))
    .all(&txn)
    .await?;
    if !due.is_empty() {
        notices::Entity::update_many()
            .col_expr(
                notices::Column::NextAttemptAt,
                Expr::value(lease_until(lease)),
            )
            .filter(notices::Column::Id.is_in(due.iter().map(|n| n.id)))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(due)
}

/// Holds the batch's notices not yet recorded until `until`: renewing their
/// lease while the worker sends, or leaving them for later when the mail
/// server is down (their attempts unspent: they were not tried).
async fn hold(db: &DatabaseConnection, ids: &[Uuid], until: chrono::DateTime<Utc>) {
    let held = notices::Entity::update_many()
        .col_expr(notices::Column::NextAttemptAt, Expr::value(until))
        .filter(notices::Column::Id.is_in(ids.iter().copied()))
        .filter(notices::Column::SentAt.is_null())
        .filter(notices::Column::DeadAt.is_null())
        .exec(db)
        .await;
    if let Err(err) = held {
        tracing::error!(error = %err, "holding claimed notices");
    }
}

/// Records the outcome of one attempt: sent, retried later, or dead. A
/// retry is logged per notice unless `outage` (the mail server being out of
/// reach is logged once, as an outage, not once per notice).
async fn record(
    db: &DatabaseConnection,
    policy: Policy,
    notice: &notices::Model,
    outcome: anyhow::Result<()>,
    outage: bool,
) -> Result<(), sea_orm::DbErr> {
    let attempts = notice.attempts + 1;
    let update = notices::Entity::update_many()
        .filter(notices::Column::Id.eq(notice.id))
        .col_expr(notices::Column::Attempts, Expr::value(attempts));
    let err = match outcome {
        Ok(()) => {
            update
                .col_expr(notices::Column::SentAt, Expr::value(Utc::now()))
                .exec(db)
                .await?;
            tracing::info!(notice = %notice.id, kind = %notice.kind, "notice sent");
            return Ok(());
        }
        Err(err) => format!("{err:#}"),
    };
    let update = update.col_expr(notices::Column::LastError, Expr::value(err.clone()));
    if attempts >= policy.max_attempts {
        update
            .col_expr(notices::Column::DeadAt, Expr::value(Utc::now()))
            .exec(db)
            .await?;
        tracing::warn!(notice = %notice.id, kind = %notice.kind, attempts, error = %err, "notice undeliverable; giving up");
    } else {
        let retry_at = Utc::now() + chrono::Duration::seconds(backoff_secs(attempts));
        update
            .col_expr(notices::Column::NextAttemptAt, Expr::value(retry_at))
            .exec(db)
            .await?;
        if !outage {
            tracing::warn!(notice = %notice.id, attempts, error = %err, %retry_at, "notice delivery failed; will retry");
        }
    }
    Ok(())
}

/// Sends a claimed batch one notice at a time. While a send is in flight,
/// every third of a lease renews the claims of the notices not yet recorded
/// (one timer for the whole batch, so many slow sends cannot outlast it).
/// Renewals and records run in this one task, so a renewal never overwrites
/// a retry time just recorded.
///
/// A notice that finds the mail server out of reach spends its attempt as
/// any failure does, and the rest of the batch is left untried until the
/// outage's backoff has passed: returned, for the worker to wait that long.
async fn deliver(
    db: &DatabaseConnection,
    transport: &Transport,
    from: &str,
    policy: Policy,
    batch: Vec<notices::Model>,
    mail_server: &mut Outage,
) -> Option<Duration> {
    let mut pending: Vec<Uuid> = batch.iter().map(|n| n.id).collect();
    let mut heartbeat = tokio::time::interval(policy.lease / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; the claim itself just set the lease.
    heartbeat.tick().await;
    for notice in batch {
        let send = transport.send(from, &notice);
        tokio::pin!(send);
        let outcome = loop {
            tokio::select! {
                outcome = &mut send => break outcome,
                _ = heartbeat.tick() => hold(db, &pending, lease_until(policy.lease)).await,
            }
        };
        metrics::counter!(
            "tweetmeet_notice_deliveries_total",
            "transport" => transport.kind(),
            "outcome" => if outcome.is_ok() { "sent" } else { "failed" }
        )
        .increment(1);
        let reached = match &outcome {
            Ok(()) => Some(true),
            Err(err) => Transport::reached(err),
        };
        let wait = match (reached, &outcome) {
            (Some(false), Err(err)) => Some(mail_server.failed(&format_args!("{err:#}"))),
            (Some(true), _) => {
                mail_server.recovered();
                None
            }
            _ => None,
        };
        if let Err(err) = record(db, policy, &notice, outcome, wait.is_some()).await {
            tracing::error!(notice = %notice.id, error = %err, "recording a delivery");
        }
        pending.retain(|id| *id != notice.id);
        if let Some(wait) = wait {
            let until = Utc::now() + chrono::Duration::milliseconds(wait.as_millis() as i64);
            hold(db, &pending, until).await;
            return Some(wait);
        }
    }
    None
}

/// Runs forever: delivers what is due, then sleeps until the next notice
/// falls due (a retry, or a lease running out), a change says notices were
/// queued (`Event::NoticesQueued`, from any process on PostgreSQL), or the
/// safety poll. Idle, that is a claim every 30 s rather than twice a second.
pub async fn run(
    db: DatabaseConnection,
    transport: Transport,
    from: String,
    policy: Policy,
    mut wake: broadcast::Receiver<Arc<Event>>,
) {
    let mut database = Outage::new("the database (e-mail outbox)");
    let mut mail_server = Outage::new("the mail server (SMTP)");
    loop {
        match claim(&db, policy.lease).await {
            Ok(due) if !due.is_empty() => {
                database.recovered();
                let down = deliver(&db, &transport, &from, policy, due, &mut mail_server).await;
                if let Some(wait) = down {
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

/// When the next living notice falls due, if any is waiting.
async fn next_due(
    db: &DatabaseConnection,
) -> Result<Option<chrono::DateTime<Utc>>, sea_orm::DbErr> {
    Ok(notices::Entity::find()
        .select_only()
        .column_as(notices::Column::NextAttemptAt.min(), "due")
        .filter(notices::Column::SentAt.is_null())
        .filter(notices::Column::DeadAt.is_null())
        .into_tuple::<Option<chrono::DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::backoff_secs;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_secs(1), 2);
        assert_eq!(backoff_secs(2), 4);
        assert_eq!(backoff_secs(5), 32);
        assert_eq!(backoff_secs(30), 3600);
    }
}
