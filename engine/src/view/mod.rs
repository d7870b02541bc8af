//! The one plan view every renderer reads: [`build`] turns a [`CompiledPlan`] into the
//! `swing_schema::output::PlanView` (the JSON output model and the saved plan file), so text,
//! Markdown, JSON, DOT and Mermaid cannot disagree.
//!
//! Owns: which changes a plan shows, the appliance before/after table, the phase list and the
//! summary line, the findings and the abort paths (`findings`). Must not: compute estimates
//! (compile's estimate passes do), format for a terminal (see
//! `render`), or include anything secret (the plan's secret references are never copied here).

use swing_schema::output::{
    ApplianceView, ChangeAction, ChangeView, Level, OUTPUT_FORMAT_VERSION, Phase, PhaseView,
    PlanInfo, PlanSetView, PlanView, Scenario, StepKind, StepView, SummaryView, SwitchInfo,
    WindowView, human_duration,
};
use swing_schema::{Source, Switch};

use crate::compile::{CompiledPlan, StepOp};

mod findings;

pub use findings::{abort_path, findings};

/// Builds the view of one compiled plan.
pub fn build(c: &CompiledPlan) -> PlanView {
    let mut view = skeleton(c);
    view.findings = findings(c, None);
    view.phases = phases(c, &view.steps);
    view.changes = changes(c);
    view.summary = summary(c, &view);
    view
}

/// The plan, appliances, windows and steps, before phases, changes, findings and summary.
fn skeleton(c: &CompiledPlan) -> PlanView {
    PlanView {
        format_version: OUTPUT_FORMAT_VERSION,
        swing_version: crate::SWING_VERSION.to_owned(),
        plan: info(c),
        appliances: appliances(c),
        windows: windows(c),
        steps: steps(c),
        phases: Vec::new(),
        changes: Vec::new(),
        summary: SummaryView {
            steps: 0,
            auto: 0,
            operator: 0,
            waits: 0,
            gates: 0,
            appliances_to_upgrade: 0,
            estimate_s: 0,
            elapsed_s: 0,
            downtime_s: 0,
            unprotected_s: 0,
            max_unprotected_s: 0,
            fits_windows: None,
            errors: 0,
            warnings: 0,
            line: String::new(),
        },
        findings: Vec::new(),
        refresh: None,
    }
}

/// Several plans in one output, in the order given.
pub fn set(views: Vec<PlanView>) -> PlanSetView {
    PlanSetView {
        format_version: OUTPUT_FORMAT_VERSION,
        plans: views,
    }
}

fn info(c: &CompiledPlan) -> PlanInfo {
    let p = &c.plan;
    let switch = match c.roles.scenario {
        Scenario::FailoverAsynchronous | Scenario::Migration => p
            .failover
            .as_ref()
            .and_then(|f| f.switch.as_ref())
            .or(p.migration.as_ref().map(|m| &m.switch)),
        _ => None,
    }
    .map(|sw| match sw {
        Switch::SharedIp { address } => SwitchInfo {
            method: sw.method().to_owned(),
            subject: address.clone(),
            ttl_s: None,
            old_ttl_s: None,
            old_ttl_assumed: false,
        },
        Switch::Dns { record, ttl, .. } => SwitchInfo {
            method: sw.method().to_owned(),
            subject: record.clone(),
            ttl_s: Some(*ttl),
            old_ttl_s: Some(crate::compile::old_ttl(p)),
            old_ttl_assumed: !p.policy.estimates.contains_key(&StepOp::LowerTtl.id()),
        },
        Switch::Nat { public, .. } => SwitchInfo {
            method: sw.method().to_owned(),
            subject: public.clone(),
            ttl_s: None,
            old_ttl_s: None,
            old_ttl_assumed: false,
        },
    });
    PlanInfo {
        name: p.name.clone(),
        site: p.site.clone(),
        file: c.options.file.clone(),
        scenario: c.roles.scenario,
        target_version: p.target.version.to_string(),
        source: match p.target.source {
            Source::Automatic => "automatic",
            Source::Manual => "manual",
        }
        .to_owned(),
        packages: p.target.packages.clone(),
        switch,
        offline: c.options.offline,
        schedule_origin: c.schedule.origin.clone(),
    }
}

