//! An invitation by address is a row of its own, even when the address is a
//! member's who also holds an invitation by handle: merging the two told the
//! inviter whose account an address is. "One invitation per member and meet"
//! becomes "one invitation by handle per member and meet" (rows with no
//! address); "one per address and meet" stays.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    Table,
    MeetId,
    InviteeId,
    Email,
}

const OLD: &str = "invitations_one_per_invitee";
const NEW: &str = "invitations_one_by_handle_per_member";

fn one_per_member(name: &str) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(Invitations::Table)
        .col(Invitations::MeetId)
        .col(Invitations::InviteeId)
        .unique()
        .to_owned()
}

fn drop(name: &str) -> IndexDropStatement {
    Index::drop()
        .name(name)
        .table(Invitations::Table)
        .to_owned()
}

// Each direction creates its index before dropping the other, so a step
// that fails leaves a constraint in place.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A partial unique index, on both databases.
        manager
            .create_index(
                one_per_member(NEW)
                    .and_where(Expr::col(Invitations::Email).is_null())
                    .to_owned(),
            )
            .await?;
        manager.drop_index(drop(OLD)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Fails while a member holds an invitation by handle and one by
        // address to the same meet: which to drop is not a migration's to
        // decide.
        manager.create_index(one_per_member(OLD)).await?;
        manager.drop_index(drop(NEW)).await
    }
}
