//! One `Config`, read from the environment (and a `.env` file when present).
//! Every command reads the same variables.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::bail;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `TWEETMEET_DATABASE_URL`: `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// `TWEETMEET_BIND`: the address the server listens on.
    pub bind: SocketAddr,
    /// `TWEETMEET_ENV`: `development` (default) or `production`.
    pub environment: Environment,
    /// `TWEETMEET_JWT_SECRET`: HMAC key of access tokens. Required in
    /// production; in development one is generated and kept beside the database.
    pub jwt_secret: Option<String>,
    /// `TWEETMEET_ACCESS_TOKEN_TTL_SECS`: lifetime of an access token (900).
    pub access_token_ttl: Duration,
    /// `TWEETMEET_REFRESH_TOKEN_TTL_DAYS`: lifetime of a refresh token (30).
    pub refresh_token_ttl: Duration,
    /// `TWEETMEET_REFRESH_GRACE_SECS`: how long a just-rotated refresh token
    /// still refreshes, for two tabs or a link and a socket refreshing at once
    /// (30; 0 makes any second use a reuse).
    pub refresh_grace: Duration,
    /// `TWEETMEET_PERSISTED_QUERY_BYTES`: how much query text the automatic
    /// persisted query cache keeps, least recently used out first (16 MiB).
    pub persisted_query_bytes: u64,
    /// `TWEETMEET_METRICS_BIND`: where Prometheus metrics are served
    /// (`/metrics`), apart from the public port. Unset: not served.
    pub metrics_bind: Option<SocketAddr>,
    /// `TWEETMEET_OTLP_ENDPOINT`: an OpenTelemetry collector's OTLP/HTTP
    /// address (`http://host:4318`); traces go there. Unset: no traces.
    pub otlp_endpoint: Option<String>,
    /// `TWEETMEET_EVENT_RETENTION_SECS`: how long the meet activity log keeps
    /// events that resuming subscribers replay (86400: a day).
    pub event_retention: Duration,
    /// `TWEETMEET_LIVE_BUFFER`: events a subscriber may fall behind before it
    /// is caught up from the activity log (1024).
    pub live_buffer: usize,
    /// `TWEETMEET_CORS_ORIGINS`: comma-separated origins allowed to call the
    /// API from a browser; `*` for any. Empty (default) allows none.
    pub cors_origins: Vec<String>,
    /// `TWEETMEET_LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `TWEETMEET_BODY_LIMIT_BYTES`: largest request body accepted (1 MiB).
    pub body_limit: usize,
    /// `TWEETMEET_PUBLIC_URL`: the web app's base URL, for links in e-mails.
    pub public_url: String,
    /// `TWEETMEET_DEFAULT_TIME_ZONE`: IANA zone for meets that name none.
    pub default_time_zone: String,
    /// `TWEETMEET_SMTP_URL`: e.g. `smtp://user:pass@host:587?tls=required`;
    /// unset means e-mails are written as `.eml` files to `mail_dir`.
    pub smtp_url: Option<String>,
    /// `TWEETMEET_MAIL_FROM`: sender of notices.
    pub mail_from: String,
    /// `TWEETMEET_MAIL_DIR`: where `.eml` files go without SMTP (`outbox`).
    pub mail_dir: PathBuf,
    /// `TWEETMEET_NOTICE_MAX_ATTEMPTS`: delivery attempts before a notice is
    /// given up as dead (16: with the backoff, about five hours of retries).
    pub notice_max_attempts: i32,
    /// `TWEETMEET_NOTICE_LEASE_SECS`: how long a claimed notice is held
    /// without renewal (15), so how late a crashed process's notices go out.
    pub notice_lease: Duration,
    /// `TWEETMEET_JOB_LEASE_SECS`: how long a claim on timed work (deciding a
    /// go / no-go meet) holds (30), so how late a crashed process's work runs.
    pub job_lease: Duration,
    /// `TWEETMEET_ARGON2_CONCURRENCY`: password hashes computed at once (2).
    pub argon2_concurrency: usize,
    /// `TWEETMEET_WS_PING_SECS`: keepalive ping interval on WebSockets (20).
    pub ws_ping_interval: Duration,
    /// `TWEETMEET_WS_SEND_TIMEOUT_SECS`: how long a WebSocket client may
    /// leave a message unread before it is disconnected (10).
    pub ws_send_timeout: Duration,
    /// `TWEETMEET_MAX_SUBSCRIPTIONS_PER_SOCKET`: subscriptions one WebSocket
    /// may hold at once (100).
    pub max_subscriptions_per_socket: usize,
    /// `TWEETMEET_HEADER_TIMEOUT_SECS`: how long a client may take to send a
    /// request's headers (10).
    pub header_timeout: Duration,
    /// `TWEETMEET_REQUEST_TIMEOUT_SECS`: how long a request may take from its
    /// headers to its response, its body included (30).
    pub request_timeout: Duration,
    /// `TWEETMEET_MAX_CONNECTIONS_PER_ADDRESS`: open connections one client
    /// address may hold, WebSockets included (256; 0 for no limit, e.g. behind
    /// a load balancer whose address every connection has).
    pub max_connections_per_address: usize,
    /// `TWEETMEET_RATE_LIMIT_FACTOR`: every rate limit times this (1).
    pub rate_limit_factor: u32,
    /// `TWEETMEET_TRUSTED_PROXY_HEADER`: behind a proxy, the header it puts
    /// the client's address in (e.g. `x-forwarded-for`; its last address
    /// counts, the one the proxy added). Unset: the connection's address.
    pub trusted_proxy_header: Option<String>,
    /// `TWEETMEET_INVITES_PER_DAY`: invitations a member may create in any
    /// 24 hours (200); counted in the database, so across processes.
    pub invites_per_day: u64,
    /// `TWEETMEET_INVITE_MAIL_INTERVAL_HOURS`: an address is mailed an
    /// invitation to one meet at most once in this long (24; 0: no limit).
    pub invite_mail_interval: Duration,
    /// `TWEETMEET_VAPID_PRIVATE_KEY`: the Web Push (VAPID, RFC 8292) P-256
    /// private key, as PEM (PKCS#8 or SEC1) or the base64url 32-byte scalar.
    /// In development one is generated and kept beside the database; in
    /// production, unset means no Web Push.
    pub vapid_private_key: Option<String>,
    /// `TWEETMEET_VAPID_SUBJECT`: who push services may contact about this
    /// server (`mailto:` or `https:`); the public URL when it is https.
    pub vapid_subject: String,
    /// `TWEETMEET_WEB_PUSH_INSECURE_BASE`: an `http://` address Web Push
    /// endpoints may also start with (a local stand-in in tests). Unset:
    /// endpoints must be `https://`.
    pub web_push_insecure_base: Option<String>,
    /// `TWEETMEET_FCM_CREDENTIALS`: the path of a Firebase service-account
    /// key (JSON). Unset: no pushes to Android.
    pub fcm_credentials: Option<String>,
    /// `TWEETMEET_FCM_BASE`: the FCM HTTP v1 API's address.
    pub fcm_base: String,
    /// APNs, when `TWEETMEET_APNS_KEY_FILE`, `_KEY_ID`, `_TEAM_ID` and
    /// `_TOPIC` are all set (some but not all is an error). Unset: no
    /// pushes to iOS.
    pub apns: Option<ApnsConfig>,
}

