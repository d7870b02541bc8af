//! The generic DAG walker of an apply (tokio).
//!
//! Runs steps whose dependencies succeeded, at most `parallelism` at a time: precondition →
//! act → verify the postcondition by polling with backoff until a timeout. On a failure it
//! stops scheduling, lets running steps finish, skips everything downstream and reports the
//! root cause once. Gates and steps that need a person pause unless confirmed (`--confirm`,
//! an earlier confirmation in the journal, or a prompt); window-bound steps wait for their
//! window. Every transition is journaled (fsync'd) before the walker goes on, and an earlier
//! journal is honoured: completed steps are not run again, an in-flight non-idempotent step
//! is only re-observed, a failed install is never retried.
//!
//! The step vocabulary (specs, checks, errors, outcomes, the executor trait) lives in
//! [`super::step`]; this file is the algorithm.
//!
//! Owns: scheduling, the per-step protocol, the journal records of steps. Must not: know what
//! a step does (that is the [`StepExecutor`]'s job), read the clock directly (a [`Clock`] is
//! passed), print, or decide exit codes.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::events::{ApplyEvent, build_report};
use super::journal::{Entry, Journal, Prior, ResumeState, WaitKind};
use super::window::{WindowState, window_state};
use crate::provider::ProbeSpan;

use super::step::Recorder;
pub use super::step::{
    Check, Clock, EventSink, Failure, Outcome, PollPolicy, Prompter, Protection, StepError,
    StepExecutor, StepKind, StepSpec, SystemClock, WaitReason, Waiting, WalkError, WalkOptions,
    WalkResult, resume_command,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Running,
    Done,
    Failed,
    Waiting,
    Skipped,
}

/// Checks ids, dependencies and acyclicity; returns dependents per index.
fn check_graph(steps: &[StepSpec]) -> Result<Vec<Vec<usize>>, WalkError> {
    let mut idx: HashMap<&str, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        if idx.insert(s.id.as_str(), i).is_some() {
            return Err(WalkError::DuplicateStep(s.id.clone()));
        }
    }
    let mut dependents = vec![Vec::new(); steps.len()];
    let mut indeg = vec![0usize; steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for d in &s.depends_on {
            let j = *idx
                .get(d.as_str())
                .ok_or_else(|| WalkError::UnknownDependency {
                    step: s.id.clone(),
                    missing: d.clone(),
                })?;
            dependents[j].push(i);
            indeg[i] += 1;
        }
    }
    let mut q: VecDeque<usize> = (0..steps.len()).filter(|&i| indeg[i] == 0).collect();
    let mut seen = 0;
    while let Some(i) = q.pop_front() {
        seen += 1;
        for &k in &dependents[i] {
            indeg[k] -= 1;
            if indeg[k] == 0 {
                q.push_back(k);
            }
        }
    }
    if seen != steps.len() {
        let stuck = (0..steps.len())
            .find(|&i| indeg[i] > 0)
            .map(|i| steps[i].id.clone());
        return Err(WalkError::Cycle(stuck.unwrap_or_default()));
    }
    Ok(dependents)
}

struct StepOk {
    duration_ms: u64,
}

