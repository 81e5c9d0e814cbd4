//! Lists that cost the same on day 1,000 as on day 1 (issue 12): each list's
//! index serves its condition and its keyset order together, so a page reads
//! about a page of rows however much history lies behind it.
//!
//! - Full-text search of meets: on PostgreSQL a generated `tsvector` (config
//!   `simple`, ASCII punctuation turned into spaces so words split the same
//!   way as in Rust and SQLite) with a GIN index; on SQLite a contentless
//!   FTS5 table keyed by start day, kept in step by triggers, with prefix
//!   indexes.
//! - Search of users by a part of handle, name or e-mail: trigrams
//!   (`pg_trgm` on PostgreSQL, FTS5's trigram tokenizer on SQLite).
//! - Near: two grid cells computed by the database from the coordinates
//!   (0.1° and 1°, NULL without coordinates), each indexed with the start
//!   time, replacing the latitude/longitude index a radius search walked
//!   history with.
//! - Keyset orders end in `id`, so an index delivers the whole order: meets by
//!   region, by host; stories of a meet, by author; invitations of an invitee,
//!   of a meet; users newest first; the guest list by its rank (a generated
//!   column). The feed's indexes on meets also hold the end, to pass over
//!   ended meets.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, Copy, DeriveIden)]
enum Meets {
    Table,
    Id,
    HostId,
    RegionKey,
    StartsAt,
    EffectiveEndAt,
    Latitude,
    Longitude,
    CellFine,
    CellCoarse,
}

#[derive(Clone, Copy, DeriveIden)]
enum Stories {
    Table,
    Id,
    MeetId,
    AuthorId,
    PublishedAt,
}

#[derive(Clone, Copy, DeriveIden)]
enum Invitations {
    Table,
    Id,
    MeetId,
    InviteeId,
    CreatedAt,
}

#[derive(Clone, Copy, DeriveIden)]
enum Attendances {
    Table,
    Id,
    MeetId,
    GuestRank,
    RespondedAt,
}

#[derive(Clone, Copy, DeriveIden)]
enum Users {
    Table,
    Id,
    CreatedAt,
}

/// An index and the shape it had before this step (`None`: it is new).
struct Reshaped {
    name: &'static str,
    table: DynIden,
    after: Vec<DynIden>,
    before: Option<Vec<DynIden>>,
}

fn cols<const N: usize>(columns: [impl IntoIden; N]) -> Vec<DynIden> {
    columns.into_iter().map(IntoIden::into_iden).collect()
}

