//! Refresh: observe every resource of a plan concurrently through the provider traits —
//! each appliance (version, role, shared IPs, last sync, Jump Clients, certificate, clock),
//! the DNS record or the NAT rule of the switch — and condense what matters for stale-plan
//! detection into a per-resource [`Fingerprint`].
//!
//! Owns: the [`Providers`] set the engine works with, the concurrent observation, and the
//! fingerprint (which facts a saved plan pins). Must not: build concrete providers or resolve
//! secrets (the CLI's wiring does), act on the world, or print.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use swing_schema::{Plan, Switch};

use crate::provider::{
    ApplianceObservation, ApplianceProvider, DnsObservation, DnsProvider, NatObservation,
    NatProvider, OperatorBridge, ProviderError,
};

/// The providers of one plan, built by the CLI's wiring.
#[derive(Clone, Default)]
pub struct Providers {
    /// Per appliance name.
    pub appliances: BTreeMap<String, Arc<dyn ApplianceProvider>>,
    /// Per appliance name, where operator steps are automated (`operator: sim|exec`);
    /// absent = a person performs them (`operator: prompt`).
    pub bridges: BTreeMap<String, Arc<dyn OperatorBridge>>,
    /// The DNS provider of a `dns` switch.
    pub dns: Option<Arc<dyn DnsProvider>>,
    /// The NAT provider of a `nat` switch.
    pub nat: Option<Arc<dyn NatProvider>>,
}

/// What the world looked like at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub appliances: BTreeMap<String, Result<ApplianceObservation, ProviderError>>,
    /// `(record, observation)` for a dns switch.
    pub dns: Option<(String, Result<DnsObservation, ProviderError>)>,
    /// `(public, observation)` for a nat switch.
    pub nat: Option<(String, Result<NatObservation, ProviderError>)>,
}

impl Observed {
    /// The observation of an appliance, if it answered.
    pub fn appliance(&self, name: &str) -> Option<&ApplianceObservation> {
        self.appliances.get(name).and_then(|r| r.as_ref().ok())
    }
}

/// The switch of a plan (failover or migration), if any.
pub fn plan_switch(plan: &Plan) -> Option<&Switch> {
    plan.failover
        .as_ref()
        .and_then(|f| f.switch.as_ref())
        .or(plan.migration.as_ref().map(|m| &m.switch))
}

/// Observes everything the plan touches, all at once.
pub async fn refresh(plan: &Plan, providers: &Providers) -> Observed {
    let mut set = tokio::task::JoinSet::new();
    for name in plan.appliances.keys() {
        let name = name.clone();
        match providers.appliances.get(&name) {
            Some(p) => {
                let p = p.clone();
                set.spawn(async move { (name, p.observe().await) });
            }
            None => {
                set.spawn(async move {
                    let e = ProviderError::new(
                        crate::provider::ErrorKind::Invalid,
                        format!("no provider is wired for appliance {name}"),
                    );
                    (name, Err(e))
                });
            }
        }
    }
    let dns_fut = async {
        match (plan_switch(plan), &providers.dns) {
            (Some(Switch::Dns { record, .. }), Some(d)) => {
                Some((record.clone(), d.observe(record).await))
            }
            _ => None,
        }
    };
    let nat_fut = async {
        match (plan_switch(plan), &providers.nat) {
            (Some(Switch::Nat { public, .. }), Some(n)) => {
                let r = match public.parse::<SocketAddr>() {
                    Ok(addr) => n.observe(addr).await,
                    Err(_) => Err(ProviderError::new(
                        crate::provider::ErrorKind::Invalid,
                        format!("switch.public `{public}` is not an address:port"),
                    )),
                };
                Some((public.clone(), r))
            }
            _ => None,
        }
    };
    let (dns, nat) = tokio::join!(dns_fut, nat_fut);
    let mut appliances = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((name, r)) = joined {
            appliances.insert(name, r);
        }
    }
    // A task that panicked leaves its appliance unobserved: record that, never guess.
    for name in plan.appliances.keys() {
        appliances.entry(name.clone()).or_insert_with(|| {
            Err(ProviderError::new(
                crate::provider::ErrorKind::Failed,
                "observation ended abnormally",
            ))
        });
    }
    Observed {
        appliances,
        dns,
        nat,
    }
}

