//! A dead state for e-mail notices: one that failed its last allowed attempt
//! gets `dead_at` and is never claimed again (before this, an undeliverable
//! address was retried forever). The claim's index leads with the columns it
//! tests for NULL, so dead notices stay out of its range like sent ones.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, Copy, DeriveIden)]
enum Notices {
    Table,
    SentAt,
    DeadAt,
    NextAttemptAt,
}

const DUE_INDEX: &str = "notices_due";

/// The claim query's index over `columns` (its shape before and after).
fn due_index(columns: &[Notices]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(DUE_INDEX).table(Notices::Table);
    for column in columns {
        index.col(*column);
    }
    index.to_owned()
}

fn drop_due_index() -> IndexDropStatement {
    Index::drop()
        .name(DUE_INDEX)
        .table(Notices::Table)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too: all or nothing, and on one
    /// connection (another pooled connection, its schema read before the
    /// index was dropped, would refuse to create it again as existing).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Notices::Table)
                    .add_column(timestamp_with_time_zone_null(Notices::DeadAt))
                    .to_owned(),
            )
            .await?;
        manager.drop_index(drop_due_index()).await?;
        manager
            .create_index(due_index(&[
                Notices::SentAt,
                Notices::DeadAt,
                Notices::NextAttemptAt,
            ]))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(drop_due_index()).await?;
        manager
            .create_index(due_index(&[Notices::SentAt, Notices::NextAttemptAt]))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Notices::Table)
                    .drop_column(Notices::DeadAt)
                    .to_owned(),
            )
            .await
    }
}
