//! GraphQL types of meets.

use async_graphql::{
    Context, Enum, ID, InputObject, MaybeUndefined, Object, connection::Connection,
};
use chrono::{DateTime, Utc};
use entity::{attendances, meets, users};

use super::{
    attendance::{self, Answer},
    discovery::{MeetFilter as Filter, Near},
    lifecycle::{MeetChanges, MeetDraft},
};
use crate::{
    accounts::types::{User, patch},
    error::{ApiError, FieldResult},
    graphql::{
        ContextExt,
        pagination::{self, page_complexity},
    },
    invitations::types::Invitation,
    stories::types::Story,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "meets::Visibility")]
pub enum Visibility {
    Public,
    InviteOnly,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "meets::MeetStatus")]
pub enum MeetStatus {
    Scheduled,
    Cancelled,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "attendances::RsvpStatus")]
pub enum RsvpStatus {
    Going,
    Maybe,
    NotGoing,
    /// Given by the server to a GOING answer on a full meet; never an input.
    Waitlisted,
}

impl RsvpStatus {
    pub fn answer(self) -> Result<Answer, ApiError> {
        match self {
            Self::Going => Ok(Answer::Going),
            Self::Maybe => Ok(Answer::Maybe),
            Self::NotGoing => Ok(Answer::NotGoing),
            Self::Waitlisted => Err(ApiError::bad_input(
                "status",
                "WAITLISTED is given by the server, not an answer",
            )),
        }
    }
}

/// A meetup: venue, time, capacity, visibility and who is coming. Lists
/// preload the host and the viewer's attendance for a whole page in one
/// statement each; live events preload from their snapshot. Made with
/// `Meet::from(model)`, then `with_…` for what came preloaded.
pub struct Meet {
    model: meets::Model,
    host: Option<users::Model>,
    /// `Some(None)`: loaded, and the viewer has not answered.
    viewer_attendance: Option<Option<attendances::Model>>,
}

impl From<meets::Model> for Meet {
    fn from(model: meets::Model) -> Self {
        Self {
            model,
            host: None,
            viewer_attendance: None,
        }
    }
}

impl Meet {
    pub fn with_host(mut self, host: users::Model) -> Self {
        self.host = Some(host);
        self
    }

    /// The viewer's answer, `None` when they gave none.
    pub fn with_viewer_attendance(mut self, attendance: Option<attendances::Model>) -> Self {
        self.viewer_attendance = Some(attendance);
        self
    }
}

#[Object]
impl Meet {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    async fn title(&self) -> &str {
        &self.model.title
    }

    async fn description(&self) -> Option<&str> {
        self.model.description.as_deref()
    }

    async fn venue_name(&self) -> &str {
        &self.model.venue_name
    }

    async fn address(&self) -> Option<&str> {
        self.model.address.as_deref()
    }

    async fn latitude(&self) -> Option<f64> {
        self.model.latitude
    }

    async fn longitude(&self) -> Option<f64> {
        self.model.longitude
    }

    async fn region(&self) -> Option<&str> {
        self.model.region.as_deref()
    }

    /// IANA time zone the meet's local time is shown in; `null` means the
    /// server's default.
    async fn time_zone(&self) -> Option<&str> {
        self.model.time_zone.as_deref()
    }

    async fn starts_at(&self) -> DateTime<Utc> {
        self.model.starts_at
    }

    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.model.ends_at
    }

    async fn status(&self) -> MeetStatus {
        self.model.status.into()
    }

    async fn visibility(&self) -> Visibility {
        self.model.visibility.into()
    }

    /// `null` means no limit.
    async fn capacity(&self) -> Option<i32> {
        self.model.capacity
    }

    async fn going_count(&self) -> i32 {
        self.model.going_count
    }

    async fn checked_in_count(&self) -> i32 {
        self.model.checked_in_count
    }

    /// `capacity - goingCount`; `null` without a capacity.
    async fn spots_left(&self) -> Option<i32> {
        self.model
            .capacity
            .map(|c| (c - self.model.going_count).max(0))
    }

    async fn cancellation_reason(&self) -> Option<&str> {
        self.model.cancellation_reason.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }

    async fn host(&self, ctx: &Context<'_>) -> FieldResult<User> {
        if let Some(host) = &self.host {
            return Ok(User::from(host.clone()));
        }
        let host = ctx.loaders().users.load_one(self.model.host_id).await?;
        Ok(User::from(host.ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("meet {} has no host", self.model.id))
        })?))
    }

    /// The viewer's own answer; `null` when none or anonymous.
    async fn viewer_attendance(&self, ctx: &Context<'_>) -> FieldResult<Option<Attendance>> {
        if let Some(preloaded) = &self.viewer_attendance {
            return Ok(preloaded
                .clone()
                .map(|a| Attendance::from(a).with_meet(self.model.clone())));
        }
        let Some(loader) = &ctx.loaders().viewer_attendance else {
            return Ok(None);
        };
        Ok(loader
            .load_one(self.model.id)
            .await?
            .map(|a| Attendance::from(a).with_meet(self.model.clone())))
    }

    /// Answers, GOING first, then by answer time. Without `status`, those
    /// who answered NOT_GOING are left out.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn attendees(
        &self,
        ctx: &Context<'_>,
        status: Option<RsvpStatus>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Attendance>> {
        let page = pagination::page(first, after)?;
        let paged =
            attendance::attendees(ctx.db(), self.model.id, status.map(Into::into), &page).await?;
        Ok(pagination::connection(paged, |(a, u)| {
            Attendance::from(a)
                .with_user(u)
                .with_meet(self.model.clone())
        }))
    }

    /// Stories about this meet, newest first.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn stories(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Story>> {
        crate::stories::types::list(ctx, Some(self.model.id), None, first, after).await
    }

    /// The meet's invitations: for the host and administrators only.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Invitation>> {
        crate::invitations::types::for_meet(ctx, &self.model, first, after).await
    }
}

