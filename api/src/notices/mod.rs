//! Notices that are never lost: each is written to an outbox table (e-mail:
//! `notices`; push: `push_notices`, one per device) in the same transaction
//! as the change that causes it, and background workers deliver them with
//! retries (see `worker`, `push::worker`). This file decides who gets what,
//! on the channels each recipient chose (`preferences`);
//! a notice about a meet goes only to members who may see it
//! (`meets::visibility::who_may_see`): a meet made invite-only must not reach
//! those it no longer exists for.

mod messages;
pub mod preferences;
pub mod push;
pub use messages::{meet_zone, web_link};
pub mod transport;
pub mod worker;

use chrono::Utc;
use entity::{
    attendances::{self, RsvpStatus},
    invitation_mails, invitations, meets, notices,
    notification_preferences::NoticeKind,
    stories, users,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::OnConflict,
};
use uuid::Uuid;

use crate::{accounts::members::find_by_id, config::Config, error::ApiResult, meets::visibility};

pub use messages::Message;

/// Writes one notice to the outbox, inside the caller's transaction.
pub async fn enqueue(
    db: &impl ConnectionTrait,
    kind: &str,
    recipient: &str,
    message: Message,
) -> ApiResult<()> {
    let now = Utc::now();
    notices::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind.to_owned()),
        recipient: Set(recipient.to_owned()),
        subject: Set(message.subject),
        body_text: Set(message.text),
        body_html: Set(message.html),
        attempts: Set(0),
        next_attempt_at: Set(now),
        sent_at: Set(None),
        last_error: Set(None),
        dead_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// Whether `user` may see the meet a notice is about.
async fn may_see(
    db: &impl ConnectionTrait,
    meet: &meets::Model,
    user: &users::Model,
) -> ApiResult<bool> {
    Ok(
        !visibility::who_may_see(db, meet, std::slice::from_ref(user))
            .await?
            .is_empty(),
    )
}

/// Whether `email` may be mailed an invitation to `meet_id` now: not if it
/// was within `TWEETMEET_INVITE_MAIL_INTERVAL_HOURS`, however often it is
/// invited (by several inviters, by handle and by address, or invited,
/// revoked and invited again). When it may, the mail is recorded as sent:
/// the caller sends it in the same transaction. One statement, which also
/// settles concurrent invitations: only one of them records the mail.
pub async fn invitation_mail_due(
    db: &impl ConnectionTrait,
    config: &Config,
    meet_id: Uuid,
    email: &str,
) -> ApiResult<bool> {
    let now = Utc::now();
    let last_due = now - config.invite_mail_interval;
    let recorded = invitation_mails::Entity::insert(invitation_mails::ActiveModel {
        meet_id: Set(meet_id),
        email: Set(email.to_owned()),
        sent_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            invitation_mails::Column::MeetId,
            invitation_mails::Column::Email,
        ])
        .update_column(invitation_mails::Column::SentAt)
        .action_and_where(invitation_mails::Column::SentAt.lte(last_due))
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(recorded == 1)
}

/// An invitation by e-mail to an address with no account: the claim link.
/// The caller asked `invitation_mail_due` first, and made the link only to
/// send it. It goes to an address, not to a member, so there is no one to ask
/// `who_may_see` about: the invitation is what lets its holder see the meet.
pub async fn invitation_by_email(
    db: &impl ConnectionTrait,
    config: &Config,
    invitation: &invitations::Model,
    meet: &meets::Model,
    claim_token: &str,
) -> ApiResult<()> {
    let Some(email) = &invitation.email else {
        return Ok(());
    };
    let Some(inviter) = find_by_id(db, invitation.inviter_id).await? else {
        return Ok(());
    };
    let link = web_link(config, &format!("invitations/claim?token={claim_token}"));
    let message = messages::invitation(
        config,
        meet,
        &inviter,
        invitation.message.as_deref(),
        &link,
        true,
    );
    enqueue(db, "invitation_email", email, message).await
}

