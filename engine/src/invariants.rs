//! The one checker of the eight invariants every compiled plan keeps (`procedures.md`).
//!
//! It reads only a [`Subject`]: the facts a reviewer sees (steps with `depends_on`, start and
//! downtime, the appliances' roles, windows, the DNS switch's old TTL). [`check`] takes them
//! from a plan view, so saved plan files and JSON output are checked alike; compile hands over
//! the same facts from its steps. "A precedes B" means B depends on A, directly or
//! transitively.
//!
//! Must not: know how compile builds the DAG, import another engine module, or repair
//! anything — it reports.

use swing_schema::output::{PlanView, Scenario};

/// What the invariants are checked on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject<'v> {
    pub scenario: Scenario,
    /// `Some` (the old TTL in seconds) when the site moves by DNS.
    pub dns_old_ttl_s: Option<u64>,
    /// Steps in execution order.
    pub steps: Vec<StepFacts<'v>>,
    pub appliances: Vec<ApplianceFacts<'v>>,
    /// Maintenance windows: start and duration, seconds from the schedule's origin.
    pub windows: Vec<(u64, u64)>,
}

/// One step as the invariants see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFacts<'v> {
    pub id: &'v str,
    pub depends_on: &'v [String],
    pub start_s: u64,
    pub downtime: bool,
}

/// One appliance as the invariants see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplianceFacts<'v> {
    pub name: &'v str,
    /// `primary`, `backup`, `old`, `new` or `none`, as in the plan view.
    pub role_before: &'v str,
    pub upgraded: bool,
}

impl<'v> Subject<'v> {
    /// The facts of a plan view.
    pub fn of_view(view: &'v PlanView) -> Self {
        Subject {
            scenario: view.plan.scenario,
            dns_old_ttl_s: view
                .plan
                .switch
                .as_ref()
                .filter(|s| s.method == "dns")
                .map(|s| s.old_ttl_s.unwrap_or(0)),
            steps: view
                .steps
                .iter()
                .map(|s| StepFacts {
                    id: &s.id,
                    depends_on: &s.depends_on,
                    start_s: s.start_s,
                    downtime: s.downtime,
                })
                .collect(),
            appliances: view
                .appliances
                .iter()
                .map(|a| ApplianceFacts {
                    name: &a.name,
                    role_before: &a.role_before,
                    upgraded: a.upgraded,
                })
                .collect(),
            windows: view
                .windows
                .iter()
                .map(|w| (w.start_s, w.duration_s))
                .collect(),
        }
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// 1–8 as numbered in `procedures.md`; 0 for a structural problem (unknown or later dependency).
    pub number: u8,
    pub message: String,
}

struct Order<'s, 'v> {
    steps: &'s [StepFacts<'v>],
    /// `anc[i][j]`: step j precedes step i.
    anc: Vec<Vec<bool>>,
}

impl<'s, 'v> Order<'s, 'v> {
    fn new(steps: &'s [StepFacts<'v>], out: &mut Vec<Violation>) -> Self {
        let n = steps.len();
        let mut anc = vec![vec![false; n]; n];
        for i in 0..n {
            for d in steps[i].depends_on {
                match steps.iter().position(|s| s.id == d) {
                    Some(j) if j < i => {
                        anc[i][j] = true;
                        let (before, after) = anc.split_at_mut(i);
                        for (k, a) in before[j].iter().enumerate() {
                            if *a {
                                after[0][k] = true;
                            }
                        }
                    }
                    Some(_) => out.push(Violation {
                        number: 0,
                        message: format!("{} is listed before its dependency {d}", steps[i].id),
                    }),
                    None => out.push(Violation {
                        number: 0,
                        message: format!("{} depends on unknown step {d}", steps[i].id),
                    }),
                }
            }
        }
        Order { steps, anc }
    }

    fn idx(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    fn get(&self, id: &str) -> Option<&'s StepFacts<'v>> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// Whether `a` precedes `b`; `None` when either is missing.
    fn precedes(&self, a: &str, b: &str) -> Option<bool> {
        Some(self.anc[self.idx(b)?][self.idx(a)?])
    }
}

/// Checks all eight invariants on a plan view; an empty list means the plan keeps them all.
pub fn check(view: &PlanView) -> Vec<Violation> {
    check_subject(&Subject::of_view(view))
}

