//! Invite links and go / no-go meets (issue 16), and the table of timed
//! work:
//! - `invite_links`: one per channel a host shares a meet on, its token kept
//!   (the host's `url`) and looked up by its hash; counters of uses (bounded
//!   by `max_uses`, a CHECK) and opens. `invite_link_opens`: who has opened
//!   a link signed in (counted once each). `invitations.invite_link_id`:
//!   the link an invitation came through.
//! - `meets.minimum_going` / `decide_by` / `confirmed_at`: a meet with a
//!   minimum is TENTATIVE until confirmed (or cancelled at its deadline).
//! - `scheduled_jobs`: due work (deciding a meet, later reminders), one row
//!   per kind and subject, claimed with a lease so exactly one process runs
//!   it, even after a crash.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum InviteLinks {
    Table,
    Id,
    MeetId,
    CreatedBy,
    Channel,
    Token,
    TokenHash,
    ExpiresAt,
    MaxUses,
    Uses,
    Opens,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum InviteLinkOpens {
    Table,
    LinkId,
    UserId,
    OpenedAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    InviteLinkId,
}

#[derive(DeriveIden)]
enum Meets {
    Table,
    Id,
    MinimumGoing,
    DecideBy,
    ConfirmedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ScheduledJobs {
    Table,
    Id,
    Kind,
    SubjectId,
    DueAt,
    ClaimedUntil,
    Attempts,
    CreatedAt,
}

fn check(name: &str, sql: &str) -> (String, Expr) {
    (name.to_owned(), Expr::cust(sql.to_owned()))
}

/// A column CHECK: SQLite adds those with the column, and drops them with it.
fn checked(mut column: ColumnDef, sql: &str) -> ColumnDef {
    column.check(Expr::cust(sql.to_owned()));
    column
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(InviteLinks::Table)
                    .col(uuid(InviteLinks::Id).primary_key())
                    .col(uuid(InviteLinks::MeetId))
                    .col(uuid(InviteLinks::CreatedBy))
                    .col(string_len(InviteLinks::Channel, 40))
                    .col(string(InviteLinks::Token))
                    .col(string(InviteLinks::TokenHash).unique_key())
                    .col(timestamp_with_time_zone_null(InviteLinks::ExpiresAt))
                    .col(integer_null(InviteLinks::MaxUses))
                    .col(integer(InviteLinks::Uses).default(0))
                    .col(integer(InviteLinks::Opens).default(0))
                    .col(timestamp_with_time_zone_null(InviteLinks::RevokedAt))
                    .col(timestamp_with_time_zone(InviteLinks::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(InviteLinks::Table, InviteLinks::MeetId)
                            .to(Meets::Table, Meets::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(InviteLinks::Table, InviteLinks::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .check(check(
                        "invite_links_max_uses",
                        "max_uses IS NULL OR (max_uses >= 1 AND max_uses <= 10000)",
                    ))
                    .check(check(
                        "invite_links_uses",
                        "uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)",
                    ))
                    .check(check("invite_links_opens", "opens >= 0"))
                    .to_owned(),
            )
            .await?;
        // A meet's links, newest first.
        manager
            .create_index(
                Index::create()
                    .name("invite_links_by_meet")
                    .table(InviteLinks::Table)
                    .col(InviteLinks::MeetId)
                    .col(InviteLinks::CreatedAt)
                    .col(InviteLinks::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InviteLinkOpens::Table)
                    .col(uuid(InviteLinkOpens::LinkId))
                    .col(uuid(InviteLinkOpens::UserId))
                    .col(timestamp_with_time_zone(InviteLinkOpens::OpenedAt))
                    .primary_key(
                        Index::create()
                            .col(InviteLinkOpens::LinkId)
                            .col(InviteLinkOpens::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(InviteLinkOpens::Table, InviteLinkOpens::LinkId)
                            .to(InviteLinks::Table, InviteLinks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(InviteLinkOpens::Table, InviteLinkOpens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .add_column(uuid_null(Invitations::InviteLinkId))
                    .to_owned(),
            )
            .await?;
        // A link's funnel counts its invitations.
        manager
            .create_index(
                Index::create()
                    .name("invitations_by_link")
                    .table(Invitations::Table)
                    .col(Invitations::InviteLinkId)
                    .to_owned(),
            )
            .await?;
        let meet_columns = [
            checked(
                integer_null(Meets::MinimumGoing).to_owned(),
                "minimum_going IS NULL OR (minimum_going >= 2 AND minimum_going <= 10000)",
            ),
            checked(
                timestamp_with_time_zone_null(Meets::DecideBy).to_owned(),
                "(decide_by IS NULL) = (minimum_going IS NULL)",
            ),
            timestamp_with_time_zone_null(Meets::ConfirmedAt).to_owned(),
        ];
        for column in meet_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Meets::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ScheduledJobs::Table)
                    .col(uuid(ScheduledJobs::Id).primary_key())
                    .col(string_len(ScheduledJobs::Kind, 32))
                    .col(uuid(ScheduledJobs::SubjectId))
                    .col(timestamp_with_time_zone(ScheduledJobs::DueAt))
                    .col(timestamp_with_time_zone_null(ScheduledJobs::ClaimedUntil))
                    .col(integer(ScheduledJobs::Attempts).default(0))
                    .col(timestamp_with_time_zone(ScheduledJobs::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scheduled_jobs_one_per_subject")
                    .table(ScheduledJobs::Table)
                    .col(ScheduledJobs::Kind)
                    .col(ScheduledJobs::SubjectId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("scheduled_jobs_due")
                    .table(ScheduledJobs::Table)
                    .col(ScheduledJobs::DueAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ScheduledJobs::Table).to_owned())
            .await?;
        for column in [Meets::ConfirmedAt, Meets::DecideBy, Meets::MinimumGoing] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Meets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("invitations_by_link")
                    .table(Invitations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Invitations::Table)
                    .drop_column(Invitations::InviteLinkId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(InviteLinkOpens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(InviteLinks::Table).to_owned())
            .await
    }
}