/// How the server reaches APNs.
#[derive(Clone, Debug)]
pub struct ApnsConfig {
    /// `TWEETMEET_APNS_KEY_FILE`: the `.p8` signing key's path.
    pub key_file: String,
    /// `TWEETMEET_APNS_KEY_ID`: the key's id (10 characters).
    pub key_id: String,
    /// `TWEETMEET_APNS_TEAM_ID`: the developer team's id.
    pub team_id: String,
    /// `TWEETMEET_APNS_TOPIC`: the app's bundle id.
    pub topic: String,
    /// `TWEETMEET_APNS_BASE`: `https://api.push.apple.com` (or the sandbox).
    pub base: String,
}

/// A setting, as `--help` and the README list it.
pub struct Setting {
    /// The environment variable, `TWEETMEET_…`.
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

impl Setting {
    /// The flag: `TWEETMEET_DATABASE_URL` is `--database-url`.
    pub fn flag(&self) -> String {
        self.name
            .trim_start_matches("TWEETMEET_")
            .to_ascii_lowercase()
            .replace('_', "-")
    }
}

/// Every setting: its variable, its default as the README shows it, and a
/// line of help. `serve --help` lists them; each is also a flag (the
/// variable without its prefix, lower-case, `-` for `_`); a test holds the
/// README's table and the defaults `Config` applies to this.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "TWEETMEET_DATABASE_URL",
        default: "sqlite://tweetmeet.db?mode=rwc",
        help: "sqlite://… or postgres://user@host/db",
    },
    Setting {
        name: "TWEETMEET_BIND",
        default: "127.0.0.1:8000",
        help: "listen address",
    },
    Setting {
        name: "TWEETMEET_ENV",
        default: "development",
        help: "development or production (which requires the JWT secret, and gives introspection and \"did you mean\" to administrators only)",
    },
    Setting {
        name: "TWEETMEET_JWT_SECRET",
        default: "generated in development",
        help: "HMAC key of access tokens, at least 32 characters",
    },
    Setting {
        name: "TWEETMEET_ACCESS_TOKEN_TTL_SECS",
        default: "900",
        help: "access token lifetime",
    },
    Setting {
        name: "TWEETMEET_REFRESH_TOKEN_TTL_DAYS",
        default: "30",
        help: "refresh token lifetime",
    },
    Setting {
        name: "TWEETMEET_EVENT_RETENTION_SECS",
        default: "86400",
        help: "how long the meet activity log keeps the events meetActivity(after:) replays",
    },
    Setting {
        name: "TWEETMEET_LIVE_BUFFER",
        default: "1024",
        help: "events a subscriber may fall behind before it is caught up from the activity log",
    },
    Setting {
        name: "TWEETMEET_METRICS_BIND",
        default: "none",
        help: "address for Prometheus metrics (/metrics), apart from the public port; unset: not served",
    },
    Setting {
        name: "TWEETMEET_OTLP_ENDPOINT",
        default: "none",
        help: "an OpenTelemetry collector's OTLP/HTTP address (http://host:4318): traces of requests and their database work go there; unset: no traces",
    },
    Setting {
        name: "TWEETMEET_PERSISTED_QUERY_BYTES",
        default: "16777216",
        help: "query text the automatic persisted query cache keeps (16 MiB); the least recently used go first",
    },
    Setting {
        name: "TWEETMEET_REFRESH_GRACE_SECS",
        default: "30",
        help: "a rotated refresh token still refreshes this long (two tabs refreshing at once)",
    },
    Setting {
        name: "TWEETMEET_WS_PING_SECS",
        default: "20",
        help: "keepalive ping interval on WebSockets",
    },
    Setting {
        name: "TWEETMEET_WS_SEND_TIMEOUT_SECS",
        default: "10",
        help: "how long a WebSocket client may leave a message unread before it is disconnected",
    },
    Setting {
        name: "TWEETMEET_CORS_ORIGINS",
        default: "none",
        help: "comma-separated browser origins allowed, or *",
    },
    Setting {
        name: "TWEETMEET_LOG_FORMAT",
        default: "text",
        help: "or json; levels with RUST_LOG",
    },
    Setting {
        name: "TWEETMEET_BODY_LIMIT_BYTES",
        default: "1048576",
        help: "larger request bodies get 413",
    },
    Setting {
        name: "TWEETMEET_PUBLIC_URL",
        default: "http://<bind>",
        help: "the web app's base URL, for links in e-mails",
    },
    Setting {
        name: "TWEETMEET_DEFAULT_TIME_ZONE",
        default: "America/Toronto",
        help: "IANA zone for meets that name none (e-mails show local time)",
    },
    Setting {
        name: "TWEETMEET_SMTP_URL",
        default: "none",
        help: "smtp://user:pass@host:587?tls=required, or smtps://…; unset: .eml files",
    },
    Setting {
        name: "TWEETMEET_MAIL_FROM",
        default: "Tweet Meet <noreply@tweetmeet.local>",
        help: "sender of notices",
    },
    Setting {
        name: "TWEETMEET_MAIL_DIR",
        default: "outbox",
        help: "where .eml files go without SMTP",
    },
    Setting {
        name: "TWEETMEET_NOTICE_MAX_ATTEMPTS",
        default: "16",
        help: "delivery attempts (2 s, 4 s, … up to an hour apart: about five hours at the default) before a notice is dead: kept with its last error, logged once at WARN, never tried again",
    },
    Setting {
        name: "TWEETMEET_NOTICE_LEASE_SECS",
        default: "15",
        help: "how long a worker's claim on a notice holds without renewal (renewed while it sends)",
    },
    Setting {
        name: "TWEETMEET_JOB_LEASE_SECS",
        default: "30",
        help: "how long a process's claim on due timed work (a go / no-go meet's deadline) holds before another process may take it",
    },
    Setting {
        name: "TWEETMEET_ARGON2_CONCURRENCY",
        default: "2",
        help: "password hashes computed at once (each takes 19 MiB)",
    },
    Setting {
        name: "TWEETMEET_HEADER_TIMEOUT_SECS",
        default: "10",
        help: "how long a client may take to send a request's headers before the connection is closed",
    },
    Setting {
        name: "TWEETMEET_REQUEST_TIMEOUT_SECS",
        default: "30",
        help: "how long a request may take once its headers are in, body included (a slower one gets 408)",
    },
    Setting {
        name: "TWEETMEET_MAX_CONNECTIONS_PER_ADDRESS",
        default: "256",
        help: "open connections (WebSockets included) one client address may hold",
    },
    Setting {
        name: "TWEETMEET_MAX_SUBSCRIPTIONS_PER_SOCKET",
        default: "100",
        help: "subscriptions one WebSocket may hold at once; one more is refused with BAD_USER_INPUT",
    },
    Setting {
        name: "TWEETMEET_RATE_LIMIT_FACTOR",
        default: "1",
        help: "multiplies every rate limit (see Security and reliability)",
    },
    Setting {
        name: "TWEETMEET_TRUSTED_PROXY_HEADER",
        default: "none",
        help: "behind a proxy, the header holding the client's address (e.g. x-forwarded-for",
    },
    Setting {
        name: "TWEETMEET_INVITES_PER_DAY",
        default: "200",
        help: "invitations a member may create in any 24 hours, counted in the database (so across processes)",
    },
    Setting {
        name: "TWEETMEET_INVITE_MAIL_INTERVAL_HOURS",
        default: "24",
        help: "an address is e-mailed an invitation to one meet at most once in this long, however often it is invited (the invitation is still created or renewed)",
    },
    Setting {
        name: "TWEETMEET_VAPID_PRIVATE_KEY",
        default: "generated in development",
        help: "the Web Push (VAPID) P-256 private key: PEM (PKCS#8 or SEC1) or the base64url 32-byte scalar; in production, unset means no Web Push",
    },
    Setting {
        name: "TWEETMEET_VAPID_SUBJECT",
        default: "<public URL or mailto:>",
        help: "the contact push services see in the VAPID token (mailto:… or https://…)",
    },
    Setting {
        name: "TWEETMEET_WEB_PUSH_INSECURE_BASE",
        default: "none",
        help: "an http:// address Web Push endpoints may also start with (a local stand-in for tests); unset: https only",
    },
    Setting {
        name: "TWEETMEET_FCM_CREDENTIALS",
        default: "none",
        help: "path of a Firebase service-account key (JSON) for pushes to Android (FCM HTTP v1); unset: none",
    },
    Setting {
        name: "TWEETMEET_FCM_BASE",
        default: "https://fcm.googleapis.com",
        help: "the FCM HTTP v1 API's address (a stand-in in tests)",
    },
    Setting {
        name: "TWEETMEET_APNS_KEY_FILE",
        default: "none",
        help: "path of the APNs signing key (.p8) for pushes to iOS; with the key id, team id and topic; unset: none",
    },
    Setting {
        name: "TWEETMEET_APNS_KEY_ID",
        default: "none",
        help: "the APNs key's id",
    },
    Setting {
        name: "TWEETMEET_APNS_TEAM_ID",
        default: "none",
        help: "the Apple developer team's id (the provider token's issuer)",
    },
    Setting {
        name: "TWEETMEET_APNS_TOPIC",
        default: "none",
        help: "the iOS app's bundle id (apns-topic)",
    },
    Setting {
        name: "TWEETMEET_APNS_BASE",
        default: "https://api.push.apple.com",
        help: "the APNs address (https://api.sandbox.push.apple.com for development builds; a stand-in in tests)",
    },
];

