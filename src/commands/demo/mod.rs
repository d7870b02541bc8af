//! `swing demo [SCENARIO]`: the one-command tour. Starts simulated appliances in-process
//! (and the embedded DNS server for the dns scenarios), writes a plan into a temporary
//! directory, shows the plan and applies it with `operator: sim` at a fast time scale —
//! through the same engine calls `swing plan` and `swing apply` make (validate, compile,
//! render; wiring, `apply_site`) — while the prober measures what a client sees. Ends with
//! the final report, including the measured downtime. Needs nothing but this binary.
//!
//! Owns: the demo's orchestration and its terminal output. Must not: implement any engine
//! step itself, talk to anything but loopback, or print a secret (the plan references its
//! secrets as `${file:...}` in the temporary directory).

pub mod kit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use swing_engine::apply::site::{SiteApply, SiteOutcome, apply_site};
use swing_engine::apply::{ApplyEvent, ApplyReport, ClientDowntime, Outcome, WalkOptions};
use swing_providers::probe::{ProbeReport, Prober, Route};

use kit::{DNS_OLD_TTL, DnsSetup, Lab, LabOptions, SITE, Scenario, TIME_SCALE_45MIN_IN_2S, ZONE};

/// Arguments of `swing demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Scenario: async-shared-ip (default), async-dns, async-dns-final-primary, sync,
    /// single, single-manual, migration. (async-nat needs root and network namespaces:
    /// see the end-to-end tests.)
    #[arg(default_value = "async-shared-ip")]
    pub scenario: String,
    /// Real seconds per simulated second (default: a 45-minute install takes 2 s).
    #[arg(long, default_value_t = TIME_SCALE_45MIN_IN_2S)]
    pub time_scale: f64,
    /// Milliseconds between client probes.
    #[arg(long, default_value_t = 50)]
    pub probe_interval_ms: u64,
    /// Keep the lab directory (plan, journal, backups) here instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
}

/// What one demo run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub outcome: String,
    pub makespan: Duration,
    pub probe: ProbeReport,
    /// The apply's final report, with the client's measured downtime in it.
    pub report: Option<ApplyReport>,
    /// Problems with the final state (empty when the change reached its goal).
    pub problems: Vec<String>,
}

/// Runs `swing demo`; returns the exit code.
pub fn run(args: &DemoArgs) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(demo(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

async fn demo(args: &DemoArgs) -> anyhow::Result<i32> {
    let scenario: Scenario = args
        .scenario
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    if scenario == Scenario::AsyncNat {
        anyhow::bail!(
            "the nat scenario needs root and network namespaces (nftables DNAT); it runs in the end-to-end tests (tests/e2e.rs, async_nat)"
        );
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 1.0) {
        anyhow::bail!("--time-scale must be within (0, 1]");
    }
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            std::path::absolute(d)?
        }
        None => tmp.path().to_path_buf(),
    };
    println!(
        "swing demo: scenario {} — simulated appliances on loopback, operator: sim",
        scenario.name()
    );
    println!(
        "time scale {:.6} (a 45-minute install takes {:.1} s); lab directory {}\n",
        args.time_scale,
        2700.0 * args.time_scale,
        dir.display()
    );
    let options = LabOptions {
        time_scale: args.time_scale,
        state_estimates: true,
        ..LabOptions::default()
    };
    let result = run_scenario(
        scenario,
        &dir,
        options,
        Duration::from_millis(args.probe_interval_ms.max(1)),
        true,
    )
    .await?;
    print_final(scenario, &result);
    Ok(if result.outcome == "done" && result.problems.is_empty() {
        0
    } else {
        1
    })
}

