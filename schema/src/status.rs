//! Where a change stands (`swing status`): the model the status renderers read and
//! `status --format json` prints, built by the engine from the plan, the journal and the lock.
//!
//! Owns the shape of that answer — fields other tools read: `outcome`, `phase`, `steps_done`,
//! `steps_total`, `waiting` (`step`, `kind`, `reason`), `unprotected_s`, `lock` (`holder`,
//! `pid`, `host`, `since`) — which may grow, never be renamed. Must not: compute anything.

use serde::{Deserialize, Serialize};

use crate::output::Phase;

/// The status of one change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// `1`.
    pub format_version: u32,
    /// The plan's `name` (the change) and `site`.
    pub change: String,
    pub site: String,
    /// `not-started`, `running`, `paused`, `failed` or `done`.
    pub outcome: String,
    /// The phase of the first step not done yet (`None` when every step is done).
    pub phase: Option<Phase>,
    pub steps_done: usize,
    pub steps_total: usize,
    /// What the change waits for now.
    pub waiting: Vec<StatusWait>,
    /// Time without failover protection so far: since `failover.break` was verified, until
    /// `failover.establish` was (wall clock), seconds.
    pub unprotected_s: u64,
    /// Who holds the site's apply lock (`None`: nobody).
    pub lock: Option<StatusLock>,
    /// The next maintenance window that has not ended.
    pub next_window: Option<StatusWindow>,
    /// The person confirmations so far.
    pub confirmations: Vec<StatusConfirmation>,
    /// The last journal records, oldest first.
    pub last_events: Vec<StatusEvent>,
    /// Why the change stopped early: a failed step, a run that died, an abandonment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One thing the change waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusWait {
    pub step: String,
    /// `confirmation` (a person), `window` (a maintenance window to open) or `condition`
    /// (a step in flight waiting for what it checks).
    pub kind: String,
    pub reason: String,
    /// What the person does (a confirmation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instructions: Vec<String>,
    /// When the step gives up (a condition), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

/// The holder of the site's lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusLock {
    /// The change holding it.
    pub holder: String,
    pub pid: u32,
    pub host: String,
    /// RFC 3339.
    pub since: String,
    /// The holder's last heartbeat, RFC 3339; an old one means the holder died.
    pub heartbeat: String,
    /// Whether the heartbeat is recent (the holder is most likely running).
    pub live: bool,
}

/// A maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusWindow {
    pub name: String,
    pub start: String,
    pub end: String,
    /// Whether it is open now.
    pub open: bool,
}

/// A person's confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusConfirmation {
    pub step: String,
    pub actor: Option<String>,
    pub note: Option<String>,
    /// RFC 3339.
    pub at: String,
}

/// A journal record, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    /// RFC 3339.
    pub at: String,
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
}
