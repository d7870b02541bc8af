//! The one reader of a change's journal: folds its records once, oldest first, into
//! everything any consumer asks of an apply's past — what `--resume` continues from
//! ([`ResumeState`]), when each step started, acted and finished (the report and the
//! executor's timing), the backups written, what a step observed before acting, and the
//! runs' recorded steps and source (`--resume` without a plan).
//!
//! Every consumer reads the journal through [`History::fold`]; nobody else walks records.
//! Owns: the meaning of a sequence of records. Must not: write records, read files (the
//! [`Journal`](super::Journal) does), or know what a step does.

use std::collections::BTreeMap;

use super::journal::{Artifact, Entry, Prior, Record, ResumeState, WaitKind};

/// One step's past, across every run of the change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepHistory {
    /// `in-flight`, `succeeded`, `failed`, `waiting` or `skipped` (`""` when only actions
    /// were recorded).
    pub status: &'static str,
    /// When its current attempt started (cleared by a failure).
    pub started: Option<i64>,
    /// When it first started.
    pub first_started: Option<i64>,
    /// When it last succeeded.
    pub finished: Option<i64>,
    /// When it last started or sent its action.
    pub acted: Option<i64>,
    /// When its action first completed.
    pub first_done: Option<i64>,
    /// When its action first completed or it first succeeded, whichever came first.
    pub first_done_or_succeeded: Option<i64>,
    /// What it last observed before acting (`step-observed`).
    pub observed: Option<serde_json::Value>,
    /// What it observed when it was last verified (`step-succeeded`).
    pub verified: Option<serde_json::Value>,
    /// The message of each failure, oldest first.
    pub failures: Vec<String>,
    /// What it waits for since the last run paused there (cleared when it starts).
    pub waiting: Option<(Option<WaitKind>, String)>,
    /// When a run first paused for a person's confirmation of it since it last started:
    /// when the person was told to act.
    pub offered: Option<i64>,
    /// Who confirmed it (the latest confirmation), when, and their note.
    pub confirmed_by: Option<String>,
    pub confirmed_at: Option<i64>,
    pub note: Option<String>,
    /// What a probing client saw while it last ran, or why the prober could not watch it.
    pub client: Option<Result<crate::provider::ClientDowntime, String>>,
}

/// A change's journal, folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// What `--resume` needs.
    pub resume: ResumeState,
    pub steps: BTreeMap<String, StepHistory>,
    /// Artifacts of completed actions (configuration backups), in order.
    pub artifacts: Vec<Artifact>,
    /// The steps the first run recorded (what `--resume` runs).
    pub first_run_steps: Option<Vec<String>>,
    /// Where the latest run's plan came from.
    pub last_source: Option<Option<String>>,
    /// Every run of the change, oldest first.
    pub runs: Vec<RunInfo>,
    /// How the latest run ended (`done`, `paused`, `failed`); `None` while it has not (it
    /// runs, or it died).
    pub last_outcome: Option<String>,
    /// When the latest run started.
    pub last_run_started: Option<i64>,
    /// `(actor, reason)` when a person abandoned the change (`swing apply --abandon`); the
    /// change then counts as finished.
    pub abandoned: Option<(String, String)>,
}

/// One run of the change, as its records tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    pub started: i64,
    pub resume: bool,
    pub host: String,
    pub pid: u32,
    pub digest: String,
    /// How it ended (`done`, `paused`, `failed`); `None` when it ended without a record.
    pub outcome: Option<String>,
}

fn was_sent(p: Option<&Prior>) -> bool {
    matches!(
        p,
        Some(Prior::InFlight { action_sent: true })
            | Some(Prior::Failed {
                action_sent: true,
                ..
            })
    )
}

