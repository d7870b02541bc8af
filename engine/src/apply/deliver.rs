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
