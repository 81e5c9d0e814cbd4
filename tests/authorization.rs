//! Who may do what: every contract operation that needs a viewer, and every
//! private field, tried over HTTP (subscriptions over WebSocket) by each kind
//! of caller, against the table below. The table is the documentation; the test holds the server to it.

mod common;

use std::{sync::Arc, time::Duration};

use common::{
    Backend, TestDatabase, TestServer, smtp,
    ws::{Protocol, WsClient},
};
use serde_json::{Value, json};

/// The kinds of caller, in the table's column order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Anonymous,
    /// Signed in, with no tie to the meet.
    Member,
    Host,
    /// Invited by handle, accepted: GOING.
    Invitee,
    /// Invited, accepted, then revoked by the host.
    Revoked,
    /// Suspended by an administrator; their token was issued before.
    Suspended,
    Admin,
}

const CALLERS: [Caller; 7] = [
    Caller::Anonymous,
    Caller::Member,
    Caller::Host,
    Caller::Invitee,
    Caller::Revoked,
    Caller::Suspended,
    Caller::Admin,
];

/// Who may do what, about an INVITE_ONLY meet the host made (starting in 30
/// minutes, so check-in is open), its invitations, and a story the host wrote
/// about it. `Y`: allowed; `.`: refused (an error, or the field `null`).
/// Each cell starts from a meet of its own, so no cell sees another's change.
#[rustfmt::skip]
const TABLE: &[(&str, &str)] = &[
    //                                         anonymous
    //                                         | member
    //                                         | | host
    //                                         | | | invitee
    //                                         | | | | revoked invitee
    //                                         | | | | | suspended
    //                                         | | | | | | administrator
    ("me",                                    ". Y Y Y Y . Y"),
    ("updateProfile",                         ". Y Y Y Y . Y"),
    ("me.attending (MyMeets)",                ". Y Y Y Y . Y"),
    ("myInvitations",                         ". Y Y Y Y . Y"),
    ("User.email of the host",                ". . Y . . . Y"),
    ("User.attending of the host",            ". . Y . . . ."),
    ("createMeet",                            ". Y Y Y Y . Y"),
    ("meet (invite-only)",                    ". . Y Y . . Y"),
    ("Meet.attendees (invite-only)",          ". . Y Y . . Y"),
    ("updateMeet",                            ". . Y . . . Y"),
    ("cancelMeet",                            ". . Y . . . Y"),
    ("rsvp GOING (invite-only)",              ". . Y Y . . ."),
    ("checkIn",                               ". . Y Y . . ."),
    ("setArrival HERE",                       ". . Y Y . . ."),
    ("updateAttendance",                      ". . Y Y . . ."),
    ("createInviteLink",                      ". . Y . . . Y"),
    ("Meet.inviteLinks",                      ". . Y . . . Y"),
    ("revokeInviteLink (the host's)",         ". . Y . . . Y"),
    ("openInviteLink (the host's)",           "Y Y Y Y Y . Y"),
    ("Meet.calendarUrl (invite-only)",        ". . Y Y . . Y"),
    ("Meet.invitations",                      ". . Y . . . Y"),
    ("inviteToMeet (invite-only)",            ". . Y . . . ."),
    ("respondToInvitation (own, or else the invitee's)", ". . . Y . . ."),
    ("revokeInvitation (the invitee's)",      ". . Y . . . ."),
    ("claimInvitation (a link mailed out)",   ". Y Y Y Y . Y"),
    ("story about the invite-only meet",      ". . Y Y . . Y"),
    ("publishStory",                          ". Y Y Y Y . Y"),
    ("updateNotificationPreferences",         ". Y Y Y Y . Y"),
    ("rotateCalendarFeed",                    ". Y Y Y Y . Y"),
    ("updateStory (the host's)",              ". . Y . . . ."),
    ("deleteStory (the host's)",              ". . Y . . . Y"),
    ("users",                                 ". . . . . . Y"),
    ("adminAuditLog",                         ". . . . . . Y"),
    ("setUserRole",                           ". . . . . . Y"),
    ("suspendUser",                           ". . . . . . Y"),
    ("unsuspendUser",                         ". . . . . . Y"),
    // Subscriptions, over WebSocket (graphql-transport-ws).
    ("meetActivity (invite-only)",            ". . Y Y . . Y"),
    ("invitationReceived",                    ". Y Y Y Y . Y"),
    // Last: it changes the callers' passwords.
    ("changePassword",                        ". Y Y Y Y . Y"),
];

const PASSWORD: &str = "correct horse battery";

