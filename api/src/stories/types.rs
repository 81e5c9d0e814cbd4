//! GraphQL types of stories.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, connection::Connection};
use chrono::{DateTime, Utc};
use entity::{meets, stories, users};
use uuid::Uuid;

use super::service;
use crate::{
    accounts::types::User,
    error::{ApiError, FieldResult},
    graphql::{ContextExt, pagination},
    meets::types::Meet,
};

/// A recap or war story. `body` is returned exactly as written: the server
/// renders nothing to HTML.
/// Author and meet may come preloaded (live events resolve every
/// subscriber from one load).
pub struct Story {
    model: stories::Model,
    author: Option<users::Model>,
    meet: Option<Arc<meets::Model>>,
}

impl From<stories::Model> for Story {
    fn from(model: stories::Model) -> Self {
        Self {
            model,
            author: None,
            meet: None,
        }
    }
}

impl Story {
    pub fn with_author(mut self, author: users::Model) -> Self {
        self.author = Some(author);
        self
    }

    pub fn with_meet(mut self, meet: impl Into<Arc<meets::Model>>) -> Self {
        self.meet = Some(meet.into());
        self
    }
}

#[Object]
impl Story {
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    async fn title(&self) -> &str {
        &self.model.title
    }

    async fn body(&self) -> &str {
        &self.model.body
    }

    async fn published_at(&self) -> DateTime<Utc> {
        self.model.published_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }

    async fn author(&self, ctx: &Context<'_>) -> FieldResult<User> {
        if let Some(author) = &self.author {
            return Ok(User::from(author.clone()));
        }
        let author = ctx.loaders().users.load_one(self.model.author_id).await?;
        Ok(User::from(
            author.ok_or_else(|| ApiError::not_found("user"))?,
        ))
    }

    /// The meet it is about, if any.
    async fn meet(&self, ctx: &Context<'_>) -> FieldResult<Option<Meet>> {
        let Some(meet_id) = self.model.meet_id else {
            return Ok(None);
        };
        if let Some(meet) = &self.meet {
            return Ok(Some(Meet::from(meet.clone())));
        }
        Ok(ctx.loaders().meets.load_one(meet_id).await?.map(Meet::from))
    }
}

#[derive(InputObject)]
pub struct PublishStoryInput {
    /// 1 to 200 characters.
    pub title: String,
    /// 1 to 20,000 characters, kept as written.
    pub body: String,
    /// A meet the author may see.
    pub meet_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateStoryInput {
    pub title: Option<String>,
    pub body: Option<String>,
}

/// A page of stories the viewer may see, newest first.
pub async fn list(
    ctx: &Context<'_>,
    meet_id: Option<Uuid>,
    author_id: Option<Uuid>,
    first: Option<i32>,
    after: Option<String>,
) -> FieldResult<Connection<String, Story>> {
    let page = pagination::page(first, after)?;
    let paged = service::list(ctx.db(), ctx.viewer(), meet_id, author_id, &page).await?;
    Ok(pagination::connection(paged, |(model, author)| {
        Story::from(model).with_author(author)
    }))
}
