//! swing-schema: the plan format v1 as Rust types (serde + schemars).
//!
//! Owns: the typed plan model users write in YAML (`plan`), the small value types it is built
//! from (`duration`, `secret`), and the generated JSON schema (`plan_schema`), committed as
//! `schema/plan.schema.json` and guarded by a drift test.
//!
//! Must not: depend on any other swing crate, do IO, or resolve secrets. Secret *references*
//! live here; resolved secret values live in `secret::SecretValue`, which can be neither
//! printed nor serialized.

pub mod duration;
pub mod output;
pub mod plan;
pub mod secret;

pub use duration::DurationSpec;
pub use plan::*;
pub use secret::{SecretRef, SecretValue};

/// The JSON schema of plan format v1, as committed in `schema/plan.schema.json`.
pub fn plan_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(plan::Plan);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}

/// The schema pretty-printed exactly as committed (trailing newline included).
pub fn plan_schema_pretty() -> String {
    let mut s = serde_json::to_string_pretty(&plan_schema()).unwrap_or_default();
    s.push('\n');
    s
}