/// The VAPID contact without one configured: the public URL when it is
/// https, otherwise the sender's address.
fn vapid_subject_default(public_url: &str, mail_from: &str) -> String {
    if public_url.starts_with("https://") {
        return public_url.trim_end_matches('/').to_owned();
    }
    let address = match (mail_from.find('<'), mail_from.rfind('>')) {
        (Some(open), Some(close)) if open < close => &mail_from[open + 1..close],
        _ => mail_from,
    };
    format!("mailto:{}", address.trim())
}

/// Where settings come from: the process environment, or a map in tests.
struct Source<F>(F);

impl<F: Fn(&str) -> Option<String>> Source<F> {
    fn var(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.var(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("{name}={raw:?}: {e}")),
        }
    }
}

impl Config {
    /// Builds the configuration from any lookup of variable names: the
    /// command line's flags and variables, or a map in tests (so parallel
    /// tests never share the process environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let source = Source(lookup);
        let var = |name: &str| source.var(name);
        let environment = match var("TWEETMEET_ENV")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("development") | Some("dev") => Environment::Development,
            Some("production") | Some("prod") => Environment::Production,
            Some(other) => bail!("TWEETMEET_ENV must be development or production, not {other:?}"),
        };
        let jwt_secret = var("TWEETMEET_JWT_SECRET");
        if environment == Environment::Production && jwt_secret.is_none() {
            bail!("TWEETMEET_JWT_SECRET is required when TWEETMEET_ENV=production");
        }
        if let Some(secret) = &jwt_secret
            && secret.len() < 32
        {
            bail!("TWEETMEET_JWT_SECRET must be at least 32 characters");
        }
        let log_format = match var("TWEETMEET_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("TWEETMEET_LOG_FORMAT must be text or json, not {other:?}"),
        };
        let bind = source.parsed("TWEETMEET_BIND", SocketAddr::from(([127, 0, 0, 1], 8000)))?;
        let seconds = |name: &str, default: u64| -> anyhow::Result<Duration> {
            match source.parsed(name, default)? {
                secs @ 1..=86_400 => Ok(Duration::from_secs(secs)),
                _ => bail!("{name} must be from 1 to 86400 (a day)"),
            }
        };
        let public_url = var("TWEETMEET_PUBLIC_URL").unwrap_or_else(|| format!("http://{bind}"));
        let mail_from = var("TWEETMEET_MAIL_FROM")
            .unwrap_or_else(|| "Tweet Meet <noreply@tweetmeet.local>".into());
        Ok(Self {
            database_url: var("TWEETMEET_DATABASE_URL")
                .unwrap_or_else(|| "sqlite://tweetmeet.db?mode=rwc".into()),
            bind,
            environment,
            jwt_secret,
            access_token_ttl: Duration::from_secs(
                source.parsed("TWEETMEET_ACCESS_TOKEN_TTL_SECS", 900)?,
            ),
            refresh_token_ttl: Duration::from_secs(
                source.parsed::<u64>("TWEETMEET_REFRESH_TOKEN_TTL_DAYS", 30)? * 86_400,
            ),
            refresh_grace: match source.parsed("TWEETMEET_REFRESH_GRACE_SECS", 30)? {
                secs @ 0..=300 => Duration::from_secs(secs),
                _ => bail!("TWEETMEET_REFRESH_GRACE_SECS must be from 0 to 300"),
            },
            event_retention: Duration::from_secs(
                match source.parsed("TWEETMEET_EVENT_RETENTION_SECS", 86_400)? {
                    secs @ 1..=31_536_000 => secs,
                    _ => {
                        bail!("TWEETMEET_EVENT_RETENTION_SECS must be from 1 to 31536000 (a year)")
                    }
                },
            ),
            live_buffer: match source.parsed("TWEETMEET_LIVE_BUFFER", 1024)? {
                events @ 1..=1_000_000 => events,
                _ => bail!("TWEETMEET_LIVE_BUFFER must be from 1 to 1000000"),
            },
            metrics_bind: match var("TWEETMEET_METRICS_BIND") {
                Some(raw) => Some(
                    raw.trim()
                        .parse()
                        .map_err(|err| anyhow::anyhow!("TWEETMEET_METRICS_BIND: {err}"))?,
                ),
                None => None,
            },
            otlp_endpoint: match var("TWEETMEET_OTLP_ENDPOINT") {
                Some(raw) => {
                    crate::telemetry::check_endpoint(&raw)
                        .map_err(|err| anyhow::anyhow!("TWEETMEET_OTLP_ENDPOINT: {err}"))?;
                    Some(raw.trim().to_owned())
                }
                None => None,
            },
            persisted_query_bytes: source
                .parsed("TWEETMEET_PERSISTED_QUERY_BYTES", 16 * 1024 * 1024)?,
            cors_origins: var("TWEETMEET_CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            log_format,
            body_limit: source.parsed("TWEETMEET_BODY_LIMIT_BYTES", 1024 * 1024)?,
            public_url: public_url.clone(),
            default_time_zone: var("TWEETMEET_DEFAULT_TIME_ZONE")
                .unwrap_or_else(|| "America/Toronto".into()),
            smtp_url: var("TWEETMEET_SMTP_URL"),
            mail_from: mail_from.clone(),
            mail_dir: PathBuf::from(var("TWEETMEET_MAIL_DIR").unwrap_or_else(|| "outbox".into())),
            notice_max_attempts: match source.parsed("TWEETMEET_NOTICE_MAX_ATTEMPTS", 16)? {
                attempts @ 1..=1000 => attempts,
                _ => bail!("TWEETMEET_NOTICE_MAX_ATTEMPTS must be from 1 to 1000"),
            },
            notice_lease: seconds("TWEETMEET_NOTICE_LEASE_SECS", 15)?,
            job_lease: seconds("TWEETMEET_JOB_LEASE_SECS", 30)?,
            argon2_concurrency: source.parsed("TWEETMEET_ARGON2_CONCURRENCY", 2)?,
            ws_ping_interval: seconds("TWEETMEET_WS_PING_SECS", 20)?,
            ws_send_timeout: seconds("TWEETMEET_WS_SEND_TIMEOUT_SECS", 10)?,
            max_subscriptions_per_socket: source
                .parsed("TWEETMEET_MAX_SUBSCRIPTIONS_PER_SOCKET", 100)?,
            header_timeout: seconds("TWEETMEET_HEADER_TIMEOUT_SECS", 10)?,
            request_timeout: seconds("TWEETMEET_REQUEST_TIMEOUT_SECS", 30)?,
            max_connections_per_address: source
                .parsed("TWEETMEET_MAX_CONNECTIONS_PER_ADDRESS", 256)?,
            rate_limit_factor: match source.parsed("TWEETMEET_RATE_LIMIT_FACTOR", 1)? {
                0 => bail!("TWEETMEET_RATE_LIMIT_FACTOR must be at least 1"),
                factor => factor,
            },
            trusted_proxy_header: var("TWEETMEET_TRUSTED_PROXY_HEADER")
                .map(|h| h.trim().to_ascii_lowercase()),
            invites_per_day: match source.parsed("TWEETMEET_INVITES_PER_DAY", 200)? {
                0 => bail!("TWEETMEET_INVITES_PER_DAY must be at least 1"),
                n => n,
            },
            invite_mail_interval: Duration::from_secs(
                match source.parsed::<u64>("TWEETMEET_INVITE_MAIL_INTERVAL_HOURS", 24)? {
                    hours @ 0..=8_760 => hours * 3_600,
                    _ => bail!(
                        "TWEETMEET_INVITE_MAIL_INTERVAL_HOURS must be from 0 to 8760 (a year)"
                    ),
                },
            ),
            vapid_private_key: var("TWEETMEET_VAPID_PRIVATE_KEY"),
            vapid_subject: match var("TWEETMEET_VAPID_SUBJECT") {
                Some(subject)
                    if subject.starts_with("mailto:") || subject.starts_with("https://") =>
                {
                    subject.trim().to_owned()
                }
                Some(other) => {
                    bail!(
                        "TWEETMEET_VAPID_SUBJECT must be a mailto: or https:// URL, not {other:?}"
                    )
                }
                None => vapid_subject_default(&public_url, &mail_from),
            },
            web_push_insecure_base: match var("TWEETMEET_WEB_PUSH_INSECURE_BASE") {
                Some(base) if base.starts_with("http://") => Some(base.trim().to_owned()),
                Some(other) => {
                    bail!("TWEETMEET_WEB_PUSH_INSECURE_BASE must start with http://, not {other:?}")
                }
                None => None,
            },
            fcm_credentials: var("TWEETMEET_FCM_CREDENTIALS"),
            fcm_base: var("TWEETMEET_FCM_BASE")
                .unwrap_or_else(|| "https://fcm.googleapis.com".into()),
            apns: match (
                var("TWEETMEET_APNS_KEY_FILE"),
                var("TWEETMEET_APNS_KEY_ID"),
                var("TWEETMEET_APNS_TEAM_ID"),
                var("TWEETMEET_APNS_TOPIC"),
            ) {
                (None, None, None, None) => None,
                (Some(key_file), Some(key_id), Some(team_id), Some(topic)) => Some(ApnsConfig {
                    key_file,
                    key_id: key_id.trim().to_owned(),
                    team_id: team_id.trim().to_owned(),
                    topic: topic.trim().to_owned(),
                    base: var("TWEETMEET_APNS_BASE")
                        .unwrap_or_else(|| "https://api.push.apple.com".into()),
                }),
                _ => bail!(
                    "APNs needs all of TWEETMEET_APNS_KEY_FILE, TWEETMEET_APNS_KEY_ID, \
                     TWEETMEET_APNS_TEAM_ID and TWEETMEET_APNS_TOPIC"
                ),
            },
        })
    }

    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_suit_a_bare_machine() {
        let config = config(&[]).unwrap();
        assert_eq!(config.database_url, "sqlite://tweetmeet.db?mode=rwc");
        assert_eq!(config.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(config.environment, Environment::Development);
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        assert_eq!(config.body_limit, 1024 * 1024);
        assert_eq!(config.ws_ping_interval, Duration::from_secs(20));
        assert_eq!(config.ws_send_timeout, Duration::from_secs(10));
        assert_eq!(config.notice_max_attempts, 16);
        assert_eq!(config.notice_lease, Duration::from_secs(15));
        assert_eq!(config.job_lease, Duration::from_secs(30));
        assert_eq!(config.invites_per_day, 200);
        assert_eq!(config.invite_mail_interval, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn production_requires_a_jwt_secret() {
        assert!(config(&[("TWEETMEET_ENV", "production")]).is_err());
        assert!(
            config(&[
                ("TWEETMEET_ENV", "production"),
                ("TWEETMEET_JWT_SECRET", "short")
            ])
            .is_err()
        );
        let secret = "a-production-secret-of-enough-length!";
        assert!(
            config(&[
                ("TWEETMEET_ENV", "production"),
                ("TWEETMEET_JWT_SECRET", secret)
            ])
            .unwrap()
            .is_production()
        );
        assert!(config(&[("TWEETMEET_ENV", "staging")]).is_err());
        assert!(config(&[("TWEETMEET_BIND", "not an address")]).is_err());
        assert!(config(&[("TWEETMEET_WS_PING_SECS", "0")]).is_err());
        assert!(config(&[("TWEETMEET_WS_SEND_TIMEOUT_SECS", "99999999999")]).is_err());
        assert!(config(&[("TWEETMEET_NOTICE_MAX_ATTEMPTS", "0")]).is_err());
        assert!(config(&[("TWEETMEET_NOTICE_LEASE_SECS", "0")]).is_err());
        assert!(config(&[("TWEETMEET_INVITES_PER_DAY", "0")]).is_err());
        assert!(config(&[("TWEETMEET_INVITE_MAIL_INTERVAL_HOURS", "-1")]).is_err());
        assert!(config(&[("TWEETMEET_OTLP_ENDPOINT", "https://collector:4318")]).is_err());
        assert_eq!(
            config(&[("TWEETMEET_OTLP_ENDPOINT", "http://collector:4318")])
                .unwrap()
                .otlp_endpoint
                .as_deref(),
            Some("http://collector:4318")
        );
    }

    #[test]
    fn every_variable_read_is_a_listed_setting() {
        let source = include_str!("config.rs");
        let read: std::collections::BTreeSet<&str> = source
            .match_indices("\"TWEETMEET_")
            .map(|(at, _)| {
                let rest = &source[at + 1..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .filter(|name| name.len() > "TWEETMEET_".len())
            .collect();
        let listed: std::collections::BTreeSet<&str> = SETTINGS.iter().map(|s| s.name).collect();
        assert_eq!(read, listed);
    }

    #[test]
    fn listed_defaults_are_the_defaults_applied() {
        let none = format!("{:?}", config(&[]).unwrap());
        for setting in SETTINGS {
            if setting.default.contains(' ')
                || setting.default.contains('<')
                || setting.default == "none"
            {
                continue;
            }
            let set = config(&[(setting.name, setting.default)])
                .unwrap_or_else(|err| panic!("{}={}: {err}", setting.name, setting.default));
            assert_eq!(format!("{set:?}"), none, "{}", setting.name);
        }
    }
}
