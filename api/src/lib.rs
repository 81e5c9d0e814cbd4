//! Tweet Meet's GraphQL server as a library: the binary and the tests both
//! start it through [`App`].
//!
//! A request travels one way: `http` → `graphql` → a domain's resolvers →
//! its services (plain async functions over a connection and a [`auth::Viewer`],
//! owning transactions and rules) → `entity`. Calls between domain services
//! go one way too: `accounts::service` → `invitations` → `meets` → `notices`
//! → `accounts::members`; `admin` → `accounts`; `stories` → `meets`. The
//! notices also ask `meets::visibility`, which calls no service, whom a
//! notice may reach.
//!
//! Rules and their homes:
//! - who may see, answer and edit a meet: `meets::visibility`;
//! - capacity, the waitlist, check-in: `meets::attendance` (and the limits
//!   in `meets::rules`);
//! - a member's private fields: `accounts::members::may_see_private_fields`;
//! - who may invite, and see an invitation's address and invitee:
//!   `invitations::rules`;
//! - stories: `stories::service`; admin-only fields and actions:
//!   `admin::service`; tokens and the viewer: `auth`; shared input limits:
//!   `validate`; every list's order and cursor: `keyset`.
//!
//! Deliberate exceptions: the live hub (`live::hub`) and the notices
//! (`notices`) read other domains' tables directly, to load once per event or
//! notice and apply visibility per subscriber or recipient.

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod background;
pub mod cli;
pub mod config;
pub mod db;
pub mod devices;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod invitations;
pub mod jobs;
pub mod keyset;
pub mod live;
pub mod meets;
pub mod metrics;
pub mod notices;
pub mod operate;
pub mod outage;
pub mod seed;
pub mod state;
pub mod stories;
pub mod telemetry;
pub mod throttle;
pub mod validate;

use std::{future::Future, path::PathBuf, sync::Arc};

use anyhow::Context;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    auth::{password::PasswordHasherPool, tokens::TokenKeys},
    config::Config,
    events::EventBus,
    http::AppState,
    live::Hub,
    notices::transport::Transport,
    state::Services,
};

/// A server ready to serve: connected and migrated.
pub struct App {
    pub state: AppState,
}

impl App {
    /// Connects to the configured database and applies pending migrations.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let db = db::connect(&config.database_url).await?;
        Self::with_database(config, db).await
    }

    /// Like [`App::new`] on a connection the caller made (tests attach a
    /// statement counter to it first).
    pub async fn with_database(config: Config, db: DatabaseConnection) -> anyhow::Result<Self> {
        db::migrate(&db).await?;
        metrics::handle();
        let secret = jwt_secret(&config)?;
        let events = EventBus::new(db.get_database_backend());
        events.start(&db).await?;
        let live = Hub::start(db.clone(), &events, config.live_buffer);
        events::log::spawn_pruner(db.clone(), config.event_retention);
        let transport =
            Transport::from_config(config.smtp_url.as_deref(), config.mail_dir.clone())?;
        tracing::info!("e-mail notices go to {}", transport.describe());
        tokio::spawn(notices::worker::run(
            db.clone(),
            transport,
            config.mail_from.clone(),
            notices::worker::Policy {
                max_attempts: config.notice_max_attempts,
                lease: config.notice_lease,
            },
            events.subscribe(),
        ));
        let vapid_key = vapid_key(&config)?;
        let push = Arc::new(notices::push::Pushers::from_config(
            &config,
            vapid_key.as_deref(),
        )?);
        tokio::spawn(notices::push::worker::run(
            db.clone(),
            push.clone(),
            notices::worker::Policy {
                max_attempts: config.notice_max_attempts,
                lease: config.notice_lease,
            },
            events.subscribe(),
        ));
        let throttle = Arc::new(throttle::Throttle::new(
            db.clone(),
            config.rate_limit_factor,
        ));
        tokio::spawn(prune_rate_limits(throttle.clone()));
        let services = Services {
            throttle,
            db,
            keys: Arc::new(TokenKeys::new(secret.as_bytes(), config.access_token_ttl)),
            passwords: PasswordHasherPool::new(config.argon2_concurrency),
            config: Arc::new(config),
            events,
            live,
            push,
        };
        tokio::spawn(jobs::run(services.clone(), meets::timed_work));
        let schemas = graphql::build(services.clone());
        Ok(Self {
            state: AppState { services, schemas },
        })
    }

    /// The server's database connection (its pool).
    pub fn database(&self) -> &DatabaseConnection {
        &self.state.services.db
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        match http::server::raise_open_file_limit() {
            Ok(limit) => tracing::info!(limit, "open file limit"),
            Err(err) => tracing::warn!(error = %err, "cannot raise the open file limit"),
        }
        let config = &self.state.services.config;
        let limits = http::server::ConnectionLimits {
            header_timeout: config.header_timeout,
            per_address: config.max_connections_per_address,
        };
        let router = http::router(self.state);
        http::server::serve(listener, router, limits, shutdown)
            .await
            .context("serving HTTP")
    }
}

