//! Push notices (issue 17) as phones and browsers get them: devices
//! registered through the API, and each push service played by a stand-in on
//! loopback that speaks its protocol. The Web Push stand-in holds each
//! subscription's private key and decrypts what it is sent (RFC 8291,
//! written here apart from the server's code), and checks the VAPID token
//! (RFC 8292) against the key `pushSetup` gives clients. The FCM stand-in
//! serves the OAuth token endpoint (checking the service account's signed
//! assertion with its public key) and `messages:send` (checking the bearer
//! token it issued). The APNs stand-in speaks HTTP/2 only and checks the
//! topic, the push type and the provider token.

mod common;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use common::{TestServer, assert_nothing_within, code, wait_until};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint};
use ring::{aead, hkdf, rand::SecureRandom};
use serde_json::{Value, json};

/// Web Push endpoints on loopback (the stand-ins) may be plain http.
const SETTINGS: &[(&str, &str)] = &[("TWEETMEET_WEB_PUSH_INSECURE_BASE", "http://127.0.0.1:")];

/// A browser's push subscription: its key pair and auth secret.
struct Subscription {
    secret: SecretKey,
    auth: [u8; 16],
}

impl Subscription {
    fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let secret = loop {
            let mut raw = [0u8; 32];
            rng.fill(&mut raw).unwrap();
            if let Ok(key) = SecretKey::from_slice(&raw) {
                break key;
            }
        };
        let mut auth = [0u8; 16];
        rng.fill(&mut auth).unwrap();
        Self { secret, auth }
    }

    fn public(&self) -> Vec<u8> {
        self.secret
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }
}

/// One request the stand-in took.
#[derive(Clone, Debug)]
struct Received {
    subscription: String,
    at: Instant,
    status: u16,
    /// The decrypted message, when it was accepted.
    payload: Option<Value>,
}

#[derive(Default)]
struct WebState {
    subscriptions: HashMap<String, Subscription>,
    /// Answers to give, in order, before the default 201.
    answers: HashMap<String, VecDeque<(u16, Option<u64>)>>,
    received: Vec<Received>,
    /// What was wrong with a request (a bad token, undecryptable): none, at the end.
    faults: Vec<String>,
    vapid_key: Option<String>,
    origin: String,
}

/// The Web Push service stand-in.
#[derive(Clone)]
struct WebPushService {
    state: Arc<Mutex<WebState>>,
    base: String,
}

impl WebPushService {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(WebState {
            origin: origin.clone(),
            ..WebState::default()
        }));
        let app = Router::new()
            .route("/push/{id}", post(web_push))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            state,
            base: origin,
        }
    }

    /// A new subscription: the `registerDevice` input for it, and its name.
    fn subscribe(&self, name: &str) -> Value {
        let subscription = Subscription::new();
        let input = json!({
            "platform": "WEB",
            "token": format!("{}/push/{name}", self.base),
            "name": format!("{name}'s browser"),
            "webPushP256dh": URL_SAFE_NO_PAD.encode(subscription.public()),
            "webPushAuth": URL_SAFE_NO_PAD.encode(subscription.auth),
        });
        self.state
            .lock()
            .unwrap()
            .subscriptions
            .insert(name.to_owned(), subscription);
        input
    }

    fn expect_vapid_key(&self, key: &str) {
        self.state.lock().unwrap().vapid_key = Some(key.to_owned());
    }

    fn answer_first(&self, name: &str, status: u16, retry_after: Option<u64>) {
        self.state
            .lock()
            .unwrap()
            .answers
            .entry(name.to_owned())
            .or_default()
            .push_back((status, retry_after));
    }

    fn received(&self, name: &str) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.subscription == name)
            .cloned()
            .collect()
    }

    /// The messages `name` got (decrypted).
    fn messages(&self, name: &str) -> Vec<Value> {
        self.received(name)
            .into_iter()
            .filter_map(|r| r.payload)
            .collect()
    }

    /// Waits for a message to `name` whose title starts with `title`.
    async fn message(&self, name: &str, title: &str) -> Value {
        let found = common::poll_until(
            Duration::from_secs(15),
            async || self.find(name, title),
            Option::is_some,
        )
        .await;
        found.unwrap_or_else(|| {
            panic!(
                "no push to {name}: {title}; it got {:#?}, faults {:#?}",
                self.received(name),
                self.state.lock().unwrap().faults
            )
        })
    }

    fn find(&self, name: &str, title: &str) -> Option<Value> {
        self.messages(name)
            .into_iter()
            .find(|m| m["title"].as_str().is_some_and(|t| t.starts_with(title)))
    }

    fn assert_no_faults(&self) {
        let faults = self.state.lock().unwrap().faults.clone();
        assert!(faults.is_empty(), "{faults:#?}");
    }
}

