//! What the server shares across requests: the database pool, the
//! configuration, the auth machinery and the event streams.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    auth::{password::PasswordHasherPool, tokens::TokenKeys},
    config::Config,
    events::EventBus,
    live::Hub,
    notices::push::Pushers,
    throttle::Throttle,
};

#[derive(Clone)]
pub struct Services {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    // Behind an Arc: `Services` is cloned per request and per socket, and
    // the keys hold their own copies of the secret.
    pub keys: Arc<TokenKeys>,
    pub passwords: PasswordHasherPool,
    /// Changes, published after commit.
    pub events: EventBus,
    /// The same changes, loaded once per process for subscribers.
    pub live: Hub,
    pub throttle: Arc<Throttle>,
    /// The push services configured (`pushSetup`, the push worker).
    pub push: Arc<Pushers>,
}
