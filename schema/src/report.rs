//! The change record (`swing report`): what a finished — or paused, or failed — change did,
//! for the ticket. Built by the engine from the plan, the journal and the saved plan.
//!
//! Owns the shape other tools read: `steps[]` (`id`, `status`, `started`, `finished`,
//! `confirmed_by`, `note`), `downtime_measured_s`, `unprotected_s`, `backups[]` (`path`,
//! `sha256`) — fields may be added, never renamed. Must not: compute anything.

use serde::{Deserialize, Serialize};

/// The record of one change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeReport {
    /// `1`.
    pub format_version: u32,
    pub change: String,
    pub site: String,
    /// Digest of the plan that was applied (the journal's, else the saved plan's).
    pub plan_digest: Option<String>,
    /// Fingerprint of the key that signed the saved plan (`SHA256:…`), when it was signed.
    pub signed_by: Option<String>,
    /// `done`, `running`, `paused`, `failed` or `not-started`, and a sentence saying why.
    pub verdict: String,
    pub verdict_text: String,
    /// Every run of the change (the first apply, then each resume), oldest first.
    pub runs: Vec<ReportRun>,
    pub steps: Vec<ReportStep>,
    /// The longest outage a client saw over all switches, seconds (`None`: no probe ran).
    pub downtime_measured_s: Option<f64>,
    /// What the client saw per switch, when the apply probed the site.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downtime_by_switch: Vec<ReportDowntime>,
    /// Wall clock from `failover.break` verified to `failover.establish` verified, seconds.
    pub unprotected_s: u64,
    pub backups: Vec<ReportBackup>,
}

/// One run (`swing apply`, then each `--resume`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRun {
    /// RFC 3339.
    pub started: String,
    pub resume: bool,
    pub host: String,
    pub pid: u32,
    /// `done`, `paused`, `failed`, or `None` when it ended without saying (killed).
    pub outcome: Option<String>,
}

/// One step of the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportStep {
    pub id: String,
    pub title: String,
    /// `succeeded`, `failed`, `waiting`, `skipped`, `in-flight`, `not-started`.
    pub status: String,
    /// RFC 3339: first start, last success.
    pub started: Option<String>,
    pub finished: Option<String>,
    pub duration_s: Option<f64>,
    pub confirmed_by: Option<String>,
    pub note: Option<String>,
    /// What swing observed when it verified the step.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub observed: serde_json::Value,
    /// Each failure of the step (a resume may have tried again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}

/// What a probing client saw during one switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportDowntime {
    /// The step that moved the site (`switch.to-b`, or an install of a single appliance).
    pub step: String,
    pub longest_outage_s: f64,
    pub outages: usize,
    pub probes: u64,
}

/// A configuration backup written by the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportBackup {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}
