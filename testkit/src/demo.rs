//! The pieces a whole change in a lab is driven with, shared by `swing demo` and `swing
//! rehearse` (the demo is a rehearsal of the scenario's example plan, `crate::rehearse`):
//! the one place the client's prober is started ([`start_prober`]), the request `swing apply
//! --auto-approve` makes ([`apply_request`], applied through the engine's `ops::apply`), the
//! prober's measurement as the apply report carries it ([`client_downtime`]), the narrator
//! that shows the events, and the lab directory.
//!
//! Must not: print (the caller's [`Narrator`] decides what the terminal shows), build
//! providers itself (the caller passes the binary's wiring, so a rehearsal applies with
//! exactly what `swing apply` uses), implement any engine step, or talk to anything but
//! loopback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use swing_engine::apply::{ApplyEvent, ClientDowntime, EventSink, WalkOptions};
use swing_engine::ops::SiteApply;
use swing_engine::refresh::Providers;
use swing_providers::probe::{ProbeReport, Prober};
use swing_schema::Plan;

use crate::kit::wait_until;

/// What the run shows as it goes; does nothing by default ([`Quiet`]).
pub trait Narrator: Send + Sync {
    /// An apply event, `elapsed` after the rehearsal's apply started.
    fn event(&self, _elapsed: Duration, _event: &ApplyEvent) {}
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
        store: std::sync::Arc::new(swing_engine::apply::LocalStore::new(
            &dir.join(".swing"),
            &dir.join(".swing").join("locks"),
        )),
        resume,
        from_journal: false,
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
