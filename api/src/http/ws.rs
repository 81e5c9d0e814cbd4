//! `/graphql/ws`: subscriptions over `graphql-transport-ws` and the legacy
//! `graphql-ws` protocol. async-graphql speaks the protocols; around it we add
//! what it lacks: a refused `connection_init` closes with 4403 (it would say
//! 1002), a connection that never initialises is closed after a timeout, one
//! whose access token expires or whose user is suspended or changes role is
//! closed with 4403 so the client reconnects with a fresh token, one whose
//! client stops reading is dropped, and the server pings idle connections.

use std::{
    net::{IpAddr, SocketAddr},
    pin::Pin,
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_graphql::{
    Data,
    http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage},
};
use axum::{
    Extension,
    extract::{
        ConnectInfo, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt, future, stream::SplitSink};
use tokio::time::{Instant, Interval, Sleep};
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};

use super::{AppState, client_address};
use crate::{
    auth::{Viewer, viewer},
    config::Config,
    graphql::{SubscriptionSlots, request_data_for_connection},
    live::AccessChange,
    state::Services,
};

const INIT_TIMEOUT: Duration = Duration::from_secs(10);
const MESSAGE_TOO_BIG: u16 = 1009;
const UNAUTHORIZED: u16 = 4401;
const FORBIDDEN: u16 = 4403;
const TRY_AGAIN_LATER: u16 = 1013;
const ACCESS_CHANGED: &str = "Forbidden: access changed";
const INIT_TIMED_OUT: u16 = 4408;

pub async fn upgrade(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let client = client_address(
        &state.services.config,
        &headers,
        connection.as_ref().map(|Extension(info)| info),
    );
    // The first subprotocol the client offers that we speak.
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| WebSocketProtocols::from_str(p.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "offer the graphql-transport-ws or graphql-ws subprotocol",
        )
            .into_response();
    };
    // Small buffers: tens of thousands of mostly idle subscribers each hold
    // them (tungstenite's defaults are 128 KiB apiece). Clients send little
    // (a subscribe message is well under 1 KiB; the buffer grows for a larger
    // one). A client that stops reading fills its bounded write buffer and is
    // dropped.
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(state, socket, protocol, client))
}

/// Where the connection stands after `connection_init`.
#[derive(Clone, Copy)]
enum Init {
    Pending,
    Accepted {
        viewer: Viewer,
        expires_at: Option<DateTime<Utc>>,
    },
    Refused,
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn serve(
    state: AppState,
    socket: WebSocket,
    protocol: WebSocketProtocols,
    client: Option<IpAddr>,
) {
    let (sink, stream) = socket.split();
    // A message over the size limit ends the input with an error; the close
    // then says 1009 (Message Too Big), as RFC 6455 asks.
    let oversized = Arc::new(AtomicBool::new(false));
    let input = stream
        .take_while({
            let oversized = oversized.clone();
            move |message| {
                if let Err(err) = message
                    && too_big(err)
                {
                    oversized.store(true, Ordering::Relaxed);
                }
                future::ready(message.is_ok())
            }
        })
        .filter_map(|message| {
            future::ready(match message {
                Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });

    let init = Arc::new(Mutex::new(Init::Pending));
    let slots = SubscriptionSlots::new(state.services.config.max_subscriptions_per_socket);
    let on_init = {
        let init = init.clone();
        let services = state.services.clone();
        let slots = slots.clone();
        move |payload: serde_json::Value| {
            connection_init(services, init, client, slots.clone(), payload)
        }
    };

    // The viewer is known only after connection_init, so subscriptions get the
    // schema anonymous callers get (no introspection in production).
    let schema = state
        .schemas
        .for_viewer(Viewer::Anonymous, state.services.config.is_production())
        .clone();
    let messages =
        async_graphql::http::WebSocket::new(schema, input, protocol).on_connection_init(on_init);
    let messages = messages.map(|message| match message {
        WsMessage::Text(text) => Message::Text(text.into()),
        WsMessage::Close(code, reason) => Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })),
    });
    futures::pin_mut!(messages);

    let mut open = OpenSocket::counted(slots, client);
    let mut socket = Socket::new(&state.services, sink, init, protocol, oversized);
    loop {
        socket.settle_init();
        if let Some(closing) = socket.recheck_viewer().await {
            open.closing(&closing);
            socket.send(closing).await;
            return;
        }
        let step = tokio::select! {
            message = messages.next() => socket.on_protocol_message(message),
            () = &mut socket.deadline, if socket.deadline_close.is_some() => socket.on_deadline(),
            changed = socket.access_changes.next() => socket.on_access_change(changed),
            _ = socket.ping.tick() => socket.on_ping(),
        };
        match step {
            Step::Wait => {}
            Step::Send(message) => {
                let closing = matches!(message, Message::Close(_));
                open.closing(&message);
                if !socket.send(message).await {
                    return;
                }
                if closing {
                    break;
                }
            }
            Step::End => break,
        }
    }
    socket.close().await;
}

