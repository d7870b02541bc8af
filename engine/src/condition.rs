//! The one judge of conditions: given a condition of the compiled plan and what was
//! observed of the site, does it hold now, not yet, never (fatal), or cannot it be told?
//!
//! Both users ask here: `diff` (which steps a saved observation shows done) and the apply
//! executor (whether a step's pre- or postcondition holds after it gathered a fresh
//! observation). The wording of a [`Verdict`]'s reason is what the executor shows while it
//! waits or halts.
//!
//! Judged here: `healthy`, `version`, `role`, `clock-skew`, `site-served-by` and `all`.
//! Conditions that need observations a site refresh does not carry (certificates, Jump
//! Clients, the time since a step's action, a person's confirmation) are
//! [`Verdict::Unknown`] here; the executor gathers and words those itself.
//!
//! A shared IP while the appliance's role is `none` is [`Verdict::Unknown`]:
//! `check_health` lists shared IPs only inside a failover relationship, so its absence says
//! nothing. The diff treats that as "cannot tell"; the executor then asks who answers at the
//! shared address (a second observation), or keeps waiting when the appliance is silent.
//!
//! Must not: observe, act, or know steps, the journal, views or rendering — it imports only
//! the observation types of [`crate::refresh`] and [`crate::provider`].

use std::net::IpAddr;

use swing_schema::output::{ApiNeed, Condition};
use swing_schema::{Plan, Switch};

use crate::provider::{ApplianceObservation, FailoverRole};
use crate::refresh::{Observed, plan_switch};

/// What the judge decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The condition holds now.
    Holds,
    /// It does not hold yet; waiting may help (the reason says what was seen).
    NotYet(String),
    /// It does not hold and waiting cannot help: halt.
    Fatal(String),
    /// What was observed cannot tell.
    Unknown(String),
}

impl Verdict {
    /// `Some(true)` when it holds, `Some(false)` when it does not (yet or ever), `None`
    /// when the observation cannot tell.
    pub fn known(&self) -> Option<bool> {
        match self {
            Verdict::Holds => Some(true),
            Verdict::NotYet(_) | Verdict::Fatal(_) => Some(false),
            Verdict::Unknown(_) => None,
        }
    }
}

/// What the judge needs besides the observation.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The plan the condition belongs to (appliance addresses, the switch).
    pub plan: &'a Plan,
}

/// What was observed of an appliance that did not answer, with the reason.
fn silent(appliance: &str, o: &ApplianceObservation) -> String {
    match &o.error_message {
        Some(why) => format!("appliance {appliance} does not answer: {why}"),
        None => format!("appliance {appliance} does not answer"),
    }
}

fn not_observed(appliance: &str) -> Verdict {
    Verdict::NotYet(format!("appliance {appliance} was not observed"))
}

