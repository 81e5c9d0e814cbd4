//! Schema assembly: the roots merged from the domains, limits, SDL export,
//! and what resolvers read from the context.

pub mod limits;
mod literals;
pub mod pagination;
pub mod persisted;

use std::{
    any::TypeId,
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_graphql::{
    Context, Data, Executor, ID, MergedObject, MergedSubscription, Name, Request, Response,
    SDLExportOptions, Schema, SchemaBuilder, ServerError, Variables,
    dataloader::DataLoader,
    futures_util::stream::BoxStream,
    parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet},
};
use futures::StreamExt;
use persisted::PersistedQueries;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::{
    accounts::{AccountsMutation, AccountsQuery, loaders::UserLoader},
    admin::{AdminMutation, AdminQuery},
    auth::Viewer,
    devices::{DevicesMutation, DevicesQuery},
    error::{ApiError, ApiResult},
    invitations::{InvitationsMutation, InvitationsQuery, rules::RequestAllowance},
    live::{Hub, LiveSubscription},
    meets::{
        MeetsMutation, MeetsQuery,
        loaders::{
            AttendanceRecordLoader, MeetLoader, NewcomerCountLoader, ViewerAttendanceLoader,
        },
    },
    state::Services,
    stories::{StoriesMutation, StoriesQuery},
    throttle::Action,
};

#[derive(MergedObject, Default)]
pub struct Query(
    AccountsQuery,
    DevicesQuery,
    MeetsQuery,
    InvitationsQuery,
    StoriesQuery,
    AdminQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    AccountsMutation,
    DevicesMutation,
    MeetsMutation,
    InvitationsMutation,
    StoriesMutation,
    AdminMutation,
);

#[derive(MergedSubscription, Default)]
pub struct Subscription(LiveSubscription);

pub type AppSchema = Schema<Query, Mutation, Subscription>;

fn builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    // async-graphql's own text describes its Rust type ("Implement the
    // DateTime<Utc> scalar"), which codegen tools copy into client code.
    .override_output_type_description::<chrono::DateTime<chrono::Utc>>(
        "A point in time: an RFC 3339 date-time with its offset, such as \
         2026-11-26T19:00:00Z. Answers are in UTC; inputs may carry any offset.",
    )
}

/// The two configurations of the schema. Depth and complexity limits apply
/// to both; the open one's are wide enough for GraphiQL's introspection query
/// (async-graphql issue 1696), the closed one's for the contract's deepest
/// operation (depth 7) with room to spare. Connections count their page size
/// (see `page_complexity`): the contract's largest operation, MyMeets at 100
/// a page, fits; three nested pages of 100 (a million rows) do not.
#[derive(Clone)]
pub struct Schemas {
    /// Introspection and "did you mean" suggestions: for everyone in
    /// development, for administrators only in production.
    pub open: ServedSchema,
    /// Neither: for everyone else in production.
    pub closed: ServedSchema,
    /// Automatic persisted queries, shared by both and by every transport.
    pub persisted: Arc<PersistedQueries>,
}

impl Schemas {
    /// The schema that serves this viewer.
    pub fn for_viewer(&self, viewer: Viewer, production: bool) -> &ServedSchema {
        if production && !viewer.is_admin() {
            &self.closed
        } else {
            &self.open
        }
    }
}

pub fn build(services: Services) -> Schemas {
    let persisted = Arc::new(PersistedQueries::new(services.config.persisted_query_bytes));
    Schemas {
        open: ServedSchema {
            schema: builder()
                .data(services.clone())
                .limit_depth(20)
                .limit_complexity(50_000)
                .finish(),
            persisted: persisted.clone(),
        },
        closed: ServedSchema {
            schema: builder()
                .data(services)
                .limit_depth(12)
                .limit_complexity(50_000)
                .disable_introspection()
                .disable_suggestions()
                .finish(),
            persisted: persisted.clone(),
        },
        persisted,
    }
}

/// The schema as HTTP and WebSocket execute it: every error in a response
/// gets an `extensions.code`. async-graphql's own errors (parse, validation,
/// coercion, limits) come without one; they are all the request's fault, so
/// BAD_USER_INPUT. Done here rather than in a schema extension: with any
/// extension registered, async-graphql sends every field of every response
/// through the extension chain, which costs a subscription event fanned out
/// to 10,000 sockets about a tenth of its time (see bench/).
/// A persisted query named by hash is filled in first (HTTP has done so
/// already; this serves WebSocket subscribes).
#[derive(Clone)]
pub struct ServedSchema {
    schema: AppSchema,
    persisted: Arc<PersistedQueries>,
}

