//! The text of notices: plain text plus simple HTML (every interpolated value
//! escaped), with the meet's local time in its zone.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use entity::{meets, notification_preferences::NoticeKind, stories, users};

use super::{MeetChange, push::PushMessage};
use crate::config::Config;

pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A page of the web app, under the configured public URL.
pub fn web_link(config: &Config, path: &str) -> String {
    format!("{}/{path}", config.public_url.trim_end_matches('/'))
}

fn escape(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// "Tuesday 1 December 2026, 19:00 EST", in the meet's zone (or the default).
/// The zone a meet's times are shown in: its own, else the server's default.
pub fn meet_zone(config: &Config, meet: &meets::Model) -> Tz {
    meet.time_zone
        .as_deref()
        .unwrap_or(config.default_time_zone.as_str())
        .parse()
        .unwrap_or(chrono_tz::UTC)
}

pub fn local_time(config: &Config, meet: &meets::Model) -> String {
    let zone = meet_zone(config, meet);
    meet.starts_at
        .with_timezone(&zone)
        .format("%A %-d %B %Y, %H:%M %Z")
        .to_string()
}

fn venue(meet: &meets::Model) -> String {
    match &meet.address {
        Some(address) => format!("{}, {address}", meet.venue_name),
        None => meet.venue_name.clone(),
    }
}

/// A message from lines of text; the HTML is the same lines, escaped, with
/// an optional link.
fn compose(subject: String, lines: &[String], link: Option<&str>) -> Message {
    let mut text = lines.join("\n\n");
    let mut html = lines
        .iter()
        .map(|l| format!("<p>{}</p>", escape(l)))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(link) = link {
        text.push_str(&format!("\n\n{link}\n"));
        html.push_str(&format!("\n<p><a href=\"{0}\">{0}</a></p>", escape(link)));
    }
    Message {
        subject,
        text,
        html: format!("<!doctype html>\n<html><body>\n{html}\n</body></html>\n"),
    }
}

pub fn invitation(
    config: &Config,
    meet: &meets::Model,
    inviter: &users::Model,
    note: Option<&str>,
    link: &str,
    claim: bool,
) -> Message {
    let mut lines = vec![
        format!("{} invited you to {}.", inviter.display_name, meet.title),
        format!("When: {}", local_time(config, meet)),
        format!("Where: {}", venue(meet)),
    ];
    if let Some(note) = note {
        lines.push(format!("{} says: {note}", inviter.display_name));
    }
    lines.push(if claim {
        "Open this link to join Tweet Meet and accept or decline (it works once, for 30 days):"
            .to_owned()
    } else {
        "Answer in Tweet Meet:".to_owned()
    });
    compose(
        format!("{} invited you to {}", inviter.display_name, meet.title),
        &lines,
        Some(link),
    )
}

pub fn meet_changed(config: &Config, meet: &meets::Model, change: MeetChange) -> Message {
    let (subject, headline) = match change {
        MeetChange::Cancelled => (
            format!("Cancelled: {}", meet.title),
            format!("{} has been cancelled.", meet.title),
        ),
        MeetChange::Rescheduled => (
            format!("New time: {}", meet.title),
            format!("{} has a new time.", meet.title),
        ),
        MeetChange::Moved => (
            format!("New venue: {}", meet.title),
            format!("{} has a new venue.", meet.title),
        ),
    };
    let mut lines = vec![headline];
    if change == MeetChange::Cancelled {
        if let Some(reason) = &meet.cancellation_reason {
            lines.push(format!("Reason: {reason}"));
        }
    } else {
        lines.push(format!("When: {}", local_time(config, meet)));
        lines.push(format!("Where: {}", venue(meet)));
    }
    let link = web_link(config, &format!("meets/{}", meet.id));
    compose(subject, &lines, Some(&link))
}

/// A meet the recipient is going to starts soon.
pub fn reminder(config: &Config, meet: &meets::Model) -> Message {
    let lines = vec![
        format!("{} is coming up.", meet.title),
        format!("When: {}", local_time(config, meet)),
        format!("Where: {}", venue(meet)),
    ];
    let link = web_link(config, &format!("meets/{}", meet.id));
    compose(format!("Soon: {}", meet.title), &lines, Some(&link))
}

/// A go / no-go meet reached its minimum: it goes ahead.
pub fn meet_confirmed(config: &Config, meet: &meets::Model) -> Message {
    let lines = vec![
        format!("Enough people are going: {} is on.", meet.title),
        format!("When: {}", local_time(config, meet)),
        format!("Where: {}", venue(meet)),
    ];
    let link = web_link(config, &format!("meets/{}", meet.id));
    compose(format!("It's on: {}", meet.title), &lines, Some(&link))
}

pub fn promoted(config: &Config, meet: &meets::Model) -> Message {
    let lines = vec![
        format!("A spot opened up: you are now going to {}.", meet.title),
        format!("When: {}", local_time(config, meet)),
        format!("Where: {}", venue(meet)),
    ];
    let link = web_link(config, &format!("meets/{}", meet.id));
    compose(format!("You're in: {}", meet.title), &lines, Some(&link))
}

pub fn story_about_meet(
    config: &Config,
    meet: &meets::Model,
    story: &stories::Model,
    author: &users::Model,
) -> Message {
    let lines = vec![format!(
        "{} wrote about {}: {}",
        author.display_name, meet.title, story.title
    )];
    let link = web_link(config, &format!("stories/{}", story.id));
    compose(
        format!("{} wrote about {}", author.display_name, meet.title),
        &lines,
        Some(&link),
    )
}

/// At most `max` characters of `text`, with an ellipsis when cut.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// "Tuesday 1 December 2026, 19:00 EST at The Pub": when and where, short.
fn when_where(config: &Config, meet: &meets::Model) -> String {
    format!("{} at {}", local_time(config, meet), meet.venue_name)
}

/// A push: a short title and body, and what a client needs to open the
/// meet (or story, or invitation) it is about. Nothing of the guest list.
fn push(
    config: &Config,
    kind: NoticeKind,
    title: String,
    body: String,
    ids: &[(&str, String)],
    path: &str,
) -> PushMessage {
    let mut data: BTreeMap<String, String> = ids
        .iter()
        .map(|(name, id)| ((*name).to_owned(), id.clone()))
        .collect();
    data.insert("kind".to_owned(), kind_name(kind).to_owned());
    data.insert("url".to_owned(), web_link(config, path));
    PushMessage {
        title: short(&title, 100),
        body: short(&body, 240),
        data,
    }
}

/// The kind as the API spells it (`NoticeKind`).
fn kind_name(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::Invitation => "INVITATION",
        NoticeKind::WaitlistPromoted => "WAITLIST_PROMOTED",
        NoticeKind::MeetChanged => "MEET_CHANGED",
        NoticeKind::MeetConfirmed => "MEET_CONFIRMED",
        NoticeKind::MeetCancelled => "MEET_CANCELLED",
        NoticeKind::Reminder => "REMINDER",
        NoticeKind::StoryAboutMyMeet => "STORY_ABOUT_MY_MEET",
    }
}