/// Starts the lab for `scenario` in `dir`, shows the plan (when `verbose`), applies it with
/// the prober running, and returns what was measured. Used by the demo and the benchmark.
pub async fn run_scenario(
    scenario: Scenario,
    dir: &std::path::Path,
    options: LabOptions,
    probe_interval: Duration,
    verbose: bool,
) -> anyhow::Result<RunResult> {
    let lab = Lab::start(scenario, dir, options)
        .await
        .context("starting the simulators")?;
    if verbose {
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
    // The dns scenarios: the embedded authoritative server, the record on the first appliance.
    let mut dns_server = None;
    let dns = if scenario.uses_dns() {
        let secret = swing_providers::dns_server::generate_tsig_secret()?;
        let key = swing_providers::rfc2136::TsigKey {
            name: "swing-demo".into(),
            algorithm: swing_schema::TsigAlgorithm::HmacSha256,
            secret: secret.clone(),
        };
        let first = lab.first_address().context("the lab has no appliance")?;
        let record = swing_providers::dns_server::EmbeddedRecord::new(SITE, first, DNS_OLD_TTL);
        let server = swing_providers::dns_server::start_embedded(ZONE, &[record], key).await?;
        if verbose {
            println!(
                "  DNS {} serves {SITE} → {first} (TTL {DNS_OLD_TTL} s)",
                server.addr
            );
        }
        let setup = DnsSetup {
            server: server.addr,
            key_name: "swing-demo".into(),
            secret,
        };
        dns_server = Some(server);
        Some(setup)
    } else {
        None
    };
    let plan_path = lab.write_plan(dns.as_ref(), None)?;

    // `swing plan`: validate, compile, render.
    let checked = swing_engine::validate::check_file(&plan_path);
    let plan = checked.plan.ok_or_else(|| {
        let msgs: Vec<String> = checked.diagnostics.iter().map(|d| d.to_string()).collect();
        anyhow::anyhow!("the demo plan is not valid:\n  {}", msgs.join("\n  "))
    })?;
    let source = plan_path.display().to_string();
    let compiled = swing_engine::compile::compile(
        &plan,
        &swing_engine::compile::CompileOptions {
            offline: false,
            file: Some(source.clone()),
        },
    )?;
    if verbose {
        println!("\n$ swing plan {source}\n");
        let view = swing_engine::view::build(&compiled);
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

    // The client's view.
    let route = match (&dns, lab.direct_route()) {
        (Some(d), _) => Route::Dns { server: d.server },
        (None, Some(r)) => r,
        (None, None) => anyhow::bail!("no client route for {}", scenario.name()),
    };
    let mut probe_cfg = lab.probe_config(route);
    probe_cfg.interval = probe_interval;
    probe_cfg.timeout = Duration::from_secs(1);
    let probe = Prober::start(probe_cfg)?;
    let up = kit::wait_until(Duration::from_secs(10), || {
        probe.last().is_some_and(|r| r.ok)
    })
    .await;
    if !up {
        anyhow::bail!(
            "the site does not answer before the change: {}",
            probe.report().summary()
        );
    }

    // `swing apply --auto-approve`: wiring, then the engine's apply.
    let providers = crate::wiring::build(&plan, dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t0 = Instant::now();
    let events: swing_engine::apply::EventSink = if verbose {
        Arc::new(move |e: &ApplyEvent| print_event(t0, e))
    } else {
        Arc::new(|_: &ApplyEvent| {})
    };
    let walk = WalkOptions {
        parallelism: usize::try_from(plan.policy.parallelism).unwrap_or(1).max(1),
        confirmed: scenario
            .confirmations()
            .iter()
            .map(|c| c.to_string())
            .collect(),
        windows: plan.windows.clone(),
        // The same polling as `swing apply`: the lab plan states the time scale's durations,
        // and the walker polls each step relative to its estimate.
        events,
        ..WalkOptions::default()
    };
    let req = SiteApply {
        plan: plan.clone(),
        saved: None,
        source,
        base_dir: dir.to_path_buf(),
        state_dir: dir.join(".swing"),
        resume: false,
        walk,
    };
    let result = apply_site(req, providers).await;
    let makespan = t0.elapsed();
    // Let the prober see the settled end state.
    kit::settle(&lab, &probe).await;
    let report = probe.stop().await;
    if let Some(d) = dns_server {
        d.shutdown().await;
    }
    let (outcome, mut apply_report) = match result {
        Ok(SiteOutcome::Ran(r)) => {
            let name = match &r.outcome {
                Outcome::Failed { root_cause, .. } => {
                    format!("failed at {}: {}", root_cause.step, root_cause.message)
                }
                other => other.name().to_string(),
            };
            (name, Some(r.report))
        }
        Ok(SiteOutcome::NoChanges) => ("no changes".to_string(), None),
        Err(e) => (format!("error: {e}"), None),
    };
    let mut problems = lab.check_final_state();
    if let Err(e) = report.check_served_by(scenario.expected_sequence()) {
        problems.push(e);
    }
    // The client's view becomes part of the apply's report.
    if let Some(r) = apply_report.as_mut() {
        r.client_downtime = Some(client_downtime(&report));
    }
    if verbose {
        println!();
        for (name, st) in lab.final_states() {
            println!(
                "  appliance {name:<4} version {}  role {}  shared IPs {:?}  healthy {}",
                st.version, st.role, st.shared_ips, st.healthy
            );
        }
    }
    lab.shutdown().await;
    Ok(RunResult {
        outcome,
        makespan,
        probe: report,
        report: apply_report,
        problems,
    })
}

/// The prober's measurement, as the apply report carries it.
fn client_downtime(p: &ProbeReport) -> ClientDowntime {
    ClientDowntime {
        longest_outage_ms: p.longest_outage_ms,
        outages: p.outages.len(),
        total_outage_ms: p.total_outage_ms,
        probes: p.probes,
        interval_ms: p.interval_ms,
        served_by: p.sequence(),
    }
}

fn print_event(t0: Instant, e: &ApplyEvent) {
    let t = t0.elapsed().as_secs_f64();
    match e {
        ApplyEvent::StepStarted { step, title, .. } => println!("  {t:7.2}s  ▶ {step:<22} {title}"),
        ApplyEvent::StepSucceeded { step, duration_ms } => {
            println!(
                "  {t:7.2}s  ✓ {step:<22} {:.2} s",
                *duration_ms as f64 / 1000.0
            )
        }
        ApplyEvent::StepFailed { step, message } => println!("  {t:7.2}s  ✗ {step:<22} {message}"),
        ApplyEvent::StepWaiting { step, reason } => println!("  {t:7.2}s  ⏸ {step:<22} {reason}"),
        ApplyEvent::StepSkipped { step, because } => {
            println!("  {t:7.2}s  – {step:<22} skipped: {because}")
        }
        _ => {}
    }
}

fn print_final(scenario: Scenario, r: &RunResult) {
    println!("\n== Final report: {} ==", scenario.name());
    println!("apply outcome:               {}", r.outcome);
    println!(
        "apply makespan:              {:.2} s",
        r.makespan.as_secs_f64()
    );
    if let Some(rep) = &r.report {
        print!("{}", super::apply::report_text(rep));
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

#[cfg(test)]
mod tests {
    use super::super::apply::report_text;
    use super::*;

    #[test]
    fn the_report_text_leads_with_the_client_measured_downtime() {
        let report = ApplyReport {
            outcome: "done".into(),
            steps: Vec::new(),
            steps_run: 0,
            downtime_ms: 2_700,
            unprotected_ms: 5_500,
            backups: Vec::new(),
            root_cause: None,
            waiting: Vec::new(),
            skipped: Vec::new(),
            client_downtime: Some(ClientDowntime {
                longest_outage_ms: 850,
                outages: 1,
                total_outage_ms: 850,
                probes: 120,
                interval_ms: 50,
                served_by: vec!["a".into(), "b".into()],
            }),
        };
        let text = report_text(&report);
        assert!(
            text.contains("downtime (measured):         0.850 s"),
            "{text}"
        );
        assert!(text.contains("served by a → b"), "{text}");
        assert!(
            text.contains("downtime steps (engine):     2.70 s"),
            "{text}"
        );
        let without = ApplyReport {
            client_downtime: None,
            ..report
        };
        assert!(report_text(&without).contains("no client probe ran"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_demo_apply_report_carries_the_downtime_the_client_measured() {
        let dir = tempfile::tempdir().unwrap();
        let options = LabOptions {
            state_estimates: true,
            jump_clients: 5,
            ..LabOptions::default()
        };
        let r = run_scenario(
            Scenario::SingleAutomatic,
            dir.path(),
            options,
            Duration::from_millis(50),
            false,
        )
        .await
        .unwrap();
        assert_eq!(r.outcome, "done");
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let report = r.report.expect("the apply ran");
        let c = report.client_downtime.as_ref().expect("measured downtime");
        // The single appliance is down while it installs: the client saw that outage.
        assert!(c.longest_outage_ms > 0);
        assert_eq!(c.longest_outage_ms, r.probe.longest_outage_ms);
        assert_eq!(c.served_by, vec!["main".to_owned()]);
        assert!(report_text(&report).contains(&format!(
            "downtime (measured):         {:.3} s",
            c.longest_outage_ms as f64 / 1000.0
        )));
    }
}
