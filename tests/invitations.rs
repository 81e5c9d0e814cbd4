//! Invitations, by handle and by e-mail, and the notices they send.

mod common;

use common::{TestServer, code, smtp};
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

async fn who_may_invite_and_all_or_nothing(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    server.register("cat").await;
    let public = server.meet(&host, json!({})).await;
    let private = server
        .meet(&host, json!({ "visibility": "INVITE_ONLY" }))
        .await;

    let created = invite(
        &server,
        &host,
        &public,
        json!(["ann", "CAT"]),
        json!(["new.person@example.com", "BOB@example.com"]),
    )
    .await;
    let invitations = created["data"]["inviteToMeet"]
        .as_array()
        .unwrap_or_else(|| panic!("{created}"));
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

    // Again: the same invitations come back.
    let again = invite(
        &server,
        &host,
        &public,
        json!(["ann"]),
        json!(["New.Person@example.com"]),
    )
    .await;
    assert_eq!(again["data"]["inviteToMeet"][0]["id"], invitations[0]["id"]);
    assert_eq!(again["data"]["inviteToMeet"][1]["id"], invitations[2]["id"]);

    // One unknown handle or malformed address: nothing is created.
    let unknown = invite(
        &server,
        &host,
        &private,
        json!(["ann", "nobody_at_all"]),
        json!([]),
    )
    .await;
    assert_eq!(code(&unknown), "BAD_USER_INPUT");
    assert_eq!(unknown["errors"][0]["extensions"]["field"], "handles");
    let malformed = invite(
        &server,
        &host,
        &private,
        json!(["ann"]),
        json!(["not an address"]),
    )
    .await;
    assert_eq!(malformed["errors"][0]["extensions"]["field"], "emails");
    let listed = server
        .ok(Some(&host), "MeetInvitations", json!({ "id": private }))
        .await;
    assert_eq!(
        listed["meet"]["invitations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "all or nothing"
    );
    let too_many: Vec<String> = (0..51).map(|i| format!("p{i}@example.com")).collect();
    assert_eq!(
        code(&invite(&server, &host, &private, json!([]), json!(too_many)).await),
        "BAD_USER_INPUT"
    );

    // A going attendee may invite to a public meet, not to an invite-only one; others may not.
    assert_eq!(
        code(&invite(&server, &bob, &public, json!(["cat"]), json!([])).await),
        "FORBIDDEN"
    );
    server.rsvp_ok(&ann, &public, "GOING").await;
    let by_attendee = invite(&server, &ann, &public, json!(["bob"]), json!([])).await;
    assert_eq!(
        by_attendee["data"]["inviteToMeet"][0]["id"], invitations[3]["id"],
        "one invitation per member and meet"
    );
    assert_eq!(
        by_attendee["data"]["inviteToMeet"][0]["email"],
        Value::Null,
        "not ann's to see"
    );
    server
        .invite_ok(&host, &private, json!({ "handles": ["ann"] }))
        .await;
    server.rsvp_ok(&ann, &private, "GOING").await;
    assert_eq!(
        code(&invite(&server, &ann, &private, json!(["cat"]), json!([])).await),
        "FORBIDDEN"
    );

    // Meet.invitations: host and administrators only.
    assert_eq!(
        code(
            &server
                .op(Some(&ann), "MeetInvitations", json!({ "id": public }))
                .await
        ),
        "FORBIDDEN"
    );
    let (admin, _) = server.admin("admin").await;
    let seen = server
        .ok(Some(&admin), "MeetInvitations", json!({ "id": public }))
        .await;
    assert_eq!(
        seen["meet"]["invitations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    // Invitation.email: the inviter, the host, the invitee and admins; not a bystander.
    let mine = server.ok(Some(&bob), "MyInvitations", json!({})).await;
    assert_eq!(
        mine["myInvitations"]["edges"].as_array().unwrap().len(),
        1,
        "one invitation per member and meet"
    );
}

async fn responding_and_revoking(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    let (cat, _) = server.register("cat").await;
    let private = server
        .meet(&host, json!({ "visibility": "INVITE_ONLY", "capacity": 2 }))
        .await;
    let created = server
        .invite_ok(&host, &private, json!({ "handles": ["ann", "bob", "cat"] }))
        .await;
    let id = |n: usize| {
        created["inviteToMeet"][n]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Newest first.
    let listed = server
        .ok(Some(&ann), "MyInvitations", json!({ "status": "PENDING" }))
        .await;
    assert_eq!(
        listed["myInvitations"]["edges"][0]["node"]["meet"]["visibility"],
        "INVITE_ONLY"
    );
    assert_eq!(
        listed["myInvitations"]["edges"][0]["node"]["inviter"]["handle"],
        "host"
    );

    // Only the invitee responds.
    assert_eq!(
        code(
            &server
                .op(
                    Some(&bob),
                    "RespondToInvitation",
                    json!({ "id": id(0), "accept": true })
                )
                .await
        ),
        "NOT_FOUND"
    );
    assert_eq!(
        code(
            &server
                .op(
                    Some(&host),
                    "RespondToInvitation",
                    json!({ "id": id(0), "accept": true })
                )
                .await
        ),
        "FORBIDDEN"
    );
    let accepted = server
        .ok(
            Some(&ann),
            "RespondToInvitation",
            json!({ "id": id(0), "accept": true }),
        )
        .await;
    assert_eq!(accepted["respondToInvitation"]["status"], "ACCEPTED");
    assert_eq!(
        accepted["respondToInvitation"]["meet"]["viewerAttendance"]["status"],
        "GOING"
    );
    let full = server
        .ok(
            Some(&bob),
            "RespondToInvitation",
            json!({ "id": id(1), "accept": true }),
        )
        .await;
    assert_eq!(
        full["respondToInvitation"]["meet"]["viewerAttendance"]["status"], "WAITLISTED",
        "the meets' rules apply"
    );

    let declined = server
        .ok(
            Some(&cat),
            "RespondToInvitation",
            json!({ "id": id(2), "accept": false }),
        )
        .await;
    assert_eq!(declined["respondToInvitation"]["status"], "DECLINED");
    assert_eq!(
        code(
            &server
                .op(
                    Some(&cat),
                    "RespondToInvitation",
                    json!({ "id": id(2), "accept": true })
                )
                .await
        ),
        "CONFLICT"
    );

    // Revoking: the inviter or the host; a revoked invitee no longer sees the meet.
    assert_eq!(
        code(
            &server
                .op(Some(&bob), "RevokeInvitation", json!({ "id": id(1) }))
                .await
        ),
        "FORBIDDEN"
    );
    let revoked = server
        .ok(Some(&host), "RevokeInvitation", json!({ "id": id(1) }))
        .await;
    assert_eq!(revoked["revokeInvitation"]["status"], "REVOKED");
    assert_eq!(
        code(
            &server
                .op(
                    Some(&bob),
                    "RespondToInvitation",
                    json!({ "id": id(1), "accept": true })
                )
                .await
        ),
        "CONFLICT"
    );
    assert!(
        server
            .ok(Some(&bob), "MeetDetail", json!({ "id": private }))
            .await["meet"]
            .is_null()
    );
    assert!(
        !server
            .ok(Some(&ann), "MeetDetail", json!({ "id": private }))
            .await["meet"]
            .is_null()
    );

    // Revoking an attendee's invitation takes their seat back too.
    let before = server
        .ok(Some(&host), "MeetDetail", json!({ "id": private }))
        .await;
    assert_eq!(before["meet"]["goingCount"], 2);
    server
        .ok(Some(&host), "RevokeInvitation", json!({ "id": id(0) }))
        .await;
    let after = server
        .ok(Some(&host), "MeetDetail", json!({ "id": private }))
        .await;
    assert_eq!(after["meet"]["goingCount"], 1, "ann's seat is free again");
}

async fn claiming_by_email(server: TestServer) {
    let (host, _) = server.register("host").await;
    let private = server
        .meet(
            &host,
            json!({ "title": "Supper club", "visibility": "INVITE_ONLY" }),
        )
        .await;
    let other = server
        .meet(
            &host,
            json!({ "title": "Second supper", "visibility": "INVITE_ONLY" }),
        )
        .await;
    server
        .invite_ok(&host, &private, json!({ "emails": ["dana@example.com"] }))
        .await;
    server
        .invite_ok(&host, &other, json!({ "emails": ["eli@example.com"] }))
        .await;

    let mail = server.mail_to("dana@example.com", 1).await;
    assert_eq!(mail.len(), 1, "the invited address gets an e-mail");
    assert!(mail[0].contains("Supper club"));
    let token = smtp::claim_token(&mail[0]).expect("a claim link");
    assert!(smtp::unfold(&mail[0]).contains("https://tweetmeet.test/invitations/claim?token="));

    // Any signed-in member may claim it once; used and unknown tokens get the same error.
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
            .ok(Some(&dana), "MeetDetail", json!({ "id": private }))
            .await["meet"]
            .is_null()
    );

    // Registering with an invited address adopts its pending invitations.
    let data = server
        .ok(None, "Register", json!({ "input": { "email": "ELI@example.com", "password": "correct horse battery", "handle": "eli", "displayName": "Eli" } }))
        .await;
    let eli = data["register"]["accessToken"].as_str().unwrap();
    let mine = server.ok(Some(eli), "MyInvitations", json!({})).await;
    assert_eq!(
        mine["myInvitations"]["edges"][0]["node"]["meet"]["title"],
        "Second supper"
    );

    // Re-inviting a revoked address sends a new link that works.
    let third = server
        .meet(
            &host,
            json!({ "title": "Third supper", "visibility": "INVITE_ONLY" }),
        )
        .await;
    let sent = server
        .invite_ok(&host, &third, json!({ "emails": ["fay@example.com"] }))
        .await;
    let invitation = sent["inviteToMeet"][0]["id"].clone();
    server
        .ok(Some(&host), "RevokeInvitation", json!({ "id": invitation }))
        .await;
    let again = server
        .invite_ok(&host, &third, json!({ "emails": ["fay@example.com"] }))
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

async fn notices_for_members(server: TestServer) {
    let (host, _) = server.register("host").await;
    let (ann, _) = server.register("ann").await;
    let (bob, _) = server.register("bob").await;
    let meet = server.meet(&host, json!({ "title": "Sound techs", "capacity": 2, "timeZone": "America/Toronto", "startsAt": "2099-07-01T23:00:00Z" })).await;
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

    server.rsvp_ok(&ann, &meet, "GOING").await;
    server.rsvp_ok(&bob, &meet, "GOING").await;
    server.rsvp_ok(&ann, &meet, "NOT_GOING").await;
    let promoted = server.mail_to("bob@example.com", 1).await;
    assert!(
        promoted
            .iter()
            .any(|m| m.contains("You're in: Sound techs"))
    );

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

    // Members may opt out of invitation e-mails.
    let (quiet, _) = server.register("quiet").await;
    server
        .ok(
            Some(&quiet),
            "UpdateProfile",
            json!({ "input": { "emailNotices": false } }),
        )
        .await;
    let other = server.meet(&host, json!({})).await;
    server
        .invite_ok(&host, &other, json!({ "handles": ["quiet", "ann"] }))
        .await;
    assert_eq!(server.mail_to("ann@example.com", 2).await.len(), 2);
    assert!(
        server
            .mail_files()
            .iter()
            .all(|m| !m.contains("To: quiet@example.com"))
    );
}

on_both_databases!(
    who_may_invite_and_all_or_nothing,
    responding_and_revoking,
    claiming_by_email,
    notices_for_members
);
