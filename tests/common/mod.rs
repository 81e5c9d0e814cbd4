//! Test harness: the real server on a free port, with a fresh SQLite file or
//! a PostgreSQL database of its own (created here, dropped afterwards), and a
//! small GraphQL client that sends the contract's operations as written.
#![allow(dead_code)] // each test binary uses its own part of the harness

pub mod node;
pub mod smtp;
pub mod ws;

use std::{
    collections::HashMap,
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use api::{App, config::Config};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const POSTGRES_ENV: &str = "TWEETMEET_TEST_POSTGRES_URL";

/// How often a bounded wait looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Runs `probe` every 25 ms until `done` accepts what it returned or `timeout`
/// has passed; returns the last value either way.
pub async fn poll_until<T>(
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let value = probe().await;
        if done(&value) || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Waits until `condition` holds; panics, naming `what`, after `timeout`.
pub async fn wait_until(timeout: Duration, what: &str, condition: impl AsyncFnMut() -> bool) {
    assert!(
        poll_until(timeout, condition, |held| *held).await,
        "waited {timeout:?} for {what}"
    );
}

/// Asserts `happened` stays false for all of `window`: that something does
/// not happen can only be checked over a bounded time.
pub async fn assert_nothing_within(
    window: Duration,
    what: &str,
    happened: impl AsyncFnMut() -> bool,
) {
    assert!(
        !poll_until(window, happened, |happened| *happened).await,
        "{what} within {window:?}"
    );
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one test; a PostgreSQL one is dropped on drop.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        Self {
            url,
            backend: Backend::Sqlite,
            admin_url: None,
            name: String::new(),
            _dir: Some(dir),
        }
    }

    /// `None` (and a note on stderr, past the test harness's capture) when
    /// `TWEETMEET_TEST_POSTGRES_URL` is not set.
    pub async fn postgres(test: &str) -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test} on PostgreSQL: set {POSTGRES_ENV} to run it"
            );
            return None;
        };
        let name = format!("tweetmeet_test_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(&admin_url)
            .await
            .expect("connect to PostgreSQL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base.to_owned())
            .unwrap_or(admin_url.clone());
        Some(Self {
            url: format!("{base}/{name}"),
            backend: Backend::Postgres,
            admin_url: Some(admin_url),
            name,
            _dir: None,
        })
    }

    pub async fn for_backend(backend: Backend, test: &str) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite().await),
            Backend::Postgres => Self::postgres(test).await,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(admin_url) = self.admin_url.clone() else {
            return;
        };
        let name = self.name.clone();
        // Drop runs outside async; a short-lived runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// A running server.
pub struct TestServer {
    pub base: String,
    pub db: Arc<TestDatabase>,
    pub mail_dir: Arc<tempfile::TempDir>,
    statements: Arc<AtomicUsize>,
    /// The SQL of the latest statements, values inlined (for EXPLAIN).
    recent_sql: Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
    pub contract: Arc<Contract>,
}

/// Every operation of the contract, concatenated: a request names the one
/// it runs, and the fragments come along.
/// The client contract (tests/operations/), one operation at a time: a
/// request carries one operation and the fragments it spreads, as a client's
/// does. (GraphQL validates a document whole, so an operation of an issue
/// still open must not ride along with the others.)
pub struct Contract {
    operations: HashMap<String, String>,
    fragments: HashMap<String, String>,
}

impl Contract {
    pub fn load() -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/operations");
        let mut contract = Self {
            operations: HashMap::new(),
            fragments: HashMap::new(),
        };
        for entry in std::fs::read_dir(&dir).expect("tests/operations") {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|e| e == "graphql") {
                contract.add(&std::fs::read_to_string(&path).expect("read"));
            }
        }
        contract
    }

    /// Splits a document into its top-level definitions by brace depth
    /// (comments dropped; the contract has no braces in strings).
    fn add(&mut self, document: &str) {
        let text: String = document
            .lines()
            .map(|line| line.split('#').next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let (mut depth, mut start) = (0, None);
        for (at, c) in text.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                c if depth == 0 && start.is_none() && !c.is_whitespace() => start = Some(at),
                _ => {}
            }
            if c == '}'
                && depth == 0
                && let Some(from) = start.take()
            {
                let definition = text[from..=at].to_owned();
                let mut words = definition
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty());
                let kind = words.next().unwrap_or_default();
                let name = words.next().unwrap_or_default().to_owned();
                match kind {
                    "fragment" => self.fragments.insert(name, definition),
                    _ => self.operations.insert(name, definition),
                };
            }
        }
    }

    /// The named operation with every fragment it spreads, directly or not.
    pub fn operation(&self, name: &str) -> String {
        let operation = self
            .operations
            .get(name)
            .unwrap_or_else(|| panic!("no operation {name} in the contract"));
        let mut document = operation.clone();
        let mut included: Vec<&str> = Vec::new();
        let mut pending = vec![operation.as_str()];
        while let Some(text) = pending.pop() {
            for spread in text.split("...").skip(1) {
                let fragment = spread
                    .trim_start()
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or_default();
                if fragment == "on" || included.contains(&fragment) {
                    continue;
                }
                if let Some((name, body)) = self.fragments.get_key_value(fragment) {
                    included.push(name);
                    document.push('\n');
                    document.push_str(body);
                    pending.push(body);
                }
            }
        }
        document
    }
}