fn reshaped() -> Vec<Reshaped> {
    vec![
        // The feed reads a week back from now: the meets of that week that
        // have ended are passed over in the index, without reading them.
        // The feed's other indexes hold the end too, for the same reason,
        // and so that PostgreSQL's planner (which takes most of that week
        // for ended) does not prefer walking this one for their filters.
        Reshaped {
            name: "meets_starts",
            table: Meets::Table.into_iden(),
            after: cols([Meets::StartsAt, Meets::Id, Meets::EffectiveEndAt]),
            before: Some(cols([Meets::StartsAt, Meets::Id])),
        },
        Reshaped {
            name: "meets_region",
            table: Meets::Table.into_iden(),
            after: cols([
                Meets::RegionKey,
                Meets::StartsAt,
                Meets::Id,
                Meets::EffectiveEndAt,
            ]),
            before: Some(cols([Meets::RegionKey, Meets::StartsAt])),
        },
        Reshaped {
            name: "meets_host",
            table: Meets::Table.into_iden(),
            after: cols([
                Meets::HostId,
                Meets::StartsAt,
                Meets::Id,
                Meets::EffectiveEndAt,
            ]),
            before: Some(cols([Meets::HostId, Meets::StartsAt])),
        },
        Reshaped {
            name: "meets_cell_fine",
            table: Meets::Table.into_iden(),
            after: cols([
                Meets::CellFine,
                Meets::StartsAt,
                Meets::Id,
                Meets::EffectiveEndAt,
            ]),
            before: None,
        },
        Reshaped {
            name: "meets_cell_coarse",
            table: Meets::Table.into_iden(),
            after: cols([
                Meets::CellCoarse,
                Meets::StartsAt,
                Meets::Id,
                Meets::EffectiveEndAt,
            ]),
            before: None,
        },
        Reshaped {
            name: "stories_meet",
            table: Stories::Table.into_iden(),
            after: cols([Stories::MeetId, Stories::PublishedAt, Stories::Id]),
            before: Some(cols([Stories::MeetId, Stories::PublishedAt])),
        },
        Reshaped {
            name: "stories_author",
            table: Stories::Table.into_iden(),
            after: cols([Stories::AuthorId, Stories::PublishedAt, Stories::Id]),
            before: Some(cols([Stories::AuthorId, Stories::PublishedAt])),
        },
        Reshaped {
            name: "invitations_invitee",
            table: Invitations::Table.into_iden(),
            after: cols([
                Invitations::InviteeId,
                Invitations::CreatedAt,
                Invitations::Id,
            ]),
            before: Some(cols([Invitations::InviteeId, Invitations::CreatedAt])),
        },
        Reshaped {
            name: "invitations_meet_created",
            table: Invitations::Table.into_iden(),
            after: cols([Invitations::MeetId, Invitations::CreatedAt, Invitations::Id]),
            before: None,
        },
        // What the invitee's list asks of each row: any other invitation of
        // the same member to the same meet (the unique index of those by
        // handle is partial, so it cannot answer that).
        Reshaped {
            name: "invitations_meet_invitee",
            table: Invitations::Table.into_iden(),
            after: cols([Invitations::MeetId, Invitations::InviteeId]),
            before: None,
        },
        Reshaped {
            name: "attendances_guest_list",
            table: Attendances::Table.into_iden(),
            after: cols([
                Attendances::MeetId,
                Attendances::GuestRank,
                Attendances::RespondedAt,
                Attendances::Id,
            ]),
            before: None,
        },
        Reshaped {
            name: "users_created",
            table: Users::Table.into_iden(),
            after: cols([Users::CreatedAt, Users::Id]),
            before: None,
        },
    ]
}

fn create_index(name: &str, table: &DynIden, columns: &[DynIden]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table.clone());
    for column in columns {
        index.col(column.clone());
    }
    index.to_owned()
}

fn drop_index(name: &str, table: &DynIden) -> IndexDropStatement {
    Index::drop().name(name).table(table.clone()).to_owned()
}

/// The latitude/longitude index the grid cells replace.
fn location_index() -> IndexCreateStatement {
    Index::create()
        .name("meets_location")
        .table(Meets::Table)
        .col(Meets::Latitude)
        .col(Meets::Longitude)
        .to_owned()
}

/// Prefix indexes of meets_fts, one per length up to the longest search
/// word (`validate::SEARCH_WORD_CHARS`): a search word is then one index
/// entry, seeked to the start range, rather than a merge of the entries of
/// every word it begins (which costs what history holds of them).
const MEETS_FTS_PREFIXES: &str = "prefix='1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16'";

/// The guest list's rank, GOING first (`meets::attendance` writes it in Rust
/// too, for the key of a row already loaded): a column, generated by the
/// database, so that both databases seek the index on (meet, rank, answer
/// time, id) to a cursor, which neither does through an expression.
const GUEST_RANK: &str = "CASE WHEN status = 'GOING' THEN 0 ELSE 1 END";

/// ASCII punctuation, each turned into a space before PostgreSQL's parser
/// sees the text: otherwise it keeps e-mails, hosts, paths and hyphenated
/// words whole, where Rust and SQLite split them into words.
const PUNCTUATION: &str = r##"!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~"##;

/// A grid cell of `per_degree` bands a degree: latitude band × `stride` +
/// longitude band (wrapped, so 180° and -180° share one). The same
/// arithmetic as `meets::rules::Grid`; SQLite's CAST truncates, which is
/// floor for the non-negative values here (it has no floor()).
fn cell_sql(backend: DbBackend, per_degree: u32, stride: u32) -> String {
    let bands = 360 * per_degree;
    match backend {
        DbBackend::Postgres => format!(
            "(floor((latitude + 90) * {per_degree})::integer * {stride} \
             + floor((longitude + 180) * {per_degree})::integer % {bands})"
        ),
        _ => format!(
            "(CAST((latitude + 90) * {per_degree} AS INTEGER) * {stride} \
             + CAST((longitude + 180) * {per_degree} AS INTEGER) % {bands})"
        ),
    }
}

