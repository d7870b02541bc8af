//! What a reviewer must see about a compiled plan: the findings (protection, windows,
//! assumptions) and the abort path of each phase.
//!
//! Owns the judgement of the estimates compile produced. Must not: estimate or schedule
//! (compile's estimate passes do), or change the compiled plan.

use swing_schema::output::{Finding, Level, Phase, Scenario, human_duration};

use crate::compile::{CompiledPlan, StepOp};
use crate::refresh::Observed;

/// Findings about protection, windows and assumptions, most severe first. With what a refresh
/// `seen`, assumptions it settled are left out and values it could not read are named.
pub fn findings(c: &CompiledPlan, seen: Option<&Observed>) -> Vec<Finding> {
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
        if c.is_decommissioned(name) {
            continue;
        }
        let observed = seen.map(|o| o.appliances.get(name));
        match &a.current_version {
            None => match observed {
                None => push(
                    Level::Info,
                    "version-unknown",
                    format!(
                        "version of {name} is known after refresh (offline plan, no current_version)"
                    ),
                ),
                Some(Some(Ok(o))) if o.reachable && o.version.is_some() => {}
                Some(_) => push(
                    Level::Warning,
                    "version-unknown",
                    format!("version of {name} is unknown: the refresh could not read it"),
                ),
            },
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
    if let Some(o) = seen {
        for (name, r) in &o.appliances {
            for w in r.iter().flat_map(|a| &a.warnings) {
                push(
                    Level::Warning,
                    "unreadable-value",
                    format!("appliance {name}: {w}"),
                );
            }
        }
    }
    let lower_ttl = StepOp::LowerTtl.id();
    let ttl_observed = seen.is_some_and(|o| matches!(o.dns, Some((_, Ok(_)))));
    if c.steps.iter().any(|s| s.op == StepOp::LowerTtl)
        && !plan.policy.estimates.contains_key(&lower_ttl)
        && !ttl_observed
    {
        push(
            Level::Info,
            "old-ttl-assumed",
            format!(
                "the record's current TTL is assumed to be {} until a refresh observes it (override: policy.estimates.\"{lower_ttl}\")",
                human_duration(crate::compile::old_ttl(plan))
            ),
        );
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.level));
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{CompileOptions, compile};
    use crate::provider::{ApplianceObservation, FailoverRole};

    fn compiled() -> CompiledPlan {
        let text = include_str!("../../../plans/examples/failover-async-dns.yaml");
        let mut c = compile(&crate::validate::valid(text), &CompileOptions::default()).unwrap();
        // As if the plan gave no current_version: only a refresh can tell.
        for a in c.plan.appliances.values_mut() {
            a.current_version = None;
        }
        c
    }

    fn seen(warnings: &[&str]) -> Observed {
        let mut o = Observed::default();
        for (name, role) in [
            ("east", FailoverRole::Primary),
            ("west", FailoverRole::Unknown),
        ] {
            o.appliances.insert(
                name.into(),
                Ok(ApplianceObservation {
                    reachable: true,
                    version: Some("24.3.1".into()),
                    role,
                    warnings: warnings.iter().map(|w| w.to_string()).collect(),
                    ..ApplianceObservation::unreachable()
                }),
            );
        }
        o
    }

    fn codes(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn a_refreshed_plan_has_no_offline_wording_and_names_unreadable_values() {
        let c = compiled();
        let names: Vec<&String> = c.plan.appliances.keys().collect();
        assert_eq!(names, ["east", "west"], "the example's appliances");
        let offline = findings(&c, None);
        assert!(codes(&offline).contains(&"version-unknown"), "{offline:?}");

        assert!(codes(&offline).contains(&"old-ttl-assumed"), "{offline:?}");
        let mut o = seen(&[]);
        o.dns = Some((
            "access.example.com".into(),
            Ok(crate::provider::DnsObservation {
                record: "access.example.com".into(),
                addresses: vec!["10.0.0.11".parse().unwrap()],
                ttl: 3600,
            }),
        ));
        let live = findings(&c, Some(&o));
        assert!(!codes(&live).contains(&"version-unknown"), "{live:?}");
        assert!(!codes(&live).contains(&"old-ttl-assumed"), "{live:?}");
        assert!(
            live.iter().all(|f| !f.message.contains("offline")),
            "{live:?}"
        );

        let w = "<failover_role> `x` is not a role swing knows: the role is unknown";
        let live = findings(&c, Some(&seen(&[w])));
        let unreadable: Vec<&Finding> = live
            .iter()
            .filter(|f| f.code == "unreadable-value")
            .collect();
        assert_eq!(unreadable.len(), 2, "{live:?}");
        assert_eq!(unreadable[0].level, Level::Warning);
        assert_eq!(unreadable[0].message, format!("appliance east: {w}"));

        // An appliance the refresh could not read is named as such, not as "offline".
        let mut o = seen(&[]);
        o.appliances
            .insert("west".into(), Ok(ApplianceObservation::unreachable()));
        let live = findings(&c, Some(&o));
        let v: Vec<&Finding> = live
            .iter()
            .filter(|f| f.code == "version-unknown")
            .collect();
        assert_eq!(v.len(), 1, "{live:?}");
        assert!(v[0].message.contains("west") && v[0].message.contains("refresh could not read"));
    }
}