/// An invitation to a member, by e-mail (if they want it, and their address
/// was not mailed one to this meet within the interval) and by push (if they
/// want it; within the same interval).
pub async fn invitation_to_member(
    db: &impl ConnectionTrait,
    config: &Config,
    invitation: &invitations::Model,
    meet: &meets::Model,
) -> ApiResult<()> {
    let Some(invitee_id) = invitation.invitee_id else {
        return Ok(());
    };
    let Some(invitee) = find_by_id(db, invitee_id).await? else {
        return Ok(());
    };
    let channels = channels_of(db, invitee.id, NoticeKind::Invitation).await?;
    let by_email = invitee.email_notices && channels.email;
    if !(by_email || channels.push)
        || !may_see(db, meet, &invitee).await?
        || !invitation_mail_due(db, config, meet.id, &invitee.email).await?
    {
        return Ok(());
    }
    let Some(inviter) = find_by_id(db, invitation.inviter_id).await? else {
        return Ok(());
    };
    if channels.push {
        let message = messages::push_invitation(config, meet, &inviter, invitation.id);
        push::enqueue(db, config, "invitation_member", &[invitee.id], &message).await?;
    }
    if !by_email {
        return Ok(());
    }
    let link = web_link(config, &format!("meets/{}", meet.id));
    let message = messages::invitation(
        config,
        meet,
        &inviter,
        invitation.message.as_deref(),
        &link,
        false,
    );
    enqueue(db, "invitation_member", &invitee.email, message).await
}

/// One user's channels for `kind`.
async fn channels_of(
    db: &impl ConnectionTrait,
    user: Uuid,
    kind: NoticeKind,
) -> ApiResult<preferences::Channels> {
    Ok(preferences::of_users(db, &[user], kind)
        .await?
        .get(&user)
        .copied()
        .unwrap_or(preferences::defaults(kind)))
}

/// Of `recipients`, those who hear of `kind` by e-mail, and the ids of
/// those who hear of it by push (one statement).
async fn by_channel<'u>(
    db: &impl ConnectionTrait,
    recipients: Vec<&'u users::Model>,
    kind: NoticeKind,
) -> ApiResult<(Vec<&'u users::Model>, Vec<Uuid>)> {
    let ids: Vec<Uuid> = recipients.iter().map(|u| u.id).collect();
    let channels = preferences::of_users(db, &ids, kind).await?;
    let by_push = ids
        .iter()
        .copied()
        .filter(|id| channels.get(id).is_some_and(|c| c.push))
        .collect();
    let by_email = recipients
        .into_iter()
        .filter(|u| channels.get(&u.id).is_some_and(|c| c.email))
        .collect();
    Ok((by_email, by_push))
}

/// A reminder of a meet the user is going to, on the channels they chose.
/// Whether any notice was written.
pub async fn reminder(
    db: &impl ConnectionTrait,
    config: &Config,
    meet: &meets::Model,
    attendee: &users::Model,
) -> ApiResult<bool> {
    let channels = channels_of(db, attendee.id, NoticeKind::Reminder).await?;
    if !(channels.email || channels.push) || !may_see(db, meet, attendee).await? {
        return Ok(false);
    }
    let mut queued = false;
    if channels.push {
        let message = messages::push_reminder(config, meet);
        queued |= push::enqueue(db, config, "reminder", &[attendee.id], &message).await? > 0;
    }
    if channels.email {
        enqueue(
            db,
            "reminder",
            &attendee.email,
            messages::reminder(config, meet),
        )
        .await?;
        queued = true;
    }
    Ok(queued)
}

/// What changed about a meet, for the people it affects.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum MeetChange {
    Cancelled,
    Rescheduled,
    Moved,
}

/// Tells GOING and WAITLISTED attendees (not the one who made the change)
/// that the meet was cancelled, or its time or venue changed.
pub async fn meet_changed(
    db: &impl ConnectionTrait,
    config: &Config,
    meet: &meets::Model,
    change: MeetChange,
    changed_by: Uuid,
) -> ApiResult<()> {
    let recipients = attendances::Entity::find()
        .find_also_related(users::Entity)
        .filter(attendances::Column::MeetId.eq(meet.id))
        .filter(attendances::Column::Status.is_in([RsvpStatus::Going, RsvpStatus::Waitlisted]))
        .filter(attendances::Column::UserId.ne(changed_by))
        .all(db)
        .await?;
    let recipients: Vec<users::Model> = recipients.into_iter().filter_map(|(_, u)| u).collect();
    let kind = match change {
        MeetChange::Cancelled => NoticeKind::MeetCancelled,
        MeetChange::Rescheduled | MeetChange::Moved => NoticeKind::MeetChanged,
    };
    let (by_email, by_push) = by_channel(
        db,
        visibility::who_may_see(db, meet, &recipients).await?,
        kind,
    )
    .await?;
    for recipient in by_email {
        let message = messages::meet_changed(config, meet, change);
        enqueue(db, "meet_changed", &recipient.email, message).await?;
    }
    let message = messages::push_meet_changed(config, meet, change);
    push::enqueue(db, config, "meet_changed", &by_push, &message).await?;
    Ok(())
}

