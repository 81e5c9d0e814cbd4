//! Invite links: one per channel a host shares a meet on, followed from an
//! open to an invitation, an answer and an arrival. A link is the
//! invitation: opening it shows the meet (an INVITE_ONLY one too), and a
//! signed-in opener (or someone registering with it) gets an invitation to
//! it attributed to the link, through the same table as every invitation,
//! so seeing, answering and revoking work as for any. Tokens carry 256
//! random bits and are looked up by their SHA-256; uses are taken by a
//! conditional update, so concurrent opens never pass `max_uses`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{
    invitations::{self, InvitationStatus},
    invite_link_opens, invite_links, meets,
};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Statement,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use uuid::Uuid;

use crate::{
    auth::{
        Viewer,
        tokens::{random_token, token_hash},
    },
    config::Config,
    db::begin_write,
    error::{ApiError, ApiResult},
    keyset::{Direction, Page, Paged, TimeKey, TimeOrder},
    meets::{rules, visibility},
    notices::web_link,
    state::Services,
    validate,
};

/// The most uses a link may allow.
pub const MAX_USES: i32 = 10_000;

pub struct LinkDraft {
    pub channel: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i32>,
}

/// The web app's address for a link.
pub fn url(config: &Config, link: &invite_links::Model) -> String {
    web_link(config, &format!("l/{}", link.token))
}

fn not_found() -> ApiError {
    ApiError::NotFound("this invite link is unknown, expired, revoked or used up".into())
}