/// Checks the VAPID `Authorization` (RFC 8292): an ES256 JWT for this
/// origin, signed by the key given as `k`, which is the server's.
fn check_vapid(headers: &HeaderMap, state: &WebState) -> Result<(), String> {
    let value = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization")?;
    let rest = value.strip_prefix("vapid ").ok_or("not vapid")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(t) = part.strip_prefix("t=") {
            token = Some(t);
        } else if let Some(k) = part.strip_prefix("k=") {
            key = Some(k);
        }
    }
    let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
    if state.vapid_key.as_deref() != Some(key) {
        return Err(format!("k={key} is not the server's pushSetup key"));
    }
    let point = URL_SAFE_NO_PAD.decode(key).map_err(|e| e.to_string())?;
    if point.len() != 65 || point[0] != 4 {
        return Err("k is not an uncompressed P-256 point".into());
    }
    let decoding = jsonwebtoken::DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..]),
    )
    .map_err(|e| e.to_string())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&state.origin]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .map_err(|e| format!("VAPID token: {e}"))?
        .claims;
    let exp = claims["exp"].as_i64().unwrap_or_default();
    if exp > Utc::now().timestamp() + 24 * 3600 {
        return Err("VAPID token good for more than 24 hours".into());
    }
    let sub = claims["sub"].as_str().unwrap_or_default();
    if !(sub.starts_with("mailto:") || sub.starts_with("https://")) {
        return Err(format!("VAPID sub {sub:?}"));
    }
    Ok(())
}

fn hkdf_expand(prk: &hkdf::Prk, info: &[u8], len: usize) -> Vec<u8> {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let mut out = vec![0u8; len];
    prk.expand(&[info], Len(len))
        .unwrap()
        .fill(&mut out)
        .unwrap();
    out
}

/// Decrypts an `aes128gcm` body (RFC 8188 framing, RFC 8291 keys) with the
/// subscription's private key and auth secret.
fn decrypt(body: &[u8], subscription: &Subscription) -> Result<Vec<u8>, String> {
    if body.len() < 21 {
        return Err("body too short".into());
    }
    let salt = &body[..16];
    let record_size = u32::from_be_bytes(body[16..20].try_into().unwrap()) as usize;
    let id_len = body[20] as usize;
    let key_id = body.get(21..21 + id_len).ok_or("truncated key id")?;
    let ciphertext = &body[21 + id_len..];
    if ciphertext.len() > record_size {
        return Err("more than one record".into());
    }
    let as_public = p256::PublicKey::from_sec1_bytes(key_id).map_err(|e| e.to_string())?;
    let shared = p256::ecdh::diffie_hellman(
        subscription.secret.to_nonzero_scalar(),
        as_public.as_affine(),
    );
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(&subscription.public());
    key_info.extend_from_slice(key_id);
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, &subscription.auth)
        .extract(&shared.raw_secret_bytes()[..]);
    let ikm = hkdf_expand(&prk_key, &key_info, 32);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
    let cek = hkdf_expand(&prk, b"Content-Encoding: aes128gcm\0", 16);
    let nonce = hkdf_expand(&prk, b"Content-Encoding: nonce\0", 12);
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).unwrap());
    let mut record = ciphertext.to_vec();
    let plain = key
        .open_in_place(
            aead::Nonce::try_assume_unique_for_key(&nonce).unwrap(),
            aead::Aad::empty(),
            &mut record,
        )
        .map_err(|_| "does not decrypt with the subscription's key")?;
    let end = plain.iter().rposition(|b| *b != 0).ok_or("no delimiter")?;
    if plain[end] != 2 {
        return Err("not the last record's delimiter".into());
    }
    Ok(plain[..end].to_vec())
}

async fn web_push(
    State(state): State<Arc<Mutex<WebState>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    let fault = |state: &mut WebState, fault: String| {
        state.faults.push(format!("{name}: {fault}"));
        StatusCode::BAD_REQUEST.into_response()
    };
    if let Err(err) = check_vapid(&headers, &state) {
        return fault(&mut state, err);
    }
    if headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        != Some("aes128gcm")
    {
        return fault(&mut state, "Content-Encoding is not aes128gcm".into());
    }
    if headers.get("ttl").is_none() {
        return fault(&mut state, "no TTL".into());
    }
    let answer = state.answers.get_mut(&name).and_then(VecDeque::pop_front);
    let (status, retry_after) = answer.unwrap_or((201, None));
    let mut payload = None;
    if status == 201 {
        let Some(subscription) = state.subscriptions.get(&name) else {
            return fault(&mut state, "no such subscription".into());
        };
        match decrypt(&body, subscription)
            .and_then(|plain| serde_json::from_slice::<Value>(&plain).map_err(|e| e.to_string()))
        {
            Ok(message) => payload = Some(message),
            Err(err) => return fault(&mut state, err),
        }
    }
    state.received.push(Received {
        subscription: name,
        at: Instant::now(),
        status,
        payload,
    });
    let mut response = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}

async fn register_device(server: &TestServer, token: &str, input: Value) -> Value {
    server
        .op(Some(token), "RegisterDevice", json!({ "input": input }))
        .await
}

async fn devices_of(server: &TestServer, token: &str) -> Vec<Value> {
    server
        .ok(Some(token), "MyNotificationSettings", json!({}))
        .await["me"]["devices"]
        .as_array()
        .expect("devices")
        .clone()
}

/// Starts the Web Push stand-in and tells it the server's VAPID key, as
/// `pushSetup` gives it.
async fn web_push_service(server: &TestServer) -> WebPushService {
    let service = WebPushService::start().await;
    let setup = server.ok(None, "PushSetup", json!({})).await;
    let key = setup["pushSetup"]["webPushPublicKey"]
        .as_str()
        .expect("a VAPID key");
    service.expect_vapid_key(key);
    service
}

