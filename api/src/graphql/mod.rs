//! Schema assembly: the roots merged from the domains, limits, SDL export,
//! and what resolvers read from the context.

pub mod pagination;

use std::sync::Arc;

use async_graphql::{
    Context, Data, Executor, ID, MergedObject, MergedSubscription, Request, Response,
    SDLExportOptions, Schema, SchemaBuilder, dataloader::DataLoader,
    futures_util::stream::BoxStream,
};
use futures::StreamExt;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::{
    accounts::{AccountsMutation, AccountsQuery, loaders::UserLoader},
    admin::{AdminMutation, AdminQuery},
    auth::Viewer,
    error::{ApiError, ApiResult},
    invitations::{InvitationsMutation, InvitationsQuery, rules::RequestAllowance},
    live::{Hub, LiveSubscription},
    meets::{
        MeetsMutation, MeetsQuery,
        loaders::{MeetLoader, ViewerAttendanceLoader},
    },
    state::Services,
    stories::{StoriesMutation, StoriesQuery},
};

#[derive(MergedObject, Default)]
pub struct Query(
    AccountsQuery,
    MeetsQuery,
    InvitationsQuery,
    StoriesQuery,
    AdminQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    AccountsMutation,
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
    Schemas {
        open: ServedSchema(
            builder()
                .data(services.clone())
                .limit_depth(20)
                .limit_complexity(50_000)
                .finish(),
        ),
        closed: ServedSchema(
            builder()
                .data(services)
                .limit_depth(12)
                .limit_complexity(50_000)
                .disable_introspection()
                .disable_suggestions()
                .finish(),
        ),
    }
}

/// The schema as HTTP and WebSocket execute it: every error in a response
/// gets an `extensions.code`. async-graphql's own errors (parse, validation,
/// coercion, limits) come without one; they are all the request's fault, so
/// BAD_USER_INPUT. Done here rather than in a schema extension: with any
/// extension registered, async-graphql sends every field of every response
/// through the extension chain, which costs a subscription event fanned out
/// to 10,000 sockets about a tenth of its time (see bench/).
#[derive(Clone)]
pub struct ServedSchema(AppSchema);

impl Executor for ServedSchema {
    async fn execute(&self, request: Request) -> Response {
        with_codes(self.0.execute(request).await)
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        self.0
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .map(with_codes)
            .boxed()
    }
}

/// The served schema as deterministic SDL (what `schema.graphql` holds).
pub fn sdl() -> String {
    builder().finish().sdl_with_options(
        SDLExportOptions::new()
            .sorted_fields()
            .sorted_arguments()
            .sorted_enum_items(),
    )
}

fn with_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
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
}

impl Loaders {
    pub fn new(db: &DatabaseConnection, viewer: Viewer) -> Self {
        Self {
            users: DataLoader::new(UserLoader(db.clone()), tokio::spawn),
            meets: DataLoader::new(
                MeetLoader {
                    db: db.clone(),
                    viewer,
                },
                tokio::spawn,
            ),
            viewer_attendance: viewer.user_id().map(|user_id| {
                DataLoader::new(
                    ViewerAttendanceLoader {
                        db: db.clone(),
                        user_id,
                    },
                    tokio::spawn,
                )
            }),
        }
    }
}

/// Per-request context: the viewer, the request's loaders and what it may
/// still invite.
pub fn request_data(request: Request, services: &Services, viewer: Viewer) -> Request {
    request
        .data(viewer)
        .data(Loaders::new(&services.db, viewer))
        .data(RequestAllowance::default())
}

/// Per-connection context of a WebSocket (an operation sent over it shares
/// the connection's invitation allowance: async-graphql gives an operation
/// no data of its own there).
pub fn request_data_for_connection(data: &mut Data, services: &Services, viewer: Viewer) {
    data.insert(viewer);
    data.insert(Loaders::new(&services.db, viewer));
    data.insert(RequestAllowance::default());
}

/// What resolvers read from the context.
pub trait ContextExt {
    fn services(&self) -> &Services;
    fn viewer(&self) -> Viewer;
    fn loaders(&self) -> &Loaders;
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

/// An opaque ID from a client, as the UUID it stands for; anything else names
/// no row, hence NOT_FOUND.
pub fn parse_id(id: &ID, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::not_found(what))
}