/// Judges `cond` against `observed`.
pub fn judge(cond: &Condition, observed: &Observed, ctx: Ctx<'_>) -> Verdict {
    match cond {
        Condition::Healthy { appliance } => {
            let Some(o) = observed.appliance(appliance) else {
                return not_observed(appliance);
            };
            if o.reachable && o.healthy {
                Verdict::Holds
            } else if !o.reachable {
                Verdict::NotYet(silent(appliance, o))
            } else {
                Verdict::NotYet(format!(
                    "appliance {appliance} reports a problem: {}",
                    o.error_message
                        .as_deref()
                        .unwrap_or("check_health success=0")
                ))
            }
        }
        Condition::Version { appliance, version } => {
            let Some(o) = observed.appliance(appliance) else {
                return not_observed(appliance);
            };
            if o.reachable && o.version.as_deref() == Some(version.as_str()) {
                Verdict::Holds
            } else if o.reachable && !o.healthy {
                // Back on the old version and reporting a problem: the install ended
                // without reaching the target. Waiting longer cannot help, and the guide
                // forbids restarting the appliance: halt now.
                Verdict::Fatal(format!(
                    "appliance {appliance} still runs {} (target {version}) and reports: {}",
                    o.version.as_deref().unwrap_or("an unknown version"),
                    o.error_message
                        .as_deref()
                        .unwrap_or("check_health success=0")
                ))
            } else if !o.reachable {
                // Installing, restarting, or the API refused us: say which, not "an unknown
                // version".
                Verdict::NotYet(format!("{}, waiting for {version}", silent(appliance, o)))
            } else {
                Verdict::NotYet(format!(
                    "appliance {appliance} runs {}, waiting for {version}",
                    o.version.as_deref().unwrap_or("an unknown version")
                ))
            }
        }
        Condition::Role { appliance, role } => {
            let Some(o) = observed.appliance(appliance) else {
                return not_observed(appliance);
            };
            let now = o.role.as_str();
            if o.reachable && o.role == FailoverRole::Unknown {
                // An unreadable role is neither the one wanted nor another one.
                Verdict::Unknown(format!(
                    "appliance {appliance} reported a failover role swing cannot read (expecting {role})"
                ))
            } else if o.reachable && now == role {
                Verdict::Holds
            } else if !o.reachable {
                // Not "role none": an appliance that did not answer has no known role.
                Verdict::NotYet(format!("{} (expecting role {role})", silent(appliance, o)))
            } else {
                Verdict::NotYet(format!(
                    "appliance {appliance} has role {now}, expecting {role}"
                ))
            }
        }
        Condition::ClockSkew { appliance, max_s } => {
            let Some(o) = observed.appliance(appliance) else {
                return not_observed(appliance);
            };
            match o.clock_skew_s {
                Some(s) if s.unsigned_abs() <= *max_s => Verdict::Holds,
                Some(s) => Verdict::Fatal(format!(
                    "appliance {appliance}'s clock is {s}s off (allowed {max_s}s): fix NTP under /appliance > Networking > IP Configuration"
                )),
                None => Verdict::NotYet(format!("appliance {appliance}'s clock was not observed")),
            }
        }
        Condition::SiteServedBy { appliance } => served_by(appliance, observed, ctx),
        Condition::ApiPermissions { appliance, needs } => {
            let Some(o) = observed.appliance(appliance) else {
                return not_observed(appliance);
            };
            if !o.reachable {
                return Verdict::NotYet(silent(appliance, o));
            }
            api_permissions(appliance, o, needs)
        }
        // The observable parts decide; the others are judged by whoever can observe them.
        Condition::All { all } => {
            let mut any = false;
            for x in all {
                match judge(x, observed, ctx) {
                    Verdict::Holds => any = true,
                    Verdict::Unknown(_) => {}
                    no => return no,
                }
            }
            if any {
                Verdict::Holds
            } else {
                Verdict::Unknown("none of its parts can be told from this observation".into())
            }
        }
        other => Verdict::Unknown(format!(
            "condition {other:?} is not judged from a site observation"
        )),
    }
}

/// Whether the API account holds every permission in `needs`, from `get_api_info` (and, for
/// the Configuration API, from its having answered). A missing permission is fatal: an
/// upgrade that would need it is refused before anything changes.
fn api_permissions(appliance: &str, o: &ApplianceObservation, needs: &[ApiNeed]) -> Verdict {
    if o.api_permissions.is_none() {
        return Verdict::NotYet(format!(
            "the API account's permissions on {appliance} were not read (get_api_info)"
        ));
    }
    let mut missing = Vec::new();
    for need in needs {
        match need.permission() {
            Some((name, want)) => match o.api_permissions.as_ref().map(|p| p.get(name)) {
                None => {}
                Some(Some(v)) if v == want => {}
                Some(have) => missing.push(format!(
                    "{name} = {want} (has {})",
                    have.map_or("none", String::as_str)
                )),
            },
            None if o.jump_clients.is_some() => {}
            None => {
                return Verdict::NotYet(format!(
                    "the Configuration API on {appliance} did not answer the Jump Client list"
                ));
            }
        }
    }
    if missing.is_empty() {
        Verdict::Holds
    } else {
        Verdict::Fatal(format!(
            "the API account on {appliance} lacks {}: grant it at /login > Management > API Configuration (edit the API account), then plan again",
            missing.join(", ")
        ))
    }
}

