//! The one error type. Services return `ApiResult`; resolvers return
//! `FieldResult`, whose error can only be built from an `ApiError`. That closes
//! async-graphql's blanket `From<impl Display>` conversion by construction: a
//! `?` on a `DbErr` in a resolver becomes `INTERNAL` with a generic message,
//! and the cause goes to the log (inside the request's span, with its id).

use async_graphql::ErrorExtensions;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    BadInput {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    /// Too much of something in too short a time; `retry_after_secs`: when
    /// trying again may succeed (`extensions.retryAfterSeconds`).
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    /// A live stream lost events (the subscriber or the server fell behind,
    /// or the database's event stream dropped): refetch, then subscribe again.
    #[error("this subscription missed events; refetch, then subscribe again")]
    EventsMissed,
    /// A persisted query's hash the server does not know (yet): Apollo's
    /// clients look for this message or code, then send hash and query.
    #[error("PersistedQueryNotFound")]
    PersistedQueryNotFound,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: Some(field.to_owned()),
            message: message.into(),
        }
    }

    pub fn unauthenticated() -> Self {
        Self::Unauthenticated("sign in to do this".into())
    }

    pub fn forbidden() -> Self {
        Self::Forbidden("you are not allowed to do this".into())
    }

    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// Too many attempts for now; `wait` until one would succeed (at least
    /// a second).
    pub fn rate_limited(wait: std::time::Duration) -> Self {
        let retry_after_secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        Self::RateLimited {
            message: format!("too many attempts; try again in {retry_after_secs} s"),
            retry_after_secs,
        }
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::Internal(cause.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Conflict(_) => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::EventsMissed => "EVENTS_MISSED",
            Self::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The GraphQL error a client sees; an internal cause is logged here and
    /// never leaves the server.
    pub fn to_graphql(&self) -> async_graphql::Error {
        if let Self::Internal(cause) = self {
            tracing::error!(error = ?cause, "internal error");
        }
        let field = match self {
            Self::BadInput { field, .. } => field.clone(),
            _ => None,
        };
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code());
            if let Some(field) = &field {
                ext.set("field", field.as_str());
            }
            if let Self::RateLimited {
                retry_after_secs, ..
            } = self
            {
                ext.set("retryAfterSeconds", *retry_after_secs);
            }
        })
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(err.into())
    }
}

/// A DataLoader's shared error.
impl From<std::sync::Arc<sea_orm::DbErr>> for ApiError {
    fn from(err: std::sync::Arc<sea_orm::DbErr>) -> Self {
        Self::Internal(anyhow::anyhow!("{err}"))
    }
}

/// A resolver's error: deliberately not `Display`, so only `ApiError` (and
/// what converts into it) can become one.
#[derive(Clone, Debug)]
pub struct FieldError(async_graphql::Error);

pub type FieldResult<T> = Result<T, FieldError>;

impl<E: Into<ApiError>> From<E> for FieldError {
    fn from(err: E) -> Self {
        Self(err.into().to_graphql())
    }
}

impl From<FieldError> for async_graphql::Error {
    fn from(err: FieldError) -> Self {
        err.0
    }
}
