//! Per-request batch loaders of the meets domain.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entity::{attendances, meets};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::visibility;
use crate::auth::Viewer;

/// Meets by id, only those the viewer may see.
pub struct MeetLoader {
    pub db: DatabaseConnection,
    pub viewer: Viewer,
}

impl Loader<Uuid> for MeetLoader {
    type Value = meets::Model;
    type Error = Arc<DbErr>;

    #[tracing::instrument(name = "load meets", level = "debug", skip_all)]
    async fn load(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, meets::Model>, Self::Error> {
        let rows = meets::Entity::find()
            .filter(
                Condition::all()
                    .add(meets::Column::Id.is_in(ids.iter().copied()))
                    .add(visibility::condition(self.viewer)),
            )
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|m| (m.id, m)).collect())
    }
}

/// The viewer's own attendance, by meet id.
pub struct ViewerAttendanceLoader {
    pub db: DatabaseConnection,
    pub user_id: Uuid,
}

impl Loader<Uuid> for ViewerAttendanceLoader {
    type Value = attendances::Model;
    type Error = Arc<DbErr>;

    #[tracing::instrument(name = "load viewer attendance", level = "debug", skip_all)]
    async fn load(
        &self,
        meet_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, attendances::Model>, Self::Error> {
        let rows = attendances::Entity::find()
            .filter(attendances::Column::UserId.eq(self.user_id))
            .filter(attendances::Column::MeetId.is_in(meet_ids.iter().copied()))
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(|a| (a.meet_id, a)).collect())
    }
}
