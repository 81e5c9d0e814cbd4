//! GraphQL types of meets.

use std::{collections::HashSet, sync::Arc};

use async_graphql::{
    Context, Enum, ID, InputObject, MaybeUndefined, Object, connection::Connection,
};
use chrono::{DateTime, Utc};
use entity::{attendances, meets, users};
use uuid::Uuid;

use super::{
    attendance::{self, Answer, AttendanceWishes, GuestListFilter},
    calendar,
    discovery::{MeetFilter as Filter, Near},
    lifecycle::{MeetChanges, MeetDraft},
    loaders::{self, AttendanceRecord},
    rules, visibility,
};
use crate::{
    accounts::types::{User, patch},
    error::{ApiError, FieldResult},
    graphql::{
        ContextExt,
        pagination::{self, page_complexity},
    },
    invitations::types::{Invitation, InviteLink},
    stories::types::Story,
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "meets::Visibility")]
pub enum Visibility {
    Public,
    InviteOnly,
}

/// Who may see a meet's guest list (names); everyone who may see the meet
/// sees its counts.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "meets::AttendeeVisibility")]
pub enum AttendeeVisibility {
    /// Everyone who may see the meet.
    Public,
    /// People whose own answer is GOING, MAYBE or WAITLISTED.
    Attendees,
    /// People who have checked in: nobody knows who is there until they arrive.
    Arrived,
    /// The host only.
    Host,
}

