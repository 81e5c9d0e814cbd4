//! What limits invitations: an index to count a member's invitations of the
//! last day (`TWEETMEET_INVITES_PER_DAY`), and when each address was last
//! mailed an invitation to each meet (`TWEETMEET_INVITE_MAIL_INTERVAL_HOURS`).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    Table,
    InviterId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Meets {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum InvitationMails {
    Table,
    MeetId,
    Email,
    SentAt,
}

const BY_INVITER: &str = "invitations_inviter_created";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(BY_INVITER)
                    .table(Invitations::Table)
                    .col(Invitations::InviterId)
                    .col(Invitations::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InvitationMails::Table)
                    .col(uuid(InvitationMails::MeetId))
                    .col(string(InvitationMails::Email))
                    .col(timestamp_with_time_zone(InvitationMails::SentAt))
                    .primary_key(
                        Index::create()
                            .col(InvitationMails::MeetId)
                            .col(InvitationMails::Email),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(InvitationMails::Table, InvitationMails::MeetId)
                            .to(Meets::Table, Meets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InvitationMails::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(BY_INVITER)
                    .table(Invitations::Table)
                    .to_owned(),
            )
            .await
    }
}
