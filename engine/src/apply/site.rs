//! The site executor: performs and verifies the compiled steps of one plan through the
//! provider traits, and turns compiled steps into the walker's [`StepSpec`]s.
//!
//! Acting: auto steps call the appliance/DNS/NAT providers (backup, DNS TTL and
//! compare-and-swap swing, NAT swing, `set_failover_role`); operator steps go to the
//! appliance's operator bridge (`operator: sim|exec`) — without a bridge a person performs
//! them and the walker never calls `act`. Verifying: every postcondition of `compile` is
//! evaluated against a fresh observation, never against the action's own report.
//!
//! A DNS switch also waits for clients' caches: `switch.prepare` holds only once the TTL
//! observed before lowering (journaled as `step-observed`, so a resume waits only the rest)
//! has passed since the lowering, `switch.verify-X` only once the lowered TTL has passed since
//! the swing when the appliance the site left goes down afterwards, and `switch.restore`
//! restores the observed TTL.
//!
//! Owns: the mapping step → provider call and condition → observation. Must not: build
//! providers, resolve secrets, print, or decide order (the walker does).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use swing_schema::output::{Condition, StepKind as OutKind};
use swing_schema::{Plan, Switch};

use super::journal::{Artifact, Entry, Record};
use super::walker::{Check, StepError, StepExecutor, StepKind, StepSpec};
use crate::compile::{CompiledPlan, Step};
use crate::provider::{FailoverRole, OperatorAction, OperatorTask};
use crate::refresh::{Providers, plan_switch};

/// Converts compiled steps (only those in `needed`, in compiled order) into walker specs;
/// dependencies on steps that are not needed (already done) are dropped.
pub fn step_specs(c: &CompiledPlan, needed: &[String], providers: &Providers) -> Vec<StepSpec> {
    let keep: std::collections::HashSet<&str> = needed.iter().map(String::as_str).collect();
    c.steps
        .iter()
        .filter(|s| keep.contains(s.id.as_str()))
        .map(|s| spec_of(c, s, &keep, providers))
        .collect()
}

