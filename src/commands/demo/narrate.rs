//! The demo's terminal output: the plan as `swing plan --offline` renders it, one line per
//! step event, and the rehearsal's report with the measured downtime and the final state.
//!
//! Owns: what `swing demo` prints. Must not: drive the run (that is
//! `swing_testkit::rehearse::rehearse`) or print a secret.

use std::time::Duration;

use swing_engine::apply::ApplyEvent;
use swing_engine::compile::CompiledPlan;
use swing_engine::render::escape;
use swing_testkit::demo::Narrator;
use swing_testkit::rehearse::Rehearsal;

/// Shows the run on stdout as it goes.
pub struct Terminal;

impl Narrator for Terminal {
    fn event(&self, elapsed: Duration, e: &ApplyEvent) {
        let t = elapsed.as_secs_f64();
        let s = |x: &str| escape::terminal(x);
        match e {
            ApplyEvent::StepStarted { step, title, .. } => {
                println!("  {t:7.2}s  ▶ {:<22} {}", s(step), s(title))
            }
            ApplyEvent::StepSucceeded { step, duration_ms } => {
                println!(
                    "  {t:7.2}s  ✓ {:<22} {:.2} s",
                    s(step),
                    *duration_ms as f64 / 1000.0
                )
            }
            ApplyEvent::StepFailed { step, message } => {
                println!("  {t:7.2}s  ✗ {:<22} {}", s(step), s(message))
            }
            ApplyEvent::StepWaiting { step, reason } => {
                println!("  {t:7.2}s  ⏸ {:<22} {}", s(step), s(reason))
            }
            ApplyEvent::StepSkipped { step, because } => {
                println!("  {t:7.2}s  – {:<22} skipped: {}", s(step), s(because))
            }
            _ => {}
        }
    }
}

/// The plan as `swing plan --offline` shows it, then the command that rehearses it.
pub fn print_plan(file: &str, compiled: &CompiledPlan, probe_interval: Duration) {
    println!("$ swing plan --offline {file}\n");
    let view = swing_engine::view::build(compiled);
    println!(
        "{}",
        swing_engine::render::render(
            &view,
            swing_engine::render::Format::Text,
            Default::default()
        )
    );
    println!(
        "$ swing rehearse --offline {file}   (a client probes the site every {} ms)\n",
        probe_interval.as_millis()
    );
}

/// The rehearsal's report, then whether the twin ended where the plan ends.
pub fn print_final(r: &Rehearsal) {
    println!();
    print!(
        "{}",
        crate::views::rehearse::text(r, &|x| escape::terminal(x), &|x| escape::terminal(x))
    );
    if r.problems.is_empty() {
        println!(
            "final state: as planned (versions, health, roles, the client on the right appliance)"
        );
    } else {
        println!("final state problems:");
        for p in &r.problems {
            println!("  - {}", escape::terminal(p));
        }
    }
}