fn appliances(c: &CompiledPlan) -> Vec<ApplianceView> {
    let target = c.plan.target.version.to_string();
    c.plan
        .appliances
        .iter()
        .map(|(name, a)| {
            let gone = c.is_decommissioned(name);
            let role_after = match (c.roles.scenario, c.roles.final_primary.as_deref()) {
                (Scenario::Migration, _) if gone => "decommissioned",
                (Scenario::Migration, _) => "serving",
                (_, Some(fp)) if fp == name => "primary",
                (_, Some(_)) => "backup",
                _ => "none",
            };
            ApplianceView {
                name: name.clone(),
                address: a.address.clone(),
                version_before: a.current_version.as_ref().map(|v| v.to_string()),
                version_after: if gone { None } else { Some(target.clone()) },
                role_before: c.role_before(name).to_owned(),
                role_after: role_after.to_owned(),
                upgraded: !gone,
            }
        })
        .collect()
}

fn steps(c: &CompiledPlan) -> Vec<StepView> {
    c.steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepView {
            id: s.id.clone(),
            title: s.title.clone(),
            kind: s.kind,
            phase: s.phase,
            action: s.op.action().to_owned(),
            resource: s.resource.clone(),
            appliance: s.appliance.clone(),
            depends_on: s.depends_on.clone(),
            preconditions: s.preconditions.clone(),
            postcondition: s.postcondition.clone(),
            instructions: s.instructions.clone(),
            on_failure: s.on_failure.clone(),
            estimate_s: s.estimate_s,
            start_s: c.schedule.start.get(i).copied().unwrap_or(0),
            downtime: s.downtime,
            downtime_s: s.downtime_s,
            unprotected: s.unprotected,
            window: s.window.clone(),
            window_bound: s.window_bound,
        })
        .collect()
}

fn windows(c: &CompiledPlan) -> Vec<WindowView> {
    let sch = &c.schedule;
    sch.windows
        .iter()
        .map(|w| {
            let mine: Vec<usize> = c
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| s.window.as_deref() == Some(w.name.as_str()))
                .map(|(i, _)| i)
                .collect();
            let last_end = mine.iter().map(|&i| sch.end[i]).max().unwrap_or(w.start_s);
            let fits = mine
                .iter()
                .filter(|&&i| c.steps[i].window_bound)
                .all(|&i| sch.end[i] <= w.end_s && sch.start[i] >= w.start_s);
            WindowView {
                name: w.name.clone(),
                start: w.start.clone(),
                end: w.end.clone(),
                start_s: w.start_s,
                duration_s: w.end_s - w.start_s,
                steps: mine.iter().map(|&i| c.steps[i].id.clone()).collect(),
                used_s: last_end.saturating_sub(w.start_s),
                fits,
            }
        })
        .collect()
}

fn phases(c: &CompiledPlan, steps: &[StepView]) -> Vec<PhaseView> {
    let mut phases: Vec<_> = steps.iter().map(|s| s.phase).collect();
    phases.sort();
    phases.dedup();
    phases
        .into_iter()
        .map(|ph| {
            let mine: Vec<&StepView> = steps.iter().filter(|s| s.phase == ph).collect();
            let mut windows: Vec<String> = mine.iter().filter_map(|s| s.window.clone()).collect();
            windows.sort();
            windows.dedup();
            PhaseView {
                phase: ph,
                title: phase_title(c, ph),
                steps: mine.iter().map(|s| s.id.clone()).collect(),
                start_s: mine.iter().map(|s| s.start_s).min().unwrap_or(0),
                end_s: mine
                    .iter()
                    .map(|s| s.start_s + s.estimate_s)
                    .max()
                    .unwrap_or(0),
                windows,
                abort: abort_path(c, ph),
            }
        })
        .collect()
}

/// Phase titles naming the appliances, so a reader at 2 a.m. need not map "first" to a name.
fn phase_title(c: &CompiledPlan, ph: Phase) -> String {
    let r = &c.roles;
    match (r.scenario, ph) {
        (Scenario::Migration, Phase::UpgradeFirst) => {
            format!("Install and restore the new appliance {}", r.first)
        }
        (_, Phase::UpgradeFirst) => format!("Upgrade {}", r.first),
        (_, Phase::UpgradeSecond) => format!("Upgrade {}", r.second.as_deref().unwrap_or("")),
        (_, Phase::Switch) => format!("Switch the site to {}", r.first),
        (_, Phase::SwitchBack) => format!(
            "Switch the site back to {}",
            r.final_primary.as_deref().unwrap_or(r.serving.as_str())
        ),
        (_, Phase::Decommission) => format!("Decommission the old appliance {}", r.serving),
        _ => ph.title().to_owned(),
    }
}