impl ServedSchema {
    /// The persisted query filled in, then the checks before validation: a
    /// response instead when either refuses the request.
    fn refuse(&self, request: &mut Request) -> Option<Response> {
        if let Err(err) = self.persisted.resolve(request) {
            return Some(Response::from_errors(vec![server_error(&err)]));
        }
        refuse_before_validation(request)
    }
}

impl Executor for ServedSchema {
    async fn execute(&self, mut request: Request) -> Response {
        if let Some(refusal) = self.refuse(&mut request) {
            return refusal;
        }
        with_codes(self.schema.execute(request).await)
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        if let Some(refusal) = self.refuse(&mut request) {
            return futures::stream::once(async { refusal }).boxed();
        }
        let session_data = session_data.unwrap_or_default();
        // Held for as long as the stream lives (a socket's subscription).
        let slot = match session_data.get(&TypeId::of::<SubscriptionSlots>()) {
            Some(slots) => match slots
                .downcast_ref::<SubscriptionSlots>()
                .map(SubscriptionSlots::take)
            {
                Some(None) => {
                    let refusal = ApiError::bad_input(
                        "subscribe",
                        "this socket holds as many subscriptions as it may; complete one first",
                    );
                    let response = Response::from_errors(vec![server_error(&refusal)]);
                    return futures::stream::once(async { response }).boxed();
                }
                slot => slot.flatten(),
            },
            None => None,
        };
        self.schema
            .execute_stream_with_session_data(request, session_data)
            .map(move |response| {
                let _held = &slot;
                with_codes(response)
            })
            .boxed()
    }
}

/// Parses the request (async-graphql reuses the parse) and refuses, before
/// anything walks the document, one whose expansion is too large, that
/// writes an enum value as a string, or whose operation lacks a required
/// variable (async-graphql does not notice one
/// used only under `@skip`/`@include`). A document that does not parse is
/// left to the schema to report.
fn refuse_before_validation(request: &mut Request) -> Option<Response> {
    if request.query.len() > limits::MAX_DOCUMENT_BYTES {
        let message = format!(
            "the query document is over {} bytes; send large values as variables",
            limits::MAX_DOCUMENT_BYTES
        );
        return Some(with_codes(Response::from_errors(vec![ServerError::new(
            message, None,
        )])));
    }
    let variables = std::mem::take(&mut request.variables);
    let operation_name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let refusal = match limits::measure(document, &mut 0) {
        Err(refusal) => Some(refusal.message()),
        Ok(_) => literals::enum_written_as_string(document)
            .or_else(|| missing_variable(document, operation_name.as_deref(), &variables)),
    };
    request.variables = variables;
    let message = refusal?;
    Some(with_codes(Response::from_errors(vec![ServerError::new(
        message, None,
    )])))
}

/// An `ApiError` as an error of the request itself (no path).
pub(crate) fn server_error(error: &ApiError) -> ServerError {
    let error = error.to_graphql();
    let mut server_error = ServerError::new(error.message, None);
    server_error.extensions = error.extensions;
    server_error
}

/// The subscriptions one WebSocket may hold: one WebSocket held 20,000
/// (400 MB). Put in the connection's data at `connection_init`.
#[derive(Clone)]
pub struct SubscriptionSlots {
    held: Arc<AtomicUsize>,
    /// Every subscription the socket started, for its closing log line.
    started: Arc<AtomicUsize>,
    limit: usize,
}

impl SubscriptionSlots {
    pub fn new(limit: usize) -> Self {
        Self {
            held: Arc::default(),
            started: Arc::default(),
            limit,
        }
    }

    /// How many subscriptions the socket has started.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// A slot for one more subscription, if the socket has one free; it is
    /// freed when the subscription's stream ends.
    fn take(&self) -> Option<SubscriptionSlot> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.limit).then_some(held + 1)
            })
            .ok()
            .map(|_| {
                self.started.fetch_add(1, Ordering::Relaxed);
                metrics::gauge!("tweetmeet_subscriptions_active").increment(1.0);
                SubscriptionSlot(self.held.clone())
            })
    }
}

