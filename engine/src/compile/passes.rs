//! The compile passes, one per concern, run in order by [`super::compile`]. Each pass appends the
//! steps of its part of the procedure (`procedures.md`) to the builder and wires their
//! dependencies; a pass that does not apply to the plan's scenario adds nothing.
//!
//! Must not: word steps (the catalogue does), estimate durations or place windows
//! (the estimate passes do), or reorder what an earlier pass appended.

use swing_schema::output::{Phase, Scenario};
use swing_schema::{Plan, Strategy, Switch};

use super::catalogue as cat;
use super::{Builder, Roles, Step};

/// Pass 0: which scenario, and which appliance plays which part. Validation guarantees the
/// plan's shape (one appliance, or two with exactly one of `failover` and `migration`, naming
/// two different known appliances; `switch` for an asynchronous pair; `final_primary` only
/// there, naming one of the pair), so every plan maps to one scenario.
pub fn classify(plan: &Plan) -> Roles {
    match (&plan.failover, &plan.migration) {
        (_, Some(m)) => Roles {
            scenario: Scenario::Migration,
            first: m.to.clone(),
            second: None,
            serving: m.from.clone(),
            final_primary: None,
        },
        (Some(f), None) => match f.strategy {
            Strategy::Synchronous => Roles {
                scenario: Scenario::FailoverSynchronous,
                first: f.primary.clone(),
                second: Some(f.backup.clone()),
                serving: f.primary.clone(),
                final_primary: Some(f.primary.clone()),
            },
            Strategy::Asynchronous => Roles {
                scenario: Scenario::FailoverAsynchronous,
                first: f.backup.clone(),
                second: Some(f.primary.clone()),
                serving: f.primary.clone(),
                final_primary: Some(f.final_primary.clone().unwrap_or_else(|| f.backup.clone())),
            },
        },
        (None, None) => {
            let only = plan.appliances.keys().next().cloned().unwrap_or_default();
            Roles {
                scenario: Scenario::Single,
                first: only.clone(),
                second: None,
                serving: only,
                final_primary: None,
            }
        }
    }
}

/// The switch the site moves with, where the scenario moves it.
pub(super) fn site_switch<'p>(plan: &'p Plan, roles: &Roles) -> Option<&'p Switch> {
    match roles.scenario {
        Scenario::FailoverAsynchronous => plan.failover.as_ref().and_then(|f| f.switch.as_ref()),
        Scenario::Migration => plan.migration.as_ref().map(|m| &m.switch),
        _ => None,
    }
}

/// Pass 1: health, API permissions, clock and certificate of each appliance, and the window
/// check. All of them may run at once (what `X.api` checks is filled in by [`api_needs`] once
/// every pass has run).
pub fn preflight(b: &mut Builder, plan: &Plan, roles: &Roles) {
    let mut checks = Vec::new();
    match roles.scenario {
        Scenario::Migration => checks.push(cat::health(&roles.first)),
        _ => {
            let mut names = vec![roles.serving.clone()];
            names.extend(
                roles
                    .second
                    .iter()
                    .chain(std::iter::once(&roles.first))
                    .cloned(),
            );
            names.dedup();
            let mut seen = Vec::new();
            for x in names {
                if seen.contains(&x) {
                    continue;
                }
                checks.push(cat::health(&x));
                checks.push(cat::api(&x));
                checks.push(cat::clock(plan, &x));
                checks.push(cat::tls(plan, &x));
                seen.push(x);
            }
        }
    }
    checks.push(cat::window(plan));
    b.parallel(checks);
}

/// Pass 2: configuration backup, certificate export, Vault key, Jump Client throttle — four
/// independent things (`procedures.md` lists them as one group), so they may run at once: a
/// person is offered the three operator steps together while swing downloads the backup.
pub fn backup(b: &mut Builder, plan: &Plan, roles: &Roles) {
    let src = cat::backup_source(plan);
    if roles.scenario == Scenario::Migration {
        // The Vault key is not in the configuration backup; the restore on the new appliance
        // needs it (guide, backup page).
        b.parallel(vec![
            cat::backup_config(plan, &src),
            cat::vault_key(plan, &src),
        ]);
        return;
    }
    b.parallel(vec![
        cat::backup_config(plan, &src),
        cat::backup_certificates(plan, &src),
        cat::vault_key(plan, &src),
        cat::throttle(plan, &roles.serving),
    ]);
}

