//! JSON renderer: the plan view as pretty JSON (the documented, versioned output format,
//! `docs/plan-json.md`, schema `schema/plan-output.schema.json`).
//!
//! Must not: add or rename anything on its own — the JSON is exactly the serde form of the view.

use swing_schema::output::PlanView;

/// One plan.
pub fn render(view: &PlanView) -> String {
    finish(serde_json::to_string_pretty(view))
}

fn finish(r: Result<String, serde_json::Error>) -> String {
    // Serializing these plain data types cannot fail (no maps with non-string keys, no
    // custom serializers that error); fall back to an explicit JSON error object anyway.
    let mut s = r.unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
    s.push('\n');
    s
}