impl TestServer {
    pub async fn start(db: TestDatabase) -> Self {
        Self::start_with(Arc::new(db), &[]).await
    }

    /// Starts a server on `db` with extra settings (`TWEETMEET_*` names).
    pub async fn start_with(db: Arc<TestDatabase>, settings: &[(&str, &str)]) -> Self {
        let mail_dir = Arc::new(tempfile::tempdir().expect("mail dir"));
        let mut vars: HashMap<String, String> = HashMap::from([
            ("TWEETMEET_DATABASE_URL".into(), db.url.clone()),
            (
                "TWEETMEET_JWT_SECRET".into(),
                "test-secret-test-secret-test-secret!".into(),
            ),
            (
                "TWEETMEET_MAIL_DIR".into(),
                mail_dir.path().display().to_string(),
            ),
            (
                "TWEETMEET_PUBLIC_URL".into(),
                "https://tweetmeet.test".into(),
            ),
            // Every test client is 127.0.0.1: the limits are tested on their
            // own (tests/rate_limits.rs, with the factor at 1).
            ("TWEETMEET_RATE_LIMIT_FACTOR".into(), "1000".into()),
            // A key of its own, not one generated beside the database (on
            // PostgreSQL that would be a file in the working directory).
            (
                "TWEETMEET_VAPID_PRIVATE_KEY".into(),
                api::notices::push::web::generate_private_key().expect("a VAPID key"),
            ),
        ]);
        for (key, value) in settings {
            vars.insert((*key).into(), (*value).into());
        }
        let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("config");
        let mut connection = api::db::connect(&db.url).await.expect("connect");
        let statements = Arc::new(AtomicUsize::new(0));
        let counter = statements.clone();
        let recent_sql = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let recorder = recent_sql.clone();
        // Counts what requests cost; the e-mail worker's and the timed-work
        // runner's polling is not theirs.
        connection.set_metric_callback(move |info| {
            let sql = &info.statement.sql;
            if !sql.contains("notices") && !sql.contains("scheduled_jobs") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            let mut recent = recorder.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == 100 {
                recent.pop_front();
            }
            recent.push_back(info.statement.to_string());
        });
        let app = App::with_database(config, connection).await.expect("app");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(app.serve(listener, std::future::pending()));
        Self {
            base,
            db,
            mail_dir,
            statements,
            recent_sql,
            contract: Arc::new(Contract::load()),
        }
    }