impl History {
    /// Folds records, oldest first.
    pub fn fold(records: &[Record]) -> History {
        let mut h = History::default();
        let st = &mut h.resume;
        st.any = !records.is_empty();
        for r in records {
            let ts = r.ts_ms;
            match &r.entry {
                Entry::RunStarted {
                    plan_digest,
                    steps,
                    source,
                    resume,
                    pid,
                    host,
                } => {
                    h.runs.push(RunInfo {
                        started: ts,
                        resume: *resume,
                        host: host.clone(),
                        pid: *pid,
                        digest: plan_digest.clone(),
                        outcome: None,
                    });
                    st.plan_digest = Some(plan_digest.clone());
                    st.finished = false;
                    h.last_outcome = None;
                    h.last_run_started = Some(ts);
                    h.abandoned = None;
                    h.first_run_steps.get_or_insert_with(|| steps.clone());
                    h.last_source = Some(source.clone());
                }
                Entry::StepStarted { step } => {
                    let sent = was_sent(st.steps.get(step));
                    st.steps
                        .insert(step.clone(), Prior::InFlight { action_sent: sent });
                    let s = h.steps.entry(step.clone()).or_default();
                    s.started.get_or_insert(ts);
                    s.first_started.get_or_insert(ts);
                    s.status = "in-flight";
                    s.acted = Some(ts);
                    s.waiting = None;
                    s.offered = None;
                }
                Entry::ActionSent { step } => {
                    st.steps
                        .insert(step.clone(), Prior::InFlight { action_sent: true });
                    h.steps.entry(step.clone()).or_default().acted = Some(ts);
                }
                Entry::ActionDone { step, artifacts } => {
                    st.steps
                        .insert(step.clone(), Prior::InFlight { action_sent: true });
                    h.artifacts.extend(artifacts.iter().cloned());
                    let s = h.steps.entry(step.clone()).or_default();
                    s.first_done.get_or_insert(ts);
                    s.first_done_or_succeeded.get_or_insert(ts);
                }
                Entry::StepSucceeded { step, observed } => {
                    st.steps.insert(step.clone(), Prior::Succeeded);
                    let s = h.steps.entry(step.clone()).or_default();
                    s.verified = Some(observed.clone());
                    s.status = "succeeded";
                    s.finished = Some(ts);
                    s.first_done_or_succeeded.get_or_insert(ts);
                }
                Entry::StepFailed {
                    step,
                    message,
                    no_retry,
                } => {
                    let sent = was_sent(st.steps.get(step));
                    st.steps.insert(
                        step.clone(),
                        Prior::Failed {
                            message: message.clone(),
                            no_retry: *no_retry,
                            action_sent: sent,
                        },
                    );
                    let s = h.steps.entry(step.clone()).or_default();
                    s.status = "failed";
                    s.started = None;
                    s.failures.push(message.clone());
                }
                Entry::StepConfirmed { step, actor, note } => {
                    st.confirmed.insert(step.clone());
                    let s = h.steps.entry(step.clone()).or_default();
                    s.confirmed_by = actor.clone();
                    s.confirmed_at = Some(ts);
                    s.note = note.clone();
                }
                Entry::RunFinished { outcome } => {
                    st.finished = outcome == "done";
                    h.last_outcome = Some(outcome.clone());
                    if let Some(r) = h.runs.last_mut() {
                        r.outcome = Some(outcome.clone());
                    }
                }
                Entry::Abandoned { reason, actor } => {
                    st.finished = true;
                    h.abandoned = Some((actor.clone(), reason.clone()));
                }
                Entry::StepWaiting { step, reason, kind } => {
                    let s = h.steps.entry(step.clone()).or_default();
                    if s.status != "succeeded" {
                        s.status = "waiting";
                        s.waiting = Some((*kind, reason.clone()));
                        if *kind == Some(WaitKind::Confirmation) {
                            s.offered.get_or_insert(ts);
                        }
                    }
                }
                Entry::StepSkipped { step, .. } => {
                    h.steps.entry(step.clone()).or_default().status = "skipped";
                }
                Entry::StepObserved { step, observed } => {
                    h.steps.entry(step.clone()).or_default().observed = Some(observed.clone());
                }
                Entry::ClientMeasured { step, downtime } => {
                    h.steps.entry(step.clone()).or_default().client = Some(Ok(downtime.clone()));
                }
                Entry::ProbeFailed { step, message } => {
                    h.steps.entry(step.clone()).or_default().client = Some(Err(message.clone()));
                }
                // Delivery of a notification says nothing about the steps.
                Entry::NotificationFailed { .. } => {}
            }
        }
        h
    }

    /// Whether the journal holds an apply that started and did not finish.
    pub fn unfinished(&self) -> bool {
        self.resume.any && !self.resume.finished
    }
}
