//! GraphQL types of live events.

use async_graphql::{Enum, SimpleObject};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    error::ApiError,
    events::ActivityKind,
    meets::types::{Attendance, Meet},
    stories::types::Story,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "ActivityKind")]
pub enum MeetActivityKind {
    RsvpChanged,
    /// An attendee is HERE (checked in).
    CheckedIn,
    /// An attendee is on their way (or a new ETA), left, or took back an
    /// on-my-way.
    ArrivalChanged,
    MeetUpdated,
    /// A TENTATIVE meet reached its minimum: it goes ahead (SCHEDULED).
    MeetConfirmed,
    MeetCancelled,
    StoryPublished,
}

/// A change to a meet, with the meet's counts as of that change.
#[derive(SimpleObject)]
pub struct MeetActivity {
    /// Where this event stands in the meet's activity: pass it as
    /// `meetActivity(after:)` to resume after it.
    pub cursor: String,
    pub kind: MeetActivityKind,
    pub at: DateTime<Utc>,
    pub meet: Meet,
    /// The answer or arrival, for RSVP_CHANGED, CHECKED_IN and
    /// ARRIVAL_CHANGED; `null` for a subscriber the guest list's privacy
    /// keeps from seeing other people's (`Meet.viewerCanSeeAttendees`).
    pub attendance: Option<Attendance>,
    /// The story, for STORY_PUBLISHED.
    pub story: Option<Story>,
}

/// The cursor of a meet's event number `seq`: it names the meet, so a cursor
/// of one meet's activity cannot be used to resume another's.
pub fn activity_cursor(meet_id: Uuid, seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("activity|{meet_id}|{seq}"))
}

/// The event number an `after` cursor of `meet_id`'s activity names.
pub fn activity_after(raw: &str, meet_id: Uuid) -> Result<i64, ApiError> {
    let refused = || ApiError::bad_input("after", "not a cursor of this meet's activity");
    let text = URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(refused)?;
    let mut parts = text.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("activity"), Some(meet), Some(seq))
            if Uuid::parse_str(meet).ok() == Some(meet_id) =>
        {
            seq.parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 0)
                .ok_or_else(refused)
        }
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_names_its_meet_and_number() {
        let (meet, other) = (Uuid::now_v7(), Uuid::now_v7());
        let cursor = activity_cursor(meet, 42);
        assert_eq!(activity_after(&cursor, meet).ok(), Some(42));
        assert!(
            activity_after(&cursor, other).is_err(),
            "another meet's cursor"
        );
        for forged in [
            "",
            "!!",
            &URL_SAFE_NO_PAD.encode(format!("activity|{meet}|-1")),
            &URL_SAFE_NO_PAD.encode(format!("activity|{meet}|x")),
            &URL_SAFE_NO_PAD.encode(format!("other|{meet}|1")),
        ] {
            assert!(activity_after(forged, meet).is_err(), "{forged}");
        }
    }
}