/// Walks the steps (in the given order when several are ready).
pub async fn walk(
    steps: &[StepSpec],
    exec: Arc<dyn StepExecutor>,
    journal: Arc<Journal>,
    prior: &ResumeState,
    opts: &WalkOptions,
) -> Result<WalkResult, WalkError> {
    let dependents = check_graph(steps)?;
    let idx: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let emit = |e: ApplyEvent| (opts.events)(&e);
    let mut st = vec![St::Pending; steps.len()];
    for (i, s) in steps.iter().enumerate() {
        if prior.steps.get(&s.id) == Some(&Prior::Succeeded) {
            st[i] = St::Done;
            emit(ApplyEvent::StepAlreadyDone { step: s.id.clone() });
        }
    }
    let mut confirmed: BTreeSet<String> = prior.confirmed.clone();
    let parallelism = opts.parallelism.max(1);
    let mut set: JoinSet<(usize, Result<StepOk, Failure>)> = JoinSet::new();
    let mut running = 0usize;
    let mut failure: Option<Failure> = None;
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut steps_run = 0usize;
    exec.journal_opened(Recorder::new(journal.clone()));

    loop {
        if failure.is_none() {
            for i in 0..steps.len() {
                if running >= parallelism {
                    break;
                }
                let s = &steps[i];
                let ready = st[i] == St::Pending
                    && s.depends_on
                        .iter()
                        .all(|d| idx.get(d.as_str()).is_some_and(|&j| st[j] == St::Done));
                if !ready {
                    continue;
                }
                match window_gate(s, opts) {
                    Gate::Open => {}
                    Gate::Wait(wt) => {
                        pause(&journal, &emit, wt, &mut waiting)?;
                        st[i] = St::Waiting;
                        continue;
                    }
                    Gate::Fail(f) => {
                        fail_now(&journal, &emit, &mut st, i, &f, false)?;
                        failure = Some(f);
                        break;
                    }
                }
                if let Some(wt) =
                    person_gate(s, exec.as_ref(), opts, &mut confirmed, &journal).await?
                {
                    pause(&journal, &emit, wt, &mut waiting)?;
                    st[i] = St::Waiting;
                    continue;
                }
                st[i] = St::Running;
                running += 1;
                let (spec, exec, journal, events) = (
                    s.clone(),
                    exec.clone(),
                    journal.clone(),
                    opts.events.clone(),
                );
                let (poll, prior_step) = (opts.poll, prior.steps.get(&s.id).cloned());
                let probe = spec
                    .downtime
                    .then(|| opts.probe.clone())
                    .flatten()
                    .map(|p| (p, opts.probe_labels.clone()));
                set.spawn(async move {
                    let watch = match &probe {
                        Some((p, labels)) => Some(p.start(labels).await),
                        None => None,
                    };
                    let r =
                        run_step(&spec, exec.as_ref(), &journal, prior_step, poll, &events).await;
                    if let Some(watch) = watch {
                        measured(&spec, watch, r.is_ok(), &journal, &events).await;
                    }
                    (i, r)
                });
            }
        }
        if running == 0 {
            break;
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        running -= 1;
        match joined {
            Ok((i, Ok(ok))) => {
                st[i] = St::Done;
                steps_run += 1;
                emit(ApplyEvent::StepSucceeded {
                    step: steps[i].id.clone(),
                    duration_ms: ok.duration_ms,
                });
            }
            Ok((i, Err(f))) => {
                st[i] = St::Failed;
                emit(ApplyEvent::StepFailed {
                    step: f.step.clone(),
                    message: f.message.clone(),
                });
                failure.get_or_insert(f);
            }
            Err(join_err) => {
                // A panicking executor: treat as a failure of an unknown running step.
                let f = Failure {
                    step: "(internal)".into(),
                    message: format!("a step task ended abnormally: {join_err}"),
                    advice: Vec::new(),
                };
                failure.get_or_insert(f);
            }
        }
    }

    let outcome = if let Some(root) = failure {
        let skipped = skip_downstream(steps, &dependents, &mut st, &root, &journal, &emit)?;
        Outcome::Failed {
            root_cause: root,
            skipped,
        }
    } else if st.iter().all(|s| *s == St::Done) {
        Outcome::Done
    } else {
        Outcome::Paused { waiting }
    };
    finish(steps, &journal, opts, outcome, steps_run)
}

/// Journals and announces what the client saw while a step ran (or why the prober could not
/// watch it). A record that cannot be written changes nothing of the step's outcome: the
/// measurement is evidence, not part of the change.
async fn measured(
    spec: &StepSpec,
    watch: Result<Box<dyn ProbeSpan>, crate::provider::ProviderError>,
    settle: bool,
    journal: &Journal,
    events: &EventSink,
) {
    let (entry, event) = match watch {
        Ok(span) => {
            let downtime = span.stop(settle).await;
            (
                Entry::ClientMeasured {
                    step: spec.id.clone(),
                    downtime: downtime.clone(),
                },
                ApplyEvent::ClientMeasured {
                    step: spec.id.clone(),
                    downtime,
                },
            )
        }
        Err(e) => (
            Entry::ProbeFailed {
                step: spec.id.clone(),
                message: e.message.clone(),
            },
            ApplyEvent::ProbeFailed {
                step: spec.id.clone(),
                message: e.message,
            },
        ),
    };
    let _ = journal.append(entry);
    events(&event);
}

/// Whether a ready step may start now as far as its maintenance window goes.
enum Gate {
    Open,
    Wait(Waiting),
    Fail(Failure),
}

/// The window gate: a window-bound step starts only inside its window, waits for one that
/// has not opened, and fails when its window is over or unknown.
fn window_gate(s: &StepSpec, opts: &WalkOptions) -> Gate {
    let Some(w) = &s.window else {
        return Gate::Open;
    };
    match window_state(&opts.windows, w, opts.clock.now_ms()) {
        WindowState::Open => Gate::Open,
        WindowState::NotYet { starts } => Gate::Wait(Waiting {
            step: s.id.clone(),
            reason: WaitReason::Window {
                window: w.clone(),
                starts: starts.to_rfc3339(),
            },
        }),
        WindowState::Over { ended } => Gate::Fail(Failure {
            step: s.id.clone(),
            message: format!(
                "window {w} ended at {}; {} must not start outside it",
                ended.to_rfc3339(),
                s.id
            ),
            advice: vec![
                "add a new maintenance window to the plan, re-plan, and apply again".into(),
            ],
        }),
        WindowState::Unknown => Gate::Fail(Failure {
            step: s.id.clone(),
            message: format!(
                "step {} names window {w}, which the plan does not define",
                s.id
            ),
            advice: Vec::new(),
        }),
    }
}

/// The person gate: a step that needs a person starts once it is confirmed — earlier (the
/// journal), up front (`--confirm`) or at the prompt; a new confirmation is journaled. `Some`
/// says what the step waits for.
async fn person_gate(
    s: &StepSpec,
    exec: &dyn StepExecutor,
    opts: &WalkOptions,
    confirmed: &mut BTreeSet<String>,
    journal: &Journal,
) -> Result<Option<Waiting>, WalkError> {
    if !s.needs_person || confirmed.contains(&s.id) {
        return Ok(None);
    }
    // Asked now (the prompt), or told now (the pause): the person acts from here on.
    if !opts.confirmed.contains(&s.id) {
        exec.offered(s, opts.clock.now_ms());
    }
    let yes = if opts.confirmed.contains(&s.id) {
        true
    } else if let Some(p) = &opts.prompter {
        p.confirm(s).await
    } else {
        false
    };
    if !yes {
        return Ok(Some(Waiting {
            step: s.id.clone(),
            reason: WaitReason::Confirmation {
                instructions: s.instructions.clone(),
            },
        }));
    }
    journal.append(Entry::StepConfirmed {
        step: s.id.clone(),
        actor: (!opts.actor.is_empty()).then(|| opts.actor.clone()),
        note: opts.note.clone(),
    })?;
    confirmed.insert(s.id.clone());
    Ok(None)
}

/// Journals and announces that a step waits, and keeps it for the paused outcome.
fn pause(
    journal: &Journal,
    emit: &dyn Fn(ApplyEvent),
    wt: Waiting,
    waiting: &mut Vec<Waiting>,
) -> Result<(), WalkError> {
    journal.append(Entry::StepWaiting {
        step: wt.step.clone(),
        reason: wt.describe(),
        kind: Some(match wt.reason {
            WaitReason::Confirmation { .. } => WaitKind::Confirmation,
            WaitReason::Window { .. } => WaitKind::Window,
        }),
    })?;
    emit(ApplyEvent::StepWaiting {
        step: wt.step.clone(),
        reason: wt.describe(),
    });
    waiting.push(wt);
    Ok(())
}

/// Everything downstream of a failed step is skipped (journaled, in step order);
/// independent pending steps are simply not started.
fn skip_downstream(
    steps: &[StepSpec],
    dependents: &[Vec<usize>],
    st: &mut [St],
    root: &Failure,
    journal: &Journal,
    emit: &dyn Fn(ApplyEvent),
) -> Result<Vec<String>, WalkError> {
    let mut skipped = Vec::new();
    let mut q: VecDeque<usize> = (0..steps.len()).filter(|&i| st[i] == St::Failed).collect();
    while let Some(i) = q.pop_front() {
        for &k in &dependents[i] {
            if matches!(st[k], St::Pending | St::Waiting) {
                st[k] = St::Skipped;
                skipped.push(k);
                q.push_back(k);
            }
        }
    }
    skipped.sort_unstable();
    let skipped: Vec<String> = skipped.into_iter().map(|k| steps[k].id.clone()).collect();
    for s in &skipped {
        journal.append(Entry::StepSkipped {
            step: s.clone(),
            because: root.step.clone(),
        })?;
        emit(ApplyEvent::StepSkipped {
            step: s.clone(),
            because: root.step.clone(),
        });
    }
    Ok(skipped)
}

/// Ends the run: journals how it ended, builds the report from the journal and announces it.
fn finish(
    steps: &[StepSpec],
    journal: &Journal,
    opts: &WalkOptions,
    outcome: Outcome,
    steps_run: usize,
) -> Result<WalkResult, WalkError> {
    journal.append(Entry::RunFinished {
        outcome: outcome.name().to_owned(),
    })?;
    let records = journal.records()?;
    let (root, waits, skipped) = match &outcome {
        Outcome::Done => (None, Vec::new(), Vec::new()),
        Outcome::Paused { waiting } => (None, waiting.clone(), Vec::new()),
        Outcome::Failed {
            root_cause,
            skipped,
        } => (Some(root_cause.clone()), Vec::new(), skipped.clone()),
    };
    let mut report = build_report(
        steps,
        &records,
        opts.clock.now_ms(),
        outcome.name(),
        root,
        waits,
        skipped,
    );
    report.steps_run = steps_run;
    (opts.events)(&ApplyEvent::Finished {
        report: Box::new(report.clone()),
    });
    Ok(WalkResult { outcome, report })
}

fn fail_now(
    journal: &Journal,
    emit: &dyn Fn(ApplyEvent),
    st: &mut [St],
    i: usize,
    f: &Failure,
    no_retry: bool,
) -> Result<(), WalkError> {
    journal.append(Entry::StepFailed {
        step: f.step.clone(),
        message: f.message.clone(),
        no_retry,
    })?;
    emit(ApplyEvent::StepFailed {
        step: f.step.clone(),
        message: f.message.clone(),
    });
    st[i] = St::Failed;
    Ok(())
}

fn elapsed_ms(start: tokio::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The per-step protocol.
async fn run_step(
    spec: &StepSpec,
    exec: &dyn StepExecutor,
    journal: &Journal,
    prior: Option<Prior>,
    poll: PollPolicy,
    events: &EventSink,
) -> Result<StepOk, Failure> {
    let start = tokio::time::Instant::now();
    // `no_retry` only once the action may have been sent: a step that failed before acting
    // (its precondition) did nothing, and a resume may try it again.
    let fail_with = |message: String, no_retry: bool| {
        let _ = journal.append(Entry::StepFailed {
            step: spec.id.clone(),
            message: message.clone(),
            no_retry,
        });
        Failure {
            step: spec.id.clone(),
            message,
            advice: spec.failure_advice.clone(),
        }
    };
    let fail = |message: String| fail_with(message, spec.no_retry);
    if let Err(e) = journal.append(Entry::StepStarted {
        step: spec.id.clone(),
    }) {
        return Err(Failure {
            step: spec.id.clone(),
            message: e.to_string(),
            advice: Vec::new(),
        });
    }
    events(&ApplyEvent::StepStarted {
        step: spec.id.clone(),
        title: spec.title.clone(),
        kind: spec.kind.as_str().to_owned(),
    });

    // What the journal allows: re-observe only, or act.
    let mut observe_only = spec.needs_person || spec.kind == StepKind::Gate;
    // Finishing a reentrant action that a crash interrupted: its precondition (the world
    // before the action) may no longer hold, the action itself checks what is left.
    let mut resume_act = false;
    match &prior {
        Some(Prior::Failed {
            message,
            no_retry: true,
            ..
        }) => {
            // Never retried automatically; succeed only if someone fixed it meanwhile.
            return match exec.verify(spec).await {
                Ok(Check::Holds(observed)) => succeed(spec, journal, observed, start),
                _ => Err(fail(format!("{message} (not retried automatically)"))),
            };
        }
        Some(Prior::Failed {
            action_sent: true, ..
        }) if !spec.idempotent && !observe_only => {
            // The action ended in an error last time (no crash in the middle of it). Done if
            // the postcondition holds now; sent again only if the precondition still holds —
            // the world is as it was before the action, so it did not take effect (a DNS
            // update the server refused, a server that was down); otherwise only re-observed.
            let bound = later(tokio::time::Instant::now(), observe_grace(spec));
            if let Ok(Ok(Check::Holds(observed))) =
                tokio::time::timeout_at(bound, exec.verify(spec)).await
            {
                return succeed(spec, journal, observed, start);
            }
            let unchanged = tokio::time::timeout_at(bound, exec.precondition(spec)).await;
            observe_only = !matches!(unchanged, Ok(Ok(())));
        }
        Some(Prior::InFlight { action_sent: true }) if !spec.idempotent && !observe_only => {
            // The apply died while the action was being sent. Done if the postcondition holds;
            // sent (again) only when it did not reach the world, or when the action itself
            // does only what is still missing; otherwise only re-observed.
            let bound = later(tokio::time::Instant::now(), observe_grace(spec));
            if let Ok(Ok(Check::Holds(observed))) =
                tokio::time::timeout_at(bound, exec.verify(spec)).await
            {
                return succeed(spec, journal, observed, start);
            }
            if spec.reentrant {
                resume_act = true;
            } else if spec.no_retry {
                // An install is sent again only when its bridge can tell it never arrived.
                let reached = tokio::time::timeout_at(bound, exec.action_reached(spec)).await;
                observe_only = !matches!(reached, Ok(Ok(Some(false))));
            } else {
                // Other actions change what their precondition observes at once (a break, an
                // establish, a key confirmation): still the world before it = it did not arrive.
                let unchanged = tokio::time::timeout_at(bound, exec.precondition(spec)).await;
                observe_only = !matches!(unchanged, Ok(Ok(())));
            }
        }
        Some(Prior::InFlight { action_sent: true })
        | Some(Prior::Failed {
            action_sent: true, ..
        }) if !spec.idempotent => {
            observe_only = true;
        }
        _ => {}
    }

    if !observe_only {
        // A precondition that could not be observed (network trouble: a retryable error) is
        // observed again with backoff for a while; one that is observed not to hold halts.
        let patience = later(start, spec.verify_timeout.min(PRECONDITION_PATIENCE));
        let mut delay = poll.initial;
        loop {
            if resume_act {
                break;
            }
            let checked = tokio::time::timeout_at(
                later(
                    patience.max(tokio::time::Instant::now()),
                    observe_grace(spec),
                ),
                exec.precondition(spec),
            )
            .await
            .unwrap_or_else(|_| {
                Err(StepError::fatal(
                    "observing the precondition did not return".to_owned(),
                ))
            });
            let e = match checked {
                Ok(()) => break,
                Err(e) => e,
            };
            let now = tokio::time::Instant::now();
            if !e.retryable || now >= patience {
                return Err(fail_with(
                    format!("precondition of {} does not hold: {}", spec.id, e.message),
                    false,
                ));
            }
            events(&ApplyEvent::StepPolling {
                step: spec.id.clone(),
                detail: format!("precondition not observed yet: {}", e.message),
                elapsed_ms: elapsed_ms(start),
                timeout_ms: u64::try_from((patience - start).as_millis()).unwrap_or(u64::MAX),
            });
            tokio::time::sleep(delay.min(patience - now)).await;
            delay = (delay * 2).min(poll.max);
        }
        if let Err(e) = journal.append(Entry::ActionSent {
            step: spec.id.clone(),
        }) {
            return Err(Failure {
                step: spec.id.clone(),
                message: e.to_string(),
                advice: Vec::new(),
            });
        }
        let mut attempt = 0u32;
        let mut delay = ACT_RETRY_DELAY.min(poll.max);
        let deadline = later(start, spec.verify_timeout);
        let artifacts = loop {
            attempt += 1;
            // An action that never returns must not hold the apply: it ends at the step's
            // timeout like a postcondition that never holds (the journal says the action was
            // sent, so a resume only re-observes a non-idempotent step).
            let acted = match tokio::time::timeout_at(deadline, exec.act(spec)).await {
                Ok(r) => r,
                Err(_) => return Err(fail(overran(spec, "its action did not return"))),
            };
            match acted {
                Ok(a) => break a,
                Err(e)
                    if e.retryable
                        && spec.idempotent
                        && !spec.no_retry
                        && attempt < poll.act_attempts =>
                {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(poll.max);
                }
                Err(e) => return Err(fail(e.message)),
            }
        };
        if let Err(e) = journal.append(Entry::ActionDone {
            step: spec.id.clone(),
            artifacts,
        }) {
            return Err(Failure {
                step: spec.id.clone(),
                message: e.to_string(),
                advice: Vec::new(),
            });
        }
    }

    // Verify by polling with backoff until the timeout.
    let deadline = later(start, spec.verify_timeout);
    let mut last_seen: Option<String> = None;
    loop {
        // A single observation that hangs is bounded too: by the deadline plus a grace, so
        // the last observation, which starts at the deadline, still gets its answer.
        let bound = later(
            deadline.max(tokio::time::Instant::now()),
            observe_grace(spec),
        );
        let Ok(verified) = tokio::time::timeout_at(bound, exec.verify(spec)).await else {
            let what = match &last_seen {
                Some(l) => format!("observing its postcondition did not return (last seen: {l})"),
                None => "observing its postcondition did not return".to_owned(),
            };
            return Err(fail(overran(spec, &what)));
        };
        let last = match verified {
            Ok(Check::Holds(observed)) => return succeed(spec, journal, observed, start),
            Ok(Check::NotYet(why)) => why,
            Err(e) if e.retryable => e.message,
            Err(e) => return Err(fail(e.message)),
        };
        last_seen = Some(last.clone());
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(fail(format!(
                "{} did not complete within {}s: {last}",
                spec.id,
                spec.verify_timeout.as_secs()
            )));
        }
        events(&ApplyEvent::StepPolling {
            step: spec.id.clone(),
            detail: last,
            elapsed_ms: elapsed_ms(start),
            timeout_ms: u64::try_from(spec.verify_timeout.as_millis()).unwrap_or(u64::MAX),
        });
        let delay = poll.next_delay(spec, now - start);
        tokio::time::sleep(delay.min(deadline - now)).await;
    }
}

/// The first wait before an action that failed retryably is sent again (then doubling, at
/// most [`PollPolicy::max`]): network trouble takes longer to pass than a postcondition.
const ACT_RETRY_DELAY: Duration = Duration::from_millis(500);

/// How long a failing precondition is observed again when it could not be observed (at most;
/// never longer than the step's timeout).
const PRECONDITION_PATIENCE: Duration = Duration::from_secs(60);

/// `at + d`, or — when that instant cannot be represented — a point 30 years after `at` (what
/// tokio itself uses as "never"). Validation bounds every duration of a plan; this keeps a bug
/// in that bound from becoming an "overflow when adding duration to instant" panic mid-apply.
pub(crate) fn later(at: tokio::time::Instant, d: Duration) -> tokio::time::Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(at)
}

