//! The `tweetmeet` binary as an operator runs it: `migrate` says what it did
//! and will not drop data unasked, `check` reports, `serve` fails fast and
//! clearly, logs and counts what it does, traces to a collector when given
//! one, and states an outage rather than repeating it; `seed` says how to
//! sign in.

mod common;

use std::{
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};

fn tweetmeet(dir: &std::path::Path, args: &[&str], settings: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tweetmeet"));
    command
        .args(args)
        .current_dir(dir)
        .env(
            "TWEETMEET_DATABASE_URL",
            format!("sqlite://{}/t.db?mode=rwc", dir.display()),
        )
        .env("TWEETMEET_MAIL_DIR", dir.join("outbox"))
        .stdin(std::process::Stdio::null());
    for (key, value) in settings {
        command.env(key, value);
    }
    command.output().expect("run tweetmeet")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn migrate_says_what_it_did_and_keeps_data_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let status = tweetmeet(dir.path(), &["migrate", "status"], &[]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("pending  m20261125_000001_initial"),
        "{}",
        text(&status)
    );

    let up = tweetmeet(dir.path(), &["migrate", "up"], &[]);
    assert!(
        text(&up).contains("applied m20261125_000001_initial"),
        "{}",
        text(&up)
    );
    let again = tweetmeet(dir.path(), &["migrate", "up"], &[]);
    assert!(
        text(&again).contains("nothing to apply"),
        "{}",
        text(&again)
    );
    let status = tweetmeet(dir.path(), &["migrate", "status"], &[]);
    assert!(text(&status).contains(" 0 pending"), "{}", text(&status));

    // An empty database rolls back without asking.
    let down = tweetmeet(dir.path(), &["migrate", "down"], &[]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("rolled back "), "{}", text(&down));
    tweetmeet(dir.path(), &["migrate", "up"], &[]);

    // With data, not from a script without --yes.
    let seeded = tweetmeet(dir.path(), &["seed", "--meets", "3", "--users", "2"], &[]);
    assert!(seeded.status.success(), "{}", text(&seeded));
    let refused = tweetmeet(dir.path(), &["migrate", "down", "--steps", "99"], &[]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("pass --yes"), "{}", text(&refused));
    let status = tweetmeet(dir.path(), &["migrate", "status"], &[]);
    assert!(
        text(&status).contains(" 0 pending"),
        "nothing was rolled back: {}",
        text(&status)
    );

    let forced = tweetmeet(
        dir.path(),
        &["migrate", "down", "--steps", "99", "--yes"],
        &[],
    );
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(text(&forced).contains("rolled back m20261125_000001_initial"));
}

#[test]
fn check_reports_each_dependency_and_fails_when_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let fine = tweetmeet(dir.path(), &["check"], &[]);
    assert!(fine.status.success(), "{}", text(&fine));
    for line in [
        "ok    configuration",
        "ok    database",
        "ok    migrations",
        "ok    mail",
    ] {
        assert!(text(&fine).contains(line), "{line}: {}", text(&fine));
    }
    let unreachable = tweetmeet(
        dir.path(),
        &["check"],
        &[
            (
                "TWEETMEET_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/none",
            ),
            ("TWEETMEET_SMTP_URL", "smtp://127.0.0.1:1"),
        ],
    );
    assert!(!unreachable.status.success());
    let report = text(&unreachable);
    assert!(
        report.contains("FAIL  database: cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{report}"
    );
    assert!(report.contains("refused"), "the real cause: {report}");
    assert!(report.contains("FAIL  mail"), "{report}");
}

#[test]
fn serve_fails_fast_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    // A busy port is found before the database is created or a secret written.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let refused = tweetmeet(dir.path(), &["serve"], &[("TWEETMEET_BIND", &address)]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains(&format!("cannot listen on {address}")),
        "{said}"
    );
    assert!(said.lines().count() <= 3, "one line, no backtrace: {said}");
    assert!(!dir.path().join("t.db").exists(), "nothing was migrated");
    assert!(!dir.path().join("t.db.jwt-secret").exists());

    let unreachable = tweetmeet(
        dir.path(),
        &["serve"],
        &[
            (
                "TWEETMEET_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/none",
            ),
            ("TWEETMEET_BIND", "127.0.0.1:0"),
        ],
    );
    assert!(!unreachable.status.success());
    let said = text(&unreachable);
    assert!(
        said.contains("cannot connect to PostgreSQL at 127.0.0.1:1") && said.contains("refused"),
        "{said}"
    );
}

