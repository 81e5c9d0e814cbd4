//! Administration: users, roles, suspensions, and the audit log of it all.

mod resolvers;
pub mod service;
pub mod types;

pub use resolvers::{AdminMutation, AdminQuery};
