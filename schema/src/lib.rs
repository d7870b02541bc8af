//! swing-schema: the plan format v1 as Rust types (serde + schemars).
//!
//! Owns: the typed plan model users write in YAML (`plan`), the small value types it is built
//! from (`duration`, `secret`), the answers other tools read (`output`: the plan view;
//! `status`: where a change stands; `report`: the change record), and the JSON schemas
//! generated from it: the shape schema (`plan_schema`) the engine validates with, and the editor schema (`editor`) derived from
//! it, committed as `schema/plan.schema.json`, printed by `swing schema` and guarded by a drift
//! test.
//!
//! Must not: depend on any other swing crate, do IO, or resolve secrets. Secret *references*
//! live here; resolved secret values live in `secret::SecretValue`, which can be neither
//! printed nor serialized.

pub mod duration;
pub mod editor;
pub mod fleet;
pub mod output;
pub mod plan;
pub mod report;
pub mod secret;
pub mod status;

pub use duration::DurationSpec;
pub use plan::*;
pub use secret::{SecretRef, SecretValue};

pub use editor::{editor_schema, editor_schema_pretty};

/// The shape schema of plan format v1, generated from the types: what the engine validates a
/// plan with before its own cross-field checks. Editors get [`editor_schema`], which adds the
/// cross-field rules JSON Schema can state.
pub fn plan_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(plan::Plan);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}
