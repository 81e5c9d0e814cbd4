//! Stories: recaps and war stories, on their own or about a meet.

mod resolvers;
pub mod service;
pub mod types;

pub use resolvers::{StoriesMutation, StoriesQuery};
