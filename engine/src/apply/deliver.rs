//! Delivering the notifications of an apply (`notify` in the plan) when its walk ends: which
//! event the outcome is (a person awaited → `paused`; only windows → `waiting-for-window`;
//! `failed`; `done`), the [`Notification`] built from it, and the bounded retry.
//!
//! Owns: the attempts (at most [`ATTEMPTS`], each cut off after [`ATTEMPT_TIMEOUT`], with
//! short pauses between — about 10 s at worst, all targets at once), and reporting a target
//! that failed: an [`Entry::NotificationFailed`] in the journal and an
//! [`ApplyEvent::NotificationFailed`] for the view. Must not: change the apply's outcome, or
//! name a target other than by [`Notifier::describe`] (a URL from a secret reference stays
//! secret).

use std::sync::Arc;
use std::time::Duration;

use swing_schema::NotifyEvent;

use super::ApplyRequest;
use super::events::ApplyEvent;
use super::journal::{Entry, Journal};
use super::step::{Outcome, WaitReason, resume_command};
use crate::notify::{Notification, Notifier};

/// Attempts per target.
pub const ATTEMPTS: u32 = 3;
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(2_500);
/// The pauses before the second and third attempt.
const BACKOFF: [Duration; 2] = [Duration::from_millis(250), Duration::from_millis(1_000)];

/// The notification an apply that ended with `outcome` sends.
pub fn notification(
    outcome: &Outcome,
    change: &str,
    site: &str,
    source: Option<&str>,
    now_ms: i64,
) -> Notification {
    let mut n = Notification {
        event: NotifyEvent::Done,
        change: change.to_owned(),
        site: site.to_owned(),
        step: None,
        awaiting: Vec::new(),
        resume_command: None,
        message: None,
        outcome: outcome.name().to_owned(),
        at: crate::time::rfc3339_ms(now_ms),
    };
    match outcome {
        Outcome::Done => {}
        Outcome::Failed { root_cause, .. } => {
            n.event = NotifyEvent::Failed;
            n.step = Some(root_cause.step.clone());
            n.message = Some(root_cause.message.clone());
        }
        Outcome::Paused { waiting } => {
            let person = waiting
                .iter()
                .any(|w| matches!(w.reason, WaitReason::Confirmation { .. }));
            n.event = if person {
                NotifyEvent::Paused
            } else {
                NotifyEvent::WaitingForWindow
            };
            n.step = waiting.first().map(|w| w.step.clone());
            n.awaiting = waiting.iter().map(|w| w.describe()).collect();
            n.resume_command = Some(resume_command(waiting, source));
        }
    }
    n
}