fn meet_id(meet: &meets::Model) -> (&'static str, String) {
    ("meetId", meet.id.to_string())
}

pub fn push_invitation(
    config: &Config,
    meet: &meets::Model,
    inviter: &users::Model,
    invitation_id: uuid::Uuid,
) -> PushMessage {
    push(
        config,
        NoticeKind::Invitation,
        format!("{} invited you", inviter.display_name),
        format!("{}: {}", meet.title, when_where(config, meet)),
        &[meet_id(meet), ("invitationId", invitation_id.to_string())],
        &format!("meets/{}", meet.id),
    )
}

pub fn push_meet_changed(config: &Config, meet: &meets::Model, change: MeetChange) -> PushMessage {
    let (kind, title, body) = match change {
        MeetChange::Cancelled => (
            NoticeKind::MeetCancelled,
            format!("Cancelled: {}", meet.title),
            match &meet.cancellation_reason {
                Some(reason) => format!("{} is off. Reason: {reason}", local_time(config, meet)),
                None => format!("{} is off.", local_time(config, meet)),
            },
        ),
        MeetChange::Rescheduled => (
            NoticeKind::MeetChanged,
            format!("New time: {}", meet.title),
            when_where(config, meet),
        ),
        MeetChange::Moved => (
            NoticeKind::MeetChanged,
            format!("New venue: {}", meet.title),
            when_where(config, meet),
        ),
    };
    push(
        config,
        kind,
        title,
        body,
        &[meet_id(meet)],
        &format!("meets/{}", meet.id),
    )
}

pub fn push_reminder(config: &Config, meet: &meets::Model) -> PushMessage {
    push(
        config,
        NoticeKind::Reminder,
        format!("Soon: {}", meet.title),
        when_where(config, meet),
        &[meet_id(meet)],
        &format!("meets/{}", meet.id),
    )
}

pub fn push_meet_confirmed(config: &Config, meet: &meets::Model) -> PushMessage {
    push(
        config,
        NoticeKind::MeetConfirmed,
        format!("It's on: {}", meet.title),
        when_where(config, meet),
        &[meet_id(meet)],
        &format!("meets/{}", meet.id),
    )
}

pub fn push_promoted(config: &Config, meet: &meets::Model) -> PushMessage {
    push(
        config,
        NoticeKind::WaitlistPromoted,
        format!("You're in: {}", meet.title),
        format!("A spot opened up. {}", when_where(config, meet)),
        &[meet_id(meet)],
        &format!("meets/{}", meet.id),
    )
}

pub fn push_story_about_meet(
    config: &Config,
    meet: &meets::Model,
    story: &stories::Model,
    author: &users::Model,
) -> PushMessage {
    push(
        config,
        NoticeKind::StoryAboutMyMeet,
        format!("{} wrote about {}", author.display_name, meet.title),
        story.title.clone(),
        &[meet_id(meet), ("storyId", story.id.to_string())],
        &format!("stories/{}", story.id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        let message = compose(
            "s".into(),
            &["<script>alert(1)</script> & co".into()],
            Some("http://x/?a=1&b=2"),
        );
        assert!(
            message
                .html
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co")
        );
        assert!(message.html.contains("http://x/?a=1&amp;b=2"));
        assert!(message.text.contains("http://x/?a=1&b=2"));
    }

    #[test]
    fn long_text_is_cut_short() {
        assert_eq!(short("abc", 3), "abc");
        assert_eq!(short("abcdef", 4), "abc…");
    }
}
