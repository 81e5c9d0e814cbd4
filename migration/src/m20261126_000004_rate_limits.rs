//! Per-account rate-limit counters: one row per key (e.g. "login:<e-mail>")
//! and fixed window, counted with an upsert, so the limits hold across
//! every server process on one database.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RateLimitWindows {
    Table,
    Key,
    WindowStart,
    Hits,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateLimitWindows::Table)
                    .col(string_len(RateLimitWindows::Key, 400))
                    .col(big_integer(RateLimitWindows::WindowStart))
                    .col(integer(RateLimitWindows::Hits))
                    .primary_key(
                        Index::create()
                            .col(RateLimitWindows::Key)
                            .col(RateLimitWindows::WindowStart),
                    )
                    .to_owned(),
            )
            .await?;
        // Pruning deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("rate_limit_windows_by_start")
                    .table(RateLimitWindows::Table)
                    .col(RateLimitWindows::WindowStart)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimitWindows::Table).to_owned())
            .await
    }
}
