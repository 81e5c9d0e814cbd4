//! Notices that reach people where they are (issue 17, part): each user's
//! channels per kind of notice, how long before a meet they are reminded,
//! and the nonce behind their calendar feed's secret address
//! (`calendar_feed_hash`: the SHA-256 of the token, looked up when the feed
//! is fetched).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum NotificationPreferences {
    Table,
    UserId,
    Kind,
    Email,
    Push,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    ReminderMinutesBefore,
    CalendarFeedNonce,
    CalendarFeedHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(NotificationPreferences::Table)
                    .col(uuid(NotificationPreferences::UserId))
                    .col(string_len(NotificationPreferences::Kind, 32))
                    .col(boolean(NotificationPreferences::Email))
                    .col(boolean(NotificationPreferences::Push))
                    .primary_key(
                        Index::create()
                            .col(NotificationPreferences::UserId)
                            .col(NotificationPreferences::Kind),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                NotificationPreferences::Table,
                                NotificationPreferences::UserId,
                            )
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let user_columns = [
            {
                let mut column = integer_null(Users::ReminderMinutesBefore);
                column.default(120).check(Expr::cust(
                    "reminder_minutes_before IS NULL OR \
                     (reminder_minutes_before >= 15 AND reminder_minutes_before <= 1440)",
                ));
                column
            },
            string_len_null(Users::CalendarFeedNonce, 64),
            string_len_null(Users::CalendarFeedHash, 64),
        ];
        for column in user_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("users_calendar_feed")
                    .table(Users::Table)
                    .col(Users::CalendarFeedHash)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("users_calendar_feed")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Users::CalendarFeedHash,
            Users::CalendarFeedNonce,
            Users::ReminderMinutesBefore,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(
                Table::drop()
                    .table(NotificationPreferences::Table)
                    .to_owned(),
            )
            .await
    }
}
