//! Property test: 1,000 random valid plans (every scenario and switch method) compile, keep
//! all eight invariants of `procedures.md`, and compile deterministically.
//!
//! Must not: generate invalid plans (the validator must accept each one, checked here too).

use proptest::prelude::*;
use swing_engine::compile::CompileOptions;
use swing_testkit::plangen;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_valid_plans_keep_the_invariants(plan in plangen::plans()) {
        // Valid as the user would write it: JSON is YAML, so the validator reads it as text.
        let text = serde_json::to_string(&plan).unwrap();
        let checked = swing_engine::validate::check_source("generated.yaml", &text);
        prop_assert!(!checked.has_errors(), "generated an invalid plan: {:?}\n{text}", checked.diagnostics);
        let plan = checked.plan.expect("a plan without errors is valid");
        let opts = CompileOptions { offline: true, file: None };
        let view = swing_engine::view::plan_view(&plan, &opts).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let violations = swing_engine::invariants::check(&view);
        prop_assert!(violations.is_empty(), "{violations:?}\n{text}");
        // Every step's dependencies exist and come first; ids are unique.
        let mut seen = std::collections::BTreeSet::new();
        for s in &view.steps {
            for d in &s.depends_on {
                prop_assert!(seen.contains(d.as_str()), "{} before its dependency {d}", s.id);
            }
            prop_assert!(seen.insert(s.id.as_str()), "duplicate id {}", s.id);
        }
        // Deterministic: the same plan gives the same JSON.
        let again = swing_engine::view::plan_view(&plan, &opts).unwrap();
        prop_assert_eq!(
            swing_engine::render::json::render(&view),
            swing_engine::render::json::render(&again)
        );
        // Markdown stays under the limit.
        let md = swing_engine::render::markdown::render(&view, swing_engine::render::markdown::MAX_CHARS);
        prop_assert!(md.chars().count() <= swing_engine::render::markdown::MAX_CHARS);
    }
}