/// Extra time one observation may take when it starts at (or runs past) the deadline.
fn observe_grace(spec: &StepSpec) -> Duration {
    spec.verify_timeout.min(Duration::from_secs(30))
}

/// The message of a step that ran past its timeout.
fn overran(spec: &StepSpec, what: &str) -> String {
    format!(
        "{} did not complete within {}s: {what}",
        spec.id,
        spec.verify_timeout.as_secs()
    )
}

fn succeed(
    spec: &StepSpec,
    journal: &Journal,
    observed: serde_json::Value,
    start: tokio::time::Instant,
) -> Result<StepOk, Failure> {
    match journal.append(Entry::StepSucceeded {
        step: spec.id.clone(),
        observed,
    }) {
        Ok(_) => Ok(StepOk {
            duration_ms: elapsed_ms(start),
        }),
        Err(e) => Err(Failure {
            step: spec.id.clone(),
            message: e.to_string(),
            advice: Vec::new(),
        }),
    }
}

/// The step deadline bounds the action and every observation, not only the polling between
/// them: a provider call that never returns must end in a safe halt naming the step.
#[cfg(test)]
mod deadline_tests {
    use async_trait::async_trait;

    use super::*;
    use crate::apply::journal::Artifact;

    /// `act` or `verify` never returns for the steps named.
    struct Hangs {
        act: bool,
        verify: bool,
    }

