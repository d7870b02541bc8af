//! The demo's terminal output: the lab, the plan as `swing plan` renders it, one line per
//! step event, the final states and the final report with the measured downtime.
//!
//! Owns: what `swing demo` prints. Must not: drive the run (that is
//! `swing_testkit::demo::run_scenario`) or print a secret.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use swing_engine::apply::ApplyEvent;
use swing_engine::compile::CompiledPlan;
use swing_testkit::demo::{Narrator, RunResult};
use swing_testkit::kit::{DNS_OLD_TTL, Lab, SITE, Scenario};

/// Shows the run on stdout as it goes.
pub struct Terminal;

impl Narrator for Terminal {
    fn lab_started(&self, lab: &Lab) {
        for (name, sim) in &lab.sims {
            let st = sim.state();
            println!(
                "  appliance {name:<4} {}  version {}  role {}",
                sim.url(),
                st.version,
                st.role
            );
        }
        if let Some(ip) = lab.shared_ip {
            println!("  shared IP {ip} (the site {SITE})");
        }
    }

    fn dns_started(&self, server: SocketAddr, first: IpAddr) {
        println!("  DNS {server} serves {SITE} → {first} (TTL {DNS_OLD_TTL} s)");
    }

    fn plan_compiled(&self, source: &str, compiled: &CompiledPlan, probe_interval: Duration) {
        println!("\n$ swing plan {source}\n");
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
            "$ swing apply --auto-approve {source}   (with a client probing the site every {} ms)\n",
            probe_interval.as_millis()
        );
    }

    fn event(&self, elapsed: Duration, e: &ApplyEvent) {
        let t = elapsed.as_secs_f64();
        match e {
            ApplyEvent::StepStarted { step, title, .. } => {
                println!("  {t:7.2}s  ▶ {step:<22} {title}")
            }
            ApplyEvent::StepSucceeded { step, duration_ms } => {
                println!(
                    "  {t:7.2}s  ✓ {step:<22} {:.2} s",
                    *duration_ms as f64 / 1000.0
                )
            }
            ApplyEvent::StepFailed { step, message } => {
                println!("  {t:7.2}s  ✗ {step:<22} {message}")
            }
            ApplyEvent::StepWaiting { step, reason } => {
                println!("  {t:7.2}s  ⏸ {step:<22} {reason}")
            }
            ApplyEvent::StepSkipped { step, because } => {
                println!("  {t:7.2}s  – {step:<22} skipped: {because}")
            }
            _ => {}
        }
    }

    fn finished(&self, lab: &Lab) {
        println!();
        for (name, st) in lab.final_states() {
            println!(
                "  appliance {name:<4} version {}  role {}  shared IPs {:?}  healthy {}",
                st.version, st.role, st.shared_ips, st.healthy
            );
        }
    }
}

/// The final report: outcome, makespan, the apply's report, the client's view, the state.
pub fn print_final(scenario: Scenario, r: &RunResult) {
    println!("\n== Final report: {} ==", scenario.name());
    println!("apply outcome:               {}", r.outcome);
    println!(
        "apply makespan:              {:.2} s",
        r.makespan.as_secs_f64()
    );
    if let Some(rep) = &r.report {
        print!("{}", super::super::apply::report_text(rep));
    }
    println!("{}", r.probe.summary());
    if r.problems.is_empty() {
        println!(
            "final state: as planned (versions, roles, site served by the right appliance, backup checksum)"
        );
    } else {
        println!("final state problems:");
        for p in &r.problems {
            println!("  - {p}");
        }
    }
}