/// Pass 3 (migration): certificate export from the old, import and default on the new.
pub fn certificates(b: &mut Builder, plan: &Plan, roles: &Roles) {
    if roles.scenario != Scenario::Migration {
        return;
    }
    b.then(cat::certs_export(plan, &roles.serving));
    b.then(cat::certs_import(plan, &roles.serving, &roles.first));
    b.then(cat::certs_default(plan, &roles.serving, &roles.first));
}

/// Pass 4 (pair): Sync Now, then break the relationship.
pub fn break_failover(b: &mut Builder, plan: &Plan, roles: &Roles) {
    let Some(f) = &plan.failover else { return };
    if !matches!(
        roles.scenario,
        Scenario::FailoverSynchronous | Scenario::FailoverAsynchronous
    ) {
        return;
    }
    b.then(cat::sync(plan, &f.primary, &f.backup));
    b.then(cat::break_failover(plan, &f.primary, &f.backup));
}

fn install_with_clock(b: &Builder, plan: &Plan, x: &str, phase: Phase) -> Step {
    let mut s = cat::install(plan, x);
    s.phase = phase;
    let clock = cat::StepOp::Clock(x.to_owned()).id();
    if plan.target.source == swing_schema::Source::Manual && b.has(&clock) {
        // Manual updates depend on the appliance's time (download key): a hard precondition.
        s.depends_on.push(clock);
    }
    s
}

/// Pass 5: the first appliance is upgraded and verified.
pub fn upgrade_first(b: &mut Builder, plan: &Plan, roles: &Roles) {
    let x = roles.first.as_str();
    let phase = Phase::UpgradeFirst;
    let mut install = install_with_clock(b, plan, x, phase);
    let mut online = cat::online(x, phase);
    if matches!(
        roles.scenario,
        Scenario::Single | Scenario::FailoverSynchronous
    ) {
        // The appliance serving the site restarts: the site is down until it answers again.
        install.downtime = true;
        online.downtime = true;
    }
    b.then(install);
    b.then(online);
    if roles.scenario == Scenario::Migration {
        let restore = cat::restore(plan, &roles.serving, x);
        // The restore brings the old appliance's Jump Client settings back: throttle on the
        // new one after it, before the clients are waited for.
        let mut throttle = cat::throttle(plan, x);
        throttle.phase = restore.phase;
        throttle.depends_on = vec![restore.id.clone()];
        b.then(restore);
        b.beside(throttle);
        b.then(cat::verify(plan, x, phase));
        return;
    }
    b.then(cat::verify(plan, x, phase));
    if !plan.manual_checks().is_empty() {
        let hosts_file = roles.scenario == Scenario::FailoverAsynchronous;
        b.then(cat::verify_manual(plan, x, phase, hosts_file));
    }
}

/// Pass 6: the site moves to the upgraded appliance (asynchronous pair, migration).
pub fn switch(b: &mut Builder, plan: &Plan, roles: &Roles) {
    let Some(sw) = site_switch(plan, roles) else {
        return;
    };
    let to = roles.first.as_str();
    let mut to_step = cat::switch_to(plan, sw, &roles.serving, to, Phase::Switch);
    if let Switch::Dns { record, ttl, .. } = sw {
        // May run any time before the swing, early enough: right after the backup.
        let mut prep = cat::prepare(plan, record, *ttl);
        prep.depends_on = vec![cat::StepOp::BackupConfig.id()];
        to_step.depends_on.push(prep.id.clone());
        b.beside(prep);
    }
    b.then(to_step);
    b.then(cat::switch_verify(to, Phase::Switch));
    if roles.scenario == Scenario::Migration && !plan.manual_checks().is_empty() {
        b.then(cat::verify_manual(plan, to, Phase::Switch, false));
    }
}