/// `connection_init`: resolves the viewer from the payload's token, records
/// the outcome for the socket, and gives the connection its context.
async fn connection_init(
    services: Services,
    init: Arc<Mutex<Init>>,
    client: Option<IpAddr>,
    slots: SubscriptionSlots,
    payload: serde_json::Value,
) -> async_graphql::Result<Data> {
    let authorization = ["authorization", "Authorization"].iter().find_map(|key| {
        payload
            .get(*key)
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    });
    let outcome = viewer::resolve(&services.db, &services.keys, authorization.as_deref()).await;
    let mut init = init.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match outcome {
        Ok((viewer, token)) => {
            *init = Init::Accepted {
                viewer,
                expires_at: token.map(|t| t.expires_at),
            };
            let mut data = Data::default();
            request_data_for_connection(&mut data, &services, viewer, client, slots);
            Ok(data)
        }
        Err(err) => {
            *init = Init::Refused;
            Err(err.to_graphql())
        }
    }
}

/// Whether a read failed on the message size limit.
fn too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

/// What the socket does after an event.
enum Step {
    Send(Message),
    Wait,
    End,
}

/// One WebSocket's state beside async-graphql's protocol handling: its
/// viewer, its deadline, its keepalive and the access changes it watches.
/// Its timers and channel waiter persist across messages: with tens of
/// thousands of sockets each event would otherwise register and drop as many.
struct Socket<'a> {
    config: &'a Config,
    db: &'a sea_orm::DatabaseConnection,
    sink: SplitSink<WebSocket, Message>,
    init: Arc<Mutex<Init>>,
    initialised: bool,
    /// The moment this connection must end, if any: no init in time, then the
    /// access token it was opened with expiring; and how it then closes.
    deadline: Pin<Box<Sleep>>,
    deadline_close: Option<(u16, &'static str)>,
    access_changes: BroadcastStream<AccessChange>,
    /// Set when an access change may have concerned this connection without
    /// it being able to tell (during connection_init, or missed by lagging):
    /// the viewer is then checked against the database once accepted.
    recheck: bool,
    /// Set when the client sent a message over the size limit.
    oversized: Arc<AtomicBool>,
    ping: Interval,
    ping_message: &'static str,
}

impl<'a> Socket<'a> {
    fn new(
        services: &'a Services,
        sink: SplitSink<WebSocket, Message>,
        init: Arc<Mutex<Init>>,
        protocol: WebSocketProtocols,
        oversized: Arc<AtomicBool>,
    ) -> Self {
        let config = &services.config;
        let started = Instant::now();
        Self {
            config,
            db: &services.db,
            sink,
            init,
            initialised: false,
            deadline: Box::pin(tokio::time::sleep_until(started + INIT_TIMEOUT)),
            deadline_close: Some((INIT_TIMED_OUT, "Connection initialisation timeout")),
            access_changes: BroadcastStream::new(services.live.access_changes()),
            recheck: false,
            oversized,
            ping: tokio::time::interval_at(
                started + config.ws_ping_interval,
                config.ws_ping_interval,
            ),
            ping_message: match protocol {
                WebSocketProtocols::GraphQLWS => r#"{"type":"ping"}"#,
                WebSocketProtocols::SubscriptionsTransportWS => r#"{"type":"ka"}"#,
            },
        }
    }

