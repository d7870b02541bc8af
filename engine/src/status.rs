//! Where a change stands, from what is on record: the compiled plan (its steps, phases and
//! windows), the change's journal (folded by [`History`]) and the site's lock holder →
//! [`StatusView`]. Works while an apply runs (its lock is live, its journal grows) and after.
//!
//! Owns: what the outcome, phase, waits and time without failover are, given the records.
//! Must not: read files or clocks (the caller passes records, the lock holder and `now`),
//! change anything, or render.

use swing_schema::status::{
    StatusConfirmation, StatusEvent, StatusLock, StatusView, StatusWait, StatusWindow,
};

use crate::apply::history::History;
use crate::apply::journal::WaitKind;
use crate::apply::{LockHolder, LockOptions, Prior, Record};
use crate::compile::{CompiledPlan, StepOp};
use crate::time::rfc3339_ms;

/// How many journal records `last_events` shows.
pub const LAST_EVENTS: usize = 8;

/// The status of the change `c` plans.
pub fn status(
    c: &CompiledPlan,
    records: &[Record],
    lock: Option<&LockHolder>,
    now_ms: i64,
) -> StatusView {
    let h = History::fold(records);
    let stale = i64::try_from(LockOptions::default().stale_after.as_millis()).unwrap_or(i64::MAX);
    let lock = lock.map(|l| StatusLock {
        holder: l.holder.clone(),
        pid: l.pid,
        host: l.host.clone(),
        since: l.started.clone(),
        heartbeat: l.heartbeat.clone(),
        live: now_ms.saturating_sub(l.heartbeat_ms) < stale,
    });
    let running = lock
        .as_ref()
        .is_some_and(|l| l.live && l.holder == c.plan.name);
    let status_of = |id: &str| h.steps.get(id).map_or("", |s| s.status);
    let steps_done = c
        .steps
        .iter()
        .filter(|s| status_of(&s.id) == "succeeded")
        .count();
    let phase = c
        .steps
        .iter()
        .find(|s| status_of(&s.id) != "succeeded")
        .map(|s| s.phase);
    let failed = c
        .steps
        .iter()
        .find_map(|s| match h.resume.steps.get(&s.id) {
            Some(Prior::Failed { message, .. }) if status_of(&s.id) == "failed" => {
                Some(format!("{} failed: {message}", s.id))
            }
            _ => None,
        });
    let (outcome, problem) = if records.is_empty() {
        ("not-started", None)
    } else if let Some((actor, reason)) = &h.abandoned {
        ("failed", Some(format!("abandoned by {actor}: {reason}")))
    } else if running {
        ("running", None)
    } else {
        match h.last_outcome.as_deref() {
            Some("done") => ("done", None),
            Some("paused") => ("paused", None),
            Some(_) => ("failed", failed),
            None => (
                "failed",
                Some(
                    "the last run stopped without finishing (it was killed or lost its host): `swing apply --resume` continues it"
                        .to_owned(),
                ),
            ),
        }
    };
    let mut waiting = Vec::new();
    if outcome != "done" {
        for s in &c.steps {
            let Some(sh) = h.steps.get(&s.id) else {
                continue;
            };
            match (sh.status, &sh.waiting) {
                ("waiting", Some((kind, reason))) => waiting.push(StatusWait {
                    step: s.id.clone(),
                    kind: match kind {
                        Some(WaitKind::Window) => "window",
                        Some(WaitKind::Confirmation) | None => "confirmation",
                    }
                    .to_owned(),
                    reason: reason.clone(),
                    instructions: match kind {
                        Some(WaitKind::Window) => Vec::new(),
                        _ => s.instructions.clone(),
                    },
                    deadline: None,
                }),
                ("in-flight", _) if running => waiting.push(StatusWait {
                    step: s.id.clone(),
                    kind: "condition".to_owned(),
                    reason: s.title.clone(),
                    instructions: Vec::new(),
                    deadline: sh.started.map(|t| {
                        let timeout = crate::apply::step_timeout(c, s).as_millis();
                        rfc3339_ms(t.saturating_add(i64::try_from(timeout).unwrap_or(i64::MAX / 2)))
                    }),
                }),
                _ => {}
            }
        }
    }
    let verified = |op: &StepOp| {
        c.step_by_op(op)
            .and_then(|s| h.steps.get(&s.id))
            .filter(|s| s.status == "succeeded")
            .and_then(|s| s.finished)
    };
    let unprotected_ms = crate::apply::events::unprotected_ms(
        verified(&StepOp::Break),
        verified(&StepOp::Establish),
        now_ms,
    );
    let mut windows: Vec<_> = c.plan.windows.iter().collect();
    windows.sort_by_key(|w| w.start);
    let next_window = windows
        .iter()
        .find(|w| w.end.timestamp_millis() > now_ms)
        .map(|w| StatusWindow {
            name: w.name.clone(),
            start: w.start.to_rfc3339(),
            end: w.end.to_rfc3339(),
            open: w.start.timestamp_millis() <= now_ms,
        });
    let mut confirmations: Vec<StatusConfirmation> = h
        .steps
        .iter()
        .filter_map(|(id, s)| {
            Some(StatusConfirmation {
                step: id.clone(),
                actor: s.confirmed_by.clone(),
                note: s.note.clone(),
                at: rfc3339_ms(s.confirmed_at?),
            })
        })
        .collect();
    confirmations.sort_by(|a, b| a.at.cmp(&b.at));
    let last_events = records
        .iter()
        .skip(records.len().saturating_sub(LAST_EVENTS))
        .map(|r| {
            let v = serde_json::to_value(&r.entry).unwrap_or_default();
            StatusEvent {
                at: r.ts.clone(),
                event: v["event"].as_str().unwrap_or_default().to_owned(),
                step: v["step"].as_str().map(str::to_owned),
            }
        })
        .collect();
    StatusView {
        format_version: 1,
        change: c.plan.name.clone(),
        site: c.plan.site.clone(),
        outcome: outcome.to_owned(),
        phase,
        steps_done,
        steps_total: c.steps.len(),
        waiting,
        unprotected_s: unprotected_ms / 1000,
        lock,
        next_window,
        confirmations,
        last_events,
        problem,
    }
}
