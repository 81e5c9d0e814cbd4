//! Every list that grows with the data is served by an index that holds its
//! condition and its order (issue 12), on SQLite and on PostgreSQL: with
//! twenty thousand meets and their answers, invitations, stories and users
//! loaded (PostgreSQL vacuumed and its statistics gathered; SQLite's planner
//! works without any, as a server's does), each list's statement, as the server sent it,
//! is planned as a range of the expected index and reads no table whole.
//! Plans, not times: they hold on any machine.

mod common;

use common::{Backend, TestServer};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

const MEMBERS: u32 = 20_000;
/// The hot meet's answers and invitations.
const HOT: u32 = 2_000;
const MEETS: u32 = 20_000;
/// Of MEETS, the first this many start in the coming weeks, one every 40
/// minutes; the rest started before now, one every 40 minutes back.
const UPCOMING: u32 = 1_000;

/// A UUID from the API as an SQL literal of the database's type.
fn uuid_sql(backend: Backend, id: &str) -> String {
    match backend {
        Backend::Postgres => format!("'{id}'::uuid"),
        Backend::Sqlite => format!("X'{}'", id.replace('-', "")),
    }
}

/// A fresh key.
fn new_id(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "gen_random_uuid()",
        Backend::Sqlite => "randomblob(16)",
    }
}

/// The instant `expr` minutes from now, as each database stores it.
fn minutes_from_now(backend: Backend, expr: &str) -> String {
    match backend {
        Backend::Postgres => format!("now() + ({expr}) * interval '1 minute'"),
        Backend::Sqlite => {
            format!("strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', ({expr}) || ' minutes')")
        }
    }
}

/// `select` (which names `n`) for each `n` in 1..=count.
fn numbered(backend: Backend, count: u32, select: &str) -> String {
    match backend {
        Backend::Postgres => format!("{select} FROM generate_series(1, {count}) AS s(n)"),
        Backend::Sqlite => format!(
            "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count}) \
             {select} FROM s"
        ),
    }
}

struct Fixture {
    host: String,
    admin: String,
    /// An upcoming meet of the host's with MEMBERS answers and invitations.
    hot_meet: String,
}