/// A free loopback port, for a server started as a separate process.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One JSON access line per request, with what the person on call needs and
/// nothing secret: the operation, its type, the error codes, the viewer. And
/// the same traffic in the Prometheus metrics, on their own port.
#[test]
fn each_request_logs_one_access_line_and_counts_in_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let metrics_port = free_port();
    let server = Command::new(env!("CARGO_BIN_EXE_tweetmeet"))
        .arg("serve")
        .current_dir(dir.path())
        .env(
            "TWEETMEET_DATABASE_URL",
            format!("sqlite://{}/t.db?mode=rwc", dir.path().display()),
        )
        .env("TWEETMEET_BIND", format!("127.0.0.1:{port}"))
        .env("TWEETMEET_LOG_FORMAT", "json")
        .env(
            "TWEETMEET_METRICS_BIND",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("TWEETMEET_MAIL_DIR", dir.path().join("outbox"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/graphql");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let register = serde_json::json!({
            "operationName": "Join",
            "query": "mutation Join($input: RegisterInput!) { register(input: $input) { accessToken } }",
            "variables": { "input": { "email": "ada@example.com", "password": "correct horse battery", "handle": "ada", "displayName": "Ada" } }
        });
        let joined: serde_json::Value = client.post(&url).json(&register).send().await.unwrap().json().await.unwrap();
        let token = joined["data"]["register"]["accessToken"].as_str().unwrap().to_owned();
        client
            .post(&url)
            .bearer_auth(&token)
            .json(&serde_json::json!({ "operationName": "Nope", "query": "query Nope { nope }" }))
            .send()
            .await
            .unwrap();
        let metrics = client
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for expected in [
            r#"tweetmeet_http_requests_total{operation="Join",outcome="ok"} 1"#,
            r#"tweetmeet_http_requests_total{operation="Nope",outcome="error"} 1"#,
            r#"tweetmeet_graphql_errors_total{code="BAD_USER_INPUT"} 1"#,
            r#"tweetmeet_http_request_duration_seconds_bucket{operation="Join",outcome="ok",le="10"} 1"#,
            "tweetmeet_outbox_pending 0",
            r#"tweetmeet_db_pool_connections{state="idle"}"#,
            // Registering hashed a password and wrote in a transaction.
            "tweetmeet_password_hashes_queued 0",
            "tweetmeet_password_hashes_running 0",
            r#"tweetmeet_db_pool_wait_seconds_bucket{le="10"}"#,
            "tweetmeet_db_pool_wait_seconds_count",
        ] {
            assert!(metrics.contains(expected), "{expected} in:\n{metrics}");
        }
        // A socket that subscribes once, then is closed by its client.
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
        let mut request = format!("ws://127.0.0.1:{port}/graphql/ws")
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket
            .send(Message::Text(r#"{"type":"connection_init","payload":{}}"#.into()))
            .await
            .unwrap();
        socket.next().await.unwrap().unwrap();
        socket
            .send(Message::Text(
                r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { meetAnnounced { id } }"}}"#.into(),
            ))
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        socket.close(None).await.unwrap();
        while socket.next().await.is_some() {}
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let public = client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
        assert_eq!(public.status(), reqwest::StatusCode::NOT_FOUND, "not on the public port");
    });
    Command::new("kill")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    let output = server.wait_with_output().unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["target"] == "tweetmeet::access")
        .collect();
    let graphql: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["fields"]["path"] == "/graphql")
        .collect();
    assert_eq!(graphql.len(), 2, "one line per request: {lines:#?}");
    let join = &graphql[0]["fields"];
    assert_eq!(join["operation"], "Join");
    assert_eq!(join["operation_type"], "mutation");
    assert_eq!(join["status"], 200);
    assert_eq!(join["viewer"], "-", "anonymous");
    assert!(join["request_id"].as_str().is_some_and(|id| id.len() > 8));
    assert_eq!(join["client"], "127.0.0.1");
    assert!(join["latency_ms"].is_string() || join["latency_ms"].is_number());
    let nope = &graphql[1]["fields"];
    assert_eq!(nope["operation_type"], "query");
    assert_eq!(nope["errors"], "BAD_USER_INPUT");
    assert_ne!(nope["viewer"], "-", "the signed-in viewer's id");
    let closed: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "websocket closed")
        .collect();
    assert_eq!(closed.len(), 1, "one line per socket: {lines:#?}");
    assert_eq!(closed[0]["fields"]["subscriptions"], 1);
    assert!(closed[0]["fields"]["duration_secs"].is_string());
    let everything = String::from_utf8_lossy(&output.stdout);
    for secret in ["correct horse battery", "ada@example.com", "Bearer"] {
        assert!(!everything.contains(secret), "{secret} in the log");
    }
}

