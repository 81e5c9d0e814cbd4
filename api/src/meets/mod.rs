//! Meets: hosting, discovery, answers with a waitlist, check-ins.

pub mod loaders;
mod resolvers;
pub mod rules;
pub mod service;
pub mod types;
pub mod visibility;

pub use resolvers::{MeetsMutation, MeetsQuery};