    /// The `.eml` files the server wrote (without SMTP), as text.
    pub fn mail_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.mail_dir.path()) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }

    /// Waits for e-mails to `recipient` written as files (10 s at most);
    /// returns those found, however many.
    pub async fn mail_to(&self, recipient: &str, count: usize) -> Vec<String> {
        let to = format!("To: {recipient}");
        poll_until(
            Duration::from_secs(10),
            async || -> Vec<String> {
                self.mail_files()
                    .into_iter()
                    .filter(|m| m.contains(&to))
                    .collect()
            },
            |found| found.len() >= count,
        )
        .await
    }

    /// The latest statement whose SQL contains every one of `parts`, with
    /// its values inlined, as the server sent it.
    pub fn last_sql(&self, parts: &[&str]) -> Option<String> {
        let recent = self.recent_sql.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .rev()
            .find(|sql| parts.iter().all(|part| sql.contains(part)))
            .cloned()
    }

    /// How many of the latest (at most 100) statements contain every one of
    /// `parts`.
    pub fn recorded(&self, parts: &[&str]) -> usize {
        let recent = self.recent_sql.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .filter(|sql| parts.iter().all(|part| sql.contains(part)))
            .count()
    }

    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::SeqCst)
    }

    /// The statement count once it has held still for 200 ms (5 s at most):
    /// work a request sets off may go on after its answer.
    pub async fn settled_statements(&self) -> usize {
        const QUIET: Duration = Duration::from_millis(200);
        let mut last = (self.statements(), tokio::time::Instant::now());
        let (count, since) = poll_until(
            Duration::from_secs(5),
            async || {
                let now = self.statements();
                if now != last.0 {
                    last = (now, tokio::time::Instant::now());
                }
                last
            },
            |(_, since)| since.elapsed() >= QUIET,
        )
        .await;
        assert!(
            since.elapsed() >= QUIET,
            "statements still running after 5 s"
        );
        count
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.base.replacen("http", "ws", 1))
    }

    /// POSTs a GraphQL request; returns the whole response body.
    pub async fn graphql(&self, token: Option<&str>, body: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(self.url("/graphql"))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("POST /graphql");
        response.json().await.expect("JSON response")
    }

    /// Runs a contract operation by name, as the clients send it.
    pub async fn op(&self, token: Option<&str>, name: &str, variables: Value) -> Value {
        let query = self.contract.operation(name);
        self.graphql(
            token,
            json!({ "query": query, "operationName": name, "variables": variables }),
        )
        .await
    }

    /// Like `op`, but panics on any error and returns `data`.
    pub async fn ok(&self, token: Option<&str>, name: &str, variables: Value) -> Value {
        let response = self.op(token, name, variables).await;
        assert!(
            response.get("errors").is_none(),
            "{name} failed: {response:#}"
        );
        response["data"].clone()
    }

    /// Answers `meet` with `status`; the whole response (errors included).
    pub async fn rsvp(&self, token: &str, meet: &str, status: &str) -> Value {
        self.op(
            Some(token),
            "Rsvp",
            json!({ "meetId": meet, "status": status }),
        )
        .await
    }

    /// Like `rsvp`, but panics on any error and returns `data`.
    pub async fn rsvp_ok(&self, token: &str, meet: &str, status: &str) -> Value {
        self.ok(
            Some(token),
            "Rsvp",
            json!({ "meetId": meet, "status": status }),
        )
        .await
    }

    /// Invites to `meet` (`invitees`: `handles`, `emails`, `message`);
    /// panics on any error and returns `data`.
    pub async fn invite_ok(&self, token: &str, meet: &str, mut invitees: Value) -> Value {
        invitees["meetId"] = json!(meet);
        self.ok(Some(token), "InviteToMeet", invitees).await
    }

    /// Registers a member; returns (access token, user id).
    pub async fn register(&self, handle: &str) -> (String, String) {
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
        let payload = &data["register"];
        (
            payload["accessToken"].as_str().expect("token").to_owned(),
            payload["user"]["id"].as_str().expect("id").to_owned(),
        )
    }

    /// Registers a member and makes them an administrator through the CLI's path.
    pub async fn admin(&self, handle: &str) -> (String, String) {
        let (token, id) = self.register(handle).await;
        let db = api::db::connect(&self.db.url).await.expect("connect");
        api::admin::service::promote(&db, handle)
            .await
            .expect("promote");
        (token, id)
    }

    /// Hosts a meet starting in `hours`; returns its id.
    pub async fn meet(&self, token: &str, input: Value) -> String {
        let mut full = json!({
            "title": "Drinks at the Rose & Crown",
            "venueName": "Rose & Crown",
            "startsAt": (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339(),
        });
        if let (Some(full), Some(extra)) = (full.as_object_mut(), input.as_object()) {
            for (k, v) in extra {
                full.insert(k.clone(), v.clone());
            }
        }
        let data = self
            .ok(Some(token), "CreateMeet", json!({ "input": full }))
            .await;
        data["createMeet"]["id"]
            .as_str()
            .expect("meet id")
            .to_owned()
    }

    /// Registers "host", who hosts a meet (`input` as for `meet`); returns
    /// (host's token, meet id).
    pub async fn host_meet(&self, input: Value) -> (String, String) {
        let (host, _) = self.register("host").await;
        let meet = self.meet(&host, input).await;
        (host, meet)
    }
}

/// The error code of a response's first error.
pub fn code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {response:#}"))
}

/// Generates, for each scenario `name(server)`, a test on SQLite and one on
/// PostgreSQL (skipped, saying so, without `TWEETMEET_TEST_POSTGRES_URL`).
#[macro_export]
macro_rules! on_both_databases {
    // Servers started with extra settings (`TWEETMEET_*` names and values).
    (with $settings:expr; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = std::sync::Arc::new($crate::common::TestDatabase::sqlite().await);
                    super::$name($crate::common::TestServer::start_with(db, $settings).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::common::TestDatabase::postgres(stringify!($name)).await {
                        let db = std::sync::Arc::new(db);
                        super::$name($crate::common::TestServer::start_with(db, $settings).await).await;
                    }
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::common::TestDatabase::sqlite().await;
                    super::$name($crate::common::TestServer::start(db).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::common::TestDatabase::postgres(stringify!($name)).await {
                        super::$name($crate::common::TestServer::start(db).await).await;
                    }
                }
            }
        )*
    };
}
