//! Invitation rules. Whether someone may see or answer a meet is the meets
//! domain's to say; this module asks it.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use entity::{
    invitations::{self, InvitationStatus},
    meets,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::rules::{self, RequestAllowance};

use crate::{
    accounts::members,
    auth::{
        Viewer,
        tokens::{random_token, token_hash},
    },
    db::begin_write,
    error::{ApiError, ApiResult},
    events::Event,
    meets::{
        attendance::{self, Answer},
        rules::require_open,
        visibility,
    },
    notices,
    state::Services,
    validate,
};

pub const MAX_PER_CALL: usize = 50;
pub const CLAIM_VALIDITY: Duration = Duration::days(30);

/// Who an invitation goes to. An invitation by handle and one by address are
/// kept apart even when the address is the same member's: merging them would
/// tell the inviter whose account the address is. They merge only on the
/// invitee's side (`myInvitations`, seeing and answering the meet).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Target {
    Handle(Uuid),
    /// `member`: whose account the address is, if anyone's; never shown to
    /// the inviter (see `rules::may_see_invitee`).
    Address {
        email: String,
        member: Option<Uuid>,
    },
}

impl Target {
    fn member(&self) -> Option<Uuid> {
        match self {
            Self::Handle(id) => Some(*id),
            Self::Address { member, .. } => *member,
        }
    }
}

fn invalid_claim() -> ApiError {
    ApiError::NotFound("this invitation link is invalid, used or expired".into())
}

/// `allowance`: what the request has named so far, in this and other calls.
#[tracing::instrument(name = "invitations::invite", level = "debug", skip_all)]
pub async fn invite(
    services: &Services,
    viewer: Viewer,
    allowance: &RequestAllowance,
    meet_id: Uuid,
    handles: Vec<String>,
    emails: Vec<String>,
    message: Option<String>,
) -> ApiResult<Vec<invitations::Model>> {
    let inviter_id = viewer.require()?;
    if handles.len() + emails.len() > MAX_PER_CALL {
        return Err(ApiError::bad_input(
            "handles",
            format!("at most {MAX_PER_CALL} handles and e-mails in one call"),
        ));
    }
    if handles.is_empty() && emails.is_empty() {
        return Err(ApiError::bad_input(
            "handles",
            "name at least one handle or e-mail",
        ));
    }
    allowance.take(handles.len() + emails.len())?;
    let message = validate::optional_multiline_text("message", message.as_deref(), 500)?;
    let emails = emails
        .iter()
        .map(|e| validate::email("emails", e))
        .collect::<ApiResult<Vec<_>>>()?;

    let txn = begin_write(&services.db).await?;
    // The daily count below holds under concurrent invitations by one member.
    members::lock(&txn, inviter_id).await?;
    let meet = visibility::lock_visible(&txn, viewer, meet_id).await?;
    rules::may_invite(&txn, &meet, inviter_id).await?;
    require_open(&meet, Utc::now())?;

    // Resolve every target first: one unknown handle and nothing is created.
    let no_member = |handle: &str| {
        ApiError::bad_input("handles", format!("no member has the handle {handle:?}"))
    };
    let wanted = handles
        .iter()
        .map(|h| validate::handle_key(h).ok_or_else(|| no_member(h)))
        .collect::<ApiResult<Vec<String>>>()?;
    let members = members::by_handles(&txn, &wanted).await?;
    if let Some(unknown) = wanted.iter().find(|h| !members.contains_key(*h)) {
        return Err(no_member(unknown));
    }
    let by_email = members::by_emails(&txn, &emails).await?;
    let mut targets: Vec<Target> = Vec::new();
    let by_handle = wanted.iter().map(|h| Target::Handle(members[h].id));
    let by_address = emails.iter().map(|e| Target::Address {
        email: e.clone(),
        member: by_email.get(e).map(|u| u.id),
    });
    for target in by_handle.chain(by_address) {
        if target.member() == Some(inviter_id) {
            return Err(ApiError::bad_input("handles", "you cannot invite yourself"));
        }
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let mut existing = existing_invitations(&txn, meet_id, &targets).await?;
    let new = targets.iter().filter(|t| !existing.contains_key(t)).count();
    let now = Utc::now();
    rules::within_daily_limit(&txn, &services.config, inviter_id, new as u64, now).await?;

    let mut result = Vec::with_capacity(targets.len());
    let mut events = Vec::new();
    for target in targets {
        let existing = existing.remove(&target);
        if let Some(existing) = existing
            .as_ref()
            .filter(|e| e.status != InvitationStatus::Revoked)
        {
            // Already invited: the same invitation, left as it is.
            result.push(existing.clone());
            continue;
        }
        // Whose the invitation is: the member named, or who claimed it.
        let holder = existing
            .as_ref()
            .and_then(|e| e.invitee_id)
            .or(target.member());
        // A claim link for an address nobody holds yet, made only to be
        // mailed: invited again within the mail interval, a revoked
        // invitation comes back with the link already sent.
        let claim_token = match (&target, holder) {
            (Target::Address { email, .. }, None)
                if notices::invitation_mail_due(&txn, &services.config, meet_id, email).await? =>
            {
                Some(random_token())
            }
            _ => None,
        };
        let invitation = match existing {
            // Revoked: revived.
            Some(existing) => {
                let mut active: invitations::ActiveModel = existing.into();
                active.status = Set(InvitationStatus::Pending);
                active.responded_at = Set(None);
                if let Some(token) = &claim_token {
                    active.claim_token_hash = Set(Some(token_hash(token)));
                    active.claim_expires_at = Set(Some(now + CLAIM_VALIDITY));
                }
                active.update(&txn).await?
            }
            None => {
                let email = match &target {
                    Target::Handle(_) => None,
                    Target::Address { email, .. } => Some(email.clone()),
                };
                invitations::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    meet_id: Set(meet_id),
                    inviter_id: Set(inviter_id),
                    invitee_id: Set(target.member()),
                    email: Set(email),
                    message: Set(message.clone()),
                    status: Set(InvitationStatus::Pending),
                    claim_token_hash: Set(claim_token.as_deref().map(token_hash)),
                    claim_expires_at: Set(claim_token.as_ref().map(|_| now + CLAIM_VALIDITY)),
                    created_at: Set(now),
                    responded_at: Set(None),
                    invite_link_id: Set(None),
                }
                .insert(&txn)
                .await?
            }
        };
        match (holder, &claim_token) {
            (None, Some(token)) => {
                notices::invitation_by_email(&txn, &services.config, &invitation, &meet, token)
                    .await?;
                events.push(Event::NoticesQueued);
            }
            // An address nobody holds, mailed within the interval.
            (None, None) => {}
            (Some(_), _) => {
                notices::invitation_to_member(&txn, &services.config, &invitation, &meet).await?;
                events.push(Event::NoticesQueued);
                events.push(Event::InvitationReceived {
                    invitation_id: invitation.id,
                });
            }
        }
        result.push(invitation);
    }
    services.events.commit(txn, events).await?;
    Ok(result)
}