/// Pass 7 (pair): the second appliance is upgraded and verified.
pub fn upgrade_second(b: &mut Builder, plan: &Plan, roles: &Roles) {
    let Some(x) = roles.second.as_deref() else {
        return;
    };
    let phase = Phase::UpgradeSecond;
    b.then(install_with_clock(b, plan, x, phase));
    b.then(cat::online(x, phase));
    b.then(cat::verify(plan, x, phase));
}

/// Pass 8 (pair): keys, establish with the upgraded-first appliance's role, first sync.
pub fn reestablish(b: &mut Builder, plan: &Plan, roles: &Roles) {
    let (Some(f), Some(second)) = (&plan.failover, roles.second.as_deref()) else {
        return;
    };
    // Synchronous: the primary keeps its role. Asynchronous: the backup, upgraded first and
    // serving the site, becomes primary.
    let (primary, backup) = (roles.first.as_str(), second);
    b.then(cat::keys(plan, primary, backup));
    b.then(cat::establish(plan, primary, backup, f.peer_port));
    b.then(cat::resync(primary, backup));
}

/// Pass 9 (asynchronous, `final_primary` = old primary): promote it and move the site back.
pub fn switch_back(b: &mut Builder, plan: &Plan, roles: &Roles) {
    if roles.scenario != Scenario::FailoverAsynchronous {
        return;
    }
    let (Some(fp), Some(sw)) = (roles.final_primary.as_deref(), site_switch(plan, roles)) else {
        return;
    };
    if fp != roles.serving {
        return;
    }
    b.then(cat::promote(fp));
    b.then(cat::switch_to(
        plan,
        sw,
        &roles.first,
        fp,
        Phase::SwitchBack,
    ));
    b.then(cat::switch_verify(fp, Phase::SwitchBack));
}

/// Pass 10 (dns): restore the record's original TTL after the last swing.
pub fn restore_ttl(b: &mut Builder, plan: &Plan, roles: &Roles) {
    if let Some(Switch::Dns { record, .. }) = site_switch(plan, roles) {
        b.then(cat::restore_ttl(plan, record));
    }
}

/// Pass 11 (single, pair): Jump Clients back online, then the clients that need a person.
pub fn clients(b: &mut Builder, plan: &Plan, roles: &Roles) {
    let serving = serving_at_end(roles);
    let mut wait = cat::clients_wait(plan);
    if roles.scenario == Scenario::Migration {
        // The site now runs a newer version on the new appliance: the guide's client upgrades
        // apply there, after the throttle set on it.
        wait.depends_on.push(cat::StepOp::Throttle.id());
    }
    b.then(wait);
    b.then(cat::clients_followup(serving));
}

/// The appliance that serves the site once the plan is done.
pub fn serving_at_end(roles: &Roles) -> &str {
    match roles.scenario {
        Scenario::Migration => &roles.first,
        _ => roles.final_primary.as_deref().unwrap_or(&roles.serving),
    }
}

/// Last pass: what each `X.api` step checks, from the steps the passes produced.
pub fn api_needs(steps: &mut [Step], roles: &Roles) {
    cat::api_needs(steps, serving_at_end(roles));
}

/// Pass 12 (migration): decommission the old appliance, after every other step.
pub fn decommission(b: &mut Builder, plan: &Plan, roles: &Roles) {
    if roles.scenario != Scenario::Migration {
        return;
    }
    let mut s = cat::decommission(plan, &roles.serving);
    // Depend on every sink so that it is last in every execution order.
    let sinks: Vec<String> = b
        .steps
        .iter()
        .filter(|st| !b.steps.iter().any(|o| o.depends_on.contains(&st.id)))
        .map(|st| st.id.clone())
        .collect();
    s.depends_on = sinks;
    b.tail.clear();
    b.then(s);
}
