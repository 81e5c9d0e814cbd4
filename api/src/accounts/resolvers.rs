//! The accounts' Query and Mutation roots: thin, each a service call.

use async_graphql::{Context, MaybeUndefined, Object};

use super::{
    members,
    service::{self, NewAccount},
    types::{
        AuthPayload, NotificationPreferenceInput, RegisterInput, UpdateProfileInput, User, patch,
    },
};
use crate::{
    error::FieldResult,
    graphql::{ContextExt, argument_given, throttle},
    meets::calendar,
    throttle::Action,
};

#[derive(Default)]
pub struct AccountsQuery;

#[Object]
impl AccountsQuery {
    /// The signed-in user, `null` when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> FieldResult<Option<User>> {
        let Some(id) = ctx.viewer().user_id() else {
            return Ok(None);
        };
        Ok(members::find_by_id(ctx.db(), id).await?.map(User::from))
    }

    async fn user(&self, ctx: &Context<'_>, handle: String) -> FieldResult<Option<User>> {
        Ok(members::find_by_handle(ctx.db(), &handle)
            .await?
            .map(User::from))
    }
}

#[derive(Default)]
pub struct AccountsMutation;

#[Object]
impl AccountsMutation {
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> FieldResult<AuthPayload> {
        throttle(ctx, Action::Register, None).await?;
        let account = NewAccount {
            email: input.email,
            password: input.password,
            handle: input.handle,
            display_name: input.display_name,
            invite_link: input.invite_link,
        };
        Ok(service::register(ctx.services(), account).await?.into())
    }

    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> FieldResult<AuthPayload> {
        // Counted against the address tried, whether or not it has an account.
        throttle(ctx, Action::Login, Some(&email.trim().to_lowercase())).await?;
        Ok(service::login(ctx.services(), &email, password)
            .await?
            .into())
    }

    /// Trades a refresh token for a new pair; the old one is spent.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> FieldResult<AuthPayload> {
        throttle(ctx, Action::RefreshSession, None).await?;
        Ok(service::refresh(ctx.services(), &refresh_token)
            .await?
            .into())
    }

    /// Revokes the given refresh token.
    async fn logout(&self, ctx: &Context<'_>, refresh_token: String) -> FieldResult<bool> {
        Ok(service::logout(ctx.db(), &refresh_token).await?)
    }

    /// Changes the password and signs out every session of the user.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> FieldResult<bool> {
        let user = ctx.viewer().user_id().map(|id| id.to_string());
        throttle(ctx, Action::ChangePassword, user.as_deref()).await?;
        Ok(
            service::change_password(ctx.services(), ctx.viewer(), current_password, new_password)
                .await?,
        )
    }

    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> FieldResult<User> {
        Ok(User::from(
            service::update_profile(ctx.db(), ctx.viewer(), input.into()).await?,
        ))
    }

    /// The viewer's channels per kind of notice (kinds not named keep
    /// theirs) and, when given, how long before a meet they are reminded
    /// (15 to 1,440 minutes; `null` for no reminders; a variable left out of
    /// the request leaves it as it is).
    async fn update_notification_preferences(
        &self,
        ctx: &Context<'_>,
        preferences: Vec<NotificationPreferenceInput>,
        reminder_minutes_before: MaybeUndefined<i32>,
    ) -> FieldResult<User> {
        let choices: Vec<_> = preferences
            .iter()
            .map(NotificationPreferenceInput::choice)
            .collect();
        let reminder = if argument_given(ctx, "reminderMinutesBefore") {
            patch(reminder_minutes_before)
        } else {
            None
        };
        Ok(User::from(
            service::update_notification_preferences(
                ctx.services(),
                ctx.viewer(),
                &choices,
                reminder,
            )
            .await?,
        ))
    }

    /// A new secret address for the viewer's calendar feed, returned; the
    /// old one stops working.
    async fn rotate_calendar_feed(&self, ctx: &Context<'_>) -> FieldResult<String> {
        let user = service::rotate_calendar_feed(ctx.services(), ctx.viewer()).await?;
        let services = ctx.services();
        Ok(calendar::feed_url(&services.config, &services.keys, &user))
    }
}
