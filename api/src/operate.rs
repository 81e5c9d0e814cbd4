//! What operators run besides `serve`: `migrate status|up|down`, which say
//! what they did, and `check`, which a deploy runs before switching traffic.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};
use migration::{MigrationStatus, Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};

use crate::{config::Config, db, notices::transport::Transport};

/// Prints each migration and whether it is applied.
pub async fn migration_status(db: &DatabaseConnection) -> anyhow::Result<()> {
    let migrations = Migrator::get_migration_with_status(db).await?;
    let pending = migrations
        .iter()
        .filter(|m| m.status() == MigrationStatus::Pending)
        .count();
    for migration in &migrations {
        println!(
            "{:<8} {}",
            migration.status().to_string().to_lowercase(),
            migration.name()
        );
    }
    println!("{} applied, {pending} pending", migrations.len() - pending);
    Ok(())
}

/// Applies every pending migration, naming each.
pub async fn migrate_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    let pending = Migrator::get_pending_migrations(db).await?;
    if pending.is_empty() {
        println!("the database is up to date; nothing to apply");
        return Ok(());
    }
    for migration in &pending {
        Migrator::up(db, Some(1))
            .await
            .with_context(|| format!("applying {}", migration.name()))?;
        println!("applied {}", migration.name());
    }
    Ok(())
}

/// Rolls back the last `steps` migrations, naming each. On a database that
/// holds accounts or meets it asks first on a terminal, and otherwise
/// refuses unless `yes`: rolling back can drop tables and their rows.
pub async fn migrate_down(db: &DatabaseConnection, steps: u32, yes: bool) -> anyhow::Result<()> {
    let applied = Migrator::get_applied_migrations(db).await?;
    let rolled_back: Vec<&str> = applied
        .iter()
        .rev()
        .take(steps as usize)
        .map(|m| m.name())
        .collect();
    if rolled_back.is_empty() {
        println!("no migration is applied; nothing to roll back");
        return Ok(());
    }
    let (users, meets) = held_data(db).await;
    if users + meets > 0 && !yes {
        let what = format!(
            "rolling back {} would lose data: the database holds {users} users and {meets} meets",
            rolled_back.join(", ")
        );
        if !std::io::stdin().is_terminal() {
            bail!("refusing: {what}; pass --yes to roll back anyway");
        }
        print!("{what}. Type \"yes\" to roll back: ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("not rolled back");
        }
    }
    for name in rolled_back {
        Migrator::down(db, Some(1))
            .await
            .with_context(|| format!("rolling back {name}"))?;
        println!("rolled back {name}");
    }
    Ok(())
}

/// How many users and meets the database holds; zero where a table is
/// missing (an unmigrated or half-rolled-back database).
async fn held_data(db: &DatabaseConnection) -> (u64, u64) {
    let users = entity::users::Entity::find().count(db).await.unwrap_or(0);
    let meets = entity::meets::Entity::find().count(db).await.unwrap_or(0);
    (users, meets)
}

/// `tweetmeet check`: the configuration, the database (reachable, migrated)
/// and the mail server (reachable), each on a line; an error when any fails.
pub async fn check(config: &Config) -> anyhow::Result<()> {
    let mut failures = 0;
    let mut report = |what: &str, outcome: anyhow::Result<String>| match outcome {
        Ok(found) => println!("ok    {what}: {found}"),
        Err(err) => {
            failures += 1;
            println!("FAIL  {what}: {err:#}");
        }
    };
    report(
        "configuration",
        Ok(format!(
            "{} environment, listening on {}",
            if config.is_production() {
                "production"
            } else {
                "development"
            },
            config.bind
        )),
    );
    match db::connect(&config.database_url).await {
        Ok(connection) => {
            report("database", Ok(db::redact(&config.database_url)));
            report("migrations", migration_state(&connection).await);
        }
        Err(err) => report("database", Err(err)),
    }
    let mail = async {
        Transport::from_config(config.smtp_url.as_deref(), config.mail_dir.clone())?
            .check()
            .await
    };
    report("mail", mail.await);
    if failures > 0 {
        bail!("{failures} check(s) failed");
    }
    Ok(())
}

async fn migration_state(db: &DatabaseConnection) -> anyhow::Result<String> {
    let pending = Migrator::get_pending_migrations(db).await?;
    let applied = Migrator::get_applied_migrations(db).await?;
    match pending.len() {
        0 => Ok(format!("all {} applied", applied.len())),
        n => Ok(format!(
            "{} applied, {n} pending (applied when `serve` starts, or by `migrate up`): {}",
            applied.len(),
            pending
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
