//! The step vocabulary of an apply: what the walker knows about a step ([`StepSpec`],
//! [`StepKind`]), what an executor answers ([`Check`], [`StepError`]), the seams the walk is
//! run through ([`StepExecutor`], [`Prompter`], [`Clock`], [`EventSink`], [`WalkOptions`],
//! [`PollPolicy`]) and how a walk ends ([`Outcome`], [`Failure`], [`Waiting`],
//! [`WalkResult`], [`WalkError`]).
//!
//! Owns: these types and their small rules (poll backoff, outcome names). Must not:
//! schedule, journal or run anything — the algorithm is [`super::walker`]'s.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use swing_schema::Window;

use super::events::{ApplyEvent, ApplyReport};
use super::journal::{Artifact, Entry, Journal, JournalError};
use crate::notify::Notifier;
use crate::provider::ProviderError;

/// Step kinds of `procedures.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    Auto,
    Operator,
    Wait,
    Gate,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Auto => "auto",
            StepKind::Operator => "operator",
            StepKind::Wait => "wait",
            StepKind::Gate => "gate",
        }
    }
}

/// What the walker needs to know about a step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    /// Step id from `procedures.md` (`b.install`, `switch.to-b`, …).
    pub id: String,
    pub title: String,
    pub kind: StepKind,
    pub depends_on: Vec<String>,
    /// The maintenance window the step must start in.
    pub window: Option<String>,
    /// Whether acting twice is harmless. A non-idempotent step whose action may have been
    /// sent is never sent again; it is only re-observed.
    pub idempotent: bool,
    /// A person must confirm it (every gate; operator steps without an automation bridge).
    pub needs_person: bool,
    /// Exact instructions for the person.
    pub instructions: Vec<String>,
    pub downtime: bool,
    /// Whether the step ends or restores the pair's failover protection: the report measures
    /// the time without it by the wall clock, from the break verified to the establish
    /// verified (across pauses and runs).
    pub protection: Protection,
    /// How long the postcondition may take to hold after acting.
    pub verify_timeout: Duration,
    /// How long the step is expected to take (its estimate); caps the polling interval
    /// (see [`PollPolicy::interval_cap`]). Zero: unknown.
    pub expected: Duration,
    /// A failure must not be retried automatically (an install).
    pub no_retry: bool,
    /// The action observes the world before it changes anything and does only what is still
    /// missing (a switch: it turns the shared IP off where it still is, on where it is not
    /// yet), so after a crash in the middle of it acting again finishes it instead of waiting
    /// for a postcondition that nothing will make hold.
    pub reentrant: bool,
    /// What to tell the user when the step fails (the guide's advice, the abort path).
    pub failure_advice: Vec<String>,
}

impl StepSpec {
    /// A step with neutral defaults (tests and adapters fill in the rest).
    pub fn new(id: impl Into<String>, kind: StepKind, depends_on: &[&str]) -> StepSpec {
        let id = id.into();
        StepSpec {
            title: id.clone(),
            id,
            kind,
            depends_on: depends_on.iter().map(|s| (*s).to_owned()).collect(),
            window: None,
            idempotent: true,
            needs_person: kind == StepKind::Gate,
            instructions: Vec::new(),
            downtime: false,
            protection: Protection::Unchanged,
            verify_timeout: Duration::from_secs(60),
            expected: Duration::ZERO,
            no_retry: false,
            reentrant: false,
            failure_advice: Vec::new(),
        }
    }
}

/// What a step does to the pair's failover protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protection {
    #[default]
    Unchanged,
    /// `failover.break`: once verified, the pair runs without failover.
    Breaks,
    /// `failover.establish`: once verified, the pair is protected again.
    Restores,
}

/// Result of observing a step's postcondition.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// It holds; the observed values are journaled.
    Holds(serde_json::Value),
    /// Not yet, and why (shown while polling).
    NotYet(String),
}

/// A step could not be performed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    pub message: String,
    /// Trying again may help (network trouble).
    pub retryable: bool,
}

impl StepError {
    pub fn fatal(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: false,
        }
    }
}

