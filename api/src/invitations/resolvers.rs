//! The invitations' Query and Mutation roots.

use async_graphql::{Context, ID, Object, connection::Connection};

use super::{
    service,
    types::{self, Invitation, InvitationStatus},
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
}
