//! Diff-plan: the desired end state (a compiled plan) × what was observed → the steps still
//! needed, and drift the plan does not cover.
//!
//! Rule: a *milestone* is a step whose postcondition leaves a lasting, observable mark —
//! an appliance runs the target version (`*.install`, `*.verify`), the site is served by the
//! appliance it moves to (`switch.to-*`, `switch.verify-*`), the relationship is established
//! or a role promoted (`failover.establish`, `failover.promote-*`). A milestone that already
//! holds is done, and so is everything it depends on (it happened before). Preflight checks
//! and the configuration backup that a remaining step depends on run again (cheap, and the
//! world may have moved; every install requires a backup taken by this change).
//! All milestones done = "No changes. The site matches the plan."
//!
//! Drift: before any milestone holds, the world must look like the plan says it starts
//! (reachable appliances, the named primary and backup, the site served by the current
//! primary, no appliance beyond the target); otherwise apply is blocked.
//!
//! Owns that rule. Must not: observe (it gets an [`Observed`]), act, or render.

use std::collections::{BTreeSet, HashMap};

use swing_schema::output::{Condition, Phase, Scenario};

use crate::compile::{CompiledPlan, StepOp};
use crate::condition::{Ctx, judge};
use crate::refresh::Observed;

/// The outcome of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diff {
    /// Steps still needed, in compiled order.
    pub needed: Vec<String>,
    /// Steps already done (by observation).
    pub done: Vec<String>,
    /// Differences from what the plan expects that it does not cover; apply refuses while any.
    pub drift: Vec<String>,
    /// Resources that could not be observed before anything of the plan was done (an
    /// appliance down, a DNS server refusing), each with its cause; apply refuses while any.
    pub unobserved: Vec<String>,
}

impl Diff {
    pub fn has_changes(&self) -> bool {
        !self.needed.is_empty()
    }
}

/// The message of a converged site.
pub const NO_CHANGES: &str = "No changes. The site matches the plan.";

/// Whether `cond` holds by the observation, asking the [condition judge](crate::condition).
/// The diff counts only the lasting marks (version, role, who serves the site) and the `all`
/// of them; health, certificates and the like are re-checked by the steps that remain, not
/// by the diff.
fn holds(c: &CompiledPlan, o: &Observed, cond: &Condition) -> Option<bool> {
    match cond {
        Condition::Version { .. } | Condition::Role { .. } | Condition::SiteServedBy { .. } => {
            judge(cond, o, Ctx { plan: &c.plan }).known()
        }
        Condition::All { all } => {
            let mut out = None;
            for x in all {
                match holds(c, o, x) {
                    Some(true) => out = Some(true),
                    Some(false) => return Some(false),
                    None => {}
                }
            }
            out
        }
        _ => None,
    }
}

/// Whether the site is served by `appliance`, from the switch's observation.
pub fn served_by(c: &CompiledPlan, o: &Observed, appliance: &str) -> Option<bool> {
    let cond = Condition::SiteServedBy {
        appliance: appliance.to_owned(),
    };
    judge(&cond, o, Ctx { plan: &c.plan }).known()
}

/// Whether a step of the switch (`switch.*`): moving the site or seeing it moved.
fn is_switch_step(op: &StepOp) -> bool {
    matches!(
        op,
        StepOp::LowerTtl | StepOp::SwitchTo(_) | StepOp::VerifySwitch(_) | StepOp::RestoreTtl
    )
}

fn is_milestone(c: &CompiledPlan, op: &StepOp, cond: &Condition) -> bool {
    match cond {
        Condition::Version { .. } => true,
        Condition::All { all } => all.iter().any(|x| is_milestone(c, op, x)),
        Condition::SiteServedBy { appliance } => {
            is_switch_step(op)
                && (appliance != &c.roles.serving
                    || c.roles.final_primary.as_deref() == Some(appliance))
        }
        Condition::Role { .. } => matches!(op, StepOp::Establish | StepOp::Promote(_)),
        _ => false,
    }
}

