//! The viewer: who is asking. Resolved once per HTTP request (the
//! `Authorization` header) or once per WebSocket connection (the
//! `connection_init` payload), then read from the GraphQL context.

use chrono::{DateTime, Utc};
use entity::users::{self, Role};
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect};
use uuid::Uuid;

use super::tokens::{AccessToken, TokenKeys};
use crate::error::{ApiError, ApiResult};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Viewer {
    Anonymous,
    User { id: Uuid, role: Role },
}

impl Viewer {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::Anonymous => None,
            Self::User { id, .. } => Some(*id),
        }
    }

    /// The signed-in user's id, or `UNAUTHENTICATED`.
    pub fn require(&self) -> ApiResult<Uuid> {
        self.user_id().ok_or_else(ApiError::unauthenticated)
    }

    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Self::User {
                role: Role::Admin,
                ..
            }
        )
    }

    pub fn require_admin(&self) -> ApiResult<Uuid> {
        let id = self.require()?;
        if self.is_admin() {
            Ok(id)
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// Whether the viewer is this user, or an administrator.
    pub fn is_self_or_admin(&self, user_id: Uuid) -> bool {
        self.user_id() == Some(user_id) || self.is_admin()
    }
}

/// The bearer token of an `Authorization` value, if it is one.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Resolves a bearer token to a viewer: the token must verify and its user
/// must exist and not be suspended. The role comes from the database, so a
/// role change or a suspension takes effect on tokens already issued.
#[tracing::instrument(name = "auth::resolve", level = "debug", skip_all)]
pub async fn resolve(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    authorization: Option<&str>,
) -> ApiResult<(Viewer, Option<AccessToken>)> {
    let Some(value) = authorization else {
        return Ok((Viewer::Anonymous, None));
    };
    let token =
        bearer(value).ok_or_else(|| ApiError::Unauthenticated("expected a Bearer token".into()))?;
    let access = keys.verify_access(token)?;
    match user_standing(db, access.user_id).await? {
        Standing::Active(viewer) => Ok((viewer, Some(access))),
        Standing::Suspended => Err(ApiError::Unauthenticated(
            "this account is suspended".into(),
        )),
        Standing::Gone => Err(ApiError::Unauthenticated(
            "invalid or expired access token".into(),
        )),
    }
}

enum Standing {
    Active(Viewer),
    Suspended,
    Gone,
}

/// What the database says of a user now: the one lookup behind every viewer
/// (every signed-in request), so it reads the two columns it needs, not the
/// row with its password hash and e-mail.
async fn user_standing(db: &impl ConnectionTrait, id: Uuid) -> ApiResult<Standing> {
    let standing: Option<(Role, Option<DateTime<Utc>>)> = users::Entity::find_by_id(id)
        .select_only()
        .column(users::Column::Role)
        .column(users::Column::SuspendedAt)
        .into_tuple()
        .one(db)
        .await?;
    Ok(match standing {
        None => Standing::Gone,
        Some((_, Some(_suspended))) => Standing::Suspended,
        Some((role, None)) => Standing::Active(Viewer::User { id, role }),
    })
}

/// Whether a viewer resolved earlier (a WebSocket's, at `connection_init`)
/// still holds: the user exists, is not suspended and has the same role.
pub async fn still_holds(db: &impl ConnectionTrait, viewer: Viewer) -> ApiResult<bool> {
    let Some(id) = viewer.user_id() else {
        return Ok(true);
    };
    Ok(matches!(user_standing(db, id).await?, Standing::Active(now) if now == viewer))
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn parses_bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("abc"), None);
    }
}
