//! `schema/schema.graphql` is what clients code against: it must match the server.

#[test]
fn exported_schema_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/schema.graphql");
    let current = marquee::api::sdl();
    let exported = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        exported == current,
        "schema/schema.graphql is stale: run `cargo run -- schema > schema/schema.graphql`"
    );
}