/// Computes the steps still needed and the drift.
pub fn diff(c: &CompiledPlan, o: &Observed) -> Diff {
    let idx: HashMap<&str, usize> = c
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let n = c.steps.len();
    let mut done = vec![false; n];
    let mut any_milestone = false;
    let mut all_milestones = true;
    // Walk backwards so a milestone that holds marks its ancestors done.
    for i in (0..n).rev() {
        let s = &c.steps[i];
        if !is_milestone(c, &s.op, &s.postcondition) {
            continue;
        }
        // Roles and a switch back to the final primary only count once every appliance runs
        // the target: before, the old primary already is primary and serves the site.
        let needs_upgrades = s.phase == Phase::SwitchBack || mentions_role(&s.postcondition);
        if holds(c, o, &s.postcondition) == Some(true) && (!needs_upgrades || later_done(c, o)) {
            any_milestone = true;
            let mut stack = vec![i];
            while let Some(k) = stack.pop() {
                if done[k] {
                    continue;
                }
                done[k] = true;
                for d in &c.steps[k].depends_on {
                    if let Some(&j) = idx.get(d.as_str()) {
                        stack.push(j);
                    }
                }
            }
        } else {
            all_milestones = false;
        }
    }
    let mut diff = Diff::default();
    if all_milestones && any_milestone {
        diff.done = c.steps.iter().map(|s| s.id.clone()).collect();
        return diff;
    }
    // Preflight checks and the configuration backup among the (done) ancestors of remaining
    // steps run again.
    let mut rerun: BTreeSet<usize> = BTreeSet::new();
    let mut visited = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    for (i, s) in c.steps.iter().enumerate() {
        if !done[i] {
            stack.extend(
                s.depends_on
                    .iter()
                    .filter_map(|d| idx.get(d.as_str()).copied()),
            );
        }
    }
    while let Some(k) = stack.pop() {
        if visited[k] {
            continue;
        }
        visited[k] = true;
        let again = c.steps[k].phase == Phase::Preflight || c.steps[k].op == StepOp::BackupConfig;
        if again && done[k] {
            rerun.insert(k);
        }
        stack.extend(
            c.steps[k]
                .depends_on
                .iter()
                .filter_map(|d| idx.get(d.as_str()).copied()),
        );
    }
    for (i, s) in c.steps.iter().enumerate() {
        if !done[i] || rerun.contains(&i) {
            diff.needed.push(s.id.clone());
        } else {
            diff.done.push(s.id.clone());
        }
    }
    diff.drift = drift(c, o, any_milestone);
    if !any_milestone {
        diff.unobserved = unobserved(o);
    }
    diff
}

/// The resources that could not be observed, each with its cause: before a change starts
/// every one of them must answer (during a change an installing appliance is expected to be
/// away, so the diff only asks this while no milestone holds).
pub fn unobserved(o: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    for (name, r) in &o.appliances {
        match r {
            Err(e) => out.push(format!("appliance {name}: {}", e.message)),
            Ok(a) if !a.reachable => out.push(format!(
                "appliance {name} does not answer: {}",
                a.error_message.as_deref().unwrap_or("no response")
            )),
            Ok(_) => {}
        }
    }
    if let Some((record, Err(e))) = &o.dns {
        out.push(format!("dns {record}: {}", e.message));
    }
    if let Some((public, Err(e))) = &o.nat {
        out.push(format!("nat {public}: {}", e.message));
    }
    out
}

fn mentions_role(c: &Condition) -> bool {
    match c {
        Condition::Role { .. } => true,
        Condition::All { all } => all.iter().any(mentions_role),
        _ => false,
    }
}

/// Whether the upgrades of every appliance the plan upgrades are observed done.
fn later_done(c: &CompiledPlan, o: &Observed) -> bool {
    let target = c.plan.target.version.as_str();
    c.plan.appliances.keys().all(|name| {
        c.is_decommissioned(name)
            || o.appliance(name)
                .is_some_and(|a| a.version.as_deref() == Some(target))
    })
}

