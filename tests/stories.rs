//! Stories: publishing, editing, deleting, and who may read them.

mod common;

use common::{TestServer, code};
use serde_json::{Value, json};

const BODY: &str = "# Night shift\n\n<script>alert('x')</script> *kept as written*";

/// Publishes a story with `input`; panics on any error and returns its id.
async fn publish(server: &TestServer, token: &str, input: Value) -> String {
    let data = server
        .ok(Some(token), "PublishStory", json!({ "input": input }))
        .await;
    data["publishStory"]["id"].as_str().unwrap().to_owned()
}

async fn bodies_come_back_exactly_as_written(server: TestServer) {
    let (author, _) = server.register("author").await;
    let published = server
        .ok(
            Some(&author),
            "PublishStory",
            json!({ "input": { "title": "The 2019 outage", "body": BODY } }),
        )
        .await;
    let story = &published["publishStory"];
    assert_eq!(story["body"], BODY, "bodies come back exactly as written");
    assert_eq!(story["author"]["handle"], "author");
    assert_eq!(story["meet"], Value::Null);
}

async fn invalid_stories_are_refused_naming_the_field(server: TestServer) {
    let (author, _) = server.register("author").await;
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
}

async fn anonymous_callers_cannot_publish(server: TestServer) {
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
}

/// Only the author edits; what an edit leaves out stays.
async fn only_the_author_may_edit_a_story(server: TestServer) {
    let (author, _) = server.register("author").await;
    let (other, _) = server.register("other").await;
    let id = publish(
        &server,
        &author,
        json!({ "title": "The 2019 outage", "body": BODY }),
    )
    .await;
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
    assert_eq!(updated["updateStory"]["body"], BODY);
}

async fn the_author_or_an_admin_may_delete_a_story(server: TestServer) {
    let (author, _) = server.register("author").await;
    let (other, _) = server.register("other").await;
    let id = publish(
        &server,
        &author,
        json!({ "title": "The 2019 outage", "body": BODY }),
    )
    .await;
    assert_eq!(
        code(
            &server
                .op(Some(&other), "DeleteStory", json!({ "id": id }))
                .await
        ),
        "FORBIDDEN"
    );
    let second = publish(&server, &other, json!({ "title": "Second", "body": "b" })).await;
    let (admin, _) = server.admin("admin").await;
    assert_eq!(
        server
            .ok(Some(&admin), "DeleteStory", json!({ "id": second }))
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

/// Two meets of "host"'s, with stories about them.
struct Bar {
    host: String,
    invitee: String,
    stranger: String,
    admin: String,
    public: String,
    private: String,
    /// The story about the back room.
    secret: String,
}

/// "host"'s public "Open bar" and invite-only "Back room" (invitee invited);
/// a stranger's story "On my own", then invitee's "About the open bar" and
/// "About the back room".
async fn bar(server: &TestServer) -> Bar {
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
    let story = |title: &str, meet: Option<&str>| json!({ "title": title, "body": "It happened.", "meetId": meet });
    publish(server, &stranger, story("On my own", None)).await;
    publish(server, &invitee, story("About the open bar", Some(&public))).await;
    let secret = publish(
        server,
        &invitee,
        story("About the back room", Some(&private)),
    )
    .await;
    Bar {
        host,
        invitee,
        stranger,
        admin,
        public,
        private,
        secret,
    }
}

fn titles(data: &Value) -> Vec<String> {
    data["stories"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn no_one_writes_about_a_meet_they_cannot_see(server: TestServer) {
    let bar = bar(&server).await;
    let refused = server
        .op(
            Some(&bar.stranger),
            "PublishStory",
            json!({ "input": { "title": "t", "body": "b", "meetId": bar.private } }),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["field"], "meetId");
}

/// In feeds, by id and on the author's profile alike.
async fn stories_of_an_invite_only_meet_are_for_those_who_see_it(server: TestServer) {
    let bar = bar(&server).await;
    let everyone = ["About the back room", "About the open bar", "On my own"];
    for (token, sees_secret) in [
        (None, false),
        (Some(bar.stranger.clone()), false),
        (Some(bar.invitee.clone()), true),
        (Some(bar.host.clone()), true),
        (Some(bar.admin.clone()), true),
    ] {
        let feed = server.ok(token.as_deref(), "StoryFeed", json!({})).await;
        let expected: Vec<&str> = everyone
            .iter()
            .copied()
            .filter(|t| sees_secret || *t != "About the back room")
            .collect();
        assert_eq!(titles(&feed), expected, "newest first; {token:?}");
        let detail = server
            .ok(token.as_deref(), "StoryDetail", json!({ "id": bar.secret }))
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
}

async fn a_meets_stories_come_with_it(server: TestServer) {
    let bar = bar(&server).await;
    let of_meet = server
        .ok(None, "StoryFeed", json!({ "meetId": bar.public }))
        .await;
    assert_eq!(titles(&of_meet), ["About the open bar"]);
    let detail = server
        .ok(None, "MeetDetail", json!({ "id": bar.public }))
        .await;
    assert_eq!(
        detail["meet"]["stories"]["edges"][0]["node"]["author"]["handle"],
        "invitee"
    );
}

async fn the_story_feed_pages_newest_first(server: TestServer) {
    let bar = bar(&server).await;
    let first = server
        .ok(Some(&bar.admin), "StoryFeed", json!({ "first": 2 }))
        .await;
    assert_eq!(first["stories"]["pageInfo"]["hasNextPage"], true);
    let rest = server
        .ok(
            Some(&bar.admin),
            "StoryFeed",
            json!({ "first": 2, "after": first["stories"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(titles(&rest), ["On my own"]);
}

/// Stories about one's meet come by push by default; a host who chose
/// e-mail for them hears by e-mail.
async fn the_host_hears_of_a_story_about_their_meet(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (writer, _) = server.register("writer").await;
    let meet = server.meet(&host, json!({ "title": "Open bar" })).await;
    let story = |title: &str| json!({ "input": { "title": title, "body": "What a night", "meetId": meet } });
    server
        .ok(Some(&writer), "PublishStory", story("First"))
        .await;
    server
        .ok(
            Some(&host),
            "UpdateNotificationPreferences",
            json!({ "preferences": [{ "kind": "STORY_ABOUT_MY_MEET", "channels": ["EMAIL", "PUSH"] }] }),
        )
        .await;
    server
        .ok(Some(&writer), "PublishStory", story("Second"))
        .await;
    let mail = server.mail_to("host@example.com", 1).await;
    assert_eq!(
        mail.len(),
        1,
        "only the story after choosing e-mail: {mail:?}"
    );
    assert!(mail[0].contains("writer wrote about Open bar"), "{mail:?}");
    assert!(mail[0].contains("Second"), "{mail:?}");
}

on_both_databases!(
    bodies_come_back_exactly_as_written,
    invalid_stories_are_refused_naming_the_field,
    anonymous_callers_cannot_publish,
    only_the_author_may_edit_a_story,
    the_author_or_an_admin_may_delete_a_story,
    no_one_writes_about_a_meet_they_cannot_see,
    stories_of_an_invite_only_meet_are_for_those_who_see_it,
    a_meets_stories_come_with_it,
    the_story_feed_pages_newest_first,
    the_host_hears_of_a_story_about_their_meet,
);
