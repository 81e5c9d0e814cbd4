//! Each person's choice of how to hear of each kind of notice, with the
//! contract's defaults: everything by e-mail and push except stories about
//! one's meet, by push only. Notices go out (by e-mail, to each registered
//! device by push) only where the recipient's choice says so.

use std::collections::HashMap;

use entity::notification_preferences::{self, NoticeKind};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// Minutes before a meet a new member is reminded of it.
pub const DEFAULT_REMINDER_MINUTES: i32 = 120;

/// Every kind, in the order people see them listed.
pub const KINDS: [NoticeKind; 7] = [
    NoticeKind::Invitation,
    NoticeKind::WaitlistPromoted,
    NoticeKind::MeetChanged,
    NoticeKind::MeetConfirmed,
    NoticeKind::MeetCancelled,
    NoticeKind::Reminder,
    NoticeKind::StoryAboutMyMeet,
];

/// The channels a notice goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channels {
    pub email: bool,
    pub push: bool,
}

/// Without a choice of their own.
pub fn defaults(kind: NoticeKind) -> Channels {
    Channels {
        email: kind != NoticeKind::StoryAboutMyMeet,
        push: true,
    }
}

/// Each of `users`' channels for `kind` (defaults where they chose none):
/// one statement.
pub async fn of_users(
    db: &impl ConnectionTrait,
    users: &[Uuid],
    kind: NoticeKind,
) -> Result<HashMap<Uuid, Channels>, DbErr> {
    let mut channels: HashMap<Uuid, Channels> =
        users.iter().map(|&user| (user, defaults(kind))).collect();
    if users.is_empty() {
        return Ok(channels);
    }
    let chosen = notification_preferences::Entity::find()
        .filter(notification_preferences::Column::UserId.is_in(users.iter().copied()))
        .filter(notification_preferences::Column::Kind.eq(kind))
        .all(db)
        .await?;
    for choice in chosen {
        channels.insert(
            choice.user_id,
            Channels {
                email: choice.email,
                push: choice.push,
            },
        );
    }
    Ok(channels)
}

/// A user's channels for every kind, in `KINDS` order.
pub async fn all_of(
    db: &impl ConnectionTrait,
    user: Uuid,
) -> Result<Vec<(NoticeKind, Channels)>, DbErr> {
    let chosen: HashMap<NoticeKind, Channels> = notification_preferences::Entity::find()
        .filter(notification_preferences::Column::UserId.eq(user))
        .all(db)
        .await?
        .into_iter()
        .map(|choice| {
            (
                choice.kind,
                Channels {
                    email: choice.email,
                    push: choice.push,
                },
            )
        })
        .collect();
    Ok(KINDS
        .into_iter()
        .map(|kind| (kind, chosen.get(&kind).copied().unwrap_or(defaults(kind))))
        .collect())
}

/// Records `user`'s choices (kinds not named keep theirs).
pub async fn choose(
    db: &impl ConnectionTrait,
    user: Uuid,
    choices: &[(NoticeKind, Channels)],
) -> ApiResult<()> {
    for (n, (kind, _)) in choices.iter().enumerate() {
        if choices[..n].iter().any(|(earlier, _)| earlier == kind) {
            return Err(ApiError::bad_input("preferences", "each kind at most once"));
        }
    }
    for &(kind, channels) in choices {
        notification_preferences::Entity::insert(notification_preferences::ActiveModel {
            user_id: Set(user),
            kind: Set(kind),
            email: Set(channels.email),
            push: Set(channels.push),
        })
        .on_conflict(
            OnConflict::columns([
                notification_preferences::Column::UserId,
                notification_preferences::Column::Kind,
            ])
            .update_columns([
                notification_preferences::Column::Email,
                notification_preferences::Column::Push,
            ])
            .to_owned(),
        )
        .exec(db)
        .await?;
    }
    Ok(())
}

/// A reminder lead time: 15 to 1,440 minutes, or none.
pub fn reminder_minutes(minutes: Option<i32>) -> ApiResult<Option<i32>> {
    match minutes {
        Some(m) if !(15..=1440).contains(&m) => Err(ApiError::bad_input(
            "reminderMinutesBefore",
            "reminderMinutesBefore must be 15 to 1440, or null for no reminders",
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stories_about_my_meet_default_to_push_only() {
        assert_eq!(
            defaults(NoticeKind::StoryAboutMyMeet),
            Channels {
                email: false,
                push: true
            }
        );
        for kind in KINDS
            .into_iter()
            .filter(|k| *k != NoticeKind::StoryAboutMyMeet)
        {
            assert_eq!(
                defaults(kind),
                Channels {
                    email: true,
                    push: true
                }
            );
        }
    }
}
