//! The site executor: performs and verifies the compiled steps of one plan through the
//! provider traits. It is split by concern: [`super::spec`] turns compiled steps into the
//! walker's [`StepSpec`]s, [`super::act`] maps a step's [`StepOp`] to a provider call or an
//! operator action, [`super::observe`] gathers what a condition is checked against; this file
//! holds the executor's memory (acted-at times, backups, the DNS switch's timing), the switch
//! and TTL mechanics, and the [`StepExecutor`] implementation the walker calls.
//!
//! Acting: auto steps call the appliance/DNS/NAT providers; operator steps go to the
//! appliance's operator bridge (`operator: sim|exec`) — without a bridge a person performs
//! them and the walker never calls `act`. Verifying: every postcondition of `compile` is
//! evaluated against a fresh observation, never against the action's own report.
//!
//! A DNS switch also waits for clients' caches: lowering the TTL holds only once the TTL
//! observed before lowering (journaled as `step-observed`, so a resume waits only the rest)
//! has passed since the lowering, verifying a switch only once the lowered TTL has passed
//! since the swing when the appliance the site left goes down afterwards, and restoring the
//! TTL restores the observed one.
//!
//! Behaviour is chosen by each step's [`StepOp`], never by its id; ids are only the journal
//! key. Owns: the executor's state and the mapping condition → observation. Must not: build
//! providers, resolve secrets, print, or decide order (the walker does).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use swing_schema::output::Condition;
use swing_schema::{Plan, Switch};

use super::act::install_action;
use super::history::History;
use super::journal::{Artifact, Record};
use super::spec::operator_appliance;
pub use super::spec::step_specs;
use super::step::Recorder;
use super::walker::{Check, StepError, StepExecutor, StepSpec};
use crate::compile::{CompiledPlan, Step, StepOp};
use crate::provider::{OperatorAction, OperatorTask};
use crate::refresh::{Providers, plan_switch};

/// Performs and verifies the steps of one compiled plan.
pub struct SiteExecutor {
    pub(super) compiled: Arc<CompiledPlan>,
    pub(super) providers: Providers,
    /// Directory the plan's relative paths resolve against.
    pub(super) base_dir: PathBuf,
    pub(super) clock: Arc<dyn super::walker::Clock>,
    /// When each step's action was sent / the step started (UNIX ms), also from earlier runs.
    acted: Mutex<HashMap<String, i64>>,
    /// When each person-step was first put before a person (a prompt, a pause), also from
    /// earlier runs.
    offered: Mutex<HashMap<String, i64>>,
    /// Backups written by `backup.config`, also from earlier runs.
    pub(super) backups: Mutex<Vec<Artifact>>,
    /// What the DNS steps remember, also from earlier runs.
    dns_memory: Mutex<DnsMemory>,
    /// What the walker hands over to record what a step observed before acting.
    recorder: std::sync::OnceLock<Recorder>,
}

/// The DNS switch's timing: the TTL caches may hold, and since when.
#[derive(Debug, Default)]
struct DnsMemory {
    /// The record's TTL observed before `switch.prepare` lowered it (journaled).
    old_ttl: Option<u32>,
    /// UNIX ms when a step's action completed (its first `action-done`; for `switch.to-*`
    /// also its success), also from earlier runs.
    done_at: HashMap<String, i64>,
}

impl SiteExecutor {
    /// `records`: the change's journal so far (for resume: backup files, step times), read
    /// through the one journal reader, [`History`].
    pub fn new(
        compiled: Arc<CompiledPlan>,
        providers: Providers,
        base_dir: PathBuf,
        clock: Arc<dyn super::walker::Clock>,
        records: &[Record],
    ) -> SiteExecutor {
        let past = History::fold(records);
        let mut acted = HashMap::new();
        let mut offered = HashMap::new();
        let mut dns = DnsMemory::default();
        // Journal records name steps by id; the compiled step says what each one did.
        let op_of = |step: &str| compiled.step(step).map(|s| &s.op);
        for (step, h) in &past.steps {
            if let Some(at) = h.acted {
                acted.insert(step.clone(), at);
            }
            if let Some(at) = h.offered {
                offered.insert(step.clone(), at);
            }
            // A switch counts as done from its first completion or success.
            let done = match op_of(step) {
                Some(StepOp::SwitchTo(_)) => h.first_done_or_succeeded,
                _ => h.first_done,
            };
            if let Some(at) = done {
                dns.done_at.insert(step.clone(), at);
            }
            if op_of(step) == Some(&StepOp::LowerTtl)
                && let Some(observed) = &h.observed
            {
                dns.old_ttl = observed["ttl"].as_u64().and_then(|t| u32::try_from(t).ok());
            }
        }
        let backups = past.artifacts;
        SiteExecutor {
            compiled,
            providers,
            base_dir,
            clock,
            acted: Mutex::new(acted),
            offered: Mutex::new(offered),
            backups: Mutex::new(backups),
            dns_memory: Mutex::new(dns),
            recorder: std::sync::OnceLock::new(),
        }
    }

