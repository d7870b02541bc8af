//! Compiled step → walker [`StepSpec`]: what kind of step it is, whether a person performs
//! it, how long it may take, whether it may be sent again on resume, and the advice a
//! failure prints.
//!
//! Owns: the resume flags (from [`StepOp`]'s methods), step timeouts and which appliance an
//! operator step is performed on. Must not: observe or change the world (the executor does)
//! or decide order (the walker does).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use swing_schema::Switch;
use swing_schema::output::StepKind as OutKind;

use super::walker::{Protection, StepKind, StepSpec};
use crate::compile::{CompiledPlan, Step, StepOp};
use crate::refresh::{Providers, plan_switch};

/// Converts compiled steps (only those in `needed`, in compiled order) into walker specs;
/// dependencies on steps that are not needed (already done) are dropped.
pub fn step_specs(c: &CompiledPlan, needed: &[String], providers: &Providers) -> Vec<StepSpec> {
    let keep: HashSet<&str> = needed.iter().map(String::as_str).collect();
    c.steps
        .iter()
        .filter(|s| keep.contains(s.id.as_str()))
        .map(|s| spec_of(c, s, &keep, providers))
        .collect()
}

fn spec_of(c: &CompiledPlan, s: &Step, keep: &HashSet<&str>, providers: &Providers) -> StepSpec {
    let kind = match s.kind {
        OutKind::Auto => StepKind::Auto,
        OutKind::Operator => StepKind::Operator,
        OutKind::Wait => StepKind::Wait,
        OutKind::Gate => StepKind::Gate,
    };
    let bridged = bridge_for(c, s, providers).is_some();
    let is_install = s.op.never_retried();
    let idempotent = matches!(kind, StepKind::Auto | StepKind::Wait) && s.op.repeatable();
    let mut advice = Vec::new();
    if let Some(f) = &s.on_failure {
        advice.push(f.clone());
    }
    advice.push(format!(
        "Abort path ({}): {}",
        s.phase.title(),
        crate::view::abort_path(c, s.phase)
    ));
    // dns: `switch.verify-*` may also wait out the lowered TTL after the swing.
    let cache_wait = match (
        plan_switch(&c.plan),
        matches!(s.op, StepOp::VerifySwitch(_)),
    ) {
        (Some(Switch::Dns { ttl, .. }), true) => Duration::from_secs(u64::from(*ttl)),
        _ => Duration::ZERO,
    };
    let verify_timeout = step_timeout(c, s).saturating_add(cache_wait);
    StepSpec {
        id: s.id.clone(),
        title: s.title.clone(),
        kind,
        depends_on: s
            .depends_on
            .iter()
            .filter(|d| keep.contains(d.as_str()))
            .cloned()
            .collect(),
        window: if s.window_bound {
            s.window.clone()
        } else {
            None
        },
        idempotent,
        needs_person: kind == StepKind::Gate || (kind == StepKind::Operator && !bridged),
        instructions: s.instructions.clone(),
        downtime: s.downtime,
        protection: match s.op {
            StepOp::Break => Protection::Breaks,
            StepOp::Establish => Protection::Restores,
            _ => Protection::Unchanged,
        },
        verify_timeout,
        expected: Duration::from_secs(s.estimate_s).saturating_add(cache_wait),
        no_retry: is_install,
        // `act_switch` looks before it moves anything (see there).
        reentrant: s.op.reentrant(),
        failure_advice: advice,
    }
}

/// How long a step may take before it halts: `clients.wait` waits
/// `policy.jump_clients.wait_timeout`; every other step three times its estimate — at least
/// 2 minutes when the estimate is the guide's default (slack for slow networks), at least
/// [`MIN_STEP_TIMEOUT_S`] when the plan sets the step's estimate in `policy.estimates` (a
/// rehearsal at a fast time scale states its real durations there, so a hanging install halts
/// in seconds, not in hours).
pub fn step_timeout(c: &CompiledPlan, s: &Step) -> Duration {
    if s.op == StepOp::ClientsWait {
        return c.plan.policy.jump_clients.wait_timeout.as_std();
    }
    let est = &c.plan.policy.estimates;
    let floor = if est.contains_key(&s.id) || est.contains_key(s.op.action()) {
        MIN_STEP_TIMEOUT_S
    } else {
        120
    };
    Duration::from_secs(s.estimate_s.saturating_mul(3).max(floor))
}

/// The shortest timeout of a step whose estimate the plan sets.
const MIN_STEP_TIMEOUT_S: u64 = 10;

/// The appliance an operator step is performed on.
pub(super) fn operator_appliance(c: &CompiledPlan, s: &Step) -> Option<String> {
    if let Some(a) = &s.appliance {
        return Some(a.clone());
    }
    match s.op {
        StepOp::Sync
        | StepOp::Break
        | StepOp::Keys
        | StepOp::Throttle
        | StepOp::ClientsFollowup
        | StepOp::VaultKey
        | StepOp::BackupCertificates => Some(c.roles.serving.clone()),
        _ => None,
    }
}

fn bridge_for(
    c: &CompiledPlan,
    s: &Step,
    providers: &Providers,
) -> Option<Arc<dyn crate::provider::OperatorBridge>> {
    let a = operator_appliance(c, s)?;
    providers.bridges.get(&a).cloned()
}

/// Step timeouts follow the plan's estimates (see [`step_timeout`]).
#[cfg(test)]
mod timeout_tests {
    use super::*;
    use crate::compile::{CompileOptions, compile};
    use swing_schema::Plan;

    fn compiled(policy: serde_json::Value) -> CompiledPlan {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "version": 1, "name": "timeouts", "site": "access.example.com",
            "target": {"version": "25.1.3", "packages": ["pra-25.1.3"]},
            "appliances": {"main": {"address": "10.0.0.11"}},
            "backup": {"directory": "./backups", "password": "${env:P}"},
            "policy": policy,
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x",
                          "client_secret": "${env:S}", "operator": "sim"}}
        }))
        .unwrap();
        compile(
            &crate::validate::valid_plan(&plan),
            &CompileOptions::default(),
        )
        .unwrap()
    }

    fn timeout_of(c: &CompiledPlan, id: &str) -> Duration {
        step_timeout(c, c.step(id).unwrap())
    }

    #[test]
    fn default_estimates_give_three_times_the_estimate_and_at_least_two_minutes() {
        let c = compiled(serde_json::json!({}));
        assert_eq!(
            timeout_of(&c, "main.install"),
            Duration::from_secs(3 * 1800)
        );
        assert_eq!(timeout_of(&c, "main.tls"), Duration::from_secs(120));
        assert_eq!(
            timeout_of(&c, "clients.wait"),
            Duration::from_secs(4 * 3600)
        );
    }

    #[test]
    fn an_estimate_the_plan_sets_is_taken_at_its_word() {
        let c = compiled(serde_json::json!({
            "estimates": {"install": "4s", "main.online": "1s", "main.tls": "20s"},
            "jump_clients": {"wait_timeout": "10s"}
        }));
        assert_eq!(timeout_of(&c, "main.install"), Duration::from_secs(12));
        // Never below the floor, also when the plan's estimate is tiny.
        assert_eq!(
            timeout_of(&c, "main.online"),
            Duration::from_secs(MIN_STEP_TIMEOUT_S)
        );
        assert_eq!(timeout_of(&c, "main.tls"), Duration::from_secs(60));
        assert_eq!(timeout_of(&c, "clients.wait"), Duration::from_secs(10));
        // Steps without an override keep the guide's timeout.
        assert_eq!(timeout_of(&c, "main.verify"), Duration::from_secs(180));
    }
}