fn drift(c: &CompiledPlan, o: &Observed, started: bool) -> Vec<String> {
    let mut out = Vec::new();
    let target = c.plan.target.version.components();
    for (name, r) in &o.appliances {
        if let Ok(a) = r
            && a.reachable
            && let Some(v) = &a.version
            && swing_schema::Version(v.clone()).components() > target
        {
            out.push(format!(
                "appliance {name} runs {v}, newer than the plan's target {}",
                c.plan.target.version
            ));
        }
    }
    if started {
        return out;
    }
    // Nothing done yet: the world must look as the plan starts.
    if let Some(f) = &c.plan.failover {
        for (name, want) in [(&f.primary, "primary"), (&f.backup, "backup")] {
            if let Some(a) = o.appliance(name)
                && a.reachable
                && a.role.as_str() != want
            {
                out.push(format!(
                    "appliance {name} is {}, the plan names it {want}",
                    a.role.as_str()
                ));
            }
        }
    }
    if matches!(
        c.roles.scenario,
        Scenario::FailoverAsynchronous | Scenario::FailoverSynchronous | Scenario::Migration
    ) && served_by(c, o, &c.roles.serving) == Some(false)
    {
        out.push(format!(
            "the site is not served by {}, where the plan starts",
            c.roles.serving
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{CompileOptions, compile};
    use crate::provider::{ApplianceObservation, FailoverRole};

    fn plan() -> swing_schema::Plan {
        serde_json::from_value(serde_json::json!({
            "version": 1, "name": "access-25-1-async-ip", "site": "access.example.com",
            "target": {"version": "25.1.3", "packages": ["base-7.2.1", "pra-25.1.3"]},
            "appliances": {"a": {"address": "10.0.0.11"}, "b": {"address": "10.0.0.12"}},
            "failover": {"primary": "a", "backup": "b", "strategy": "asynchronous",
                          "switch": {"method": "shared-ip", "address": "10.0.0.10"}},
            "backup": {"directory": "./backups", "password": "${env:P}"},
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x", "client_secret": "${env:S}"}}
        }))
        .unwrap()
    }

    fn app(version: &str, role: FailoverRole, shared: bool) -> ApplianceObservation {
        ApplianceObservation {
            reachable: true,
            version: Some(version.into()),
            healthy: true,
            role,
            shared_ips: if shared {
                vec!["10.0.0.10".into()]
            } else {
                vec![]
            },
            ..ApplianceObservation::unreachable()
        }
    }

    fn world(a: ApplianceObservation, b: ApplianceObservation) -> Observed {
        let mut o = Observed::default();
        o.appliances.insert("a".into(), Ok(a));
        o.appliances.insert("b".into(), Ok(b));
        o
    }

    #[test]
    fn fresh_site_needs_every_step() {
        let c = compile(
            &crate::validate::valid_plan(&plan()),
            &CompileOptions::default(),
        )
        .unwrap();
        let d = diff(
            &c,
            &world(
                app("24.3.2", FailoverRole::Primary, true),
                app("24.3.2", FailoverRole::Backup, false),
            ),
        );
        assert_eq!(d.needed.len(), c.steps.len());
        assert!(d.drift.is_empty(), "{:?}", d.drift);
        assert!(d.has_changes());
    }

    #[test]
    fn partial_apply_starts_at_the_old_primarys_install() {
        let c = compile(
            &crate::validate::valid_plan(&plan()),
            &CompileOptions::default(),
        )
        .unwrap();
        let d = diff(
            &c,
            &world(
                app("24.3.2", FailoverRole::None, false),
                app("25.1.3", FailoverRole::None, true),
            ),
        );
        assert!(d.drift.is_empty(), "{:?}", d.drift);
        for gone in [
            "failover.break",
            "b.install",
            "b.verify-manual",
            "switch.to-b",
        ] {
            assert!(
                !d.needed.contains(&gone.to_owned()),
                "{gone} should be done: {:?}",
                d.needed
            );
        }
        for left in [
            "backup.config",
            "a.install",
            "a.online",
            "a.verify",
            "failover.establish",
            "failover.resync",
        ] {
            assert!(
                d.needed.contains(&left.to_owned()),
                "{left} missing: {:?}",
                d.needed
            );
        }
        let first_install = d
            .needed
            .iter()
            .position(|s| s.ends_with(".install"))
            .unwrap();
        assert_eq!(d.needed[first_install], "a.install");
    }

    #[test]
    fn converged_site_has_no_changes() {
        let c = compile(
            &crate::validate::valid_plan(&plan()),
            &CompileOptions::default(),
        )
        .unwrap();
        let d = diff(
            &c,
            &world(
                app("25.1.3", FailoverRole::Backup, false),
                app("25.1.3", FailoverRole::Primary, true),
            ),
        );
        assert!(!d.has_changes(), "{:?}", d.needed);
        assert!(d.drift.is_empty());
    }

    #[test]
    fn swapped_roles_before_anything_ran_is_drift() {
        let c = compile(
            &crate::validate::valid_plan(&plan()),
            &CompileOptions::default(),
        )
        .unwrap();
        let d = diff(
            &c,
            &world(
                app("24.3.2", FailoverRole::Backup, true),
                app("24.3.2", FailoverRole::Primary, false),
            ),
        );
        assert!(
            d.drift
                .contains(&"appliance a is backup, the plan names it primary".to_owned()),
            "{:?}",
            d.drift
        );
        let mut o = world(
            app("24.3.2", FailoverRole::Primary, true),
            app("24.3.2", FailoverRole::Backup, false),
        );
        o.appliances.insert(
            "b".into(),
            Ok(ApplianceObservation {
                error_message: Some("connection refused (10.0.0.12:443)".into()),
                ..ApplianceObservation::unreachable()
            }),
        );
        let d = diff(&c, &o);
        assert_eq!(
            d.unobserved,
            vec!["appliance b does not answer: connection refused (10.0.0.12:443)".to_owned()]
        );
        assert!(d.drift.is_empty(), "an outage is not drift: {:?}", d.drift);
    }
}
