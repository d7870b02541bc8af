//! The estimate passes of compile: step durations (the guide's defaults, overridable by
//! `policy.estimates`), downtime per strategy, the window each step belongs to, the schedule
//! across the maintenance windows, and the time the pair runs without failover protection.
//!
//! Must not: read the clock or do IO (a schedule is relative to the first window's start, or
//! to the start of the apply when there are no windows), change which steps exist or their
//! order (the step passes do), or judge the result (findings belong to the view).

use std::collections::BTreeMap;

use swing_schema::output::Scenario;
use swing_schema::{Plan, Switch};

use super::{Roles, Step, StepOp};

/// Default duration of an action, seconds. Sources: the guide (install 15–60 min, first sync
/// within about 60 s, syncs from seconds to hours) and what a careful operator needs for a
/// UI task; every value can be overridden per step id or per action in `policy.estimates`.
pub fn default_estimate(action: &str) -> u64 {
    match action {
        "health" => 30,
        "clock" | "tls" | "api" => 10,
        "window" => 5,
        "backup" => 5 * 60,
        "certificates" | "certs-export" | "certs-import" => 10 * 60,
        "vault-key" | "throttle" | "keys" | "certs-default" | "break" => 5 * 60,
        "sync" | "establish" => 10 * 60,
        "install" => 30 * 60,
        "online" => 10 * 60,
        "verify" | "switch-verify" => 60,
        "verify-manual" => 15 * 60,
        "resync" => 15 * 60,
        "switch" => 60,
        "promote" => 10 * 60,
        "restore-ttl" => 30,
        "clients-wait" | "clients-followup" | "restore" | "decommission" => 30 * 60,
        _ => 60,
    }
}

/// Extra install time per package after the first (base software first, then the site).
pub const EXTRA_PACKAGE_S: u64 = 15 * 60;

/// Pass: fills `estimate_s` and `downtime_s` of every step.
pub fn durations(steps: &mut [Step], plan: &Plan) {
    let est = &plan.policy.estimates;
    let switch_method = plan
        .failover
        .as_ref()
        .and_then(|f| f.switch.as_ref())
        .or(plan.migration.as_ref().map(|m| &m.switch));
    for s in steps.iter_mut() {
        let mut d = default_estimate(s.op.action());
        match s.op {
            StepOp::Install(_) => {
                let extra = plan.target.packages.len().saturating_sub(1) as u64;
                d = d.saturating_add(extra.saturating_mul(EXTRA_PACKAGE_S));
            }
            StepOp::LowerTtl => d = super::old_ttl(plan).saturating_add(10),
            StepOp::SwitchTo(_) => {
                d = match switch_method {
                    Some(Switch::SharedIp { .. }) => 5 * 60,
                    Some(Switch::Nat { .. }) => 10,
                    _ => 30,
                }
            }
            _ => {}
        }
        if let Some(o) = est.get(&s.id).or_else(|| est.get(s.op.action())) {
            d = o.secs();
        }
        if s.op == StepOp::LowerTtl {
            // Whatever the override, the swing must not come before the old TTL expired.
            d = d.max(super::old_ttl(plan));
        }
        s.estimate_s = d;
        s.downtime_s = if !s.downtime {
            0
        } else if matches!(s.op, StepOp::SwitchTo(_)) {
            // Async: the site moves; the gap is the switch itself, or the lowered TTL for dns.
            match switch_method {
                Some(Switch::Dns { ttl, .. }) => u64::from(*ttl),
                Some(Switch::SharedIp { .. }) => d.min(60),
                _ => d,
            }
        } else {
            d
        };
    }
}

/// Pass: which window each step belongs to. An asynchronous upgrade uses one window per
/// appliance: the second starts at the old primary's install (the guide's two windows).
pub fn assign_windows(steps: &mut [Step], plan: &Plan, roles: &Roles) {
    let windows = sorted_windows(plan);
    let Some(first) = windows.first() else { return };
    let split = match (roles.scenario, roles.second.as_deref(), windows.get(1)) {
        (Scenario::FailoverAsynchronous, Some(second), Some(w2)) => {
            let install = StepOp::Install(second.to_owned());
            steps
                .iter()
                .position(|s| s.op == install)
                .map(|i| (i, w2.name.clone()))
        }
        _ => None,
    };
    for (i, s) in steps.iter_mut().enumerate() {
        s.window = Some(match &split {
            Some((at, w2)) if i >= *at => w2.clone(),
            _ => first.name.clone(),
        });
    }
}