/// The callers' tokens, and the id of "target", whom administrators act on.
struct Cast {
    tokens: Vec<(Caller, Option<String>)>,
    target: String,
}

impl Cast {
    fn token(&self, caller: Caller) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(c, _)| *c == caller)
            .and_then(|(_, t)| t.as_deref())
    }
}

async fn cast(server: &TestServer) -> Cast {
    let (host, _) = server.register("host").await;
    let (member, _) = server.register("member").await;
    let (invitee, _) = server.register("invitee").await;
    let (revoked, _) = server.register("revoked").await;
    let (suspended, suspended_id) = server.register("suspended").await;
    let (_, target) = server.register("target").await;
    let (admin, _) = server.admin("admin").await;
    server
        .ok(
            Some(&admin),
            "SuspendUser",
            json!({ "userId": suspended_id, "reason": "spam" }),
        )
        .await;
    Cast {
        tokens: vec![
            (Caller::Anonymous, None),
            (Caller::Member, Some(member)),
            (Caller::Host, Some(host)),
            (Caller::Invitee, Some(invitee)),
            (Caller::Revoked, Some(revoked)),
            (Caller::Suspended, Some(suspended)),
            (Caller::Admin, Some(admin)),
        ],
        target,
    }
}

/// What one cell acts on: a fresh invite-only meet with its invitations and
/// a story about it.
struct Scene {
    meet: String,
    invitee_invitation: String,
    revoked_invitation: String,
    story: String,
}