async fn prefer(server: &TestServer, token: &str, variables: Value) {
    server
        .ok(Some(token), "UpdateNotificationPreferences", variables)
        .await;
}

/// A browser gets an invitation, a waitlist promotion, a cancellation and a
/// reminder, each decrypted by the stand-in, with the meet's local time and
/// the ids to open it, and nothing of who else is going.
async fn web_push_carries_every_notice(server: TestServer) {
    let push = web_push_service(&server).await;
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    let registered = register_device(&server, &ann, push.subscribe("ann")).await;
    let device = &registered["data"]["registerDevice"];
    assert_eq!(device["platform"], "WEB", "{registered:#}");
    assert_eq!(device["name"], "ann's browser");

    // Reminded 15 minutes before a meet starting 15 minutes and 3 s from now.
    prefer(
        &server,
        &ann,
        json!({ "preferences": [], "reminderMinutesBefore": 15 }),
    )
    .await;
    let starts = (Utc::now() + chrono::Duration::seconds(15 * 60 + 3)).to_rfc3339();
    let soon = server
        .meet(
            &host,
            json!({ "title": "Soon drinks", "startsAt": starts, "timeZone": "America/Toronto" }),
        )
        .await;
    server.rsvp_ok(&ann, &soon, "GOING").await;

    let quiz = server
        .meet(
            &host,
            json!({ "title": "Quiz night", "capacity": 2, "timeZone": "America/Toronto",
                    "startsAt": "2030-01-15T19:00:00Z" }),
        )
        .await;
    let invited = server
        .invite_ok(&host, &quiz, json!({ "handles": ["ann"] }))
        .await;
    let invitation = invited["inviteToMeet"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = push.message("ann", "host invited you").await;
    assert_eq!(message["data"]["meetId"], quiz.as_str(), "{message:#}");
    assert_eq!(message["data"]["invitationId"], invitation.as_str());
    assert_eq!(message["data"]["kind"], "INVITATION");
    let body = message["body"].as_str().unwrap();
    assert!(
        body.contains("Quiz night") && body.contains("14:00 EST"),
        "the meet's local time: {body}"
    );

    // Two seats: the host's and bob's.
    let seated = server.rsvp_ok(&bob, &quiz, "GOING").await;
    assert_eq!(seated["rsvp"]["status"], "GOING", "{seated:#}");
    let waiting = server.rsvp_ok(&ann, &quiz, "GOING").await;
    assert_eq!(waiting["rsvp"]["status"], "WAITLISTED", "{waiting:#}");
    server.rsvp_ok(&bob, &quiz, "NOT_GOING").await;
    let message = push.message("ann", "You're in: Quiz night").await;
    assert_eq!(message["data"]["kind"], "WAITLIST_PROMOTED");
    assert_eq!(message["data"]["meetId"], quiz.as_str());

    server
        .ok(
            Some(&host),
            "CancelMeet",
            json!({ "id": quiz, "reason": "Snow" }),
        )
        .await;
    let message = push.message("ann", "Cancelled: Quiz night").await;
    assert_eq!(message["data"]["kind"], "MEET_CANCELLED");
    assert!(message["body"].as_str().unwrap().contains("Snow"));

    let message = push.message("ann", "Soon: Soon drinks").await;
    assert_eq!(message["data"]["kind"], "REMINDER");
    assert_eq!(message["data"]["meetId"], soon.as_str());

    for message in push.messages("ann") {
        assert!(
            !message.to_string().contains("bob"),
            "a push names another guest: {message:#}"
        );
    }
    assert_eq!(push.messages("ann").len(), 4, "{:#?}", push.messages("ann"));
    let devices = devices_of(&server, &ann).await;
    assert!(devices[0]["lastUsedAt"].is_string(), "{devices:#?}");
    push.assert_no_faults();
}

/// PUSH only: no e-mail; EMAIL only: no push.
async fn preferences_choose_the_channel(server: TestServer) {
    let push = web_push_service(&server).await;
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    for (token, name) in [(&ann, "ann"), (&bob, "bob")] {
        let registered = register_device(&server, token, push.subscribe(name)).await;
        assert!(registered.get("errors").is_none(), "{registered:#}");
    }
    prefer(
        &server,
        &ann,
        json!({ "preferences": [{ "kind": "MEET_CANCELLED", "channels": ["PUSH"] }] }),
    )
    .await;
    prefer(
        &server,
        &bob,
        json!({ "preferences": [{ "kind": "MEET_CANCELLED", "channels": ["EMAIL"] }] }),
    )
    .await;
    let meet = server.meet(&host, json!({ "title": "Board games" })).await;
    server.rsvp_ok(&ann, &meet, "GOING").await;
    server.rsvp_ok(&bob, &meet, "GOING").await;
    server
        .ok(Some(&host), "CancelMeet", json!({ "id": meet }))
        .await;
    push.message("ann", "Cancelled: Board games").await;
    let to_bob = server.mail_to("bob@example.com", 1).await;
    assert!(to_bob[0].contains("Cancelled: Board games"), "{to_bob:?}");
    assert_nothing_within(
        Duration::from_secs(2),
        "an e-mail to ann or a push to bob",
        async || {
            server
                .mail_files()
                .iter()
                .any(|m| m.contains("To: ann@example.com"))
                || !push.received("bob").is_empty()
        },
    )
    .await;
    push.assert_no_faults();
}

/// A subscription the service says is gone (410) is removed; a busy one
/// (429, `Retry-After: 1`) is tried again, no sooner than it asked.
async fn gone_devices_go_and_busy_services_are_retried(server: TestServer) {
    let push = web_push_service(&server).await;
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    for name in ["old", "busy"] {
        let registered = register_device(&server, &ann, push.subscribe(name)).await;
        assert!(registered.get("errors").is_none(), "{registered:#}");
    }
    push.answer_first("old", 410, None);
    push.answer_first("busy", 429, Some(1));
    assert_eq!(devices_of(&server, &ann).await.len(), 2);
    let meet = server.meet(&host, json!({ "title": "Book club" })).await;
    server
        .invite_ok(&host, &meet, json!({ "handles": ["ann"] }))
        .await;
    push.message("busy", "host invited you").await;
    let tries = push.received("busy");
    assert_eq!(tries.len(), 2, "{tries:#?}");
    assert_eq!(tries[0].status, 429);
    assert!(
        tries[1].at - tries[0].at >= Duration::from_secs(1),
        "retried after {:?}, before its Retry-After",
        tries[1].at - tries[0].at
    );
    wait_until(
        Duration::from_secs(5),
        "the gone device removed",
        async || devices_of(&server, &ann).await.len() == 1,
    )
    .await;
    assert_eq!(devices_of(&server, &ann).await[0]["name"], "busy's browser");
    assert_eq!(push.received("old").len(), 1, "never tried again");
    push.assert_no_faults();
}

/// What may be registered, who sees and removes devices, and `pushSetup`.
async fn devices_belong_to_their_owner(server: TestServer) {
    let push = web_push_service(&server).await;
    let setup = server.ok(None, "PushSetup", json!({})).await;
    assert_eq!(setup["pushSetup"]["platforms"], json!(["WEB"]), "{setup:#}");
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;

    let good = push.subscribe("ann");
    let mut bad_inputs = Vec::new();
    for (field, value) in [
        ("token", json!("http://example.com/push/1")),
        ("token", json!("not a url")),
        ("token", json!("")),
        ("webPushP256dh", json!(URL_SAFE_NO_PAD.encode([4u8; 33]))),
        ("webPushP256dh", json!("!!!")),
        ("webPushP256dh", Value::Null),
        ("webPushAuth", json!(URL_SAFE_NO_PAD.encode([1u8; 8]))),
        ("name", json!("x".repeat(101))),
    ] {
        let mut input = good.clone();
        input[field] = value;
        bad_inputs.push(input);
    }
    bad_inputs.push(json!({ "platform": "IOS", "token": "not hex" }));
    bad_inputs.push(json!({ "platform": "ANDROID", "token": "fcm-token", "webPushAuth": "AAAA" }));
    for input in bad_inputs {
        let response = register_device(&server, &ann, input.clone()).await;
        assert_eq!(code(&response), "BAD_USER_INPUT", "{input}: {response:#}");
    }
    assert_eq!(
        code(
            &server
                .op(None, "RegisterDevice", json!({ "input": good }))
                .await
        ),
        "UNAUTHENTICATED"
    );

    let first = register_device(&server, &ann, good.clone()).await;
    let id = first["data"]["registerDevice"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut renamed = good.clone();
    renamed["name"] = json!("Firefox");
    let again = register_device(&server, &ann, renamed.clone()).await;
    assert_eq!(
        again["data"]["registerDevice"]["id"],
        id.as_str(),
        "the same device"
    );
    assert_eq!(again["data"]["registerDevice"]["name"], "Firefox");
    assert_eq!(devices_of(&server, &ann).await.len(), 1);

    // Another member's devices: neither listed nor removable.
    let others = server
        .graphql(
            Some(&bob),
            json!({ "query": "query { user(handle: \"ann\") { devices { id } } }" }),
        )
        .await;
    assert_eq!(others["data"]["user"]["devices"], Value::Null, "{others:#}");
    let removed = server
        .ok(Some(&bob), "UnregisterDevice", json!({ "id": id }))
        .await;
    assert_eq!(removed["unregisterDevice"], false);
    assert_eq!(devices_of(&server, &ann).await.len(), 1);

    // The same subscription registered by bob (the browser changed hands) is his.
    let taken = register_device(&server, &bob, renamed).await;
    assert_eq!(taken["data"]["registerDevice"]["id"], id.as_str());
    assert!(devices_of(&server, &ann).await.is_empty());
    assert_eq!(devices_of(&server, &bob).await.len(), 1);
    let removed = server
        .ok(Some(&bob), "UnregisterDevice", json!({ "id": id }))
        .await;
    assert_eq!(removed["unregisterDevice"], true);
    assert!(devices_of(&server, &bob).await.is_empty());

    let android = register_device(
        &server,
        &ann,
        json!({ "platform": "ANDROID", "token": "fcm-registration-token" }),
    )
    .await;
    assert_eq!(
        android["data"]["registerDevice"]["platform"], "ANDROID",
        "{android:#}"
    );
}

/// What the FCM stand-in saw.
#[derive(Default)]
struct FcmState {
    origin: String,
    /// The service account's public key (n, e, base64url).
    public: (String, String),
    issued: Vec<String>,
    token_requests: usize,
    /// Each `messages:send` accepted: the device token and the message.
    sent: Vec<(String, Value)>,
    /// Answers to give per device token, in order, before the default 200.
    answers: HashMap<String, VecDeque<(u16, Value)>>,
    faults: Vec<String>,
}

/// FCM HTTP v1 and Google's OAuth token endpoint, played on loopback.
#[derive(Clone)]
struct FcmService {
    state: Arc<Mutex<FcmState>>,
    /// The service-account key file the server reads.
    key_file: Arc<tempfile::NamedTempFile>,
    base: String,
}

const CLIENT_EMAIL: &str = "push@tweetmeet-test.iam.gserviceaccount.com";

impl FcmService {
    async fn start() -> Self {
        use rsa::{
            pkcs8::{EncodePrivateKey, LineEnding},
            traits::PublicKeyParts,
        };
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let public = (
            URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FcmState {
            origin: origin.clone(),
            public,
            ..FcmState::default()
        }));
        let app = Router::new()
            .route("/token", post(fcm_token))
            .route("/v1/projects/{project}/messages:send", post(fcm_send))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let account = json!({
            "type": "service_account",
            "project_id": "tweetmeet-test",
            "private_key_id": "key-1",
            "private_key": key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            "client_email": CLIENT_EMAIL,
            "token_uri": format!("{origin}/token"),
        });
        let mut key_file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut key_file, account.to_string().as_bytes()).unwrap();
        Self {
            state,
            key_file: Arc::new(key_file),
            base: origin,
        }
    }

    fn settings(&self) -> Vec<(String, String)> {
        vec![
            (
                "TWEETMEET_FCM_CREDENTIALS".into(),
                self.key_file.path().display().to_string(),
            ),
            ("TWEETMEET_FCM_BASE".into(), self.base.clone()),
        ]
    }

    fn answer_first(&self, token: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .answers
            .entry(token.to_owned())
            .or_default()
            .push_back((status, body));
    }

    fn find(&self, token: &str, title: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .sent
            .iter()
            .find(|(to, m)| {
                to == token
                    && m["notification"]["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(title))
            })
            .map(|(_, m)| m.clone())
    }

    async fn message(&self, token: &str, title: &str) -> Value {
        let found = common::poll_until(
            Duration::from_secs(15),
            async || self.find(token, title),
            Option::is_some,
        )
        .await;
        found.unwrap_or_else(|| {
            let state = self.state.lock().unwrap();
            panic!(
                "no FCM message to {token}: {title}; sent {:#?}, faults {:#?}",
                state.sent, state.faults
            )
        })
    }

    fn assert_no_faults(&self) {
        let faults = self.state.lock().unwrap().faults.clone();
        assert!(faults.is_empty(), "{faults:#?}");
    }
}

/// The token endpoint: a JWT-bearer grant whose assertion the service
/// account signed (RS256) for this endpoint and FCM's scope.
async fn fcm_token(State(state): State<Arc<Mutex<FcmState>>>, body: String) -> Response {
    let mut state = state.lock().unwrap();
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.to_owned(), v.replace("%3A", ":")))
        })
        .collect();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        state.faults.push(format!("grant_type in {body}"));
        return StatusCode::BAD_REQUEST.into_response();
    }
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let key =
        jsonwebtoken::DecodingKey::from_rsa_components(&state.public.0, &state.public.1).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", state.origin)]);
    validation.set_issuer(&[CLIENT_EMAIL]);
    let claims = match jsonwebtoken::decode::<Value>(&assertion, &key, &validation) {
        Ok(token) => token.claims,
        Err(err) => {
            state.faults.push(format!("assertion: {err}"));
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    if claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging" {
        state.faults.push(format!("scope {}", claims["scope"]));
        return StatusCode::BAD_REQUEST.into_response();
    }
    state.token_requests += 1;
    let token = format!("access-{}", state.token_requests);
    state.issued.push(token.clone());
    axum::Json(json!({ "access_token": token, "expires_in": 3599, "token_type": "Bearer" }))
        .into_response()
}

