//! Calendars: a meet as an iCalendar file for anyone who may see it, and
//! each member's own feed of the meets they host or answered. Neither
//! address can be guessed: a signed-in viewer's meet address carries a keyed
//! hash of the meet and the viewer (checked again, with the meet's
//! visibility, whenever it is fetched), and a feed's carries a keyed hash of
//! the member and a nonce that `rotateCalendarFeed` replaces, so the old
//! address stops working. Nothing secret is stored.

use chrono::{DateTime, Duration, Utc};
use entity::{
    attendances::{self, RsvpStatus},
    meets::{self, MeetStatus},
    users,
};
use icalendar::{Calendar, CalendarDateTime, Component, Event, EventLike, EventStatus};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    RelationTrait,
};
use uuid::Uuid;

use super::{rules, visibility};
use crate::{
    auth::{Viewer, tokens::TokenKeys},
    config::Config,
    error::ApiResult,
    notices::{meet_zone, web_link},
};

const MEET_PURPOSE: &str = "meet-calendar";
const FEED_PURPOSE: &str = "calendar-feed";
/// A feed holds meets from this long ago on, and at most this many.
const FEED_PAST: Duration = Duration::days(30);
const FEED_MAX: u64 = 500;

/// The address of a meet's calendar file for `viewer`.
pub fn meet_url(config: &Config, keys: &TokenKeys, meet_id: Uuid, viewer: Viewer) -> String {
    let path = format!("calendar/meets/{meet_id}.ics");
    match viewer.user_id() {
        None => web_link(config, &path),
        Some(user) => {
            let key = keys.derive(MEET_PURPOSE, &format!("{meet_id}|{user}"));
            web_link(config, &format!("{path}?viewer={user}&key={key}"))
        }
    }
}

/// The address of `user`'s own feed.
pub fn feed_url(config: &Config, keys: &TokenKeys, user: &users::Model) -> String {
    let token = keys.derive(FEED_PURPOSE, &feed_data(user));
    web_link(config, &format!("calendar/feed/{}/{token}.ics", user.id))
}

fn feed_data(user: &users::Model) -> String {
    format!(
        "{}|{}",
        user.id,
        user.calendar_feed_nonce.as_deref().unwrap_or("")
    )
}

/// A meet's calendar file, if the viewer the address names (checked against
/// its key; anonymous without one) may see it.
pub async fn meet_file(
    db: &impl ConnectionTrait,
    config: &Config,
    keys: &TokenKeys,
    meet_id: Uuid,
    signed: Option<(Uuid, &str)>,
) -> ApiResult<Option<String>> {
    let viewer = match signed {
        None => Viewer::Anonymous,
        Some((user, key)) if keys.verify(MEET_PURPOSE, &format!("{meet_id}|{user}"), key) => {
            match users::Entity::find_by_id(user).one(db).await? {
                Some(user) if user.suspended_at.is_none() => Viewer::User {
                    id: user.id,
                    role: user.role,
                },
                _ => return Ok(None),
            }
        }
        Some(_) => return Ok(None),
    };
    let Some(meet) = visibility::find_visible(db, viewer, meet_id).await? else {
        return Ok(None);
    };
    Ok(Some(calendar(config, &meet.title.clone(), &[meet])))
}

/// A member's feed, if the address's token is their current one: the meets
/// they host or answered (GOING, MAYBE or WAITLISTED) that they may still
/// see, from a month back on.
pub async fn feed_file(
    db: &impl ConnectionTrait,
    config: &Config,
    keys: &TokenKeys,
    user_id: Uuid,
    token: &str,
) -> ApiResult<Option<String>> {
    let Some(user) = users::Entity::find_by_id(user_id).one(db).await? else {
        return Ok(None);
    };
    if user.suspended_at.is_some() || !keys.verify(FEED_PURPOSE, &feed_data(&user), token) {
        return Ok(None);
    }
    let viewer = Viewer::User {
        id: user.id,
        role: user.role,
    };
    let meets: Vec<meets::Model> = meets::Entity::find()
        .join(JoinType::InnerJoin, attendances::Relation::Meet.def().rev())
        .filter(attendances::Column::UserId.eq(user.id))
        .filter(attendances::Column::Status.is_in([
            RsvpStatus::Going,
            RsvpStatus::Maybe,
            RsvpStatus::Waitlisted,
        ]))
        .filter(meets::Column::StartsAt.gte(Utc::now() - FEED_PAST))
        .filter(visibility::condition(viewer))
        .order_by_asc(meets::Column::StartsAt)
        .limit(FEED_MAX)
        .all(db)
        .await?;
    Ok(Some(calendar(
        config,
        &format!("Tweet Meet: {}", user.display_name),
        &meets,
    )))
}

fn calendar(config: &Config, name: &str, meets: &[meets::Model]) -> String {
    let mut calendar = Calendar::new();
    calendar.name(name);
    for meet in meets {
        calendar.push(event(config, meet));
    }
    calendar.done().to_string()
}

/// A meet as an event: stable `UID`, `SEQUENCE` rising with every change
/// (the seconds from creation to the last change), its status, and its
/// times in its own zone.
fn event(config: &Config, meet: &meets::Model) -> Event {
    let zone = meet_zone(config, meet);
    let local = |at: DateTime<Utc>| CalendarDateTime::WithTimezone {
        date_time: at.with_timezone(&zone).naive_local(),
        tzid: zone.name().to_owned(),
    };
    let status = match meet.status {
        MeetStatus::Cancelled => EventStatus::Cancelled,
        MeetStatus::Scheduled if rules::is_tentative(meet) => EventStatus::Tentative,
        MeetStatus::Scheduled => EventStatus::Confirmed,
    };
    let location = match &meet.address {
        Some(address) => format!("{}, {address}", meet.venue_name),
        None => meet.venue_name.clone(),
    };
    let sequence = (meet.updated_at - meet.created_at).num_seconds().max(0);
    let mut event = Event::new();
    event
        .uid(&format!("{}@tweetmeet", meet.id))
        .summary(&meet.title)
        .location(&location)
        .starts(local(meet.starts_at))
        .ends(local(meet.effective_end_at))
        .status(status)
        .sequence(u32::try_from(sequence).unwrap_or(u32::MAX))
        .timestamp(meet.updated_at)
        .url(&web_link(config, &format!("meets/{}", meet.id)));
    if let Some(description) = &meet.description {
        event.description(description);
    }
    event.done()
}