/// Whether the site is served by `appliance`, from the switch's observation.
fn served_by(appliance: &str, observed: &Observed, ctx: Ctx<'_>) -> Verdict {
    let Some(addr) = ctx
        .plan
        .appliances
        .get(appliance)
        .map(|a| a.address.as_str())
    else {
        return Verdict::Unknown(format!("appliance {appliance} is not in the plan"));
    };
    let Some(switch) = plan_switch(ctx.plan) else {
        return Verdict::Unknown("the plan has no switch".into());
    };
    let points_at = |ip: IpAddr| addr.parse::<IpAddr>().is_ok_and(|want| want == ip);
    match switch {
        Switch::SharedIp { address } => {
            let Some(a) = observed.appliance(appliance) else {
                return Verdict::Unknown(format!("appliance {appliance} was not observed"));
            };
            if a.shared_ips.contains(address) {
                Verdict::Holds
            } else if a.role == FailoverRole::None {
                // check_health lists shared IPs only inside a failover relationship.
                Verdict::Unknown(format!(
                    "appliance {appliance} is in no failover relationship, so it lists no shared IPs"
                ))
            } else {
                Verdict::NotYet(format!("shared IP {address} is not enabled on {appliance}"))
            }
        }
        Switch::Dns { record, .. } => match observed.dns.as_ref().map(|(_, r)| r) {
            Some(Ok(d)) => {
                if d.addresses.len() == 1 && points_at(d.addresses[0]) {
                    Verdict::Holds
                } else {
                    Verdict::NotYet(format!(
                        "dns {record} does not point at {appliance} ({addr}) only"
                    ))
                }
            }
            _ => Verdict::Unknown(format!("dns {record} was not observed")),
        },
        Switch::Nat { public, .. } => match observed.nat.as_ref().map(|(_, r)| r) {
            Some(Ok(n)) => {
                if n.target.is_some_and(|t| points_at(t.ip())) {
                    Verdict::Holds
                } else {
                    Verdict::NotYet(format!(
                        "the NAT rule for {public} does not point at {appliance}"
                    ))
                }
            }
            _ => Verdict::Unknown(format!("the NAT rule for {public} was not observed")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "version": 1, "name": "judge", "site": "access.example.com",
            "target": {"version": "25.1.3", "packages": ["pra-25.1.3"]},
            "appliances": {"a": {"address": "10.0.0.11"}, "b": {"address": "10.0.0.12"}},
            "failover": {"primary": "a", "backup": "b", "strategy": "asynchronous",
                          "switch": {"method": "shared-ip", "address": "10.0.0.10"}},
            "backup": {"directory": "./backups", "password": "${env:P}"},
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x",
                          "client_secret": "${env:S}", "operator": "sim"}}
        }))
        .unwrap()
    }

    fn seen(role: FailoverRole, shared: bool, healthy: bool, version: &str) -> Observed {
        let mut o = ApplianceObservation::unreachable();
        o.reachable = true;
        o.healthy = healthy;
        o.role = role;
        o.version = Some(version.into());
        if shared {
            o.shared_ips = vec!["10.0.0.10".into()];
        }
        let mut obs = Observed::default();
        obs.appliances.insert("a".into(), Ok(o));
        obs
    }

    #[test]
    fn a_shared_ip_while_the_role_is_none_cannot_be_told() {
        let p = plan();
        let ctx = Ctx { plan: &p };
        let cond = Condition::SiteServedBy {
            appliance: "a".into(),
        };
        let v = judge(&cond, &seen(FailoverRole::None, false, true, "24.3.2"), ctx);
        assert!(matches!(v, Verdict::Unknown(_)), "{v:?}");
        assert_eq!(
            judge(
                &cond,
                &seen(FailoverRole::Primary, true, true, "24.3.2"),
                ctx
            ),
            Verdict::Holds
        );
        assert_eq!(
            judge(
                &cond,
                &seen(FailoverRole::Backup, false, true, "24.3.2"),
                ctx
            ),
            Verdict::NotYet("shared IP 10.0.0.10 is not enabled on a".into())
        );
    }

    #[test]
    fn an_unhealthy_appliance_on_the_old_version_is_fatal() {
        let p = plan();
        let cond = Condition::Version {
            appliance: "a".into(),
            version: "25.1.3".into(),
        };
        let v = judge(
            &cond,
            &seen(FailoverRole::Primary, true, false, "24.3.2"),
            Ctx { plan: &p },
        );
        assert_eq!(
            v,
            Verdict::Fatal(
                "appliance a still runs 24.3.2 (target 25.1.3) and reports: check_health success=0"
                    .into()
            )
        );
        assert_eq!(v.known(), Some(false));
    }

    #[test]
    fn api_permissions_are_judged_from_get_api_info_and_name_what_is_missing() {
        let p = plan();
        let ctx = Ctx { plan: &p };
        let cond = Condition::ApiPermissions {
            appliance: "a".into(),
            needs: vec![ApiNeed::CommandFullAccess, ApiNeed::Backup],
        };
        let with = |perms: Option<&[(&str, &str)]>| {
            let mut o = seen(FailoverRole::Primary, false, true, "24.3.1");
            if let Some(Ok(a)) = o.appliances.get_mut("a") {
                a.api_permissions = perms.map(|ps| {
                    ps.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                });
            }
            judge(&cond, &o, ctx)
        };
        let all = [("perm_command", "full_access"), ("perm_backup", "1")];
        assert_eq!(with(Some(&all)), Verdict::Holds);
        assert!(matches!(with(None), Verdict::NotYet(_)));
        match with(Some(&[("perm_command", "read_only"), ("perm_backup", "1")])) {
            Verdict::Fatal(why) => {
                assert!(
                    why.contains("perm_command = full_access (has read_only)"),
                    "{why}"
                );
                assert!(
                    why.contains("/login > Management > API Configuration"),
                    "{why}"
                );
            }
            v => panic!("{v:?}"),
        }
        match with(Some(&[("perm_command", "full_access")])) {
            Verdict::Fatal(why) => assert!(why.contains("perm_backup = 1 (has none)"), "{why}"),
            v => panic!("{v:?}"),
        }
    }
}
