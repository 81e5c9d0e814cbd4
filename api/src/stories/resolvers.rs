//! The stories' Query and Mutation roots.

use async_graphql::{Context, ID, Object, connection::Connection};

use super::{
    service,
    types::{self, PublishStoryInput, Story, UpdateStoryInput},
};
use crate::{
    error::{ApiError, FieldResult},
    graphql::{ContextExt, pagination::page_complexity, parse_id},
};

#[derive(Default)]
pub struct StoriesQuery;

#[Object]
impl StoriesQuery {
    /// Stories the viewer may see, newest first; with `meetId`, that meet's only.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn stories(
        &self,
        ctx: &Context<'_>,
        meet_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, Story>> {
        let meet_id = match meet_id {
            // A malformed id names no meet, so it has no stories.
            Some(id) => match parse_id(&id, "meet") {
                Ok(id) => Some(id),
                Err(_) => return Ok(Connection::new(false, false)),
            },
            None => None,
        };
        types::list(ctx, meet_id, None, first, after).await
    }

    async fn story(&self, ctx: &Context<'_>, id: ID) -> FieldResult<Option<Story>> {
        let Ok(id) = parse_id(&id, "story") else {
            return Ok(None);
        };
        Ok(service::find_visible(ctx.db(), ctx.viewer(), id)
            .await?
            .map(Story::from))
    }
}

#[derive(Default)]
pub struct StoriesMutation;

#[Object]
impl StoriesMutation {
    async fn publish_story(
        &self,
        ctx: &Context<'_>,
        input: PublishStoryInput,
    ) -> FieldResult<Story> {
        let meet_id = match &input.meet_id {
            Some(id) => Some(
                parse_id(id, "meet").map_err(|_| ApiError::bad_input("meetId", "no such meet"))?,
            ),
            None => None,
        };
        Ok(Story::from(
            service::publish(
                ctx.services(),
                ctx.viewer(),
                &input.title,
                input.body,
                meet_id,
            )
            .await?,
        ))
    }

    /// The author only.
    async fn update_story(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateStoryInput,
    ) -> FieldResult<Story> {
        let id = parse_id(&id, "story")?;
        Ok(Story::from(
            service::update(ctx.db(), ctx.viewer(), id, input.title, input.body).await?,
        ))
    }

    /// The author or an administrator.
    async fn delete_story(&self, ctx: &Context<'_>, id: ID) -> FieldResult<bool> {
        let id = parse_id(&id, "story")?;
        Ok(service::delete(ctx.db(), ctx.viewer(), id).await?)
    }
}
