//! GraphQL types of accounts.

use async_graphql::{
    Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject, connection::Connection,
};
use chrono::{DateTime, Utc};
use entity::users;

use super::{
    members,
    service::{ProfileChanges, Session},
};
use crate::{
    devices::types::Device,
    error::FieldResult,
    graphql::{
        ContextExt,
        pagination::{self, page_complexity},
    },
    meets::{
        calendar, discovery,
        loaders::AttendanceRecord,
        types::{Attendance, Meet},
    },
    notices::preferences::{self, Channels},
    stories::types::Story,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "users::Role")]
pub enum Role {
    Member,
    Admin,
}

/// A member of Tweet Meet. Made with `User::from(model)`.
pub struct User {
    model: users::Model,
    /// The member a register, login or refresh just signed in: see
    /// `members::may_see_private_fields`.
    session_owner: bool,
    /// Live events: the user's attendance record, loaded once per event.
    record: Option<AttendanceRecord>,
}

impl From<users::Model> for User {
    fn from(model: users::Model) -> Self {
        Self {
            model,
            session_owner: false,
            record: None,
        }
    }
}

impl User {
    pub fn with_record(mut self, record: AttendanceRecord) -> Self {
        self.record = Some(record);
        self
    }

    /// The user a register, login or refresh just signed in.
    fn session_owner(mut self) -> Self {
        self.session_owner = true;
        self
    }

    fn private_fields_visible(&self, ctx: &Context<'_>) -> bool {
        members::may_see_private_fields(ctx.viewer(), self.model.id, self.session_owner)
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    /// How many meets the user checked in to.
    async fn meets_attended(&self, ctx: &Context<'_>) -> FieldResult<i32> {
        let record = match self.record {
            Some(record) => Some(record),
            None => {
                ctx.loaders()
                    .attendance_records
                    .load_one(self.model.id)
                    .await?
            }
        };
        let count = record.map_or(0, |r| r.meets_attended);
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// Unique, lower-case.
    async fn handle(&self) -> &str {
        &self.model.handle
    }

    async fn display_name(&self) -> &str {
        &self.model.display_name
    }

    /// Visible to the user themself and to administrators; `null` to everyone else.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        self.private_fields_visible(ctx)
            .then_some(self.model.email.as_str())
    }

    /// How the user hears of each kind of notice; visible to the user
    /// themself and to administrators.
    async fn notification_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> FieldResult<Option<Vec<NotificationPreference>>> {
        if !self.private_fields_visible(ctx) {
            return Ok(None);
        }
        let all = preferences::all_of(ctx.db(), self.model.id).await?;
        Ok(Some(
            all.into_iter()
                .map(|(kind, channels)| NotificationPreference { kind, channels })
                .collect(),
        ))
    }

    /// Minutes before a meet they are going to that the user is reminded;
    /// `null`: no reminders. Visible to the user and administrators.
    async fn reminder_minutes_before(&self, ctx: &Context<'_>) -> Option<i32> {
        self.private_fields_visible(ctx)
            .then_some(self.model.reminder_minutes_before)
            .flatten()
    }

    /// The secret address of the user's own calendar feed (the meets they
    /// host or answered): for the user themself only.
    async fn calendar_feed_url(&self, ctx: &Context<'_>) -> Option<String> {
        (ctx.viewer().user_id() == Some(self.model.id)).then(|| {
            let services = ctx.services();
            calendar::feed_url(&services.config, &services.keys, &self.model)
        })
    }

    /// The phones and browsers the user's push notices go to: for the user
    /// themself only.
    async fn devices(&self, ctx: &Context<'_>) -> FieldResult<Option<Vec<Device>>> {
        if ctx.viewer().user_id() != Some(self.model.id) {
            return Ok(None);
        }
        let devices = crate::devices::service::of_user(ctx.db(), self.model.id).await?;
        Ok(Some(devices.into_iter().map(Device).collect()))
    }

    /// Whether the user gets an e-mail when invited; visible to the user
    /// themself and to administrators.
    async fn email_notices(&self, ctx: &Context<'_>) -> Option<bool> {
        self.private_fields_visible(ctx)
            .then_some(self.model.email_notices)
    }

    async fn role(&self) -> Role {
        self.model.role.into()
    }

    async fn headline(&self) -> Option<&str> {
        self.model.headline.as_deref()
    }

    async fn bio(&self) -> Option<&str> {
        self.model.bio.as_deref()
    }

    async fn avatar_url(&self) -> Option<&str> {
        self.model.avatar_url.as_deref()
    }

    async fn region(&self) -> Option<&str> {
        self.model.region.as_deref()
    }

    /// When the user was suspended, `null` if not. Visible to the user themself
    /// and to administrators.
    async fn suspended_at(&self, ctx: &Context<'_>) -> Option<DateTime<Utc>> {
        if self.private_fields_visible(ctx) {
            self.model.suspended_at
        } else {
            None
        }
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    /// Meets this user hosts that the viewer may see, latest start first.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn hosted_meets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Meet>> {
        let page = pagination::page(first, after)?;
        let paged = discovery::hosted_by(ctx.db(), ctx.viewer(), self.model.id, &page).await?;
        Ok(pagination::connection(paged, Meet::from))
    }

    /// Meets this user answered GOING, MAYBE or WAITLISTED, soonest first.
    /// Only the user themself may read it.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn attending(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Attendance>> {
        let page = pagination::page(first, after)?;
        let paged = discovery::attending(ctx.db(), ctx.viewer(), self.model.id, &page).await?;
        Ok(pagination::connection(paged, |(a, m)| {
            Attendance::from(a).with_meet(m)
        }))
    }

