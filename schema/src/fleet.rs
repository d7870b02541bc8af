//! Where a fleet stands (`swing fleet status`, the table `swing fleet apply` ends with): one
//! row per site — its wave, state, phase, what it waits for, measured client downtime and
//! time without failover — and the fleet's verdict, built by the engine's fleet judge from
//! each site's journal and lock.
//!
//! Owns the shape of that answer — fields other tools read: `outcome`, `failures`,
//! `max_failures`, `sites[]` (`site`, `wave`, `state`, `waiting_for`, `downtime_s`,
//! `unprotected_s`) — which may grow, never be renamed. Must not: compute anything.

use serde::{Deserialize, Serialize};

use crate::output::Phase;

/// The status of a fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetView {
    /// `1`.
    pub format_version: u32,
    /// `done`, `running`, `waiting` (a gate, a window or a person), `ready` (sites of an
    /// open wave not started yet), `budget-spent` or `failed` (every site finished, some
    /// failed within the budget).
    pub outcome: String,
    /// One sentence: what the fleet waits for, or why it stopped.
    pub summary: String,
    /// Sites whose change failed.
    pub failures: usize,
    /// `--max-failures` (`None`: no budget).
    pub max_failures: Option<usize>,
    /// The waves, in order.
    pub waves: Vec<FleetWave>,
    /// Every site, in the order the plans were given.
    pub sites: Vec<FleetSite>,
}

/// One wave of sites.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetWave {
    /// 1 for the first (the canary).
    pub number: usize,
    /// The gate a person confirms to start it (`wave-2`; `None` for the first).
    pub gate: Option<String>,
    pub sites: usize,
}

/// One site of a fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSite {
    pub site: String,
    /// The plan's `name` (the change).
    pub change: String,
    /// The plan file or saved plan, as given.
    pub plan: String,
    pub wave: usize,
    /// `not-started`, `running`, `paused`, `interrupted` (its last run died: a resume goes
    /// on), `failed` or `done`.
    pub state: String,
    /// The phase of the first step not done yet.
    pub phase: Option<Phase>,
    pub steps_done: usize,
    pub steps_total: usize,
    /// What the site waits for, or why it did not start (`None`: nothing).
    pub waiting_for: Option<String>,
    /// The longest outage a probing client saw during the change, seconds (`None`: not
    /// measured).
    pub downtime_s: Option<f64>,
    /// Time without failover protection so far, seconds.
    pub unprotected_s: u64,
    /// Who holds the site's lock (`holder (pid P on HOST)`), if anyone.
    pub lock: Option<String>,
    /// Why the change stopped early (a failed step, a run that died, an abandonment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// A fleet's plan (`swing fleet plan`): every site's steps still needed, by wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPlanView {
    /// `1`.
    pub format_version: u32,
    pub waves: Vec<FleetWave>,
    pub sites: Vec<FleetPlanSite>,
}

/// One site of a fleet's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPlanSite {
    pub site: String,
    pub change: String,
    /// The plan file, as given.
    pub plan: String,
    pub wave: usize,
    /// Steps still needed (all of them when planned offline).
    pub steps_needed: usize,
    pub steps_total: usize,
    /// Estimated working time (critical path), expected downtime and time without failover,
    /// seconds.
    pub estimate_s: u64,
    pub downtime_s: u64,
    pub unprotected_s: u64,
    /// Differences the plan does not cover, and resources that could not be observed: the
    /// apply refuses while any.
    pub drift: Vec<String>,
    pub unobserved: Vec<String>,
    /// Error findings of the plan.
    pub errors: u32,
    /// Where its saved plan was written (`--out DIR`), if it was.
    pub saved: Option<String>,
}
