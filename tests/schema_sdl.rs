//! schema.graphql is the served schema: regenerate it with
//! `cargo run -- print-schema > schema.graphql` when this fails.

#[test]
fn committed_schema_matches_the_served_one() {
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql"),
    )
    .expect("schema.graphql at the repository root");
    let served = api::graphql::sdl();
    assert!(
        committed == served,
        "schema.graphql is out of date: run `cargo run -- print-schema > schema.graphql`"
    );
}