fn sorted_windows(plan: &Plan) -> Vec<&swing_schema::Window> {
    let mut w: Vec<_> = plan.windows.iter().collect();
    w.sort_by_key(|w| (w.start, w.end));
    w
}

/// A window placed on the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSlot {
    pub name: String,
    pub start: String,
    pub end: String,
    pub start_s: u64,
    pub end_s: u64,
}

/// The estimated schedule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schedule {
    /// First window's start (RFC 3339); `None`: offsets count from the start of the apply.
    pub origin: Option<String>,
    pub windows: Vec<WindowSlot>,
    /// Per step (same index as `CompiledPlan::steps`): start and end, seconds from the origin.
    pub start: Vec<u64>,
    pub end: Vec<u64>,
    /// Critical path without waiting for windows.
    pub work_s: u64,
    /// First start to last end, gaps between windows included.
    pub elapsed_s: u64,
    /// From the end of `failover.break` to the end of `failover.resync`.
    pub unprotected_s: u64,
}

/// Pass: earliest start of every step after its dependencies, inside its window. A
/// window-bound step that would start after its window ends moves to the next window.
pub fn schedule(steps: &mut [Step], plan: &Plan) -> Schedule {
    let windows = sorted_windows(plan);
    let origin = windows.first().map(|w| w.start);
    let slots: Vec<WindowSlot> = windows
        .iter()
        .map(|w| {
            let off = |t: chrono::DateTime<chrono::FixedOffset>| {
                origin
                    .map(|o| (t - o).num_seconds().max(0) as u64)
                    .unwrap_or(0)
            };
            WindowSlot {
                name: w.name.clone(),
                start: w.start.to_rfc3339(),
                end: w.end.to_rfc3339(),
                start_s: off(w.start),
                end_s: off(w.end),
            }
        })
        .collect();
    let n = steps.len();
    let mut start = vec![0u64; n];
    let mut end = vec![0u64; n];
    let mut work_end = vec![0u64; n];
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..n {
        let deps: Vec<usize> = steps[i]
            .depends_on
            .iter()
            .filter_map(|d| index.get(d).copied())
            .collect();
        let ready = deps.iter().map(|&d| end[d]).max().unwrap_or(0);
        let work_ready = deps.iter().map(|&d| work_end[d]).max().unwrap_or(0);
        let mut at = ready;
        if let Some(wname) = steps[i].window.clone()
            && let Some(wi) = slots.iter().position(|w| w.name == wname)
        {
            at = at.max(slots[wi].start_s);
            if steps[i].window_bound && at >= slots[wi].end_s {
                // Too late for its window: the next window that is still ahead takes it.
                if let Some(next) = slots
                    .iter()
                    .skip(wi + 1)
                    .find(|w| at.max(w.start_s) < w.end_s)
                {
                    at = at.max(next.start_s);
                    steps[i].window = Some(next.name.clone());
                }
            }
        }
        start[i] = at;
        // Saturating: validation bounds every duration, this keeps a bug from becoming a panic.
        end[i] = at.saturating_add(steps[i].estimate_s);
        work_end[i] = work_ready.saturating_add(steps[i].estimate_s);
        index.insert(steps[i].id.clone(), i);
    }
    let first = start.iter().copied().min().unwrap_or(0);
    let last = end.iter().copied().max().unwrap_or(0);
    Schedule {
        origin: origin.map(|o| o.to_rfc3339()),
        windows: slots,
        start,
        end,
        work_s: work_end.iter().copied().max().unwrap_or(0),
        elapsed_s: last.saturating_sub(first),
        unprotected_s: 0,
    }
}

/// Pass: marks the steps that run while the pair has no failover relationship.
pub fn protection(steps: &mut [Step], schedule: &mut Schedule) {
    let pos = |op: StepOp| steps.iter().position(|s| s.op == op);
    let (Some(b), Some(r)) = (pos(StepOp::Break), pos(StepOp::Resync)) else {
        return;
    };
    let (from, to) = (schedule.end[b], schedule.end[r]);
    schedule.unprotected_s = to.saturating_sub(from);
    for (i, s) in steps.iter_mut().enumerate() {
        s.unprotected = i != b && schedule.start[i] >= from && schedule.start[i] < to;
    }
}
