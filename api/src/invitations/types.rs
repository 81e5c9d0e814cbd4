//! GraphQL types of invitations.

use async_graphql::{Context, Enum, ID, InputObject, Object, connection::Connection};
use chrono::{DateTime, Utc};
use entity::{invitations, invite_links, meets, users};

use super::{
    links::{self, Funnel, LinkDraft, Opened},
    lists, rules,
};
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

/// A link a host shares a meet through on one channel, with its funnel: how
/// many opened it, got an invitation through it (`joined`), are going and
/// arrived. The host's and administrators' only.
pub struct InviteLink {
    model: invite_links::Model,
    funnel: Funnel,
}

impl InviteLink {
    pub fn new(model: invite_links::Model, funnel: Funnel) -> Self {
        Self { model, funnel }
    }
}

#[Object]
impl InviteLink {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    /// Where it is shared, e.g. "tweet" or "newsletter".
    async fn channel(&self) -> &str {
        &self.model.channel
    }

    /// The web app's address for the link; it carries the token.
    async fn url(&self, ctx: &Context<'_>) -> String {
        links::url(&ctx.services().config, &self.model)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.model.expires_at
    }

    /// How many invitations it may give; `null` for no limit.
    async fn max_uses(&self) -> Option<i32> {
        self.model.max_uses
    }

    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.model.revoked_at
    }

    /// Opens: each anonymous one, and each signed-in user once.
    async fn opens(&self) -> i32 {
        self.model.opens
    }

    /// Users who got an invitation through it.
    async fn joined(&self) -> i32 {
        count(self.funnel.joined)
    }

    /// Of those, now GOING.
    async fn going(&self) -> i32 {
        count(self.funnel.going)
    }

    /// Of those, checked in.
    async fn arrived(&self) -> i32 {
        count(self.funnel.arrived)
    }
}

fn count(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// What opening an invite link shows: the meet (even an invite-only one:
/// the link is the invitation) and, signed in, the opener's invitation.
pub struct InviteLinkOpening {
    pub opened: Opened,
}

#[Object]
impl InviteLinkOpening {
    async fn channel(&self) -> &str {
        &self.opened.link.channel
    }

    async fn meet(&self) -> Meet {
        Meet::from(self.opened.meet.clone())
    }

    /// The opener's invitation, attributed to the link; `null` when
    /// anonymous, for the host, or once the meet no longer takes answers.
    async fn invitation(&self) -> Option<Invitation> {
        self.opened
            .invitation
            .clone()
            .map(|invitation| Invitation::from(invitation).with_meet(self.opened.meet.clone()))
    }
}

#[derive(InputObject)]
pub struct CreateInviteLinkInput {
    /// 1 to 40 characters, e.g. "tweet", "newsletter".
    pub channel: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// 1 to 10,000 invitations; `null` for no limit.
    pub max_uses: Option<i32>,
}

impl From<CreateInviteLinkInput> for LinkDraft {
    fn from(input: CreateInviteLinkInput) -> Self {
        Self {
            channel: input.channel,
            expires_at: input.expires_at,
            max_uses: input.max_uses,
        }
    }
}

/// `Meet.inviteLinks`: the host and administrators only; a page's funnels
/// in one statement.
pub async fn links_for_meet(
    ctx: &Context<'_>,
    meet: &meets::Model,
    first: Option<i32>,
    after: Option<String>,
) -> FieldResult<Connection<String, InviteLink>> {
    let page = pagination::page(first, after)?;
    let paged = links::for_meet(ctx.db(), ctx.viewer(), meet, &page).await?;
    let ids: Vec<_> = paged.rows.iter().map(|(_, link)| link.id).collect();
    let mut funnels = links::funnels(ctx.db(), &ids).await?;
    Ok(pagination::connection(paged, |link| {
        let funnel = funnels.remove(&link.id).unwrap_or_default();
        InviteLink::new(link, funnel)
    }))
}
