//! Account rules and the database work behind them: registration,
//! sessions (login, refresh rotation, logout), passwords and profiles.

use chrono::{DateTime, Utc};
use entity::{
    notification_preferences::NoticeKind,
    refresh_tokens,
    users::{self, Role},
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    SqlErr, sea_query::Expr,
};
use uuid::Uuid;

use super::members::find_by_id;
use crate::{
    auth::{
        Viewer,
        tokens::{random_token, token_hash},
    },
    db::begin_write,
    error::{ApiError, ApiResult},
    invitations::{links, service as invitations},
    meets::reminders,
    notices::{
        self,
        preferences::{self, Channels},
    },
    state::Services,
    validate,
};

/// What a successful register, login or refresh hands back.
pub struct Session {
    pub access_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub user: users::Model,
}

pub struct NewAccount {
    pub email: String,
    pub password: String,
    pub handle: String,
    pub display_name: String,
    /// An invite link's token the new member came through: opened for them
    /// as they register (an unusable one refuses the registration).
    pub invite_link: Option<String>,
}

/// Profile changes: `None` keeps a field, `Some(None)` clears it.
#[derive(Default)]
pub struct ProfileChanges {
    pub display_name: Option<Option<String>>,
    pub headline: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub region: Option<Option<String>>,
    pub email_notices: Option<bool>,
}

const WRONG_CREDENTIALS: &str = "wrong e-mail or password";

fn invalid_refresh_token() -> ApiError {
    ApiError::Unauthenticated("invalid or expired refresh token".into())
}

/// Stores a new refresh token in `family` and issues an access token.
async fn open_session(
    services: &Services,
    db: &impl ConnectionTrait,
    user: users::Model,
    family_id: Uuid,
) -> ApiResult<Session> {
    let refresh_token = random_token();
    let now = Utc::now();
    refresh_tokens::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user.id),
        family_id: Set(family_id),
        token_hash: Set(token_hash(&refresh_token)),
        expires_at: Set(now + services.config.refresh_token_ttl),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    let (access_token, access_token_expires_at) = services.keys.issue_access(user.id)?;
    Ok(Session {
        access_token,
        access_token_expires_at,
        refresh_token,
        user,
    })
}

#[tracing::instrument(name = "accounts::register", level = "debug", skip_all)]
pub async fn register(services: &Services, input: NewAccount) -> ApiResult<Session> {
    let email = validate::email("email", &input.email)?;
    let handle = validate::handle(&input.handle)?;
    validate::password("password", &input.password, &handle, &email)?;
    let display_name = validate::text("displayName", &input.display_name, 1, 80)?;
    let password_hash = services.passwords.hash(input.password).await?;

    let txn = begin_write(&services.db).await?;
    if users::Entity::find()
        .filter(users::Column::Email.eq(&email))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(
            "an account with this e-mail already exists".into(),
        ));
    }
    if users::Entity::find()
        .filter(users::Column::Handle.eq(&handle))
        .one(&txn)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!("the handle {handle} is taken")));
    }
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set(email.clone()),
        handle: Set(handle),
        display_name: Set(display_name),
        password_hash: Set(password_hash),
        role: Set(Role::Member),
        headline: Set(None),
        bio: Set(None),
        avatar_url: Set(None),
        region: Set(None),
        email_notices: Set(true),
        suspended_at: Set(None),
        suspension_reason: Set(None),
        reminder_minutes_before: Set(Some(notices::preferences::DEFAULT_REMINDER_MINUTES)),
        calendar_feed_nonce: Set(None),
        calendar_feed_hash: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .map_err(|err| match err.sql_err() {
        // A concurrent registration won the race past the checks above.
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::Conflict("e-mail or handle already taken".into())
        }
        _ => err.into(),
    })?;
    // Pending invitations addressed to this e-mail become the new member's.
    invitations::adopt_by_email(&txn, &email, user.id).await?;
    if let Some(token) = &input.invite_link {
        links::open_in(&txn, token, Some(user.id), Utc::now()).await?;
    }
    let session = open_session(services, &txn, user, Uuid::now_v7()).await?;
    txn.commit().await?;
    Ok(session)
}