fn changes(c: &CompiledPlan) -> Vec<ChangeView> {
    let p = &c.plan;
    let r = &c.roles;
    let has = |op: &StepOp| c.step_by_op(op).is_some();
    // The ids of the steps doing these operations, in the order given, where the plan has them.
    let ids = |list: &[StepOp]| -> Vec<String> {
        list.iter()
            .filter_map(|op| c.step_by_op(op))
            .map(|s| s.id.clone())
            .collect()
    };
    let addr = |n: &str| {
        p.appliances
            .get(n)
            .map(|a| a.address.clone())
            .unwrap_or_default()
    };
    let port = |n: &str| p.appliances.get(n).map(|a| a.port).unwrap_or(443);
    let mut out = Vec::new();
    let mut upgraded: Vec<&str> = vec![r.first.as_str()];
    upgraded.extend(r.second.as_deref());
    for x in upgraded {
        out.push(ChangeView {
            action: ChangeAction::Update,
            resource: format!("appliance {x}"),
            attribute: "version".to_owned(),
            before: p
                .appliances
                .get(x)
                .and_then(|a| a.current_version.as_ref())
                .map(|v| v.to_string()),
            after: p.target.version.to_string(),
            steps: vec![StepOp::Install(x.to_owned()).id()],
        });
    }
    if let (Some(f), Some(fp)) = (&p.failover, r.final_primary.as_deref()) {
        let other = if fp == f.primary {
            &f.backup
        } else {
            &f.primary
        };
        let mut after = format!("{fp} primary, {other} backup");
        if fp == f.primary {
            after.push_str(" (broken for the upgrade, then re-established)");
        }
        out.push(ChangeView {
            action: ChangeAction::Update,
            resource: format!("failover {}+{}", f.primary, f.backup),
            attribute: "roles".to_owned(),
            before: Some(format!("{} primary, {} backup", f.primary, f.backup)),
            after,
            steps: ids(&[
                StepOp::Break,
                StepOp::Establish,
                StepOp::Promote(fp.to_owned()),
            ]),
        });
    }
    let sw = match r.scenario {
        Scenario::FailoverAsynchronous => p.failover.as_ref().and_then(|f| f.switch.as_ref()),
        Scenario::Migration => p.migration.as_ref().map(|m| &m.switch),
        _ => None,
    };
    if let Some(sw) = sw {
        // Each swing of the site, in order (a switch back shows as a second change).
        let mut moves = vec![(r.serving.clone(), r.first.clone())];
        if let Some(fp) = r.final_primary.as_deref()
            && has(&StepOp::SwitchTo(fp.to_owned()))
            && fp != r.first
        {
            moves.push((r.first.clone(), fp.to_owned()));
        }
        for (from, to) in &moves {
            let step = vec![StepOp::SwitchTo(to.clone()).id()];
            let (resource, attribute, before, after) = match sw {
                Switch::SharedIp { address } => (
                    format!("shared ip {address}"),
                    "enabled on",
                    from.clone(),
                    to.clone(),
                ),
                Switch::Dns { record, .. } => {
                    (format!("dns {record} A"), "address", addr(from), addr(to))
                }
                Switch::Nat { public, .. } => (
                    format!("nat {public}"),
                    "target",
                    format!("{}:{}", addr(from), port(from)),
                    format!("{}:{}", addr(to), port(to)),
                ),
            };
            out.push(ChangeView {
                action: ChangeAction::Update,
                resource,
                attribute: attribute.to_owned(),
                before: Some(before),
                after,
                steps: step,
            });
        }
        if let Switch::Dns { record, ttl, .. } = sw {
            out.push(ChangeView {
                action: ChangeAction::Update,
                resource: format!("dns {record}"),
                attribute: "ttl".to_owned(),
                before: None,
                after: format!("{ttl}s during the change, then restored"),
                steps: ids(&[StepOp::LowerTtl, StepOp::RestoreTtl]),
            });
        }
    }
    if has(&StepOp::Throttle) {
        out.push(ChangeView {
            action: ChangeAction::Update,
            resource: "jump clients".to_owned(),
            attribute: "max concurrent upgrades".to_owned(),
            // Set by a person at /login; no vendor API reads it.
            before: Some("(not observable: no vendor API)".to_owned()),
            after: p.policy.jump_clients.max_concurrent_upgrades.to_string(),
            steps: vec![StepOp::Throttle.id()],
        });
    }
    if r.scenario == Scenario::Migration {
        out.push(ChangeView {
            action: ChangeAction::Update,
            resource: format!("appliance {}", r.first),
            attribute: "configuration".to_owned(),
            before: Some("factory default".to_owned()),
            after: format!("restored from {}'s backup, same certificate", r.serving),
            steps: ids(&[StepOp::CertsDefault, StepOp::Restore(r.first.clone())]),
        });
        out.push(ChangeView {
            action: ChangeAction::Delete,
            resource: format!("appliance {}", r.serving),
            attribute: "state".to_owned(),
            before: Some("serving the site".to_owned()),
            after: "factory reset and shut down".to_owned(),
            steps: vec![StepOp::Decommission(r.serving.clone()).id()],
        });
    }
    out
}