/// A go / no-go meet was decided: when it goes ahead, everyone going hears;
/// when it is called off at its deadline, everyone who answered (GOING,
/// WAITLISTED or MAYBE). Only those who may see the meet.
pub async fn meet_decided(
    db: &impl ConnectionTrait,
    config: &Config,
    meet: &meets::Model,
    confirmed: bool,
) -> ApiResult<()> {
    let answers: &[RsvpStatus] = if confirmed {
        &[RsvpStatus::Going]
    } else {
        &[RsvpStatus::Going, RsvpStatus::Waitlisted, RsvpStatus::Maybe]
    };
    let recipients: Vec<users::Model> = attendances::Entity::find()
        .find_also_related(users::Entity)
        .filter(attendances::Column::MeetId.eq(meet.id))
        .filter(attendances::Column::Status.is_in(answers.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|(_, user)| user)
        .collect();
    let kind = if confirmed {
        NoticeKind::MeetConfirmed
    } else {
        NoticeKind::MeetCancelled
    };
    let (by_email, by_push) = by_channel(
        db,
        visibility::who_may_see(db, meet, &recipients).await?,
        kind,
    )
    .await?;
    let (push_kind, message) = if confirmed {
        (
            "meet_confirmed",
            messages::push_meet_confirmed(config, meet),
        )
    } else {
        (
            "meet_changed",
            messages::push_meet_changed(config, meet, MeetChange::Cancelled),
        )
    };
    push::enqueue(db, config, push_kind, &by_push, &message).await?;
    for recipient in by_email {
        let (kind, message) = if confirmed {
            ("meet_confirmed", messages::meet_confirmed(config, meet))
        } else {
            (
                "meet_changed",
                messages::meet_changed(config, meet, MeetChange::Cancelled),
            )
        };
        enqueue(db, kind, &recipient.email, message).await?;
    }
    Ok(())
}

/// A waitlisted attendee got a seat.
pub async fn promoted(
    db: &impl ConnectionTrait,
    config: &Config,
    meet: &meets::Model,
    user_id: Uuid,
) -> ApiResult<()> {
    let Some(attendee) = find_by_id(db, user_id).await? else {
        return Ok(());
    };
    let channels = channels_of(db, attendee.id, NoticeKind::WaitlistPromoted).await?;
    if !(channels.email || channels.push) || !may_see(db, meet, &attendee).await? {
        return Ok(());
    }
    if channels.push {
        let message = messages::push_promoted(config, meet);
        push::enqueue(db, config, "promoted", &[attendee.id], &message).await?;
    }
    if !channels.email {
        return Ok(());
    }
    enqueue(
        db,
        "promoted",
        &attendee.email,
        messages::promoted(config, meet),
    )
    .await
}

/// Someone wrote about a meet: its host hears of it (unless they wrote it).
pub async fn story_about_meet(
    db: &impl ConnectionTrait,
    config: &Config,
    story: &stories::Model,
    meet_id: Uuid,
) -> ApiResult<()> {
    let Some(meet) = meets::Entity::find_by_id(meet_id).one(db).await? else {
        return Ok(());
    };
    if meet.host_id == story.author_id {
        return Ok(());
    }
    let (Some(host), Some(author)) = (
        find_by_id(db, meet.host_id).await?,
        find_by_id(db, story.author_id).await?,
    ) else {
        return Ok(());
    };
    let channels = channels_of(db, host.id, NoticeKind::StoryAboutMyMeet).await?;
    if !(channels.email || channels.push) || !may_see(db, &meet, &host).await? {
        return Ok(());
    }
    if channels.push {
        let message = messages::push_story_about_meet(config, &meet, story, &author);
        push::enqueue(db, config, "story_about_meet", &[host.id], &message).await?;
    }
    if !channels.email {
        return Ok(());
    }
    enqueue(
        db,
        "story_about_meet",
        &host.email,
        messages::story_about_meet(config, &meet, story, &author),
    )
    .await
}
