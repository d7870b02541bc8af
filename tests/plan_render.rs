//! Renderer limits and failure modes: Markdown stays under 65,000 characters for any plan
//! (detail is cut, the summary never), colour only when asked, and broken plans are refused
//! by validation with a typed diagnostic, so they never reach compile.
//!
//! Must not: reach the network.

use std::path::Path;

use swing_engine::compile::CompileOptions;
use swing_engine::diagnostics::codes;
use swing_engine::render::{self, Format, RenderOptions};
use swing_schema::{Plan, Verify};

fn example(name: &str) -> Plan {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plans/examples")
        .join(name);
    let checked = swing_engine::validate::check_file(&path);
    checked
        .plan
        .unwrap_or_else(|| panic!("{name}: {:?}", checked.diagnostics))
        .into_plan()
}

/// The plan as validation accepts it (the examples are edited in memory by the tests).
fn valid(plan: &Plan) -> swing_engine::validate::ValidPlan {
    swing_engine::validate::valid_plan(plan)
}

/// The codes of the errors validation gives the plan; compile only ever sees a plan without.
fn refusal(plan: &Plan) -> Vec<&'static str> {
    let checked = swing_engine::validate::check_plan("edited.json", plan);
    assert!(checked.plan.is_none(), "validation must refuse the plan");
    checked
        .diagnostics
        .iter()
        .filter(|d| d.severity == swing_engine::diagnostics::Severity::Error)
        .map(|d| d.code)
        .collect()
}

const OPTS: CompileOptions = CompileOptions {
    offline: true,
    file: None,
};

#[test]
fn markdown_of_a_huge_plan_is_cut_but_keeps_the_summary() {
    let mut plan = example("failover-async-dns.yaml");
    // The most manual checks a plan may hold (64), of 2,000 characters each: the checklist
    // alone would be > 120,000 characters.
    plan.verify = Some(Verify {
        manual: Some(
            (0..swing_schema::plan::MAX_MANUAL_CHECKS)
                .map(|i| format!("check {i}: {}", "x".repeat(2_000)))
                .collect(),
        ),
    });
    let view = swing_engine::view::plan_view(&valid(&plan), &OPTS).unwrap();
    let full = render::render(&view, Format::Text, RenderOptions::default());
    assert!(full.len() > 120_000, "the test plan is not big enough");
    let md = render::render(&view, Format::Markdown, RenderOptions::default());
    assert!(
        md.chars().count() <= render::markdown::MAX_CHARS,
        "{} chars",
        md.chars().count()
    );
    assert!(md.contains(&render::escape::md_inline(&view.summary.line)));
    assert!(md.contains("Cut to stay under"));
    // A fleet of many such plans too.
    let many = vec![view.clone(); 30];
    let md = render::render_many(&many, Format::Markdown, RenderOptions::default());
    assert!(md.chars().count() <= render::markdown::MAX_CHARS);
}

#[test]
fn colour_only_when_asked() {
    let view =
        swing_engine::view::plan_view(&valid(&example("single-automatic.yaml")), &OPTS).unwrap();
    let plain = render::render(
        &view,
        Format::Text,
        RenderOptions {
            color: false,
            ..Default::default()
        },
    );
    assert!(!plain.contains('\u{1b}'));
    let coloured = render::render(
        &view,
        Format::Text,
        RenderOptions {
            color: true,
            ..Default::default()
        },
    );
    assert!(coloured.contains("\u{1b}["));
    for f in [
        Format::Markdown,
        Format::Json,
        Format::Dot,
        Format::Mermaid,
        Format::Gantt,
    ] {
        assert!(
            !render::render(
                &view,
                f,
                RenderOptions {
                    color: true,
                    ..Default::default()
                }
            )
            .contains('\u{1b}'),
            "{f:?}"
        );
    }
}

#[test]
fn text_shows_changes_and_unknown_versions() {
    let mut plan = example("failover-async-dns.yaml");
    for a in plan.appliances.values_mut() {
        a.current_version = None;
    }
    let view = swing_engine::view::plan_view(&valid(&plan), &OPTS).unwrap();
    let text = render::render(&view, Format::Text, RenderOptions::default());
    assert!(
        text.contains("~ appliance west: version (known after refresh) → 25.1.3"),
        "{text}"
    );
    assert!(
        text.contains("~ dns access.example.com A: 10.0.0.11 → 10.0.0.12"),
        "{text}"
    );
    assert!(
        text.lines()
            .last()
            .unwrap()
            .starts_with("Plan: 31 steps (10 operator, 1 gate)")
    );
}

#[test]
fn window_too_short_is_an_error_finding_not_a_crash() {
    let mut plan = example("single-automatic.yaml");
    for w in &mut plan.windows {
        w.end = w.start + std::time::Duration::from_secs(20 * 60);
    }
    let view = swing_engine::view::plan_view(&valid(&plan), &OPTS).unwrap();
    assert!(
        view.findings.iter().any(|f| f.code == "window-overrun"),
        "{:?}",
        view.findings
    );
    assert!(view.summary.errors > 0);
    assert_eq!(view.summary.fits_windows, Some(false));
}

#[test]
fn unprotected_longer_than_policy_is_an_error() {
    let mut plan = example("failover-async-dns.yaml");
    plan.policy.max_unprotected = swing_schema::DurationSpec::from_secs(86_400);
    let view = swing_engine::view::plan_view(&valid(&plan), &OPTS).unwrap();
    assert!(
        view.findings
            .iter()
            .any(|f| f.code == "unprotected-too-long")
    );
}

#[test]
fn broken_plans_give_typed_errors() {
    let mut p = example("failover-async-dns.yaml");
    p.failover.as_mut().unwrap().backup = "nowhere".to_owned();
    assert!(refusal(&p).contains(&codes::UNKNOWN_APPLIANCE));
    let mut p = example("failover-async-dns.yaml");
    p.failover.as_mut().unwrap().switch = None;
    assert_eq!(refusal(&p), vec![codes::MISSING_KEY]);
    let mut p = example("failover-sync-shared-ip.yaml");
    p.failover.as_mut().unwrap().final_primary = Some("b".to_owned());
    assert_eq!(refusal(&p), vec![codes::FINAL_PRIMARY_ON_SYNC]);
    let mut p = example("failover-async-dns.yaml");
    p.migration = example("hardware-migration.yaml").migration;
    assert!(refusal(&p).contains(&codes::FAILOVER_AND_MIGRATION));
    let mut p = example("failover-async-dns.yaml");
    p.failover = None;
    assert_eq!(refusal(&p), vec![codes::TWO_WITHOUT_PAIRING]);
    let mut p = example("single-automatic.yaml");
    p.appliances.clear();
    assert!(!refusal(&p).is_empty());
}
