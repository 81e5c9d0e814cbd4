//! Read-only look-ups of members, and the rule of who sees a member's
//! private fields: what the other domains may use of accounts. It calls no
//! other domain, so every domain can depend on it without a loop.

use std::collections::HashMap;

use entity::users;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use crate::{auth::Viewer, error::ApiResult, validate};

/// Whether the viewer may see a member's private fields (e-mail, notice
/// settings, suspension): the member themself and administrators.
/// `session_owner`: the member a register, login or refresh just signed in
/// sees their own even though that request came without a token.
pub fn may_see_private_fields(viewer: Viewer, member_id: Uuid, session_owner: bool) -> bool {
    session_owner || viewer.is_self_or_admin(member_id)
}

/// Holds the member's row locked until the transaction ends (PostgreSQL;
/// SQLite's write transactions are one at a time anyway): what makes a
/// member's own rate-limited writes count one after another, even across
/// processes. It changes nothing.
pub async fn lock(txn: &DatabaseTransaction, id: Uuid) -> ApiResult<()> {
    users::Entity::find_by_id(id)
        .select_only()
        .column(users::Column::Id)
        .lock_exclusive()
        .into_tuple::<Uuid>()
        .one(txn)
        .await?;
    Ok(())
}

#[tracing::instrument(name = "accounts::find_by_id", level = "debug", skip_all)]
pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> ApiResult<Option<users::Model>> {
    Ok(users::Entity::find_by_id(id).one(db).await?)
}

/// Members by handle (given lower-case), keyed by handle.
pub async fn by_handles(
    db: &impl ConnectionTrait,
    handles: &[String],
) -> ApiResult<HashMap<String, users::Model>> {
    let rows = users::Entity::find()
        .filter(users::Column::Handle.is_in(handles.iter().cloned()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|u| (u.handle.clone(), u)).collect())
}

/// Members by e-mail (given lower-case), keyed by e-mail.
pub async fn by_emails(
    db: &impl ConnectionTrait,
    emails: &[String],
) -> ApiResult<HashMap<String, users::Model>> {
    let rows = users::Entity::find()
        .filter(users::Column::Email.is_in(emails.iter().cloned()))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|u| (u.email.clone(), u)).collect())
}

#[tracing::instrument(name = "accounts::find_by_handle", level = "debug", skip_all)]
pub async fn find_by_handle(
    db: &impl ConnectionTrait,
    handle: &str,
) -> ApiResult<Option<users::Model>> {
    // Not a possible handle: nobody has it.
    let Some(handle) = validate::handle_key(handle) else {
        return Ok(None);
    };
    Ok(users::Entity::find()
        .filter(users::Column::Handle.eq(handle))
        .one(db)
        .await?)
}
