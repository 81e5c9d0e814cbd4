//! Hostile input, as an attacker's client sends it: control characters where
//! a line is expected, addresses that smuggle another address, NUL bytes,
//! far-out dates, forged cursors, huge search words and guessable passwords.
//! Each is BAD_USER_INPUT naming its field, or simply matches nothing; none
//! is ever INTERNAL, on either database.

mod common;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::{TestServer, code};
use serde_json::{Value, json};

/// Asserts `response` failed with BAD_USER_INPUT naming `field`.
fn assert_refused(response: &Value, field: &str) {
    assert_eq!(code(response), "BAD_USER_INPUT", "{response:#}");
    assert_eq!(
        response["errors"][0]["extensions"]["field"], field,
        "{response:#}"
    );
}

fn register_input(email: &str, handle: &str, password: &str, display_name: &str) -> Value {
    json!({ "input": {
        "email": email,
        "password": password,
        "handle": handle,
        "displayName": display_name,
    }})
}

fn create_meet_input(extra: Value) -> Value {
    let mut input = json!({
        "title": "Drinks at the Rose & Crown",
        "venueName": "Rose & Crown",
        "startsAt": (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339(),
    });
    if let (Some(input), Some(extra)) = (input.as_object_mut(), extra.as_object()) {
        input.extend(extra.clone());
    }
    json!({ "input": input })
}

async fn feed(server: &TestServer, filter: Value, after: Option<&str>) -> Value {
    server
        .op(
            None,
            "MeetFeed",
            json!({ "filter": filter, "first": 10, "after": after }),
        )
        .await
}

/// CR/LF (which would reach a notice's Subject), NUL and other control
/// characters are refused in one-line fields; multi-line fields keep line
/// breaks and tabs but nothing else.
async fn control_characters_are_refused_with_their_field(server: TestServer) {
    let (host, _) = server.register("host").await;
    for (field, value) in [
        ("title", "Drinks\r\nBcc: victim@evil.example"),
        ("title", "Drinks\u{0}"),
        ("venueName", "Rose\nCrown"),
        ("address", "1 King St\u{7}"),
        ("region", "toronto\u{0}"),
        ("description", "fine\nthen a NUL\u{0}"),
    ] {
        let response = server
            .op(
                Some(&host),
                "CreateMeet",
                create_meet_input(json!({ field: value })),
            )
            .await;
        assert_refused(&response, field);
    }
    let multi_line = server
        .op(
            Some(&host),
            "CreateMeet",
            create_meet_input(json!({ "description": "line one\r\nline two\tand a tab" })),
        )
        .await;
    assert!(multi_line.get("errors").is_none(), "{multi_line:#}");

    let response = server
        .op(
            None,
            "Register",
            register_input(
                "ada@example.com",
                "ada",
                "correct horse battery",
                "Ada\r\nLovelace",
            ),
        )
        .await;
    assert_refused(&response, "displayName");
    for (field, value) in [("displayName", "Host\u{1b}[31m"), ("bio", "bio\u{0}")] {
        let response = server
            .op(
                Some(&host),
                "UpdateProfile",
                json!({ "input": { field: value } }),
            )
            .await;
        assert_refused(&response, field);
    }
    let response = server
        .op(
            Some(&host),
            "PublishStory",
            json!({ "input": { "title": "A night out", "body": "It was\u{0} good" } }),
        )
        .await;
    assert_refused(&response, "body");
}

/// Addresses a mailer would read differently from the check (a display
/// name with another address, a stray bracket) are refused as e-mails.
async fn addresses_with_header_tricks_are_refused(server: TestServer) {
    let (host, meet) = server.host_meet(json!({})).await;
    for email in [
        "x<victim@evil.example>",
        "name@example.com>",
        "ada@example.com\r\nBcc: victim@evil.example",
    ] {
        let response = server
            .op(
                None,
                "Register",
                register_input(email, "ada", "correct horse battery", "Ada"),
            )
            .await;
        assert_refused(&response, "email");
        let response = server
            .op(
                Some(&host),
                "InviteToMeet",
                json!({ "meetId": meet, "emails": [email] }),
            )
            .await;
        assert_refused(&response, "emails");
    }
    assert!(server.mail_files().is_empty(), "nothing was mailed");
}

/// A NUL byte in any string argument is refused or matches nothing: it
/// never reaches PostgreSQL (which refuses it in text).
async fn nul_bytes_never_reach_the_database(server: TestServer) {
    let (admin, _) = server.admin("root").await;
    let (host, meet) = server.host_meet(json!({})).await;

    let response = server
        .op(
            None,
            "Login",
            json!({ "email": "host\u{0}@example.com", "password": "correct horse battery" }),
        )
        .await;
    assert_refused(&response, "email");

    let response = server
        .op(None, "UserProfile", json!({ "handle": "host\u{0}" }))
        .await;
    assert!(response.get("errors").is_none(), "{response:#}");
    assert!(response["data"]["user"].is_null(), "matches nothing");

    for field in ["search", "region"] {
        let response = feed(&server, json!({ field: "rose\u{0}" }), None).await;
        assert_refused(&response, field);
    }
    let response = feed(&server, json!({ "hostHandle": "host\u{0}" }), None).await;
    assert!(response.get("errors").is_none(), "{response:#}");
    assert_eq!(response["data"]["meets"]["edges"], json!([]));

    let response = server
        .op(Some(&admin), "AdminUsers", json!({ "search": "ho\u{0}st" }))
        .await;
    assert_refused(&response, "search");

    let response = server
        .op(
            Some(&host),
            "InviteToMeet",
            json!({ "meetId": meet, "handles": ["root\u{0}"] }),
        )
        .await;
    assert_refused(&response, "handles");

    // Arguments that are hashed or parsed before any look-up match nothing.
    for (operation, variables) in [
        ("MeetDetail", json!({ "id": "\u{0}" })),
        ("ClaimInvitation", json!({ "token": "\u{0}" })),
        ("RefreshSession", json!({ "refreshToken": "\u{0}" })),
        ("Logout", json!({ "refreshToken": "\u{0}" })),
    ] {
        let response = server.op(Some(&host), operation, variables).await;
        if response.get("errors").is_some() {
            assert_ne!(code(&response), "INTERNAL", "{operation}: {response:#}");
        }
    }
}

/// Filter dates and cursor times beyond the years 1970 to 9999 are refused,
/// the same on both databases.
async fn far_out_dates_and_forged_cursors_are_refused(server: TestServer) {
    for (field, at) in [
        ("startsAfter", "+99999-01-01T00:00:00Z"),
        ("startsAfter", "-5000-01-01T00:00:00Z"),
        ("startsBefore", "+99999-01-01T00:00:00Z"),
        ("startsBefore", "1969-12-31T23:59:59Z"),
    ] {
        let response = feed(&server, json!({ field: at }), None).await;
        assert_refused(&response, field);
    }
    let id = uuid::Uuid::now_v7();
    for seconds in [3_000_000_000_000_i64, -200_000_000_000] {
        let cursor = URL_SAFE_NO_PAD.encode(format!("{seconds}.0|{id}"));
        let response = feed(&server, json!({}), Some(&cursor)).await;
        assert_refused(&response, "after");
    }
    let fine = feed(
        &server,
        json!({ "startsAfter": "2000-01-01T00:00:00Z" }),
        None,
    )
    .await;
    assert!(fine.get("errors").is_none(), "{fine:#}");
}

/// A search word too long for a LIKE pattern (SQLite's limit is 50,000
/// bytes) is refused before any query.
async fn a_huge_search_word_is_refused(server: TestServer) {
    let response = feed(&server, json!({ "search": "x".repeat(60_000) }), None).await;
    assert_refused(&response, "search");
    let (admin, _) = server.admin("root").await;
    let response = server
        .op(
            Some(&admin),
            "AdminUsers",
            json!({ "search": "x".repeat(60_000) }),
        )
        .await;
    assert_refused(&response, "search");
}

/// Passwords an attacker guesses first are refused (NIST SP 800-63B): only
/// spaces, common ones, the handle or the e-mail.
async fn guessable_passwords_are_refused(server: TestServer) {
    for password in [
        "          ",
        "password123",
        "qwertyuiop",
        "QwertyUiop",
        "Ada_Lovelace",
        "ADA@example.com",
    ] {
        let response = server
            .op(
                None,
                "Register",
                register_input("ada@example.com", "ada_lovelace", password, "Ada"),
            )
            .await;
        assert_refused(&response, "password");
    }
    let (token, _) = server.register("grace_hopper").await;
    for password in ["GRACE_HOPPER", "grace_hopper@example.com", "1234567890"] {
        let response = server
            .op(
                Some(&token),
                "ChangePassword",
                json!({ "currentPassword": "correct horse battery", "newPassword": password }),
            )
            .await;
        assert_refused(&response, "newPassword");
    }
}

on_both_databases!(
    control_characters_are_refused_with_their_field,
    addresses_with_header_tricks_are_refused,
    nul_bytes_never_reach_the_database,
    far_out_dates_and_forged_cursors_are_refused,
    a_huge_search_word_is_refused,
    guessable_passwords_are_refused,
);