fn summary(c: &CompiledPlan, v: &PlanView) -> SummaryView {
    let count = |k: StepKind| v.steps.iter().filter(|s| s.kind == k).count() as u32;
    let (auto, operator, waits, gates) = (
        count(StepKind::Auto),
        count(StepKind::Operator),
        count(StepKind::Wait),
        count(StepKind::Gate),
    );
    let upgrade = v.appliances.iter().filter(|a| a.upgraded).count() as u32;
    let downtime: u64 = v.steps.iter().map(|s| s.downtime_s).sum();
    let errors = v
        .findings
        .iter()
        .filter(|f| f.level == Level::Error)
        .count() as u32;
    let warnings = v
        .findings
        .iter()
        .filter(|f| f.level == Level::Warning)
        .count() as u32;
    let fits = if v.windows.is_empty() {
        None
    } else {
        Some(v.windows.iter().all(|w| w.fits))
    };
    let pair = c.plan.failover.is_some();
    let mut line = format!(
        "Plan: {} steps ({} operator, {} {}) · {} {} to upgrade · est. {} · downtime ~{}",
        v.steps.len(),
        operator,
        gates,
        if gates == 1 { "gate" } else { "gates" },
        upgrade,
        if upgrade == 1 {
            "appliance"
        } else {
            "appliances"
        },
        human_duration(c.schedule.work_s),
        human_duration(downtime),
    );
    if pair {
        line.push_str(&format!(
            " · unprotected {}",
            human_duration(c.schedule.unprotected_s)
        ));
    }
    if !v.windows.is_empty() {
        let used = v.windows.iter().filter(|w| !w.steps.is_empty()).count();
        line.push_str(&format!(
            " · {used} {}",
            if used == 1 { "window" } else { "windows" }
        ));
    }
    if errors > 0 {
        line.push_str(&format!(
            " · {errors} {}",
            if errors == 1 { "error" } else { "errors" }
        ));
    }
    SummaryView {
        steps: v.steps.len() as u32,
        auto,
        operator,
        waits,
        gates,
        appliances_to_upgrade: upgrade,
        estimate_s: c.schedule.work_s,
        elapsed_s: c.schedule.elapsed_s,
        downtime_s: downtime,
        unprotected_s: c.schedule.unprotected_s,
        max_unprotected_s: c.plan.policy.max_unprotected.secs(),
        fits_windows: fits,
        errors,
        warnings,
        line,
    }
}

