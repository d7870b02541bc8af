//! The change record (`swing report`): the plan's steps with what the journal says each did
//! — when, who confirmed it and why, what swing observed when it verified it, each failure —
//! the runs (first apply, resumes), backups with their SHA-256, what a probing client saw,
//! the time without failover by the wall clock, and a verdict.
//!
//! Owns: turning records into that account. The outcome and what the change still waits for
//! come from [`crate::status::status`], so a report and a status never disagree. Must not:
//! read files or clocks (the caller passes records, the saved plan and `now`), or render.

use swing_schema::report::{ChangeReport, ReportBackup, ReportDowntime, ReportRun, ReportStep};

use crate::apply::Record;
use crate::apply::history::History;
use crate::compile::CompiledPlan;
use crate::planfile::SavedPlan;
use crate::time::rfc3339_ms;

/// What a probing client saw, per step that can take the site down, in step order.
pub(crate) fn measured_downtime(c: &CompiledPlan, h: &History) -> Vec<ReportDowntime> {
    c.steps
        .iter()
        .filter_map(|s| match h.steps.get(&s.id)?.client.as_ref()? {
            Ok(d) => Some(ReportDowntime {
                step: s.id.clone(),
                longest_outage_s: d.longest_outage_ms as f64 / 1000.0,
                outages: d.outages,
                probes: d.probes,
            }),
            Err(_) => None,
        })
        .collect()
}

/// The record of the change `c` plans.
pub fn report(
    c: &CompiledPlan,
    records: &[Record],
    saved: Option<&SavedPlan>,
    now_ms: i64,
) -> ChangeReport {
    let h = History::fold(records);
    let st = crate::status::status(c, records, None, now_ms);
    let steps = c
        .steps
        .iter()
        .map(|s| {
            let a = h.steps.get(&s.id).filter(|a| !a.status.is_empty());
            let duration_s = a.and_then(|a| match (a.first_started, a.finished) {
                (Some(b), Some(e)) if e >= b => Some((e - b) as f64 / 1000.0),
                _ => None,
            });
            ReportStep {
                id: s.id.clone(),
                title: s.title.clone(),
                status: a.map_or("not-started", |a| a.status).to_owned(),
                started: a.and_then(|a| a.first_started).map(rfc3339_ms),
                finished: a.and_then(|a| a.finished).map(rfc3339_ms),
                duration_s,
                confirmed_by: a.and_then(|a| a.confirmed_by.clone()),
                note: a.and_then(|a| a.note.clone()),
                observed: a.and_then(|a| a.verified.clone()).unwrap_or_default(),
                failures: a.map(|a| a.failures.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let downtime_by_switch = measured_downtime(c, &h);
    let downtime_measured_s = downtime_by_switch
        .iter()
        .map(|d| d.longest_outage_s)
        .reduce(f64::max);
    let verdict_text = match st.outcome.as_str() {
        "done" => "Done: every step of the plan was carried out and verified.".to_owned(),
        "not-started" => "Not started: the journal holds no run of this change.".to_owned(),
        "paused" | "running" => {
            let waits: Vec<String> = st
                .waiting
                .iter()
                .map(|w| format!("{} ({})", w.step, w.kind))
                .collect();
            format!(
                "{}: {} of {} steps done; waiting for {}.",
                if st.outcome == "running" {
                    "Running"
                } else {
                    "Paused"
                },
                st.steps_done,
                st.steps_total,
                if waits.is_empty() {
                    "the steps in flight".to_owned()
                } else {
                    waits.join(", ")
                }
            )
        }
        _ => format!(
            "Failed: {}.",
            st.problem.as_deref().unwrap_or("a step failed")
        ),
    };
    ChangeReport {
        format_version: 1,
        change: c.plan.name.clone(),
        site: c.plan.site.clone(),
        plan_digest: h
            .runs
            .last()
            .map(|r| r.digest.clone())
            .or_else(|| saved.map(|s| s.plan_digest.clone())),
        signed_by: saved
            .and_then(|s| s.signature.as_ref())
            .map(|g| g.fingerprint.clone()),
        verdict: st.outcome.clone(),
        verdict_text,
        runs: h
            .runs
            .iter()
            .map(|r| ReportRun {
                started: rfc3339_ms(r.started),
                resume: r.resume,
                host: r.host.clone(),
                pid: r.pid,
                outcome: r.outcome.clone(),
            })
            .collect(),
        steps,
        downtime_measured_s,
        downtime_by_switch,
        unprotected_s: st.unprotected_s,
        backups: h
            .artifacts
            .iter()
            .map(|a| ReportBackup {
                path: a.path.display().to_string(),
                sha256: a.sha256.clone(),
                bytes: a.bytes,
            })
            .collect(),
    }
}
