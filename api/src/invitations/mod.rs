//! Invitations: by handle to members, by e-mail to people not on Tweet Meet yet.

pub mod links;
pub mod lists;
mod resolvers;
pub mod rules;
pub mod service;
pub mod types;

pub use resolvers::{InvitationsMutation, InvitationsQuery};
