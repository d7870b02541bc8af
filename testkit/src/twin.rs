//! The twin of a site, as values: what a rehearsal copies of the real site (from a read-only
//! observation, or from the plan's own facts offline) — [`describe`] — and the plan that runs
//! the SAME change against that copy — [`twin_plan`]: the user's plan with its providers
//! pointed at the twin's simulators, DNS server or NAT gateway (`operator: sim`, the twin's own
//! generated secrets), its durations scaled to the twin's time scale and its windows shifted
//! to start now.
//!
//! Owns: which observed facts become which simulator settings, and the rewrite of a plan into
//! its twin's plan. Must not: do IO (no clock, no network, no file: callers pass `now` and the
//! twin's addresses), resolve or copy any secret of the real plan, or change the steps, their
//! order or the policy of the change (only where it runs and how fast).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use swing_engine::compile::CompiledPlan;
use swing_engine::provider::FailoverRole;
use swing_engine::refresh::{Observed, plan_switch};
use swing_schema::{Plan, Switch};

/// Jump Clients assumed per appliance when nothing was observed (`--offline`).
pub const OFFLINE_JUMP_CLIENTS: u64 = 20;
/// Certificate validity assumed when nothing was observed, days.
pub const OFFLINE_CERT_DAYS: i64 = 365;
/// Time a twin window stays open beyond its scaled length, real seconds: at a compressed
/// time scale the engine's own work (observing, journaling) would otherwise eat the window.
/// The report judges fit on what the steps took, not on this allowance.
pub const WINDOW_ALLOWANCE_S: i64 = 10;

/// Where the twin's facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FactSource {
    /// A read-only refresh of the real site.
    Observed,
    /// The plan's `current_version` and its failover/switch settings (`--offline`).
    Offline,
}

/// The Jump Client population of one appliance, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct TwinJumpClients {
    /// Active clients online and ready.
    pub active: u64,
    /// Active clients not connected.
    pub active_offline: u64,
    pub passive: u64,
    pub uninstalled: u64,
    pub lost: u64,
}

/// One simulated appliance of the twin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TwinAppliance {
    pub name: String,
    pub version: String,
    /// `primary`, `backup` or `none`.
    pub role: String,
    /// The other appliance of its failover relationship.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Whether it holds the site's shared IP.
    pub holds_shared_ip: bool,
    pub healthy: bool,
    pub jump_clients: TwinJumpClients,
    /// Days the served certificate stays valid (negative: expired).
    pub certificate_valid_days: i64,
    /// The update catalogue it offers (`target.packages`, else the guide's two packages);
    /// empty when it already runs the target.
    pub catalogue: Vec<String>,
}

/// How the twin's site moves between appliances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum TwinSwitch {
    SharedIp {
        /// The appliance holding it.
        holder: Option<String>,
    },
    Dns {
        record: String,
        /// The appliance the record points at (None: an address of none of them).
        points_at: Option<String>,
        /// The address observed (or assumed), as the real site has it.
        address: String,
        /// The record's TTL before the change, real seconds.
        ttl_s: u64,
    },
    Nat {
        public: String,
        /// The appliance the DNAT rule points at.
        target: Option<String>,
    },
}

/// What the twin copies of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TwinDescription {
    pub source: FactSource,
    pub site: String,
    pub target_version: String,
    pub appliances: Vec<TwinAppliance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch: Option<TwinSwitch>,
    /// What the twin could not copy, or assumed.
    pub notes: Vec<String>,
}

impl TwinDescription {
    pub fn appliance(&self, name: &str) -> Option<&TwinAppliance> {
        self.appliances.iter().find(|a| a.name == name)
    }
}

fn role_name(r: FailoverRole) -> &'static str {
    match r {
        FailoverRole::Primary => "primary",
        FailoverRole::Backup => "backup",
        _ => "none",
    }
}

/// The packages a simulator on `version` offers to reach the plan's target.
fn catalogue(plan: &Plan, version: &str) -> Vec<String> {
    let target = &plan.target.version.0;
    if version_at_least(version, target) {
        return Vec::new();
    }
    if plan.target.packages.is_empty() {
        vec!["base-7.2.1".into(), format!("pra-{target}")]
    } else {
        plan.target.packages.clone()
    }
}