/// The meet's invitations to `targets` already made, by target (two
/// statements): by handle, the member's invitation with no address; by
/// address, the address's, whoever holds it.
async fn existing_invitations(
    db: &impl ConnectionTrait,
    meet_id: Uuid,
    targets: &[Target],
) -> ApiResult<HashMap<Target, invitations::Model>> {
    let (handles, addresses): (Vec<_>, Vec<_>) =
        targets.iter().partition(|t| matches!(t, Target::Handle(_)));
    let mut found = HashMap::new();
    if !handles.is_empty() {
        let rows = invitations::Entity::find()
            .filter(invitations::Column::MeetId.eq(meet_id))
            .filter(invitations::Column::Email.is_null())
            .filter(invitations::Column::InviteeId.is_in(handles.iter().filter_map(|t| t.member())))
            .all(db)
            .await?;
        for row in rows {
            if let Some(member) = row.invitee_id {
                found.insert(Target::Handle(member), row);
            }
        }
    }
    if !addresses.is_empty() {
        let rows = invitations::Entity::find()
            .filter(invitations::Column::MeetId.eq(meet_id))
            .filter(
                invitations::Column::Email.is_in(addresses.iter().filter_map(|t| match t {
                    Target::Address { email, .. } => Some(email.clone()),
                    Target::Handle(_) => None,
                })),
            )
            .all(db)
            .await?;
        // Keyed by the target as asked: whose the address is now may differ
        // from whose it was when invited (a claim, a change of address).
        for target in addresses {
            if let Target::Address { email, .. } = target
                && let Some(row) = rows.iter().find(|r| r.email.as_ref() == Some(email))
            {
                found.insert(target.clone(), row.clone());
            }
        }
    }
    Ok(found)
}

/// Makes an e-mail invitation the signed-in user's. Used, expired and unknown
/// tokens get the same error.
#[tracing::instrument(name = "invitations::claim", level = "debug", skip_all)]
pub async fn claim(
    services: &Services,
    viewer: Viewer,
    token: &str,
) -> ApiResult<invitations::Model> {
    let user_id = viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let invitation = invitations::Entity::find()
        .filter(invitations::Column::ClaimTokenHash.eq(token_hash(token)))
        .filter(invitations::Column::InviteeId.is_null())
        .filter(invitations::Column::Status.eq(InvitationStatus::Pending))
        .filter(invitations::Column::ClaimExpiresAt.gt(Utc::now()))
        .one(&txn)
        .await?
        .ok_or_else(invalid_claim)?;
    // Single use, also under concurrent claims: only the claim that still
    // finds the token unspent succeeds. A claimer already invited to the meet
    // (by handle, or at another address) holds both: they merge on their
    // side only (`rules::shown_to_invitee`).
    let spent = invitations::Entity::update_many()
        .col_expr(
            invitations::Column::ClaimTokenHash,
            Expr::value(Option::<String>::None),
        )
        .col_expr(invitations::Column::InviteeId, Expr::value(user_id))
        .filter(invitations::Column::Id.eq(invitation.id))
        .filter(invitations::Column::ClaimTokenHash.eq(token_hash(token)))
        .filter(invitations::Column::InviteeId.is_null())
        .filter(invitations::Column::Status.eq(InvitationStatus::Pending))
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        return Err(invalid_claim());
    }
    let claimed = invitations::Entity::find_by_id(invitation.id)
        .one(&txn)
        .await?
        .ok_or_else(invalid_claim)?;
    let events = vec![Event::InvitationReceived {
        invitation_id: claimed.id,
    }];
    services.events.commit(txn, events).await?;
    Ok(claimed)
}