/// Rows written as a seed would, straight into the tables, the database
/// computing what it computes (search vectors or FTS5 rows, grid cells).
async fn load(server: &TestServer) -> (Fixture, DatabaseConnection) {
    let backend = server.db.backend;
    let (host, host_id) = server.register("host").await;
    let (admin, _) = server.admin("root").await;
    server.register("zebrakeeper").await;
    let hot_meet = server.meet(&host, json!({ "title": "Hot ticket" })).await;
    let db = sea_orm::Database::connect(&server.db.url)
        .await
        .expect("connect");
    let host_id = uuid_sql(backend, &host_id);
    let hot = uuid_sql(backend, &hot_meet);
    let id = new_id(backend);
    let member = |expr: &str| format!("(SELECT id FROM users WHERE handle = 'member' || ({expr}))");
    let at = |expr: &str| minutes_from_now(backend, expr);
    let start = format!("CASE WHEN n <= {UPCOMING} THEN n * 40 ELSE ({UPCOMING} - n) * 40 END");
    // A bulk meet's number, from its title, and members picked by it.
    let numbered_meet = "title LIKE '%meetup%'";
    let n = "CAST(replace(replace(replace(title, 'with zebrafish ', ''), 'Common meetup ', ''), \
             'Other meetup ', '') AS INTEGER)";
    let first = member(&format!("{n} % {MEMBERS} + 1"));
    let second = member(&format!("{n} * 7 % {MEMBERS} + 1"));
    let third = member(&format!("{n} * 13 % {MEMBERS} + 1"));
    let statements = [
        numbered(
            backend,
            MEMBERS,
            &format!(
                "INSERT INTO users (id, email, handle, display_name, password_hash, role, \
                 email_notices, created_at, updated_at) \
                 SELECT {id}, 'member' || n || '@example.com', 'member' || n, 'Member ' || n, \
                 'x', 'MEMBER', true, {created}, {created}",
                created = at("-n * 60"),
            ),
        ),
        // Half the meets are "common"; one in a thousand has a "zebrafish".
        // Seven in ten are spread over 20° by 20° (a few to a 0.1° cell),
        // two far away, one has no place; one in ten is in Hamilton.
        numbered(
            backend,
            MEETS,
            &format!(
                "INSERT INTO meets (id, host_id, title, description, venue_name, latitude, \
                 longitude, region, region_key, starts_at, effective_end_at, going_count, \
                 checked_in_count, visibility, status, created_at, updated_at) \
                 SELECT {id}, CASE WHEN n % 20 = 0 THEN {host_id} ELSE {author} END, \
                 CASE WHEN n % 2 = 0 THEN 'Common meetup ' ELSE 'Other meetup ' END \
                 || CASE WHEN n % 1000 = 7 THEN 'with zebrafish ' ELSE '' END || n, \
                 'Talks and drinks', 'Hall ' || (n % 50), \
                 CASE WHEN n % 10 < 7 THEN 35 + (n % 200) * 0.1 + (n % 7) * 0.01 \
                 WHEN n % 10 < 9 THEN (n % 170) - 85.0 END, \
                 CASE WHEN n % 10 < 7 THEN -90 + (n % 199) * 0.1 + (n % 5) * 0.01 \
                 WHEN n % 10 < 9 THEN (n % 350) - 175.0 END, \
                 CASE WHEN n % 10 = 7 THEN 'Hamilton' WHEN n % 10 < 7 THEN 'Ontario' END, \
                 CASE WHEN n % 10 = 7 THEN 'hamilton' WHEN n % 10 < 7 THEN 'ontario' END, \
                 {starts}, {ends}, 0, 0, \
                 CASE WHEN n % 11 = 0 THEN 'INVITE_ONLY' ELSE 'PUBLIC' END, \
                 CASE WHEN n % 33 = 0 THEN 'CANCELLED' ELSE 'SCHEDULED' END, {starts}, {starts}",
                author = member(&format!("n % {MEMBERS} + 1")),
                starts = at(&start),
                ends = at(&format!("{start} + 240")),
            ),
        ),
        // Two members answer each meet; HOT members the hot one; the host
        // one meet in five hundred.
        format!(
            "INSERT INTO attendances (id, meet_id, user_id, status, responded_at) \
             SELECT {id}, id, {first}, 'GOING', created_at FROM meets WHERE {numbered_meet}"
        ),
        format!(
            "INSERT INTO attendances (id, meet_id, user_id, status, responded_at) \
             SELECT {id}, id, {second}, 'MAYBE', created_at FROM meets WHERE {numbered_meet} \
             ON CONFLICT DO NOTHING"
        ),
        numbered(
            backend,
            HOT,
            &format!(
                "INSERT INTO attendances (id, meet_id, user_id, status, responded_at) \
                 SELECT {id}, {hot}, {who}, \
                 CASE WHEN n % 3 = 0 THEN 'MAYBE' ELSE 'GOING' END, {when}",
                who = member("n"),
                when = at("-n"),
            ),
        ),
        format!(
            "INSERT INTO attendances (id, meet_id, user_id, status, responded_at) \
             SELECT {id}, id, {host_id}, 'GOING', created_at FROM meets \
             WHERE {numbered_meet} AND {n} % 500 = 1"
        ),
        // A member invited to each even meet; the host to one in a hundred;
        // HOT members to the hot one.
        format!(
            "INSERT INTO invitations (id, meet_id, inviter_id, invitee_id, status, created_at) \
             SELECT {id}, id, host_id, {third}, 'PENDING', created_at FROM meets \
             WHERE {numbered_meet} AND {n} % 2 = 0"
        ),
        format!(
            "INSERT INTO invitations (id, meet_id, inviter_id, invitee_id, status, created_at) \
             SELECT {id}, id, host_id, {host_id}, 'PENDING', created_at FROM meets \
             WHERE {numbered_meet} AND {n} % 100 = 3 AND host_id <> {host_id}"
        ),
        numbered(
            backend,
            HOT,
            &format!(
                "INSERT INTO invitations (id, meet_id, inviter_id, invitee_id, status, created_at) \
                 SELECT {id}, {hot}, {host_id}, {who}, 'PENDING', {when}",
                who = member("n"),
                when = at("-n"),
            ),
        ),
        // Stories about one meet in ten, about the hot meet, the host's own.
        format!(
            "INSERT INTO stories (id, author_id, meet_id, title, body, published_at, updated_at) \
             SELECT {id}, host_id, id, 'Story', 'body', created_at, created_at FROM meets \
             WHERE {numbered_meet} AND {n} % 10 = 4"
        ),
        numbered(
            backend,
            HOT,
            &format!(
                "INSERT INTO stories (id, author_id, meet_id, title, body, published_at, updated_at) \
                 SELECT {id}, CASE WHEN n % 2 = 0 THEN {host_id} ELSE {who} END, \
                 CASE WHEN n % 2 = 1 THEN {hot} END, 'Story ' || n, 'body', {when}, {when}",
                who = member("n"),
                when = at("-n * 30"),
            ),
        ),
        numbered(
            backend,
            HOT,
            &format!(
                "INSERT INTO admin_audit (id, actor_id, action, target_user_id, detail, created_at) \
                 SELECT {id}, NULL, 'set_role', NULL, NULL, {when}",
                when = at("-n * 10"),
            ),
        ),
    ];
    for statement in statements {
        db.execute_unprepared(&statement)
            .await
            .unwrap_or_else(|e| panic!("{e}: {statement}"));
    }
    if backend == Backend::Postgres {
        // VACUUM too: it moves GIN indexes' pending entries into the index
        // proper, as autovacuum does on a server.
        db.execute_unprepared("VACUUM ANALYZE")
            .await
            .expect("vacuum analyze");
    }
    (
        Fixture {
            host,
            admin,
            hot_meet,
        },
        db,
    )
}

