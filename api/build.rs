//! Embeds the GraphiQL playground assets (see `playground/` and
//! `src/http/playground.rs`): installs them with `npm ci` when
//! `playground/node_modules` lacks them, copies them into `OUT_DIR` and exposes
//! each copy as `PLAYGROUND_*` for `include_bytes!(env!(..))`.
//!
//! Without npm (or without the registry) the build still succeeds: it sets
//! `playground_without_assets`, and `/playground` then says how to get the
//! real page. That is the one case that prints a warning.

use std::env;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `(env var, file under node_modules)`. The served name is the file name;
/// `playground/index.html` must reference `/playground/assets/<file name>`.
const ASSETS: &[(&str, &str)] = &[
    ("PLAYGROUND_GRAPHIQL_CSS", "graphiql/graphiql.min.css"),
    ("PLAYGROUND_GRAPHIQL_JS", "graphiql/graphiql.min.js"),
    ("PLAYGROUND_REACT_JS", "react/umd/react.production.min.js"),
    (
        "PLAYGROUND_REACT_DOM_JS",
        "react-dom/umd/react-dom.production.min.js",
    ),
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let playground = manifest_dir.join("playground");
    let node_modules = playground.join("node_modules");

    for file in ["package.json", "package-lock.json", "index.html"] {
        println!("cargo:rerun-if-changed={}", playground.join(file).display());
    }
    // The individual files only (a missing one makes cargo rerun this script,
    // which reinstalls them); never the whole node_modules directory.
    for (_, rel) in ASSETS {
        println!(
            "cargo:rerun-if-changed={}",
            node_modules.join(rel).display()
        );
    }

    println!("cargo::rustc-check-cfg=cfg(playground_without_assets)");
    let missing = || {
        ASSETS
            .iter()
            .any(|(_, rel)| !node_modules.join(rel).is_file())
    };
    if missing() {
        let installed = npm_ci(&playground);
        if let Err(reason) = installed.and_then(|()| {
            if missing() {
                Err("`npm ci` did not install every asset".to_owned())
            } else {
                Ok(())
            }
        }) {
            println!(
                "cargo:warning=the GraphiQL playground is not embedded: {reason}; \
                 /playground says how to get it"
            );
            println!("cargo:rustc-cfg=playground_without_assets");
            return;
        }
    }

    let html = fs::read_to_string(playground.join("index.html")).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}",
            playground.join("index.html").display()
        )
    });
    for (var, rel) in ASSETS {
        let src = node_modules.join(rel);
        let name = Path::new(rel)
            .file_name()
            .expect("asset path has a file name");
        if !html.contains(&format!("/playground/assets/{}", name.to_string_lossy())) {
            panic!(
                "playground/index.html does not reference /playground/assets/{}",
                name.to_string_lossy()
            );
        }
        let dst = out_dir.join(name);
        fs::copy(&src, &dst).unwrap_or_else(|e| {
            panic!(
                "cannot copy {} to {}: {e} (try `npm ci` in {})",
                src.display(),
                dst.display(),
                playground.display()
            )
        });
        println!("cargo:rustc-env={var}={}", dst.display());
    }
}

/// Installs the assets from the npm registry, quietly: npm's output goes to
/// stderr, which cargo shows only when the build fails.
fn npm_ci(dir: &Path) -> Result<(), String> {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let status = Command::new(npm)
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(dir)
        // Keep npm's chatter off stdout, which cargo parses for `cargo:` lines.
        .stdout(std::io::stderr())
        .status();
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`npm ci` failed ({status}) in {}", dir.display())),
        Err(e) if e.kind() == ErrorKind::NotFound => Err("npm is not installed".to_owned()),
        Err(e) => Err(format!("cannot run `npm ci` in {}: {e}", dir.display())),
    }
}
