//! The JavaScript clients teams use (tests/clients/), run by Node.js against a
//! test server. Without Node.js and npm a test says it was skipped.

use std::{path::PathBuf, process::Command};

fn clients_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

fn found(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs `node <script> <args…>` in tests/clients with `stdin` as its input,
/// after `npm ci` there if its packages are not installed yet; returns what
/// it printed and whether it succeeded. `None` (after saying so) when
/// Node.js or npm is missing.
pub async fn run(test: &str, script: &str, args: &[String], stdin: &str) -> Option<(bool, String)> {
    if !found("node") || !found("npm") {
        eprintln!("SKIPPED {test}: Node.js and npm are not installed");
        return None;
    }
    let dir = clients_dir();
    let (script, args, stdin) = (script.to_owned(), args.to_vec(), stdin.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        // Every package the lock names, so a new one is picked up too.
        if !dir.join("node_modules/.package-lock.json").exists()
            || std::fs::metadata(dir.join("package-lock.json"))
                .and_then(|lock| lock.modified())
                .ok()
                > std::fs::metadata(dir.join("node_modules/.package-lock.json"))
                    .and_then(|installed| installed.modified())
                    .ok()
        {
            let installed = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .expect("npm ci");
            assert!(installed.success(), "npm ci in tests/clients");
        }
        let mut child = Command::new("node")
            .arg(&script)
            .args(&args)
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("node");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(stdin.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("node output")
    })
    .await
    .expect("node task");
    Some((
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}