/// `serve --help` lists every setting with its variable and default, and the
/// README's configuration table lists the same ones with the same defaults.
#[test]
fn help_and_readme_list_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let help = text(&tweetmeet(dir.path(), &["serve", "--help"], &[]));
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let table =
        &readme[readme.find("## Configuration").unwrap()..readme.find("## Endpoints").unwrap()];
    let rows: Vec<(&str, &str)> = table
        .lines()
        .filter_map(|line| {
            let mut cells = line.strip_prefix("| `TWEETMEET_")?.split(" | ");
            let name = cells.next()?.trim_end_matches('`');
            Some((name, cells.next()?.trim_matches('`')))
        })
        .collect();
    assert_eq!(
        rows.len(),
        api::config::SETTINGS.len(),
        "README rows: {rows:?}"
    );
    for setting in api::config::SETTINGS {
        assert!(
            help.contains(&format!("--{} <VALUE>", setting.flag())),
            "{}",
            setting.name
        );
        assert!(
            help.contains(&format!("[env: {}]", setting.name)),
            "{}",
            setting.name
        );
        assert!(
            help.contains(&format!("[default: {}]", setting.default)),
            "{}",
            setting.name
        );
        let name = setting.name.trim_start_matches("TWEETMEET_");
        assert!(
            rows.contains(&(name, setting.default)),
            "README lists {} with default {}",
            setting.name,
            setting.default
        );
    }
    // A flag counts like its variable.
    let flagged = tweetmeet(dir.path(), &["check", "--log-format", "yaml"], &[]);
    assert!(!flagged.status.success());
    assert!(
        text(&flagged).contains("TWEETMEET_LOG_FORMAT must be text or json"),
        "{}",
        text(&flagged)
    );
}

/// A `tweetmeet serve` process on a free port, with a fresh SQLite database
/// in `dir` unless the settings name another; its log is JSON lines on
/// stdout, read when it stops.
struct Served {
    child: Child,
    port: u16,
    contract: common::Contract,
}