    #[async_trait]
    impl StepExecutor for Hangs {
        async fn act(&self, _step: &StepSpec) -> Result<Vec<Artifact>, StepError> {
            if self.act {
                std::future::pending::<()>().await;
            }
            Ok(Vec::new())
        }
        async fn verify(&self, _step: &StepSpec) -> Result<Check, StepError> {
            if self.verify {
                std::future::pending::<()>().await;
            }
            Ok(Check::Holds(serde_json::json!({})))
        }
    }

    async fn run(exec: Hangs, idempotent: bool) -> (Failure, Vec<String>, Duration) {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(&dir.path().join("j.jsonl")).unwrap());
        let mut s = StepSpec::new("b.install", StepKind::Operator, &[]);
        s.needs_person = false;
        s.idempotent = idempotent;
        s.verify_timeout = Duration::from_millis(200);
        s.failure_advice = vec!["Abort path: point the site back at a".into()];
        let next = StepSpec::new("b.online", StepKind::Wait, &["b.install"]);
        let t = std::time::Instant::now();
        // Without the deadline the walk would never end: bound the test itself.
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            walk(
                &[s, next],
                Arc::new(exec),
                journal.clone(),
                &ResumeState::default(),
                &WalkOptions::default(),
            ),
        )
        .await
        .expect("the walk ends at the step timeout")
        .unwrap();
        let elapsed = t.elapsed();
        let Outcome::Failed {
            root_cause,
            skipped,
        } = r.outcome
        else {
            panic!("expected a halt, got {:?}", r.outcome)
        };
        (root_cause, skipped, elapsed)
    }

    #[tokio::test]
    async fn an_action_that_never_returns_halts_at_the_step_timeout() {
        let (f, skipped, elapsed) = run(
            Hangs {
                act: true,
                verify: false,
            },
            false,
        )
        .await;
        assert_eq!(f.step, "b.install");
        assert!(f.message.contains("did not complete"), "{}", f.message);
        assert!(f.message.contains("action did not return"), "{}", f.message);
        assert_eq!(f.advice, vec!["Abort path: point the site back at a"]);
        assert_eq!(skipped, vec!["b.online"]);
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }

    #[tokio::test]
    async fn an_observation_that_never_returns_halts_at_the_step_timeout() {
        let (f, skipped, elapsed) = run(
            Hangs {
                act: false,
                verify: true,
            },
            true,
        )
        .await;
        assert_eq!(f.step, "b.install");
        assert!(
            f.message
                .contains("observing its postcondition did not return"),
            "{}",
            f.message
        );
        assert_eq!(skipped, vec!["b.online"]);
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }

    /// The precondition fails `pre_fails` times (retryably or not), then holds; every
    /// observation of the postcondition takes `verify_ms`; it holds once the step acted, unless
    /// observations are slow (then it never holds).
    struct Scripted {
        pre_fails: std::sync::atomic::AtomicU32,
        pre_retryable: bool,
        acts: std::sync::atomic::AtomicU32,
        verify_ms: u64,
        /// What `action_reached` answers.
        reached: std::sync::Mutex<Option<bool>>,
    }

    #[async_trait]
    impl StepExecutor for Scripted {
        async fn precondition(&self, _step: &StepSpec) -> Result<(), StepError> {
            use std::sync::atomic::Ordering;
            if self
                .pre_fails
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(StepError {
                    message: "appliance b does not answer".into(),
                    retryable: self.pre_retryable,
                });
            }
            Ok(())
        }
        async fn act(&self, _step: &StepSpec) -> Result<Vec<Artifact>, StepError> {
            self.acts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Vec::new())
        }
        async fn verify(&self, _step: &StepSpec) -> Result<Check, StepError> {
            tokio::time::sleep(Duration::from_millis(self.verify_ms)).await;
            if self.acts.load(std::sync::atomic::Ordering::SeqCst) > 0 && self.verify_ms == 0 {
                return Ok(Check::Holds(serde_json::json!({})));
            }
            Ok(Check::NotYet("b runs 24.3.1, waiting for 25.1.3".into()))
        }
        async fn action_reached(&self, _step: &StepSpec) -> Result<Option<bool>, StepError> {
            Ok(*self.reached.lock().unwrap())
        }
    }

    fn scripted(pre_fails: u32, pre_retryable: bool, verify_ms: u64) -> Arc<Scripted> {
        Arc::new(Scripted {
            pre_fails: std::sync::atomic::AtomicU32::new(pre_fails),
            pre_retryable,
            acts: std::sync::atomic::AtomicU32::new(0),
            verify_ms,
            reached: std::sync::Mutex::new(None),
        })
    }

    fn install_step(timeout: Duration) -> StepSpec {
        let mut s = StepSpec::new("b.install", StepKind::Operator, &[]);
        s.needs_person = false;
        s.idempotent = false;
        s.no_retry = true;
        s.verify_timeout = timeout;
        s
    }

    fn fast() -> WalkOptions {
        WalkOptions {
            poll: PollPolicy {
                initial: Duration::from_millis(5),
                max: Duration::from_millis(20),
                act_attempts: 3,
            },
            ..WalkOptions::default()
        }
    }

    #[tokio::test]
    async fn a_precondition_that_could_not_be_observed_is_observed_again() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(&dir.path().join("j.jsonl")).unwrap());
        let exec = scripted(3, true, 0);
        let r = walk(
            &[install_step(Duration::from_secs(5))],
            exec.clone(),
            journal,
            &ResumeState::default(),
            &fast(),
        )
        .await
        .unwrap();
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(exec.acts.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_install_whose_precondition_failed_was_not_attempted_and_a_resume_runs_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let journal = Arc::new(Journal::open(&path).unwrap());
        let exec = scripted(1, false, 0);
        let steps = [install_step(Duration::from_secs(5))];
        let r = walk(
            &steps,
            exec.clone(),
            journal.clone(),
            &ResumeState::default(),
            &fast(),
        )
        .await
        .unwrap();
        let Outcome::Failed { root_cause, .. } = &r.outcome else {
            panic!("{:?}", r.outcome)
        };
        assert!(
            root_cause.message.starts_with("precondition of b.install"),
            "{}",
            root_cause.message
        );
        assert_eq!(exec.acts.load(std::sync::atomic::Ordering::SeqCst), 0);
        // The resume acts: nothing was installed, so "never retried" does not apply.
        let prior = ResumeState::from_records(&Journal::read(&path).unwrap());
        let r = walk(&steps, exec.clone(), journal, &prior, &fast())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(exec.acts.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_observation_at_the_deadline_gets_its_answer_and_the_halt_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(&dir.path().join("j.jsonl")).unwrap());
        // Each observation takes 60 ms of a 200 ms timeout: the last one starts at or after
        // the deadline and must still be heard.
        let exec = scripted(0, true, 60);
        let r = walk(
            &[install_step(Duration::from_millis(200))],
            exec,
            journal,
            &ResumeState::default(),
            &fast(),
        )
        .await
        .unwrap();
        let Outcome::Failed { root_cause, .. } = &r.outcome else {
            panic!("{:?}", r.outcome)
        };
        assert!(
            root_cause.message.contains("waiting for 25.1.3"),
            "{}",
            root_cause.message
        );
        assert!(
            !root_cause.message.contains("did not return"),
            "{}",
            root_cause.message
        );
    }

    /// A swing whose action failed last time (e.g. the DNS server refused the update).
    fn failed_switch(prior_pre_fails: u32) -> (StepSpec, ResumeState, Arc<Scripted>) {
        let mut s = StepSpec::new("switch.to-b", StepKind::Auto, &[]);
        s.idempotent = false;
        s.verify_timeout = Duration::from_millis(300);
        let mut prior = ResumeState::default();
        prior.steps.insert(
            s.id.clone(),
            Prior::Failed {
                message: "DNS server refused swing (REFUSED)".into(),
                no_retry: false,
                action_sent: true,
            },
        );
        (s, prior, scripted(prior_pre_fails, false, 0))
    }

    #[tokio::test]
    async fn a_failed_non_idempotent_step_is_sent_again_only_while_its_precondition_holds() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(&dir.path().join("j.jsonl")).unwrap());
        // The precondition holds: the action did not take effect, so it is sent again.
        let (s, prior, exec) = failed_switch(0);
        let r = walk(&[s], exec.clone(), journal.clone(), &prior, &fast())
            .await
            .unwrap();
        assert_eq!(r.outcome, Outcome::Done);
        assert_eq!(exec.acts.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The precondition no longer holds (the world changed): only re-observed, never sent.
        let (s, prior, exec) = failed_switch(u32::MAX);
        let r = walk(&[s], exec.clone(), journal, &prior, &fast())
            .await
            .unwrap();
        assert!(
            matches!(r.outcome, Outcome::Failed { .. }),
            "{:?}",
            r.outcome
        );
        assert_eq!(exec.acts.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    // Resuming a step whose action was being sent when the apply died.

    fn in_flight(s: &StepSpec) -> ResumeState {
        let mut prior = ResumeState::default();
        prior
            .steps
            .insert(s.id.clone(), Prior::InFlight { action_sent: true });
        prior
    }

    async fn resume_in_doubt(s: StepSpec, exec: Arc<Scripted>) -> (Outcome, u32) {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(Journal::open(&dir.path().join("j.jsonl")).unwrap());
        let prior = in_flight(&s);
        let r = walk(&[s], exec.clone(), journal, &prior, &fast())
            .await
            .unwrap();
        (
            r.outcome,
            exec.acts.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    fn operator_step(id: &str) -> StepSpec {
        let mut s = StepSpec::new(id, StepKind::Operator, &[]);
        s.needs_person = false;
        s.idempotent = false;
        s.verify_timeout = Duration::from_millis(300);
        s
    }

    #[tokio::test]
    async fn an_action_whose_precondition_still_holds_did_not_arrive_and_is_sent() {
        let (outcome, acts) =
            resume_in_doubt(operator_step("failover.break"), scripted(0, false, 0)).await;
        assert_eq!((outcome, acts), (Outcome::Done, 1));
        // The world moved (the precondition no longer holds): it arrived; only observed.
        let (outcome, acts) = resume_in_doubt(
            operator_step("failover.break"),
            scripted(u32::MAX, false, 0),
        )
        .await;
        assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
        assert_eq!(acts, 0);
    }

    #[tokio::test]
    async fn an_install_is_sent_again_only_when_its_bridge_says_it_never_arrived() {
        let mut s = operator_step("b.install");
        s.no_retry = true;
        // The bridge cannot tell: never sent twice, only observed (here: it times out).
        let (outcome, acts) = resume_in_doubt(s.clone(), scripted(0, false, 0)).await;
        assert!(matches!(outcome, Outcome::Failed { .. }), "{outcome:?}");
        assert_eq!(acts, 0);
        // The bridge says it never arrived: sent.
        let exec = scripted(0, false, 0);
        *exec.reached.lock().unwrap() = Some(false);
        let (outcome, acts) = resume_in_doubt(s.clone(), exec).await;
        assert_eq!((outcome, acts), (Outcome::Done, 1));
        // The bridge says it arrived: only observed.
        let exec = scripted(0, false, 0);
        *exec.reached.lock().unwrap() = Some(true);
        let (_, acts) = resume_in_doubt(s, exec).await;
        assert_eq!(acts, 0);
    }

    #[tokio::test]
    async fn a_reentrant_switch_is_finished_although_its_precondition_no_longer_holds() {
        // Killed between "off on a" and "on at b": the site is served by nobody, so the
        // precondition (served by a) fails; the switch's own action finishes the move.
        let mut s = operator_step("switch.to-b");
        s.reentrant = true;
        let (outcome, acts) = resume_in_doubt(s, scripted(u32::MAX, false, 0)).await;
        assert_eq!((outcome, acts), (Outcome::Done, 1));
    }
}

/// The polling interval follows the step's expected duration.
#[cfg(test)]
mod poll_tests {
    use super::*;

    fn step(expected: Duration) -> StepSpec {
        let mut s = StepSpec::new("b.install", StepKind::Operator, &[]);
        s.expected = expected;
        s
    }

    #[test]
    fn the_interval_is_capped_at_one_percent_of_the_expected_duration() {
        let p = PollPolicy::default();
        // A real install (30 minutes): the policy's maximum.
        assert_eq!(
            p.interval_cap(&step(Duration::from_secs(1800))),
            Duration::from_secs(15)
        );
        // A 3-second install of a rehearsal: 30 ms.
        assert_eq!(
            p.interval_cap(&step(Duration::from_secs(3))),
            Duration::from_millis(30)
        );
        // Never below the first interval, and unknown durations get the maximum.
        assert_eq!(p.interval_cap(&step(Duration::from_millis(100))), p.initial);
        assert_eq!(p.interval_cap(&step(Duration::ZERO)), p.max);
        // A policy whose first interval exceeds its maximum stays within the maximum.
        let odd = PollPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_millis(100),
            act_attempts: 1,
        };
        assert_eq!(
            odd.interval_cap(&step(Duration::from_secs(3))),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn the_interval_grows_with_the_elapsed_time_up_to_the_cap() {
        let p = PollPolicy::default();
        let ms = Duration::from_millis;
        // A long step without a useful estimate: at most 12.5 % late, at most 15 s.
        let long = step(Duration::from_secs(2700));
        assert_eq!(p.next_delay(&long, Duration::ZERO), p.initial);
        assert_eq!(p.next_delay(&long, ms(100)), p.initial);
        assert_eq!(p.next_delay(&long, ms(2_400)), ms(300));
        assert_eq!(
            p.next_delay(&long, Duration::from_secs(600)),
            Duration::from_secs(15)
        );
        // A 3-second step: never more than 30 ms between observations.
        let short = step(Duration::from_secs(3));
        assert_eq!(p.next_delay(&short, ms(2_400)), ms(30));
    }
}