/// The view of a live plan: the compiled view narrowed to the steps still needed, the
/// appliances' versions as observed, and what the refresh saw (done steps, drift, outages).
pub fn refreshed(
    c: &CompiledPlan,
    o: &crate::refresh::Observed,
    d: &crate::diff::Diff,
) -> PlanView {
    let mut v = build(c);
    for a in &mut v.appliances {
        if let Some(seen) = o.appliance(&a.name)
            && seen.reachable
            && let Some(ver) = &seen.version
        {
            a.version_before = Some(ver.clone());
        }
    }
    for ch in &mut v.changes {
        if ch.attribute == "version"
            && let Some(name) = ch.resource.strip_prefix("appliance ")
            && let Some(seen) = o.appliance(name)
            && seen.reachable
            && let Some(ver) = &seen.version
        {
            ch.before = Some(ver.clone());
        }
    }
    if let Some((record, Ok(seen))) = &o.dns {
        for ch in &mut v.changes {
            if ch.attribute == "ttl" && ch.resource == format!("dns {record}") {
                ch.before = Some(format!("{}s", seen.ttl));
            }
        }
    }
    v.findings = findings(c, Some(o));
    let keep: std::collections::HashSet<&str> = d.needed.iter().map(String::as_str).collect();
    v.steps.retain(|s| keep.contains(s.id.as_str()));
    for ph in &mut v.phases {
        ph.steps.retain(|s| keep.contains(s.as_str()));
    }
    v.phases.retain(|ph| !ph.steps.is_empty());
    for w in &mut v.windows {
        w.steps.retain(|s| keep.contains(s.as_str()));
    }
    v.changes
        .retain(|ch| ch.steps.is_empty() || ch.steps.iter().any(|s| keep.contains(s.as_str())));
    v.summary = summary(c, &v);
    if d.needed.is_empty() {
        v.summary.line = crate::diff::NO_CHANGES.to_owned();
    } else if !d.done.is_empty() {
        v.summary.line = format!(
            "{} · {} already done (observed)",
            v.summary.line,
            d.done.len()
        );
    }
    v.refresh = Some(swing_schema::output::RefreshView {
        observed: observed_lines(c, o),
        done: d.done.clone(),
        needed: d.needed.clone(),
        drift: d.drift.clone(),
        unobserved: d.unobserved.clone(),
        has_changes: d.has_changes(),
    });
    v
}

/// One line per observed resource, for people.
fn observed_lines(c: &CompiledPlan, o: &crate::refresh::Observed) -> Vec<String> {
    use crate::provider::FailoverRole;
    let mut out = Vec::new();
    for (name, r) in &o.appliances {
        let addr = c
            .plan
            .appliances
            .get(name)
            .map(|a| format!(" ({})", a.address))
            .unwrap_or_default();
        let line = match r {
            Err(e) => format!("appliance {name}{addr}: not observed: {}", e.message),
            Ok(a) if !a.reachable => format!(
                "appliance {name}{addr}: does not answer ({})",
                a.error_message.as_deref().unwrap_or("no response")
            ),
            Ok(a) => {
                let mut parts = vec![
                    a.version
                        .clone()
                        .unwrap_or_else(|| "version unknown".into()),
                ];
                parts.push(
                    match a.role {
                        FailoverRole::None => "no failover role",
                        FailoverRole::Primary => "primary",
                        FailoverRole::Backup => "backup",
                        FailoverRole::Unknown => "failover role unknown",
                    }
                    .into(),
                );
                if !a.shared_ips.is_empty() {
                    parts.push(format!("shared IP {}", a.shared_ips.join(", ")));
                }
                parts.push(if a.healthy { "healthy" } else { "UNHEALTHY" }.into());
                if let Some(status) = &a.last_sync_status {
                    parts.push(format!("last sync {status}"));
                }
                if let Some(j) = &a.jump_clients {
                    let apart: Vec<String> = [
                        (j.passive, "passive"),
                        (j.uninstalled, "uninstalled"),
                        (j.lost, "lost"),
                    ]
                    .iter()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, what)| format!("{n} {what}"))
                    .collect();
                    let apart = if apart.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", apart.join(", "))
                    };
                    parts.push(format!(
                        "Jump Clients {}/{} upgraded and online{apart}",
                        j.upgraded_online, j.total
                    ));
                }
                if let Some(c) = &a.certificate {
                    parts.push(format!("certificate until {}", c.not_after));
                }
                if let Some(skew) = a.clock_skew_s
                    && skew != 0
                {
                    parts.push(format!("clock {skew:+}s"));
                }
                format!("appliance {name}{addr}: {}", parts.join(" · "))
            }
        };
        out.push(line);
    }
    if let Some((record, r)) = &o.dns {
        out.push(match r {
            Ok(d) => format!(
                "dns {record}: {} · TTL {}s",
                d.addresses
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                d.ttl
            ),
            Err(e) => format!("dns {record}: not observed: {}", e.message),
        });
    }
    if let Some((public, r)) = &o.nat {
        out.push(match r {
            Ok(n) => match n.target {
                Some(t) => format!("nat {public}: → {t}"),
                None => format!("nat {public}: no rule"),
            },
            Err(e) => format!("nat {public}: not observed: {}", e.message),
        });
    }
    out
}

/// The `swing plan --offline` pipeline for one validated plan: compile, then build the view.
pub fn plan_view(
    plan: &crate::validate::ValidPlan,
    options: &crate::compile::CompileOptions,
) -> Result<PlanView, crate::compile::CompileError> {
    crate::compile::compile(plan, options).map(|c| build(&c))
}
