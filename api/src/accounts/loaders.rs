//! Users by id, batched per request.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entity::users;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

pub struct UserLoader(pub DatabaseConnection);

impl Loader<Uuid> for UserLoader {
    type Value = users::Model;
    type Error = Arc<DbErr>;

    #[tracing::instrument(name = "load users", level = "debug", skip_all)]
    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, users::Model>, Self::Error> {
        let rows = users::Entity::find()
            .filter(users::Column::Id.is_in(ids.iter().copied()))
            .all(&self.0)
            .await?;
        Ok(rows.into_iter().map(|u| (u.id, u)).collect())
    }
}