    fn init(&self) -> Init {
        *self
            .init
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Once connection_init is settled, the deadline becomes the access
    /// token's expiry (or none).
    fn settle_init(&mut self) {
        if self.initialised {
            return;
        }
        let current = self.init();
        if matches!(current, Init::Pending) {
            return;
        }
        self.initialised = true;
        self.deadline_close = match current {
            Init::Accepted {
                expires_at: Some(at),
                ..
            } => {
                let left = (at - Utc::now()).to_std().unwrap_or_default();
                self.deadline.as_mut().reset(Instant::now() + left);
                Some((FORBIDDEN, "Forbidden: access token expired"))
            }
            _ => None,
        };
    }

    /// Checks the viewer against the database when an access change may
    /// have been missed; the close to send if it no longer holds.
    async fn recheck_viewer(&mut self) -> Option<Message> {
        let Init::Accepted { viewer, .. } = self.init() else {
            return None;
        };
        if !std::mem::take(&mut self.recheck) {
            return None;
        }
        // Boxed: a query's future inline would make every idle connection's
        // task larger, for a check that rarely runs.
        match Box::pin(viewer::still_holds(self.db, viewer)).await {
            Ok(true) => None,
            Ok(false) => Some(close(FORBIDDEN, ACCESS_CHANGED)),
            // Not the client's fault: it may reconnect later.
            Err(err) => {
                tracing::error!(error = %err, "checking a WebSocket viewer");
                Some(close(TRY_AGAIN_LATER, "Try again later"))
            }
        }
    }

    /// What async-graphql's protocol handling sends.
    fn on_protocol_message(&self, message: Option<Message>) -> Step {
        if message.is_none() && self.oversized.load(Ordering::Relaxed) {
            return Step::Send(close(MESSAGE_TOO_BIG, "Message too big"));
        }
        match (message, self.init()) {
            // A refused connection_init: graphql-transport-ws says 4403
            // Forbidden (async-graphql would say 1002); the legacy protocol's
            // connection_error is followed by the same close.
            (Some(Message::Close(Some(frame))), Init::Refused) if frame.code == 1002 => {
                Step::Send(close(FORBIDDEN, "Forbidden"))
            }
            (None, Init::Refused) => Step::Send(close(FORBIDDEN, "Forbidden")),
            // A subscribe before connection_init: graphql-transport-ws says
            // 4401 Unauthorized (async-graphql would say 1011).
            (Some(Message::Close(Some(frame))), Init::Pending) if frame.code == 1011 => {
                Step::Send(close(UNAUTHORIZED, "Unauthorized"))
            }
            (Some(message), _) => Step::Send(message),
            (None, _) => Step::End,
        }
    }

    fn on_deadline(&mut self) -> Step {
        match self.deadline_close.take() {
            Some((code, reason)) => Step::Send(close(code, reason)),
            None => Step::End,
        }
    }

    fn on_access_change(
        &mut self,
        changed: Option<Result<AccessChange, BroadcastStreamRecvError>>,
    ) -> Step {
        match (changed, self.init()) {
            // A suspended or re-roled user's connections close at once; the
            // client reconnects with a fresh token, or is refused.
            (Some(Ok(AccessChange::User(user_id))), Init::Accepted { viewer, .. })
                if viewer.user_id() == Some(user_id) =>
            {
                Step::Send(close(FORBIDDEN, ACCESS_CHANGED))
            }
            (Some(Ok(AccessChange::User(_))), Init::Pending)
            | (Some(Ok(AccessChange::Unknown)), _)
            | (Some(Err(BroadcastStreamRecvError::Lagged(_))), _) => {
                self.recheck = true;
                Step::Wait
            }
            (None, _) => Step::End,
            _ => Step::Wait,
        }
    }

    fn on_ping(&self) -> Step {
        match self.init() {
            Init::Accepted { .. } => Step::Send(Message::Text(self.ping_message.into())),
            _ => Step::Wait,
        }
    }

    /// Sends a message; `false` when the connection is done. A client that
    /// stops reading fills the socket's buffers and then the send waits: past
    /// the timeout it is disconnected (it may reconnect and subscribe again),
    /// never waited on or buffered for.
    async fn send(&mut self, message: Message) -> bool {
        match tokio::time::timeout(self.config.ws_send_timeout, self.sink.send(message)).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                tracing::debug!("closing a WebSocket whose client stopped reading");
                false
            }
        }
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(self.config.ws_send_timeout, self.sink.close()).await;
    }
}

/// An open WebSocket as the metrics and the log see it: counted up when
/// made, and when dropped (however the connection ends) counted down and
/// logged in one line with its duration, subscriptions and close code.
struct OpenSocket {
    opened: Instant,
    slots: SubscriptionSlots,
    client: Option<IpAddr>,
    /// The close code the server sent, if it closed the connection.
    close_code: Option<u16>,
}

impl OpenSocket {
    fn counted(slots: SubscriptionSlots, client: Option<IpAddr>) -> Self {
        metrics::gauge!("tweetmeet_websockets_open").increment(1.0);
        Self {
            opened: Instant::now(),
            slots,
            client,
            close_code: None,
        }
    }

    /// Notes the code of a close frame the server is sending.
    fn closing(&mut self, message: &Message) {
        if let Message::Close(Some(frame)) = message {
            self.close_code = Some(frame.code);
        }
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        metrics::gauge!("tweetmeet_websockets_open").decrement(1.0);
        tracing::info!(
            target: "tweetmeet::access",
            path = "/graphql/ws",
            duration_secs = format_args!("{:.1}", self.opened.elapsed().as_secs_f64()),
            subscriptions = self.slots.started(),
            close_code = self.close_code.map_or_else(|| "-".to_owned(), |code| code.to_string()),
            client = self.client.map(|c| c.to_string()).as_deref().unwrap_or("-"),
            "websocket closed"
        );
    }
}