fn spec_of(
    c: &CompiledPlan,
    s: &Step,
    keep: &std::collections::HashSet<&str>,
    providers: &Providers,
) -> StepSpec {
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
        crate::estimate::abort_path(c, s.phase)
    ));
    // dns: `switch.verify-*` may also wait out the lowered TTL after the swing.
    let cache_wait = match (plan_switch(&c.plan), s.id.starts_with("switch.verify-")) {
        (Some(Switch::Dns { ttl, .. }), true) => Duration::from_secs(u64::from(*ttl)),
        _ => Duration::ZERO,
    };
    let verify_timeout = step_timeout(c, s) + cache_wait;
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
        unprotected: s.unprotected,
        verify_timeout,
        expected: Duration::from_secs(s.estimate_s) + cache_wait,
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
fn step_timeout(c: &CompiledPlan, s: &Step) -> Duration {
    if s.id == "clients.wait" {
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
fn operator_appliance(c: &CompiledPlan, s: &Step) -> Option<String> {
    if let Some(a) = &s.appliance {
        return Some(a.clone());
    }
    match s.id.as_str() {
        "failover.sync"
        | "failover.break"
        | "failover.keys"
        | "clients.throttle"
        | "clients.followup"
        | "backup.vault-key"
        | "backup.certificates" => Some(c.roles.serving.clone()),
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

/// Performs and verifies the steps of one compiled plan.
pub struct SiteExecutor {
    compiled: Arc<CompiledPlan>,
    providers: Providers,
    /// Directory the plan's relative paths resolve against.
    base_dir: PathBuf,
    clock: Arc<dyn super::walker::Clock>,
    /// When each step's action was sent / the step started (UNIX ms), also from earlier runs.
    acted: Mutex<HashMap<String, i64>>,
    /// Backups written by `backup.config`, also from earlier runs.
    backups: Mutex<Vec<Artifact>>,
    /// What the DNS steps remember, also from earlier runs.
    dns_memory: Mutex<DnsMemory>,
    /// The walk's journal (for [`Entry::StepObserved`]).
    journal: std::sync::OnceLock<Arc<super::Journal>>,
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
    /// `records`: the change's journal so far (for resume: backup files, step times).
    pub fn new(
        compiled: Arc<CompiledPlan>,
        providers: Providers,
        base_dir: PathBuf,
        clock: Arc<dyn super::walker::Clock>,
        records: &[Record],
    ) -> SiteExecutor {
        let mut acted = HashMap::new();
        let mut backups = Vec::new();
        let mut dns = DnsMemory::default();
        for r in records {
            match &r.entry {
                Entry::StepStarted { step } | Entry::ActionSent { step } => {
                    acted.insert(step.clone(), r.ts_ms);
                }
                Entry::ActionDone { step, artifacts } => {
                    backups.extend(artifacts.iter().cloned());
                    dns.done_at.entry(step.clone()).or_insert(r.ts_ms);
                }
                Entry::StepSucceeded { step, .. } if step.starts_with("switch.to-") => {
                    dns.done_at.entry(step.clone()).or_insert(r.ts_ms);
                }
                Entry::StepObserved { step, observed } if step == "switch.prepare" => {
                    dns.old_ttl = observed["ttl"].as_u64().and_then(|t| u32::try_from(t).ok());
                }
                _ => {}
            }
        }
        SiteExecutor {
            compiled,
            providers,
            base_dir,
            clock,
            acted: Mutex::new(acted),
            backups: Mutex::new(backups),
            dns_memory: Mutex::new(dns),
            journal: std::sync::OnceLock::new(),
        }
    }

    fn dns_memory(&self) -> std::sync::MutexGuard<'_, DnsMemory> {
        self.dns_memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `step`'s action completed now, unless an earlier completion is known.
    fn mark_done_once(&self, step: &str) {
        let now = self.clock.now_ms();
        self.dns_memory()
            .done_at
            .entry(step.to_owned())
            .or_insert(now);
    }

    fn plan(&self) -> &Plan {
        &self.compiled.plan
    }

    fn step(&self, id: &str) -> Result<&Step, StepError> {
        self.compiled
            .step(id)
            .ok_or_else(|| StepError::fatal(format!("step {id} is not in the compiled plan")))
    }

    fn appliance_ip(&self, name: &str) -> Result<IpAddr, StepError> {
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

    async fn observe(
        &self,
        name: &str,
    ) -> Result<crate::provider::ApplianceObservation, StepError> {
        let p = self.providers.appliances.get(name).ok_or_else(|| {
            StepError::fatal(format!("no provider is wired for appliance {name}"))
        })?;
        Ok(p.observe().await?)
    }

    fn mark_acted(&self, id: &str) {
        let now = self.clock.now_ms();
        self.acted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_owned(), now);
    }

    fn acted_at(&self, id: &str) -> Option<i64> {
        self.acted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    async fn operator(
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
    fn switch_from(&self, to: &str) -> String {
        self.plan()
            .appliances
            .keys()
            .find(|n| n.as_str() != to)
            .cloned()
            .unwrap_or_default()
    }

    async fn act_switch(&self, s: &Step, to: &str) -> Result<(), StepError> {
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
                let dns = self
                    .providers
                    .dns
                    .as_ref()
                    .ok_or_else(|| StepError::fatal("no DNS provider is wired"))?;
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

    fn dns(&self) -> Result<&Arc<dyn crate::provider::DnsProvider>, StepError> {
        self.providers
            .dns
            .as_ref()
            .ok_or_else(|| StepError::fatal("no DNS provider is wired"))
    }

    /// `switch.prepare`: observe the record's TTL and journal it (once: a resume keeps the
    /// value seen before the first lowering), then lower the TTL to the switch's.
    async fn lower_dns_ttl(
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
                    "dns {record} has TTL {old}s: waiting it out after lowering takes longer than {} may take ({}s); set policy.estimates.\"switch.prepare\" to at least {old}s and plan again",
                    spec.id,
                    spec.verify_timeout.as_secs()
                )));
            }
            if let Some(j) = self.journal.get() {
                j.append(Entry::StepObserved {
                    step: spec.id.clone(),
                    observed: serde_json::json!({
                        "record": record, "ttl": old, "observed_ttl": cur.ttl, "assumed": assumed
                    }),
                })
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
    fn restore_ttl(&self) -> u32 {
        self.dns_memory().old_ttl.unwrap_or_else(|| {
            u32::try_from(crate::compile::old_ttl(self.plan())).unwrap_or(u32::MAX)
        })
    }

    /// How long ago (ms) `step`'s action completed; `None` when it is not known to have.
    fn since_done(&self, step: &str) -> Option<i64> {
        let at = self.dns_memory().done_at.get(step).copied()?;
        Some(self.clock.now_ms() - at)
    }

    /// Whether a step after `switch.verify-{to}` makes the appliance the site left
    /// unavailable (its install or decommission): clients may still hold its address.
    pub(super) fn old_goes_down_after(&self, to: &str) -> bool {
        let from = self.switch_from(to);
        let down = [format!("{from}.install"), format!("{from}.decommission")];
        let mut after: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let start = format!("switch.verify-{to}");
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
    fn dns_wait(&self, id: &str, observed: serde_json::Value) -> Check {
        let Some(Switch::Dns { record, ttl, .. }) = plan_switch(self.plan()) else {
            return Check::Holds(observed);
        };
        let (since, wait_s, what) = if id == "switch.prepare" {
            self.mark_done_once(id);
            let old = self.restore_ttl();
            (
                self.since_done(id),
                old,
                "caches may still hold the record with its old TTL",
            )
        } else if let Some(to) = id.strip_prefix("switch.verify-")
            && self.old_goes_down_after(to)
        {
            let swung = format!("switch.to-{to}");
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

    async fn set_dns_ttl(&self, ttl: u32) -> Result<(), StepError> {
        let Some(Switch::Dns { record, .. }) = plan_switch(self.plan()) else {
            return Err(StepError::fatal("a TTL change needs a dns switch"));
        };
        let dns = self
            .providers
            .dns
            .as_ref()
            .ok_or_else(|| StepError::fatal("no DNS provider is wired"))?;
        let cur = dns.observe(record).await?;
        if cur.ttl == ttl {
            return Ok(());
        }
        Ok(dns.set_ttl(record, &cur, ttl).await?)
    }

    /// Evaluates one condition against the world now.
    fn eval<'a>(
        &'a self,
        cond: &'a Condition,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Check, StepError>> + Send + 'a>>
    {
        Box::pin(async move {
            let holds = |v: serde_json::Value| Ok(Check::Holds(v));
            let not_yet = |why: String| Ok(Check::NotYet(why));
            // What was observed of an appliance that did not answer, with the reason.
            let silent = |appliance: &str, o: &crate::provider::ApplianceObservation| match &o
                .error_message
            {
                Some(why) => format!("appliance {appliance} does not answer: {why}"),
                None => format!("appliance {appliance} does not answer"),
            };
            match cond {
                Condition::Healthy { appliance } => {
                    let o = match self.observe(appliance).await {
                        Ok(o) => o,
                        Err(e) if e.retryable => {
                            return not_yet(format!("{appliance}: {}", e.message));
                        }
                        Err(e) => return Err(e),
                    };
                    if o.reachable && o.healthy {
                        holds(
                            serde_json::json!({ "appliance": appliance, "version": o.version, "role": o.role }),
                        )
                    } else if !o.reachable {
                        not_yet(silent(appliance, &o))
                    } else {
                        not_yet(format!(
                            "appliance {appliance} reports a problem: {}",
                            o.error_message
                                .unwrap_or_else(|| "check_health success=0".into())
                        ))
                    }
                }
                Condition::Version { appliance, version } => {
                    let o = match self.observe(appliance).await {
                        Ok(o) => o,
                        Err(e) if e.retryable => {
                            return not_yet(format!("{appliance}: {}", e.message));
                        }
                        Err(e) => return Err(e),
                    };
                    if o.reachable && o.version.as_deref() == Some(version.as_str()) {
                        holds(serde_json::json!({ "appliance": appliance, "version": version }))
                    } else if o.reachable && !o.healthy {
                        // Back on the old version and reporting a problem: the install ended
                        // without reaching the target. Waiting longer cannot help, and the
                        // guide forbids restarting the appliance: halt now.
                        Err(StepError::fatal(format!(
                            "appliance {appliance} still runs {} (target {version}) and reports: {}",
                            o.version.as_deref().unwrap_or("an unknown version"),
                            o.error_message
                                .as_deref()
                                .unwrap_or("check_health success=0")
                        )))
                    } else if !o.reachable {
                        // Installing, restarting, or the API refused us: say which, not
                        // "an unknown version".
                        not_yet(format!("{}, waiting for {version}", silent(appliance, &o)))
                    } else {
                        not_yet(format!(
                            "appliance {appliance} runs {}, waiting for {version}",
                            o.version.as_deref().unwrap_or("an unknown version")
                        ))
                    }
                }
                Condition::Role { appliance, role } => {
                    let o = self.observe(appliance).await?;
                    let now = match o.role {
                        FailoverRole::None => "none",
                        FailoverRole::Primary => "primary",
                        FailoverRole::Backup => "backup",
                    };
                    if o.reachable && now == role {
                        holds(serde_json::json!({ "appliance": appliance, "role": role }))
                    } else if !o.reachable {
                        // Not "role none": an appliance that did not answer has no known role.
                        not_yet(format!("{} (expecting role {role})", silent(appliance, &o)))
                    } else {
                        not_yet(format!(
                            "appliance {appliance} has role {now}, expecting {role}"
                        ))
                    }
                }
                Condition::ClockSkew { appliance, max_s } => {
                    let o = self.observe(appliance).await?;
                    match o.clock_skew_s {
                        Some(s) if s.unsigned_abs() <= *max_s => {
                            holds(serde_json::json!({ "appliance": appliance, "clock_skew_s": s }))
                        }
                        Some(s) => Err(StepError::fatal(format!(
                            "appliance {appliance}'s clock is {s}s off (allowed {max_s}s): fix NTP under /appliance > Networking > IP Configuration"
                        ))),
                        None => not_yet(format!("appliance {appliance}'s clock was not observed")),
                    }
                }
                Condition::Certificate {
                    appliance,
                    site,
                    min_days,
                } => {
                    let o = self.observe(appliance).await?;
                    let Some(cert) = o.certificate else {
                        return not_yet(format!(
                            "appliance {appliance}'s certificate was not observed"
                        ));
                    };
                    if !cert.trusted {
                        return Err(StepError::fatal(format!(
                            "appliance {appliance}'s certificate is not trusted"
                        )));
                    }
                    if !cert.sans.iter().any(|n| n.eq_ignore_ascii_case(site)) {
                        return Err(StepError::fatal(format!(
                            "appliance {appliance}'s certificate is not valid for {site}"
                        )));
                    }
                    let left_days = chrono::DateTime::parse_from_rfc3339(&cert.not_after)
                        .map(|t| (t.timestamp_millis() - self.clock.now_ms()) / 86_400_000)
                        .map_err(|_| {
                            StepError::fatal(format!(
                                "certificate notAfter `{}` unreadable",
                                cert.not_after
                            ))
                        })?;
                    if left_days < i64::from(*min_days) {
                        return Err(StepError::fatal(format!(
                            "appliance {appliance}'s certificate expires in {left_days} days (policy: at least {min_days})"
                        )));
                    }
                    holds(
                        serde_json::json!({ "appliance": appliance, "leaf_sha256": cert.leaf_sha256, "days_left": left_days }),
                    )
                }
                Condition::InWindow => {
                    let ws = &self.plan().windows;
                    let now = self.clock.now_ms();
                    if ws.is_empty()
                        || ws.iter().any(|w| {
                            w.start.timestamp_millis() <= now && now < w.end.timestamp_millis()
                        })
                    {
                        holds(serde_json::Value::Null)
                    } else {
                        Err(StepError::fatal(
                            "now is outside every maintenance window of the plan",
                        ))
                    }
                }
                Condition::BackupExists { appliance } => {
                    let backups = self
                        .backups
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    for b in backups.iter().rev() {
                        if let Ok(bytes) = std::fs::read(&b.path)
                            && hex::encode(Sha256::digest(&bytes)) == b.sha256
                        {
                            return holds(
                                serde_json::json!({ "path": b.path, "sha256": b.sha256 }),
                            );
                        }
                    }
                    not_yet(format!(
                        "no configuration backup of {appliance} with a matching SHA-256 on disk"
                    ))
                }
                Condition::SameCertificate {
                    appliance,
                    as_appliance,
                } => {
                    let (a, b) = (
                        self.observe(appliance).await?,
                        self.observe(as_appliance).await?,
                    );
                    match (a.certificate, b.certificate) {
                        (Some(x), Some(y)) if x.leaf_sha256 == y.leaf_sha256 => {
                            holds(serde_json::json!({ "leaf_sha256": x.leaf_sha256 }))
                        }
                        _ => not_yet(format!(
                            "{appliance} does not serve the same certificate as {as_appliance} yet"
                        )),
                    }
                }
                // Nothing observable: the file's location is the person's choice; the walker
                // got a confirmation (or the automation reported success).
                Condition::CertificateExported { .. } | Condition::Confirmed => {
                    holds(serde_json::Value::Null)
                }
                Condition::SyncAfter {
                    appliance,
                    after_step,
                } => {
                    let o = self.observe(appliance).await?;
                    let since = self.acted_at(after_step).unwrap_or(0);
                    match o.last_sync_unix {
                        Some(t) if t.saturating_mul(1000) >= since - 1000 => holds(
                            serde_json::json!({ "appliance": appliance, "last_sync_unix": t }),
                        ),
                        _ => not_yet(format!(
                            "waiting for a data sync on {appliance} after {after_step}"
                        )),
                    }
                }
                Condition::SiteServedBy { appliance } => self.site_served_by(appliance).await,
                Condition::DnsTtl { record, ttl_s } => {
                    let dns = self
                        .providers
                        .dns
                        .as_ref()
                        .ok_or_else(|| StepError::fatal("no DNS provider is wired"))?;
                    let o = dns.observe(record).await?;
                    if u64::from(o.ttl) == *ttl_s {
                        holds(serde_json::json!({ "record": record, "ttl": o.ttl }))
                    } else {
                        not_yet(format!("dns {record} has TTL {}, expecting {ttl_s}", o.ttl))
                    }
                }
                Condition::JumpClientsRatio { ratio } => {
                    let mut best: Option<crate::provider::JumpClientSummary> = None;
                    for name in self.plan().appliances.keys() {
                        if let Ok(o) = self.observe(name).await
                            && o.role != FailoverRole::Backup
                            && let Some(j) = o.jump_clients
                            && best.is_none_or(|b| j.ratio() > b.ratio())
                        {
                            best = Some(j);
                        }
                    }
                    match best {
                        Some(j) if j.ratio() >= *ratio => holds(serde_json::json!({
                            "total": j.total, "upgraded_online": j.upgraded_online
                        })),
                        Some(j) => not_yet(format!(
                            "{} of {} Jump Clients online and upgraded ({:.0}%, need {:.0}%)",
                            j.upgraded_online,
                            j.total,
                            j.ratio() * 100.0,
                            ratio * 100.0
                        )),
                        None => not_yet("Jump Clients not observed yet".into()),
                    }
                }
                Condition::ApiAccount { appliance } => match self.observe(appliance).await {
                    Ok(o) if o.reachable => holds(serde_json::json!({ "appliance": appliance })),
                    Ok(_) => not_yet(format!("appliance {appliance} does not answer")),
                    Err(e) if e.retryable => not_yet(e.message),
                    Err(e) => not_yet(format!(
                        "the API account does not authenticate on {appliance} yet: {}",
                        e.message
                    )),
                },
                Condition::Elapsed {
                    after_step,
                    seconds,
                } => {
                    let since = self.acted_at(after_step).unwrap_or(0);
                    let waited = (self.clock.now_ms() - since) / 1000;
                    if waited >= i64::try_from(*seconds).unwrap_or(i64::MAX) {
                        holds(serde_json::json!({ "waited_s": waited }))
                    } else {
                        not_yet(format!(
                            "waiting for the old TTL to expire: {waited}s of {seconds}s"
                        ))
                    }
                }
                Condition::All { all } => {
                    let mut seen = serde_json::Map::new();
                    for (i, c) in all.iter().enumerate() {
                        match self.eval(c).await? {
                            Check::Holds(v) => {
                                seen.insert(i.to_string(), v);
                            }
                            nope => return Ok(nope),
                        }
                    }
                    holds(serde_json::Value::Object(seen))
                }
                #[allow(unreachable_patterns)]
                other => not_yet(format!(
                    "condition {other:?} cannot be observed by this swing"
                )),
            }
        })
    }

    /// Whether `appliance` is seen answering at the shared `address` (false when that cannot
    /// be told).
    async fn shared_ip_answered_by(&self, appliance: &str, address: &str) -> bool {
        let Some(p) = self.providers.appliances.get(appliance) else {
            return false;
        };
        let Ok(own) = self.observe(appliance).await else {
            return false;
        };
        match (own.appliance_id, p.identify_at(address).await) {
            (Some(want), Ok(Some(id))) => id == want,
            _ => false,
        }
    }

    /// Whether `appliance` is the one answering the command API at the shared `address`.
    async fn answers_at(
        &self,
        appliance: &str,
        address: &str,
        own: &crate::provider::ApplianceObservation,
    ) -> Result<Check, StepError> {
        let p = self
            .providers
            .appliances
            .get(appliance)
            .ok_or_else(|| StepError::fatal(format!("no provider is wired for {appliance}")))?;
        let Some(want) = own.appliance_id.as_deref() else {
            return Ok(Check::NotYet(format!(
                "{appliance} reported no appliance id"
            )));
        };
        match p.identify_at(address).await {
            Ok(Some(id)) if id == want => Ok(Check::Holds(serde_json::json!({
                "appliance": appliance,
                "shared_ip": address,
                "answered_by": id
            }))),
            Ok(Some(id)) => Ok(Check::NotYet(format!(
                "the shared IP {address} is answered by appliance id {id}, not {appliance}"
            ))),
            Ok(None) => Ok(Check::NotYet(format!(
                "nothing answers at the shared IP {address} yet"
            ))),
            // A provider that cannot look (an exec plugin): the operator's report stands,
            // journaled as not observable.
            Err(e) if e.kind == crate::provider::ErrorKind::NotFound => {
                Ok(Check::Holds(serde_json::json!({
                    "appliance": appliance,
                    "shared_ip": address,
                    "observable": false
                })))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn site_served_by(&self, appliance: &str) -> Result<Check, StepError> {
        match plan_switch(self.plan()) {
            Some(Switch::SharedIp { address }) => {
                let o = self.observe(appliance).await?;
                if o.shared_ips.iter().any(|ip| ip == address) {
                    Ok(Check::Holds(
                        serde_json::json!({ "appliance": appliance, "shared_ip": address }),
                    ))
                } else if o.reachable && o.role == FailoverRole::None {
                    // check_health lists shared IPs only inside a failover relationship: while
                    // the pair is broken, ask who answers at the shared address itself.
                    self.answers_at(appliance, address, &o).await
                } else {
                    Ok(Check::NotYet(format!(
                        "shared IP {address} is not enabled on {appliance}"
                    )))
                }
            }
            Some(Switch::Dns { record, .. }) => {
                let dns = self
                    .providers
                    .dns
                    .as_ref()
                    .ok_or_else(|| StepError::fatal("no DNS provider is wired"))?;
                let o = dns.observe(record).await?;
                let want = self.appliance_ip(appliance)?;
                if o.addresses == vec![want] {
                    Ok(Check::Holds(
                        serde_json::json!({ "record": record, "address": want.to_string() }),
                    ))
                } else {
                    Ok(Check::NotYet(format!(
                        "dns {record} does not point at {appliance} ({want}) only"
                    )))
                }
            }
            Some(Switch::Nat { public, .. }) => {
                let nat = self
                    .providers
                    .nat
                    .as_ref()
                    .ok_or_else(|| StepError::fatal("no NAT provider is wired"))?;
                let p: SocketAddr = public
                    .parse()
                    .map_err(|_| StepError::fatal(format!("`{public}` is not an address:port")))?;
                let o = nat.observe(p).await?;
                let want = self.appliance_ip(appliance)?;
                if o.target.map(|t| t.ip()) == Some(want) {
                    Ok(Check::Holds(
                        serde_json::json!({ "public": public, "target": o.target }),
                    ))
                } else {
                    Ok(Check::NotYet(format!(
                        "the NAT rule for {public} does not point at {appliance}"
                    )))
                }
            }
            None => Ok(Check::Holds(serde_json::Value::Null)),
        }
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
        let s = self.step(&spec.id)?.clone();
        self.mark_acted(&s.id);
        let plan = self.plan().clone();
        let id = s.id.as_str();
        if id == "backup.config" {
            let x = self.compiled.roles.serving.clone();
            let p = self.providers.appliances.get(&x).ok_or_else(|| {
                StepError::fatal(format!("no provider is wired for appliance {x}"))
            })?;
            // `./backups` next to the plan, written without the `./` in reports.
            let dir: PathBuf = self
                .base_dir
                .join(&plan.backup.directory)
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .collect();
            let stem = format!("{}-{x}-{}", plan.name, self.clock.now_ms() / 1000);
            let info = p.backup(&dir, &stem).await?;
            let a = Artifact {
                path: info.path,
                sha256: info.sha256,
                bytes: info.bytes,
            };
            self.backups
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(a.clone());
            return Ok(vec![a]);
        }
        if let Some(to) = id.strip_prefix("switch.to-") {
            self.act_switch(&s, to).await?;
            self.mark_done_once(id);
            return Ok(Vec::new());
        }
        if let Some(x) = id.strip_prefix("failover.promote-") {
            let p = self.providers.appliances.get(x).ok_or_else(|| {
                StepError::fatal(format!("no provider is wired for appliance {x}"))
            })?;
            p.set_failover_role(FailoverRole::Primary, true).await?;
            return Ok(Vec::new());
        }
        if id == "switch.prepare" {
            if let Some(Switch::Dns { record, ttl, .. }) = plan_switch(&plan) {
                self.lower_dns_ttl(spec, record, *ttl).await?;
            }
            return Ok(Vec::new());
        }
        if id == "switch.restore" {
            self.set_dns_ttl(self.restore_ttl()).await?;
            return Ok(Vec::new());
        }
        if s.kind != OutKind::Operator {
            // Checks and waits: nothing to do, verify observes.
            return Ok(Vec::new());
        }
        let appliance = operator_appliance(&self.compiled, &s)
            .ok_or_else(|| StepError::fatal(format!("{id}: no appliance to perform it on")))?;
        let action = match (id, s.op.action()) {
            (_, "install") => install_action(&plan),
            ("backup.certificates" | "certs.export", _) => OperatorAction::ExportCertificate,
            ("backup.vault-key", _) => OperatorAction::VaultKey,
            ("clients.throttle", _) => OperatorAction::ClientThrottle {
                max_concurrent_upgrades: plan.policy.jump_clients.max_concurrent_upgrades,
            },
            ("clients.followup", _) => OperatorAction::ClientFollowup,
            ("failover.sync", _) => OperatorAction::SyncNow,
            ("failover.break", _) => OperatorAction::BreakFailover,
            ("failover.keys", _) => OperatorAction::ConfirmKeys,
            ("failover.establish", _) => {
                let backup = self.switch_from(&appliance);
                let addr = plan
                    .appliances
                    .get(&backup)
                    .map(|a| a.address.clone())
                    .unwrap_or_default();
                let peer_port = plan.failover.as_ref().map(|f| f.peer_port).unwrap_or(443);
                OperatorAction::EstablishFailover {
                    backup_address: addr,
                    peer_port,
                }
            }
            ("certs.import", _) => OperatorAction::ImportCertificate {
                from_appliance: self.compiled.roles.serving.clone(),
            },
            ("certs.default", _) => OperatorAction::DefaultCertificate,
            (_, _) if id.ends_with(".restore") => {
                let path = self
                    .backups
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .last()
                    .map(|b| b.path.clone());
                let backup_path =
                    path.ok_or_else(|| StepError::fatal("no configuration backup to restore"))?;
                OperatorAction::RestoreBackup { backup_path }
            }
            _ => {
                return Err(StepError::fatal(format!(
                    "{id}: no operator automation exists for this step"
                )));
            }
        };
        self.operator(&s, &appliance, action).await?;
        Ok(Vec::new())
    }

    async fn verify(&self, spec: &StepSpec) -> Result<Check, StepError> {
        let s = self.step(&spec.id)?;
        if self.acted_at(&s.id).is_none() {
            self.mark_acted(&s.id);
        }
        if let (Condition::DnsTtl { record, .. }, "switch.restore") =
            (&s.postcondition, s.id.as_str())
        {
            // The TTL observed before lowering, not the plan's assumption.
            let restored = Condition::DnsTtl {
                record: record.clone(),
                ttl_s: u64::from(self.restore_ttl()),
            };
            return self.eval(&restored).await;
        }
        match self.eval(&s.postcondition).await? {
            Check::Holds(observed) => Ok(self.dns_wait(&s.id, observed)),
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

    fn journal_opened(&self, journal: &Arc<super::Journal>) {
        let _ = self.journal.set(journal.clone());
    }
}

/// The operator action of an install step: the plan's target packages (or version).
fn install_action(plan: &Plan) -> OperatorAction {
    OperatorAction::Install {
        packages: plan.target.packages.clone(),
        version: plan.target.version.to_string(),
    }
}

/// The plan and apply use cases moved to [`crate::ops`]; these names stay for callers of the
/// old paths.
pub use crate::ops::{
    PlannedSite, SiteApply, SiteError, SiteOutcome, apply as apply_site, plan as plan_site,
};

/// Step timeouts follow the plan's estimates (see [`step_timeout`]).
#[cfg(test)]
mod timeout_tests {
    use super::*;
    use crate::compile::{CompileOptions, compile};

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
        compile(&plan, &CompileOptions::default()).unwrap()
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

/// A precondition that could not be observed is retryable and says so; it is never read as
/// "the appliance has role none".
#[cfg(test)]
mod precondition_tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::compile::{CompileOptions, compile};
    use crate::provider::{ApplianceObservation, ApplianceProvider, BackupInfo, ProviderResult};

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
        let c = Arc::new(compile(&plan, &CompileOptions::default()).unwrap());
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
        let c = Arc::new(compile(&plan, &CompileOptions::default()).unwrap());
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