/// Dotted numeric comparison (`25.1.3` ≥ `24.3.2`); unparsable parts count as 0.
pub fn version_at_least(have: &str, want: &str) -> bool {
    let parts = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parts(have) >= parts(want)
}

/// The appliance (by plan name) whose address is `ip`.
fn appliance_at(plan: &Plan, ip: &str) -> Option<String> {
    plan.appliances
        .iter()
        .find(|(_, a)| a.address == ip)
        .map(|(n, _)| n.clone())
}

/// The appliance serving the site before the change, as the plan says.
fn planned_serving(plan: &Plan) -> Option<String> {
    plan.failover
        .as_ref()
        .map(|f| f.primary.clone())
        .or_else(|| plan.migration.as_ref().map(|m| m.from.clone()))
        .or_else(|| plan.appliances.keys().next().cloned())
}

/// The twin of the site: from `observed` (a refresh of the real site), or from the plan's
/// facts when `None` (`--offline`). `now_unix` dates the certificates. An appliance or switch
/// that could not be observed is an error naming it: a twin never guesses what it saw.
pub fn describe(
    plan: &Plan,
    observed: Option<&Observed>,
    now_unix: i64,
) -> Result<TwinDescription, String> {
    let mut notes = Vec::new();
    let mut appliances = Vec::new();
    let mut unobserved = Vec::new();
    let include_passive = plan.policy.jump_clients.include_passive;
    for (name, app) in &plan.appliances {
        let a = match observed {
            None => {
                let Some(v) = &app.current_version else {
                    unobserved.push(format!(
                        "appliance {name}: no current_version in the plan (--offline needs it; or rehearse against the live site)"
                    ));
                    continue;
                };
                let (role, peer) = match &plan.failover {
                    Some(f) if f.primary == *name => ("primary", Some(f.backup.clone())),
                    Some(f) if f.backup == *name => ("backup", Some(f.primary.clone())),
                    _ => ("none", None),
                };
                let holds = matches!(plan_switch(plan), Some(Switch::SharedIp { .. }))
                    && planned_serving(plan).as_deref() == Some(name);
                TwinAppliance {
                    name: name.clone(),
                    version: v.0.clone(),
                    role: role.into(),
                    peer,
                    holds_shared_ip: holds,
                    healthy: true,
                    jump_clients: TwinJumpClients {
                        active: OFFLINE_JUMP_CLIENTS,
                        ..TwinJumpClients::default()
                    },
                    certificate_valid_days: OFFLINE_CERT_DAYS,
                    catalogue: catalogue(plan, &v.0),
                }
            }
            Some(obs) => {
                let o = match obs.appliances.get(name) {
                    Some(Ok(o)) if o.reachable => o,
                    Some(Ok(_)) => {
                        unobserved.push(format!("appliance {name}: not reachable"));
                        continue;
                    }
                    Some(Err(e)) => {
                        unobserved.push(format!("appliance {name}: {}", e.message));
                        continue;
                    }
                    None => {
                        unobserved.push(format!("appliance {name}: not observed"));
                        continue;
                    }
                };
                let version = o.version.clone().unwrap_or_default();
                if version.is_empty() {
                    unobserved.push(format!("appliance {name}: no version in its answer"));
                    continue;
                }
                let role = role_name(o.role);
                let peer = match (role, &plan.failover) {
                    ("none", _) | (_, None) => None,
                    (_, Some(f)) => Some(if f.primary == *name {
                        f.backup.clone()
                    } else {
                        f.primary.clone()
                    }),
                };
                let jump_clients = match &o.jump_clients {
                    Some(j) => {
                        let counted_passive = if include_passive { j.passive } else { 0 };
                        let active = j.total.saturating_sub(counted_passive);
                        let ready = j.upgraded_online.min(active);
                        TwinJumpClients {
                            active: ready.max(active.saturating_sub(j.needs_update)),
                            active_offline: active
                                .saturating_sub(ready.max(active.saturating_sub(j.needs_update))),
                            passive: j.passive,
                            uninstalled: j.uninstalled,
                            lost: j.lost,
                        }
                    }
                    None => {
                        notes.push(format!(
                            "appliance {name}: Jump Clients could not be read; {OFFLINE_JUMP_CLIENTS} assumed"
                        ));
                        TwinJumpClients {
                            active: OFFLINE_JUMP_CLIENTS,
                            ..TwinJumpClients::default()
                        }
                    }
                };
                let certificate_valid_days = match o
                    .certificate
                    .as_ref()
                    .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c.not_after).ok())
                {
                    Some(t) => (t.timestamp() - now_unix).div_euclid(86_400),
                    None => {
                        notes.push(format!(
                            "appliance {name}: certificate dates not read; {OFFLINE_CERT_DAYS} days assumed"
                        ));
                        OFFLINE_CERT_DAYS
                    }
                };
                TwinAppliance {
                    name: name.clone(),
                    catalogue: catalogue(plan, &version),
                    version,
                    role: role.into(),
                    peer,
                    holds_shared_ip: !o.shared_ips.is_empty(),
                    healthy: o.healthy,
                    jump_clients,
                    certificate_valid_days,
                }
            }
        };
        appliances.push(a);
    }
    let switch = match (plan_switch(plan), observed) {
        (None, _) => None,
        (Some(Switch::SharedIp { .. }), _) => Some(TwinSwitch::SharedIp {
            holder: appliances
                .iter()
                .find(|a| a.holds_shared_ip)
                .map(|a| a.name.clone()),
        }),
        (Some(Switch::Dns { record, .. }), None) => {
            let serving = planned_serving(plan);
            let address = serving
                .as_ref()
                .and_then(|s| plan.appliances.get(s))
                .map(|a| a.address.clone())
                .unwrap_or_default();
            let ttl_s = swing_engine::compile::old_ttl(plan);
            notes.push(format!(
                "dns {record}: offline, the record is assumed to point at {} with TTL {ttl_s} s",
                serving.as_deref().unwrap_or("?")
            ));
            Some(TwinSwitch::Dns {
                record: record.clone(),
                points_at: serving,
                address,
                ttl_s,
            })
        }
        (Some(Switch::Dns { record, .. }), Some(obs)) => match &obs.dns {
            Some((_, Ok(d))) => {
                let address = d.addresses.first().map(|a| a.to_string());
                let points_at = address.as_deref().and_then(|a| appliance_at(plan, a));
                if d.addresses.len() > 1 {
                    notes.push(format!(
                        "dns {record}: {} addresses; the twin copies the first",
                        d.addresses.len()
                    ));
                }
                Some(TwinSwitch::Dns {
                    record: record.clone(),
                    points_at,
                    address: address.unwrap_or_default(),
                    ttl_s: u64::from(d.ttl),
                })
            }
            Some((_, Err(e))) => {
                unobserved.push(format!("dns {record}: {}", e.message));
                None
            }
            None => {
                unobserved.push(format!("dns {record}: not observed"));
                None
            }
        },
        (Some(Switch::Nat { public, .. }), None) => {
            notes.push(format!(
                "nat {public}: offline, the rule is assumed to point at {}",
                planned_serving(plan).as_deref().unwrap_or("?")
            ));
            Some(TwinSwitch::Nat {
                public: public.clone(),
                target: planned_serving(plan),
            })
        }
        (Some(Switch::Nat { public, .. }), Some(obs)) => match &obs.nat {
            Some((_, Ok(n))) => {
                let target = n.target.and_then(|t| {
                    plan.appliances
                        .iter()
                        .find(|(_, a)| a.address == t.ip().to_string())
                        .map(|(n, _)| n.clone())
                });
                Some(TwinSwitch::Nat {
                    public: public.clone(),
                    target,
                })
            }
            Some((_, Err(e))) => {
                unobserved.push(format!("nat {public}: {}", e.message));
                None
            }
            None => {
                unobserved.push(format!("nat {public}: not observed"));
                None
            }
        },
    };
    if !unobserved.is_empty() {
        return Err(format!(
            "cannot build the twin, the site could not be observed:\n  {}",
            unobserved.join("\n  ")
        ));
    }
    notes.push("data sync sizes are estimated: syncs take the plan's estimates".into());
    notes.push(
        "people are automated: operator steps run through the simulator, gates are confirmed"
            .into(),
    );
    if !plan.notify.is_empty() {
        notes.push("notifications are not sent from a rehearsal".into());
    }
    Ok(TwinDescription {
        source: if observed.is_some() {
            FactSource::Observed
        } else {
            FactSource::Offline
        },
        site: plan.site.clone(),
        target_version: plan.target.version.0.clone(),
        appliances,
        switch,
        notes,
    })
}

