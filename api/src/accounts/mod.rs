//! Accounts: registration, sessions (login, refresh rotation, logout),
//! passwords and profiles.

pub mod loaders;
mod resolvers;
pub mod service;
pub mod types;

pub use resolvers::{AccountsMutation, AccountsQuery};