/// `createInviteLink`: the host or an administrator, for a meet still open.
#[tracing::instrument(name = "invitations::create_link", level = "debug", skip_all)]
pub async fn create(
    services: &Services,
    viewer: Viewer,
    meet_id: Uuid,
    draft: LinkDraft,
) -> ApiResult<invite_links::Model> {
    let creator = viewer.require()?;
    let channel = validate::text("channel", &draft.channel, 1, 40)?;
    let now = Utc::now();
    if let Some(expires_at) = draft.expires_at {
        validate::instant("expiresAt", expires_at)?;
        if expires_at <= now {
            return Err(ApiError::bad_input(
                "expiresAt",
                "expiresAt must be in the future",
            ));
        }
    }
    if draft
        .max_uses
        .is_some_and(|uses| !(1..=MAX_USES).contains(&uses))
    {
        return Err(ApiError::bad_input(
            "maxUses",
            format!("maxUses must be from 1 to {MAX_USES}"),
        ));
    }
    let txn = begin_write(&services.db).await?;
    let meet = visibility::lock_visible(&txn, viewer, meet_id).await?;
    visibility::require_host_or_admin(&meet, viewer, "make invite links for this meet")?;
    rules::require_open(&meet, now)?;
    let token = random_token();
    let link = invite_links::ActiveModel {
        id: Set(Uuid::now_v7()),
        meet_id: Set(meet_id),
        created_by: Set(creator),
        channel: Set(channel),
        token_hash: Set(token_hash(&token)),
        token: Set(token),
        expires_at: Set(draft.expires_at),
        max_uses: Set(draft.max_uses),
        uses: Set(0),
        opens: Set(0),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(link)
}

/// `revokeInviteLink`: the host or an administrator; revoking twice keeps
/// the first time. Invitations it already gave stay.
#[tracing::instrument(name = "invitations::revoke_link", level = "debug", skip_all)]
pub async fn revoke(
    services: &Services,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<invite_links::Model> {
    viewer.require()?;
    let txn = begin_write(&services.db).await?;
    let link = invite_links::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| ApiError::not_found("invite link"))?;
    let meet = visibility::find_visible(&txn, viewer, link.meet_id)
        .await?
        .ok_or_else(|| ApiError::not_found("invite link"))?;
    visibility::require_host_or_admin(&meet, viewer, "revoke this meet's invite links")?;
    if link.revoked_at.is_some() {
        return Ok(link);
    }
    let mut active: invite_links::ActiveModel = link.into();
    active.revoked_at = Set(Some(Utc::now()));
    let link = active.update(&txn).await?;
    txn.commit().await?;
    Ok(link)
}

/// What opening a link shows.
pub struct Opened {
    pub link: invite_links::Model,
    pub meet: meets::Model,
    /// The opener's invitation to the meet: `None` when anonymous, for the
    /// host, or when the meet no longer takes answers.
    pub invitation: Option<invitations::Model>,
}

/// `openInviteLink`: counts the open and, signed in, gives an invitation.
#[tracing::instrument(name = "invitations::open_link", level = "debug", skip_all)]
pub async fn open(services: &Services, viewer: Viewer, token: &str) -> ApiResult<Opened> {
    let txn = begin_write(&services.db).await?;
    let opened = open_in(&txn, token, viewer.user_id(), Utc::now()).await?;
    txn.commit().await?;
    Ok(opened)
}

/// Opens a link inside a write transaction (registering with a link opens
/// it in the registration's). Unknown, expired, revoked and used-up links
/// are NOT_FOUND, and the caller's transaction rolls back with the error.
pub(crate) async fn open_in(
    txn: &DatabaseTransaction,
    token: &str,
    user_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> ApiResult<Opened> {
    // Nothing longer than a token is worth hashing.
    if token.len() > 100 {
        return Err(not_found());
    }
    let link = invite_links::Entity::find()
        .filter(invite_links::Column::TokenHash.eq(token_hash(token)))
        .one(txn)
        .await?
        .filter(|link| link.revoked_at.is_none() && link.expires_at.is_none_or(|at| at > now))
        .filter(|link| link.max_uses.is_none_or(|max| link.uses < max))
        .ok_or_else(not_found)?;
    // The meet's lock orders opens of its links (and invitations to it).
    let meet = meets::Entity::find_by_id(link.meet_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(not_found)?;
    let counts_open = match user_id {
        None => true,
        Some(user_id) => first_open(txn, link.id, user_id, now).await?,
    };
    if counts_open {
        invite_links::Entity::update_many()
            .col_expr(
                invite_links::Column::Opens,
                Expr::col(invite_links::Column::Opens).add(1),
            )
            .filter(invite_links::Column::Id.eq(link.id))
            .exec(txn)
            .await?;
    }
    let invitation = match user_id {
        Some(user_id) if user_id != meet.host_id && rules::require_open(&meet, now).is_ok() => {
            Some(invitation_through(txn, &link, &meet, user_id, now).await?)
        }
        _ => None,
    };
    let link = invite_links::Entity::find_by_id(link.id)
        .one(txn)
        .await?
        .ok_or_else(not_found)?;
    Ok(Opened {
        link,
        meet,
        invitation,
    })
}

/// Records a signed-in open; whether it is this user's first of the link.
async fn first_open(
    txn: &DatabaseTransaction,
    link_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<bool> {
    let inserted = invite_link_opens::Entity::insert(invite_link_opens::ActiveModel {
        link_id: Set(link_id),
        user_id: Set(user_id),
        opened_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            invite_link_opens::Column::LinkId,
            invite_link_opens::Column::UserId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(inserted == 1)
}

/// The user's invitation to the meet through `link`: one they already hold
/// by handle stays as it is; a revoked one comes back; otherwise a new one,
/// taking one of the link's uses (NOT_FOUND when none is left).
async fn invitation_through(
    txn: &DatabaseTransaction,
    link: &invite_links::Model,
    meet: &meets::Model,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> ApiResult<invitations::Model> {
    let existing = invitations::Entity::find()
        .filter(invitations::Column::MeetId.eq(meet.id))
        .filter(invitations::Column::InviteeId.eq(user_id))
        .filter(invitations::Column::Email.is_null())
        .one(txn)
        .await?;
    if let Some(existing) = existing
        .as_ref()
        .filter(|i| i.status != InvitationStatus::Revoked)
    {
        return Ok(existing.clone());
    }
    let used = invite_links::Entity::update_many()
        .col_expr(
            invite_links::Column::Uses,
            Expr::col(invite_links::Column::Uses).add(1),
        )
        .filter(invite_links::Column::Id.eq(link.id))
        .filter(
            Condition::any()
                .add(invite_links::Column::MaxUses.is_null())
                .add(
                    Expr::col(invite_links::Column::Uses)
                        .lt(Expr::col(invite_links::Column::MaxUses)),
                ),
        )
        .exec(txn)
        .await?;
    if used.rows_affected != 1 {
        return Err(not_found());
    }
    Ok(match existing {
        Some(revoked) => {
            let mut active: invitations::ActiveModel = revoked.into();
            active.status = Set(InvitationStatus::Pending);
            active.responded_at = Set(None);
            active.invite_link_id = Set(Some(link.id));
            active.update(txn).await?
        }
        None => {
            invitations::ActiveModel {
                id: Set(Uuid::now_v7()),
                meet_id: Set(meet.id),
                inviter_id: Set(link.created_by),
                invitee_id: Set(Some(user_id)),
                email: Set(None),
                message: Set(None),
                status: Set(InvitationStatus::Pending),
                claim_token_hash: Set(None),
                claim_expires_at: Set(None),
                created_at: Set(now),
                responded_at: Set(None),
                invite_link_id: Set(Some(link.id)),
            }
            .insert(txn)
            .await?
        }
    })
}

/// Links newest first.
const NEWEST_FIRST: TimeOrder<invite_links::Column, invite_links::Model> = TimeOrder {
    time: invite_links::Column::CreatedAt,
    id: invite_links::Column::Id,
    direction: Direction::Descending,
    key: |link| TimeKey {
        at: link.created_at,
        id: link.id,
    },
};

/// `Meet.inviteLinks`: the host's and administrators' only.
#[tracing::instrument(name = "invitations::links_of_meet", level = "debug", skip_all)]
pub async fn for_meet(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    meet: &meets::Model,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<invite_links::Model>> {
    visibility::require_host_or_admin(meet, viewer, "see a meet's invite links")?;
    let query = NEWEST_FIRST.select(
        invite_links::Entity::find().filter(invite_links::Column::MeetId.eq(meet.id)),
        page,
    );
    Ok(NEWEST_FIRST.paged(query.all(db).await?, page, |link| link))
}

/// Where a link's people got to: invitations through it, and of those,
/// GOING now and checked in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Funnel {
    pub joined: i64,
    pub going: i64,
    pub arrived: i64,
}

/// The funnels of `links`, by link, in one grouped statement.
#[tracing::instrument(name = "invitations::funnels", level = "debug", skip_all)]
pub async fn funnels(
    db: &impl ConnectionTrait,
    links: &[Uuid],
) -> ApiResult<HashMap<Uuid, Funnel>> {
    if links.is_empty() {
        return Ok(HashMap::new());
    }
    let backend = db.get_database_backend();
    let placeholders: Vec<String> = (1..=links.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT i.invite_link_id, COUNT(*), \
         COALESCE(SUM(CASE WHEN a.status = 'GOING' THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN a.checked_in_at IS NOT NULL THEN 1 ELSE 0 END), 0) \
         FROM invitations i LEFT JOIN attendances a \
         ON a.meet_id = i.meet_id AND a.user_id = i.invitee_id \
         WHERE i.invite_link_id IN ({}) GROUP BY i.invite_link_id",
        placeholders.join(", ")
    );
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            links.iter().map(|&id| id.into()),
        ))
        .await?;
    rows.into_iter()
        .map(|row| {
            let link: Uuid = row.try_get_by_index(0)?;
            Ok((
                link,
                Funnel {
                    joined: row.try_get_by_index(1)?,
                    going: row.try_get_by_index(2)?,
                    arrived: row.try_get_by_index(3)?,
                },
            ))
        })
        .collect()
}
