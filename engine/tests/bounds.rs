//! Bounds of the plan format: a value past a bound is refused by `validate` with a pinpoint
//! diagnostic, and random plans with every duration and count at or near its bound validate,
//! compile, render in every format and become apply step specs without a panic (no overflow
//! anywhere downstream of validation).
//!
//! Must not: do IO beyond reading committed plans, or contact anything.

use proptest::prelude::*;
use swing_engine::compile::CompileOptions;
use swing_engine::diagnostics::codes;
use swing_engine::render::{self, Format, RenderOptions};
use swing_schema::DurationSpec;
use swing_schema::duration::MAX_DURATION_SECS;
use swing_testkit::plangen;

const EXAMPLE: &str = include_str!("../../plans/examples/single-automatic.yaml");

/// The example with `policy.estimates.install` set to `value`.
fn with_install_estimate(value: &str) -> String {
    EXAMPLE.replacen(
        "policy:\n",
        &format!("policy:\n  estimates:\n    install: {value}\n"),
        1,
    )
}

#[test]
fn an_estimate_of_two_to_the_64_seconds_is_refused_where_it_is_written() {
    let text = with_install_estimate("18446744073709551615s");
    let checked = swing_engine::validate::check_source("plan.yaml", &text);
    assert!(checked.plan.is_none(), "must not validate");
    let d = checked
        .diagnostics
        .iter()
        .find(|d| d.code == codes::BAD_DURATION)
        .unwrap_or_else(|| panic!("no duration diagnostic: {:?}", checked.diagnostics));
    assert!(
        d.message.contains("policy.estimates.install") && d.message.contains("366d"),
        "{}",
        d.message
    );
    let line = text
        .lines()
        .position(|l| l.contains("install: 18446744073709551615s"))
        .unwrap()
        + 1;
    assert_eq!(
        (d.line, d.column),
        (line, 14),
        "points at the value: {}",
        d.message
    );
}

#[test]
fn a_duration_just_past_the_bound_is_refused_and_the_bound_itself_is_valid() {
    for (value, valid) in [("366d", true), ("367d", false), ("8784h1s", false)] {
        let checked =
            swing_engine::validate::check_source("plan.yaml", &with_install_estimate(value));
        assert_eq!(
            checked.plan.is_some(),
            valid,
            "{value}: {:?}",
            checked.diagnostics
        );
        if !valid {
            assert!(
                checked
                    .diagnostics
                    .iter()
                    .any(|d| d.code == codes::BAD_DURATION && d.message.contains("366d")),
                "{value}: {:?}",
                checked.diagnostics
            );
        }
    }
}

#[test]
fn counts_and_names_past_their_bounds_are_refused() {
    let long_name = "a".repeat(65);
    for (from, to, code) in [
        (
            "certificate_min_days: 30",
            "certificate_min_days: 3651",
            codes::OUT_OF_RANGE,
        ),
        (
            "max_concurrent_upgrades: 100",
            "max_concurrent_upgrades: 100001",
            codes::OUT_OF_RANGE,
        ),
        (
            "name: access-25-1-single",
            &*format!("name: {long_name}"),
            codes::OUT_OF_RANGE,
        ),
        ("  main: {", &*format!("  {long_name}: {{"), codes::BAD_NAME),
        (
            "name: saturday-night",
            "name: \"night\\nflowchart\"",
            codes::BAD_NAME,
        ),
        (
            "end: 2026-12-06T02:00:00+01:00",
            "end: 2027-12-07T02:00:00+01:00",
            codes::OUT_OF_RANGE,
        ),
    ] {
        let text = EXAMPLE.replacen(from, to, 1);
        assert_ne!(text, EXAMPLE, "{from} not in the example");
        let checked = swing_engine::validate::check_source("plan.yaml", &text);
        assert!(checked.plan.is_none(), "{to} must not validate");
        assert!(
            checked.diagnostics.iter().any(|d| d.code == code),
            "{to}: expected {code}, got {:?}",
            checked
                .diagnostics
                .iter()
                .map(|d| (d.code, d.message.clone()))
                .collect::<Vec<_>>()
        );
    }
}

/// Every action a step can have, as `policy.estimates` keys (see `StepOp::action`).
const ACTIONS: [&str; 29] = [
    "health",
    "clock",
    "tls",
    "window",
    "backup",
    "certificates",
    "vault-key",
    "throttle",
    "sync",
    "break",
    "keys",
    "establish",
    "resync",
    "install",
    "online",
    "verify",
    "verify-manual",
    "prepare",
    "switch",
    "switch-verify",
    "promote",
    "restore-ttl",
    "certs-export",
    "certs-import",
    "certs-default",
    "clients-wait",
    "clients-followup",
    "restore",
    "decommission",
];

fn near_max() -> impl Strategy<Value = u64> {
    prop_oneof![Just(MAX_DURATION_SECS), 0..=MAX_DURATION_SECS]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn plans_at_their_bounds_compile_render_and_become_step_specs(
        mut plan in plangen::plans(),
        estimate in near_max(),
        other in near_max(),
        parallelism in prop_oneof![Just(64u32), 1..=64u32],
        ttl in prop_oneof![Just(86_400u32), 0..=86_400u32],
    ) {
        let p = &mut plan.policy;
        p.max_unprotected = DurationSpec::from_secs(other);
        p.clock_skew_max = DurationSpec::from_secs(other);
        p.jump_clients.wait_timeout = DurationSpec::from_secs(MAX_DURATION_SECS);
        p.jump_clients.max_concurrent_upgrades = 100_000;
        p.certificate_min_days = 3_650;
        p.parallelism = parallelism;
        for a in ACTIONS {
            p.estimates.insert(a.to_owned(), DurationSpec::from_secs(estimate));
        }
        p.estimates.insert("switch.prepare".to_owned(), DurationSpec::from_secs(MAX_DURATION_SECS));
        if let Some(swing_schema::Switch::Dns { ttl: t, .. }) =
            plan.failover.as_mut().and_then(|f| f.switch.as_mut())
        {
            *t = ttl;
        }
        let text = serde_json::to_string(&plan).unwrap();
        let checked = swing_engine::validate::check_source("bounds.yaml", &text);
        prop_assert!(!checked.has_errors(), "{:?}\n{text}", checked.diagnostics);
        let valid = checked.plan.expect("valid");
        let opts = CompileOptions { offline: true, file: None };
        let compiled = swing_engine::compile::compile(&valid, &opts)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let view = swing_engine::view::build(&compiled);
        for format in [Format::Text, Format::Markdown, Format::Json, Format::Dot, Format::Mermaid, Format::Gantt] {
            prop_assert!(!render::render(&view, format, RenderOptions::default()).is_empty());
        }
        let ids: Vec<String> = compiled.steps.iter().map(|s| s.id.clone()).collect();
        let specs = swing_engine::apply::site::step_specs(
            &compiled,
            &ids,
            &swing_engine::refresh::Providers::default(),
        );
        prop_assert_eq!(specs.len(), ids.len());
        // Every timeout can be added to the clock: what overflowed `apply` before.
        let now = tokio::time::Instant::now();
        for s in &specs {
            prop_assert!(now.checked_add(s.verify_timeout).is_some(), "{}: {:?}", s.id, s.verify_timeout);
        }
    }
}
