//! Progress events and the final report of an apply.
//!
//! Owns the event vocabulary the walker emits (the CLI draws indicatif bars from it on a TTY,
//! or prints one JSON object per line with `--output json`) and the report computed from the
//! journal, so a resumed apply reports the whole change, not just its last part.
//!
//! Must not: print, or carry secrets (events hold step ids, messages and observations only).

use serde::{Deserialize, Serialize};

use super::journal::{Artifact, Record};
use super::walker::{Failure, StepSpec, Waiting};

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ApplyEvent {
    /// The journal says this step completed in an earlier run; it is not run again.
    StepAlreadyDone {
        step: String,
    },
    StepStarted {
        step: String,
        title: String,
        kind: String,
    },
    /// The postcondition does not hold yet; polling goes on.
    StepPolling {
        step: String,
        detail: String,
        elapsed_ms: u64,
        timeout_ms: u64,
    },
    StepSucceeded {
        step: String,
        duration_ms: u64,
    },
    StepFailed {
        step: String,
        message: String,
    },
    StepWaiting {
        step: String,
        reason: String,
    },
    StepSkipped {
        step: String,
        because: String,
    },
    Finished {
        report: Box<ApplyReport>,
    },
}

/// How one step ended, over all runs of the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    /// `succeeded`, `failed`, `waiting`, `skipped`, `in-flight`, `not-started`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// The final report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// `done`, `paused`, `failed`.
    pub outcome: String,
    pub steps: Vec<StepReport>,
    /// Steps that ran (succeeded) in this invocation.
    pub steps_run: usize,
    /// Measured: summed durations of the steps that cause downtime.
    pub downtime_ms: u64,
    /// Measured: from the first step that leaves the pair unprotected starting to the last
    /// one completing (up to now while the pair is still unprotected).
    pub unprotected_ms: u64,
    pub backups: Vec<Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<Failure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Waiting>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Downtime as a client saw it, when a prober watched the site during the apply
    /// (`swing demo`); `downtime_ms` is the engine's own timing of its downtime steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_downtime: Option<ClientDowntime>,
}

/// What a client probing the site saw during the apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientDowntime {
    /// The longest run of failed probes: the measured downtime, milliseconds.
    pub longest_outage_ms: u64,
    /// Runs of failed probes.
    pub outages: usize,
    /// All outages together, milliseconds.
    pub total_outage_ms: u64,
    pub probes: u64,
    /// Milliseconds between probes (the measurement's resolution).
    pub interval_ms: u64,
    /// The appliances that answered, in order.
    pub served_by: Vec<String>,
}

/// Builds the report from the whole journal of the change (`steps_run` is left 0 for the
/// walker to fill in).
pub fn build_report(
    specs: &[StepSpec],
    records: &[Record],
    now_ms: i64,
    outcome: &str,
    root_cause: Option<Failure>,
    waiting: Vec<Waiting>,
    skipped: Vec<String>,
) -> ApplyReport {
    let past = super::history::History::fold(records);
    let backups = past.artifacts;
    let mut steps = Vec::with_capacity(specs.len());
    let mut downtime_ms = 0u64;
    let (mut unprot_from, mut unprot_to): (Option<i64>, Option<i64>) = (None, None);
    let mut unprot_open = false;
    for s in specs {
        // A step the journal shows only acting (no start, outcome or wait) has no status.
        let a = past.steps.get(&s.id).filter(|a| !a.status.is_empty());
        let status = a
            .map(|a| a.status)
            .filter(|s| !s.is_empty())
            .unwrap_or("not-started");
        let duration_ms = a.and_then(|a| match (a.started, a.finished) {
            (Some(st), Some(fin)) if fin >= st => u64::try_from(fin - st).ok(),
            _ => None,
        });
        if s.downtime {
            downtime_ms += duration_ms.unwrap_or(0);
        }
        if s.unprotected
            && let Some(a) = a
        {
            if let Some(st) = a.first_started {
                unprot_from = Some(unprot_from.map_or(st, |u| u.min(st)));
            }
            match (status, a.finished) {
                ("succeeded", Some(f)) => unprot_to = Some(unprot_to.map_or(f, |u| u.max(f))),
                _ => unprot_open = true,
            }
        }
        steps.push(StepReport {
            id: s.id.clone(),
            status: status.to_owned(),
            duration_ms,
        });
    }
    let unprotected_ms = match (unprot_from, unprot_to, unprot_open) {
        (Some(f), _, true) => u64::try_from(now_ms - f).unwrap_or(0),
        (Some(f), Some(t), false) => u64::try_from(t - f).unwrap_or(0),
        _ => 0,
    };
    ApplyReport {
        outcome: outcome.to_owned(),
        steps,
        steps_run: 0,
        downtime_ms,
        unprotected_ms,
        backups,
        root_cause,
        waiting,
        skipped,
        client_downtime: None,
    }
}