async fn scene(server: &TestServer, cast: &Cast) -> Scene {
    let host = cast.token(Caller::Host).expect("host");
    let starts_at = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let meet = server
        .meet(
            host,
            json!({ "title": "Back room", "visibility": "INVITE_ONLY", "startsAt": starts_at }),
        )
        .await;
    let invited = server
        .invite_ok(host, &meet, json!({ "handles": ["invitee", "revoked"] }))
        .await;
    let id = |n: usize| {
        invited["inviteToMeet"][n]["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let (invitee_invitation, revoked_invitation) = (id(0), id(1));
    for (caller, invitation) in [
        (Caller::Invitee, &invitee_invitation),
        (Caller::Revoked, &revoked_invitation),
    ] {
        server
            .ok(
                cast.token(caller),
                "RespondToInvitation",
                json!({ "id": invitation, "accept": true }),
            )
            .await;
    }
    server
        .ok(
            Some(host),
            "RevokeInvitation",
            json!({ "id": revoked_invitation }),
        )
        .await;
    let story = server
        .ok(
            Some(host),
            "PublishStory",
            json!({ "input": { "title": "Last night", "body": "Good crowd.", "meetId": meet } }),
        )
        .await["publishStory"]["id"]
        .as_str()
        .expect("story id")
        .to_owned();
    Scene {
        meet,
        invitee_invitation,
        revoked_invitation,
        story,
    }
}

/// Whether the response allowed it: no error and `path` (dot-separated)
/// not `null`. A refusal must be an access error, not a broken request.
fn allowed(response: &Value, path: &str) -> bool {
    if let Some(errors) = response.get("errors") {
        let code = errors[0]["extensions"]["code"].as_str().unwrap_or_default();
        assert!(
            ["UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT"].contains(&code),
            "refused for another reason than access: {response:#}"
        );
        return false;
    }
    let value = path
        .split('.')
        .fold(&response["data"], |value, key| &value[key]);
    !value.is_null()
}

/// A link the host made to the scene's meet.
async fn host_link(server: &TestServer, cast: &Cast, scene: &Scene) -> Value {
    let host = cast.token(Caller::Host).expect("host");
    server
        .ok(
            Some(host),
            "CreateInviteLink",
            json!({ "meetId": scene.meet, "input": { "channel": "tweet" } }),
        )
        .await["createInviteLink"]
        .clone()
}

/// Tries `what` as `caller` on a scene of its own.
async fn attempt(server: &TestServer, cast: &Cast, what: &str, caller: Caller) -> bool {
    let scene = scene(server, cast).await;
    let token = cast.token(caller);
    let op = async |name: &str, variables: Value| server.op(token, name, variables).await;
    let raw = async |query: &str| server.graphql(token, json!({ "query": query })).await;
    let meet = json!({ "id": scene.meet });
    match what {
        "me" => allowed(&op("Me", json!({})).await, "me"),
        "updateProfile" => allowed(
            &op("UpdateProfile", json!({ "input": { "headline": "Rigger" } })).await,
            "updateProfile",
        ),
        "me.attending (MyMeets)" => allowed(&op("MyMeets", json!({})).await, "me.attending"),
        "myInvitations" => allowed(&op("MyInvitations", json!({})).await, "myInvitations"),
        "User.email of the host" => allowed(
            &op("UserProfile", json!({ "handle": "host" })).await,
            "user.email",
        ),
        "User.attending of the host" => allowed(
            &raw(r#"{ user(handle: "host") { attending { edges { cursor } } } }"#).await,
            "user.attending",
        ),
        "createMeet" => allowed(
            &op(
                "CreateMeet",
                json!({ "input": { "title": "Mine", "venueName": "Pub", "startsAt": "2099-01-01T19:00:00Z" } }),
            )
            .await,
            "createMeet",
        ),
        "meet (invite-only)" => allowed(&op("MeetDetail", meet).await, "meet"),
        "Meet.attendees (invite-only)" => {
            allowed(&op("MeetAttendees", meet).await, "meet.attendees")
        }
        "updateMeet" => allowed(
            &op(
                "UpdateMeet",
                json!({ "id": scene.meet, "input": { "title": "Renamed" } }),
            )
            .await,
            "updateMeet",
        ),
        "cancelMeet" => allowed(&op("CancelMeet", meet).await, "cancelMeet"),
        "rsvp GOING (invite-only)" => allowed(
            &op("Rsvp", json!({ "meetId": scene.meet, "status": "GOING" })).await,
            "rsvp",
        ),
        "checkIn" => allowed(
            &op("CheckIn", json!({ "meetId": scene.meet })).await,
            "checkIn",
        ),
        "Meet.invitations" => allowed(&op("MeetInvitations", meet).await, "meet.invitations"),
        "setArrival HERE" => allowed(
            &op(
                "SetArrival",
                json!({ "meetId": scene.meet, "state": "HERE" }),
            )
            .await,
            "setArrival",
        ),
        "updateAttendance" => allowed(
            &op(
                "UpdateAttendance",
                json!({ "meetId": scene.meet, "input": { "introduceMe": true } }),
            )
            .await,
            "updateAttendance",
        ),
        "createInviteLink" => allowed(
            &op(
                "CreateInviteLink",
                json!({ "meetId": scene.meet, "input": { "channel": "tweet" } }),
            )
            .await,
            "createInviteLink",
        ),
        "Meet.inviteLinks" => allowed(
            &op("InviteLinkFunnel", json!({ "meetId": scene.meet })).await,
            "meet.inviteLinks",
        ),
        "revokeInviteLink (the host's)" => {
            let link = host_link(server, cast, &scene).await;
            allowed(
                &op("RevokeInviteLink", json!({ "id": link["id"] })).await,
                "revokeInviteLink",
            )
        }
        "openInviteLink (the host's)" => {
            let link = host_link(server, cast, &scene).await;
            let token = link["url"]
                .as_str()
                .and_then(|url| url.rsplit('/').next())
                .expect("a token");
            allowed(
                &op("OpenInviteLink", json!({ "token": token })).await,
                "openInviteLink.meet",
            )
        }
        "Meet.calendarUrl (invite-only)" => allowed(
            &op("MeetCalendar", json!({ "id": scene.meet })).await,
            "meet.calendarUrl",
        ),
        "updateNotificationPreferences" => allowed(
            &op(
                "UpdateNotificationPreferences",
                json!({ "preferences": [{ "kind": "REMINDER", "channels": ["EMAIL"] }] }),
            )
            .await,
            "updateNotificationPreferences",
        ),
        "rotateCalendarFeed" => allowed(
            &op("RotateCalendarFeed", json!({})).await,
            "rotateCalendarFeed",
        ),
        "inviteToMeet (invite-only)" => allowed(
            &op(
                "InviteToMeet",
                json!({ "meetId": scene.meet, "emails": ["guest@example.com"] }),
            )
            .await,
            "inviteToMeet",
        ),
        "respondToInvitation (own, or else the invitee's)" => {
            let id = match caller {
                Caller::Revoked => &scene.revoked_invitation,
                _ => &scene.invitee_invitation,
            };
            allowed(
                &op("RespondToInvitation", json!({ "id": id, "accept": true })).await,
                "respondToInvitation",
            )
        }
        "revokeInvitation (the invitee's)" => allowed(
            &op(
                "RevokeInvitation",
                json!({ "id": scene.invitee_invitation }),
            )
            .await,
            "revokeInvitation",
        ),
        "claimInvitation (a link mailed out)" => {
            let address = format!("claim.{}@example.com", scene.meet);
            let host = cast.token(Caller::Host).expect("host");
            server
                .invite_ok(host, &scene.meet, json!({ "emails": [address] }))
                .await;
            let mail = server.mail_to(&address, 1).await;
            let token = smtp::claim_token(&mail[0]).expect("a claim link");
            allowed(
                &op("ClaimInvitation", json!({ "token": token })).await,
                "claimInvitation",
            )
        }
        "story about the invite-only meet" => allowed(
            &op("StoryDetail", json!({ "id": scene.story })).await,
            "story",
        ),
        "publishStory" => allowed(
            &op(
                "PublishStory",
                json!({ "input": { "title": "Mine", "body": "Words." } }),
            )
            .await,
            "publishStory",
        ),
        "updateStory (the host's)" => allowed(
            &op(
                "UpdateStory",
                json!({ "id": scene.story, "input": { "title": "Retitled" } }),
            )
            .await,
            "updateStory",
        ),
        "deleteStory (the host's)" => {
            let response = op("DeleteStory", json!({ "id": scene.story })).await;
            allowed(&response, "deleteStory") && response["data"]["deleteStory"] == true
        }
        "users" => allowed(&op("AdminUsers", json!({})).await, "users"),
        "adminAuditLog" => allowed(
            &raw("{ adminAuditLog(first: 1) { edges { cursor } } }").await,
            "adminAuditLog",
        ),
        "setUserRole" => allowed(
            &op(
                "SetUserRole",
                json!({ "userId": cast.target, "role": "MEMBER" }),
            )
            .await,
            "setUserRole",
        ),
        "suspendUser" => allowed(
            &op(
                "SuspendUser",
                json!({ "userId": cast.target, "reason": "testing" }),
            )
            .await,
            "suspendUser",
        ),
        "unsuspendUser" => allowed(
            &op("UnsuspendUser", json!({ "userId": cast.target })).await,
            "unsuspendUser",
        ),
        "changePassword" => {
            let response = op(
                "ChangePassword",
                json!({ "currentPassword": PASSWORD, "newPassword": "another horse battery" }),
            )
            .await;
            allowed(&response, "changePassword") && response["data"]["changePassword"] == true
        }
        "meetActivity (invite-only)" => {
            subscribed(
                server,
                token,
                "MeetActivity",
                json!({ "meetId": scene.meet }),
            )
            .await
        }
        "invitationReceived" => subscribed(server, token, "InvitationReceived", json!({})).await,
        other => panic!("no check for {other:?}"),
    }
}

/// Whether a subscription is taken: a refusal comes at once (the socket
/// closed at `connection_init`, or an error for the subscription), a taken
/// one stays silent until something happens.
async fn subscribed(
    server: &TestServer,
    token: Option<&str>,
    name: &str,
    variables: Value,
) -> bool {
    let mut client = WsClient::connect(&server.ws_url(), Protocol::TransportWs).await;
    if client.init(token).await.is_err() {
        return false;
    }
    let query = match name {
        // The contract's MeetActivity asks for fields of issues still open.
        "MeetActivity" => {
            "subscription MeetActivity($meetId: ID!) { meetActivity(meetId: $meetId) { kind } }"
                .to_owned()
        }
        _ => server.contract.operation(name),
    };
    client.subscribe("s", &query, name, variables).await;
    match client.receive(Duration::from_millis(500)).await {
        None => true,
        // An `error` message, or a result that is only errors.
        Some(Ok(message))
            if message["type"] == "error" || message["payload"]["errors"].is_array() =>
        {
            false
        }
        Some(Err(_close)) => false,
        Some(Ok(message)) => panic!("unexpected before any event: {message}"),
    }
}

async fn who_may_do_what(backend: Backend) {
    let Some(db) = TestDatabase::for_backend(backend, "who_may_do_what").await else {
        return;
    };
    // Every cell invites: the daily limit is not what this test is about.
    let server =
        TestServer::start_with(Arc::new(db), &[("TWEETMEET_INVITES_PER_DAY", "100000")]).await;
    let cast = cast(&server).await;
    let mut wrong = Vec::new();
    for (what, row) in TABLE {
        let expected: Vec<bool> = row.split_whitespace().map(|cell| cell == "Y").collect();
        assert_eq!(expected.len(), CALLERS.len(), "row {what:?}");
        for (caller, expected) in CALLERS.into_iter().zip(expected) {
            let actual = attempt(&server, &cast, what, caller).await;
            if actual != expected {
                wrong.push(format!(
                    "{what} as {caller:?}: {} but the table says {}",
                    if actual { "allowed" } else { "refused" },
                    if expected { "allowed" } else { "refused" },
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_do_what_sqlite() {
    who_may_do_what(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_do_what_postgres() {
    who_may_do_what(Backend::Postgres).await;
}