impl From<ProviderError> for StepError {
    fn from(e: ProviderError) -> Self {
        StepError {
            retryable: e.retryable(),
            message: e.message,
        }
    }
}

/// Performs and observes steps. The walker never calls `act` for gates or for steps a
/// person performs (`needs_person`); it always calls `verify`.
#[async_trait]
pub trait StepExecutor: Send + Sync {
    /// Checks what must hold before acting (e.g. the appliance answers, has the role the plan
    /// expects). Not called when only re-observing.
    async fn precondition(&self, _step: &StepSpec) -> Result<(), StepError> {
        Ok(())
    }
    /// Performs the step; returns files it wrote (backups).
    async fn act(&self, step: &StepSpec) -> Result<Vec<Artifact>, StepError>;
    /// Observes the postcondition.
    async fn verify(&self, step: &StepSpec) -> Result<Check, StepError>;
    /// After a crash while the step's action was being sent: whether it reached the world
    /// (`Some(true)`: it did — an install that started; `Some(false)`: it did not, sending it
    /// is safe), or `None` when that cannot be told (then the step is only re-observed).
    async fn action_reached(&self, _step: &StepSpec) -> Result<Option<bool>, StepError> {
        Ok(None)
    }
    /// A person-step was put before a person at `at_ms` (asked at the prompt, or the run
    /// pauses for it): what the person does from now on counts for the step — a Sync Now
    /// clicked before confirming, as the instructions say, is such an act.
    fn offered(&self, _step: &StepSpec, _at_ms: i64) {}
    /// Hands over the walk's [`Recorder`] before the first step runs, for what a step must
    /// keep across a crash beyond the walker's own records (what it observed before acting).
    fn journal_opened(&self, _recorder: Recorder) {}
}

/// The one record an executor may add to the walk's journal: what a step observed before
/// acting (kept across a crash, e.g. the DNS TTL seen before lowering it). The walker makes
/// it and hands it over ([`StepExecutor::journal_opened`]); the executor never holds the
/// journal itself.
#[derive(Clone)]
pub struct Recorder {
    journal: Arc<Journal>,
}

impl Recorder {
    pub(super) fn new(journal: Arc<Journal>) -> Recorder {
        Recorder { journal }
    }

    /// Journals (fsync'd) what `step` observed before acting.
    pub fn observed(&self, step: &str, observed: serde_json::Value) -> Result<(), JournalError> {
        self.journal.append(Entry::StepObserved {
            step: step.to_owned(),
            observed,
        })?;
        Ok(())
    }
}

/// Asks a person to confirm a step (a TTY prompt). `false` = not now (apply pauses).
#[async_trait]
pub trait Prompter: Send + Sync {
    async fn confirm(&self, step: &StepSpec) -> bool;
}

/// The engine's clock, replaceable in tests.
pub trait Clock: Send + Sync {
    /// UNIX milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        super::journal::now_ms()
    }
}

/// Backoff of postcondition polling: the first observation right after acting, then at
/// intervals growing with the time the step has taken, capped relative to what it is
/// expected to take ([`PollPolicy::next_delay`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Attempts for a retryable action error of an idempotent step.
    pub act_attempts: u32,
}

impl Default for PollPolicy {
    /// Short first intervals (most postconditions hold within moments of acting), at most
    /// 15 s between observations, and never more than 1 % of the step's expected duration:
    /// a step expected to take 30 minutes is seen to complete within 15 s of completing, one
    /// expected to take 3 s within 30 ms.
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(20),
            max: Duration::from_secs(15),
            act_attempts: 3,
        }
    }
}

impl PollPolicy {
    /// The longest interval between two observations of `step`'s postcondition:
    /// `step.expected / 100`, within `[initial, max]` (`max` when the duration is unknown).
    pub fn interval_cap(&self, step: &StepSpec) -> Duration {
        if step.expected.is_zero() {
            return self.max;
        }
        (step.expected / 100).clamp(self.initial.min(self.max), self.max)
    }

