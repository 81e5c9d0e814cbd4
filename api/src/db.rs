//! Connecting (per-connection SQLite pragmas, PostgreSQL pool), migrating,
//! and the one way to open a write transaction.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// How long connecting may take before the server gives up saying why.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    if url.starts_with("postgres") {
        probe_postgres(url).await?;
    }
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        // Pragmas go into the connect options so that every pooled connection
        // gets them, not only the first one a statement happens to reach.
        options.max_connections(8).map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
        });
    } else {
        options.max_connections(20);
    }
    Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))
}

/// One connection, made and closed, before the pool: a pool retries a
/// failing connection until its acquire timeout (30 s) and then reports only
/// that it timed out, hiding "connection refused" or a wrong password.
async fn probe_postgres(url: &str) -> anyhow::Result<()> {
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _, postgres::PgConnectOptions};
    let options: PgConnectOptions = url.parse().with_context(|| {
        format!(
            "TWEETMEET_DATABASE_URL is not a PostgreSQL URL: {}",
            redact(url)
        )
    })?;
    let target = format!(
        "PostgreSQL at {}:{}",
        options.get_host(),
        options.get_port()
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => anyhow::bail!(
            "cannot connect to {target}: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ),
        Ok(Err(err)) => Err(anyhow::Error::new(err).context(format!("cannot connect to {target}"))),
        Ok(Ok(connection)) => {
            connection.close().await.ok();
            Ok(())
        }
    }
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await.context("applying migrations");
    }
    // Processes starting together on one database take turns: the lock lasts
    // until the migrating transaction ends, and the next finds nothing left
    // to do. PostgreSQL's DDL is transactional, so a step that fails leaves
    // nothing half-applied.
    let txn = db.begin().await?;
    txn.execute_unprepared("SELECT pg_advisory_xact_lock(7315182236)")
        .await?;
    Migrator::up(&txn, None)
        .await
        .context("applying migrations")?;
    txn.commit().await?;
    Ok(())
}

/// Opens a write transaction. On SQLite it is IMMEDIATE, so concurrent
/// writers queue on the busy timeout instead of failing with "database is
/// locked" when a read lock would have to be upgraded.
///
/// How long that took is `tweetmeet_db_pool_wait_seconds`: the wait for a
/// pooled connection (a pool too small for the load shows here first), and
/// on SQLite for the write lock too; on PostgreSQL, one round trip for
/// `BEGIN` on top. SeaORM takes a connection inside `begin` and for each
/// statement outside a transaction, with no hook between, so this is where
/// the wait can be timed; every write of a request passes through here.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let sqlite_transaction_mode = match db.get_database_backend() {
        DbBackend::Sqlite => Some(SqliteTransactionMode::Immediate),
        _ => None,
    };
    let started = std::time::Instant::now();
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode,
            ..Default::default()
        })
        .await;
    metrics::histogram!("tweetmeet_db_pool_wait_seconds").record(started.elapsed().as_secs_f64());
    txn
}

/// `LIKE '%text%'`, with the text's own wildcards escaped: a search for
/// "100%" finds "100%", not everything starting with "100".
pub fn contains_pattern(text: &str) -> sea_orm::sea_query::LikeExpr {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    sea_orm::sea_query::LikeExpr::new(format!("%{escaped}%")).escape('\\')
}

/// The URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The rows of a `find_also_related` join whose related row exists: over a
/// required foreign key it always does, unless it went between statements.
pub fn with_related<A, B>(rows: Vec<(A, Option<B>)>) -> Vec<(A, B)> {
    rows.into_iter()
        .filter_map(|(row, related)| related.map(|related| (row, related)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("sqlite://tweetmeet.db?mode=rwc"),
            "sqlite://tweetmeet.db?mode=rwc"
        );
    }
}
