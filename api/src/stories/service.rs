//! Story rules. A story about a meet is seen only by those who may see the
//! meet: the meets' visibility rule, applied to the story's meet, joined.

use chrono::Utc;
use entity::{stories, users};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    JoinType, QueryFilter, QuerySelect, RelationTrait,
};
use uuid::Uuid;

use crate::{
    auth::Viewer,
    db::{begin_write, with_related},
    error::{ApiError, ApiResult},
    events::{ActivityKind, Event},
    keyset::{Direction, Page, Paged, TimeKey, TimeOrder},
    meets::visibility,
    state::Services,
};

pub const TITLE_MAX: usize = 200;
pub const BODY_MAX: usize = 20_000;

/// Stories the viewer may see: on their own, or about a meet they may see.
/// A condition on stories with their meet joined (`with_meet`): each story's
/// meet is found by its key, where "among all the meets the viewer may see"
/// would list every meet ever held for every page.
fn visible(viewer: Viewer) -> Condition {
    Condition::any()
        .add(stories::Column::MeetId.is_null())
        .add(visibility::condition(viewer))
}

/// `query` with each story's meet, if any, joined for `visible`.
fn with_meet<Q: QuerySelect>(query: Q) -> Q {
    query.join(JoinType::LeftJoin, stories::Relation::Meet.def())
}

fn title(raw: &str) -> ApiResult<String> {
    crate::validate::text("title", raw, 1, TITLE_MAX)
}

/// The body is kept as written (Markdown is plain text to us), line breaks
/// and all.
fn body(raw: String) -> ApiResult<String> {
    if raw.trim().is_empty() || raw.chars().count() > BODY_MAX {
        return Err(ApiError::bad_input(
            "body",
            format!("body must be 1 to {BODY_MAX} characters"),
        ));
    }
    crate::validate::multiline("body", &raw)
}

#[tracing::instrument(name = "stories::publish", level = "debug", skip_all)]
pub async fn publish(
    services: &Services,
    viewer: Viewer,
    title_raw: &str,
    body_raw: String,
    meet_id: Option<Uuid>,
) -> ApiResult<stories::Model> {
    let author_id = viewer.require()?;
    let title = title(title_raw)?;
    let body = body(body_raw)?;
    let txn = begin_write(&services.db).await?;
    if let Some(meet_id) = meet_id
        && visibility::find_visible(&txn, viewer, meet_id)
            .await?
            .is_none()
    {
        return Err(ApiError::bad_input("meetId", "no such meet"));
    }
    let now = Utc::now();
    let story = stories::ActiveModel {
        id: Set(Uuid::now_v7()),
        author_id: Set(author_id),
        meet_id: Set(meet_id),
        title: Set(title),
        body: Set(body),
        published_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await?;
    let mut events = vec![Event::StoryPublished { story_id: story.id }];
    if let Some(meet_id) = meet_id {
        events.push(Event::MeetActivity {
            seq: 0,
            kind: ActivityKind::StoryPublished,
            meet_id,
            user_id: Some(author_id),
            story_id: Some(story.id),
            at: now,
        });
        crate::notices::story_about_meet(&txn, &services.config, &story, meet_id).await?;
        events.push(Event::NoticesQueued);
    }
    services.events.commit(txn, events).await?;
    Ok(story)
}

#[tracing::instrument(name = "stories::find_visible", level = "debug", skip_all)]
pub async fn find_visible(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<Option<stories::Model>> {
    Ok(with_meet(stories::Entity::find_by_id(id))
        .filter(visible(viewer))
        .one(db)
        .await?)
}

/// A story its author may act on even after losing sight of its meet;
/// anyone else only on what they may see.
async fn find_own_or_visible(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    id: Uuid,
) -> ApiResult<stories::Model> {
    let story = stories::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("story"))?;
    if Some(story.author_id) == viewer.user_id() {
        return Ok(story);
    }
    find_visible(db, viewer, id)
        .await?
        .ok_or_else(|| ApiError::not_found("story"))
}

#[tracing::instrument(name = "stories::update", level = "debug", skip_all)]
pub async fn update(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    id: Uuid,
    new_title: Option<String>,
    new_body: Option<String>,
) -> ApiResult<stories::Model> {
    let user_id = viewer.require()?;
    let story = find_own_or_visible(db, viewer, id).await?;
    if story.author_id != user_id {
        return Err(ApiError::Forbidden(
            "only the author may edit a story".into(),
        ));
    }
    let mut active: stories::ActiveModel = story.into();
    if let Some(value) = new_title {
        active.title = Set(title(&value)?);
    }
    if let Some(value) = new_body {
        active.body = Set(body(value)?);
    }
    active.updated_at = Set(Utc::now());
    Ok(active.update(db).await?)
}

#[tracing::instrument(name = "stories::delete", level = "debug", skip_all)]
pub async fn delete(db: &impl ConnectionTrait, viewer: Viewer, id: Uuid) -> ApiResult<bool> {
    let user_id = viewer.require()?;
    let story = find_own_or_visible(db, viewer, id).await?;
    if story.author_id != user_id && !viewer.is_admin() {
        return Err(ApiError::Forbidden(
            "only the author or an administrator may delete a story".into(),
        ));
    }
    stories::Entity::delete_by_id(story.id).exec(db).await?;
    Ok(true)
}

/// Stories newest first.
const NEWEST_FIRST: TimeOrder<stories::Column, stories::Model> = TimeOrder {
    time: stories::Column::PublishedAt,
    id: stories::Column::Id,
    direction: Direction::Descending,
    key: |story| TimeKey {
        at: story.published_at,
        id: story.id,
    },
};

/// Stories the viewer may see with their authors, newest first, optionally
/// of one meet or author.
#[tracing::instrument(name = "stories::list", level = "debug", skip_all)]
pub async fn list(
    db: &impl ConnectionTrait,
    viewer: Viewer,
    meet_id: Option<Uuid>,
    author_id: Option<Uuid>,
    page: &Page<TimeKey>,
) -> ApiResult<Paged<(stories::Model, users::Model)>> {
    let mut condition = Condition::all().add(visible(viewer));
    if let Some(meet_id) = meet_id {
        condition = condition.add(stories::Column::MeetId.eq(meet_id));
    }
    if let Some(author_id) = author_id {
        condition = condition.add(stories::Column::AuthorId.eq(author_id));
    }
    let query =
        with_meet(stories::Entity::find().find_also_related(users::Entity)).filter(condition);
    let rows = with_related(NEWEST_FIRST.select(query, page).all(db).await?);
    Ok(NEWEST_FIRST.paged(rows, page, |(s, _)| s))
}
