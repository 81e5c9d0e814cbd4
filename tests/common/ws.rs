//! A WebSocket GraphQL client speaking either protocol, as the web frontend does.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws` (the `graphql-ws` npm client).
    TransportWs,
    /// The legacy `graphql-ws` subprotocol (subscriptions-transport-ws).
    LegacyWs,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::TransportWs => "graphql-transport-ws",
            Self::LegacyWs => "graphql-ws",
        }
    }
}

pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: Protocol,
    /// Keepalive pings (`ping`, or the legacy `ka`) received so far.
    pub keepalives: usize,
}

/// What the server did instead of acknowledging.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Closed(u16),
    ConnectionError(Value),
}

impl WsClient {
    pub async fn connect(url: &str, protocol: Protocol) -> Self {
        let request = Self::request(url, protocol);
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("ws connect");
        Self::accepted(socket, &response, protocol)
    }

    /// A client whose socket takes little in before the server must wait:
    /// the kernel's receive buffer set to about `bytes`.
    pub async fn connect_with_receive_buffer(url: &str, protocol: Protocol, bytes: u32) -> Self {
        let request = Self::request(url, protocol);
        let authority = request.uri().authority().expect("host:port").as_str();
        let address = tokio::net::lookup_host(authority)
            .await
            .expect("address")
            .next()
            .expect("an address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        let stream = socket.connect(address).await.expect("tcp connect");
        let (socket, response) =
            tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
                .await
                .expect("ws handshake");
        Self::accepted(socket, &response, protocol)
    }

    fn request(
        url: &str,
        protocol: Protocol,
    ) -> tokio_tungstenite::tungstenite::handshake::client::Request {
        let mut request = url.into_client_request().expect("ws request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(protocol.name()),
        );
        request
    }

    fn accepted(
        socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
        response: &tokio_tungstenite::tungstenite::handshake::client::Response,
        protocol: Protocol,
    ) -> Self {
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol.name()),
            "the server picks the client's subprotocol"
        );
        Self {
            socket,
            protocol,
            keepalives: 0,
        }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("ws send");
    }

    /// Sends `connection_init` with the token; waits for the ack.
    pub async fn init(&mut self, token: Option<&str>) -> Result<(), Refusal> {
        let payload = match token {
            Some(token) => json!({ "authorization": format!("Bearer {token}") }),
            None => json!({}),
        };
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        loop {
            match self.receive(Duration::from_secs(10)).await {
                Some(Ok(message)) => match message["type"].as_str() {
                    Some("connection_ack") => return Ok(()),
                    Some("connection_error") => {
                        return Err(Refusal::ConnectionError(message["payload"].clone()));
                    }
                    _ => continue,
                },
                Some(Err(code)) => return Err(Refusal::Closed(code)),
                None => panic!("no answer to connection_init"),
            }
        }
    }

    pub async fn subscribe(
        &mut self,
        id: &str,
        query: &str,
        operation_name: &str,
        variables: Value,
    ) {
        self.subscribe_with(
            id,
            json!({ "query": query, "operationName": operation_name, "variables": variables }),
        )
        .await;
    }

    /// Subscribes with the payload as given (a persisted query's hash, say).
    pub async fn subscribe_with(&mut self, id: &str, payload: Value) {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::LegacyWs => "start",
        };
        self.send(json!({ "id": id, "type": kind, "payload": payload }))
            .await;
    }

    /// The next protocol message (answering pings), `Err(close code)` when
    /// the server closed, `None` on timeout.
    pub async fn receive(&mut self, timeout: Duration) -> Option<Result<Value, u16>> {
        loop {
            let message = tokio::time::timeout(timeout, self.socket.next())
                .await
                .ok()?;
            match message {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    match value["type"].as_str() {
                        Some("ping") => {
                            self.keepalives += 1;
                            self.send(json!({ "type": "pong" })).await;
                        }
                        Some("ka") => self.keepalives += 1,
                        _ => return Some(Ok(value)),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Some(Err(frame.map(|f| u16::from(f.code)).unwrap_or(1005)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Some(Err(1006)),
            }
        }
    }

    /// The next result of subscription `id`: its payload (`data`/`errors`).
    pub async fn next_payload(&mut self, id: &str) -> Value {
        loop {
            match self.receive(Duration::from_secs(10)).await {
                Some(Ok(message)) if message["id"] == id => match message["type"].as_str() {
                    Some("next" | "data") => return message["payload"].clone(),
                    Some("error") => return json!({ "errors": message["payload"] }),
                    Some("complete") => panic!("subscription {id} completed"),
                    _ => continue,
                },
                Some(Ok(_)) => continue,
                Some(Err(code)) => panic!("socket closed with {code} while waiting for {id}"),
                None => panic!("no event for subscription {id} within 10 s"),
            }
        }
    }

    /// Asserts nothing arrives for `id` within `wait`.
    pub async fn expect_silence(&mut self, id: &str, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.receive(left).await {
                Some(Ok(message)) if message["id"] == id => {
                    panic!("unexpected message for {id}: {message}")
                }
                Some(Ok(_)) => continue,
                Some(Err(code)) => panic!("socket closed with {code}"),
                None => return,
            }
        }
    }
}