    fn dns_memory(&self) -> std::sync::MutexGuard<'_, DnsMemory> {
        self.dns_memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `step`'s action completed now, unless an earlier completion is known.
    pub(super) fn mark_done_once(&self, step: &str) {
        let now = self.clock.now_ms();
        self.dns_memory()
            .done_at
            .entry(step.to_owned())
            .or_insert(now);
    }

    pub(super) fn plan(&self) -> &Plan {
        &self.compiled.plan
    }

    pub(super) fn step(&self, id: &str) -> Result<&Step, StepError> {
        self.compiled
            .step(id)
            .ok_or_else(|| StepError::fatal(format!("step {id} is not in the compiled plan")))
    }

    pub(super) fn appliance_ip(&self, name: &str) -> Result<IpAddr, StepError> {
        let a = self
            .plan()
            .appliances
            .get(name)
            .ok_or_else(|| StepError::fatal(format!("appliance {name} is not in the plan")))?;
        a.address.parse().map_err(|_| {
            StepError::fatal(format!(
                "appliance {name}'s address {} is not an IP address",
                a.address
            ))
        })
    }

    pub(super) async fn observe(
        &self,
        name: &str,
    ) -> Result<crate::provider::ApplianceObservation, StepError> {
        let p = self.providers.appliances.get(name).ok_or_else(|| {
            StepError::fatal(format!("no provider is wired for appliance {name}"))
        })?;
        Ok(p.observe().await?)
    }