/// Where the twin runs: the addresses the plan's providers are pointed at.
#[derive(Debug, Clone)]
pub struct TwinLayout {
    /// Per appliance: the simulator's address.
    pub appliances: BTreeMap<String, SocketAddr>,
    /// The twin's shared IP (shared-ip switch).
    pub shared_ip: Option<IpAddr>,
    /// The embedded DNS server and its key name (dns switch); the key file is `./tsig.key`.
    pub dns: Option<(SocketAddr, String)>,
    /// The NAT gateway (nat switch).
    pub nat: Option<TwinNat>,
    /// The simulators' API account; secret in `./client-secret`, CA in `./ca/ca.pem`.
    pub client_id: String,
    pub rate_limit: (u32, u32),
}

/// The twin's NAT gateway.
#[derive(Debug, Clone)]
pub enum TwinNat {
    /// Real nftables in a namespace: the rule for `public` in `table`/`chain`.
    Nftables {
        public: SocketAddr,
        table: String,
        chain: String,
        netns: Option<String>,
    },
    /// A local stand-in speaking the exec provider protocol: `command args…`.
    Exec {
        public: SocketAddr,
        command: String,
        args: Vec<String>,
    },
}

impl TwinNat {
    pub fn public(&self) -> SocketAddr {
        match self {
            TwinNat::Nftables { public, .. } | TwinNat::Exec { public, .. } => *public,
        }
    }
}