#[tracing::instrument(name = "accounts::login", level = "debug", skip_all)]
pub async fn login(services: &Services, email: &str, password: String) -> ApiResult<Session> {
    let email = validate::lookup("email", email, validate::EMAIL_MAX)?.to_lowercase();
    let user = users::Entity::find()
        .filter(users::Column::Email.eq(&email))
        .one(&services.db)
        .await?;
    let matches = services
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    // A suspended account gets the answer a wrong password gets: one that
    // depended on the password would confirm it to whoever guessed it.
    let user = match user {
        Some(user) if matches && user.suspended_at.is_none() => user,
        _ => return Err(ApiError::Unauthenticated(WRONG_CREDENTIALS.into())),
    };
    let txn = begin_write(&services.db).await?;
    let session = open_session(services, &txn, user, Uuid::now_v7()).await?;
    txn.commit().await?;
    Ok(session)
}

/// Rotates a refresh token. Presented again within the grace period after
/// its rotation (two tabs, or the HTTP link and the socket refreshing at
/// once), it opens a second session in the same family. Presented later, it
/// leaked: its whole family is revoked, and that revocation commits even
/// though the call fails.
#[tracing::instrument(name = "accounts::refresh", level = "debug", skip_all)]
pub async fn refresh(services: &Services, token: &str) -> ApiResult<Session> {
    let txn = begin_write(&services.db).await?;
    let Some(stored) = refresh_tokens::Entity::find()
        .filter(refresh_tokens::Column::TokenHash.eq(token_hash(token)))
        .one(&txn)
        .await?
    else {
        return Err(invalid_refresh_token());
    };
    let now = Utc::now();
    if stored.revoked_at.is_some() || stored.expires_at <= now {
        return Err(invalid_refresh_token());
    }
    // Conditional: of two concurrent refreshes with one token, one claims it;
    // the other waits on the row (PostgreSQL) or the write lock (SQLite) and
    // then reads the first one's claim below.
    let claimed = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
        .filter(refresh_tokens::Column::Id.eq(stored.id))
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 && !rotated_within_grace(services, &txn, stored.id, now).await? {
        revoke_family(&txn, stored.family_id).await?;
        txn.commit().await?;
        tracing::warn!(family = %stored.family_id, "refresh token reused; family revoked");
        return Err(invalid_refresh_token());
    }
    let user = users::Entity::find_by_id(stored.user_id)
        .one(&txn)
        .await?
        .ok_or_else(invalid_refresh_token)?;
    if user.suspended_at.is_some() {
        return Err(ApiError::Unauthenticated(
            "this account is suspended".into(),
        ));
    }
    let session = open_session(services, &txn, user, stored.family_id).await?;
    txn.commit().await?;
    Ok(session)
}

/// Whether a spent refresh token was rotated no longer than the grace period
/// before `now`, and its family is still live. Read afresh: a concurrent
/// refresh may have claimed it after this call's first read.
async fn rotated_within_grace(
    services: &Services,
    txn: &impl ConnectionTrait,
    token_id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    if services.config.refresh_grace.is_zero() {
        return Ok(false);
    }
    let Some(token) = refresh_tokens::Entity::find_by_id(token_id)
        .one(txn)
        .await?
    else {
        return Ok(false);
    };
    let grace = chrono::Duration::from_std(services.config.refresh_grace)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(token.revoked_at.is_none() && token.used_at.is_some_and(|used| now - used <= grace))
}

async fn revoke_family(db: &impl ConnectionTrait, family_id: Uuid) -> ApiResult<()> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_tokens::Column::FamilyId.eq(family_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every refresh token of a user (password change, suspension).
pub async fn revoke_all_sessions(db: &impl ConnectionTrait, user_id: Uuid) -> ApiResult<()> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_tokens::Column::UserId.eq(user_id))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes the given refresh token. Idempotent: logging out twice succeeds.
#[tracing::instrument(name = "accounts::logout", level = "debug", skip_all)]
pub async fn logout(db: &impl ConnectionTrait, token: &str) -> ApiResult<bool> {
    refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_tokens::Column::TokenHash.eq(token_hash(token)))
        .filter(refresh_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(true)
}

