//! Stories: publishing, editing, deleting, and who may read them.

mod common;

use common::{TestServer, code};
use serde_json::{Value, json};

async fn publishing_and_editing(server: TestServer) {
    let (author, _) = server.register("author").await;
    let (other, _) = server.register("other").await;
    let body = "# Night shift\n\n<script>alert('x')</script> *kept as written*";
    let published = server
        .ok(
            Some(&author),
            "PublishStory",
            json!({ "input": { "title": "The 2019 outage", "body": body } }),
        )
        .await;
    let story = &published["publishStory"];
    assert_eq!(story["body"], body, "bodies come back exactly as written");
    assert_eq!(story["author"]["handle"], "author");
    assert_eq!(story["meet"], Value::Null);
    let id = story["id"].as_str().unwrap().to_owned();

    for (input, field) in [
        (json!({ "title": "", "body": "b" }), "title"),
        (json!({ "title": "x".repeat(201), "body": "b" }), "title"),
        (json!({ "title": "t", "body": "" }), "body"),
        (json!({ "title": "t", "body": "x".repeat(20_001) }), "body"),
        (
            json!({ "title": "t", "body": "b", "meetId": "00000000-0000-7000-8000-000000000000" }),
            "meetId",
        ),
    ] {
        let response = server
            .op(Some(&author), "PublishStory", json!({ "input": input }))
            .await;
        assert_eq!(
            response["errors"][0]["extensions"]["field"], field,
            "{input}"
        );
    }
    assert_eq!(
        code(
            &server
                .op(
                    None,
                    "PublishStory",
                    json!({ "input": { "title": "t", "body": "b" } })
                )
                .await
        ),
        "UNAUTHENTICATED"
    );

    assert_eq!(
        code(
            &server
                .op(
                    Some(&other),
                    "UpdateStory",
                    json!({ "id": id, "input": { "title": "Mine now" } })
                )
                .await
        ),
        "FORBIDDEN"
    );
    let updated = server
        .ok(
            Some(&author),
            "UpdateStory",
            json!({ "id": id, "input": { "title": "The 2019 outage, revisited" } }),
        )
        .await;
    assert_eq!(
        updated["updateStory"]["title"],
        "The 2019 outage, revisited"
    );
    assert_eq!(updated["updateStory"]["body"], body);

    assert_eq!(
        code(
            &server
                .op(Some(&other), "DeleteStory", json!({ "id": id }))
                .await
        ),
        "FORBIDDEN"
    );
    let second = server
        .ok(
            Some(&other),
            "PublishStory",
            json!({ "input": { "title": "Second", "body": "b" } }),
        )
        .await;
    let (admin, _) = server.admin("admin").await;
    assert_eq!(
        server
            .ok(
                Some(&admin),
                "DeleteStory",
                json!({ "id": second["publishStory"]["id"] })
            )
            .await["deleteStory"],
        true
    );
    assert_eq!(
        server
            .ok(Some(&author), "DeleteStory", json!({ "id": id }))
            .await["deleteStory"],
        true
    );
    assert_eq!(
        server.ok(None, "StoryDetail", json!({ "id": id })).await["story"],
        Value::Null
    );
}

async fn feeds_and_visibility(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (invitee, _) = server.register("invitee").await;
    let (stranger, _) = server.register("stranger").await;
    let (admin, _) = server.admin("admin").await;
    let public = server.meet(&host, json!({ "title": "Open bar" })).await;
    let private = server
        .meet(
            &host,
            json!({ "title": "Back room", "visibility": "INVITE_ONLY" }),
        )
        .await;
    server
        .invite_ok(&host, &private, json!({ "handles": ["invitee"] }))
        .await;

    let publish = |token: String, title: &'static str, meet: Option<String>| {
        let server = &server;
        async move {
            let data = server
                .ok(
                    Some(&token),
                    "PublishStory",
                    json!({ "input": { "title": title, "body": "It happened.", "meetId": meet } }),
                )
                .await;
            data["publishStory"]["id"].as_str().unwrap().to_owned()
        }
    };
    publish(stranger.clone(), "On my own", None).await;
    publish(invitee.clone(), "About the open bar", Some(public.clone())).await;
    let secret = publish(
        invitee.clone(),
        "About the back room",
        Some(private.clone()),
    )
    .await;
    // A stranger cannot write about a meet they cannot see.
    let refused = server
        .op(
            Some(&stranger),
            "PublishStory",
            json!({ "input": { "title": "t", "body": "b", "meetId": private } }),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["field"], "meetId");

    let titles = |data: &Value| -> Vec<String> {
        data["stories"]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let everyone = ["About the back room", "About the open bar", "On my own"];
    for (token, sees_secret) in [
        (None, false),
        (Some(stranger.clone()), false),
        (Some(invitee.clone()), true),
        (Some(host.clone()), true),
        (Some(admin.clone()), true),
    ] {
        let feed = server.ok(token.as_deref(), "StoryFeed", json!({})).await;
        let expected: Vec<&str> = everyone
            .iter()
            .copied()
            .filter(|t| sees_secret || *t != "About the back room")
            .collect();
        assert_eq!(titles(&feed), expected, "newest first; {token:?}");
        let detail = server
            .ok(token.as_deref(), "StoryDetail", json!({ "id": secret }))
            .await;
        assert_eq!(!detail["story"].is_null(), sees_secret);
        let by_author = server
            .ok(
                token.as_deref(),
                "UserProfile",
                json!({ "handle": "invitee" }),
            )
            .await;
        assert_eq!(
            by_author["user"]["stories"]["edges"]
                .as_array()
                .unwrap()
                .len(),
            if sees_secret { 2 } else { 1 }
        );
    }
    let of_meet = server
        .ok(None, "StoryFeed", json!({ "meetId": public }))
        .await;
    assert_eq!(titles(&of_meet), ["About the open bar"]);
    let detail = server.ok(None, "MeetDetail", json!({ "id": public })).await;
    assert_eq!(
        detail["meet"]["stories"]["edges"][0]["node"]["author"]["handle"],
        "invitee"
    );

    // Paging newest first with cursors.
    let first = server
        .ok(Some(&admin), "StoryFeed", json!({ "first": 2 }))
        .await;
    assert_eq!(first["stories"]["pageInfo"]["hasNextPage"], true);
    let rest = server
        .ok(
            Some(&admin),
            "StoryFeed",
            json!({ "first": 2, "after": first["stories"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(titles(&rest), ["On my own"]);

    // The host hears of a story about their meet.
    let mail = server.mail_to("host@example.com", 2).await;
    assert!(
        mail.iter()
            .any(|m| m.contains("invitee wrote about Open bar")),
        "{mail:?}"
    );
}

on_both_databases!(publishing_and_editing, feeds_and_visibility);
