//! GraphQL types of invitations.

use async_graphql::{Context, Enum, ID, Object, connection::Connection};
use chrono::{DateTime, Utc};
use entity::{invitations, meets, users};

use super::{lists, rules};
use crate::{
    accounts::types::User,
    error::{ApiError, FieldResult},
    graphql::{ContextExt, pagination},
    meets::types::Meet,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "invitations::InvitationStatus")]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

/// Inviter and meet may come preloaded (live events).
pub struct Invitation {
    model: invitations::Model,
    inviter: Option<users::Model>,
    meet: Option<meets::Model>,
}

impl From<invitations::Model> for Invitation {
    fn from(model: invitations::Model) -> Self {
        Self {
            model,
            inviter: None,
            meet: None,
        }
    }
}

impl Invitation {
    pub fn with_inviter(mut self, inviter: users::Model) -> Self {
        self.inviter = Some(inviter);
        self
    }

    pub fn with_meet(mut self, meet: meets::Model) -> Self {
        self.meet = Some(meet);
        self
    }
}

#[Object]
impl Invitation {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    async fn status(&self) -> InvitationStatus {
        self.model.status.into()
    }

    /// The address an e-mail invitation went to: visible to the inviter, the
    /// host, the invitee and administrators; `null` to anyone else.
    async fn email(&self, ctx: &Context<'_>) -> FieldResult<Option<&str>> {
        let Some(email) = self.model.email.as_deref() else {
            return Ok(None);
        };
        let host_of_meet = || async {
            let meet = ctx.loaders().meets.load_one(self.model.meet_id).await?;
            Ok(meet.map(|m| m.host_id))
        };
        let visible = rules::may_see_email(&self.model, ctx.viewer(), host_of_meet).await?;
        Ok(visible.then_some(email))
    }

    async fn message(&self) -> Option<&str> {
        self.model.message.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    async fn responded_at(&self) -> Option<DateTime<Utc>> {
        self.model.responded_at
    }

    /// The member invited. `null` for an invitation by e-mail address
    /// unless the viewer is that member or an administrator: an address must
    /// not reveal whose account it is.
    async fn invitee(&self, ctx: &Context<'_>) -> FieldResult<Option<User>> {
        let Some(id) = self.model.invitee_id else {
            return Ok(None);
        };
        if !rules::may_see_invitee(&self.model, ctx.viewer()) {
            return Ok(None);
        }
        Ok(ctx.loaders().users.load_one(id).await?.map(User::from))
    }

    async fn inviter(&self, ctx: &Context<'_>) -> FieldResult<User> {
        if let Some(inviter) = &self.inviter {
            return Ok(User::from(inviter.clone()));
        }
        let inviter = ctx.loaders().users.load_one(self.model.inviter_id).await?;
        Ok(User::from(
            inviter.ok_or_else(|| ApiError::not_found("user"))?,
        ))
    }

    /// `null` when the viewer may no longer see the meet (a revoked
    /// invitation to an invite-only meet).
    async fn meet(&self, ctx: &Context<'_>) -> FieldResult<Option<Meet>> {
        if let Some(meet) = &self.meet {
            return Ok(Some(Meet::from(meet.clone())));
        }
        Ok(ctx
            .loaders()
            .meets
            .load_one(self.model.meet_id)
            .await?
            .map(Meet::from))
    }
}

/// `Meet.invitations`: the host and administrators only.
pub async fn for_meet(
    ctx: &Context<'_>,
    meet: &meets::Model,
    first: Option<i32>,
    after: Option<String>,
) -> FieldResult<Connection<String, Invitation>> {
    let page = pagination::page(first, after)?;
    let paged = lists::for_meet(ctx.db(), ctx.viewer(), meet, &page).await?;
    Ok(pagination::connection(paged, Invitation::from))
}

pub async fn mine(
    ctx: &Context<'_>,
    status: Option<InvitationStatus>,
    first: Option<i32>,
    after: Option<String>,
) -> FieldResult<Connection<String, Invitation>> {
    let page = pagination::page(first, after)?;
    let paged = lists::mine(ctx.db(), ctx.viewer(), status.map(Into::into), &page).await?;
    Ok(pagination::connection(paged, Invitation::from))
}
