//! Estimates: step durations (the guide's defaults, overridable by `policy.estimates`),
//! downtime per strategy, the schedule across the maintenance windows, the time the pair runs
//! without failover protection, whether the steps fit the windows, the findings a reviewer
//! must see, and the abort path of each phase.
//!
//! Must not: read the clock or do IO (a schedule is relative to the first window's start, or
//! to the start of the apply when there are no windows), or change which steps exist or their
//! order (that is `compile`'s job).

use std::collections::BTreeMap;

use swing_schema::output::{Finding, Level, Phase, Scenario, human_duration};
use swing_schema::{Plan, Switch};

use crate::compile::{CompiledPlan, Roles, Step, StepOp};

/// Default duration of an action, seconds. Sources: the guide (install 15–60 min, first sync
/// within about 60 s, syncs from seconds to hours) and what a careful operator needs for a
/// UI task; every value can be overridden per step id or per action in `policy.estimates`.
pub fn default_estimate(action: &str) -> u64 {
    match action {
        "health" => 30,
        "clock" | "tls" => 10,
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
        match s.op.action() {
            "install" => {
                let extra = plan.target.packages.len().saturating_sub(1) as u64;
                d += extra * EXTRA_PACKAGE_S;
            }
            "prepare" => d = crate::compile::old_ttl(plan) + 10,
            "switch" => {
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
            d = d.max(crate::compile::old_ttl(plan));
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
            let id = format!("{second}.install");
            steps
                .iter()
                .position(|s| s.id == id)
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
        end[i] = at + steps[i].estimate_s;
        work_end[i] = work_ready + steps[i].estimate_s;
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
        elapsed_s: last - first,
        unprotected_s: 0,
    }
}

/// Pass: marks the steps that run while the pair has no failover relationship.
pub fn protection(steps: &mut [Step], schedule: &mut Schedule) {
    let pos = |id: &str| steps.iter().position(|s| s.id == id);
    let (Some(b), Some(r)) = (pos("failover.break"), pos("failover.resync")) else {
        return;
    };
    let (from, to) = (schedule.end[b], schedule.end[r]);
    schedule.unprotected_s = to.saturating_sub(from);
    for (i, s) in steps.iter_mut().enumerate() {
        s.unprotected = i != b && schedule.start[i] >= from && schedule.start[i] < to;
    }
}

/// Findings about protection, windows and assumptions, most severe first.
pub fn findings(c: &CompiledPlan) -> Vec<Finding> {
    let plan = &c.plan;
    let sch = &c.schedule;
    let mut out = Vec::new();
    let mut push = |level, code: &str, message: String| {
        out.push(Finding {
            level,
            code: code.to_owned(),
            message,
        });
    };
    let max = plan.policy.max_unprotected.secs();
    if sch.unprotected_s > max {
        push(
            Level::Error,
            "unprotected-too-long",
            format!(
                "the pair runs without failover protection for {} but policy.max_unprotected is {}",
                human_duration(sch.unprotected_s),
                human_duration(max)
            ),
        );
    } else if sch.unprotected_s > 0 && sch.unprotected_s * 4 > max * 3 {
        push(
            Level::Warning,
            "unprotected-near-limit",
            format!(
                "the pair runs without failover protection for {}, close to policy.max_unprotected ({})",
                human_duration(sch.unprotected_s),
                human_duration(max)
            ),
        );
    }
    for w in &sch.windows {
        let late: Vec<usize> = c
            .steps
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                s.window_bound && s.window.as_deref() == Some(&w.name) && sch.end[*i] > w.end_s
            })
            .map(|(i, _)| i)
            .collect();
        if let Some(&i) = late.last() {
            push(
                Level::Error,
                "window-overrun",
                format!(
                    "window `{}` is {} long but its steps need {} (last: {}); widen the window or lower estimates",
                    w.name,
                    human_duration(w.end_s - w.start_s),
                    human_duration(sch.end[i].saturating_sub(w.start_s)),
                    c.steps[i].id
                ),
            );
        }
    }
    if !sch.windows.is_empty() {
        for (i, s) in c.steps.iter().enumerate() {
            let inside = sch
                .windows
                .iter()
                .any(|w| sch.start[i] >= w.start_s && sch.start[i] < w.end_s);
            if s.downtime && !inside {
                push(
                    Level::Error,
                    "downtime-outside-window",
                    format!(
                        "{} causes downtime but cannot start inside a maintenance window",
                        s.id
                    ),
                );
            }
        }
    }
    if c.roles.scenario == Scenario::FailoverAsynchronous && plan.windows.len() == 1 {
        push(
            Level::Warning,
            "one-window",
            "an asynchronous failover upgrade wants two windows (one per appliance); both upgrades are scheduled in the one given".to_owned(),
        );
    }
    if plan.windows.is_empty() {
        push(
            Level::Info,
            "no-windows",
            "no maintenance windows: apply may start downtime steps at any time".to_owned(),
        );
    }
    for (name, a) in &plan.appliances {
        if is_decommissioned(c, name) {
            continue;
        }
        match &a.current_version {
            None => push(
                Level::Info,
                "version-unknown",
                format!(
                    "version of {name} is known after refresh (offline plan, no current_version)"
                ),
            ),
            Some(v) if v.components() >= plan.target.version.components() => push(
                Level::Info,
                "already-at-target",
                format!(
                    "{name} already reports {v}; a refresh will drop the steps already satisfied"
                ),
            ),
            Some(_) => {}
        }
    }
    if c.steps.iter().any(|s| s.id == "switch.prepare")
        && !plan.policy.estimates.contains_key("switch.prepare")
    {
        push(
            Level::Info,
            "old-ttl-assumed",
            format!(
                "the record's current TTL is assumed to be {} until a refresh observes it (override: policy.estimates.\"switch.prepare\")",
                human_duration(crate::compile::old_ttl(plan))
            ),
        );
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.level));
    out
}

