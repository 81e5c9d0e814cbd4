//! The delivery worker: claims due notices, sends them, marks them sent, and
//! retries failures with exponential backoff. A claim is a lease (the notice's
//! next attempt moves into the future), so after a crash or restart the work
//! is picked up again once the lease runs out. On PostgreSQL the claim uses
//! `FOR UPDATE SKIP LOCKED`, so several processes never take the same notice.

use std::time::Duration;

use super::transport::Transport;
use chrono::Utc;
use entity::notices;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    Statement, sea_query::Expr,
};

const BATCH: i64 = 20;
/// How long a claimed notice is held before another worker may retry it.
const LEASE_SECS: i64 = 120;
const MAX_BACKOFF_SECS: i64 = 3600;
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Seconds to wait before attempt `attempts + 1`: 2, 4, 8, … up to an hour.
pub fn backoff_secs(attempts: i32) -> i64 {
    2_i64
        .saturating_pow(attempts.clamp(1, 20) as u32)
        .min(MAX_BACKOFF_SECS)
}

/// Claims up to `BATCH` due notices for this worker.
async fn claim(db: &DatabaseConnection) -> Result<Vec<notices::Model>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let now = Utc::now();
    let lease_until = now + chrono::Duration::seconds(LEASE_SECS);
    let txn = crate::db::begin_write(db).await?;
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT * FROM notices WHERE sent_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        }
        _ => {
            "SELECT * FROM notices WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
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
            .col_expr(notices::Column::NextAttemptAt, Expr::value(lease_until))
            .filter(notices::Column::Id.is_in(due.iter().map(|n| n.id)))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(due)
}

async fn deliver(
    db: &DatabaseConnection,
    transport: &Transport,
    from: &str,
    notice: notices::Model,
) -> Result<(), sea_orm::DbErr> {
    let attempts = notice.attempts + 1;
    let update = notices::Entity::update_many().filter(notices::Column::Id.eq(notice.id));
    match transport.send(from, &notice).await {
        Ok(()) => {
            update
                .col_expr(notices::Column::SentAt, Expr::value(Utc::now()))
                .col_expr(notices::Column::Attempts, Expr::value(attempts))
                .exec(db)
                .await?;
            tracing::info!(notice = %notice.id, kind = %notice.kind, "notice sent");
        }
        Err(err) => {
            let retry_at = Utc::now() + chrono::Duration::seconds(backoff_secs(attempts));
            update
                .col_expr(notices::Column::Attempts, Expr::value(attempts))
                .col_expr(notices::Column::NextAttemptAt, Expr::value(retry_at))
                .col_expr(notices::Column::LastError, Expr::value(format!("{err:#}")))
                .exec(db)
                .await?;
            tracing::warn!(notice = %notice.id, attempts, error = %format!("{err:#}"), %retry_at, "notice delivery failed; will retry");
        }
    }
    Ok(())
}

/// Runs forever: delivers what is due, then polls again shortly.
pub async fn run(db: DatabaseConnection, transport: Transport, from: String) {
    loop {
        match claim(&db).await {
            Ok(due) if !due.is_empty() => {
                for notice in due {
                    if let Err(err) = deliver(&db, &transport, &from, notice).await {
                        tracing::error!(error = %err, "recording a delivery");
                    }
                }
                continue;
            }
            Ok(_) => {}
            Err(err) => tracing::error!(error = %err, "claiming notices"),
        }
        tokio::time::sleep(IDLE_POLL).await;
    }
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
