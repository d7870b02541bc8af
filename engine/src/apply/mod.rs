//! Apply: run a compiled plan against the world, resumably.
//!
//! [`run`] takes the site lock, opens the change's journal in the state store ([`store`]),
//! refuses to start over an unfinished earlier apply unless resuming (and refuses to resume
//! a different plan), then hands the steps to the [`walker`].
//!
//! Owns: the order of those checks. The local store's layout is [`store::LocalStore`]'s (the
//! journal `<state>/<change>.journal.jsonl`, finished journals kept as
//! `<change>.journal.<unix-ms>.jsonl`, abandoned ones as `….abandoned-<unix-ms>`; the site
//! lock in the host-wide lock directory, see [`lock`]). Must not: know what a step does (a
//! [`walker::StepExecutor`] does), print, or decide exit codes (the CLI maps
//! [`ApplyError::Locked`] to 4 and a paused outcome to 3).

pub mod abandon;
mod act;
pub mod deliver;
pub mod events;
pub mod exported;
pub mod history;
pub mod journal;
pub mod lock;
mod observe;
pub mod site;
mod spec;
pub mod statefs;
pub mod step;
pub mod store;
pub mod walker;
pub mod window;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use events::{
    ApplyEvent, ApplyReport, ClientDowntime, EVENT_STREAM_VERSION, StepDowntime, StepReport,
    StreamVersion, Unprobed, stream_line, version_line,
};
pub use journal::{Artifact, Entry, Journal, JournalError, Prior, Record, ResumeState, WaitKind};
pub use lock::{LockError, LockGuard, LockHolder, LockKey, LockOptions, force_unlock, lock_path};
pub use spec::step_timeout;
pub use store::{LocalStore, SavedPlanRecord, Store};
pub use walker::{
    Check, Clock, EventSink, Failure, Outcome, PollPolicy, Prompter, Protection, StepError,
    StepExecutor, StepKind, StepSpec, SystemClock, WaitReason, Waiting, WalkError, WalkOptions,
    WalkResult, resume_command, walk,
};

/// What to apply and how.
#[derive(Clone)]
pub struct ApplyRequest {
    /// Where the journal and the site lock live.
    pub store: Arc<dyn Store>,
    /// The change name (plan `name`).
    pub change: String,
    /// The site (plan `site`): one apply per site at a time.
    pub site: String,
    /// Digest of the plan; a resume must apply the same plan.
    pub plan_digest: String,
    /// Where the plan came from (recorded so `--resume` can find it again).
    pub source: Option<String>,
    pub resume: bool,
    pub lock: LockOptions,
    pub walk: WalkOptions,
}

/// Why an apply did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(
        "an earlier apply of {change} stopped before finishing (journal {journal}); continue it with `swing apply --resume`"
    )]
    Unfinished { change: String, journal: String },
    #[error(
        "cannot resume: the journal {journal} belongs to a different plan (digest {journal_digest}, this plan {plan_digest}); finish or abandon that apply first"
    )]
    DifferentPlan {
        journal: String,
        journal_digest: String,
        plan_digest: String,
    },
    #[error("nothing to resume: no unfinished apply of {change} in {state}")]
    NothingToResume { change: String, state: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Walk(#[from] WalkError),
}

/// The default state directory for a plan file: `.swing/` next to it.
pub fn default_state_dir(plan_path: &Path) -> PathBuf {
    plan_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(".swing")
}

/// Runs (or resumes) an apply.
pub async fn run(
    req: &ApplyRequest,
    steps: &[StepSpec],
    exec: Arc<dyn StepExecutor>,
) -> Result<WalkResult, ApplyError> {
    let guard = req.store.lock(&req.site, &req.change, req.lock)?;
    run_locked(req, steps, exec, guard).await
}

/// [`run`] with the site lock already taken (callers that must hold it while they observe).
pub async fn run_locked(
    req: &ApplyRequest,
    steps: &[StepSpec],
    exec: Arc<dyn StepExecutor>,
    mut guard: LockGuard,
) -> Result<WalkResult, ApplyError> {
    guard.start_heartbeat(req.lock.heartbeat_every);
    let records = req.store.records(&req.site, &req.change)?;
    let mut prior = ResumeState::from_records(&records);
    let at = || format!("{} ({})", req.change, req.store.describe());
    if req.resume {
        if !prior.any || prior.finished {
            return Err(ApplyError::NothingToResume {
                change: req.change.clone(),
                state: req.store.describe(),
            });
        }
        if let Some(d) = &prior.plan_digest
            && d != &req.plan_digest
        {
            return Err(ApplyError::DifferentPlan {
                journal: at(),
                journal_digest: d.clone(),
                plan_digest: req.plan_digest.clone(),
            });
        }
    } else if prior.any {
        if !prior.finished {
            return Err(ApplyError::Unfinished {
                change: req.change.clone(),
                journal: at(),
            });
        }
        prior = ResumeState::default();
    }
    // A finished journal is kept for the record; a new apply starts a new one.
    let fresh = !req.resume && !records.is_empty();
    let journal = Arc::new(req.store.journal(&req.site, &req.change, fresh)?);
    journal.append(Entry::RunStarted {
        plan_digest: req.plan_digest.clone(),
        resume: req.resume,
        pid: std::process::id(),
        host: lock::host_name(),
        source: req.source.clone(),
        steps: steps.iter().map(|s| s.id.clone()).collect(),
    })?;
    let result = walk(steps, exec, journal.clone(), &prior, &req.walk).await?;
    // Still under the lock: a failed delivery is journaled in this apply's journal.
    deliver::notify(req, &result.outcome, &journal).await;
    drop(guard);
    Ok(result)
}

/// The steps the first run of the change's current journal recorded (what `--resume` runs).
pub fn journal_steps(
    store: &dyn Store,
    site: &str,
    change: &str,
) -> Result<Vec<String>, JournalError> {
    let records = store.records(site, change)?;
    Ok(history::History::fold(&records)
        .first_run_steps
        .unwrap_or_default())
}

#[cfg(test)]
mod catalogue_tests;
#[cfg(test)]
mod site_tests;
#[cfg(test)]
mod tests;
