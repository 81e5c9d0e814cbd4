//! Accounts: registration, sessions (login, refresh rotation, logout),
//! passwords and profiles (`service`), and the read-only member look-ups and
//! privacy rule the other domains use (`members`).

pub mod loaders;
pub mod members;
mod resolvers;
pub mod service;
pub mod types;

pub use resolvers::{AccountsMutation, AccountsQuery};