async fn fcm_send(
    State(state): State<Arc<Mutex<FcmState>>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = state.lock().unwrap();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    if !state.issued.contains(&bearer) {
        state
            .faults
            .push(format!("bearer {bearer:?} was never issued"));
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if project != "tweetmeet-test" {
        state.faults.push(format!("project {project}"));
        return StatusCode::NOT_FOUND.into_response();
    }
    let message = body["message"].clone();
    let token = message["token"].as_str().unwrap_or_default().to_owned();
    if let Some((status, answer)) = state.answers.get_mut(&token).and_then(VecDeque::pop_front) {
        return (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    }
    if message["data"]
        .as_object()
        .is_none_or(|data| data.values().any(|v| !v.is_string()))
    {
        state
            .faults
            .push(format!("data must be strings: {message}"));
        return StatusCode::BAD_REQUEST.into_response();
    }
    state.sent.push((token, message));
    axum::Json(json!({ "name": "projects/tweetmeet-test/messages/1" })).into_response()
}

/// Runs each scenario on SQLite and on PostgreSQL with a database of its
/// own; the scenario starts its stand-ins, then the server.
macro_rules! with_stand_ins {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = std::sync::Arc::new($crate::common::TestDatabase::sqlite().await);
                    super::$name(db).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(db) = $crate::common::TestDatabase::postgres(stringify!($name)).await {
                        super::$name(std::sync::Arc::new(db)).await;
                    }
                }
            }
        )*
    };
}

