//! Invitations, by handle and by e-mail, and the notices they send.

mod common;

use std::{sync::Arc, time::Duration};

use common::{Backend, TestDatabase, TestServer, assert_nothing_within, code, smtp};
use serde_json::{Value, json};

async fn invite(
    server: &TestServer,
    token: &str,
    meet: &str,
    handles: Value,
    emails: Value,
) -> Value {
    server.op(Some(token), "InviteToMeet", json!({ "meetId": meet, "handles": handles, "emails": emails, "message": "Come along" })).await
}

/// "host", with a public and an invite-only meet, and members ann, bob and
/// cat.
struct Cast {
    host: String,
    ann: String,
    bob: String,
    public: String,
    private: String,
}

async fn cast(server: &TestServer) -> Cast {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    server.register("cat").await;
    let public = server.meet(&host, json!({})).await;
    let private = server
        .meet(&host, json!({ "visibility": "INVITE_ONLY" }))
        .await;
    Cast {
        host,
        ann,
        bob,
        public,
        private,
    }
}

/// The host invites ann and cat by handle, a newcomer and bob by address, to
/// the public meet; returns the response.
async fn invite_four(server: &TestServer, cast: &Cast) -> Value {
    invite(
        server,
        &cast.host,
        &cast.public,
        json!(["ann", "CAT"]),
        json!(["new.person@example.com", "BOB@example.com"]),
    )
    .await
}

/// The host invites bob to the invite-only meet by handle and by address at
/// once.
async fn bob_by_handle_and_address(server: &TestServer) -> (Cast, Value) {
    let cast = cast(server).await;
    let created = invite(
        server,
        &cast.host,
        &cast.private,
        json!(["bob"]),
        json!(["bob@example.com"]),
    )
    .await;
    (cast, created)
}

/// A meet's going count, as `viewer` sees it.
async fn going_count(server: &TestServer, viewer: &str, meet: &str) -> Value {
    server
        .ok(Some(viewer), "MeetDetail", json!({ "id": meet }))
        .await["meet"]["goingCount"]
        .clone()
}

fn created_invitations(response: &Value) -> &Vec<Value> {
    response["data"]["inviteToMeet"]
        .as_array()
        .unwrap_or_else(|| panic!("{response}"))
}

async fn invitations_by_address_reveal_no_account(server: TestServer) {
    let cast = cast(&server).await;
    let created = invite_four(&server, &cast).await;
    let invitations = created_invitations(&created);
    assert_eq!(invitations.len(), 4);
    assert_eq!(invitations[0]["invitee"]["handle"], "ann");
    assert_eq!(
        invitations[2]["email"], "new.person@example.com",
        "the inviter sees the address"
    );
    assert_eq!(invitations[2]["invitee"], Value::Null);
    // A member's address becomes an invitation of that member, but looks to
    // the inviter like any invitation by address: it reveals no account.
    assert_eq!(invitations[3]["invitee"], Value::Null);
    assert_eq!(invitations[3]["email"], "bob@example.com");
    assert!(
        invitations
            .iter()
            .all(|i| i["status"] == "PENDING" && i["message"] == "Come along")
    );
}

async fn inviting_again_returns_the_same_invitations(server: TestServer) {
    let cast = cast(&server).await;
    let created = invite_four(&server, &cast).await;
    let invitations = created_invitations(&created);
    let again = invite(
        &server,
        &cast.host,
        &cast.public,
        json!(["ann"]),
        json!(["New.Person@example.com"]),
    )
    .await;
    assert_eq!(again["data"]["inviteToMeet"][0]["id"], invitations[0]["id"]);
    assert_eq!(again["data"]["inviteToMeet"][1]["id"], invitations[2]["id"]);
}

