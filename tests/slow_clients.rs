//! Clients that hold connections open: slow headers, slow bodies, too many
//! connections from one address, too many subscriptions on one socket, and
//! a process out of file descriptors. Each test waits for the condition it
//! asserts, within a bound; none times the server.

mod common;

use std::{sync::Arc, time::Duration};

use common::{
    TestDatabase, TestServer, code,
    ws::{Protocol, WsClient},
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

async fn server_with(settings: &[(&str, &str)]) -> TestServer {
    TestServer::start_with(Arc::new(TestDatabase::sqlite().await), settings).await
}

fn address(server: &TestServer) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Everything the server sends until it closes the connection, or `None`
/// if it is still open after `bound`.
async fn read_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(bound, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_too_slowly_end_the_connection() {
    let server = server_with(&[("TWEETMEET_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(10))
            .await
            .is_some(),
        "the connection is still open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_too_slowly_is_answered_408() {
    let server = server_with(&[("TWEETMEET_REQUEST_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_a_bounded_number_of_connections() {
    let server = server_with(&[("TWEETMEET_MAX_CONNECTIONS_PER_ADDRESS", "4")]).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(address(&server)).await.unwrap();
        // A request answered shows the connection was admitted.
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 12];
        stream.read_exact(&mut buffer).await.unwrap();
        assert_eq!(&buffer, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut refused = TcpStream::connect(address(&server)).await.unwrap();
    assert_eq!(
        read_until_closed(&mut refused, Duration::from_secs(10)).await,
        Some(String::new()),
        "closed at once, unanswered"
    );
    held.pop();
    common::wait_until(
        Duration::from_secs(10),
        "a freed slot admits again",
        || async {
            reqwest::get(server.url("/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_holds_a_bounded_number_of_subscriptions() {
    let server = server_with(&[("TWEETMEET_MAX_SUBSCRIPTIONS_PER_SOCKET", "2")]).await;
    let query = "subscription Announced { meetAnnounced { id } }";
    let mut client = WsClient::connect(&server.ws_url(), Protocol::TransportWs).await;
    client.init(None).await.expect("connection acknowledged");
    client.subscribe("a", query, "Announced", json!({})).await;
    client.subscribe("b", query, "Announced", json!({})).await;
    client.subscribe("c", query, "Announced", json!({})).await;
    let refused = client.next_payload("c").await;
    assert_eq!(code(&refused), "BAD_USER_INPUT", "{refused}");
    // The two held still hear of a new meet.
    let (host, _) = server.register("host").await;
    server.meet(&host, json!({})).await;
    let mut heard = Vec::new();
    while heard.len() < 2 {
        match client.receive(Duration::from_secs(10)).await {
            Some(Ok(message)) if message["payload"]["data"]["meetAnnounced"].is_object() => {
                heard.push(message["id"].as_str().unwrap_or_default().to_owned());
            }
            Some(Ok(_)) => {}
            other => panic!("no announcement for both held subscriptions: {other:?}"),
        }
    }
    heard.sort();
    assert_eq!(heard, ["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_new_connections_are_shed_until_some_come_back() {
    // A server process of its own, with 128 descriptors at most.
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let _server = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 128 && exec {} serve",
            env!("CARGO_BIN_EXE_tweetmeet")
        ))
        .current_dir(dir.path())
        .env("TWEETMEET_BIND", &address)
        .env("TWEETMEET_MAX_CONNECTIONS_PER_ADDRESS", "0")
        .env("TWEETMEET_HEADER_TIMEOUT_SECS", "600")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    let healthz = format!("http://{address}/healthz");
    let healthy = || async {
        reqwest::get(&healthz)
            .await
            .is_ok_and(|r| r.status().is_success())
    };
    common::wait_until(Duration::from_secs(30), "the server to start", healthy).await;

    // Idle connections take every descriptor the process has.
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(TcpStream::connect(&address).await.unwrap());
    }
    let mut late = TcpStream::connect(&address).await.unwrap();
    assert!(
        read_until_closed(&mut late, Duration::from_secs(20))
            .await
            .is_some(),
        "a connection beyond the descriptors is closed, not left waiting"
    );
    drop(held);
    common::wait_until(Duration::from_secs(20), "serving again", healthy).await;
}
