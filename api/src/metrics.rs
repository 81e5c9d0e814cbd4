//! Prometheus metrics, through the `metrics` facade, served at `/metrics` on
//! their own address (`TWEETMEET_METRICS_BIND`), never on the public port.
//! Counters and histograms are recorded where things happen; what is a state
//! rather than an event (the database pool, the e-mail outbox) is read when
//! scraped. The names are listed in the README.

use std::{
    collections::HashSet,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use axum::{Router, extract::State, routing::get};
use chrono::Utc;
use entity::notices;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect,
};

/// Request latencies, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Operation names become labels; a client could send a new one with every
/// request, so only this many distinct names are kept, the rest count as
/// "other".
const MAX_OPERATION_NAMES: usize = 256;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use (once per process: tests
/// start many servers in one).
pub fn handle() -> Option<PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "tweetmeet_http_requests_total",
        "HTTP requests by GraphQL operation and outcome"
    );
    describe_histogram!(
        "tweetmeet_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by GraphQL operation and outcome"
    );
    describe_counter!(
        "tweetmeet_graphql_errors_total",
        "GraphQL errors by extensions.code"
    );
    describe_gauge!("tweetmeet_websockets_open", "open WebSocket connections");
    describe_gauge!("tweetmeet_subscriptions_active", "live subscriptions");
    describe_counter!(
        "tweetmeet_events_published_total",
        "events committed by this process, by type"
    );
    describe_counter!(
        "tweetmeet_events_fanned_out_total",
        "event snapshots handed to this process's subscriptions"
    );
    describe_gauge!(
        "tweetmeet_live_hub_lag_events",
        "events waiting for this process's live hub"
    );
    describe_gauge!(
        "tweetmeet_outbox_pending",
        "notices waiting to be delivered"
    );
    describe_gauge!(
        "tweetmeet_outbox_oldest_pending_age_seconds",
        metrics::Unit::Seconds,
        "age of the oldest notice waiting to be delivered"
    );
    describe_counter!(
        "tweetmeet_notice_deliveries_total",
        "delivery attempts by transport and outcome"
    );
    describe_counter!(
        "tweetmeet_push_deliveries_total",
        "push delivery attempts by platform and outcome"
    );
    describe_gauge!(
        "tweetmeet_db_pool_connections",
        "database pool connections by state"
    );
    describe_histogram!(
        "tweetmeet_db_pool_wait_seconds",
        metrics::Unit::Seconds,
        "how long a write transaction waited to begin: for a pooled connection, and on SQLite for the write lock"
    );
    describe_gauge!(
        "tweetmeet_password_hashes_queued",
        "password hashes (register, login, password changes) waiting for a hashing slot"
    );
    describe_gauge!(
        "tweetmeet_password_hashes_running",
        "password hashes being computed (at most TWEETMEET_ARGON2_CONCURRENCY)"
    );
}

/// A GraphQL operation's name as a label: names are identifiers of at most
/// 64 characters, and at most `MAX_OPERATION_NAMES` distinct ones are kept.
pub fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name.filter(|name| {
        !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    }) else {
        return match name {
            None => "-".to_owned(),
            Some(_) => "other".to_owned(),
        };
    };
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if seen.contains(name) || seen.len() < MAX_OPERATION_NAMES {
        seen.insert(name.to_owned());
        name.to_owned()
    } else {
        "other".to_owned()
    }
}

/// `/metrics` for the given process's services.
pub fn router(db: DatabaseConnection) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(db)
}

/// Drains histogram samples into their buckets now and then, as the
/// recorder asks when it has no exporter of its own.
pub fn spawn_upkeep() {
    tokio::spawn(async {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            if let Some(handle) = handle() {
                handle.run_upkeep();
            }
        }
    });
}

async fn scrape(State(db): State<DatabaseConnection>) -> String {
    record_pool(&db);
    if let Err(err) = record_outbox(&db).await {
        tracing::warn!(error = %err, "reading the outbox for metrics");
    }
    handle()
        .map(|handle| {
            handle.run_upkeep();
            handle.render()
        })
        .unwrap_or_default()
}

fn record_pool(db: &DatabaseConnection) {
    let (size, idle) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => return,
    };
    let idle = idle as f64;
    metrics::gauge!("tweetmeet_db_pool_connections", "state" => "idle").set(idle);
    metrics::gauge!("tweetmeet_db_pool_connections", "state" => "in_use")
        .set(f64::from(size) - idle);
}

async fn record_outbox(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let pending = || {
        notices::Entity::find()
            .filter(notices::Column::SentAt.is_null())
            .filter(notices::Column::DeadAt.is_null())
    };
    let depth = pending().count(db).await?;
    let oldest: Option<chrono::DateTime<Utc>> = pending()
        .select_only()
        .column_as(notices::Column::CreatedAt.min(), "oldest")
        .into_tuple::<Option<chrono::DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten();
    metrics::gauge!("tweetmeet_outbox_pending").set(depth as f64);
    let age = oldest.map_or(0.0, |at| {
        (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
    });
    metrics::gauge!("tweetmeet_outbox_oldest_pending_age_seconds").set(age);
    Ok(())
}