/// One unknown handle or malformed address: nothing is created.
async fn one_bad_invitee_and_no_one_is_invited(server: TestServer) {
    let cast = cast(&server).await;
    let unknown = invite(
        &server,
        &cast.host,
        &cast.private,
        json!(["ann", "nobody_at_all"]),
        json!([]),
    )
    .await;
    assert_eq!(code(&unknown), "BAD_USER_INPUT");
    assert_eq!(unknown["errors"][0]["extensions"]["field"], "handles");
    let malformed = invite(
        &server,
        &cast.host,
        &cast.private,
        json!(["ann"]),
        json!(["not an address"]),
    )
    .await;
    assert_eq!(malformed["errors"][0]["extensions"]["field"], "emails");
    let listed = server
        .ok(
            Some(&cast.host),
            "MeetInvitations",
            json!({ "id": cast.private }),
        )
        .await;
    assert_eq!(
        listed["meet"]["invitations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "all or nothing"
    );
}

async fn at_most_50_addresses_at_once(server: TestServer) {
    let cast = cast(&server).await;
    let too_many: Vec<String> = (0..51).map(|i| format!("p{i}@example.com")).collect();
    assert_eq!(
        code(
            &invite(
                &server,
                &cast.host,
                &cast.private,
                json!([]),
                json!(too_many)
            )
            .await
        ),
        "BAD_USER_INPUT"
    );
}

/// A going attendee may invite to a public meet; others may not.
async fn going_attendees_may_invite_to_a_public_meet(server: TestServer) {
    let cast = cast(&server).await;
    assert_eq!(
        code(&invite(&server, &cast.bob, &cast.public, json!(["cat"]), json!([])).await),
        "FORBIDDEN"
    );
    server.rsvp_ok(&cast.ann, &cast.public, "GOING").await;
    let by_attendee = invite(&server, &cast.ann, &cast.public, json!(["bob"]), json!([])).await;
    assert!(by_attendee.get("errors").is_none(), "{by_attendee}");
}

async fn attendees_may_not_invite_to_an_invite_only_meet(server: TestServer) {
    let cast = cast(&server).await;
    server
        .invite_ok(&cast.host, &cast.private, json!({ "handles": ["ann"] }))
        .await;
    server.rsvp_ok(&cast.ann, &cast.private, "GOING").await;
    assert_eq!(
        code(&invite(&server, &cast.ann, &cast.private, json!(["cat"]), json!([])).await),
        "FORBIDDEN"
    );
}

/// Invited by address (by the host) and then by handle (by ann), bob holds
/// two invitations, kept apart for the inviters; he sees one.
async fn invited_by_address_and_by_handle_a_member_sees_one_invitation(server: TestServer) {
    let cast = cast(&server).await;
    let created = invite_four(&server, &cast).await;
    let invitations = created_invitations(&created);
    server.rsvp_ok(&cast.ann, &cast.public, "GOING").await;
    let by_attendee = invite(&server, &cast.ann, &cast.public, json!(["bob"]), json!([])).await;
    let by_handle = &by_attendee["data"]["inviteToMeet"][0];
    assert_ne!(
        by_handle["id"], invitations[3]["id"],
        "the address's invitation is not the handle's"
    );
    assert_eq!(by_handle["invitee"]["handle"], "bob");
    assert_eq!(by_handle["email"], Value::Null);
    let mine = server.ok(Some(&cast.bob), "MyInvitations", json!({})).await;
    assert_eq!(
        mine["myInvitations"]["edges"].as_array().unwrap().len(),
        1,
        "the invitee sees the meet once"
    );
}

/// Asked for a member's handle and address at once, the inviter gets two
/// invitations, and the address's shows no member.
async fn a_handle_and_an_address_of_one_member_are_two_invitations(server: TestServer) {
    let (cast, created) = bob_by_handle_and_address(&server).await;
    let invitations = created_invitations(&created);
    assert_eq!(invitations.len(), 2, "{created}");
    assert_ne!(invitations[0]["id"], invitations[1]["id"]);
    assert_eq!(invitations[0]["invitee"]["handle"], "bob");
    assert_eq!(invitations[1]["email"], "bob@example.com");
    assert_eq!(
        invitations[1]["invitee"],
        Value::Null,
        "no account revealed"
    );
    let listed = server
        .ok(
            Some(&cast.host),
            "MeetInvitations",
            json!({ "id": cast.private }),
        )
        .await;
    let edges = listed["meet"]["invitations"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    let by_address = edges
        .iter()
        .find(|e| e["node"]["email"] == "bob@example.com")
        .expect("the address's invitation");
    assert_eq!(by_address["node"]["invitee"], Value::Null);
}

/// Inviting an address after a handle does not hand back the handle's
/// invitation: an address cannot be tested against handles.
async fn inviting_an_address_after_a_handle_does_not_return_the_handles_invitation(
    server: TestServer,
) {
    let cast = cast(&server).await;
    let by_handle = server
        .invite_ok(&cast.host, &cast.private, json!({ "handles": ["bob"] }))
        .await;
    let by_address = server
        .invite_ok(
            &cast.host,
            &cast.private,
            json!({ "emails": ["BOB@example.com"] }),
        )
        .await;
    let (by_handle, by_address) = (
        &by_handle["inviteToMeet"][0],
        &by_address["inviteToMeet"][0],
    );
    assert_ne!(by_address["id"], by_handle["id"]);
    assert_eq!(by_address["invitee"], Value::Null);
    assert_eq!(by_address["status"], "PENDING");
    assert_eq!(by_address["email"], "bob@example.com");
}

/// Bob, invited by handle and by address to an invite-only meet, answers
/// either and is counted once; he keeps his seat while he holds either.
async fn an_invitee_with_two_invitations_is_counted_once(server: TestServer) {
    let (cast, created) = bob_by_handle_and_address(&server).await;
    let invitations = created_invitations(&created);
    let ids: Vec<&str> = invitations
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    let going = async || going_count(&server, &cast.host, &cast.private).await;
    for id in &ids {
        let accepted = respond(&server, &cast.bob, id, true).await;
        assert_eq!(
            accepted["data"]["respondToInvitation"]["meet"]["viewerAttendance"]["status"], "GOING",
            "{accepted}"
        );
    }
    assert_eq!(going().await, 2, "the host and bob, once");
    let mine = server.ok(Some(&cast.bob), "MyInvitations", json!({})).await;
    let edges = mine["myInvitations"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "one meet, one invitation: {mine}");
    assert_eq!(edges[0]["node"]["status"], "ACCEPTED");
    let pending = server
        .ok(
            Some(&cast.bob),
            "MyInvitations",
            json!({ "status": "PENDING" }),
        )
        .await;
    assert!(
        pending["myInvitations"]["edges"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let revoke = async |id: &str| {
        server
            .ok(Some(&cast.host), "RevokeInvitation", json!({ "id": id }))
            .await
    };
    revoke(ids[0]).await;
    assert_eq!(going().await, 2, "bob still holds the address's invitation");
    let sees = async || {
        !server
            .ok(Some(&cast.bob), "MeetDetail", json!({ "id": cast.private }))
            .await["meet"]
            .is_null()
    };
    assert!(sees().await);
    revoke(ids[1]).await;
    assert_eq!(going().await, 1, "with neither, his seat goes");
    assert!(!sees().await);
}

async fn a_meets_invitations_are_for_the_host_and_admins(server: TestServer) {
    let cast = cast(&server).await;
    invite_four(&server, &cast).await;
    server.rsvp_ok(&cast.ann, &cast.public, "GOING").await;
    assert_eq!(
        code(
            &server
                .op(
                    Some(&cast.ann),
                    "MeetInvitations",
                    json!({ "id": cast.public })
                )
                .await
        ),
        "FORBIDDEN"
    );
    let (admin, _) = server.admin("admin").await;
    let seen = server
        .ok(
            Some(&admin),
            "MeetInvitations",
            json!({ "id": cast.public }),
        )
        .await;
    assert_eq!(
        seen["meet"]["invitations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

/// "host"'s invite-only meet for 2, with ann, bob and cat invited (`ids`
/// in that order).
struct Invited {
    host: String,
    ann: String,
    bob: String,
    cat: String,
    meet: String,
    ids: Vec<String>,
}

async fn invited(server: &TestServer) -> Invited {
    let (host, meet) = server
        .host_meet(json!({ "visibility": "INVITE_ONLY", "capacity": 2 }))
        .await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    let (cat, _) = server.register("cat").await;
    let created = server
        .invite_ok(&host, &meet, json!({ "handles": ["ann", "bob", "cat"] }))
        .await;
    let ids = (0..3)
        .map(|n| {
            created["inviteToMeet"][n]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    Invited {
        host,
        ann,
        bob,
        cat,
        meet,
        ids,
    }
}

async fn respond(server: &TestServer, token: &str, id: &str, accept: bool) -> Value {
    server
        .op(
            Some(token),
            "RespondToInvitation",
            json!({ "id": id, "accept": accept }),
        )
        .await
}

async fn my_invitations_show_the_meet_and_the_inviter(server: TestServer) {
    let invited = invited(&server).await;
    let listed = server
        .ok(
            Some(&invited.ann),
            "MyInvitations",
            json!({ "status": "PENDING" }),
        )
        .await;
    assert_eq!(
        listed["myInvitations"]["edges"][0]["node"]["meet"]["visibility"],
        "INVITE_ONLY"
    );
    assert_eq!(
        listed["myInvitations"]["edges"][0]["node"]["inviter"]["handle"],
        "host"
    );
}

async fn only_the_invitee_responds(server: TestServer) {
    let invited = invited(&server).await;
    assert_eq!(
        code(&respond(&server, &invited.bob, &invited.ids[0], true).await),
        "NOT_FOUND"
    );
    assert_eq!(
        code(&respond(&server, &invited.host, &invited.ids[0], true).await),
        "FORBIDDEN"
    );
}

/// Accepting answers GOING, under the meets' rules (here: a waitlist).
async fn accepting_is_going_as_far_as_there_is_room(server: TestServer) {
    let invited = invited(&server).await;
    let accepted = respond(&server, &invited.ann, &invited.ids[0], true).await;
    let accepted = &accepted["data"]["respondToInvitation"];
    assert_eq!(accepted["status"], "ACCEPTED", "{accepted}");
    assert_eq!(accepted["meet"]["viewerAttendance"]["status"], "GOING");
    let full = respond(&server, &invited.bob, &invited.ids[1], true).await;
    assert_eq!(
        full["data"]["respondToInvitation"]["meet"]["viewerAttendance"]["status"], "WAITLISTED",
        "the meets' rules apply"
    );
}

async fn a_declined_invitation_cannot_be_accepted(server: TestServer) {
    let invited = invited(&server).await;
    let declined = respond(&server, &invited.cat, &invited.ids[2], false).await;
    assert_eq!(
        declined["data"]["respondToInvitation"]["status"],
        "DECLINED"
    );
    assert_eq!(
        code(&respond(&server, &invited.cat, &invited.ids[2], true).await),
        "CONFLICT"
    );
}

/// Revoking is for the inviter or the host.
async fn an_invitee_cannot_revoke_their_invitation(server: TestServer) {
    let invited = invited(&server).await;
    respond(&server, &invited.bob, &invited.ids[1], true).await;
    assert_eq!(
        code(
            &server
                .op(
                    Some(&invited.bob),
                    "RevokeInvitation",
                    json!({ "id": invited.ids[1] })
                )
                .await
        ),
        "FORBIDDEN"
    );
}

/// A revoked invitee can neither answer nor see the meet; other invitees still do.
async fn a_revoked_invitee_loses_sight_of_the_meet(server: TestServer) {
    let invited = invited(&server).await;
    respond(&server, &invited.ann, &invited.ids[0], true).await;
    respond(&server, &invited.bob, &invited.ids[1], true).await;
    let revoked = server
        .ok(
            Some(&invited.host),
            "RevokeInvitation",
            json!({ "id": invited.ids[1] }),
        )
        .await;
    assert_eq!(revoked["revokeInvitation"]["status"], "REVOKED");
    assert_eq!(
        code(&respond(&server, &invited.bob, &invited.ids[1], true).await),
        "CONFLICT"
    );
    let sees = async |token: &str| {
        server
            .ok(Some(token), "MeetDetail", json!({ "id": invited.meet }))
            .await
    };
    assert!(sees(&invited.bob).await["meet"].is_null());
    assert!(!sees(&invited.ann).await["meet"].is_null());
}

async fn revoking_an_attendees_invitation_frees_their_seat(server: TestServer) {
    let invited = invited(&server).await;
    respond(&server, &invited.ann, &invited.ids[0], true).await;
    let going = async || going_count(&server, &invited.host, &invited.meet).await;
    assert_eq!(going().await, 2);
    server
        .ok(
            Some(&invited.host),
            "RevokeInvitation",
            json!({ "id": invited.ids[0] }),
        )
        .await;
    assert_eq!(going().await, 1, "ann's seat is free again");
}

async fn an_invited_address_gets_a_claim_link(server: TestServer) {
    let (host, meet) = server
        .host_meet(json!({ "title": "Supper club", "visibility": "INVITE_ONLY" }))
        .await;
    server
        .invite_ok(&host, &meet, json!({ "emails": ["dana@example.com"] }))
        .await;
    let mail = server.mail_to("dana@example.com", 1).await;
    assert_eq!(mail.len(), 1, "the invited address gets an e-mail");
    assert!(mail[0].contains("Supper club"));
    smtp::claim_token(&mail[0]).expect("a claim link");
    assert!(smtp::unfold(&mail[0]).contains("https://tweetmeet.test/invitations/claim?token="));
}

/// Any signed-in member may claim it once; used and unknown tokens get the
/// same error.
async fn a_claim_link_works_once_for_any_member(server: TestServer) {
    let (host, meet) = server
        .host_meet(json!({ "title": "Supper club", "visibility": "INVITE_ONLY" }))
        .await;
    server
        .invite_ok(&host, &meet, json!({ "emails": ["dana@example.com"] }))
        .await;
    let mail = server.mail_to("dana@example.com", 1).await;
    let token = smtp::claim_token(&mail[0]).expect("a claim link");

    let (dana, _) = server.register("dana_on_another_address").await;
    let claimed = server
        .ok(Some(&dana), "ClaimInvitation", json!({ "token": token }))
        .await;
    assert_eq!(
        claimed["claimInvitation"]["invitee"]["handle"],
        "dana_on_another_address"
    );
    assert_eq!(claimed["claimInvitation"]["meet"]["title"], "Supper club");
    let used = server
        .op(Some(&dana), "ClaimInvitation", json!({ "token": token }))
        .await;
    let unknown = server
        .op(
            Some(&dana),
            "ClaimInvitation",
            json!({ "token": "not-a-token" }),
        )
        .await;
    assert_eq!(code(&used), code(&unknown));
    assert_eq!(
        used["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );
    assert!(
        !server
            .ok(Some(&dana), "MeetDetail", json!({ "id": meet }))
            .await["meet"]
            .is_null()
    );
}

async fn registering_with_an_invited_address_adopts_its_invitations(server: TestServer) {
    let (host, meet) = server
        .host_meet(json!({ "title": "Second supper", "visibility": "INVITE_ONLY" }))
        .await;
    server
        .invite_ok(&host, &meet, json!({ "emails": ["eli@example.com"] }))
        .await;
    let data = server
        .ok(None, "Register", json!({ "input": { "email": "ELI@example.com", "password": "correct horse battery", "handle": "eli", "displayName": "Eli" } }))
        .await;
    let eli = data["register"]["accessToken"].as_str().unwrap();
    let mine = server.ok(Some(eli), "MyInvitations", json!({})).await;
    assert_eq!(
        mine["myInvitations"]["edges"][0]["node"]["meet"]["title"],
        "Second supper"
    );
}

/// With no mail interval (`TWEETMEET_INVITE_MAIL_INTERVAL_HOURS=0`), a
/// re-invited address is mailed a new link, and only that one works.
async fn re_inviting_a_revoked_address_after_the_mail_interval_sends_a_new_link(backend: Backend) {
    let Some(server) = server_with(
        backend,
        "re_inviting_a_revoked_address_after_the_mail_interval_sends_a_new_link",
        &[("TWEETMEET_INVITE_MAIL_INTERVAL_HOURS", "0")],
    )
    .await
    else {
        return;
    };
    let (host, meet) = server
        .host_meet(json!({ "title": "Third supper", "visibility": "INVITE_ONLY" }))
        .await;
    let sent = server
        .invite_ok(&host, &meet, json!({ "emails": ["fay@example.com"] }))
        .await;
    let invitation = sent["inviteToMeet"][0]["id"].clone();
    server
        .ok(Some(&host), "RevokeInvitation", json!({ "id": invitation }))
        .await;
    let again = server
        .invite_ok(&host, &meet, json!({ "emails": ["fay@example.com"] }))
        .await;
    assert_eq!(again["inviteToMeet"][0]["id"], invitation);
    assert_eq!(again["inviteToMeet"][0]["status"], "PENDING");
    let mail = server.mail_to("fay@example.com", 2).await;
    assert_eq!(mail.len(), 2, "a second e-mail with a new link");
    let tokens: Vec<String> = mail.iter().filter_map(|m| smtp::claim_token(m)).collect();
    let (fay, _) = server.register("fay_elsewhere").await;
    let results = futures::future::join_all(
        tokens
            .iter()
            .map(|token| server.op(Some(&fay), "ClaimInvitation", json!({ "token": token }))),
    )
    .await;
    assert_eq!(
        results.iter().filter(|r| r.get("errors").is_none()).count(),
        1,
        "only the new link works: {results:?}"
    );
}

/// Invited, revoked and invited again within the mail interval, an address
/// is mailed once; the invitation is back, and so is the link it was sent.
async fn an_address_invited_revoked_and_invited_again_is_mailed_once(server: TestServer) {
    let (host, meet) = server
        .host_meet(json!({ "title": "Fourth supper", "visibility": "INVITE_ONLY" }))
        .await;
    let invite = async || {
        server
            .invite_ok(&host, &meet, json!({ "emails": ["gus@example.com"] }))
            .await["inviteToMeet"][0]
            .clone()
    };
    let first = invite().await;
    for _ in 0..3 {
        server
            .ok(
                Some(&host),
                "RevokeInvitation",
                json!({ "id": first["id"] }),
            )
            .await;
        let again = invite().await;
        assert_eq!(again["id"], first["id"]);
        assert_eq!(again["status"], "PENDING", "the invitation is renewed");
    }
    let mail = server.mail_to("gus@example.com", 1).await;
    assert_nothing_within(
        Duration::from_millis(500),
        "a second invitation e-mail to gus",
        async || server.mail_to("gus@example.com", 0).await.len() > 1,
    )
    .await;
    let token = smtp::claim_token(&mail[0]).expect("a claim link");
    let (gus, _) = server.register("gus_elsewhere").await;
    let claimed = server
        .op(Some(&gus), "ClaimInvitation", json!({ "token": token }))
        .await;
    assert!(
        claimed.get("errors").is_none(),
        "the link sent works: {claimed}"
    );
}

/// One address, invited to one meet by handle (its member's) and by
/// address: one e-mail.
async fn a_member_invited_by_handle_and_by_address_is_mailed_once(server: TestServer) {
    let (host, meet) = server.host_meet(json!({ "title": "Fifth supper" })).await;
    server.register("hal").await;
    server
        .invite_ok(
            &host,
            &meet,
            json!({ "handles": ["hal"], "emails": ["hal@example.com"] }),
        )
        .await;
    assert_eq!(server.mail_to("hal@example.com", 1).await.len(), 1);
    assert_nothing_within(
        Duration::from_millis(500),
        "a second invitation e-mail to hal",
        async || server.mail_to("hal@example.com", 0).await.len() > 1,
    )
    .await;
}

/// One request names at most 50 handles and addresses across its aliases
/// (BAD_USER_INPUT): 20 aliases of 50 addresses cannot mail 1,000 people.
async fn one_request_invites_at_most_50_across_aliases(server: TestServer) {
    let (host, meet) = server.host_meet(json!({})).await;
    let aliases: String = (0..20)
        .map(|a| {
            let emails: Vec<String> = (0..30)
                .map(|i| format!("\"a{a}p{i}@example.com\""))
                .collect();
            format!(
                "a{a}: inviteToMeet(meetId: \"{meet}\", emails: [{}]) {{ id }}\n",
                emails.join(", ")
            )
        })
        .collect();
    let response = server
        .graphql(
            Some(&host),
            json!({ "query": format!("mutation {{ {aliases} }}") }),
        )
        .await;
    assert_eq!(code(&response), "BAD_USER_INPUT", "{response}");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("one request")
    );
    let listed = server
        .ok(
            Some(&host),
            "MeetInvitations",
            json!({ "id": meet, "first": 100 }),
        )
        .await;
    assert_eq!(
        listed["meet"]["invitations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        30,
        "the first alias, and no more"
    );
    // The next request has its own allowance.
    let next: Vec<String> = (0..50).map(|i| format!("next{i}@example.com")).collect();
    server
        .invite_ok(&host, &meet, json!({ "emails": next }))
        .await;
}

/// A server on `backend` with extra settings; `None` (the test skipped,
/// saying so) on PostgreSQL without `TWEETMEET_TEST_POSTGRES_URL`.
async fn server_with(
    backend: Backend,
    test: &str,
    settings: &[(&str, &str)],
) -> Option<TestServer> {
    let db = TestDatabase::for_backend(backend, test).await?;
    Some(TestServer::start_with(Arc::new(db), settings).await)
}

/// With `TWEETMEET_INVITES_PER_DAY=3`, a member creates 3 invitations a day
/// across meets; the fourth is RATE_LIMITED, saying when to try again.
/// Inviting someone already invited creates nothing and is not refused.
async fn invitations_a_day_are_limited(backend: Backend) {
    let Some(server) = server_with(
        backend,
        "invitations_a_day_are_limited",
        &[("TWEETMEET_INVITES_PER_DAY", "3")],
    )
    .await
    else {
        return;
    };
    let (host, meet) = server.host_meet(json!({})).await;
    let other = server
        .meet(&host, json!({ "title": "Another round" }))
        .await;
    let invite = async |meet: &str, emails: Value| {
        server
            .op(
                Some(&host),
                "InviteToMeet",
                json!({ "meetId": meet, "emails": emails }),
            )
            .await
    };
    let first = invite(&meet, json!(["a@example.com", "b@example.com"])).await;
    assert!(first.get("errors").is_none(), "{first}");
    let over = invite(&meet, json!(["c@example.com", "d@example.com"])).await;
    assert_eq!(code(&over), "RATE_LIMITED", "{over}");
    let retry = over["errors"][0]["extensions"]["retryAfterSeconds"]
        .as_u64()
        .expect("retryAfterSeconds");
    assert!(
        (86_000..=86_400).contains(&retry),
        "when the first ages out: {retry}"
    );
    let again = invite(&meet, json!(["a@example.com"])).await;
    assert!(again.get("errors").is_none(), "nothing new: {again}");
    let third = invite(&other, json!(["c@example.com"])).await;
    assert!(third.get("errors").is_none(), "{third}");
    assert_eq!(
        code(&invite(&other, json!(["d@example.com"])).await),
        "RATE_LIMITED",
        "across meets"
    );
    let listed = server
        .ok(Some(&host), "MeetInvitations", json!({ "id": meet }))
        .await;
    assert_eq!(
        listed["meet"]["invitations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_a_day_are_limited_sqlite() {
    invitations_a_day_are_limited(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_a_day_are_limited_postgres() {
    invitations_a_day_are_limited(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_inviting_a_revoked_address_after_the_mail_interval_sends_a_new_link_sqlite() {
    re_inviting_a_revoked_address_after_the_mail_interval_sends_a_new_link(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_inviting_a_revoked_address_after_the_mail_interval_sends_a_new_link_postgres() {
    re_inviting_a_revoked_address_after_the_mail_interval_sends_a_new_link(Backend::Postgres).await;
}

/// "host"'s "Sound techs", for 2, at 19:00 Toronto time; returns the host's
/// token and the meet's id.
async fn sound_techs(server: &TestServer) -> (String, String) {
    server
        .host_meet(json!({ "title": "Sound techs", "capacity": 2, "timeZone": "America/Toronto", "startsAt": "2099-07-01T23:00:00Z" }))
        .await
}

async fn an_invitation_mail_gives_the_time_in_the_meets_zone(server: TestServer) {
    let (host, meet) = sound_techs(&server).await;
    server.register("ann").await;
    server
        .invite_ok(&host, &meet, json!({ "handles": ["ann"] }))
        .await;
    let invited = server.mail_to("ann@example.com", 1).await;
    assert!(
        invited[0].contains("host invited you to Sound techs"),
        "{}",
        invited[0]
    );
    assert!(
        invited[0].contains("Wednesday 1 July 2099, 19:00 EDT"),
        "local time in the meet's zone: {}",
        invited[0]
    );
}

/// The host and ann go, bob waits, ann leaves; returns the host's token and
/// the meet's id.
async fn bob_off_the_waitlist(server: &TestServer) -> (String, String) {
    let (host, meet) = sound_techs(server).await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    server
        .invite_ok(&host, &meet, json!({ "handles": ["ann"] }))
        .await;
    server.rsvp_ok(&ann, &meet, "GOING").await;
    server.rsvp_ok(&bob, &meet, "GOING").await;
    server.rsvp_ok(&ann, &meet, "NOT_GOING").await;
    (host, meet)
}

async fn a_member_off_the_waitlist_hears_they_are_in(server: TestServer) {
    bob_off_the_waitlist(&server).await;
    let promoted = server.mail_to("bob@example.com", 1).await;
    assert!(
        promoted
            .iter()
            .any(|m| m.contains("You're in: Sound techs"))
    );
}

async fn a_new_venue_and_a_cancellation_reach_those_going_only(server: TestServer) {
    let (host, meet) = bob_off_the_waitlist(&server).await;
    server
        .ok(
            Some(&host),
            "UpdateMeet",
            json!({ "id": meet, "input": { "venueName": "The Foundry" } }),
        )
        .await;
    server
        .ok(
            Some(&host),
            "CancelMeet",
            json!({ "id": meet, "reason": "Power cut" }),
        )
        .await;
    let bob_mail = server.mail_to("bob@example.com", 3).await;
    assert!(
        bob_mail
            .iter()
            .any(|m| m.contains("New venue: Sound techs"))
    );
    assert!(
        bob_mail
            .iter()
            .any(|m| m.contains("Cancelled: Sound techs") && m.contains("Power cut"))
    );
    assert!(
        server.mail_to("ann@example.com", 2).await.len() == 1,
        "ann left: no news of the venue or the cancellation"
    );
}

async fn members_may_opt_out_of_invitation_mail(server: TestServer) {
    let (host, meet) = server.host_meet(json!({})).await;
    server.register("ann").await;
    let (quiet, _) = server.register("quiet").await;
    server
        .ok(
            Some(&quiet),
            "UpdateProfile",
            json!({ "input": { "emailNotices": false } }),
        )
        .await;
    server
        .invite_ok(&host, &meet, json!({ "handles": ["quiet", "ann"] }))
        .await;
    // Ann's invitation arrived; quiet's would have come with it.
    assert_eq!(server.mail_to("ann@example.com", 1).await.len(), 1);
    assert!(
        server
            .mail_files()
            .iter()
            .all(|m| !m.contains("To: quiet@example.com"))
    );
}

on_both_databases!(
    invitations_by_address_reveal_no_account,
    inviting_again_returns_the_same_invitations,
    one_bad_invitee_and_no_one_is_invited,
    at_most_50_addresses_at_once,
    going_attendees_may_invite_to_a_public_meet,
    attendees_may_not_invite_to_an_invite_only_meet,
    invited_by_address_and_by_handle_a_member_sees_one_invitation,
    a_handle_and_an_address_of_one_member_are_two_invitations,
    inviting_an_address_after_a_handle_does_not_return_the_handles_invitation,
    an_invitee_with_two_invitations_is_counted_once,
    a_meets_invitations_are_for_the_host_and_admins,
    my_invitations_show_the_meet_and_the_inviter,
    only_the_invitee_responds,
    accepting_is_going_as_far_as_there_is_room,
    a_declined_invitation_cannot_be_accepted,
    an_invitee_cannot_revoke_their_invitation,
    a_revoked_invitee_loses_sight_of_the_meet,
    revoking_an_attendees_invitation_frees_their_seat,
    an_invited_address_gets_a_claim_link,
    a_claim_link_works_once_for_any_member,
    registering_with_an_invited_address_adopts_its_invitations,
    an_address_invited_revoked_and_invited_again_is_mailed_once,
    a_member_invited_by_handle_and_by_address_is_mailed_once,
    one_request_invites_at_most_50_across_aliases,
    an_invitation_mail_gives_the_time_in_the_meets_zone,
    a_member_off_the_waitlist_hears_they_are_in,
    a_new_venue_and_a_cancellation_reach_those_going_only,
    members_may_opt_out_of_invitation_mail,
);
