//! Administrative rules. Every action is recorded in the audit log in the
//! same transaction as the change itself.

use chrono::Utc;
use entity::{
    admin_audit,
    users::{self, Role},
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Func},
};
use uuid::Uuid;

use crate::{
    accounts::{members, service::revoke_all_sessions},
    auth::Viewer,
    db::begin_write,
    error::{ApiError, ApiResult},
    events::{Event, EventBus},
    keyset::{Direction, Page, Paged, TimeKey, TimeOrder},
    state::Services,
    validate,
};

/// Users newest first.
const USERS_NEWEST_FIRST: TimeOrder<users::Column, users::Model> = TimeOrder {
    time: users::Column::CreatedAt,
    id: users::Column::Id,
    direction: Direction::Descending,
    key: |user| TimeKey {
        at: user.created_at,
        id: user.id,
    },
};

/// The audit log newest first.
const AUDIT_NEWEST_FIRST: TimeOrder<admin_audit::Column, admin_audit::Model> = TimeOrder {
    time: admin_audit::Column::CreatedAt,
    id: admin_audit::Column::Id,
    direction: Direction::Descending,
    key: |entry| TimeKey {
        at: entry.created_at,
        id: entry.id,
    },
};

/// Records an administrative action (`actor` is `None` for the CLI).
pub async fn record(
    db: &impl ConnectionTrait,
    actor: Option<Uuid>,
    action: &str,
    target: Option<Uuid>,
    detail: Option<String>,
) -> ApiResult<()> {
    admin_audit::ActiveModel {
        id: Set(Uuid::now_v7()),
        actor_id: Set(actor),
        action: Set(action.to_owned()),
        target_user_id: Set(target),
        detail: Set(detail),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Users, newest first; `search` matches handle, display name or e-mail.
#[tracing::instrument(name = "admin::list_users", level = "debug", skip_all)]
pub async fn list_users(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    search: Option<String>,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<users::Model>> {
    viewer.require_admin()?;
    let mut condition = Condition::all();
    let search = match search {
        Some(raw) => validate::lookup("search", &raw, validate::SEARCH_MAX)?,
        None => String::new(),
    };
    if !search.is_empty() {
        condition = condition.add(users_holding(
            db.get_database_backend(),
            &search.to_lowercase(),
        ));
    }
    let query = USERS_NEWEST_FIRST.select(users::Entity::find().filter(condition), page);
    Ok(USERS_NEWEST_FIRST.paged(query.all(db).await?, page, |u| u))
}

/// Users whose handle, display name or e-mail holds `text` (lower-case),
/// by their trigram index (migration m20261126_000005), so a search costs
/// what its matches do, not a pass over every user.
fn users_holding(backend: DbBackend, text: &str) -> Condition {
    let pattern = || crate::db::contains_pattern(text);
    match backend {
        // Word for word the indexed expression; chr(1) keeps a match from
        // spanning two fields (a search holds no control characters).
        DbBackend::Postgres => Condition::all().add(
            Expr::cust(
                "(\"users\".\"handle\" || chr(1) || lower(\"users\".\"display_name\") \
                 || chr(1) || \"users\".\"email\")",
            )
            .like(pattern()),
        ),
        // FTS5's trigram index takes three characters or more; shorter text
        // is compared row by row.
        _ if text.chars().count() >= 3 => Condition::all().add(Expr::cust_with_values(
            "\"users\".\"rowid\" IN (SELECT rowid FROM users_fts WHERE users_fts MATCH ?)",
            [format!("\"{}\"", text.replace('"', "\"\""))],
        )),
        _ => Condition::any()
            .add(Expr::col(users::Column::Handle).like(pattern()))
            .add(Func::lower(Expr::col(users::Column::DisplayName)).like(pattern()))
            .add(Expr::col(users::Column::Email).like(pattern())),
    }
}

async fn target(db: &impl ConnectionTrait, id: Uuid) -> ApiResult<users::Model> {
    members::find_by_id(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

/// The last administrator may not remove themself from office.
async fn keep_an_admin(
    db: &impl ConnectionTrait,
    admin_id: Uuid,
    target_id: Uuid,
) -> ApiResult<()> {
    if admin_id != target_id {
        return Ok(());
    }
    let admins = users::Entity::find()
        .filter(users::Column::Role.eq(Role::Admin))
        .filter(users::Column::SuspendedAt.is_null())
        .count(db)
        .await?;
    if admins <= 1 {
        return Err(ApiError::Conflict(
            "you are the last administrator; promote another one first".into(),
        ));
    }
    Ok(())
}

#[tracing::instrument(name = "admin::set_role", level = "debug", skip_all)]
pub async fn set_role(
    services: &Services,
    viewer: Viewer,
    user_id: Uuid,
    role: Role,
) -> ApiResult<users::Model> {
    let admin_id = viewer.require_admin()?;
    let txn = begin_write(&services.db).await?;
    let user = target(&txn, user_id).await?;
    if user.role == role {
        return Ok(user);
    }
    if role == Role::Member {
        keep_an_admin(&txn, admin_id, user_id).await?;
    }
    let mut active: users::ActiveModel = user.into();
    active.role = Set(role);
    active.updated_at = Set(Utc::now());
    let user = active.update(&txn).await?;
    let action = match role {
        Role::Admin => "set_role_admin",
        Role::Member => "set_role_member",
    };
    record(&txn, Some(admin_id), action, Some(user_id), None).await?;
    services
        .events
        .commit(txn, vec![Event::AccessChanged { user_id }])
        .await?;
    Ok(user)
}

/// Takes effect at once: access tokens already issued stop working (the
/// viewer is checked against the database on every request), refresh tokens
/// are revoked, and open WebSocket connections are closed.
#[tracing::instrument(name = "admin::suspend", level = "debug", skip_all)]
pub async fn suspend(
    services: &Services,
    viewer: Viewer,
    user_id: Uuid,
    reason: &str,
) -> ApiResult<users::Model> {
    let admin_id = viewer.require_admin()?;
    let reason = validate::text("reason", reason, 1, 500)?;
    let txn = begin_write(&services.db).await?;
    let user = target(&txn, user_id).await?;
    if user.suspended_at.is_some() {
        return Ok(user);
    }
    if user.role == Role::Admin {
        keep_an_admin(&txn, admin_id, user_id).await?;
    }
    let mut active: users::ActiveModel = user.into();
    active.suspended_at = Set(Some(Utc::now()));
    active.suspension_reason = Set(Some(reason.clone()));
    active.updated_at = Set(Utc::now());
    let user = active.update(&txn).await?;
    revoke_all_sessions(&txn, user_id).await?;
    record(&txn, Some(admin_id), "suspend", Some(user_id), Some(reason)).await?;
    services
        .events
        .commit(txn, vec![Event::AccessChanged { user_id }])
        .await?;
    Ok(user)
}

#[tracing::instrument(name = "admin::unsuspend", level = "debug", skip_all)]
pub async fn unsuspend(
    services: &Services,
    viewer: Viewer,
    user_id: Uuid,
) -> ApiResult<users::Model> {
    let admin_id = viewer.require_admin()?;
    let txn = begin_write(&services.db).await?;
    let user = target(&txn, user_id).await?;
    if user.suspended_at.is_none() {
        return Ok(user);
    }
    let mut active: users::ActiveModel = user.into();
    active.suspended_at = Set(None);
    active.suspension_reason = Set(None);
    active.updated_at = Set(Utc::now());
    let user = active.update(&txn).await?;
    record(&txn, Some(admin_id), "unsuspend", Some(user_id), None).await?;
    txn.commit().await?;
    Ok(user)
}

/// The audit log, newest first.
#[tracing::instrument(name = "admin::audit_log", level = "debug", skip_all)]
pub async fn audit_log(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<admin_audit::Model>> {
    viewer.require_admin()?;
    let query = AUDIT_NEWEST_FIRST.select(admin_audit::Entity::find(), page);
    Ok(AUDIT_NEWEST_FIRST.paged(query.all(db).await?, page, |e| e))
}

/// Makes a user an administrator: the CLI's `promote`, the only way to
/// create the first one. Run beside the server, so the role change reaches
/// the server's open sockets through the database (PostgreSQL only: on
/// SQLite the event stream is in-process).
pub async fn promote(db: &DatabaseConnection, handle: &str) -> ApiResult<users::Model> {
    let txn = begin_write(db).await?;
    let user = members::find_by_handle(&txn, handle)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let mut active: users::ActiveModel = user.into();
    active.role = Set(Role::Admin);
    active.updated_at = Set(Utc::now());
    let user = active.update(&txn).await?;
    record(&txn, None, "promote", Some(user.id), None).await?;
    EventBus::new(db.get_database_backend())
        .commit(txn, vec![Event::AccessChanged { user_id: user.id }])
        .await?;
    Ok(user)
}
