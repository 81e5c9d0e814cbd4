//! Timed work: what must happen at a time rather than in answer to a request
//! (a go / no-go meet's deadline, a reminder before a meet). The project's one home
//! for it: a domain schedules work in its own transaction (`schedule`,
//! `unschedule`), and every process runs a runner that claims due rows with
//! a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer
//! serialises claims) and hands each to its domain, sleeping in between
//! until the next job falls due or a change may have scheduled one. The domain's work deletes
//! the row in the transaction that does it (`done`), so it happens once;
//! work a crashed process had claimed is taken again once its lease runs
//! out, and the domain's own state check makes a second run change nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::scheduled_jobs::{self, JobKind};
use futures::future::BoxFuture;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, Statement,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use crate::{background, error::ApiResult, events::Event, outage::Outage, state::Services};

/// Due jobs claimed at once.
const BATCH: u64 = 50;

/// Schedules `kind` work on `subject` at `due_at`, or moves the one already
/// scheduled (and releases any claim on it: the new time is what counts).
pub async fn schedule(
    db: &impl ConnectionTrait,
    kind: JobKind,
    subject: Uuid,
    due_at: DateTime<Utc>,
) -> ApiResult<()> {
    scheduled_jobs::Entity::insert(scheduled_jobs::ActiveModel {
        id: sea_orm::ActiveValue::Set(Uuid::now_v7()),
        kind: sea_orm::ActiveValue::Set(kind),
        subject_id: sea_orm::ActiveValue::Set(subject),
        due_at: sea_orm::ActiveValue::Set(due_at),
        claimed_until: sea_orm::ActiveValue::Set(None),
        attempts: sea_orm::ActiveValue::Set(0),
        created_at: sea_orm::ActiveValue::Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            scheduled_jobs::Column::Kind,
            scheduled_jobs::Column::SubjectId,
        ])
        .update_columns([
            scheduled_jobs::Column::DueAt,
            scheduled_jobs::Column::ClaimedUntil,
            scheduled_jobs::Column::Attempts,
        ])
        .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}

/// Removes `kind` work on `subject`, if any: it will not run.
pub async fn unschedule(db: &impl ConnectionTrait, kind: JobKind, subject: Uuid) -> ApiResult<()> {
    scheduled_jobs::Entity::delete_many()
        .filter(scheduled_jobs::Column::Kind.eq(kind))
        .filter(scheduled_jobs::Column::SubjectId.eq(subject))
        .exec(db)
        .await?;
    Ok(())
}

/// Marks a claimed job done, in the transaction of the work it did.
pub async fn done(db: &impl ConnectionTrait, job: &scheduled_jobs::Model) -> ApiResult<()> {
    scheduled_jobs::Entity::delete_by_id(job.id)
        .exec(db)
        .await?;
    Ok(())
}

/// Claims up to `BATCH` due jobs no live claim holds, for `lease`.
async fn claim(
    db: &DatabaseConnection,
    lease: Duration,
) -> Result<Vec<scheduled_jobs::Model>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let now = Utc::now();
    let until = background::lease_until(lease);
    // Most polls find nothing: they look first, outside a write transaction
    // (SQLite's write lock is the whole database's).
    let claimable = Condition::any()
        .add(scheduled_jobs::Column::ClaimedUntil.is_null())
        .add(scheduled_jobs::Column::ClaimedUntil.lt(now));
    let any_due = scheduled_jobs::Entity::find()
        .filter(scheduled_jobs::Column::DueAt.lte(now))
        .filter(claimable)
        .one(db)
        .await?;
    if any_due.is_none() {
        return Ok(Vec::new());
    }
    let txn = crate::db::begin_write(db).await?;
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT * FROM scheduled_jobs WHERE due_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until < $1) \
             ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED"
        }
        _ => {
            "SELECT * FROM scheduled_jobs WHERE due_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until < $1) \
             ORDER BY due_at LIMIT $2"
        }
    };
    let due = scheduled_jobs::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            backend,
            sql,
            [now.into(), BATCH.into()],
        ))
        .all(&txn)
        .await?;
    if !due.is_empty() {
        scheduled_jobs::Entity::update_many()
            .col_expr(scheduled_jobs::Column::ClaimedUntil, Expr::value(until))
            .col_expr(
                scheduled_jobs::Column::Attempts,
                Expr::col(scheduled_jobs::Column::Attempts).add(1),
            )
            .filter(scheduled_jobs::Column::Id.is_in(due.iter().map(|job| job.id)))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(due)
}

/// The work behind a claimed job, by its kind: given by the domain that
/// schedules it (`meets::timed_work`), so this runner depends on no domain.
pub type Work = for<'a> fn(&'a Services, &'a scheduled_jobs::Model) -> BoxFuture<'a, ApiResult<()>>;

/// When there is next something to do: the earliest job no live claim
/// holds falls due, or the earliest live claim runs out (its process may
/// have died).
async fn next_due(db: &DatabaseConnection) -> Result<Option<DateTime<Utc>>, sea_orm::DbErr> {
    let now = Utc::now();
    let unclaimed = scheduled_jobs::Entity::find()
        .filter(
            Condition::any()
                .add(scheduled_jobs::Column::ClaimedUntil.is_null())
                .add(scheduled_jobs::Column::ClaimedUntil.lt(now)),
        )
        .order_by_asc(scheduled_jobs::Column::DueAt)
        .one(db)
        .await?
        .map(|job| job.due_at);
    let lease_ends = scheduled_jobs::Entity::find()
        .filter(scheduled_jobs::Column::ClaimedUntil.gte(now))
        .order_by_asc(scheduled_jobs::Column::ClaimedUntil)
        .one(db)
        .await?
        .and_then(|job| job.claimed_until);
    Ok(unclaimed.into_iter().chain(lease_ends).min())
}

/// Whether an event may have scheduled or moved work: changes to meets and
/// answers schedule deadlines and reminders; a gap in the stream may hide one.
fn may_schedule(event: &Event) -> bool {
    matches!(
        event,
        Event::MeetActivity { .. } | Event::MeetAnnounced { .. } | Event::Missed
    )
}

/// Claims and runs due work until the process ends, then sleeps until the
/// next job falls due, a change to a meet may have scheduled one (from any
/// process on PostgreSQL), or the safety poll: idle, two statements every
/// 30 s. A job that fails keeps its claim until the lease runs out, then is
/// tried again (by any process).
pub async fn run(services: Services, work: Work) {
    let lease = services.config.job_lease;
    let mut wake = services.events.subscribe();
    let mut outage = Outage::new("the database (timed work)");
    loop {
        match claim(&services.db, lease).await {
            Ok(jobs) if !jobs.is_empty() => {
                outage.recovered();
                for job in &jobs {
                    if let Err(err) = work(&services, job).await {
                        tracing::error!(error = %err, kind = ?job.kind, subject = %job.subject_id, attempts = job.attempts + 1, "timed work failed; retried when its claim runs out");
                    }
                }
                continue;
            }
            Ok(_) => outage.recovered(),
            Err(err) => {
                tokio::time::sleep(outage.failed(&err)).await;
                continue;
            }
        }
        let rest = match next_due(&services.db).await {
            Ok(next) => background::rest_until(next),
            Err(err) => outage.failed(&err),
        };
        background::rest(rest, &mut wake, may_schedule).await;
    }
}