impl Served {
    fn start(dir: &Path, settings: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tweetmeet"));
        command
            .arg("serve")
            .current_dir(dir)
            .env(
                "TWEETMEET_DATABASE_URL",
                format!("sqlite://{}/t.db?mode=rwc", dir.display()),
            )
            .env("TWEETMEET_BIND", format!("127.0.0.1:{port}"))
            .env("TWEETMEET_LOG_FORMAT", "json")
            .env("TWEETMEET_MAIL_DIR", dir.join("outbox"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in settings {
            command.env(key, value);
        }
        Self {
            child: command.spawn().expect("start tweetmeet serve"),
            port,
            contract: common::Contract::load(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits (10 s at most) until the server answers.
    async fn ready(&self) {
        let client = reqwest::Client::new();
        common::wait_until(Duration::from_secs(10), "the server to start", async || {
            client.get(self.url("/healthz")).send().await.is_ok()
        })
        .await;
    }

    /// Runs a contract operation; panics on any error and returns `data`.
    async fn ok(&self, token: Option<&str>, name: &str, variables: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(self.url("/graphql"))
            .json(&json!({
                "query": self.contract.operation(name),
                "operationName": name,
                "variables": variables,
            }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response: Value = request.send().await.unwrap().json().await.unwrap();
        assert!(response.get("errors").is_none(), "{name}: {response:#}");
        response["data"].clone()
    }

    /// Registers `handle`; returns its access token.
    async fn register(&self, handle: &str) -> String {
        let data = self
            .ok(
                None,
                "Register",
                json!({ "input": {
                    "email": format!("{handle}@example.com"),
                    "password": "correct horse battery",
                    "handle": handle,
                    "displayName": handle,
                }}),
            )
            .await;
        data["register"]["accessToken"].as_str().unwrap().to_owned()
    }

    /// Stops the server as an operator does (SIGTERM) and waits for it to
    /// exit; returns its output.
    fn stop(self) -> Output {
        Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        let output = self.child.wait_with_output().expect("wait for tweetmeet");
        assert!(output.status.success(), "a clean stop: {}", text(&output));
        output
    }
}

/// The JSON log lines of `output` whose message contains `words`.
fn log_lines<'a>(lines: &'a [Value], words: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| {
            line["fields"]["message"]
                .as_str()
                .is_some_and(|message| message.contains(words))
        })
        .collect()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// One export a fake collector received: its content type and body.
type Export = (String, Vec<u8>);

/// What a fake OpenTelemetry collector was sent.
#[derive(Clone, Default)]
struct Exports(Arc<Mutex<Vec<Export>>>);

/// An OTLP/HTTP collector on a free port that keeps what is posted to
/// `/v1/traces` and answers as a collector does (an empty
/// `ExportTraceServiceResponse`).
async fn fake_collector() -> (u16, Exports) {
    use axum::http::{HeaderMap, header::CONTENT_TYPE};
    let exports = Exports::default();
    let kept = exports.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let kind = headers
                    .get(CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                kept.0.lock().unwrap().push((kind, body.to_vec()));
                ([(CONTENT_TYPE, "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, exports)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// With an OTLP endpoint, a request's trace reaches the collector when the
/// server stops (the last batch is flushed): the request's span with its
/// request id, in the caller's trace (`traceparent`), and the span of the
/// service call that wrote to the database.
#[test]
fn traces_reach_the_collector_with_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (collector, exports) = runtime.block_on(fake_collector());
    let endpoint = format!("http://127.0.0.1:{collector}");
    let server = Served::start(dir.path(), &[("TWEETMEET_OTLP_ENDPOINT", &endpoint)]);
    let request_id = "trace-me-4f1c9a7e";
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    runtime.block_on(async {
        server.ready().await;
        let response: Value = reqwest::Client::new()
            .post(server.url("/graphql"))
            .header("x-request-id", request_id)
            .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
            .json(&json!({
                "operationName": "Register",
                "query": server.contract.operation("Register"),
                "variables": { "input": {
                    "email": "ada@example.com",
                    "password": "correct horse battery",
                    "handle": "ada",
                    "displayName": "Ada",
                }},
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            response["data"]["register"]["accessToken"].is_string(),
            "{response:#}"
        );
    });
    // Stopped before the batch's five seconds are up: what reaches the
    // collector was flushed on the way out.
    let output = server.stop();
    let exported: Vec<Export> = exports.0.lock().unwrap().clone();
    assert!(!exported.is_empty(), "nothing exported: {}", text(&output));
    assert!(
        exported
            .iter()
            .all(|(kind, _)| kind == "application/x-protobuf"),
        "OTLP/HTTP protobuf"
    );
    let payload: Vec<u8> = exported.into_iter().flat_map(|(_, body)| body).collect();
    // Protobuf strings are their UTF-8 bytes; ids are their raw bytes.
    let trace_bytes: Vec<u8> = (0..trace_id.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&trace_id[at..at + 2], 16).unwrap())
        .collect();
    for (what, needle) in [
        ("the request id", request_id.as_bytes()),
        ("the request's span", b"request".as_slice()),
        ("the operation", b"Register".as_slice()),
        ("the service call's span", b"accounts::register".as_slice()),
        ("the service name", b"tweetmeet".as_slice()),
        ("the caller's trace id", trace_bytes.as_slice()),
    ] {
        assert!(contains(&payload, needle), "{what} in the export");
    }
    let lines = json_lines(&output);
    assert_eq!(
        log_lines(&lines, &format!("traces go to {endpoint}/v1/traces")).len(),
        1,
        "{}",
        text(&output)
    );
    assert!(log_lines(&lines, "trace collector").is_empty(), "no outage");
}

/// `seed` ends by saying how to sign in, and that sign-in works; the same
/// `--seed` makes the same handles in another database, and seeding it
/// again into the same one says to pick another seed.
#[test]
fn seed_says_how_to_sign_in_and_the_same_seed_makes_the_same_handles() {
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let args = ["seed", "--users", "4", "--meets", "3", "--seed", "7"];
    let seeded = [
        tweetmeet(first.path(), &args, &[]),
        tweetmeet(second.path(), &args, &[]),
    ];
    let mut sign_ins = Vec::new();
    for output in &seeded {
        assert!(output.status.success(), "{}", text(output));
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(said.contains("seeded 4 users and 3 meets"), "{said}");
        let value = |label: &str| {
            said.lines()
                .find_map(|line| line.trim().strip_prefix(label))
                .map(|rest| rest.trim().to_owned())
                .unwrap_or_else(|| panic!("no {label} line in: {said}"))
        };
        sign_ins.push((value("e-mail "), value("handle "), value("password ")));
    }
    assert_eq!(
        sign_ins[0], sign_ins[1],
        "the same account from the same seed"
    );

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let handles = |dir: &Path| {
        let url = format!("sqlite://{}/t.db", dir.display());
        runtime.block_on(async move {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(&url).await.unwrap();
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT handle FROM users ORDER BY handle",
                ))
                .await
                .unwrap();
            let handles: Vec<String> = rows
                .iter()
                .map(|row| row.try_get_by_index(0).unwrap())
                .collect();
            db.close().await.unwrap();
            handles
        })
    };
    let made = handles(first.path());
    assert_eq!(made.len(), 4);
    assert_eq!(made, handles(second.path()), "the same handles");
    assert!(made.contains(&sign_ins[0].1));

    let again = tweetmeet(first.path(), &args, &[]);
    assert!(!again.status.success());
    assert!(text(&again).contains("another --seed"), "{}", text(&again));
    assert_eq!(handles(first.path()).len(), 4, "nothing added");

    let (email, handle, password) = sign_ins.remove(0);
    let server = Served::start(first.path(), &[]);
    runtime.block_on(async {
        server.ready().await;
        let data = server
            .ok(
                None,
                "Login",
                json!({ "email": email, "password": password }),
            )
            .await;
        assert!(data["login"]["accessToken"].is_string());
        assert_eq!(data["login"]["user"]["handle"], handle.as_str());
    });
    server.stop();
}

/// A mail server that refuses connections is one line when it goes and one
/// when it is back, however many notices wait meanwhile, with none of them
/// logged per attempt; once it answers, every notice goes out.
#[test]
fn an_smtp_outage_is_stated_once_and_its_end_once() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on yet: connections are refused.
    let smtp_port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{smtp_port}");
    let server = Served::start(dir.path(), &[("TWEETMEET_SMTP_URL", &smtp_url)]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        server.ready().await;
        let host = server.register("host").await;
        let meet = server
            .ok(
                Some(&host),
                "CreateMeet",
                json!({ "input": {
                    "title": "Freight brokers",
                    "venueName": "Rose & Crown",
                    "startsAt": (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339(),
                }}),
            )
            .await["createMeet"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let invitees = ["ann@example.com", "bo@example.com", "cy@example.com"];
        server
            .ok(
                Some(&host),
                "InviteToMeet",
                json!({ "meetId": meet, "emails": invitees }),
            )
            .await;
        // Several attempts' worth of backoff (250 ms, 500 ms, 1 s, …).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", smtp_port))
            .await
            .unwrap();
        let mailbox = common::smtp::serve(listener);
        let received = mailbox.wait_for(invitees.len(), 30).await;
        assert_eq!(received.len(), invitees.len(), "every notice, once back");
    });
    let output = server.stop();
    let lines = json_lines(&output);
    let down = log_lines(&lines, "the mail server (SMTP) is unreachable");
    assert_eq!(down.len(), 1, "one line when it goes: {}", text(&output));
    assert_eq!(down[0]["level"], "WARN");
    assert!(
        down[0]["fields"]["error"]
            .as_str()
            .is_some_and(|error| error.contains("refused")),
        "the cause: {:#}",
        down[0]
    );
    let back = log_lines(&lines, "the mail server (SMTP) is reachable again");
    assert_eq!(back.len(), 1, "one line when it is back: {}", text(&output));
    assert!(
        back[0]["fields"]["failures"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    assert!(
        log_lines(&lines, "notice delivery failed").is_empty(),
        "no line per notice: {}",
        text(&output)
    );
    assert_eq!(log_lines(&lines, "notice sent").len(), 3);
}

/// `seed` makes what a demo needs: every guest-list setting, people on
/// their way, here and gone home, veterans and newcomers among those going,
/// invite links with the people they brought, go / no-go meets with their
/// deadlines scheduled; each meet's and link's counters match its rows.
#[test]
fn seed_makes_arrivals_links_and_go_no_go_meets() {
    let dir = tempfile::tempdir().unwrap();
    let seeded = tweetmeet(
        dir.path(),
        &["seed", "--users", "40", "--meets", "200", "--seed", "11"],
        &[],
    );
    assert!(seeded.status.success(), "{}", text(&seeded));
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let count = |sql: &str| {
        let (url, sql) = (url.clone(), sql.to_owned());
        runtime.block_on(async move {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(&url).await.unwrap();
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    sql,
                ))
                .await
                .unwrap()
                .expect("a count");
            let n: i64 = row.try_get_by_index(0).unwrap();
            db.close().await.unwrap();
            n
        })
    };
    assert!(
        count("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'meets'") > 0,
        "statistics gathered for the planner"
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT attendee_visibility) FROM meets"),
        4,
        "every guest-list setting"
    );
    for state in ["ON_MY_WAY", "HERE", "LEFT"] {
        let sql = format!("SELECT COUNT(*) FROM attendances WHERE arrival = '{state}'");
        assert!(count(&sql) > 0, "someone {state}");
    }
    let newcomers_and_veterans = |veterans: bool| {
        count(if veterans {
            "SELECT COUNT(*) FROM attendances g JOIN meets m ON m.id = g.meet_id \
             WHERE g.status = 'GOING' AND EXISTS (SELECT 1 FROM attendances c \
             JOIN meets cm ON cm.id = c.meet_id WHERE c.user_id = g.user_id \
             AND c.checked_in_at IS NOT NULL AND cm.starts_at < m.starts_at)"
        } else {
            "SELECT COUNT(*) FROM attendances g JOIN meets m ON m.id = g.meet_id \
             WHERE g.status = 'GOING' AND NOT EXISTS (SELECT 1 FROM attendances c \
             JOIN meets cm ON cm.id = c.meet_id WHERE c.user_id = g.user_id \
             AND c.checked_in_at IS NOT NULL AND cm.starts_at < m.starts_at)"
        })
    };
    assert!(newcomers_and_veterans(true) > 0, "veterans going");
    assert!(newcomers_and_veterans(false) > 0, "newcomers going");
    assert!(
        count("SELECT COUNT(*) FROM attendances WHERE introduce_me") > 0,
        "someone asks to be introduced"
    );
    assert!(
        count("SELECT COUNT(*) FROM invitations WHERE invite_link_id IS NOT NULL") > 0,
        "invite links brought people"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM invite_links l WHERE opens < uses OR uses != \
             (SELECT COUNT(*) FROM invitations i WHERE i.invite_link_id = l.id)"
        ),
        0,
        "each link's uses are its invitations, its opens at least as many"
    );
    assert!(
        count("SELECT COUNT(DISTINCT channel) FROM invite_links") > 1,
        "links on several channels"
    );
    let tentative = count(
        "SELECT COUNT(*) FROM meets WHERE minimum_going IS NOT NULL AND confirmed_at IS NULL \
         AND status = 'SCHEDULED'",
    );
    assert!(tentative > 0, "go / no-go meets waiting");
    assert_eq!(
        count("SELECT COUNT(*) FROM scheduled_jobs WHERE kind = 'DECIDE_MEET'"),
        tentative,
        "each waiting meet's deadline is scheduled"
    );
    assert!(
        count("SELECT COUNT(*) FROM scheduled_jobs WHERE kind = 'REMIND'") > 0,
        "reminders for those going to meets ahead"
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM meets m WHERE \
             here_count != (SELECT COUNT(*) FROM attendances a WHERE a.meet_id = m.id AND a.arrival = 'HERE') \
             OR on_the_way_count != (SELECT COUNT(*) FROM attendances a WHERE a.meet_id = m.id AND a.arrival = 'ON_MY_WAY') \
             OR checked_in_count != (SELECT COUNT(*) FROM attendances a WHERE a.meet_id = m.id AND a.checked_in_at IS NOT NULL)"
        ),
        0,
        "the counters match the rows"
    );
}

/// Reminders go out exactly once with two server processes on one
/// PostgreSQL database, one of them killed (SIGKILL) while reminders are
/// coming due and a third started in its place: a claim the dead process
/// held runs out and is taken again; nothing is sent twice.
#[test]
fn reminders_go_out_once_across_processes_and_a_restart() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(db) = runtime.block_on(common::TestDatabase::postgres("reminders_once")) else {
        return;
    };
    let settings = [
        ("TWEETMEET_DATABASE_URL", db.url.as_str()),
        ("TWEETMEET_JWT_SECRET", "a-secret-shared-by-every-process!!"),
        ("TWEETMEET_JOB_LEASE_SECS", "2"),
        ("TWEETMEET_RATE_LIMIT_FACTOR", "1000"),
    ];
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let first = Served::start(dirs[0].path(), &settings);
    let mut second = Served::start(dirs[1].path(), &settings);
    let people = 12;
    runtime.block_on(async {
        first.ready().await;
        second.ready().await;
        let host = first.register("host").await;
        // Due (15 minutes before the start) in about ten seconds.
        let starts = (chrono::Utc::now() + chrono::Duration::seconds(15 * 60 + 10)).to_rfc3339();
        let meet = first
            .ok(
                Some(&host),
                "CreateMeet",
                json!({ "input": { "title": "Last orders", "venueName": "The Crown", "startsAt": starts } }),
            )
            .await["createMeet"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for i in 0..people {
            let server = if i % 2 == 0 { &first } else { &second };
            let token = server.register(&format!("guest{i:02}")).await;
            server
                .ok(
                    Some(&token),
                    "UpdateNotificationPreferences",
                    json!({ "preferences": [], "reminderMinutesBefore": 15 }),
                )
                .await;
            server
                .ok(
                    Some(&token),
                    "Rsvp",
                    json!({ "meetId": meet, "status": "GOING" }),
                )
                .await;
        }
    });
    let count = |sql: &str| runtime.block_on(pg_count(&db.url, sql));
    assert_eq!(
        count("SELECT COUNT(*) FROM scheduled_jobs WHERE kind = 'REMIND'"),
        people,
        "one reminder per guest, scheduled"
    );
    // The second process dies as reminders come due; a third takes its place.
    std::thread::sleep(Duration::from_secs(8));
    second.child.kill().unwrap();
    second.child.wait().unwrap();
    let third = Served::start(dirs[2].path(), &settings);
    runtime.block_on(async {
        third.ready().await;
        common::wait_until(Duration::from_secs(30), "every reminder", async || {
            pg_count(
                &db.url,
                "SELECT COUNT(*) FROM scheduled_jobs WHERE kind = 'REMIND'",
            )
            .await
                == 0
        })
        .await;
    });
    assert_eq!(
        count("SELECT COUNT(*) FROM notices WHERE kind = 'reminder'"),
        people,
        "each guest reminded once"
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT recipient) FROM notices WHERE kind = 'reminder'"),
        people
    );
    first.stop();
    third.stop();
}

/// One count from a PostgreSQL database.
async fn pg_count(url: &str, sql: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let connection = sea_orm::Database::connect(url).await.unwrap();
    let row = connection
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .expect("a count");
    let n: i64 = row.try_get_by_index(0).unwrap();
    connection.close().await.unwrap();
    n
}