/// Checks all eight invariants on the given facts.
pub fn check_subject(view: &Subject<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    let o = Order::new(&view.steps, &mut out);
    let scenario = view.scenario;
    let pair = matches!(
        scenario,
        Scenario::FailoverSynchronous | Scenario::FailoverAsynchronous
    );
    let mut v = |number: u8, message: String| out.push(Violation { number, message });
    let need = |number: u8, a: &str, b: &str, v: &mut dyn FnMut(u8, String)| match o.precedes(a, b)
    {
        Some(true) => {}
        Some(false) => v(number, format!("{a} must precede {b}")),
        None => v(
            number,
            format!(
                "{a} and {b} must both be in the plan ({} missing)",
                if o.idx(a).is_none() { a } else { b }
            ),
        ),
    };
    let installs: Vec<&str> = view
        .steps
        .iter()
        .filter(|s| s.id.ends_with(".install"))
        .map(|s| s.id)
        .collect();
    let role = |r: &str| {
        view.appliances
            .iter()
            .find(|a| a.role_before == r)
            .map(|a| a.name.to_owned())
    };

    // 1. Every install after backup.config and, in a pair, after failover.break.
    for i in &installs {
        need(1, "backup.config", i, &mut v);
        if pair {
            need(1, "failover.break", i, &mut v);
        }
    }
    // 2. failover.sync precedes failover.break.
    if pair || o.idx("failover.sync").is_some() || o.idx("failover.break").is_some() {
        need(2, "failover.sync", "failover.break", &mut v);
    }
    // 3. synchronous: the primary's install … verify precede the backup's install.
    if scenario == Scenario::FailoverSynchronous
        && let (Some(p), Some(b)) = (role("primary"), role("backup"))
    {
        for s in ["install", "online", "verify"] {
            need(3, &format!("{p}.{s}"), &format!("{b}.install"), &mut v);
        }
    }
    // 4. asynchronous: backup's verify precedes switch.to-<backup>; switch.verify-<backup>
    //    precedes the old primary's install.
    if scenario == Scenario::FailoverAsynchronous
        && let (Some(p), Some(b)) = (role("primary"), role("backup"))
    {
        need(4, &format!("{b}.verify"), &format!("switch.to-{b}"), &mut v);
        need(
            4,
            &format!("switch.verify-{b}"),
            &format!("{p}.install"),
            &mut v,
        );
    }
    // 5. failover.establish after every verify of every upgraded appliance.
    if pair {
        for a in view.appliances.iter().filter(|a| a.upgraded) {
            need(
                5,
                &format!("{}.verify", a.name),
                "failover.establish",
                &mut v,
            );
        }
    }
    // 6. dns: switch.prepare precedes switch.to-* by at least the old TTL.
    if let Some(old_ttl) = view.dns_old_ttl_s {
        for to in view.steps.iter().filter(|s| s.id.starts_with("switch.to-")) {
            need(6, "switch.prepare", to.id, &mut v);
            if let Some(prep) = o.get("switch.prepare")
                && to.start_s < prep.start_s + old_ttl
            {
                v(
                    6,
                    format!(
                        "{} starts {}s after switch.prepare, before the old TTL ({old_ttl}s) expired",
                        to.id,
                        to.start_s.saturating_sub(prep.start_s)
                    ),
                );
            }
        }
    }
    // 7. migration: certs.default and new.restore precede switch.to-new; old.decommission last.
    if scenario == Scenario::Migration
        && let (Some(old), Some(new)) = (role("old"), role("new"))
    {
        let to = format!("switch.to-{new}");
        need(7, "certs.default", &to, &mut v);
        need(7, &format!("{new}.restore"), &to, &mut v);
        let last = format!("{old}.decommission");
        if o.idx(&last).is_none() {
            v(7, format!("{last} is missing"));
        }
        for s in view.steps.iter().filter(|s| s.id != last) {
            if o.precedes(s.id, &last) == Some(false) {
                v(7, format!("{last} must come after {}", s.id));
            }
        }
    }
    // 8. No downtime step starts outside a window when windows are given.
    if !view.windows.is_empty() {
        for s in view.steps.iter().filter(|s| s.downtime) {
            let inside = view
                .windows
                .iter()
                .any(|&(start, duration)| s.start_s >= start && s.start_s < start + duration);
            if !inside {
                v(
                    8,
                    format!("{} causes downtime but starts outside every window", s.id),
                );
            }
        }
    }
    out
}