/// Where an attendee is on the night.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "attendances::ArrivalState")]
pub enum ArrivalState {
    NotYet,
    /// With an `etaAt` when they gave one.
    OnMyWay,
    /// Checked in.
    Here,
    Left,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum MeetStatus {
    /// Go / no-go: waiting for `minimumGoing` by `decideBy`; takes answers
    /// and appears in lists like a scheduled meet.
    Tentative,
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
    // Shared, not copied: a live event hands the same meet and host to every
    // subscriber's item.
    model: Arc<meets::Model>,
    host: Option<Arc<users::Model>>,
    /// `Some(None)`: loaded, and the viewer has not answered.
    viewer_attendance: Option<Option<attendances::Model>>,
    /// Live events: who may see the names (`visibility::attendee_seers`)
    /// and the newcomer count, loaded once per event for every subscriber.
    attendee_seers: Option<Arc<HashSet<Uuid>>>,
    newcomer_count: Option<i64>,
}

impl From<meets::Model> for Meet {
    fn from(model: meets::Model) -> Self {
        Self::from(Arc::new(model))
    }
}

impl From<Arc<meets::Model>> for Meet {
    fn from(model: Arc<meets::Model>) -> Self {
        Self {
            model,
            host: None,
            viewer_attendance: None,
            attendee_seers: None,
            newcomer_count: None,
        }
    }
}

impl Meet {
    pub fn with_host(mut self, host: impl Into<Arc<users::Model>>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// The viewer's answer, `None` when they gave none.
    pub fn with_viewer_attendance(mut self, attendance: Option<attendances::Model>) -> Self {
        self.viewer_attendance = Some(attendance);
        self
    }

    /// What a live event loaded for the guest list's rule and counts.
    pub fn with_guest_list(mut self, seers: Arc<HashSet<Uuid>>, newcomer_count: i64) -> Self {
        self.attendee_seers = Some(seers);
        self.newcomer_count = Some(newcomer_count);
        self
    }

    /// The viewer's own attendance, preloaded or through the request's loader.
    async fn own_attendance(&self, ctx: &Context<'_>) -> FieldResult<Option<attendances::Model>> {
        if let Some(preloaded) = &self.viewer_attendance {
            return Ok(preloaded.clone());
        }
        match &ctx.loaders().viewer_attendance {
            Some(loader) => Ok(loader.load_one(self.model.id).await?),
            None => Ok(None),
        }
    }

    /// The guest list's rule for the viewer (`visibility::sees_attendees`).
    async fn viewer_sees_attendees(&self, ctx: &Context<'_>) -> FieldResult<bool> {
        let viewer = ctx.viewer();
        if let Some(seers) = &self.attendee_seers {
            return Ok(visibility::sees_attendees_among(&self.model, viewer, seers));
        }
        let own = self.own_attendance(ctx).await?;
        Ok(visibility::sees_attendees(
            &self.model,
            viewer,
            own.as_ref(),
        ))
    }

    /// Whether the night is over for arrivals (ended or cancelled).
    fn arrivals_over(&self) -> bool {
        rules::arrivals_over(&self.model, Utc::now())
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
        match self.model.status {
            _ if rules::is_tentative(&self.model) => MeetStatus::Tentative,
            meets::MeetStatus::Scheduled => MeetStatus::Scheduled,
            meets::MeetStatus::Cancelled => MeetStatus::Cancelled,
        }
    }

    /// An iCalendar (`.ics`) file of the meet, for calendar apps: its
    /// address works for the viewer it was given to, while they may see the
    /// meet.
    async fn calendar_url(&self, ctx: &Context<'_>) -> String {
        let services = ctx.services();
        calendar::meet_url(
            &services.config,
            &services.keys,
            self.model.id,
            ctx.viewer(),
        )
    }

    /// Go / no-go: the meet goes ahead once this many are going (it is
    /// TENTATIVE until then); `null` for a meet that simply happens.
    async fn minimum_going(&self) -> Option<i32> {
        self.model.minimum_going
    }

    /// Go / no-go: a TENTATIVE meet still short of its minimum at this time
    /// is cancelled.
    async fn decide_by(&self) -> Option<DateTime<Utc>> {
        self.model.decide_by
    }

    /// The meet's invite links, newest first, with their funnels: for the
    /// host and administrators only (FORBIDDEN for anyone else).
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn invite_links(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, InviteLink>> {
        crate::invitations::types::links_for_meet(ctx, &self.model, first, after).await
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

    /// Everyone who ever checked in.
    async fn checked_in_count(&self) -> i32 {
        self.model.checked_in_count
    }

    /// Attendees here now; 0 once the meet is over.
    async fn here_count(&self) -> i32 {
        if self.arrivals_over() {
            0
        } else {
            self.model.here_count
        }
    }

    /// Attendees on their way now; 0 once the meet is over.
    async fn on_the_way_count(&self) -> i32 {
        if self.arrivals_over() {
            0
        } else {
            self.model.on_the_way_count
        }
    }

    /// GOING attendees who had checked in to no earlier meet.
    async fn newcomer_count(&self, ctx: &Context<'_>) -> FieldResult<i32> {
        let count = match self.newcomer_count {
            Some(count) => count,
            None => ctx
                .loaders()
                .newcomer_counts
                .load_one(self.model.id)
                .await?
                .unwrap_or(0),
        };
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// Who may see the guest list's names.
    async fn attendee_visibility(&self) -> AttendeeVisibility {
        self.model.attendee_visibility.into()
    }

    /// Whether the viewer may see who is coming: when `false`, `attendees`
    /// holds only the viewer's own attendance and live events leave out
    /// other people's.
    async fn viewer_can_see_attendees(&self, ctx: &Context<'_>) -> FieldResult<bool> {
        self.viewer_sees_attendees(ctx).await
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
            return Ok(User::from(users::Model::clone(host)));
        }
        let host = ctx.loaders().users.load_one(self.model.host_id).await?;
        Ok(User::from(host.ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("meet {} has no host", self.model.id))
        })?))
    }

    /// The viewer's own answer; `null` when none or anonymous.
    async fn viewer_attendance(&self, ctx: &Context<'_>) -> FieldResult<Option<Attendance>> {
        Ok(self
            .own_attendance(ctx)
            .await?
            .map(|a| Attendance::from(a).with_meet(self.model.clone())))
    }

