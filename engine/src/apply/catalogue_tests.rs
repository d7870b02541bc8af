//! Every postcondition the catalogue states is judged against an observation: the steps of
//! every example plan are compiled, and each condition a plan promises ("swing checks: …")
//! is evaluated by the executor in a world where nothing can be observed — no appliance,
//! DNS server or NAT gateway answers, no backup or exported file exists, the clock lies
//! outside every window and every step has only just acted. A condition that holds there
//! was not checked against anything, and the test names the step that claims it.

use std::path::Path;

use async_trait::async_trait;
use swing_schema::output::Condition;

use super::site::SiteExecutor;
use super::walker::Check;
use super::*;
use crate::compile::{CompileOptions, CompiledPlan, compile};
use crate::provider::*;
use crate::refresh::Providers;

/// How a blind appliance answers: with an error, or with the observation of one that did
/// not answer (both shapes reach the executor from real providers).
#[derive(Clone, Copy, Debug)]
enum Blind {
    Errors,
    Unreachable,
}

struct BlindAppliance(Blind);

#[async_trait]
impl ApplianceProvider for BlindAppliance {
    async fn observe(&self) -> ProviderResult<ApplianceObservation> {
        match self.0 {
            Blind::Errors => Err(ProviderError::new(
                ErrorKind::Transient,
                "connection refused",
            )),
            Blind::Unreachable => Ok(ApplianceObservation::unreachable()),
        }
    }
    async fn backup(&self, _: &Path, _: &str) -> ProviderResult<BackupInfo> {
        panic!("a check must not act: backup called")
    }
    async fn set_failover_role(&self, _: FailoverRole, _: bool) -> ProviderResult<()> {
        panic!("a check must not act: set_failover_role called")
    }
    async fn identify_at(&self, _: &str) -> ProviderResult<Option<String>> {
        Ok(None)
    }
}

struct BlindDns;

#[async_trait]
impl DnsProvider for BlindDns {
    async fn observe(&self, _: &str) -> ProviderResult<DnsObservation> {
        Err(ProviderError::new(ErrorKind::Transient, "no DNS answer"))
    }
    async fn set_ttl(&self, _: &str, _: &DnsObservation, _: u32) -> ProviderResult<()> {
        panic!("a check must not act: set_ttl called")
    }
    async fn swing(
        &self,
        _: &str,
        _: std::net::IpAddr,
        _: std::net::IpAddr,
        _: u32,
    ) -> ProviderResult<()> {
        panic!("a check must not act: dns swing called")
    }
}

struct BlindNat;

#[async_trait]
impl NatProvider for BlindNat {
    async fn observe(&self, _: std::net::SocketAddr) -> ProviderResult<NatObservation> {
        Err(ProviderError::new(ErrorKind::Transient, "no NAT answer"))
    }
    async fn swing(
        &self,
        _: std::net::SocketAddr,
        _: std::net::SocketAddr,
        _: std::net::SocketAddr,
    ) -> ProviderResult<()> {
        panic!("a check must not act: nat swing called")
    }
}

struct At(i64);
impl Clock for At {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

fn examples() -> Vec<(String, CompiledPlan)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans/examples");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let plan = crate::validate::valid(&std::fs::read_to_string(&path).unwrap());
            let options = CompileOptions {
                offline: true,
                file: None,
            };
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            out.push((name, compile(&plan, &options).unwrap()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 8,
        "the example plans were not found in {dir:?}"
    );
    out
}

/// The conditions a postcondition is made of (an `all` stands for its members).
fn leaves(c: &Condition) -> Vec<&Condition> {
    match c {
        Condition::All { all } => all.iter().flat_map(leaves).collect(),
        other => vec![other],
    }
}

/// A condition that is true of the plan itself, with nothing in the world to look at.
fn needs_no_observation(c: &Condition, compiled: &CompiledPlan) -> bool {
    match c {
        // A person's word, shown as such ("confirm when done"), never as "swing checks".
        Condition::Confirmed => true,
        // A plan without windows allows any time; the step's title says so.
        Condition::InWindow => compiled.plan.windows.is_empty(),
        _ => false,
    }
}

fn blind_executor(compiled: &CompiledPlan, how: Blind, dir: &Path) -> SiteExecutor {
    let mut providers = Providers::default();
    for name in compiled.plan.appliances.keys() {
        providers
            .appliances
            .insert(name.clone(), Arc::new(BlindAppliance(how)));
    }
    providers.dns = Some(Arc::new(BlindDns));
    providers.nat = Some(Arc::new(BlindNat));
    // A minute before the first window opens (or now, without windows).
    let now = compiled
        .plan
        .windows
        .iter()
        .map(|w| w.start.timestamp_millis() - 60_000)
        .min()
        .unwrap_or_else(journal::now_ms);
    let ex = SiteExecutor::new(
        Arc::new(compiled.clone()),
        providers,
        dir.to_owned(),
        Arc::new(At(now)),
        &[],
    );
    for s in &compiled.steps {
        ex.mark_acted(&s.id);
    }
    ex
}

#[tokio::test]
async fn every_stated_postcondition_is_judged_against_an_observation() {
    let mut judged = 0;
    let mut unchecked = Vec::new();
    for (file, compiled) in examples() {
        for how in [Blind::Errors, Blind::Unreachable] {
            let dir = tempfile::tempdir().unwrap();
            let ex = blind_executor(&compiled, how, dir.path());
            for step in &compiled.steps {
                for cond in leaves(&step.postcondition) {
                    if needs_no_observation(cond, &compiled) {
                        continue;
                    }
                    judged += 1;
                    if let Ok(Check::Holds(evidence)) = ex.eval(cond).await {
                        unchecked.push(format!(
                            "{file} {} ({how:?}): `{}` holds with nothing observed (evidence {evidence})",
                            step.id,
                            cond.describe()
                        ));
                    }
                }
            }
        }
    }
    assert!(judged > 100, "only {judged} conditions were judged");
    assert!(
        unchecked.is_empty(),
        "postconditions stated but not checked against an observation:\n{}",
        unchecked.join("\n")
    );
}
