//! Live fan-out benchmark: N subscribers hold `MeetActivity` on one meet,
//! one RSVP is made, and we time how long until every subscriber has the
//! event; and the server's resident memory per idle subscriber.
//!
//! It starts the release server itself (a fresh SQLite database per run) so
//! that the server's memory can be read from /proc:
//!   cargo build --release && cargo run --release -p bench --bin fanout -- --subscribers 1000,5000,10000

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Barrier, mpsc};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

#[derive(Parser)]
struct Args {
    /// Subscriber counts to measure, one fresh server each.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    subscribers: Vec<usize>,
    /// The server binary.
    #[arg(long, default_value = "target/release/tweetmeet")]
    server: PathBuf,
    #[arg(long, default_value_t = 18_800)]
    port: u16,
    /// Subscribers connecting at once. Memory is read after all connected;
    /// a burst of simultaneous handshakes leaves transient peaks in it.
    #[arg(long, default_value_t = 32)]
    connect_concurrency: usize,
    /// Subscribers sign in (all with one watcher account's access token)
    /// instead of subscribing anonymously: the server then verifies a token
    /// per socket and keeps a timer for its expiry.
    #[arg(long)]
    signed_in: bool,
    /// The share of subscribers that sign in (0 to 1); `--signed-in` is 1.
    /// The watcher answers the meet MAYBE, so with `--attendee-visibility
    /// ATTENDEES` signed-in subscribers see names and anonymous ones get
    /// `attendance: null`: a mix that makes the server redact per subscriber.
    #[arg(long, default_value_t = 0.0)]
    signed_in_share: f64,
    /// The meet's guest-list setting: PUBLIC, ATTENDEES, ARRIVED or HOST.
    #[arg(long, default_value = "PUBLIC")]
    attendee_visibility: String,
}

/// The contract's `MeetActivity` (live.graphql), as the web frontend sends it.
const SUBSCRIPTION: &str = "subscription MeetActivity($meetId: ID!, $after: String) { meetActivity(meetId: $meetId, after: $after) { cursor kind at meet { id status goingCount checkedInCount hereCount onTheWayCount spotsLeft } attendance { status arrival etaAt checkedInAt user { id handle displayName avatarUrl } } story { id title author { handle } } } }";