/// The appliance the plan takes out of service (migration).
pub fn is_decommissioned(c: &CompiledPlan, name: &str) -> bool {
    c.roles.scenario == Scenario::Migration && c.roles.serving == name
}

/// What to do if the plan must stop during a phase.
pub fn abort_path(c: &CompiledPlan, phase: Phase) -> String {
    let r = &c.roles;
    let old = r.serving.as_str();
    let first = r.first.as_str();
    let dir = &c.plan.backup.directory;
    match (r.scenario, phase) {
        (_, Phase::Preflight) => {
            "Nothing has changed: stop and fix what the check reports.".to_owned()
        }
        (Scenario::Migration, Phase::Backup | Phase::Certificates) => format!(
            "{old} still serves the site unchanged: stop; the backups in {dir} and the new appliance can be discarded."
        ),
        (_, Phase::Backup) => format!(
            "No appliance has changed: stop; keep the backups in {dir}. Reset \"Maximum number of concurrent Jump Client upgrades\" if you changed it."
        ),
        (_, Phase::Break) => format!(
            "{old} still serves the site: re-establish the relationship as it was ({old} primary) at /login > Management > Failover > Establish Relationship."
        ),
        (Scenario::Single, Phase::UpgradeFirst) => format!(
            "If the install fails: do NOT restart {first}; contact BeyondTrust Technical Support. Restore from the backup in {dir} only with their help."
        ),
        (Scenario::FailoverSynchronous, Phase::UpgradeFirst) => format!(
            "The site is down while {first} installs. If the install fails: do NOT restart {first}; contact BeyondTrust Technical Support. The not yet upgraded backup can be made primary (/login > Management > Failover > Become Primary) to serve the site meanwhile."
        ),
        (Scenario::FailoverAsynchronous, Phase::UpgradeFirst) => format!(
            "{old} still serves the site, unchanged: stay on {old}. If {first}'s install fails, do NOT restart it; contact BeyondTrust Technical Support. Re-establish the pair only once both run the same version."
        ),
        (Scenario::Migration, Phase::UpgradeFirst) => format!(
            "{old} still serves the site, unchanged: stop and fix {first}; nothing to undo on {old}."
        ),
        (Scenario::Migration, Phase::Switch) => {
            format!("Switch the site back to {old}: it is untouched until decommission.")
        }
        (_, Phase::Switch) => format!(
            "Switch the site back to {old}: it is not upgraded yet and still holds the data up to the break (sessions since then sync once the pair is re-established)."
        ),
        (Scenario::FailoverSynchronous, Phase::UpgradeSecond) => format!(
            "{first} serves the site with the target version. If the install on the backup fails: do NOT restart it; contact BeyondTrust Technical Support. {first} keeps serving without failover protection (policy.max_unprotected)."
        ),
        (_, Phase::UpgradeSecond) => format!(
            "{first} serves the site with the target version; there is no way back to {old} once its install started. If it fails: do NOT restart {old}; contact BeyondTrust Technical Support. {first} keeps serving without failover protection (policy.max_unprotected)."
        ),
        (_, Phase::Reestablish) => format!(
            "Both appliances are upgraded and {first} serves the site. If establishing fails, check the inter-appliance key on both (/login > Management > Security) and retry; {first} keeps serving meanwhile."
        ),
        (_, Phase::SwitchBack) => format!(
            "If promoting or switching fails, make {first} primary again (/login > Management > Failover) and point the site back at {first}."
        ),
        (_, Phase::Restore) => {
            "Only the record's TTL is left low: restore it by hand if needed; nothing else to undo."
                .to_owned()
        }
        (_, Phase::Clients) => {
            "Nothing to roll back: clients catch up over time; finish the follow-up list."
                .to_owned()
        }
        (_, Phase::Decommission) => format!(
            "Irreversible once the reset starts: do not approve until the new appliance has served the site without problems. Until then {old} can take the site back."
        ),
        (_, Phase::Certificates) => format!("{old} still serves the site: stop; nothing to undo."),
    }
}