/// The facts a saved plan pins, per resource (`appliance b` → `version` → `24.3.1`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Fingerprint {
    pub resources: BTreeMap<String, BTreeMap<String, String>>,
}

impl Fingerprint {
    /// Condenses an observation. Only facts whose change makes a plan wrong are pinned
    /// (version, role, shared IPs, reachability, the switch target) — not clocks or sync times.
    pub fn of(observed: &Observed) -> Fingerprint {
        let mut resources = BTreeMap::new();
        for (name, r) in &observed.appliances {
            let mut f = BTreeMap::new();
            match r {
                Ok(o) if o.reachable => {
                    f.insert(
                        "version".into(),
                        o.version.clone().unwrap_or_else(|| "unknown".into()),
                    );
                    f.insert("role".into(), o.role.as_str().into());
                    let mut ips = o.shared_ips.clone();
                    ips.sort();
                    f.insert(
                        "shared IPs".into(),
                        if ips.is_empty() {
                            "none".into()
                        } else {
                            ips.join(", ")
                        },
                    );
                    f.insert(
                        "health".into(),
                        if o.healthy { "ok" } else { "failing" }.into(),
                    );
                }
                Ok(_) => {
                    f.insert("reachable".into(), "no".into());
                }
                Err(e) => {
                    f.insert("observation".into(), format!("failed: {}", e.message));
                }
            }
            resources.insert(format!("appliance {name}"), f);
        }
        if let Some((record, r)) = &observed.dns {
            let mut f = BTreeMap::new();
            match r {
                Ok(o) => {
                    let mut a: Vec<String> = o.addresses.iter().map(|a| a.to_string()).collect();
                    a.sort();
                    f.insert("addresses".into(), a.join(", "));
                }
                Err(e) => {
                    f.insert("observation".into(), format!("failed: {}", e.message));
                }
            }
            resources.insert(format!("dns {record}"), f);
        }
        if let Some((public, r)) = &observed.nat {
            let mut f = BTreeMap::new();
            match r {
                Ok(o) => {
                    f.insert(
                        "target".into(),
                        o.target
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| "none".into()),
                    );
                }
                Err(e) => {
                    f.insert("observation".into(), format!("failed: {}", e.message));
                }
            }
            resources.insert(format!("nat {public}"), f);
        }
        Fingerprint { resources }
    }

    /// Every difference between the fingerprint a plan was made against (`self`) and `now`,
    /// typed: what moved, on which resource, from what to what.
    pub fn changes(&self, now: &Fingerprint) -> Vec<FingerprintChange> {
        let mut out = Vec::new();
        for (res, then) in &self.resources {
            let Some(cur) = now.resources.get(res) else {
                out.push(FingerprintChange::NoLongerObserved {
                    resource: res.clone(),
                });
                continue;
            };
            let keys: std::collections::BTreeSet<&String> = then.keys().chain(cur.keys()).collect();
            for k in keys {
                let (a, b) = (then.get(k), cur.get(k));
                if a == b {
                    continue;
                }
                let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "unknown".into());
                out.push(FingerprintChange::Moved {
                    resource: res.clone(),
                    fact: k.clone(),
                    now: show(b),
                    planned: show(a),
                });
            }
        }
        for res in now.resources.keys() {
            if !self.resources.contains_key(res) {
                out.push(FingerprintChange::NotPlanned {
                    resource: res.clone(),
                });
            }
        }
        out
    }
}

/// One difference between the fingerprint a saved plan pins and the world now. `Display`
/// words it for a person (the text `swing show` and a refused apply print).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FingerprintChange {
    /// A pinned fact of a resource has another value now (`fact` is `version`, `role`,
    /// `shared IPs`, `health`, `reachable`, `observation`, `addresses` or `target`).
    Moved {
        resource: String,
        fact: String,
        now: String,
        planned: String,
    },
    /// The plan observed this resource; it is not observed now.
    NoLongerObserved { resource: String },
    /// Observed now, but not when the plan was made.
    NotPlanned { resource: String },
}

