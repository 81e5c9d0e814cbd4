//! Live: subscriptions for the web frontend.

mod hub;
mod resolvers;
pub mod types;

pub use hub::{Hub, Snapshot};
pub use resolvers::LiveSubscription;
