//! The administration Query and Mutation roots: administrators only.

use async_graphql::{Context, ID, Object, connection::Connection};

use super::{service, types::AuditEntry};
use crate::{
    accounts::types::{Role, User},
    error::FieldResult,
    graphql::{
        ContextExt,
        pagination::{self, page_complexity},
        parse_id,
    },
};

#[derive(Default)]
pub struct AdminQuery;

#[Object]
impl AdminQuery {
    /// Every user, newest first; `search` matches handle, display name or e-mail.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, User>> {
        let page = pagination::page(first, after)?;
        let paged = service::list_users(ctx.db(), ctx.viewer(), search, &page).await?;
        Ok(pagination::connection(paged, User::from))
    }

    /// Every administrative action, newest first.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn admin_audit_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> FieldResult<Connection<String, AuditEntry>> {
        let page = pagination::page(first, after)?;
        let paged = service::audit_log(ctx.db(), ctx.viewer(), &page).await?;
        Ok(pagination::connection(paged, AuditEntry))
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    async fn set_user_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> FieldResult<User> {
        let user_id = parse_id(&user_id, "user")?;
        Ok(User::from(
            service::set_role(ctx.services(), ctx.viewer(), user_id, role.into()).await?,
        ))
    }

    async fn suspend_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        reason: String,
    ) -> FieldResult<User> {
        let user_id = parse_id(&user_id, "user")?;
        Ok(User::from(
            service::suspend(ctx.services(), ctx.viewer(), user_id, &reason).await?,
        ))
    }

    async fn unsuspend_user(&self, ctx: &Context<'_>, user_id: ID) -> FieldResult<User> {
        let user_id = parse_id(&user_id, "user")?;
        Ok(User::from(
            service::unsuspend(ctx.services(), ctx.viewer(), user_id).await?,
        ))
    }
}