    pub(super) fn mark_acted(&self, id: &str) {
        let now = self.clock.now_ms();
        self.acted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), now);
    }

    /// Since when what a person does counts for step `id`: when it was put before them (a
    /// prompt, a pause), else when it started.
    pub(super) fn person_since(&self, id: &str) -> Option<i64> {
        let offered = self
            .offered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied();
        offered.or_else(|| self.acted_at(id))
    }

    pub(super) fn acted_at(&self, id: &str) -> Option<i64> {
        self.acted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    pub(super) async fn operator(
        &self,
        s: &Step,
        appliance: &str,
        action: OperatorAction,
    ) -> Result<(), StepError> {
        let bridge = self.providers.bridges.get(appliance).ok_or_else(|| {
            StepError::fatal(format!(
                "{} needs a person: no operator automation for appliance {appliance}",
                s.id
            ))
        })?;
        let task = OperatorTask {
            step_id: s.id.clone(),
            appliance: appliance.to_owned(),
            action,
            instructions: s.instructions.clone(),
        };
        Ok(bridge.perform(&task).await?)
    }

    /// The appliance the site moves away from in `switch.to-<to>`.
    pub(super) fn switch_from(&self, to: &str) -> String {
        self.plan()
            .appliances
            .keys()
            .find(|n| n.as_str() != to)
            .cloned()
            .unwrap_or_default()
    }

    pub(super) async fn act_switch(&self, s: &Step, to: &str) -> Result<(), StepError> {
        let from = self.switch_from(to);
        match plan_switch(self.plan()) {
            Some(Switch::SharedIp { address }) => {
                // Look first, so a switch a crash interrupted is finished, not redone: nothing
                // to do when `to` already answers there; otherwise off on `from` (harmless if
                // it is off already), then on at `to` — never on while `from` may hold it.
                if self.shared_ip_answered_by(to, address).await {
                    return Ok(());
                }
                let off = OperatorAction::SharedIp {
                    address: address.clone(),
                    enabled: false,
                };
                self.operator(s, &from, off).await?;
                let on = OperatorAction::SharedIp {
                    address: address.clone(),
                    enabled: true,
                };
                self.operator(s, to, on).await
            }
            Some(Switch::Dns { record, ttl, .. }) => {
                let dns = self.dns()?;
                let (f, t) = (self.appliance_ip(&from)?, self.appliance_ip(to)?);
                Ok(dns.swing(record, f, t, *ttl).await?)
            }
            Some(Switch::Nat { public, .. }) => {
                let nat = self
                    .providers
                    .nat
                    .as_ref()
                    .ok_or_else(|| StepError::fatal("no NAT provider is wired"))?;
                let public: SocketAddr = public.parse().map_err(|_| {
                    StepError::fatal(format!("switch.public `{public}` is not an address:port"))
                })?;
                let port = |n: &str| self.plan().appliances.get(n).map(|a| a.port).unwrap_or(443);
                let f = SocketAddr::new(self.appliance_ip(&from)?, port(&from));
                let t = SocketAddr::new(self.appliance_ip(to)?, port(to));
                Ok(nat.swing(public, f, t).await?)
            }
            None => Err(StepError::fatal(format!(
                "{} needs a switch in the plan",
                s.id
            ))),
        }
    }

    pub(super) fn dns(&self) -> Result<&Arc<dyn crate::provider::DnsProvider>, StepError> {
        self.providers
            .dns
            .as_ref()
            .ok_or_else(|| StepError::fatal("no DNS provider is wired"))
    }

    /// `switch.prepare`: observe the record's TTL and journal it (once: a resume keeps the
    /// value seen before the first lowering), then lower the TTL to the switch's.
    pub(super) async fn lower_dns_ttl(
        &self,
        spec: &StepSpec,
        record: &str,
        ttl: u32,
    ) -> Result<(), StepError> {
        let dns = self.dns()?;
        let cur = dns.observe(record).await?;
        let known = self.dns_memory().old_ttl;
        if known.is_none() {
            // A record that already has the switch's TTL was lowered before this apply (by
            // hand ahead of the change, or by an abandoned apply): what it had before is not
            // observable, so the plan's old TTL stands for it, for the wait and the restore.
            let assumed = cur.ttl == ttl;
            let old = if assumed {
                u32::try_from(crate::compile::old_ttl(self.plan())).unwrap_or(u32::MAX)
            } else {
                cur.ttl
            };
            if Duration::from_secs(u64::from(old)) >= spec.verify_timeout {
                return Err(StepError::fatal(format!(
                    "dns {record} has TTL {old}s: waiting it out after lowering takes longer than {} may take ({}s); set policy.estimates.\"{}\" to at least {old}s and plan again",
                    spec.id,
                    spec.verify_timeout.as_secs(),
                    spec.id
                )));
            }
            if let Some(r) = self.recorder.get() {
                r.observed(
                    &spec.id,
                    serde_json::json!({
                        "record": record, "ttl": old, "observed_ttl": cur.ttl, "assumed": assumed
                    }),
                )
                .map_err(|e| StepError::fatal(e.to_string()))?;
            }
            self.dns_memory().old_ttl = Some(old);
        }
        if cur.ttl != ttl {
            dns.set_ttl(record, &cur, ttl).await?;
            let now = self.clock.now_ms();
            self.dns_memory().done_at.insert(spec.id.clone(), now);
        } else {
            self.mark_done_once(&spec.id);
        }
        Ok(())
    }

    /// The TTL to restore: the one observed before lowering, else the plan's old TTL.
    pub(super) fn restore_ttl(&self) -> u32 {
        self.dns_memory().old_ttl.unwrap_or_else(|| {
            u32::try_from(crate::compile::old_ttl(self.plan())).unwrap_or(u32::MAX)
        })
    }

    /// How long ago (ms) `step`'s action completed; `None` when it is not known to have.
    pub(super) fn since_done(&self, step: &str) -> Option<i64> {
        let at = self.dns_memory().done_at.get(step).copied()?;
        Some(self.clock.now_ms() - at)
    }

    /// Whether a step after `switch.verify-{to}` makes the appliance the site left
    /// unavailable (its install or decommission): clients may still hold its address.
    pub(super) fn old_goes_down_after(&self, to: &str) -> bool {
        let from = self.switch_from(to);
        let down = [
            StepOp::Install(from.clone()).id(),
            StepOp::Decommission(from).id(),
        ];
        let mut after: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let start = StepOp::VerifySwitch(to.to_owned()).id();
        let mut grew = true;
        while grew {
            grew = false;
            for st in &self.compiled.steps {
                if !after.contains(st.id.as_str())
                    && st
                        .depends_on
                        .iter()
                        .any(|d| *d == start || after.contains(d.as_str()))
                {
                    after.insert(st.id.as_str());
                    grew = true;
                }
            }
        }
        down.iter().any(|d| after.contains(d.as_str()))
    }

    /// The DNS-only parts of a postcondition that holds: the old TTL waited out after lowering
    /// (`switch.prepare`), the lowered TTL waited out after the swing before the old appliance
    /// goes down (`switch.verify-*`).
    fn dns_wait(&self, s: &Step, observed: serde_json::Value) -> Check {
        let id = s.id.as_str();
        let Some(Switch::Dns { record, ttl, .. }) = plan_switch(self.plan()) else {
            return Check::Holds(observed);
        };
        let (since, wait_s, what) = if s.op == StepOp::LowerTtl {
            self.mark_done_once(id);
            let old = self.restore_ttl();
            (
                self.since_done(id),
                old,
                "caches may still hold the record with its old TTL",
            )
        } else if let StepOp::VerifySwitch(to) = &s.op
            && self.old_goes_down_after(to)
        {
            let swung = StepOp::SwitchTo(to.clone()).id();
            self.mark_done_once(&swung);
            (
                self.since_done(&swung),
                *ttl,
                "clients may still hold the old address (lowered TTL)",
            )
        } else {
            return Check::Holds(observed);
        };
        let waited = since.unwrap_or(0).max(0);
        if waited >= i64::from(wait_s) * 1000 {
            Check::Holds(serde_json::json!({
                "observed": observed, "waited_ms": waited, "ttl_waited_out": wait_s
            }))
        } else {
            Check::NotYet(format!(
                "dns {record}: {what}: {:.1}s of {wait_s}s",
                waited as f64 / 1000.0
            ))
        }
    }

    pub(super) async fn set_dns_ttl(&self, ttl: u32) -> Result<(), StepError> {
        let Some(Switch::Dns { record, .. }) = plan_switch(self.plan()) else {
            return Err(StepError::fatal("a TTL change needs a dns switch"));
        };
        let dns = self.dns()?;
        let cur = dns.observe(record).await?;
        if cur.ttl == ttl {
            return Ok(());
        }
        Ok(dns.set_ttl(record, &cur, ttl).await?)
    }
}