    /// The wait before the next observation of a step that has run for `elapsed`: an eighth
    /// of `elapsed` (so completion is seen at most 12.5 % late, whatever the estimate says),
    /// at least `initial`, at most [`PollPolicy::interval_cap`].
    pub fn next_delay(&self, step: &StepSpec, elapsed: Duration) -> Duration {
        let cap = self.interval_cap(step);
        (elapsed / 8).max(self.initial).min(cap)
    }
}

/// Receives progress events.
pub type EventSink = Arc<dyn Fn(&ApplyEvent) + Send + Sync>;

/// How to walk.
#[derive(Clone)]
pub struct WalkOptions {
    pub parallelism: usize,
    /// Steps confirmed up front (`--confirm STEP`, repeatable).
    pub confirmed: BTreeSet<String>,
    pub windows: Vec<Window>,
    pub poll: PollPolicy,
    pub clock: Arc<dyn Clock>,
    pub prompter: Option<Arc<dyn Prompter>>,
    pub events: EventSink,
    /// Who confirms in this run (recorded with every confirmation), and their note.
    pub actor: String,
    pub note: Option<String>,
    /// Who hears about the apply pausing, failing and ending (`notify` in the plan).
    pub notifiers: Vec<Arc<dyn Notifier>>,
    /// The client's-eye prober that watches every step that can take the site down
    /// ([`StepSpec::downtime`]) from its start until it is verified; `None`: no probe.
    pub probe: Option<Arc<dyn crate::provider::ClientProbe>>,
    /// Appliance id → the plan's name, for the prober's "served by".
    pub probe_labels: std::collections::BTreeMap<String, String>,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            parallelism: 4,
            confirmed: BTreeSet::new(),
            windows: Vec::new(),
            poll: PollPolicy::default(),
            clock: Arc::new(SystemClock),
            prompter: None,
            events: Arc::new(|_| {}),
            actor: String::new(),
            note: None,
            notifiers: Vec::new(),
            probe: None,
            probe_labels: std::collections::BTreeMap::new(),
        }
    }
}

/// The step that failed first, and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub step: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advice: Vec<String>,
}

/// Why a step waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum WaitReason {
    /// A person must confirm it (`--confirm STEP`).
    Confirmation { instructions: Vec<String> },
    /// Its window has not started.
    Window { window: String, starts: String },
}

/// A step the apply paused at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub step: String,
    #[serde(flatten)]
    pub reason: WaitReason,
}

impl Waiting {
    /// One line for a person: `waiting for window second (starts …)`.
    pub fn describe(&self) -> String {
        match &self.reason {
            WaitReason::Confirmation { .. } => format!("waiting for confirmation of {}", self.step),
            WaitReason::Window { window, starts } => {
                format!(
                    "waiting for window {window} (starts {starts}) before {}",
                    self.step
                )
            }
        }
    }
}

/// The exact command that continues an apply paused at `waiting`: `swing apply --resume`,
/// a `--confirm STEP` for each step waiting for a person, then `source` when it is a file
/// that exists (else `--resume` finds the unfinished apply by itself). The paused message and
/// the notifications both show this one.
pub fn resume_command(waiting: &[Waiting], source: Option<&str>) -> String {
    let mut cmd = String::from("swing apply --resume");
    for w in waiting {
        if let WaitReason::Confirmation { .. } = w.reason {
            cmd.push_str(" --confirm ");
            cmd.push_str(&w.step);
        }
    }
    if let Some(source) = source.filter(|s| std::path::Path::new(s).exists()) {
        cmd.push(' ');
        cmd.push_str(source);
    }
    cmd
}

/// How the walk ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Paused {
        waiting: Vec<Waiting>,
    },
    Failed {
        root_cause: Failure,
        skipped: Vec<String>,
    },
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Paused { .. } => "paused",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// The walk's result.
#[derive(Debug, Clone, PartialEq)]
pub struct WalkResult {
    pub outcome: Outcome,
    pub report: ApplyReport,
}

/// The walk could not start or keep its journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    #[error("step {step} depends on unknown step {missing}")]
    UnknownDependency { step: String, missing: String },
    #[error("step {0} appears twice")]
    DuplicateStep(String),
    #[error("the steps form a cycle through {0}")]
    Cycle(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
}