    /// Stories this user wrote that the viewer may see, newest first.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn stories(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Story>> {
        crate::stories::types::list(ctx, None, Some(self.model.id), first, after).await
    }
}

/// Tokens of a new or refreshed session.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// Opaque and single-use: trade it for a new pair with `refreshSession`.
    pub refresh_token: String,
    pub access_token_expires_at: DateTime<Utc>,
    #[graphql(skip)]
    pub user: users::Model,
}

#[async_graphql::ComplexObject]
impl AuthPayload {
    async fn user(&self) -> User {
        User::from(self.user.clone()).session_owner()
    }
}

impl From<Session> for AuthPayload {
    fn from(session: Session) -> Self {
        Self {
            access_token: session.access_token,
            refresh_token: session.refresh_token,
            access_token_expires_at: session.access_token_expires_at,
            user: session.user,
        }
    }
}

#[derive(InputObject)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub handle: String,
    pub display_name: String,
    /// The token of the invite link the member came through: they get its
    /// invitation as they register (NOT_FOUND, and no account, when the link
    /// is unknown, expired, revoked or used up).
    pub invite_link: Option<String>,
}

/// A field left out stays as it is; `null` clears it (displayName cannot be cleared).
#[derive(InputObject)]
pub struct UpdateProfileInput {
    pub display_name: MaybeUndefined<String>,
    pub headline: MaybeUndefined<String>,
    pub bio: MaybeUndefined<String>,
    pub avatar_url: MaybeUndefined<String>,
    pub region: MaybeUndefined<String>,
    /// Whether to get an e-mail when invited to a meet (on by default).
    pub email_notices: Option<bool>,
}

/// What a notice is about, as people choose how to hear of it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "entity::notification_preferences::NoticeKind")]
pub enum NoticeKind {
    Invitation,
    WaitlistPromoted,
    MeetChanged,
    MeetConfirmed,
    MeetCancelled,
    Reminder,
    StoryAboutMyMeet,
}

/// Where a notice goes.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum NoticeChannel {
    Email,
    /// To the user's phones and browsers.
    Push,
}

pub struct NotificationPreference {
    kind: entity::notification_preferences::NoticeKind,
    channels: Channels,
}

#[Object]
impl NotificationPreference {
    async fn kind(&self) -> NoticeKind {
        self.kind.into()
    }

    /// Empty: the user does not hear of this kind at all.
    async fn channels(&self) -> Vec<NoticeChannel> {
        let Channels { email, push } = self.channels;
        [(email, NoticeChannel::Email), (push, NoticeChannel::Push)]
            .into_iter()
            .filter_map(|(on, channel)| on.then_some(channel))
            .collect()
    }
}

#[derive(InputObject)]
pub struct NotificationPreferenceInput {
    pub kind: NoticeKind,
    /// The channels for that kind; empty to hear nothing of it.
    pub channels: Vec<NoticeChannel>,
}

impl NotificationPreferenceInput {
    pub fn choice(&self) -> (entity::notification_preferences::NoticeKind, Channels) {
        (
            self.kind.into(),
            Channels {
                email: self.channels.contains(&NoticeChannel::Email),
                push: self.channels.contains(&NoticeChannel::Push),
            },
        )
    }
}

/// `MaybeUndefined` as the services' "keep, clear or set".
pub fn patch<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl From<UpdateProfileInput> for ProfileChanges {
    fn from(input: UpdateProfileInput) -> Self {
        Self {
            display_name: patch(input.display_name),
            headline: patch(input.headline),
            bio: patch(input.bio),
            avatar_url: patch(input.avatar_url),
            region: patch(input.region),
            email_notices: input.email_notices,
        }
    }
}
