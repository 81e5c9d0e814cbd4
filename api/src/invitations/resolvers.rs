//! The invitations' Query and Mutation roots.

use async_graphql::{Context, ID, Object, connection::Connection};

use super::{
    links::{self, Funnel},
    service,
    types::{
        self, CreateInviteLinkInput, Invitation, InvitationStatus, InviteLink, InviteLinkOpening,
    },
};
use crate::{
    error::FieldResult,
    graphql::{ContextExt, pagination::page_complexity, parse_id, throttle},
    throttle::Action,
};

#[derive(Default)]
pub struct InvitationsQuery;

#[Object]
impl InvitationsQuery {
    /// The viewer's invitations, newest first.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn my_invitations(
        &self,
        ctx: &Context<'_>,
        status: Option<InvitationStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Invitation>> {
        types::mine(ctx, status, first, after).await
    }
}

#[derive(Default)]
pub struct InvitationsMutation;

#[Object]
impl InvitationsMutation {
    /// Up to 50 handles and e-mails, all or nothing, and 50 in one request
    /// across aliases. Someone already invited gets the existing invitation
    /// back. RATE_LIMITED past the daily limit.
    async fn invite_to_meet(
        &self,
        ctx: &Context<'_>,
        meet_id: ID,
        handles: Option<Vec<String>>,
        emails: Option<Vec<String>>,
        message: Option<String>,
    ) -> FieldResult<Vec<Invitation>> {
        let user = ctx.viewer().user_id().map(|id| id.to_string());
        throttle(ctx, Action::InviteToMeet, user.as_deref()).await?;
        let meet_id = parse_id(&meet_id, "meet")?;
        let rows = service::invite(
            ctx.services(),
            ctx.viewer(),
            ctx.invitation_allowance(),
            meet_id,
            handles.unwrap_or_default(),
            emails.unwrap_or_default(),
            message,
        )
        .await?;
        Ok(rows.into_iter().map(Invitation::from).collect())
    }

    /// Accepting answers GOING (or WAITLISTED on a full meet); declining is final.
    async fn respond_to_invitation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        accept: bool,
    ) -> FieldResult<Invitation> {
        let id = parse_id(&id, "invitation")?;
        Ok(Invitation::from(
            service::respond(ctx.services(), ctx.viewer(), id, accept).await?,
        ))
    }

    /// Makes an e-mail invitation the signed-in user's.
    async fn claim_invitation(&self, ctx: &Context<'_>, token: String) -> FieldResult<Invitation> {
        let user = ctx.viewer().user_id().map(|id| id.to_string());
        throttle(ctx, Action::ClaimInvitation, user.as_deref()).await?;
        Ok(Invitation::from(
            service::claim(ctx.services(), ctx.viewer(), &token).await?,
        ))
    }

    /// The inviter or the host.
    async fn revoke_invitation(&self, ctx: &Context<'_>, id: ID) -> FieldResult<Invitation> {
        let id = parse_id(&id, "invitation")?;
        Ok(Invitation::from(
            service::revoke(ctx.services(), ctx.viewer(), id).await?,
        ))
    }

    /// A link to the meet for one channel: the host or an administrator.
    async fn create_invite_link(
        &self,
        ctx: &Context<'_>,
        meet_id: ID,
        input: CreateInviteLinkInput,
    ) -> FieldResult<InviteLink> {
        let meet_id = parse_id(&meet_id, "meet")?;
        let link = links::create(ctx.services(), ctx.viewer(), meet_id, input.into()).await?;
        Ok(InviteLink::new(link, Funnel::default()))
    }

    /// Anonymous or signed in: shows the meet (the link is the invitation)
    /// and counts the open; signed in, also gives an invitation through the
    /// link. NOT_FOUND for an unknown, expired, revoked or used-up link.
    async fn open_invite_link(
        &self,
        ctx: &Context<'_>,
        token: String,
    ) -> FieldResult<InviteLinkOpening> {
        // Token look-ups share the claim's limit: guessing is what it stops.
        let user = ctx.viewer().user_id().map(|id| id.to_string());
        throttle(ctx, Action::ClaimInvitation, user.as_deref()).await?;
        let opened = links::open(ctx.services(), ctx.viewer(), &token).await?;
        Ok(InviteLinkOpening { opened })
    }

    /// Ends a link (the invitations it gave stay): the host or an administrator.
    async fn revoke_invite_link(&self, ctx: &Context<'_>, id: ID) -> FieldResult<InviteLink> {
        let id = parse_id(&id, "invite link")?;
        let link = links::revoke(ctx.services(), ctx.viewer(), id).await?;
        let funnel = links::funnels(ctx.db(), &[link.id])
            .await?
            .remove(&link.id)
            .unwrap_or_default();
        Ok(InviteLink::new(link, funnel))
    }
}
