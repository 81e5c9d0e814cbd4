//! The whole data model: users, refresh tokens, meets, attendances,
//! invitations, stories, the e-mail outbox and the admin audit log.
//! Invariants the database can hold are CHECKs and unique indexes here, so a
//! bug in Rust cannot store what the product forbids.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Handle,
    DisplayName,
    PasswordHash,
    Role,
    Headline,
    Bio,
    AvatarUrl,
    Region,
    EmailNotices,
    SuspendedAt,
    SuspensionReason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    UserId,
    FamilyId,
    TokenHash,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Meets {
    Table,
    Id,
    HostId,
    Title,
    Description,
    VenueName,
    Address,
    Latitude,
    Longitude,
    Region,
    RegionKey,
    TimeZone,
    StartsAt,
    EndsAt,
    EffectiveEndAt,
    Capacity,
    GoingCount,
    CheckedInCount,
    Visibility,
    Status,
    CancellationReason,
    CancelledAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Attendances {
    Table,
    Id,
    MeetId,
    UserId,
    Status,
    RespondedAt,
    CheckedInAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    Id,
    MeetId,
    InviterId,
    InviteeId,
    Email,
    Message,
    Status,
    ClaimTokenHash,
    ClaimExpiresAt,
    CreatedAt,
    RespondedAt,
}

#[derive(DeriveIden)]
enum Stories {
    Table,
    Id,
    AuthorId,
    MeetId,
    Title,
    Body,
    PublishedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Notices {
    Table,
    Id,
    Kind,
    Recipient,
    Subject,
    BodyText,
    BodyHtml,
    Attempts,
    NextAttemptAt,
    SentAt,
    LastError,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AdminAudit {
    Table,
    Id,
    ActorId,
    Action,
    TargetUserId,
    Detail,
    CreatedAt,
}

fn check(name: &str, sql: &str) -> (String, Expr) {
    (name.to_owned(), Expr::cust(sql.to_owned()))
}

fn fk(
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(on_delete)
        .to_owned()
}

fn index(name: &str, table: impl IntoIden) -> IndexCreateStatement {
    Index::create().name(name).table(table).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(pk_uuid(Users::Id))
                    .col(string_uniq(Users::Email))
                    .col(string_uniq(Users::Handle))
                    .col(string(Users::DisplayName))
                    .col(string(Users::PasswordHash))
                    .col(string_len(Users::Role, 16).default("MEMBER"))
                    .col(string_null(Users::Headline))
                    .col(text_null(Users::Bio))
                    .col(string_null(Users::AvatarUrl))
                    .col(string_null(Users::Region))
                    .col(boolean(Users::EmailNotices).default(true))
                    .col(timestamp_with_time_zone_null(Users::SuspendedAt))
                    .col(string_null(Users::SuspensionReason))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .check(check("users_role", "role IN ('MEMBER', 'ADMIN')"))
                    .check(check("users_handle_lower", "handle = lower(handle)"))
                    .check(check("users_email_lower", "email = lower(email)"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(pk_uuid(RefreshTokens::Id))
                    .col(uuid(RefreshTokens::UserId))
                    .col(uuid(RefreshTokens::FamilyId))
                    .col(string_uniq(RefreshTokens::TokenHash))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone_null(RefreshTokens::RevokedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .foreign_key(&mut fk(
                        (RefreshTokens::Table, RefreshTokens::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("refresh_tokens_user", RefreshTokens::Table)
                    .col(RefreshTokens::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("refresh_tokens_family", RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Meets::Table)
                    .col(pk_uuid(Meets::Id))
                    .col(uuid(Meets::HostId))
                    .col(string(Meets::Title))
                    .col(text_null(Meets::Description))
                    .col(string(Meets::VenueName))
                    .col(string_null(Meets::Address))
                    .col(double_null(Meets::Latitude))
                    .col(double_null(Meets::Longitude))
                    .col(string_null(Meets::Region))
                    .col(string_null(Meets::RegionKey))
                    .col(string_null(Meets::TimeZone))
                    .col(timestamp_with_time_zone(Meets::StartsAt))
                    .col(timestamp_with_time_zone_null(Meets::EndsAt))
                    .col(timestamp_with_time_zone(Meets::EffectiveEndAt))
                    .col(integer_null(Meets::Capacity))
                    .col(integer(Meets::GoingCount).default(0))
                    .col(integer(Meets::CheckedInCount).default(0))
                    .col(string_len(Meets::Visibility, 16))
                    .col(string_len(Meets::Status, 16))
                    .col(string_null(Meets::CancellationReason))
                    .col(timestamp_with_time_zone_null(Meets::CancelledAt))
                    .col(timestamp_with_time_zone(Meets::CreatedAt))
                    .col(timestamp_with_time_zone(Meets::UpdatedAt))
                    .foreign_key(&mut fk(
                        (Meets::Table, Meets::HostId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .check(check(
                        "meets_capacity",
                        "capacity IS NULL OR (capacity >= 1 AND capacity <= 10000)",
                    ))
                    .check(check(
                        "meets_going_within_capacity",
                        "going_count >= 0 AND (capacity IS NULL OR going_count <= capacity)",
                    ))
                    .check(check("meets_checked_in", "checked_in_count >= 0"))
                    .check(check(
                        "meets_latitude",
                        "latitude IS NULL OR (latitude >= -90 AND latitude <= 90)",
                    ))
                    .check(check(
                        "meets_longitude",
                        "longitude IS NULL OR (longitude >= -180 AND longitude <= 180)",
                    ))
                    .check(check(
                        "meets_coordinates_together",
                        "(latitude IS NULL) = (longitude IS NULL)",
                    ))
                    .check(check(
                        "meets_ends_after_start",
                        "ends_at IS NULL OR ends_at > starts_at",
                    ))
                    .check(check(
                        "meets_visibility",
                        "visibility IN ('PUBLIC', 'INVITE_ONLY')",
                    ))
                    .check(check(
                        "meets_status",
                        "status IN ('SCHEDULED', 'CANCELLED')",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("meets_starts", Meets::Table)
                    .col(Meets::StartsAt)
                    .col(Meets::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("meets_region", Meets::Table)
                    .col(Meets::RegionKey)
                    .col(Meets::StartsAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("meets_host", Meets::Table)
                    .col(Meets::HostId)
                    .col(Meets::StartsAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("meets_location", Meets::Table)
                    .col(Meets::Latitude)
                    .col(Meets::Longitude)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Attendances::Table)
                    .col(pk_uuid(Attendances::Id))
                    .col(uuid(Attendances::MeetId))
                    .col(uuid(Attendances::UserId))
                    .col(string_len(Attendances::Status, 16))
                    .col(timestamp_with_time_zone(Attendances::RespondedAt))
                    .col(timestamp_with_time_zone_null(Attendances::CheckedInAt))
                    .foreign_key(&mut fk(
                        (Attendances::Table, Attendances::MeetId),
                        (Meets::Table, Meets::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        (Attendances::Table, Attendances::UserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .check(check(
                        "attendances_status",
                        "status IN ('GOING', 'MAYBE', 'NOT_GOING', 'WAITLISTED')",
                    ))
                    .check(check(
                        "attendances_check_in_going",
                        "checked_in_at IS NULL OR status = 'GOING'",
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("attendances_one_per_user", Attendances::Table)
                    .col(Attendances::MeetId)
                    .col(Attendances::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("attendances_meet_status", Attendances::Table)
                    .col(Attendances::MeetId)
                    .col(Attendances::Status)
                    .col(Attendances::RespondedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("attendances_user", Attendances::Table)
                    .col(Attendances::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(pk_uuid(Invitations::Id))
                    .col(uuid(Invitations::MeetId))
                    .col(uuid(Invitations::InviterId))
                    .col(uuid_null(Invitations::InviteeId))
                    .col(string_null(Invitations::Email))
                    .col(text_null(Invitations::Message))
                    .col(string_len(Invitations::Status, 16))
                    .col(string_null(Invitations::ClaimTokenHash).unique_key())
                    .col(timestamp_with_time_zone_null(Invitations::ClaimExpiresAt))
                    .col(timestamp_with_time_zone(Invitations::CreatedAt))
                    .col(timestamp_with_time_zone_null(Invitations::RespondedAt))
                    .foreign_key(&mut fk(
                        (Invitations::Table, Invitations::MeetId),
                        (Meets::Table, Meets::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        (Invitations::Table, Invitations::InviterId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        (Invitations::Table, Invitations::InviteeId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .check(check(
                        "invitations_status",
                        "status IN ('PENDING', 'ACCEPTED', 'DECLINED', 'REVOKED')",
                    ))
                    .check(check(
                        "invitations_addressed",
                        "invitee_id IS NOT NULL OR email IS NOT NULL",
                    ))
                    .to_owned(),
            )
            .await?;
        // NULLs are distinct in unique indexes on both databases, so these hold
        // "one invitation per member and meet" and "per address and meet".
        manager
            .create_index(
                index("invitations_one_per_invitee", Invitations::Table)
                    .col(Invitations::MeetId)
                    .col(Invitations::InviteeId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("invitations_one_per_email", Invitations::Table)
                    .col(Invitations::MeetId)
                    .col(Invitations::Email)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("invitations_invitee", Invitations::Table)
                    .col(Invitations::InviteeId)
                    .col(Invitations::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("invitations_email", Invitations::Table)
                    .col(Invitations::Email)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Stories::Table)
                    .col(pk_uuid(Stories::Id))
                    .col(uuid(Stories::AuthorId))
                    .col(uuid_null(Stories::MeetId))
                    .col(string(Stories::Title))
                    .col(text(Stories::Body))
                    .col(timestamp_with_time_zone(Stories::PublishedAt))
                    .col(timestamp_with_time_zone(Stories::UpdatedAt))
                    .foreign_key(&mut fk(
                        (Stories::Table, Stories::AuthorId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut fk(
                        (Stories::Table, Stories::MeetId),
                        (Meets::Table, Meets::Id),
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("stories_published", Stories::Table)
                    .col(Stories::PublishedAt)
                    .col(Stories::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("stories_meet", Stories::Table)
                    .col(Stories::MeetId)
                    .col(Stories::PublishedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("stories_author", Stories::Table)
                    .col(Stories::AuthorId)
                    .col(Stories::PublishedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Notices::Table)
                    .col(pk_uuid(Notices::Id))
                    .col(string(Notices::Kind))
                    .col(string(Notices::Recipient))
                    .col(string(Notices::Subject))
                    .col(text(Notices::BodyText))
                    .col(text(Notices::BodyHtml))
                    .col(integer(Notices::Attempts).default(0))
                    .col(timestamp_with_time_zone(Notices::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(Notices::SentAt))
                    .col(text_null(Notices::LastError))
                    .col(timestamp_with_time_zone(Notices::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("notices_due", Notices::Table)
                    .col(Notices::SentAt)
                    .col(Notices::NextAttemptAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AdminAudit::Table)
                    .col(pk_uuid(AdminAudit::Id))
                    .col(uuid_null(AdminAudit::ActorId))
                    .col(string(AdminAudit::Action))
                    .col(uuid_null(AdminAudit::TargetUserId))
                    .col(text_null(AdminAudit::Detail))
                    .col(timestamp_with_time_zone(AdminAudit::CreatedAt))
                    .foreign_key(&mut fk(
                        (AdminAudit::Table, AdminAudit::ActorId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .foreign_key(&mut fk(
                        (AdminAudit::Table, AdminAudit::TargetUserId),
                        (Users::Table, Users::Id),
                        ForeignKeyAction::SetNull,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("admin_audit_created", AdminAudit::Table)
                    .col(AdminAudit::CreatedAt)
                    .col(AdminAudit::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents, so foreign keys never dangle.
        for table in [
            AdminAudit::Table.into_iden(),
            Notices::Table.into_iden(),
            Stories::Table.into_iden(),
            Invitations::Table.into_iden(),
            Attendances::Table.into_iden(),
            Meets::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
