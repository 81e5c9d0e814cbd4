//! GraphQL types of administration.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use entity::admin_audit;

use crate::{accounts::types::User, error::FieldResult, graphql::ContextExt};

/// One administrative action.
pub struct AuditEntry(pub admin_audit::Model);

#[Object]
impl AuditEntry {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What was done: set_role_admin, set_role_member, suspend, unsuspend, promote.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// Who did it; `null` for the command line.
    async fn actor(&self, ctx: &Context<'_>) -> FieldResult<Option<User>> {
        let Some(id) = self.0.actor_id else {
            return Ok(None);
        };
        Ok(ctx.loaders().users.load_one(id).await?.map(User::from))
    }

    async fn target(&self, ctx: &Context<'_>) -> FieldResult<Option<User>> {
        let Some(id) = self.0.target_user_id else {
            return Ok(None);
        };
        Ok(ctx.loaders().users.load_one(id).await?.map(User::from))
    }

    /// The reason given, where there is one.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