/// One member's answer to one meet. Made with `Attendance::from(model)`,
/// then `with_…` for what the list or event loaded with it.
pub struct Attendance {
    model: attendances::Model,
    user: Option<users::Model>,
    meet: Option<meets::Model>,
}

impl From<attendances::Model> for Attendance {
    fn from(model: attendances::Model) -> Self {
        Self {
            model,
            user: None,
            meet: None,
        }
    }
}

impl Attendance {
    pub fn with_user(mut self, user: users::Model) -> Self {
        self.user = Some(user);
        self
    }

    pub fn with_meet(mut self, meet: meets::Model) -> Self {
        self.meet = Some(meet);
        self
    }
}

#[Object]
impl Attendance {
    async fn status(&self) -> RsvpStatus {
        self.model.status.into()
    }

    /// When the current answer was given.
    async fn responded_at(&self) -> DateTime<Utc> {
        self.model.responded_at
    }

    async fn checked_in_at(&self) -> Option<DateTime<Utc>> {
        self.model.checked_in_at
    }

    async fn user(&self, ctx: &Context<'_>) -> FieldResult<User> {
        if let Some(user) = &self.user {
            return Ok(User::from(user.clone()));
        }
        let user = ctx.loaders().users.load_one(self.model.user_id).await?;
        Ok(User::from(user.ok_or_else(|| ApiError::not_found("user"))?))
    }

    async fn meet(&self, ctx: &Context<'_>) -> FieldResult<Meet> {
        if let Some(meet) = &self.meet {
            return Ok(Meet::from(meet.clone()));
        }
        let meet = ctx.loaders().meets.load_one(self.model.meet_id).await?;
        Ok(Meet::from(meet.ok_or_else(|| ApiError::not_found("meet"))?))
    }
}

#[derive(InputObject)]
pub struct CreateMeetInput {
    pub title: String,
    pub description: Option<String>,
    pub venue_name: String,
    pub address: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub region: Option<String>,
    /// IANA zone, e.g. America/Toronto; defaults to the server's.
    pub time_zone: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// 1 to 10,000; `null` for no limit.
    pub capacity: Option<i32>,
    #[graphql(default_with = "Visibility::Public")]
    pub visibility: Visibility,
}

impl From<CreateMeetInput> for MeetDraft {
    fn from(input: CreateMeetInput) -> Self {
        Self {
            title: input.title,
            description: input.description,
            venue_name: input.venue_name,
            address: input.address,
            latitude: input.latitude,
            longitude: input.longitude,
            region: input.region,
            time_zone: input.time_zone,
            starts_at: input.starts_at,
            ends_at: input.ends_at,
            capacity: input.capacity,
            visibility: input.visibility.into(),
        }
    }
}

/// Every field of `CreateMeetInput`, all optional: a field left out stays,
/// `null` clears it where it may be empty.
#[derive(InputObject)]
pub struct UpdateMeetInput {
    pub title: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub venue_name: MaybeUndefined<String>,
    pub address: MaybeUndefined<String>,
    pub latitude: MaybeUndefined<f64>,
    pub longitude: MaybeUndefined<f64>,
    pub region: MaybeUndefined<String>,
    pub time_zone: MaybeUndefined<String>,
    pub starts_at: MaybeUndefined<DateTime<Utc>>,
    pub ends_at: MaybeUndefined<DateTime<Utc>>,
    pub capacity: MaybeUndefined<i32>,
    pub visibility: MaybeUndefined<Visibility>,
}

impl From<UpdateMeetInput> for MeetChanges {
    fn from(input: UpdateMeetInput) -> Self {
        Self {
            title: patch(input.title),
            description: patch(input.description),
            venue_name: patch(input.venue_name),
            address: patch(input.address),
            latitude: patch(input.latitude),
            longitude: patch(input.longitude),
            region: patch(input.region),
            time_zone: patch(input.time_zone),
            starts_at: patch(input.starts_at),
            ends_at: patch(input.ends_at),
            capacity: patch(input.capacity),
            visibility: patch(input.visibility).map(|v| v.map(Into::into)),
        }
    }
}

#[derive(InputObject)]
pub struct NearInput {
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
}

#[derive(InputObject, Default)]
pub struct MeetFilter {
    /// Case-insensitive.
    pub region: Option<String>,
    pub starts_after: Option<DateTime<Utc>>,
    pub starts_before: Option<DateTime<Utc>>,
    /// Words that must all appear in the title, description or venue.
    pub search: Option<String>,
    pub host_handle: Option<String>,
    /// Within a great-circle distance of a point.
    pub near: Option<NearInput>,
    /// Also list meets that have ended or were cancelled.
    pub include_past: Option<bool>,
}

impl From<MeetFilter> for Filter {
    fn from(input: MeetFilter) -> Self {
        Self {
            region: input.region,
            starts_after: input.starts_after,
            starts_before: input.starts_before,
            search: input.search,
            host_handle: input.host_handle,
            near: input.near.map(|n| Near {
                latitude: n.latitude,
                longitude: n.longitude,
                radius_km: n.radius_km,
            }),
            include_past: input.include_past.unwrap_or(false),
        }
    }
}
