//! The `tweetmeet` binary as an operator runs it: `migrate` says what it did
//! and will not drop data unasked, `check` reports, and `serve` fails fast
//! and clearly.

use std::process::{Command, Output};

fn tweetmeet(dir: &std::path::Path, args: &[&str], settings: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tweetmeet"));
    command
        .args(args)
        .current_dir(dir)
        .env(
            "TWEETMEET_DATABASE_URL",
            format!("sqlite://{}/t.db?mode=rwc", dir.display()),
        )
        .env("TWEETMEET_MAIL_DIR", dir.join("outbox"))
        .stdin(std::process::Stdio::null());
    for (key, value) in settings {
        command.env(key, value);
    }
    command.output().expect("run tweetmeet")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn migrate_says_what_it_did_and_keeps_data_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let status = tweetmeet(dir.path(), &["migrate", "status"], &[]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(
        text(&status).contains("pending  m20261125_000001_initial"),
        "{}",
        text(&status)
    );

    let up = tweetmeet(dir.path(), &["migrate", "up"], &[]);
    assert!(
        text(&up).contains("applied m20261125_000001_initial"),
        "{}",
        text(&up)
    );
    let again = tweetmeet(dir.path(), &["migrate", "up"], &[]);
    assert!(
        text(&again).contains("nothing to apply"),
        "{}",
        text(&again)
    );
    let status = tweetmeet(dir.path(), &["migrate", "status"], &[]);
    assert!(text(&status).contains(" 0 pending"), "{}", text(&status));

    // An empty database rolls back without asking.
    let down = tweetmeet(dir.path(), &["migrate", "down"], &[]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("rolled back "), "{}", text(&down));
    tweetmeet(dir.path(), &["migrate", "up"], &[]);

    // With data, not from a script without --yes.
    let seeded = tweetmeet(dir.path(), &["seed", "--meets", "3", "--users", "2"], &[]);
    assert!(seeded.status.success(), "{}", text(&seeded));
    let refused = tweetmeet(dir.path(), &["migrate", "down", "--steps", "99"], &[]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("pass --yes"), "{}", text(&refused));
    let status = tweetmeet(dir.path(), &["migrate", "status"], &[]);
    assert!(
        text(&status).contains(" 0 pending"),
        "nothing was rolled back: {}",
        text(&status)
    );

    let forced = tweetmeet(
        dir.path(),
        &["migrate", "down", "--steps", "99", "--yes"],
        &[],
    );
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(text(&forced).contains("rolled back m20261125_000001_initial"));
}

#[test]
fn check_reports_each_dependency_and_fails_when_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let fine = tweetmeet(dir.path(), &["check"], &[]);
    assert!(fine.status.success(), "{}", text(&fine));
    for line in [
        "ok    configuration",
        "ok    database",
        "ok    migrations",
        "ok    mail",
    ] {
        assert!(text(&fine).contains(line), "{line}: {}", text(&fine));
    }
    let unreachable = tweetmeet(
        dir.path(),
        &["check"],
        &[
            (
                "TWEETMEET_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/none",
            ),
            ("TWEETMEET_SMTP_URL", "smtp://127.0.0.1:1"),
        ],
    );
    assert!(!unreachable.status.success());
    let report = text(&unreachable);
    assert!(
        report.contains("FAIL  database: cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{report}"
    );
    assert!(report.contains("refused"), "the real cause: {report}");
    assert!(report.contains("FAIL  mail"), "{report}");
}

#[test]
fn serve_fails_fast_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    // A busy port is found before the database is created or a secret written.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let refused = tweetmeet(dir.path(), &["serve"], &[("TWEETMEET_BIND", &address)]);
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(
        said.contains(&format!("cannot listen on {address}")),
        "{said}"
    );
    assert!(said.lines().count() <= 3, "one line, no backtrace: {said}");
    assert!(!dir.path().join("t.db").exists(), "nothing was migrated");
    assert!(!dir.path().join("t.db.jwt-secret").exists());

    let unreachable = tweetmeet(
        dir.path(),
        &["serve"],
        &[
            (
                "TWEETMEET_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/none",
            ),
            ("TWEETMEET_BIND", "127.0.0.1:0"),
        ],
    );
    assert!(!unreachable.status.success());
    let said = text(&unreachable);
    assert!(
        said.contains("cannot connect to PostgreSQL at 127.0.0.1:1") && said.contains("refused"),
        "{said}"
    );
}
