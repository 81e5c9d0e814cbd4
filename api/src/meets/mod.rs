//! Meets: hosting (`lifecycle`), answers with a waitlist and check-ins
//! (`attendance`), the lists (`discovery`, with full-text `search`), and who
//! may see, answer and edit a meet (`visibility`).

pub mod attendance;
pub mod calendar;
pub mod discovery;
pub mod lifecycle;
pub mod loaders;
pub mod reminders;
mod resolvers;
pub mod rules;
mod search;
pub mod types;
pub mod visibility;

pub use resolvers::{MeetsMutation, MeetsQuery};