/// Real seconds of the twin for `s` seconds of the plan, whole and at least one.
pub fn scaled_s(s: u64, scale: f64) -> u64 {
    ((s as f64 * scale).ceil() as u64).max(1)
}

/// The twin's windows: the plan's windows in order, each scaled, the first opening at
/// `now_unix_ms` and each next one when the previous closes (the days between windows are
/// not rehearsed), each open [`WINDOW_ALLOWANCE_S`] longer than its scaled length.
pub fn twin_windows(plan: &Plan, scale: f64, now_unix_ms: i64) -> Vec<serde_json::Value> {
    let mut ws: Vec<_> = plan.windows.iter().collect();
    ws.sort_by_key(|w| (w.start, w.end));
    let mut at = now_unix_ms.div_euclid(1_000) * 1_000 - 1_000;
    let mut out = Vec::new();
    for w in ws {
        let len_s = (w.end - w.start).num_seconds().max(0) as u64;
        let len_ms = (scaled_s(len_s, scale) as i64 + WINDOW_ALLOWANCE_S) * 1_000;
        let text = |ms: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default()
        };
        let (start, end) = (text(at), text(at + len_ms));
        out.push(serde_json::json!({ "name": w.name, "start": start, "end": end }));
        at += len_ms;
    }
    out
}