/// The fine (0.1°, about 11 km) and coarse (1°) cells.
fn cells(backend: DbBackend) -> [(&'static str, String); 2] {
    [
        ("cell_fine", cell_sql(backend, 10, 10_000)),
        ("cell_coarse", cell_sql(backend, 1, 1_000)),
    ]
}

async fn up_postgres(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let spaces = " ".repeat(PUNCTUATION.replace("''", "'").len());
    db.execute_unprepared(&format!(
        "ALTER TABLE meets ADD COLUMN search_vector tsvector GENERATED ALWAYS AS \
         (to_tsvector('simple', translate(title || ' ' || coalesce(description, '') || ' ' || venue_name, \
         '{PUNCTUATION}', '{spaces}'))) STORED"
    ))
    .await?;
    db.execute_unprepared("CREATE INDEX meets_search ON meets USING gin (search_vector)")
        .await?;
    for (column, sql) in cells(DbBackend::Postgres) {
        db.execute_unprepared(&format!(
            "ALTER TABLE meets ADD COLUMN {column} integer GENERATED ALWAYS AS ({sql}) STORED"
        ))
        .await?;
    }
    db.execute_unprepared(&format!(
        "ALTER TABLE attendances ADD COLUMN guest_rank integer GENERATED ALWAYS AS ({GUEST_RANK}) STORED"
    ))
    .await?;
    // Trusted since PostgreSQL 13: the database's owner may create it.
    db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        .await?;
    db.execute_unprepared(&format!(
        "CREATE INDEX users_search ON users USING gin (({}) gin_trgm_ops)",
        USERS_SEARCHED_POSTGRES
    ))
    .await?;
    Ok(())
}

/// What a user search compares on PostgreSQL, written exactly as
/// `admin::service` does, so the trigram index serves it: the three fields
/// lower-case, apart by a control character no search may contain.
const USERS_SEARCHED_POSTGRES: &str = "handle || chr(1) || lower(display_name) || chr(1) || email";

async fn down_postgres(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared("DROP INDEX users_search").await?;
    // The extension stays: other schemas in the database may use it.
    db.execute_unprepared(
        "ALTER TABLE meets DROP COLUMN search_vector, DROP COLUMN cell_fine, DROP COLUMN cell_coarse",
    )
    .await?;
    db.execute_unprepared("ALTER TABLE attendances DROP COLUMN guest_rank")
        .await?;
    Ok(())
}

/// The key of a meet in `meets_fts`: its start day (days since 1970) above
/// its rowid. FTS5 keeps matches in key order and seeks a key range, so a
/// search of upcoming meets reads upcoming matches only, where keyed by rowid
/// it would list every match in history. `meets::search` computes the same
/// day bounds. (VACUUM keeps the rowids of a table with indexes, as meets has.)
fn meet_key(row: &str) -> String {
    format!("unixepoch({row}.starts_at) / 86400 * 1099511627776 + {row}.rowid")
}

const MEET_SEARCHED: &str = "title, description, venue_name";

fn meets_fts_sqlite() -> Vec<String> {
    let insert = format!(
        "INSERT INTO meets_fts(rowid, {MEET_SEARCHED}) \
         VALUES ({}, new.title, new.description, new.venue_name);",
        meet_key("new")
    );
    let delete = format!("DELETE FROM meets_fts WHERE rowid = {};", meet_key("old"));
    vec![
        // Contentless, since the key is no column of meets; diacritics
        // kept, as PostgreSQL's `simple` configuration keeps them.
        format!(
            "CREATE VIRTUAL TABLE meets_fts USING fts5({MEET_SEARCHED}, content='', \
             contentless_delete=1, tokenize='unicode61 remove_diacritics 0', {MEETS_FTS_PREFIXES})"
        ),
        format!("CREATE TRIGGER meets_fts_insert AFTER INSERT ON meets BEGIN {insert} END"),
        format!("CREATE TRIGGER meets_fts_delete AFTER DELETE ON meets BEGIN {delete} END"),
        // Only when a searched column or the start is written: answers
        // update meets' counts far more often than anyone edits a title.
        format!(
            "CREATE TRIGGER meets_fts_update AFTER UPDATE OF {MEET_SEARCHED}, starts_at ON meets \
             BEGIN {delete} {insert} END"
        ),
        format!(
            "INSERT INTO meets_fts(rowid, {MEET_SEARCHED}) SELECT {}, {MEET_SEARCHED} FROM meets",
            meet_key("meets")
        ),
    ]
}

/// An external-content trigram table over the searched fields of users, the
/// triggers that keep it in step, and its rows filled from the users there.
fn users_fts_sqlite() -> Vec<String> {
    const SEARCHED: &str = "handle, display_name, email";
    let insert = "INSERT INTO users_fts(rowid, handle, display_name, email) \
         VALUES (new.rowid, new.handle, new.display_name, new.email);";
    let delete = "INSERT INTO users_fts(users_fts, rowid, handle, display_name, email) \
         VALUES ('delete', old.rowid, old.handle, old.display_name, old.email);";
    vec![
        format!(
            "CREATE VIRTUAL TABLE users_fts USING fts5({SEARCHED}, content='users', \
             content_rowid='rowid', tokenize='trigram')"
        ),
        format!("CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN {insert} END"),
        format!("CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN {delete} END"),
        format!(
            "CREATE TRIGGER users_fts_update AFTER UPDATE OF {SEARCHED} ON users \
             BEGIN {delete} {insert} END"
        ),
        "INSERT INTO users_fts(users_fts) VALUES ('rebuild')".to_owned(),
    ]
}

async fn up_sqlite(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let mut statements = meets_fts_sqlite();
    statements.extend(users_fts_sqlite());
    // SQLite adds only virtual generated columns to a table; an index
    // stores their values all the same.
    for (column, sql) in cells(DbBackend::Sqlite) {
        statements.push(format!(
            "ALTER TABLE meets ADD COLUMN {column} INTEGER GENERATED ALWAYS AS ({sql}) VIRTUAL"
        ));
    }
    statements.push(format!(
        "ALTER TABLE attendances ADD COLUMN guest_rank INTEGER GENERATED ALWAYS AS ({GUEST_RANK}) VIRTUAL"
    ));
    for statement in statements {
        db.execute_unprepared(&statement).await?;
    }
    Ok(())
}

async fn down_sqlite(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for fts in ["meets_fts", "users_fts"] {
        for trigger in ["insert", "delete", "update"] {
            db.execute_unprepared(&format!("DROP TRIGGER {fts}_{trigger}"))
                .await?;
        }
        db.execute_unprepared(&format!("DROP TABLE {fts}")).await?;
    }
    for (table, column) in [
        ("meets", "cell_fine"),
        ("meets", "cell_coarse"),
        ("attendances", "guest_rank"),
    ] {
        db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN {column}"))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too: all or nothing, and on one
    /// connection (another pooled connection, its schema read before an
    /// index was dropped, would refuse to create it again as existing).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Postgres => up_postgres(manager).await?,
            _ => up_sqlite(manager).await?,
        }
        manager
            .drop_index(drop_index("meets_location", &Meets::Table.into_iden()))
            .await?;
        for index in reshaped() {
            if index.before.is_some() {
                manager
                    .drop_index(drop_index(index.name, &index.table))
                    .await?;
            }
            manager
                .create_index(create_index(index.name, &index.table, &index.after))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in reshaped() {
            manager
                .drop_index(drop_index(index.name, &index.table))
                .await?;
            if let Some(before) = &index.before {
                manager
                    .create_index(create_index(index.name, &index.table, before))
                    .await?;
            }
        }
        manager.create_index(location_index()).await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => down_postgres(manager).await,
            _ => down_sqlite(manager).await,
        }
    }
}