async fn server_with(db: Arc<common::TestDatabase>, settings: &[(String, String)]) -> TestServer {
    let settings: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    TestServer::start_with(db, &settings).await
}

/// An Android phone gets an invitation, a waitlist promotion, a cancellation
/// and a reminder through FCM HTTP v1 with one access token; a token FCM
/// calls UNREGISTERED is removed.
async fn fcm_carries_every_notice(db: Arc<common::TestDatabase>) {
    let fcm = FcmService::start().await;
    let server = server_with(db, &fcm.settings()).await;
    let setup = server.ok(None, "PushSetup", json!({})).await;
    assert_eq!(setup["pushSetup"]["platforms"], json!(["ANDROID", "WEB"]));
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    for token in ["fcm-ann", "fcm-ann-old"] {
        let registered = register_device(
            &server,
            &ann,
            json!({ "platform": "ANDROID", "token": token, "name": "Pixel" }),
        )
        .await;
        assert!(registered.get("errors").is_none(), "{registered:#}");
    }
    fcm.answer_first(
        "fcm-ann-old",
        404,
        json!({ "error": { "code": 404, "status": "NOT_FOUND",
            "details": [{ "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED" }] } }),
    );
    prefer(
        &server,
        &ann,
        json!({ "preferences": [], "reminderMinutesBefore": 15 }),
    )
    .await;
    let starts = (Utc::now() + chrono::Duration::seconds(15 * 60 + 3)).to_rfc3339();
    let soon = server
        .meet(&host, json!({ "title": "Soon drinks", "startsAt": starts }))
        .await;
    server.rsvp_ok(&ann, &soon, "GOING").await;
    let quiz = server
        .meet(
            &host,
            json!({ "title": "Quiz night", "capacity": 2, "timeZone": "America/Toronto",
                    "startsAt": "2030-01-15T19:00:00Z" }),
        )
        .await;
    let invited = server
        .invite_ok(&host, &quiz, json!({ "handles": ["ann"] }))
        .await;
    let invitation = invited["inviteToMeet"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = fcm.message("fcm-ann", "host invited you").await;
    assert_eq!(
        message["data"]["invitationId"],
        invitation.as_str(),
        "{message:#}"
    );
    assert_eq!(message["data"]["meetId"], quiz.as_str());
    assert!(
        message["notification"]["body"]
            .as_str()
            .unwrap()
            .contains("14:00 EST")
    );
    server.rsvp_ok(&bob, &quiz, "GOING").await;
    server.rsvp_ok(&ann, &quiz, "GOING").await;
    server.rsvp_ok(&bob, &quiz, "NOT_GOING").await;
    let message = fcm.message("fcm-ann", "You're in: Quiz night").await;
    assert_eq!(message["data"]["kind"], "WAITLIST_PROMOTED");
    server
        .ok(Some(&host), "CancelMeet", json!({ "id": quiz }))
        .await;
    fcm.message("fcm-ann", "Cancelled: Quiz night").await;
    let message = fcm.message("fcm-ann", "Soon: Soon drinks").await;
    assert_eq!(message["data"]["meetId"], soon.as_str());

    let devices = devices_of(&server, &ann).await;
    assert_eq!(
        devices.len(),
        1,
        "the unregistered token is gone: {devices:#?}"
    );
    assert_eq!(
        fcm.state.lock().unwrap().token_requests,
        1,
        "one access token, kept until it expires"
    );
    fcm.assert_no_faults();
}

/// What the APNs stand-in saw.
#[derive(Default)]
struct ApnsState {
    /// The .p8 key's public point (x, y, base64url).
    public: (String, String),
    /// Each push accepted: the device token and the payload.
    sent: Vec<(String, Value)>,
    /// Answers to give per device token, in order, before the default 200.
    answers: HashMap<String, VecDeque<(u16, Value)>>,
    faults: Vec<String>,
}

const APNS_TOPIC: &str = "test.tweetmeet.app";
const APNS_KEY_ID: &str = "ABC123DEFG";
const APNS_TEAM_ID: &str = "TEAM123456";

/// APNs on loopback: HTTP/2 only (prior knowledge, no TLS).
#[derive(Clone)]
struct ApnsService {
    state: Arc<Mutex<ApnsState>>,
    key_file: Arc<tempfile::NamedTempFile>,
    base: String,
}

impl ApnsService {
    async fn start() -> Self {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let key = Subscription::new().secret;
        let point = key.public_key().to_encoded_point(false);
        let public = (
            URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            URL_SAFE_NO_PAD.encode(point.y().unwrap()),
        );
        let mut key_file = tempfile::NamedTempFile::new().unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        std::io::Write::write_all(&mut key_file, pem.as_bytes()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(ApnsState {
            public,
            ..ApnsState::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(apns(state, request).await) }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
        Self {
            state,
            key_file: Arc::new(key_file),
            base,
        }
    }

    fn settings(&self) -> Vec<(String, String)> {
        vec![
            (
                "TWEETMEET_APNS_KEY_FILE".into(),
                self.key_file.path().display().to_string(),
            ),
            ("TWEETMEET_APNS_KEY_ID".into(), APNS_KEY_ID.into()),
            ("TWEETMEET_APNS_TEAM_ID".into(), APNS_TEAM_ID.into()),
            ("TWEETMEET_APNS_TOPIC".into(), APNS_TOPIC.into()),
            ("TWEETMEET_APNS_BASE".into(), self.base.clone()),
        ]
    }

    fn answer_first(&self, token: &str, status: u16, body: Value) {
        self.state
            .lock()
            .unwrap()
            .answers
            .entry(token.to_owned())
            .or_default()
            .push_back((status, body));
    }

    fn find(&self, token: &str, title: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .sent
            .iter()
            .find(|(to, p)| {
                to == token
                    && p["aps"]["alert"]["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with(title))
            })
            .map(|(_, p)| p.clone())
    }

    async fn message(&self, token: &str, title: &str) -> Value {
        let found = common::poll_until(
            Duration::from_secs(15),
            async || self.find(token, title),
            Option::is_some,
        )
        .await;
        found.unwrap_or_else(|| {
            let state = self.state.lock().unwrap();
            panic!(
                "no APNs push to {token}: {title}; sent {:#?}, faults {:#?}",
                state.sent, state.faults
            )
        })
    }

    fn assert_no_faults(&self) {
        let faults = self.state.lock().unwrap().faults.clone();
        assert!(faults.is_empty(), "{faults:#?}");
    }
}

/// One APNs request: HTTP/2, `POST /3/device/{token}`, the app's topic, an
/// alert, and a provider token signed by the team's key.
async fn apns(
    state: Arc<Mutex<ApnsState>>,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<http_body_util::Full<Bytes>> {
    use http_body_util::BodyExt;
    let answer = |status: u16, body: Value| {
        hyper::Response::builder()
            .status(status)
            .body(http_body_util::Full::new(Bytes::from(body.to_string())))
            .unwrap()
    };
    let version = request.version();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let mut state = state.lock().unwrap();
    let mut faults = Vec::new();
    if version != hyper::Version::HTTP_2 {
        faults.push(format!("{version:?}, not HTTP/2"));
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if header("apns-topic") != APNS_TOPIC {
        faults.push(format!("apns-topic {:?}", header("apns-topic")));
    }
    if header("apns-push-type") != "alert" {
        faults.push(format!("apns-push-type {:?}", header("apns-push-type")));
    }
    let jwt = header("authorization")
        .strip_prefix("bearer ")
        .unwrap_or_default()
        .to_owned();
    let key =
        jsonwebtoken::DecodingKey::from_ec_components(&state.public.0, &state.public.1).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_required_spec_claims(&["iss"]);
    validation.set_issuer(&[APNS_TEAM_ID]);
    validation.validate_exp = false;
    match jsonwebtoken::decode::<Value>(&jwt, &key, &validation) {
        Ok(token) => {
            if token.header.kid.as_deref() != Some(APNS_KEY_ID) {
                faults.push(format!("kid {:?}", token.header.kid));
            }
            let age = Utc::now().timestamp() - token.claims["iat"].as_i64().unwrap_or_default();
            if !(0..3600).contains(&age) {
                faults.push(format!("provider token {age} s old"));
            }
        }
        Err(err) => faults.push(format!("provider token: {err}")),
    }
    let Some(device) = path.strip_prefix("/3/device/") else {
        faults.push(format!("path {path}"));
        state.faults.extend(faults);
        return answer(404, json!({ "reason": "BadPath" }));
    };
    if !faults.is_empty() {
        state.faults.extend(faults);
        return answer(403, json!({ "reason": "InvalidProviderToken" }));
    }
    let device = device.to_owned();
    if let Some((status, body)) = state.answers.get_mut(&device).and_then(VecDeque::pop_front) {
        return answer(status, body);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(payload) => state.sent.push((device, payload)),
        Err(err) => {
            state.faults.push(format!("payload: {err}"));
            return answer(400, json!({ "reason": "PayloadEmpty" }));
        }
    }
    answer(200, json!({}))
}

/// An iPhone gets an invitation, a waitlist promotion, a cancellation and a
/// reminder over HTTP/2 from APNs; a token APNs calls gone (410) is removed.
async fn apns_carries_every_notice(db: Arc<common::TestDatabase>) {
    let apns = ApnsService::start().await;
    let server = server_with(db, &apns.settings()).await;
    let setup = server.ok(None, "PushSetup", json!({})).await;
    assert_eq!(setup["pushSetup"]["platforms"], json!(["IOS", "WEB"]));
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    let phone = "a".repeat(64);
    let old_phone = "b".repeat(64);
    for token in [&phone, &old_phone] {
        let registered = register_device(
            &server,
            &ann,
            json!({ "platform": "IOS", "token": token, "name": "iPhone" }),
        )
        .await;
        assert!(registered.get("errors").is_none(), "{registered:#}");
    }
    apns.answer_first(&old_phone, 410, json!({ "reason": "Unregistered" }));
    prefer(
        &server,
        &ann,
        json!({ "preferences": [], "reminderMinutesBefore": 15 }),
    )
    .await;
    let starts = (Utc::now() + chrono::Duration::seconds(15 * 60 + 3)).to_rfc3339();
    let soon = server
        .meet(&host, json!({ "title": "Soon drinks", "startsAt": starts }))
        .await;
    server.rsvp_ok(&ann, &soon, "GOING").await;
    let quiz = server
        .meet(
            &host,
            json!({ "title": "Quiz night", "capacity": 2, "timeZone": "America/Toronto",
                    "startsAt": "2030-01-15T19:00:00Z" }),
        )
        .await;
    let invited = server
        .invite_ok(&host, &quiz, json!({ "handles": ["ann"] }))
        .await;
    let invitation = invited["inviteToMeet"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payload = apns.message(&phone, "host invited you").await;
    assert_eq!(payload["invitationId"], invitation.as_str(), "{payload:#}");
    assert_eq!(payload["meetId"], quiz.as_str());
    assert!(
        payload["aps"]["alert"]["body"]
            .as_str()
            .unwrap()
            .contains("14:00 EST")
    );
    server.rsvp_ok(&bob, &quiz, "GOING").await;
    server.rsvp_ok(&ann, &quiz, "GOING").await;
    server.rsvp_ok(&bob, &quiz, "NOT_GOING").await;
    let payload = apns.message(&phone, "You're in: Quiz night").await;
    assert_eq!(payload["kind"], "WAITLIST_PROMOTED");
    server
        .ok(Some(&host), "CancelMeet", json!({ "id": quiz }))
        .await;
    apns.message(&phone, "Cancelled: Quiz night").await;
    let payload = apns.message(&phone, "Soon: Soon drinks").await;
    assert_eq!(payload["meetId"], soon.as_str());
    let devices = devices_of(&server, &ann).await;
    assert_eq!(devices.len(), 1, "the gone token is removed: {devices:#?}");
    apns.assert_no_faults();
}

/// A push service that keeps failing (500) is tried the bounded number of
/// times (`TWEETMEET_NOTICE_MAX_ATTEMPTS`), then the notice is given up; the
/// device stays (it was not reported gone).
async fn pushes_are_given_up_after_the_last_attempt(db: Arc<common::TestDatabase>) {
    let settings = [
        (
            "TWEETMEET_WEB_PUSH_INSECURE_BASE".to_owned(),
            "http://127.0.0.1:".to_owned(),
        ),
        ("TWEETMEET_NOTICE_MAX_ATTEMPTS".to_owned(), "2".to_owned()),
    ];
    let server = server_with(db, &settings).await;
    let push = web_push_service(&server).await;
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let registered = register_device(&server, &ann, push.subscribe("ann")).await;
    assert!(registered.get("errors").is_none(), "{registered:#}");
    for _ in 0..3 {
        push.answer_first("ann", 500, None);
    }
    let meet = server.meet(&host, json!({ "title": "Karaoke" })).await;
    server
        .invite_ok(&host, &meet, json!({ "handles": ["ann"] }))
        .await;
    wait_until(Duration::from_secs(10), "two attempts", async || {
        push.received("ann").len() == 2
    })
    .await;
    assert_nothing_within(Duration::from_secs(5), "a third attempt", async || {
        push.received("ann").len() > 2
    })
    .await;
    assert_eq!(
        devices_of(&server, &ann).await.len(),
        1,
        "not gone, only failing"
    );
    push.assert_no_faults();
}

/// Two processes on one database: each push goes out once (the claim's
/// lease and, on PostgreSQL, `SKIP LOCKED`), whichever process queued it.
async fn two_processes_push_each_notice_once(db: Arc<common::TestDatabase>) {
    let settings = [
        (
            "TWEETMEET_WEB_PUSH_INSECURE_BASE".to_owned(),
            "http://127.0.0.1:".to_owned(),
        ),
        (
            "TWEETMEET_VAPID_PRIVATE_KEY".to_owned(),
            api::notices::push::web::generate_private_key().unwrap(),
        ),
    ];
    let first = server_with(db.clone(), &settings).await;
    let second = server_with(db, &settings).await;
    let push = web_push_service(&first).await;
    let (host, _) = first.register("host").await;
    let (ann, _) = first.register("ann").await;
    let registered = register_device(&first, &ann, push.subscribe("ann")).await;
    assert!(registered.get("errors").is_none(), "{registered:#}");
    let mut meets = Vec::new();
    for n in 0..6 {
        let server = if n % 2 == 0 { &first } else { &second };
        let meet = server
            .meet(&host, json!({ "title": format!("Meet {n}") }))
            .await;
        server
            .invite_ok(&host, &meet, json!({ "handles": ["ann"] }))
            .await;
        meets.push(meet);
    }
    wait_until(Duration::from_secs(40), "six pushes", async || {
        push.messages("ann").len() >= 6
    })
    .await;
    assert_nothing_within(Duration::from_secs(2), "a push sent twice", async || {
        push.messages("ann").len() > 6
    })
    .await;
    let mut got: Vec<String> = push
        .messages("ann")
        .iter()
        .map(|m| m["data"]["meetId"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    meets.sort();
    assert_eq!(got, meets);
    push.assert_no_faults();
}

with_stand_ins!(
    fcm_carries_every_notice,
    apns_carries_every_notice,
    pushes_are_given_up_after_the_last_attempt,
    two_processes_push_each_notice_once,
);

on_both_databases!(with crate::SETTINGS;
    web_push_carries_every_notice,
    preferences_choose_the_channel,
    gone_devices_go_and_busy_services_are_retried,
    devices_belong_to_their_owner,
);
