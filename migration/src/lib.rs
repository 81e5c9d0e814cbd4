//! Schema migrations, one file per step, each with `up` and `down`, written with
//! sea-query so the same step runs on SQLite and PostgreSQL.

pub use sea_orm_migration::{migrator::MigrationStatus, prelude::*};

mod m20261125_000001_initial;
mod m20261126_000001_notice_dead_state;
mod m20261126_000002_address_invitations_apart;
mod m20261126_000003_invitation_limits;
mod m20261126_000004_rate_limits;
mod m20261126_000005_discovery_at_scale;
mod m20261126_000006_meet_activity_log;
mod m20261126_000007_arrivals;
mod m20261126_000008_links_and_go_no_go;
mod m20261126_000009_notifications;
mod m20261126_000010_push;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_initial::Migration),
            Box::new(m20261126_000001_notice_dead_state::Migration),
            Box::new(m20261126_000002_address_invitations_apart::Migration),
            Box::new(m20261126_000003_invitation_limits::Migration),
            Box::new(m20261126_000004_rate_limits::Migration),
            Box::new(m20261126_000005_discovery_at_scale::Migration),
            Box::new(m20261126_000006_meet_activity_log::Migration),
            Box::new(m20261126_000007_arrivals::Migration),
            Box::new(m20261126_000008_links_and_go_no_go::Migration),
            Box::new(m20261126_000009_notifications::Migration),
            Box::new(m20261126_000010_push::Migration),
        ]
    }
}
