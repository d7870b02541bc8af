//! One whole change in a lab, as `swing demo` runs it: start the scenario's simulators (and
//! the embedded DNS server for the dns scenarios), write the plan, validate and compile it,
//! start the prober, apply the plan with `operator: sim` through the engine's `ops::apply`
//! (the same calls `swing plan` and `swing apply` make), let the client settle, and collect
//! what was measured — the apply's report with the client's downtime in it.
//!
//! Owns: the order of those steps and the [`RunResult`]. Must not: print (the caller's
//! [`Narrator`] decides what the terminal shows), build providers itself (the caller passes
//! the binary's wiring, so the demo applies with exactly what `swing apply` uses), implement
//! any engine step, or talk to anything but loopback.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use swing_engine::apply::{
    ApplyEvent, ApplyReport, ClientDowntime, EventSink, Outcome, WalkOptions,
};
use swing_engine::compile::CompiledPlan;
use swing_engine::ops::{self, SiteApply, SiteOutcome};
use swing_engine::refresh::Providers;
use swing_providers::probe::{ProbeReport, Prober, Route};
use swing_schema::Plan;

use crate::kit::{
    DNS_OLD_TTL, DnsSetup, Lab, LabOptions, SITE, Scenario, ZONE, settle, wait_until,
};

/// What one run measured.
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

impl RunResult {
    /// The apply finished its change and the final state is as planned.
    pub fn succeeded(&self) -> bool {
        self.outcome == "done" && self.problems.is_empty()
    }
}

/// What the run shows as it goes; every method does nothing by default ([`Quiet`]).
pub trait Narrator: Send + Sync {
    /// The simulators run (their URLs, versions and roles; the shared IP).
    fn lab_started(&self, _lab: &Lab) {}
    /// The embedded DNS server at `server` serves the site at `first`.
    fn dns_started(&self, _server: SocketAddr, _first: IpAddr) {}
    /// The plan at `source` compiled; the apply with a prober every `probe_interval` is next.
    fn plan_compiled(&self, _source: &str, _compiled: &CompiledPlan, _probe_interval: Duration) {}
    /// An apply event, `elapsed` after the apply started.
    fn event(&self, _elapsed: Duration, _event: &ApplyEvent) {}
    /// The apply ended and the client settled; the lab still runs.
    fn finished(&self, _lab: &Lab) {}
}

/// A [`Narrator`] that shows nothing (benchmarks, tests).
pub struct Quiet;

impl Narrator for Quiet {}

/// Builds the providers for a plan the way `swing apply` does (the binary's wiring).
pub type Wiring<'a> = &'a dyn Fn(&Plan, &Path) -> anyhow::Result<Providers>;

/// The lab directory: kept at a given path, or a temporary one removed on drop.
pub struct LabDir {
    pub path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl LabDir {
    pub fn new(keep: Option<&Path>) -> anyhow::Result<LabDir> {
        match keep {
            Some(d) => {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create {}", d.display()))?;
                Ok(LabDir {
                    path: std::path::absolute(d)?,
                    _tmp: None,
                })
            }
            None => {
                let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;
                Ok(LabDir {
                    path: tmp.path().to_path_buf(),
                    _tmp: Some(tmp),
                })
            }
        }
    }
}

/// Starts the lab for `scenario` in `dir`, applies its plan with the prober running, and
/// returns what was measured.
pub async fn run_scenario(
    scenario: Scenario,
    dir: &Path,
    options: LabOptions,
    probe_interval: Duration,
    wiring: Wiring<'_>,
    narrator: Arc<dyn Narrator>,
) -> anyhow::Result<RunResult> {
    let lab = Lab::start(scenario, dir, options)
        .await
        .context("starting the simulators")?;
    narrator.lab_started(&lab);
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
        narrator.dns_started(server.addr, first);
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

    // `swing plan`: validate, compile.
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
    narrator.plan_compiled(&source, &compiled, probe_interval);

    // The client's view.
    let route = match (&dns, lab.direct_route()) {
        (Some(d), _) => Route::Dns { server: d.server },
        (None, Some(r)) => r,
        (None, None) => anyhow::bail!("no client route for {}", scenario.name()),
    };
    let probe = start_prober(lab.probe_config(route), probe_interval).await?;

    // `swing apply --auto-approve`: wiring, then the engine's apply.
    let providers = wiring(&plan, dir)?;
    let t0 = Instant::now();
    let sink = narrator.clone();
    let events: EventSink = Arc::new(move |e: &ApplyEvent| sink.event(t0.elapsed(), e));
    let confirmed = scenario
        .confirmations()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let req = apply_request(&plan, &source, dir, confirmed, false, events);
    let result = ops::apply(req, providers).await;
    let makespan = t0.elapsed();
    // Let the prober see the settled end state.
    settle(&lab, &probe).await;
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
    narrator.finished(&lab);
    lab.shutdown().await;
    Ok(RunResult {
        outcome,
        makespan,
        probe: report,
        report: apply_report,
        problems,
    })
}

/// Starts the client's prober (`interval` between probes, 1 s timeout) and waits until the
/// site answers it; the one place the demo and rehearsals start the prober.
pub async fn start_prober(
    mut cfg: swing_providers::probe::ProbeConfig,
    interval: Duration,
) -> anyhow::Result<swing_providers::probe::ProbeHandle> {
    cfg.interval = interval;
    cfg.timeout = Duration::from_secs(1);
    let probe = Prober::start(cfg)?;
    let up = wait_until(Duration::from_secs(10), || {
        probe.last().is_some_and(|r| r.ok)
    })
    .await;
    if !up {
        anyhow::bail!(
            "the site does not answer before the change: {}",
            probe.report().summary()
        );
    }
    Ok(probe)
}

/// The request `swing apply --auto-approve` makes for `plan` in `dir` (state, journal and
/// lock under `dir/.swing`): steps in `confirmed` confirmed up front, every event to `events`.
pub fn apply_request(
    plan: &swing_engine::validate::ValidPlan,
    source: &str,
    dir: &Path,
    confirmed: std::collections::BTreeSet<String>,
    resume: bool,
    events: EventSink,
) -> SiteApply {
    let walk = WalkOptions {
        parallelism: usize::try_from(plan.policy.parallelism).unwrap_or(1).max(1),
        confirmed,
        windows: plan.windows.clone(),
        // The same polling as `swing apply`: the lab plan states the time scale's durations,
        // and the walker polls each step relative to its estimate.
        events,
        ..WalkOptions::default()
    };
    SiteApply {
        plan: plan.clone(),
        saved: None,
        source: source.to_owned(),
        base_dir: dir.to_path_buf(),
        state_dir: dir.join(".swing"),
        lock_dir: dir.join(".swing").join("locks"),
        resume,
        require_signature: None,
        walk,
    }
}

/// The prober's measurement, as the apply report carries it.
pub fn client_downtime(p: &ProbeReport) -> ClientDowntime {
    ClientDowntime {
        longest_outage_ms: p.longest_outage_ms,
        outages: p.outages.len(),
        total_outage_ms: p.total_outage_ms,
        probes: p.probes,
        interval_ms: p.interval_ms,
        served_by: p.sequence(),
    }
}
