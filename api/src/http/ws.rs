//! `/graphql/ws`: subscriptions over `graphql-transport-ws` and the legacy
//! `graphql-ws` protocol. async-graphql speaks the protocols; around it we add
//! what it lacks: a refused `connection_init` closes with 4403 (it would say
//! 1002), a connection that never initialises is closed after a timeout, one
//! whose access token expires or whose user is suspended or changes role is
//! closed with 4403 so the client reconnects with a fresh token, one whose
//! client stops reading is dropped, and the server pings idle connections.

use std::{
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_graphql::{
    Data,
    http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage},
};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt, future};
use tokio_stream::wrappers::{BroadcastStream, errors::BroadcastStreamRecvError};

use super::AppState;
use crate::{
    auth::{Viewer, viewer},
    graphql::request_data_for_connection,
    live::AccessChange,
};

const INIT_TIMEOUT: Duration = Duration::from_secs(10);
const FORBIDDEN: u16 = 4403;
const TRY_AGAIN_LATER: u16 = 1013;
const ACCESS_CHANGED: &str = "Forbidden: access changed";
const INIT_TIMED_OUT: u16 = 4408;

pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
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
        .on_upgrade(move |socket| serve(state, socket, protocol))
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

fn init_state(init: &Mutex<Init>) -> Init {
    *init.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn serve(state: AppState, socket: WebSocket, protocol: WebSocketProtocols) {
    let (mut sink, stream) = socket.split();
    let input = stream
        .take_while(|message| future::ready(message.is_ok()))
        .filter_map(|message| {
            future::ready(match message {
                Ok(Message::Text(text)) => Some(text.as_bytes().to_vec()),
                Ok(Message::Binary(bytes)) => Some(bytes.to_vec()),
                _ => None,
            })
        });

    let init = Arc::new(Mutex::new(Init::Pending));
    let on_init = {
        let init = init.clone();
        let services = state.services.clone();
        move |payload: serde_json::Value| async move {
            let authorization = ["authorization", "Authorization"].iter().find_map(|key| {
                payload
                    .get(*key)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            });
            let outcome =
                viewer::resolve(&services.db, &services.keys, authorization.as_deref()).await;
            let mut init = init.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match outcome {
                Ok((viewer, token)) => {
                    *init = Init::Accepted {
                        viewer,
                        expires_at: token.map(|t| t.expires_at),
                    };
                    let mut data = Data::default();
                    request_data_for_connection(&mut data, &services, viewer);
                    Ok(data)
                }
                Err(err) => {
                    *init = Init::Refused;
                    Err(err.to_graphql())
                }
            }
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

    // Persistent futures, not made afresh on every message: with tens of
    // thousands of sockets each event would otherwise register and drop as
    // many timers and channel waiters.
    let mut access_changes = BroadcastStream::new(state.services.live.access_changes());
    let config = &state.services.config;
    let started = tokio::time::Instant::now();
    let mut ping =
        tokio::time::interval_at(started + config.ws_ping_interval, config.ws_ping_interval);
    let ping_message = match protocol {
        WebSocketProtocols::GraphQLWS => r#"{"type":"ping"}"#,
        WebSocketProtocols::SubscriptionsTransportWS => r#"{"type":"ka"}"#,
    };
    // The moment this connection must end, if any: no init in time, then the
    // access token it was opened with expiring.
    let deadline = tokio::time::sleep_until(started + INIT_TIMEOUT);
    tokio::pin!(deadline);
    let mut deadline_close = Some((INIT_TIMED_OUT, "Connection initialisation timeout"));
    let mut initialised = false;
    // Set when an access change may have concerned this connection without
    // it being able to tell (during connection_init, or missed by lagging):
    // the viewer is then checked against the database once accepted.
    let mut recheck = false;

    loop {
        let current = init_state(&init);
        if !initialised && !matches!(current, Init::Pending) {
            initialised = true;
            deadline_close = match current {
                Init::Accepted {
                    expires_at: Some(at),
                    ..
                } => {
                    let left = (at - Utc::now()).to_std().unwrap_or_default();
                    deadline.as_mut().reset(tokio::time::Instant::now() + left);
                    Some((FORBIDDEN, "Forbidden: access token expired"))
                }
                _ => None,
            };
        }
        if recheck && let Init::Accepted { viewer, .. } = current {
            recheck = false;
            // Boxed: a query's future inline would make every idle
            // connection's task larger, for a check that rarely runs.
            let verdict = match Box::pin(viewer::still_holds(&state.services.db, viewer)).await {
                Ok(true) => None,
                Ok(false) => Some(close(FORBIDDEN, ACCESS_CHANGED)),
                // Not the client's fault: it may reconnect later.
                Err(err) => {
                    tracing::error!(error = %err, "checking a WebSocket viewer");
                    Some(close(TRY_AGAIN_LATER, "Try again later"))
                }
            };
            if let Some(closing) = verdict {
                let _ = tokio::time::timeout(config.ws_send_timeout, sink.send(closing)).await;
                return;
            }
        }
        let outgoing = tokio::select! {
            message = messages.next() => match (message, init_state(&init)) {
                // A refused connection_init: graphql-transport-ws says 4403
                // Forbidden (async-graphql would say 1002); the legacy
                // protocol's connection_error is followed by the same close.
                (Some(Message::Close(Some(frame))), Init::Refused) if frame.code == 1002 => {
                    close(FORBIDDEN, "Forbidden")
                }
                (None, Init::Refused) => close(FORBIDDEN, "Forbidden"),
                (Some(message), _) => message,
                (None, _) => break,
            },
            () = &mut deadline, if deadline_close.is_some() => match deadline_close.take() {
                Some((code, reason)) => close(code, reason),
                None => break,
            },
            changed = access_changes.next() => match (changed, current) {
                // A suspended or re-roled user's connections close at once;
                // the client reconnects with a fresh token, or is refused.
                (Some(Ok(AccessChange::User(user_id))), Init::Accepted { viewer, .. }) if viewer.user_id() == Some(user_id) => {
                    close(FORBIDDEN, ACCESS_CHANGED)
                }
                (Some(Ok(AccessChange::User(_))), Init::Pending)
                | (Some(Ok(AccessChange::Unknown)), _)
                | (Some(Err(BroadcastStreamRecvError::Lagged(_))), _) => {
                    recheck = true;
                    continue;
                }
                (None, _) => break,
                _ => continue,
            },
            _ = ping.tick() => match current {
                Init::Accepted { .. } => Message::Text(ping_message.into()),
                _ => continue,
            },
        };
        let closing = matches!(outgoing, Message::Close(_));
        // A client that stops reading fills the socket's buffers and then
        // the send waits: past the timeout it is disconnected (it may
        // reconnect and subscribe again), never waited on or buffered for.
        match tokio::time::timeout(config.ws_send_timeout, sink.send(outgoing)).await {
            Ok(Ok(())) if !closing => {}
            Ok(_) => break,
            Err(_) => {
                tracing::debug!("closing a WebSocket whose client stopped reading");
                return;
            }
        }
    }
    let _ = tokio::time::timeout(config.ws_send_timeout, sink.close()).await;
}