#[tracing::instrument(name = "accounts::change_password", level = "debug", skip_all)]
pub async fn change_password(
    services: &Services,
    viewer: Viewer,
    current: String,
    new: String,
) -> ApiResult<bool> {
    let user_id = viewer.require()?;
    let user = find_by_id(&services.db, user_id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    validate::password("newPassword", &new, &user.handle, &user.email)?;
    if !services
        .passwords
        .verify(current, Some(user.password_hash.clone()))
        .await?
    {
        return Err(ApiError::bad_input(
            "currentPassword",
            "the current password is wrong",
        ));
    }
    let password_hash = services.passwords.hash(new).await?;
    let txn = begin_write(&services.db).await?;
    users::Entity::update_many()
        .col_expr(users::Column::PasswordHash, Expr::value(password_hash))
        .col_expr(users::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(users::Column::Id.eq(user_id))
        .exec(&txn)
        .await?;
    revoke_all_sessions(&txn, user_id).await?;
    txn.commit().await?;
    Ok(true)
}

#[tracing::instrument(name = "accounts::update_profile", level = "debug", skip_all)]
pub async fn update_profile(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    changes: ProfileChanges,
) -> ApiResult<users::Model> {
    let user_id = viewer.require()?;
    let user = find_by_id(db, user_id)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    let mut active: users::ActiveModel = user.into();
    if let Some(display_name) = changes.display_name {
        let value = display_name
            .ok_or_else(|| ApiError::bad_input("displayName", "displayName cannot be empty"))?;
        active.display_name = Set(validate::text("displayName", &value, 1, 80)?);
    }
    if let Some(headline) = changes.headline {
        active.headline = Set(validate::optional_text(
            "headline",
            headline.as_deref(),
            160,
        )?);
    }
    if let Some(bio) = changes.bio {
        active.bio = Set(validate::optional_multiline_text(
            "bio",
            bio.as_deref(),
            2000,
        )?);
    }
    if let Some(avatar_url) = changes.avatar_url {
        active.avatar_url = Set(validate::url("avatarUrl", avatar_url.as_deref())?);
    }
    if let Some(region) = changes.region {
        active.region = Set(validate::optional_text("region", region.as_deref(), 80)?);
    }
    if let Some(email_notices) = changes.email_notices {
        active.email_notices = Set(email_notices);
    }
    active.updated_at = Set(Utc::now());
    Ok(active.update(db).await?)
}

/// `updateNotificationPreferences`: the viewer's channels for the kinds
/// named, and their reminder lead time when given (`Some(None)`: no
/// reminders); their reminders of meets ahead move with it.
#[tracing::instrument(
    name = "accounts::update_notification_preferences",
    level = "debug",
    skip_all
)]
pub async fn update_notification_preferences(
    services: &Services,
    viewer: Viewer,
    choices: &[(NoticeKind, Channels)],
    reminder_minutes_before: Option<Option<i32>>,
) -> ApiResult<users::Model> {
    let user_id = viewer.require()?;
    let reminder = reminder_minutes_before
        .map(preferences::reminder_minutes)
        .transpose()?;
    let txn = begin_write(&services.db).await?;
    preferences::choose(&txn, user_id, choices).await?;
    if let Some(minutes) = reminder {
        users::Entity::update_many()
            .col_expr(users::Column::ReminderMinutesBefore, Expr::value(minutes))
            .filter(users::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        reminders::reschedule_user(&txn, user_id, Utc::now()).await?;
    }
    let user = find_by_id(&txn, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    txn.commit().await?;
    Ok(user)
}

/// `rotateCalendarFeed`: a new secret address for the viewer's feed; the
/// old one stops working.
#[tracing::instrument(name = "accounts::rotate_calendar_feed", level = "debug", skip_all)]
pub async fn rotate_calendar_feed(services: &Services, viewer: Viewer) -> ApiResult<users::Model> {
    let user_id = viewer.require()?;
    users::Entity::update_many()
        .col_expr(
            users::Column::CalendarFeedNonce,
            Expr::value(Some(random_token())),
        )
        .filter(users::Column::Id.eq(user_id))
        .exec(&services.db)
        .await?;
    find_by_id(&services.db, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}
