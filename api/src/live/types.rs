//! GraphQL types of live events.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};

use crate::{
    events::ActivityKind,
    meets::types::{Attendance, Meet},
    stories::types::Story,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "ActivityKind")]
pub enum MeetActivityKind {
    RsvpChanged,
    CheckedIn,
    MeetUpdated,
    MeetCancelled,
    StoryPublished,
}

/// A change to a meet, with the meet's counts as of that change.
#[derive(SimpleObject)]
pub struct MeetActivity {
    pub kind: MeetActivityKind,
    pub at: DateTime<Utc>,
    pub meet: Meet,
    /// The answer or arrival, for RSVP_CHANGED and CHECKED_IN.
    pub attendance: Option<Attendance>,
    /// The story, for STORY_PUBLISHED.
    pub story: Option<Story>,
}
