//! Drift guard for `schema/plan.schema.json`.
//!
//! Owns one promise: the committed schema is exactly the editor schema the Rust types generate
//! (`swing_schema::editor_schema`: the shape schema plus the cross-field rules). When a field is
//! added to (or changed in) `swing_schema::plan`, or a rule in `swing_schema::editor`, without
//! regenerating, this test fails and says how to regenerate. It must not rewrite the file unless
//! asked to (`SWING_BLESS_SCHEMA=1`).

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plan.schema.json")
}

#[test]
fn committed_schema_matches_the_types() {
    let generated = swing_schema::editor_schema_pretty();
    let path = committed_path();
    if std::env::var_os("SWING_BLESS_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write schema/plan.schema.json");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/plan.schema.json is out of date with the types in schema/src/plan.rs\n\
         (or the rules in schema/src/editor.rs).\n\
         Regenerate it with:\n    SWING_BLESS_SCHEMA=1 cargo test -p swing-schema --test schema_drift\n\
         (or `cargo run -- schema > schema/plan.schema.json`) and commit the result."
    );
}

#[test]
fn generated_schema_is_a_valid_draft_2020_12_document() {
    for schema in [swing_schema::plan_schema(), swing_schema::editor_schema()] {
        shape_is_complete(&schema);
    }
}

fn shape_is_complete(schema: &serde_json::Value) {
    assert_eq!(
        schema.get("$schema").and_then(|v| v.as_str()),
        Some("https://json-schema.org/draft/2020-12/schema")
    );
    // The top-level keys of plan format v1 are all there and unknown keys are refused.
    let props = schema["properties"].as_object().expect("properties");
    for key in [
        "version",
        "name",
        "site",
        "target",
        "appliances",
        "failover",
        "migration",
        "windows",
        "policy",
        "backup",
        "verify",
        "providers",
    ] {
        assert!(props.contains_key(key), "schema lacks `{key}`");
    }
    assert_eq!(
        schema["additionalProperties"],
        serde_json::Value::Bool(false)
    );
}