impl std::fmt::Display for FingerprintChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FingerprintChange::Moved {
                resource,
                fact,
                now,
                planned,
            } => {
                // A resource's version and role read as the resource itself being "now X".
                if matches!(fact.as_str(), "version" | "role") {
                    write!(f, "{resource}")?;
                } else {
                    write!(f, "{resource} {fact}")?;
                }
                write!(f, " is now {now}, the plan was made against {planned}")
            }
            FingerprintChange::NoLongerObserved { resource } => {
                write!(f, "{resource} is no longer observed")
            }
            FingerprintChange::NotPlanned { resource } => {
                write!(f, "{resource} was not part of the plan's observation")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ErrorKind, FailoverRole};
    use async_trait::async_trait;

    struct FakeAppliance(ApplianceObservation);
    #[async_trait]
    impl ApplianceProvider for FakeAppliance {
        async fn observe(&self) -> crate::provider::ProviderResult<ApplianceObservation> {
            Ok(self.0.clone())
        }
        async fn backup(
            &self,
            _dir: &std::path::Path,
            _stem: &str,
        ) -> crate::provider::ProviderResult<crate::provider::BackupInfo> {
            Err(ProviderError::new(ErrorKind::Invalid, "not in this fake"))
        }
        async fn set_failover_role(
            &self,
            _r: FailoverRole,
            _s: bool,
        ) -> crate::provider::ProviderResult<()> {
            Ok(())
        }
    }

    pub(crate) fn obs(version: &str, role: FailoverRole) -> ApplianceObservation {
        ApplianceObservation {
            reachable: true,
            version: Some(version.into()),
            healthy: true,
            role,
            ..ApplianceObservation::unreachable()
        }
    }

    fn plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "version": 1, "name": "chg", "site": "access.example.com",
            "target": {"version": "25.1.3"},
            "appliances": {"a": {"address": "10.0.0.11"}, "b": {"address": "10.0.0.12"}},
            "failover": {"primary": "a", "backup": "b", "strategy": "asynchronous",
                          "switch": {"method": "shared-ip", "address": "10.0.0.10"}},
            "backup": {"directory": "./backups", "password": "${env:P}"},
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x", "client_secret": "${env:S}"}}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn observes_all_and_reports_unwired_ones() {
        let mut p = Providers::default();
        p.appliances.insert(
            "a".into(),
            Arc::new(FakeAppliance(obs("24.3.1", FailoverRole::Primary))),
        );
        let o = refresh(&plan(), &p).await;
        assert_eq!(o.appliance("a").unwrap().version.as_deref(), Some("24.3.1"));
        assert!(
            o.appliances["b"]
                .as_ref()
                .unwrap_err()
                .message
                .contains("no provider")
        );
    }

    fn texts(changes: Vec<FingerprintChange>) -> Vec<String> {
        changes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn stale_reasons_are_precise() {
        let mut then = Observed::default();
        then.appliances
            .insert("b".into(), Ok(obs("24.3.1", FailoverRole::Backup)));
        let mut now = then.clone();
        now.appliances
            .insert("b".into(), Ok(obs("25.1.3", FailoverRole::Backup)));
        let reasons = texts(Fingerprint::of(&then).changes(&Fingerprint::of(&now)));
        assert_eq!(
            reasons,
            vec!["appliance b is now 25.1.3, the plan was made against 24.3.1".to_owned()]
        );
        assert!(
            Fingerprint::of(&then)
                .changes(&Fingerprint::of(&then))
                .is_empty()
        );
        now.appliances
            .insert("b".into(), Ok(obs("24.3.1", FailoverRole::Primary)));
        let reasons = texts(Fingerprint::of(&then).changes(&Fingerprint::of(&now)));
        assert_eq!(
            reasons,
            vec!["appliance b is now primary, the plan was made against backup".to_owned()]
        );
    }
}