struct SubscriptionSlot(Arc<AtomicUsize>);

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("tweetmeet_subscriptions_active").decrement(1.0);
    }
}

/// A required variable (non-null, no default) that the request leaves out
/// or sends as null, among those `@skip`/`@include` read: async-graphql
/// drops skipped selections without noticing; every other use of a missing
/// variable it reports itself, after validation, as the spec orders.
fn missing_variable(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Option<String> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), _) => operation,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name)?,
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next()?
        }
        _ => return None,
    };
    let mut conditions = Vec::new();
    let sets = document
        .fragments
        .values()
        .map(|fragment| &fragment.node.selection_set)
        .chain(std::iter::once(&operation.node.selection_set));
    for set in sets {
        condition_variables(&set.node, &mut conditions);
    }
    operation
        .node
        .variable_definitions
        .iter()
        .find(|definition| {
            let definition = &definition.node;
            !definition.var_type.node.nullable
                && definition.default_value.is_none()
                && conditions.contains(&&definition.name.node)
                && variables
                    .get(definition.name.node.as_str())
                    .is_none_or(|value| *value == async_graphql::Value::Null)
        })
        .map(|definition| {
            format!(
                "variable ${} of required type {} was not provided",
                definition.node.name.node, definition.node.var_type.node
            )
        })
}

/// The variables `@skip(if:)` and `@include(if:)` read in a selection set,
/// its fragments' spreads not followed (each fragment is walked on its own).
fn condition_variables<'a>(set: &'a SelectionSet, found: &mut Vec<&'a Name>) {
    for selection in &set.items {
        let (directives, inner) = match &selection.node {
            Selection::Field(field) => (&field.node.directives, Some(&field.node.selection_set)),
            Selection::FragmentSpread(spread) => (&spread.node.directives, None),
            Selection::InlineFragment(inline) => {
                (&inline.node.directives, Some(&inline.node.selection_set))
            }
        };
        for directive in directives {
            if matches!(directive.node.name.node.as_str(), "skip" | "include") {
                for (_, value) in &directive.node.arguments {
                    if let async_graphql_value::Value::Variable(name) = &value.node {
                        found.push(name);
                    }
                }
            }
        }
        if let Some(inner) = inner {
            condition_variables(&inner.node, found);
        }
    }
}

/// The served schema as deterministic SDL (what `schema.graphql` holds).
pub fn sdl() -> String {
    builder().finish().sdl_with_options(
        SDLExportOptions::new()
            // DateTime's RFC 3339, which codegen tools map from.
            .include_specified_by()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}

/// At most this many errors in a response, each message at most this long:
/// errors echo input (a value, a field name), and a hostile request must not
/// get its megabyte back, nor one error per fragment of ten thousand.
const MAX_ERRORS: usize = 20;
const MAX_ERROR_MESSAGE: usize = 300;

fn with_codes(mut response: Response) -> Response {
    response.errors.truncate(MAX_ERRORS);
    for error in &mut response.errors {
        if error.message.len() > MAX_ERROR_MESSAGE {
            let mut end = MAX_ERROR_MESSAGE;
            while !error.message.is_char_boundary(end) {
                end -= 1;
            }
            error.message.truncate(end);
            error.message.push('…');
        }
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", "BAD_USER_INPUT");
        }
    }
    response
}

/// Batch loaders, made per request (or per WebSocket connection) and never
/// shared: a shared loader could serve one viewer's rows to another. They
/// batch without caching, so a long-lived connection never reads stale rows.
pub struct Loaders {
    pub users: DataLoader<UserLoader>,
    pub meets: DataLoader<MeetLoader>,
    /// `None` for anonymous viewers, who have no attendance.
    pub viewer_attendance: Option<DataLoader<ViewerAttendanceLoader>>,
    pub attendance_records: DataLoader<AttendanceRecordLoader>,
    pub newcomer_counts: DataLoader<NewcomerCountLoader>,
}

impl Loaders {
    pub fn new(db: &DatabaseConnection, viewer: Viewer) -> Self {
        Self {
            users: DataLoader::new(UserLoader(db.clone()), spawn_in_request),
            meets: DataLoader::new(
                MeetLoader {
                    db: db.clone(),
                    viewer,
                },
                spawn_in_request,
            ),
            viewer_attendance: viewer.user_id().map(|user_id| {
                DataLoader::new(
                    ViewerAttendanceLoader {
                        db: db.clone(),
                        user_id,
                    },
                    spawn_in_request,
                )
            }),
            attendance_records: DataLoader::new(AttendanceRecordLoader(db.clone()), tokio::spawn),
            newcomer_counts: DataLoader::new(NewcomerCountLoader(db.clone()), tokio::spawn),
        }
    }
}