    /// Answers, GOING first, then by answer time. Without `status`, those
    /// who answered NOT_GOING are left out; `arrival` filters by arrival as
    /// it reads now. A viewer who may not see the guest list
    /// (`viewerCanSeeAttendees: false`) finds only their own attendance.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn attendees(
        &self,
        ctx: &Context<'_>,
        status: Option<RsvpStatus>,
        arrival: Option<ArrivalState>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Attendance>> {
        let page = pagination::page(first, after)?;
        let only = if self.viewer_sees_attendees(ctx).await? {
            None
        } else {
            Some(ctx.viewer().user_id())
        };
        let filter = GuestListFilter {
            status: status.map(Into::into),
            arrival: arrival.map(Into::into),
            only,
        };
        let paged = attendance::attendees(ctx.db(), &self.model, filter, &page).await?;
        // Records for the whole page in one statement when asked for: a
        // loader would split a long page into several batches.
        let node = ctx.look_ahead().field("edges").field("node");
        let mut records = if node.field("newcomer").exists()
            || node.field("user").field("meetsAttended").exists()
        {
            let users: Vec<Uuid> = paged.rows.iter().map(|(_, (a, _))| a.user_id).collect();
            Some(loaders::attendance_records(ctx.db(), &users).await?)
        } else {
            None
        };
        Ok(pagination::connection(paged, |(a, u)| {
            let record = records
                .as_mut()
                .map(|records| records.remove(&a.user_id).unwrap_or_default());
            let attendance = Attendance::from(a)
                .with_user(u)
                .with_meet(self.model.clone());
            match record {
                Some(record) => attendance.with_record(record),
                None => attendance,
            }
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
    model: Arc<attendances::Model>,
    user: Option<Arc<users::Model>>,
    meet: Option<Arc<meets::Model>>,
    /// Live events: the attendee's record, loaded once per event.
    record: Option<AttendanceRecord>,
}

impl From<attendances::Model> for Attendance {
    fn from(model: attendances::Model) -> Self {
        Self::from(Arc::new(model))
    }
}

impl From<Arc<attendances::Model>> for Attendance {
    fn from(model: Arc<attendances::Model>) -> Self {
        Self {
            model,
            user: None,
            meet: None,
            record: None,
        }
    }
}

impl Attendance {
    pub fn with_user(mut self, user: impl Into<Arc<users::Model>>) -> Self {
        self.user = Some(user.into());
        self
    }

    pub fn with_meet(mut self, meet: impl Into<Arc<meets::Model>>) -> Self {
        self.meet = Some(meet.into());
        self
    }

    pub fn with_record(mut self, record: AttendanceRecord) -> Self {
        self.record = Some(record);
        self
    }

    /// The meet, preloaded or through the request's loader.
    async fn meet_model(&self, ctx: &Context<'_>) -> FieldResult<Arc<meets::Model>> {
        if let Some(meet) = &self.meet {
            return Ok(meet.clone());
        }
        let meet = ctx.loaders().meets.load_one(self.model.meet_id).await?;
        Ok(Arc::new(meet.ok_or_else(|| ApiError::not_found("meet"))?))
    }

    async fn record(&self, ctx: &Context<'_>) -> FieldResult<AttendanceRecord> {
        if let Some(record) = self.record {
            return Ok(record);
        }
        let record = ctx
            .loaders()
            .attendance_records
            .load_one(self.model.user_id)
            .await?;
        Ok(record.unwrap_or_default())
    }

    /// The arrival as it reads now, with the meet it is read against.
    async fn arrival_now(
        &self,
        ctx: &Context<'_>,
    ) -> FieldResult<(attendances::ArrivalState, Arc<meets::Model>)> {
        let meet = self.meet_model(ctx).await?;
        let over = rules::arrivals_over(&meet, Utc::now());
        Ok((rules::arrival_now(self.model.arrival, over), meet))
    }
}

#[Object]
impl Attendance {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    async fn status(&self) -> RsvpStatus {
        self.model.status.into()
    }

    /// Once the meet is over, whoever was here reads LEFT and whoever was on
    /// their way NOT_YET.
    async fn arrival(&self, ctx: &Context<'_>) -> FieldResult<ArrivalState> {
        Ok(self.arrival_now(ctx).await?.0.into())
    }

    /// When an attendee on their way expects to arrive.
    async fn eta_at(&self, ctx: &Context<'_>) -> FieldResult<Option<DateTime<Utc>>> {
        let (arrival, _) = self.arrival_now(ctx).await?;
        Ok(self
            .model
            .eta_at
            .filter(|_| arrival == attendances::ArrivalState::OnMyWay))
    }

    /// When they left; for someone still here when the meet ended, its end.
    async fn left_at(&self, ctx: &Context<'_>) -> FieldResult<Option<DateTime<Utc>>> {
        let (arrival, meet) = self.arrival_now(ctx).await?;
        if arrival != attendances::ArrivalState::Left {
            return Ok(None);
        }
        Ok(Some(self.model.left_at.unwrap_or_else(|| {
            meet.cancelled_at
                .map_or(meet.effective_end_at, |at| at.min(meet.effective_end_at))
        })))
    }

    /// True when the attendee had checked in to no meet that started before
    /// this one.
    async fn newcomer(&self, ctx: &Context<'_>) -> FieldResult<bool> {
        let record = self.record(ctx).await?;
        let starts_at = self.meet_model(ctx).await?.starts_at;
        Ok(record.newcomer_at(starts_at))
    }

    /// The attendee would like the host to introduce them around.
    async fn introduce_me(&self) -> bool {
        self.model.introduce_me
    }

    /// Who or what they came for.
    async fn hoping_to_meet(&self) -> Option<&str> {
        self.model.hoping_to_meet.as_deref()
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
            let user = User::from(users::Model::clone(user));
            return Ok(match self.record {
                Some(record) => user.with_record(record),
                None => user,
            });
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
    /// Who may see the guest list's names.
    #[graphql(default_with = "AttendeeVisibility::Public")]
    pub attendee_visibility: AttendeeVisibility,
    /// Go / no-go: 2 to the capacity; the meet is TENTATIVE until this many
    /// are going. Set with `decideBy`.
    pub minimum_going: Option<i32>,
    /// Go / no-go: after now, before `startsAt`; still short of
    /// `minimumGoing` then, the meet is cancelled.
    pub decide_by: Option<DateTime<Utc>>,
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
            attendee_visibility: input.attendee_visibility.into(),
            minimum_going: input.minimum_going,
            decide_by: input.decide_by,
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
    pub attendee_visibility: MaybeUndefined<AttendeeVisibility>,
    /// While TENTATIVE: `null` (with `decideBy: null`) drops the condition.
    pub minimum_going: MaybeUndefined<i32>,
    pub decide_by: MaybeUndefined<DateTime<Utc>>,
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
            attendee_visibility: patch(input.attendee_visibility).map(|v| v.map(Into::into)),
            minimum_going: patch(input.minimum_going),
            decide_by: patch(input.decide_by),
        }
    }
}

/// What an attendee would like from the night: a field left out stays,
/// `null` clears `hopingToMeet`.
#[derive(InputObject)]
pub struct UpdateAttendanceInput {
    /// Ask the host to introduce you around.
    pub introduce_me: MaybeUndefined<bool>,
    /// Who or what you came for: 0 to 140 characters.
    pub hoping_to_meet: MaybeUndefined<String>,
}

impl UpdateAttendanceInput {
    pub fn wishes(self) -> Result<AttendanceWishes, ApiError> {
        let introduce_me = match self.introduce_me {
            MaybeUndefined::Null => {
                return Err(ApiError::bad_input(
                    "introduceMe",
                    "introduceMe cannot be null",
                ));
            }
            MaybeUndefined::Value(value) => Some(value),
            MaybeUndefined::Undefined => None,
        };
        Ok(AttendanceWishes {
            introduce_me,
            hoping_to_meet: patch(self.hoping_to_meet),
        })
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
