//! Benchmark: validate (YAML text → checked plan) + compile + render JSON, for 1,000 generated
//! plans of every scenario, and for one plan. Figures and the command are in
//! `docs/performance.md`.
//!
//! Must not: do IO inside the measured loop.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use swing_engine::compile::CompileOptions;
use swing_testkit::plangen;

/// 1,000 plans as the text a user writes (JSON is YAML), from a fixed seed.
fn corpus(n: usize) -> Vec<String> {
    let mut runner = TestRunner::deterministic();
    let strategy = plangen::plans();
    (0..n)
        .filter_map(|_| strategy.new_tree(&mut runner).ok())
        .map(|t| serde_json::to_string(&t.current()).unwrap_or_default())
        .collect()
}

/// The whole `swing plan --offline --format json` pipeline for one plan text; returns bytes.
fn pipeline(text: &str) -> usize {
    let checked = swing_engine::validate::check_source("bench.yaml", text);
    let Some(plan) = checked.plan else { return 0 };
    let opts = CompileOptions {
        offline: true,
        file: None,
    };
    match swing_engine::view::plan_view(&plan, &opts) {
        Ok(v) => swing_engine::render::json::render(&v).len(),
        Err(_) => 0,
    }
}

fn bench(c: &mut Criterion) {
    let plans = corpus(1_000);
    assert_eq!(plans.len(), 1_000);
    assert!(
        plans.iter().all(|p| pipeline(p) > 0),
        "every generated plan must compile"
    );
    let mut g = c.benchmark_group("plan");
    g.sample_size(10);
    g.bench_function("validate+compile+render_json/1000 plans", |b| {
        b.iter(|| plans.iter().map(|p| pipeline(black_box(p))).sum::<usize>())
    });
    // The parts, to see where the time goes.
    let parsed: Vec<swing_engine::validate::ValidPlan> = plans
        .iter()
        .filter_map(|p| swing_engine::validate::check_source("bench.yaml", p).plan)
        .collect();
    g.bench_function("validate only/1000 plans", |b| {
        b.iter(|| {
            plans
                .iter()
                .filter(|p| {
                    swing_engine::validate::check_source("bench.yaml", black_box(p))
                        .plan
                        .is_some()
                })
                .count()
        })
    });
    g.bench_function("compile+render_json only/1000 plans", |b| {
        let opts = CompileOptions {
            offline: true,
            file: None,
        };
        b.iter(|| {
            parsed
                .iter()
                .filter_map(|p| swing_engine::view::plan_view(black_box(p), &opts).ok())
                .map(|v| swing_engine::render::json::render(&v).len())
                .sum::<usize>()
        })
    });
    g.finish();
    let one = &plans[0];
    c.bench_function("validate+compile+render_json/1 plan", |b| {
        b.iter(|| pipeline(black_box(one)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