#[async_trait]
impl StepExecutor for SiteExecutor {
    async fn precondition(&self, spec: &StepSpec) -> Result<(), StepError> {
        let s = self.step(&spec.id)?;
        for c in &s.preconditions {
            if let Check::NotYet(why) = self.eval(c).await? {
                // Retryable: the walker observes it again for a while (an appliance that
                // did not answer once may answer the next time) before it halts.
                return Err(StepError {
                    message: format!("{} ({why})", c.describe()),
                    retryable: true,
                });
            }
        }
        Ok(())
    }

    async fn act(&self, spec: &StepSpec) -> Result<Vec<Artifact>, StepError> {
        self.perform(spec).await
    }

    async fn verify(&self, spec: &StepSpec) -> Result<Check, StepError> {
        let s = self.step(&spec.id)?;
        if self.acted_at(&s.id).is_none() {
            self.mark_acted(&s.id);
        }
        if let (Condition::DnsTtl { record, .. }, StepOp::RestoreTtl) = (&s.postcondition, &s.op) {
            // The TTL observed before lowering, not the plan's assumption.
            let restored = Condition::DnsTtl {
                record: record.clone(),
                ttl_s: u64::from(self.restore_ttl()),
            };
            return self.eval(&restored).await;
        }
        match self.eval(&s.postcondition).await? {
            Check::Holds(observed) => Ok(self.dns_wait(s, observed)),
            not_yet => Ok(not_yet),
        }
    }

    async fn action_reached(&self, spec: &StepSpec) -> Result<Option<bool>, StepError> {
        // Only an install needs asking: every other action shows in what its precondition
        // observes at once.
        let s = self.step(&spec.id)?;
        if !s.op.never_retried() {
            return Ok(None);
        }
        let Some(appliance) = operator_appliance(&self.compiled, s) else {
            return Ok(None);
        };
        let Some(bridge) = self.providers.bridges.get(&appliance) else {
            return Ok(None);
        };
        let task = OperatorTask {
            step_id: s.id.clone(),
            appliance,
            action: install_action(self.plan()),
            instructions: s.instructions.clone(),
        };
        Ok(bridge.reached(&task).await?)
    }

    fn journal_opened(&self, recorder: Recorder) {
        let _ = self.recorder.set(recorder);
    }

    fn offered(&self, step: &StepSpec, at_ms: i64) {
        self.offered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(step.id.clone())
            .or_insert(at_ms);
    }
}