/// The twin's plan: `plan` with its appliances, switch and providers pointed at the twin
/// (`layout`), its step estimates and timeouts scaled by `scale` (real seconds of the twin
/// per second of the plan), windows from [`twin_windows`], backups into `./backups`,
/// notifications removed. Steps, order and policy stay those of `compiled` (the user's plan,
/// compiled): every step's estimate is stated per step id, so the twin plan compiles into
/// the same steps with the same relative durations.
pub fn twin_plan(
    compiled: &CompiledPlan,
    layout: &TwinLayout,
    scale: f64,
    now_unix_ms: i64,
) -> Result<serde_json::Value, String> {
    let plan = &compiled.plan;
    let mut v = serde_json::to_value(plan).map_err(|e| format!("the plan as data: {e}"))?;
    let obj = v.as_object_mut().ok_or("the plan is not an object")?;
    for (name, addr) in &layout.appliances {
        let a = obj
            .get_mut("appliances")
            .and_then(|a| a.get_mut(name))
            .and_then(|a| a.as_object_mut())
            .ok_or_else(|| format!("appliance {name} is not in the plan"))?;
        a.insert("address".into(), addr.ip().to_string().into());
        a.insert("port".into(), addr.port().into());
    }
    let port = layout.appliances.values().next().map(|a| a.port());
    let rewrite_switch = |sw: &mut serde_json::Value| -> Result<(), String> {
        match sw.get("method").and_then(|m| m.as_str()) {
            Some("shared-ip") => {
                let ip = layout.shared_ip.ok_or("the twin has no shared IP")?;
                sw["address"] = ip.to_string().into();
            }
            Some("dns") => {
                let ttl = sw.get("ttl").and_then(|t| t.as_u64()).unwrap_or(60);
                sw["ttl"] = scaled_s(ttl, scale).into();
            }
            Some("nat") => {
                let nat = layout.nat.as_ref().ok_or("the twin has no NAT gateway")?;
                sw["public"] = nat.public().to_string().into();
            }
            _ => {}
        }
        Ok(())
    };
    if let Some(f) = obj.get_mut("failover").and_then(|f| f.as_object_mut()) {
        if let Some(p) = port {
            f.insert("peer_port".into(), p.into());
        }
        if let Some(sw) = f.get_mut("switch") {
            rewrite_switch(sw)?;
        }
    }
    if let Some(sw) = obj.get_mut("migration").and_then(|m| m.get_mut("switch")) {
        rewrite_switch(sw)?;
    }
    obj.insert(
        "windows".into(),
        twin_windows(plan, scale, now_unix_ms).into(),
    );
    // Every step's estimate, scaled, per step id: the same schedule at the twin's pace.
    let mut estimates = serde_json::Map::new();
    for s in &compiled.steps {
        estimates.insert(
            s.id.clone(),
            format!("{}s", scaled_s(s.estimate_s, scale)).into(),
        );
    }
    // The old DNS TTL the swing waits out, scaled like the twin's record.
    if let Some(TwinSwitchTtl(ttl)) = dns_old_ttl(plan) {
        estimates.insert(
            "switch.prepare".into(),
            format!("{}s", scaled_s(ttl, scale)).into(),
        );
    }
    let policy = obj
        .entry("policy")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or("policy is not an object")?;
    policy.insert("estimates".into(), estimates.into());
    if let Some(jc) = policy
        .get_mut("jump_clients")
        .and_then(|j| j.as_object_mut())
    {
        let wait = plan.policy.jump_clients.wait_timeout.secs();
        // A timeout, not an estimate: scaled, with room for the engine's own work.
        jc.insert(
            "wait_timeout".into(),
            format!("{}s", scaled_s(wait, scale).max(30)).into(),
        );
    }
    let backup = obj
        .get_mut("backup")
        .and_then(|b| b.as_object_mut())
        .ok_or("the plan has no backup section")?;
    backup.insert("directory".into(), "./backups".into());
    backup.insert("password".into(), "${file:./backup-password}".into());
    obj.remove("notify");
    let providers = obj
        .get_mut("providers")
        .and_then(|p| p.as_object_mut())
        .ok_or("the plan has no providers")?;
    let dns_name = plan_switch(plan)
        .and_then(|s| match s {
            Switch::Dns { provider, .. } => Some(provider.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let nat_name = plan_switch(plan)
        .and_then(|s| match s {
            Switch::Nat { provider, .. } => Some(provider.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let appliance_providers: Vec<String> = plan
        .appliances
        .values()
        .map(|a| a.provider.clone())
        .collect();
    for (name, p) in providers.iter_mut() {
        if appliance_providers.contains(name) {
            *p = serde_json::json!({
                "type": "beyondtrust",
                "client_id": layout.client_id,
                "client_secret": "${file:./client-secret}",
                "ca_file": "./ca/ca.pem",
                "operator": "sim",
                "rate_limit": { "per_second": layout.rate_limit.0, "per_hour": layout.rate_limit.1 },
            });
        } else if *name == dns_name {
            let (server, key) = layout.dns.as_ref().ok_or("the twin has no DNS server")?;
            let zone = match plan.providers.get(name) {
                Some(swing_schema::Provider::Rfc2136(r)) => r.zone.clone(),
                _ => zone_of(&plan.site),
            };
            *p = serde_json::json!({
                "type": "rfc2136",
                "server": server.to_string(),
                "zone": zone,
                "tsig": { "name": key, "algorithm": "hmac-sha256", "secret": "${file:./tsig.key}" },
            });
        } else if *name == nat_name {
            *p = match layout.nat.as_ref().ok_or("the twin has no NAT")? {
                TwinNat::Nftables {
                    table,
                    chain,
                    netns,
                    ..
                } => {
                    let mut n =
                        serde_json::json!({ "type": "nftables", "table": table, "chain": chain });
                    if let Some(ns) = netns {
                        n["netns"] = ns.clone().into();
                    }
                    n
                }
                TwinNat::Exec { command, args, .. } => {
                    serde_json::json!({ "type": "exec", "command": command, "args": args })
                }
            };
        }
    }
    Ok(v)
}

struct TwinSwitchTtl(u64);

fn dns_old_ttl(plan: &Plan) -> Option<TwinSwitchTtl> {
    match plan_switch(plan) {
        Some(Switch::Dns { .. }) => Some(TwinSwitchTtl(swing_engine::compile::old_ttl(plan))),
        _ => None,
    }
}

/// The zone of a site name: everything after its first label.
pub fn zone_of(site: &str) -> String {
    site.split_once('.')
        .map(|(_, z)| z.to_owned())
        .unwrap_or_else(|| site.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> swing_engine::validate::ValidPlan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plans/examples")
            .join(name);
        swing_engine::validate::check_file(&path)
            .plan
            .expect("the example is valid")
    }

    #[test]
    fn offline_twin_copies_the_plans_facts() {
        let plan = example("failover-async-dns.yaml");
        let d = describe(&plan, None, 0).unwrap();
        assert_eq!(d.source, FactSource::Offline);
        let east = d.appliance("east").unwrap();
        assert_eq!(
            (east.version.as_str(), east.role.as_str()),
            ("24.3.2", "primary")
        );
        assert_eq!(east.peer.as_deref(), Some("west"));
        assert_eq!(
            d.appliance("west").unwrap().catalogue,
            vec!["base-7.2.1", "pra-25.1.3"]
        );
        match d.switch {
            Some(TwinSwitch::Dns {
                points_at, ttl_s, ..
            }) => {
                assert_eq!(points_at.as_deref(), Some("east"));
                assert_eq!(ttl_s, swing_engine::compile::ASSUMED_OLD_TTL_S);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn migration_old_appliance_offers_nothing() {
        let plan = example("hardware-migration.yaml");
        let d = describe(&plan, None, 0).unwrap();
        assert!(d.appliance("old").unwrap().catalogue.is_empty());
        assert_eq!(d.appliance("new").unwrap().role, "none");
    }

    #[test]
    fn windows_start_now_back_to_back_and_scaled() {
        let plan = example("failover-async-dns.yaml");
        let ws = twin_windows(&plan, 0.001, 1_000_000_000_000);
        assert_eq!(ws.len(), 2);
        // 4 h at 0.001 → 15 s, plus the allowance.
        let start = chrono::DateTime::parse_from_rfc3339(ws[0]["start"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let end = chrono::DateTime::parse_from_rfc3339(ws[0]["end"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        assert_eq!(start, 1_000_000_000_000 - 1_000);
        assert_eq!(end - start, (15 + WINDOW_ALLOWANCE_S) * 1_000);
        assert_eq!(ws[1]["start"], ws[0]["end"]);
    }

    #[test]
    fn the_twin_plan_points_everything_at_the_twin_and_keeps_the_steps() {
        let plan = example("failover-async-dns.yaml");
        let compiled =
            swing_engine::compile::compile(&plan, &Default::default()).expect("compiles");
        let layout = TwinLayout {
            appliances: [
                ("east".to_string(), "127.0.9.11:4443".parse().unwrap()),
                ("west".to_string(), "127.0.9.12:4443".parse().unwrap()),
            ]
            .into(),
            shared_ip: None,
            dns: Some(("127.0.0.1:5353".parse().unwrap(), "twin-key".into())),
            nat: None,
            client_id: "twin".into(),
            rate_limit: (1000, 1_000_000),
        };
        let v = twin_plan(&compiled, &layout, 0.001, 1_000_000_000_000).unwrap();
        let text = serde_json::to_string(&v).unwrap();
        assert!(!text.contains("10.0.0."), "{text}");
        assert!(!text.contains("${env:"), "{text}");
        assert_eq!(v["providers"]["corp-dns"]["server"], "127.0.0.1:5353");
        assert_eq!(v["providers"]["appliance"]["operator"], "sim");
        let checked = swing_engine::validate::check_source("twin", &text);
        let twin = checked
            .plan
            .unwrap_or_else(|| panic!("{:?}", checked.diagnostics));
        let again = swing_engine::compile::compile(&twin, &Default::default()).unwrap();
        let ids = |c: &CompiledPlan| c.steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&again), ids(&compiled));
    }
}