/// Runs a loader's batch as part of the request whose resolver asked for it
/// first: its span (the trace, when traces are on) comes along. With no span
/// enabled this is a plain spawn.
fn spawn_in_request(batch: futures::future::BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> {
    use tracing::Instrument;
    tokio::spawn(batch.in_current_span())
}

/// The client's address, for rate limits; `None` when unknown.
#[derive(Clone, Copy)]
pub struct ClientAddress(pub Option<IpAddr>);

/// Per-request context: the viewer, the client's address, the request's
/// loaders and what it may still invite.
pub fn request_data(
    request: Request,
    services: &Services,
    viewer: Viewer,
    client: Option<IpAddr>,
) -> Request {
    request
        .data(viewer)
        .data(ClientAddress(client))
        .data(Loaders::new(&services.db, viewer))
        .data(RequestAllowance::default())
}

/// Per-connection context of a WebSocket (an operation sent over it shares
/// the connection's invitation allowance: async-graphql gives an operation
/// no data of its own there).
pub fn request_data_for_connection(
    data: &mut Data,
    services: &Services,
    viewer: Viewer,
    client: Option<IpAddr>,
    slots: SubscriptionSlots,
) {
    data.insert(viewer);
    data.insert(ClientAddress(client));
    data.insert(Loaders::new(&services.db, viewer));
    data.insert(slots);
    data.insert(RequestAllowance::default());
}

/// What resolvers read from the context.
pub trait ContextExt {
    fn services(&self) -> &Services;
    fn viewer(&self) -> Viewer;
    fn loaders(&self) -> &Loaders;
    fn client_address(&self) -> Option<IpAddr>;
    fn invitation_allowance(&self) -> &RequestAllowance;

    fn db(&self) -> &DatabaseConnection {
        &self.services().db
    }

    fn live(&self) -> &Hub {
        &self.services().live
    }
}

impl ContextExt for Context<'_> {
    fn services(&self) -> &Services {
        // Put there by `build`: every schema this crate serves has it.
        self.data_unchecked::<Services>()
    }

    fn viewer(&self) -> Viewer {
        self.data_opt::<Viewer>()
            .copied()
            .unwrap_or(Viewer::Anonymous)
    }

    fn client_address(&self) -> Option<IpAddr> {
        self.data_opt::<ClientAddress>().and_then(|c| c.0)
    }

    fn loaders(&self) -> &Loaders {
        // Put there by `request_data` / `request_data_for_connection`, the
        // only ways requests reach the schema.
        self.data_unchecked::<Loaders>()
    }

    fn invitation_allowance(&self) -> &RequestAllowance {
        // Put there with the loaders.
        self.data_unchecked::<RequestAllowance>()
    }
}

/// Counts one call of a rate-limited action by this request's client (see
/// `throttle`): resolvers call it first, once per call, aliases included.
pub async fn throttle(ctx: &Context<'_>, action: Action, account: Option<&str>) -> ApiResult<()> {
    ctx.services()
        .throttle
        .check(action, ctx.client_address(), account)
        .await
}

/// Whether the field being resolved was given its argument `name`. Per the
/// GraphQL specification, an argument set to a variable the request left
/// out (with no default) was not given; async-graphql reads it as `null`,
/// which for a nullable argument where `null` means something (turning
/// reminders off) would act on what the client never said.
pub fn argument_given(ctx: &Context<'_>, name: &str) -> bool {
    match ctx.item.node.get_argument(name).map(|value| &value.node) {
        None => false,
        Some(async_graphql_value::Value::Variable(variable)) => {
            ctx.query_env.variables.contains_key(variable)
                || ctx
                    .query_env
                    .operation
                    .node
                    .variable_definitions
                    .iter()
                    .any(|d| d.node.name.node == *variable && d.node.default_value.is_some())
        }
        Some(_) => true,
    }
}

/// An opaque ID from a client, as the UUID it stands for; anything else names
/// no row, hence NOT_FOUND.
pub fn parse_id(id: &ID, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::not_found(what))
}
