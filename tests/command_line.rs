//! The `tweetmeet` binary as an operator runs it: `migrate` says what it did
//! and will not drop data unasked, `check` reports, and `serve` fails fast
//! and clearly.

use std::process::{Command, Output};

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