/// Forgets stale rate-limit counts every ten minutes.
async fn prune_rate_limits(throttle: Arc<throttle::Throttle>) {
    let period = std::time::Duration::from_secs(600);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        every.tick().await;
        if let Err(err) = throttle.prune().await {
            tracing::warn!(error = %err, "pruning rate-limit counts");
        }
    }
}

/// The HMAC key of access tokens: configured, or in development generated
/// once and kept beside the database, so tokens survive restarts.
fn jwt_secret(config: &Config) -> anyhow::Result<String> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(secret.clone());
    }
    let path = dev_secret_path(&config.database_url);
    if let Ok(existing) = std::fs::read_to_string(&path)
        && existing.trim().len() >= 32
    {
        return Ok(existing.trim().to_owned());
    }
    let secret = auth::tokens::random_token();
    std::fs::write(&path, &secret)
        .with_context(|| format!("writing the development JWT secret to {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a development JWT secret");
    Ok(secret)
}

/// The Web Push (VAPID) private key: configured, or in development generated
/// once and kept beside the database (browsers' subscriptions are bound to
/// it); in production without one, no Web Push.
fn vapid_key(config: &Config) -> anyhow::Result<Option<String>> {
    if let Some(key) = &config.vapid_private_key {
        return Ok(Some(key.clone()));
    }
    if config.is_production() {
        return Ok(None);
    }
    let path = dev_file_path(&config.database_url, "vapid-key");
    if let Ok(existing) = std::fs::read_to_string(&path)
        && notices::push::web::parse_private_key(&existing).is_ok()
    {
        return Ok(Some(existing.trim().to_owned()));
    }
    let key = notices::push::web::generate_private_key()?;
    std::fs::write(&path, &key)
        .with_context(|| format!("writing the development VAPID key to {}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a development Web Push (VAPID) key");
    Ok(Some(key))
}

/// `<database file>.jwt-secret` for SQLite, `.jwt-secret` in the working
/// directory otherwise.
fn dev_secret_path(database_url: &str) -> PathBuf {
    dev_file_path(database_url, "jwt-secret")
}

/// `<database file>.<suffix>` for SQLite, `.<suffix>` in the working
/// directory otherwise.
fn dev_file_path(database_url: &str, suffix: &str) -> PathBuf {
    let file = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|path| !path.is_empty() && *path != ":memory:");
    match file {
        Some(path) => PathBuf::from(format!("{path}.{suffix}")),
        None => PathBuf::from(format!(".{suffix}")),
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::dev_secret_path;

    #[test]
    fn dev_secret_sits_beside_the_database() {
        assert_eq!(
            dev_secret_path("sqlite://tweetmeet.db?mode=rwc").to_str(),
            Some("tweetmeet.db.jwt-secret")
        );
        assert_eq!(
            dev_secret_path("sqlite:///tmp/x.db").to_str(),
            Some("/tmp/x.db.jwt-secret")
        );
        assert_eq!(
            dev_secret_path("postgres://localhost/db").to_str(),
            Some(".jwt-secret")
        );
    }
}
