//! The durable log of meet activity that live subscriptions resume from: one
//! row per event on a meet, numbered per meet without gaps, written in the
//! change's own transaction. The head row holds each meet's last number; the
//! upsert that takes the next one also locks it, so events on one meet
//! commit in the order of their numbers.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MeetActivityHeads {
    Table,
    MeetId,
    Seq,
}

#[derive(DeriveIden)]
enum MeetActivityLog {
    Table,
    MeetId,
    Seq,
    Kind,
    UserId,
    StoryId,
    At,
}

#[derive(DeriveIden)]
enum Meets {
    Table,
    Id,
}

fn meet_foreign_key(table: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from_tbl(table)
        .from_col(Alias::new("meet_id"))
        .to_tbl(Meets::Table)
        .to_col(Meets::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MeetActivityHeads::Table)
                    .col(uuid(MeetActivityHeads::MeetId).primary_key())
                    .col(big_integer(MeetActivityHeads::Seq))
                    .foreign_key(&mut meet_foreign_key(MeetActivityHeads::Table))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MeetActivityLog::Table)
                    .col(uuid(MeetActivityLog::MeetId))
                    .col(big_integer(MeetActivityLog::Seq))
                    .col(string_len(MeetActivityLog::Kind, 24))
                    .col(uuid_null(MeetActivityLog::UserId))
                    .col(uuid_null(MeetActivityLog::StoryId))
                    .col(timestamp_with_time_zone(MeetActivityLog::At))
                    .primary_key(
                        Index::create()
                            .col(MeetActivityLog::MeetId)
                            .col(MeetActivityLog::Seq),
                    )
                    .foreign_key(&mut meet_foreign_key(MeetActivityLog::Table))
                    .to_owned(),
            )
            .await?;
        // Pruning deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("meet_activity_log_by_age")
                    .table(MeetActivityLog::Table)
                    .col(MeetActivityLog::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MeetActivityLog::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MeetActivityHeads::Table).to_owned())
            .await
    }
}
