//! Every migration runs up and down, on SQLite and on PostgreSQL.

mod common;

use common::TestDatabase;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};

async fn tables(db: &sea_orm::DatabaseConnection) -> usize {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'seaql_migrations'"
        }
        _ => {
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'"
        }
    };
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() as usize
}

/// The data model's tables, and on SQLite the two FTS5 search tables
/// (meets, users), each with its four shadow tables.
fn expected_tables(db: &sea_orm::DatabaseConnection) -> usize {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => 18,
        _ => 18 + 2 * 5,
    }
}

async fn up_down_up(db: TestDatabase) {
    let connection = api::db::connect(&db.url).await.unwrap();
    Migrator::up(&connection, None).await.unwrap();
    assert_eq!(tables(&connection).await, expected_tables(&connection));
    Migrator::down(&connection, None).await.unwrap();
    assert_eq!(tables(&connection).await, 0);
    Migrator::up(&connection, None).await.unwrap();
    assert_eq!(tables(&connection).await, expected_tables(&connection));
}

#[tokio::test]
async fn migrations_run_up_and_down_on_sqlite() {
    up_down_up(TestDatabase::sqlite().await).await;
}

#[tokio::test]
async fn migrations_run_up_and_down_on_postgres() {
    if let Some(db) = TestDatabase::postgres("migrations_run_up_and_down").await {
        up_down_up(db).await;
    }
}

/// Two server processes starting at once on a fresh PostgreSQL database
/// both migrate it without tripping over each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_migrate_in_turn() {
    let Some(db) = TestDatabase::postgres("processes_starting_together").await else {
        return;
    };
    let first = api::db::connect(&db.url).await.unwrap();
    let second = api::db::connect(&db.url).await.unwrap();
    let (a, b) = tokio::join!(api::db::migrate(&first), api::db::migrate(&second));
    a.unwrap();
    b.unwrap();
    assert_eq!(tables(&first).await, expected_tables(&first));
}