/// A precondition that could not be observed is retryable and says so; it is never read as
/// "the appliance has role none".
#[cfg(test)]
mod precondition_tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::compile::{CompileOptions, compile};
    use crate::provider::{
        ApplianceObservation, ApplianceProvider, BackupInfo, FailoverRole, ProviderResult,
    };

    /// Does not answer `silent` times, then answers with `role`.
    struct Flaky {
        role: FailoverRole,
        silent: AtomicU32,
    }

    #[async_trait]
    impl ApplianceProvider for Flaky {
        async fn observe(&self) -> ProviderResult<ApplianceObservation> {
            if self
                .silent
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Ok(ApplianceObservation {
                    error_message: Some("POST /oauth2/token: HTTP 503".into()),
                    ..ApplianceObservation::unreachable()
                });
            }
            let mut o = ApplianceObservation::unreachable();
            o.reachable = true;
            o.healthy = true;
            o.role = self.role;
            Ok(o)
        }
        async fn backup(&self, _: &std::path::Path, _: &str) -> ProviderResult<BackupInfo> {
            unreachable!("not called by preconditions")
        }
        async fn set_failover_role(&self, _: FailoverRole, _: bool) -> ProviderResult<()> {
            unreachable!("not called by preconditions")
        }
    }

    #[tokio::test]
    async fn an_appliance_that_did_not_answer_fails_the_precondition_retryably() {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "version": 1, "name": "pre", "site": "access.example.com",
            "target": {"version": "25.1.3", "packages": ["pra-25.1.3"]},
            "appliances": {"a": {"address": "10.0.0.11"}, "b": {"address": "10.0.0.12"}},
            "failover": {"primary": "a", "backup": "b", "strategy": "asynchronous",
                          "switch": {"method": "shared-ip", "address": "10.0.0.10"}},
            "backup": {"directory": "./backups", "password": "${env:P}"},
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x",
                          "client_secret": "${env:S}", "operator": "sim"}}
        }))
        .unwrap();
        let c = Arc::new(
            compile(
                &crate::validate::valid_plan(&plan),
                &CompileOptions::default(),
            )
            .unwrap(),
        );
        let mut p = Providers::default();
        let flaky = |role, silent| {
            Arc::new(Flaky {
                role,
                silent: AtomicU32::new(silent),
            }) as Arc<dyn ApplianceProvider>
        };
        p.appliances
            .insert("a".into(), flaky(FailoverRole::Primary, 1));
        p.appliances
            .insert("b".into(), flaky(FailoverRole::Backup, 0));
        let specs = step_specs(&c, &["failover.sync".to_owned()], &p);
        let exec = SiteExecutor::new(
            c,
            p,
            PathBuf::from("."),
            Arc::new(super::super::walker::SystemClock),
            &[],
        );
        let e = exec.precondition(&specs[0]).await.unwrap_err();
        assert!(e.retryable, "{e:?}");
        assert!(e.message.contains("a does not answer"), "{}", e.message);
        // The observed reason is part of the message.
        assert!(
            e.message.contains("POST /oauth2/token: HTTP 503"),
            "{}",
            e.message
        );
        assert!(!e.message.contains("has role none"), "{}", e.message);
        // The next observation answers: the precondition holds.
        exec.precondition(&specs[0]).await.unwrap();
    }

    #[tokio::test]
    async fn a_silent_appliance_is_reported_with_the_reason_while_waiting_for_its_version() {
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "version": 1, "name": "ver", "site": "access.example.com",
            "target": {"version": "25.1.3", "packages": ["pra-25.1.3"]},
            "appliances": {"main": {"address": "10.0.0.11"}},
            "backup": {"directory": "./backups", "password": "${env:P}"},
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x",
                          "client_secret": "${env:S}", "operator": "sim"}}
        }))
        .unwrap();
        let c = Arc::new(
            compile(
                &crate::validate::valid_plan(&plan),
                &CompileOptions::default(),
            )
            .unwrap(),
        );
        let mut p = Providers::default();
        p.appliances.insert(
            "main".into(),
            Arc::new(Flaky {
                role: FailoverRole::None,
                silent: AtomicU32::new(1),
            }),
        );
        let exec = SiteExecutor::new(
            c,
            p,
            PathBuf::from("."),
            Arc::new(super::super::walker::SystemClock),
            &[],
        );
        let cond = Condition::Version {
            appliance: "main".into(),
            version: "25.1.3".into(),
        };
        let Ok(Check::NotYet(why)) = exec.eval(&cond).await else {
            panic!("a silent appliance is not yet on the target")
        };
        assert_eq!(
            why,
            "appliance main does not answer: POST /oauth2/token: HTTP 503, waiting for 25.1.3"
        );
    }
}
