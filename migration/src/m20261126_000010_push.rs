//! Push notices (issue 17, the rest):
//! - `devices`: a phone or browser to push to, one row per (platform, token):
//!   registering a token again (even by another member, on a shared browser)
//!   updates that row. A Web Push subscription keeps its endpoint as the
//!   token and its two keys.
//! - `push_notices`: the push outbox, one row per notice and device, written
//!   in the transaction of the change and claimed like the e-mail outbox
//!   (`notices`): leases, `SKIP LOCKED`, backoff, dead after the last attempt.
//!   A device that goes takes its notices with it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    UserId,
    Platform,
    Token,
    Name,
    WebPushP256dh,
    WebPushAuth,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum PushNotices {
    Table,
    Id,
    DeviceId,
    Kind,
    Title,
    Body,
    Data,
    Attempts,
    NextAttemptAt,
    SentAt,
    LastError,
    DeadAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(uuid(Devices::Id).primary_key())
                    .col(uuid(Devices::UserId))
                    .col(string_len(Devices::Platform, 8))
                    .col(string_len(Devices::Token, 2048))
                    .col(string_len_null(Devices::Name, 100))
                    .col(string_len_null(Devices::WebPushP256dh, 128))
                    .col(string_len_null(Devices::WebPushAuth, 64))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone_null(Devices::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Devices::Table, Devices::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check((
                        "devices_platform".to_owned(),
                        Expr::cust("platform IN ('IOS', 'ANDROID', 'WEB')"),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("devices_platform_token")
                    .table(Devices::Table)
                    .col(Devices::Platform)
                    .col(Devices::Token)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("devices_user")
                    .table(Devices::Table)
                    .col(Devices::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushNotices::Table)
                    .col(uuid(PushNotices::Id).primary_key())
                    .col(uuid(PushNotices::DeviceId))
                    .col(string_len(PushNotices::Kind, 32))
                    .col(string(PushNotices::Title))
                    .col(text(PushNotices::Body))
                    .col(text(PushNotices::Data))
                    .col(integer(PushNotices::Attempts).default(0))
                    .col(timestamp_with_time_zone(PushNotices::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(PushNotices::SentAt))
                    .col(text_null(PushNotices::LastError))
                    .col(timestamp_with_time_zone_null(PushNotices::DeadAt))
                    .col(timestamp_with_time_zone(PushNotices::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushNotices::Table, PushNotices::DeviceId)
                            .to(Devices::Table, Devices::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("push_notices_due")
                    .table(PushNotices::Table)
                    .col(PushNotices::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("push_notices_device")
                    .table(PushNotices::Table)
                    .col(PushNotices::DeviceId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PushNotices::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Devices::Table).to_owned())
            .await
    }
}