struct Server {
    child: Child,
    base: String,
    _dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

impl Server {
    async fn start(binary: &PathBuf, port: u16) -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("tweetmeet-bench-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new(binary)
            .arg("serve")
            .env(
                "TWEETMEET_DATABASE_URL",
                format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()),
            )
            .env("TWEETMEET_BIND", format!("127.0.0.1:{port}"))
            .env("TWEETMEET_MAIL_DIR", dir.join("mail"))
            // Every subscriber connects from this one address.
            .env("TWEETMEET_MAX_CONNECTIONS_PER_ADDRESS", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it with cargo build --release)",
                    binary.display()
                )
            })?;
        let server = Self {
            child,
            base: format!("127.0.0.1:{port}"),
            _dir: dir,
        };
        for _ in 0..100 {
            if reqwest::get(format!("http://{}/healthz", server.base))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("the server did not come up")
    }

    /// CPU time the server has used so far, (user, system), from /proc.
    fn cpu(&self) -> anyhow::Result<(Duration, Duration)> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the parenthesised command name; utime and stime are 14th and 15th.
        let rest = stat.rsplit_once(')').context("stat format")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Linux reports these in clock ticks of 1/100 s.
        let ticks = |field: &str| -> anyhow::Result<Duration> {
            Ok(Duration::from_millis(field.parse::<u64>()? * 10))
        };
        Ok((ticks(fields[11])?, ticks(fields[12])?))
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("no VmRSS")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("VmRSS value")?
            .parse()?)
    }

    async fn graphql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/graphql", self.base))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await?.json().await?;
        if body.get("errors").is_some() {
            bail!("{body}");
        }
        Ok(body["data"].clone())
    }

    async fn register(&self, handle: &str) -> anyhow::Result<String> {
        let data = self
            .graphql(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
                json!({ "input": { "email": format!("{handle}@bench.local"), "password": "benchmark password", "handle": handle, "displayName": handle } }),
            )
            .await?;
        Ok(data["register"]["accessToken"]
            .as_str()
            .context("token")?
            .to_owned())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

async fn run(args: &Args, subscribers: usize) -> anyhow::Result<()> {
    let server = Server::start(&args.server, args.port).await?;
    let host = server.register("host").await?;
    let fan = server.register("fan").await?;
    let meet = server
        .graphql(
            Some(&host),
            "mutation($input: CreateMeetInput!) { createMeet(input: $input) { id } }",
            json!({ "input": { "title": "Bench meet", "venueName": "Rose & Crown", "startsAt": (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339(), "attendeeVisibility": args.attendee_visibility } }),
        )
        .await?["createMeet"]["id"]
        .as_str()
        .context("meet id")?
        .to_owned();
    let share = if args.signed_in {
        1.0
    } else {
        args.signed_in_share.clamp(0.0, 1.0)
    };
    let signed_in_payload = if share > 0.0 {
        let watcher = server.register("watcher").await?;
        server
            .graphql(
                Some(&watcher),
                "mutation($m: ID!) { rsvp(meetId: $m, status: MAYBE) { status } }",
                json!({ "m": meet }),
            )
            .await?;
        json!({ "Authorization": format!("Bearer {watcher}") })
    } else {
        json!({})
    };
    let signed_in_count = (subscribers as f64 * share).round() as usize;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib()?;

    // Connect everyone; each reports the instant its event arrived.
    let ready = Arc::new(Barrier::new(subscribers + 1));
    let (arrivals, mut arrived) = mpsc::unbounded_channel::<Instant>();
    let gate = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency));
    for n in 0..subscribers {
        // Signed-in subscribers spread evenly among anonymous ones.
        let signed_in = (n + 1) * signed_in_count / subscribers > n * signed_in_count / subscribers;
        let (url, meet, ready, arrivals, gate, init_payload) = (
            format!("ws://{}/graphql/ws", server.base),
            meet.clone(),
            ready.clone(),
            arrivals.clone(),
            gate.clone(),
            if signed_in {
                signed_in_payload.clone()
            } else {
                json!({})
            },
        );
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let mut request = url.into_client_request().expect("request");
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("graphql-transport-ws"),
            );
            let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else {
                ready.wait().await;
                return;
            };
            let _ = socket
                .send(Message::Text(
                    json!({ "type": "connection_init", "payload": init_payload })
                        .to_string()
                        .into(),
                ))
                .await;
            let _ = socket.next().await; // connection_ack
            let subscribe = json!({ "id": "1", "type": "subscribe", "payload": { "query": SUBSCRIPTION, "variables": { "meetId": meet } } });
            let _ = socket
                .send(Message::Text(subscribe.to_string().into()))
                .await;
            drop(permit);
            ready.wait().await;
            while let Some(Ok(message)) = socket.next().await {
                if let Message::Text(text) = message
                    && text.contains("\"next\"")
                {
                    let _ = arrivals.send(Instant::now());
                    break;
                }
            }
            // Hold the connection until the run ends.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
    }
    drop(arrivals);
    ready.wait().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.rss_kib()?;
    eprintln!("{subscribers} connected: server RSS {before} KiB before, {idle} KiB after");

    let cpu_before = server.cpu()?;
    let started = Instant::now();
    server
        .graphql(
            Some(&fan),
            "mutation($m: ID!) { rsvp(meetId: $m, status: GOING) { status } }",
            json!({ "m": meet }),
        )
        .await?;
    let mut latencies = Vec::with_capacity(subscribers);
    while latencies.len() < subscribers {
        match tokio::time::timeout(Duration::from_secs(20), arrived.recv()).await {
            Ok(Some(at)) => latencies.push(at - started),
            _ => break,
        }
    }
    latencies.sort();
    if latencies.is_empty() {
        bail!("no subscriber got the event");
    }
    let cpu_after = server.cpu()?;
    let (user, system) = (
        cpu_after.0.saturating_sub(cpu_before.0),
        cpu_after.1.saturating_sub(cpu_before.1),
    );
    println!(
        "| {subscribers:>6} | {:>6} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>5} + {:<5} |",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies[latencies.len() - 1].as_secs_f64() * 1e3,
        (idle.saturating_sub(before)) as f64 / subscribers as f64,
        user.as_millis(),
        system.as_millis(),
    );
    Ok(())
}

// One thread: the client takes at most one of the two cores, the server the rest.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "| subscribers | received | p50 ms | p99 ms | max ms | KiB per idle subscriber | server CPU ms, user + system |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (i, &n) in args.subscribers.iter().enumerate() {
        let args = Args {
            port: args.port + i as u16,
            subscribers: vec![],
            server: args.server.clone(),
            connect_concurrency: args.connect_concurrency,
            signed_in: args.signed_in,
            signed_in_share: args.signed_in_share,
            attendee_visibility: args.attendee_visibility.clone(),
        };
        run(&args, n).await?;
    }
    Ok(())
}
