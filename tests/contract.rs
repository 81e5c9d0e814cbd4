//! Every operation the clients send (tests/operations/, a copy of the
//! contract) validates against the served schema, and the copy is current.

mod common;

use async_graphql::parser::{parse_query, types::DocumentOperations};
use serde_json::json;

/// Contract operations that belong to issues still open: the schema meets
/// them as those issues land. Each must still fail to validate (so this list
/// stays true), and leaves the list with the issue that makes it validate.
const PENDING: &[(&str, &str)] = &[];

/// Validates every operation by sending it to the live server: a request that
/// fails validation has no `data` and says so; one that passes executes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_operation_validates_against_the_live_schema() {
    let server = common::TestServer::start(common::TestDatabase::sqlite().await).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/operations");
    let mut checked = 0;
    let mut pending = 0;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
    {
        let source = std::fs::read_to_string(path).unwrap();
        let document = parse_query(&source).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let names: Vec<String> = match document.operations {
            DocumentOperations::Single(_) => {
                panic!("{}: contract operations are named", path.display())
            }
            DocumentOperations::Multiple(ops) => ops.keys().map(|n| n.to_string()).collect(),
        };
        for name in names {
            // Validation runs before execution; with no variables given,
            // a valid operation fails only on missing variable values.
            let response = server
                .graphql(
                    None,
                    json!({ "query": server.contract.operation(&name), "operationName": name }),
                )
                .await;
            let errors = response["errors"].as_array().cloned().unwrap_or_default();
            // Validation passed when the only errors are missing variables,
            // errors raised while executing (they have a path), or HTTP's
            // refusal to run a subscription.
            let refusal = errors.iter().find_map(|error| {
                let message = error["message"].as_str().unwrap_or_default();
                let about_variables = message.contains("Variable") || message.contains("variable");
                let executed = error["path"].as_array().is_some_and(|p| !p.is_empty());
                let subscription = message.contains("Subscriptions are not supported");
                (!(about_variables || executed || subscription)).then_some(message.to_owned())
            });
            match (PENDING.iter().find(|(op, _)| *op == name), refusal) {
                (None, None) => checked += 1,
                (None, Some(message)) => panic!("{} {name}: {message}", path.display()),
                (Some(_), Some(_)) => pending += 1,
                (Some((_, issue)), None) => panic!(
                    "{} {name} validates now: take it off PENDING ({issue})",
                    path.display()
                ),
            }
        }
    }
    assert!(checked >= 30, "only {checked} operations found");
    assert_eq!(
        pending,
        PENDING.len(),
        "every pending operation is in the contract"
    );
}

#[test]
fn the_project_copy_of_the_contract_is_current() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/contract");
    let Ok(entries) = std::fs::read_dir(&shared) else {
        // Outside the workspace layout (e.g. a lone checkout) there is nothing to compare.
        eprintln!("no ../shared/contract beside the repository; comparison skipped");
        return;
    };
    for entry in entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "graphql"))
    {
        let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/operations")
            .join(entry.file_name());
        assert_eq!(
            std::fs::read_to_string(entry.path()).unwrap(),
            std::fs::read_to_string(&ours).unwrap_or_default(),
            "tests/operations/{} differs from the contract",
            entry.file_name().to_string_lossy()
        );
    }
}
