//! Live: subscriptions for the web frontend.

mod hub;
mod resolvers;
pub mod types;

pub use hub::{AccessChange, Hub, Snapshot};
pub use resolvers::LiveSubscription;