/// Sends the apply's notification to every target that wants it; a target that still fails
/// after its attempts is journaled and reported as an event. Returns when all are through.
pub(super) async fn notify(req: &ApplyRequest, outcome: &Outcome, journal: &Journal) {
    let notifiers = &req.walk.notifiers;
    if notifiers.is_empty() {
        return;
    }
    let n = Arc::new(notification(
        outcome,
        &req.change,
        &req.site,
        req.source.as_deref(),
        req.walk.clock.now_ms(),
    ));
    let mut set = tokio::task::JoinSet::new();
    for t in notifiers.iter().filter(|t| t.wants(n.event)) {
        let (t, n) = (Arc::clone(t), Arc::clone(&n));
        set.spawn(async move {
            let result = deliver(t.as_ref(), &n).await;
            (t.describe(), result)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((_, Ok(()))) => {}
            Ok((target, Err(message))) => failed.push((target, message)),
            Err(e) => failed.push(("a notifier".to_owned(), e.to_string())),
        }
    }
    failed.sort();
    for (target, message) in failed {
        let event = n.event.as_str().to_owned();
        // The journal is best effort here: the apply's own records are already written.
        let _ = journal.append(Entry::NotificationFailed {
            target: target.clone(),
            notification: event.clone(),
            attempts: ATTEMPTS,
            message: message.clone(),
        });
        (req.walk.events)(&ApplyEvent::NotificationFailed {
            target,
            notification: event,
            attempts: ATTEMPTS,
            message,
        });
    }
}

/// Up to [`ATTEMPTS`] attempts, each bounded by [`ATTEMPT_TIMEOUT`]; the last error.
async fn deliver(t: &dyn Notifier, n: &Notification) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF[(attempt as usize - 1).min(BACKOFF.len() - 1)]).await;
        }
        match tokio::time::timeout(ATTEMPT_TIMEOUT, t.send(n)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e.message,
            Err(_) => last = format!("no answer within {:.1} s", ATTEMPT_TIMEOUT.as_secs_f64()),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::apply::step::{Failure, Waiting, WalkOptions};
    use crate::apply::{LockOptions, Record};
    use crate::notify::NotifyError;

    fn waiting(step: &str, person: bool) -> Waiting {
        Waiting {
            step: step.into(),
            reason: if person {
                WaitReason::Confirmation {
                    instructions: vec!["check".into()],
                }
            } else {
                WaitReason::Window {
                    window: "second".into(),
                    starts: "2026-12-06T22:00:00+01:00".into(),
                }
            },
        }
    }

    #[test]
    fn the_outcome_decides_the_event_and_what_it_carries() {
        let person = Outcome::Paused {
            waiting: vec![
                waiting("b.install", false),
                waiting("a.verify-manual", true),
            ],
        };
        let n = notification(&person, "chg", "site.example", None, 0);
        assert_eq!(n.event, NotifyEvent::Paused, "a person is awaited");
        assert_eq!(n.step.as_deref(), Some("b.install"));
        assert_eq!(n.awaiting.len(), 2);
        assert_eq!(
            n.resume_command.as_deref(),
            Some("swing apply --resume --confirm a.verify-manual")
        );
        let window = Outcome::Paused {
            waiting: vec![waiting("b.install", false)],
        };
        let n = notification(&window, "chg", "site.example", None, 0);
        assert_eq!(n.event, NotifyEvent::WaitingForWindow);
        assert_eq!(n.resume_command.as_deref(), Some("swing apply --resume"));
        let failed = Outcome::Failed {
            root_cause: Failure {
                step: "a.install".into(),
                message: "install failed".into(),
                advice: vec![],
            },
            skipped: vec![],
        };
        let n = notification(&failed, "chg", "site.example", None, 0);
        assert_eq!(n.event, NotifyEvent::Failed);
        assert_eq!(n.message.as_deref(), Some("install failed"));
        assert!(n.resume_command.is_none());
        let n = notification(&Outcome::Done, "chg", "site.example", None, 0);
        assert_eq!((n.event, n.outcome.as_str()), (NotifyEvent::Done, "done"));
    }

    /// A target that fails its first `fail_first` attempts.
    struct Flaky {
        fail_first: u32,
        calls: AtomicU32,
        wants: NotifyEvent,
    }

    #[async_trait]
    impl Notifier for Flaky {
        fn describe(&self) -> String {
            format!("flaky #{}", self.fail_first)
        }
        fn wants(&self, event: NotifyEvent) -> bool {
            event == self.wants
        }
        async fn send(&self, _n: &Notification) -> Result<(), NotifyError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            if call < self.fail_first {
                Err(NotifyError::new(format!("refused (attempt {})", call + 1)))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn a_target_is_retried_and_only_a_lasting_failure_is_journaled_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let journal = Journal::open(&path).unwrap();
        let recovers = Arc::new(Flaky {
            fail_first: 2,
            calls: AtomicU32::new(0),
            wants: NotifyEvent::Done,
        });
        let never = Arc::new(Flaky {
            fail_first: u32::MAX,
            calls: AtomicU32::new(0),
            wants: NotifyEvent::Done,
        });
        let elsewhere = Arc::new(Flaky {
            fail_first: 0,
            calls: AtomicU32::new(0),
            wants: NotifyEvent::Failed,
        });
        let seen: Arc<Mutex<Vec<ApplyEvent>>> = Arc::default();
        let keep = seen.clone();
        let req = ApplyRequest {
            store: Arc::new(crate::apply::LocalStore::new(dir.path(), dir.path())),
            change: "chg".into(),
            site: "site.example".into(),
            plan_digest: "d".into(),
            source: None,
            resume: false,
            lock: LockOptions::default(),
            walk: WalkOptions {
                notifiers: vec![recovers.clone(), never.clone(), elsewhere.clone()],
                events: Arc::new(move |e: &ApplyEvent| keep.lock().unwrap().push(e.clone())),
                ..WalkOptions::default()
            },
        };
        notify(&req, &Outcome::Done, &journal).await;
        assert_eq!(recovers.calls.load(Ordering::SeqCst), 3);
        assert_eq!(never.calls.load(Ordering::SeqCst), ATTEMPTS);
        assert_eq!(elsewhere.calls.load(Ordering::SeqCst), 0, "not its event");
        let records: Vec<Record> = Journal::read(&path).unwrap();
        assert_eq!(
            records.into_iter().map(|r| r.entry).collect::<Vec<_>>(),
            vec![Entry::NotificationFailed {
                target: format!("flaky #{}", u32::MAX),
                notification: "done".into(),
                attempts: ATTEMPTS,
                message: "refused (attempt 3)".into(),
            }]
        );
        assert!(matches!(
            seen.lock().unwrap().as_slice(),
            [ApplyEvent::NotificationFailed { notification, .. }] if notification == "done"
        ));
    }
}
