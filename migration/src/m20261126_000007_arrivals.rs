//! Who shows up (issue 15): each attendance's arrival (on my way with an
//! ETA, here, left) and what its attendee would like from the night (an
//! introduction, who they hope to meet); each meet's live arrival counts and
//! who may see its guest list. Existing rows: check-ins become HERE, every
//! guest list stays PUBLIC as it was.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Attendances {
    Table,
    Arrival,
    EtaAt,
    LeftAt,
    IntroduceMe,
    HopingToMeet,
    CheckedInAt,
}

#[derive(DeriveIden)]
enum Meets {
    Table,
    AttendeeVisibility,
    HereCount,
    OnTheWayCount,
}

/// A column CHECK: SQLite can add those with the column (not table CHECKs),
/// and drops them with it.
fn checked(mut column: ColumnDef, sql: &str) -> ColumnDef {
    column.check(Expr::cust(sql.to_owned()));
    column
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        let attendance_columns = [
            checked(
                string_len(Attendances::Arrival, 16)
                    .default("NOT_YET")
                    .to_owned(),
                "arrival IN ('NOT_YET', 'ON_MY_WAY', 'HERE', 'LEFT') \
                 AND (arrival = 'NOT_YET' OR status = 'GOING')",
            ),
            timestamp_with_time_zone_null(Attendances::EtaAt).to_owned(),
            timestamp_with_time_zone_null(Attendances::LeftAt).to_owned(),
            boolean(Attendances::IntroduceMe).default(false).to_owned(),
            checked(
                string_null(Attendances::HopingToMeet).to_owned(),
                "hoping_to_meet IS NULL OR length(hoping_to_meet) <= 140",
            ),
        ];
        for column in attendance_columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(Attendances::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        let meet_columns = [
            checked(
                string_len(Meets::AttendeeVisibility, 16)
                    .default("PUBLIC")
                    .to_owned(),
                "attendee_visibility IN ('PUBLIC', 'ATTENDEES', 'ARRIVED', 'HOST')",
            ),
            checked(
                integer(Meets::HereCount).default(0).to_owned(),
                "here_count >= 0",
            ),
            checked(
                integer(Meets::OnTheWayCount).default(0).to_owned(),
                "on_the_way_count >= 0",
            ),
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
        // Who checked in before arrivals existed arrived; the count follows.
        manager
            .exec_stmt(
                Query::update()
                    .table(Attendances::Table)
                    .value(Attendances::Arrival, "HERE")
                    .and_where(Expr::col(Attendances::CheckedInAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE meets SET here_count = (SELECT COUNT(*) FROM attendances \
                 WHERE attendances.meet_id = meets.id AND arrival = 'HERE') \
                 WHERE checked_in_count > 0",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Meets::OnTheWayCount,
            Meets::HereCount,
            Meets::AttendeeVisibility,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Meets::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            Attendances::HopingToMeet,
            Attendances::IntroduceMe,
            Attendances::LeftAt,
            Attendances::EtaAt,
            Attendances::Arrival,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Attendances::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
