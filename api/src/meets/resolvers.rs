//! The meets' Query and Mutation roots.

use async_graphql::{Context, ID, Object, connection::Connection};

use super::{
    attendance, discovery, lifecycle,
    types::{
        ArrivalState, Attendance, CreateMeetInput, Meet, MeetFilter, RsvpStatus,
        UpdateAttendanceInput, UpdateMeetInput,
    },
    visibility,
};
use crate::{
    error::FieldResult,
    graphql::{
        ContextExt,
        pagination::{self, page_complexity},
        parse_id,
    },
};

#[derive(Default)]
pub struct MeetsQuery;

#[Object]
impl MeetsQuery {
    /// Meets the viewer may see; by default scheduled ones that have not
    /// ended, soonest first.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn meets(
        &self,
        ctx: &Context<'_>,
        filter: Option<MeetFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Meet>> {
        let page = pagination::page(first, after)?;
        let viewer = ctx.viewer();
        let paged =
            discovery::list(ctx.db(), viewer, filter.unwrap_or_default().into(), &page).await?;
        let mut answers = match viewer.user_id() {
            Some(user_id) => Some(
                attendance::attendances_of(
                    ctx.db(),
                    user_id,
                    paged.rows.iter().map(|(_, (m, _))| m.id),
                )
                .await?,
            ),
            None => None,
        };
        Ok(pagination::connection(paged, |(model, host)| {
            let id = model.id;
            let meet = Meet::from(model).with_host(host);
            match answers.as_mut() {
                Some(answers) => meet.with_viewer_attendance(answers.remove(&id)),
                None => meet,
            }
        }))
    }

    /// The meet, or `null` when it does not exist for the viewer.
    async fn meet(&self, ctx: &Context<'_>, id: ID) -> FieldResult<Option<Meet>> {
        let Ok(id) = parse_id(&id, "meet") else {
            return Ok(None);
        };
        Ok(
            visibility::find_visible_with_host(ctx.db(), ctx.viewer(), id)
                .await?
                .map(|(meet, host)| Meet::from(meet).with_host(host)),
        )
    }
}

#[derive(Default)]
pub struct MeetsMutation;

#[Object]
impl MeetsMutation {
    /// Calls a meet; the caller hosts it and is counted as GOING.
    async fn create_meet(&self, ctx: &Context<'_>, input: CreateMeetInput) -> FieldResult<Meet> {
        Ok(Meet::from(
            lifecycle::create(ctx.services(), ctx.viewer(), input.into()).await?,
        ))
    }

    /// The host or an administrator only.
    async fn update_meet(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateMeetInput,
    ) -> FieldResult<Meet> {
        let id = parse_id(&id, "meet")?;
        Ok(Meet::from(
            lifecycle::update(ctx.services(), ctx.viewer(), id, input.into()).await?,
        ))
    }

    /// The host or an administrator only; cancelling twice changes nothing.
    async fn cancel_meet(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: Option<String>,
    ) -> FieldResult<Meet> {
        let id = parse_id(&id, "meet")?;
        Ok(Meet::from(
            lifecycle::cancel(ctx.services(), ctx.viewer(), id, reason).await?,
        ))
    }

    /// GOING, MAYBE or NOT_GOING. GOING on a full meet waitlists you.
    async fn rsvp(
        &self,
        ctx: &Context<'_>,
        meet_id: ID,
        status: RsvpStatus,
    ) -> FieldResult<Attendance> {
        let meet_id = parse_id(&meet_id, "meet")?;
        let answer = status.answer()?;
        Ok(Attendance::from(
            attendance::rsvp(ctx.services(), ctx.viewer(), meet_id, answer).await?,
        ))
    }

    /// From one hour before the start until the meet ends, for GOING attendees.
    async fn check_in(&self, ctx: &Context<'_>, meet_id: ID) -> FieldResult<Attendance> {
        let meet_id = parse_id(&meet_id, "meet")?;
        Ok(Attendance::from(
            attendance::check_in(ctx.services(), ctx.viewer(), meet_id).await?,
        ))
    }

    /// The attendee's own arrival, for someone GOING: ON_MY_WAY (with an
    /// optional ETA of 0 to 240 minutes) from three hours before the start,
    /// HERE (the check-in) from one hour before, LEFT after HERE, NOT_YET to
    /// take back an ON_MY_WAY; until the meet ends.
    async fn set_arrival(
        &self,
        ctx: &Context<'_>,
        meet_id: ID,
        state: ArrivalState,
        eta_minutes: Option<i32>,
    ) -> FieldResult<Attendance> {
        let meet_id = parse_id(&meet_id, "meet")?;
        let (attendance, meet) = attendance::set_arrival(
            ctx.services(),
            ctx.viewer(),
            meet_id,
            state.into(),
            eta_minutes,
        )
        .await?;
        Ok(Attendance::from(attendance).with_meet(meet))
    }

    /// What the attendee would like from the night (an introduction, who
    /// they hope to meet), for someone who answered GOING, MAYBE or
    /// WAITLISTED. Shown under the guest list's rule.
    async fn update_attendance(
        &self,
        ctx: &Context<'_>,
        meet_id: ID,
        input: UpdateAttendanceInput,
    ) -> FieldResult<Attendance> {
        let meet_id = parse_id(&meet_id, "meet")?;
        let wishes = input.wishes()?;
        Ok(Attendance::from(
            attendance::update_attendance(ctx.services(), ctx.viewer(), meet_id, wishes).await?,
        ))
    }
}