/// Pending e-mail invitations to `email` become `user_id`'s (at registration).
pub async fn adopt_by_email(
    db: &impl ConnectionTrait,
    email: &str,
    user_id: Uuid,
) -> ApiResult<()> {
    invitations::Entity::update_many()
        .col_expr(invitations::Column::InviteeId, Expr::value(user_id))
        .col_expr(
            invitations::Column::ClaimTokenHash,
            Expr::value(Option::<String>::None),
        )
        .filter(invitations::Column::Email.eq(email))
        .filter(invitations::Column::InviteeId.is_null())
        .filter(invitations::Column::Status.eq(InvitationStatus::Pending))
        .exec(db)
        .await?;
    Ok(())
}

async fn find(db: &impl ConnectionTrait, id: Uuid) -> ApiResult<invitations::Model> {
    invitations::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))
}

#[tracing::instrument(name = "invitations::respond", level = "debug", skip_all)]
pub async fn respond(
    services: &Services,
    viewer: Viewer,
    id: Uuid,
    accept: bool,
) -> ApiResult<invitations::Model> {
    let user_id = viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let invitation = find(&txn, id).await?;
    if invitation.invitee_id != Some(user_id) {
        return Err(if invitation.inviter_id == user_id || viewer.is_admin() {
            ApiError::Forbidden("only the invitee may respond".into())
        } else {
            ApiError::not_found("invitation")
        });
    }
    match (invitation.status, accept) {
        (InvitationStatus::Revoked, _) => {
            return Err(ApiError::Conflict("this invitation was revoked".into()));
        }
        (InvitationStatus::Declined, _) => {
            return Err(ApiError::Conflict("this invitation was declined".into()));
        }
        (InvitationStatus::Accepted, true) => return Ok(invitation),
        _ => {}
    }
    let meet = visibility::lock_visible(&txn, viewer, invitation.meet_id).await?;
    let now = Utc::now();
    let existing = attendance::attendance_of(&txn, meet.id, user_id).await?;
    let events = if accept {
        require_open(&meet, now)?;
        let (_, events) = attendance::answer_in(
            &txn,
            &services.config,
            &meet,
            user_id,
            existing,
            Answer::Going,
            now,
        )
        .await?;
        events
    } else {
        attendance::withdraw_answer(&txn, &services.config, &meet, user_id, existing, now).await?
    };
    let mut active: invitations::ActiveModel = invitation.into();
    active.status = Set(if accept {
        InvitationStatus::Accepted
    } else {
        InvitationStatus::Declined
    });
    active.responded_at = Set(Some(now));
    let invitation = active.update(&txn).await?;
    services.events.commit(txn, events).await?;
    Ok(invitation)
}

#[tracing::instrument(name = "invitations::revoke", level = "debug", skip_all)]
pub async fn revoke(
    services: &Services,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<invitations::Model> {
    let user_id = viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let invitation = find(&txn, id).await?;
    let meet = meets::Entity::find_by_id(invitation.meet_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    if invitation.inviter_id != user_id && meet.host_id != user_id {
        return Err(
            if invitation.invitee_id == Some(user_id) || viewer.is_admin() {
                ApiError::Forbidden("only the inviter or the host may revoke an invitation".into())
            } else {
                ApiError::not_found("invitation")
            },
        );
    }
    if invitation.status == InvitationStatus::Revoked {
        return Ok(invitation);
    }
    let invitee = invitation.invitee_id;
    // The claim link is kept but dead (a claim needs a pending invitation):
    // invited again within the mail interval, the address gets no new
    // e-mail, and the link it has works again.
    let mut active: invitations::ActiveModel = invitation.into();
    active.status = Set(InvitationStatus::Revoked);
    let invitation = active.update(&txn).await?;
    // Without the invitation an invite-only meet no longer exists for the
    // invitee, unless they hold another (by handle and by address): their
    // answer goes too, and the seat to the waitlist.
    let events = match invitee {
        Some(invitee)
            if !visibility::who_may_answer(&txn, &meet, &[invitee])
                .await?
                .contains(&invitee) =>
        {
            let existing = attendance::attendance_of(&txn, meet.id, invitee).await?;
            attendance::withdraw_answer(
                &txn,
                &services.config,
                &meet,
                invitee,
                existing,
                Utc::now(),
            )
            .await?
        }
        _ => Vec::new(),
    };
    services.events.commit(txn, events).await?;
    Ok(invitation)
}