/// The plan of `sql` as text, one line per step.
async fn plan(db: &DatabaseConnection, sql: &str) -> String {
    let backend = db.get_database_backend();
    let explain = match backend {
        sea_orm::DbBackend::Postgres => format!("EXPLAIN {sql}"),
        _ => format!("EXPLAIN QUERY PLAN {sql}"),
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, explain))
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
    rows.iter()
        .filter_map(|row| {
            row.try_get_by_index::<String>(0)
                .or_else(|_| row.try_get_by_index::<String>(3))
                .ok()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A list as a client asks for it, and the index its statement must use.
struct Shape {
    name: &'static str,
    operation: &'static str,
    token: Option<String>,
    variables: Value,
    /// Pieces of the list's statement, to find it among the request's.
    sql: &'static [&'static str],
    sqlite_index: &'static str,
    postgres_index: &'static str,
}

const FEED: &[&str] = &["FROM \"meets\"", "ORDER BY \"meets\".\"starts_at\""];
const TABLES: [&str; 6] = [
    "meets",
    "attendances",
    "users",
    "invitations",
    "stories",
    "admin_audit",
];

async fn every_growing_list_is_served_by_its_index(server: TestServer) {
    let backend = server.db.backend;
    let (fixture, db) = load(&server).await;
    let (host, admin) = (Some(fixture.host.clone()), Some(fixture.admin.clone()));
    let feed = |name, token: Option<String>, filter: Value, sqlite_index, postgres_index| Shape {
        name,
        operation: "MeetFeed",
        token,
        variables: json!({ "filter": filter, "first": 20 }),
        sql: FEED,
        sqlite_index,
        postgres_index,
    };
    let in_hours = |hours: i64| (chrono::Utc::now() + chrono::Duration::hours(hours)).to_rfc3339();
    let mut shapes = vec![
        feed("feed", None, json!({}), "meets_starts", "meets_starts"),
        feed(
            "feed, signed in",
            host.clone(),
            json!({}),
            "meets_starts",
            "meets_starts",
        ),
        feed(
            "search, a common word",
            None,
            json!({ "search": "comm" }),
            "meets_starts",
            "meets_starts",
        ),
        // Within the start range, the range is walked and each meet
        // checked against the matches, common word or rare: reading every
        // match in history first costs what history holds of the word.
        feed(
            "search, a rare word",
            None,
            json!({ "search": "zebra" }),
            "meets_starts",
            "meets_starts",
        ),
        feed(
            "near",
            None,
            json!({ "near": { "latitude": 45.0, "longitude": -80.0, "radiusKm": 10 } }),
            "meets_cell_fine",
            "meets_cell_fine",
        ),
        feed(
            "near, wide",
            None,
            json!({ "near": { "latitude": 45.0, "longitude": -80.0, "radiusKm": 100 } }),
            "meets_cell_coarse",
            "meets_cell_coarse",
        ),
        feed(
            "region",
            None,
            json!({ "region": "Hamilton" }),
            "meets_region",
            "meets_region",
        ),
        feed(
            "host",
            None,
            json!({ "hostHandle": "member7" }),
            "meets_host",
            "meets_host",
        ),
        feed(
            "time window",
            None,
            json!({ "startsAfter": in_hours(24), "startsBefore": in_hours(72) }),
            "meets_starts",
            "meets_starts",
        ),
        Shape {
            name: "attendees",
            operation: "MeetAttendees",
            token: None,
            variables: json!({ "id": fixture.hot_meet, "first": 20 }),
            sql: &[
                "FROM \"attendances\"",
                "ORDER BY \"attendances\".\"guest_rank\"",
            ],
            sqlite_index: "attendances_guest_list",
            postgres_index: "attendances_guest_list",
        },
        Shape {
            name: "attending",
            operation: "MyMeets",
            token: host.clone(),
            variables: json!({ "first": 20 }),
            sql: &["FROM \"attendances\"", "ORDER BY \"meets\".\"starts_at\""],
            sqlite_index: "attendances_user",
            postgres_index: "attendances_user",
        },
        Shape {
            name: "hosted meets",
            operation: "MyMeets",
            token: host.clone(),
            variables: json!({ "first": 20 }),
            sql: &[
                "FROM \"meets\" WHERE",
                "ORDER BY \"meets\".\"starts_at\" DESC",
            ],
            sqlite_index: "meets_host",
            postgres_index: "meets_host",
        },
        Shape {
            name: "stories",
            operation: "StoryFeed",
            token: host.clone(),
            variables: json!({ "first": 20 }),
            sql: &[
                "FROM \"stories\"",
                "ORDER BY \"stories\".\"published_at\" DESC",
            ],
            sqlite_index: "stories_published",
            postgres_index: "stories_published",
        },
        Shape {
            name: "stories of a meet",
            operation: "StoryFeed",
            token: None,
            variables: json!({ "meetId": fixture.hot_meet, "first": 20 }),
            sql: &[
                "FROM \"stories\"",
                "ORDER BY \"stories\".\"published_at\" DESC",
            ],
            sqlite_index: "stories_meet",
            postgres_index: "stories_meet",
        },
        Shape {
            name: "a user's stories",
            operation: "UserProfile",
            token: None,
            variables: json!({ "handle": "host" }),
            sql: &[
                "FROM \"stories\"",
                "ORDER BY \"stories\".\"published_at\" DESC",
            ],
            sqlite_index: "stories_author",
            postgres_index: "stories_author",
        },
        Shape {
            name: "my invitations",
            operation: "MyInvitations",
            token: host.clone(),
            variables: json!({ "first": 20 }),
            sql: &[
                "FROM \"invitations\"",
                "ORDER BY \"invitations\".\"created_at\" DESC",
            ],
            sqlite_index: "invitations_invitee",
            postgres_index: "invitations_invitee",
        },
        Shape {
            name: "a meet's invitations",
            operation: "MeetInvitations",
            token: host.clone(),
            variables: json!({ "id": fixture.hot_meet, "first": 20 }),
            sql: &[
                "FROM \"invitations\"",
                "ORDER BY \"invitations\".\"created_at\" DESC",
            ],
            sqlite_index: "invitations_meet_created",
            postgres_index: "invitations_meet_created",
        },
        Shape {
            name: "users",
            operation: "AdminUsers",
            token: admin.clone(),
            variables: json!({ "first": 20 }),
            sql: &["FROM \"users\"", "ORDER BY \"users\".\"created_at\" DESC"],
            sqlite_index: "users_created",
            postgres_index: "users_created",
        },
        Shape {
            name: "users, searched",
            operation: "AdminUsers",
            token: admin.clone(),
            variables: json!({ "search": "brakeep", "first": 20 }),
            sql: &["FROM \"users\"", "ORDER BY \"users\".\"created_at\" DESC"],
            sqlite_index: "users_fts",
            postgres_index: "users_search",
        },
    ];
    // Deep pages: the cursor is where the index range starts.
    let mut deep = Vec::new();
    for shape in &shapes {
        if ["feed", "attendees", "my invitations", "users"].contains(&shape.name) {
            let mut variables = shape.variables.clone();
            let first = server
                .ok(shape.token.as_deref(), shape.operation, variables.clone())
                .await;
            let cursor = find_end_cursor(&first).expect("a next page");
            variables["after"] = json!(cursor);
            deep.push(Shape {
                name: "a deep page",
                operation: shape.operation,
                token: shape.token.clone(),
                variables,
                sql: shape.sql,
                sqlite_index: shape.sqlite_index,
                postgres_index: shape.postgres_index,
            });
        }
    }
    shapes.extend(deep);

    let mut failures = Vec::new();
    for shape in &shapes {
        server
            .ok(
                shape.token.as_deref(),
                shape.operation,
                shape.variables.clone(),
            )
            .await;
        let sql = server
            .last_sql(shape.sql)
            .unwrap_or_else(|| panic!("{}: no statement with {:?}", shape.name, shape.sql));
        let plan = plan(&db, &sql).await;
        let index = match backend {
            Backend::Postgres => shape.postgres_index,
            Backend::Sqlite => shape.sqlite_index,
        };
        let scanned: Vec<&str> = TABLES
            .into_iter()
            .filter(|table| match backend {
                Backend::Postgres => plan.contains(&format!("Seq Scan on {table} ")),
                Backend::Sqlite => plan
                    .lines()
                    .any(|line| line.ends_with(&format!("SCAN {table}"))),
            })
            .collect();
        if !plan.contains(index) || !scanned.is_empty() {
            failures.push(format!(
                "{}: wanted {index}, no table scan (scanned {scanned:?})\n{sql}\n{plan}",
                shape.name
            ));
        }
        // A deep page seeks the index to its cursor.
        if shape.name == "a deep page" {
            let seeks = plan.lines().any(|line| match backend {
                Backend::Postgres => line.contains("Index Cond") && line.contains("ROW("),
                Backend::Sqlite => line.contains(")>(") || line.contains(")<("),
            });
            if !seeks {
                failures.push(format!(
                    "a deep page does not seek its cursor:\n{sql}\n{plan}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The `endCursor` of the first connection in a response.
fn find_end_cursor(data: &Value) -> Option<String> {
    match data {
        Value::Object(map) => map
            .get("pageInfo")
            .and_then(|info| info["endCursor"].as_str().map(str::to_owned))
            .or_else(|| map.values().find_map(find_end_cursor)),
        _ => None,
    }
}

on_both_databases!(every_growing_list_is_served_by_its_index);
