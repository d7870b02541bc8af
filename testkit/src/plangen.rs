//! Random VALID plans for property tests and benchmarks: every scenario (single automatic or
//! manual, failover synchronous, asynchronous × shared-ip/dns/nat incl. `final_primary` = the
//! old primary, hardware migration), with windows, packages, manual checks and estimate
//! overrides varied. Valid means `swing validate` accepts it without error.
//!
//! Must not: produce plans the validator rejects (the property tests rely on it).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use proptest::prelude::{Strategy, any, prop};
use swing_schema::{
    Appliance, Backup, BeyondtrustProvider, DurationSpec, Failover, FormatVersion,
    IptablesProvider, Migration, NftablesProvider, OperatorMode, Plan, Policy, Provider,
    Rfc2136Provider, SecretRef, Source, Switch, Target, ValueOrRef, Verify, Version, Window,
};

const NAMES: [&str; 8] = ["a", "b", "east", "west", "old", "new", "pra-1", "x9"];

fn secret(name: &str) -> SecretRef {
    SecretRef::Env(name.to_owned())
}

fn appliance_provider() -> Provider {
    Provider::Beyondtrust(BeyondtrustProvider {
        client_id: ValueOrRef::Ref(secret("BT_CLIENT_ID")),
        client_secret: secret("BT_CLIENT_SECRET"),
        ca_file: None,
        operator: OperatorMode::Prompt,
        operator_command: None,
        rate_limit: None,
    })
}

/// The knobs a generated plan is made from.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub scenario: u8,
    pub method: u8,
    pub final_is_primary: bool,
    pub manual_source: bool,
    pub packages: usize,
    pub windows: usize,
    pub manual_checks: Option<usize>,
    pub names: (usize, usize),
    pub current_known: bool,
    pub install_min: Option<u64>,
    pub ttl: u32,
}

pub fn knobs() -> impl Strategy<Value = Knobs> {
    (
        0u8..4,
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        0usize..4,
        0usize..3,
        prop::option::of(0usize..4),
        (0usize..NAMES.len(), 1usize..NAMES.len()),
        any::<bool>(),
        prop::option::of(15u64..=60),
        30u32..600,
    )
        .prop_map(
            |(
                scenario,
                method,
                final_is_primary,
                manual_source,
                packages,
                windows,
                manual_checks,
                names,
                current_known,
                install_min,
                ttl,
            )| Knobs {
                scenario,
                method,
                final_is_primary,
                manual_source,
                packages,
                windows,
                manual_checks,
                names,
                current_known,
                install_min,
                ttl,
            },
        )
}

pub fn plans() -> impl Strategy<Value = Plan> {
    knobs().prop_map(|k| plan(&k))
}

fn when(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

/// Builds the plan the knobs describe.
pub fn plan(k: &Knobs) -> Plan {
    let first = NAMES[k.names.0];
    let second = NAMES[(k.names.0 + k.names.1) % NAMES.len()];
    let pair = k.scenario > 0;
    let mut appliances = BTreeMap::new();
    let current = k.current_known.then(|| Version("24.3.2".to_owned()));
    appliances.insert(
        first.to_owned(),
        Appliance {
            address: "10.0.0.11".to_owned(),
            port: 443,
            current_version: current.clone(),
            provider: "appliance".to_owned(),
        },
    );
    if pair {
        appliances.insert(
            second.to_owned(),
            Appliance {
                address: "10.0.0.12".to_owned(),
                port: 443,
                current_version: current,
                provider: "appliance".to_owned(),
            },
        );
    }
    let mut providers = BTreeMap::new();
    providers.insert("appliance".to_owned(), appliance_provider());
    let switch = match k.method {
        0 => Switch::SharedIp {
            address: "10.0.0.10".to_owned(),
        },
        1 => {
            providers.insert(
                "corp-dns".to_owned(),
                Provider::Rfc2136(Rfc2136Provider {
                    server: "10.0.0.53:53".to_owned(),
                    zone: "example.com".to_owned(),
                    tsig: None,
                }),
            );
            Switch::Dns {
                provider: "corp-dns".to_owned(),
                record: "access.example.com".to_owned(),
                ttl: k.ttl,
            }
        }
        _ => {
            // Half the nat plans name an iptables gateway, chosen by the parity of `ttl` (which
            // a nat switch does not use), so the knob stream stays as it was.
            let edge = if k.ttl.is_multiple_of(2) {
                Provider::Nftables(NftablesProvider {
                    table: "swing".to_owned(),
                    chain: "prerouting".to_owned(),
                    family: "ip".to_owned(),
                    netns: None,
                })
            } else {
                Provider::Iptables(IptablesProvider {
                    table: "nat".to_owned(),
                    chain: "PREROUTING".to_owned(),
                    netns: None,
                })
            };
            providers.insert("edge".to_owned(), edge);
            Switch::Nat {
                provider: "edge".to_owned(),
                public: "203.0.113.10:443".to_owned(),
            }
        }
    };
    let (failover, migration) = match k.scenario {
        1 => (
            Some(Failover {
                primary: first.to_owned(),
                backup: second.to_owned(),
                strategy: swing_schema::Strategy::Synchronous,
                switch: None,
                final_primary: None,
                peer_port: 443,
            }),
            None,
        ),
        2 => (
            Some(Failover {
                primary: first.to_owned(),
                backup: second.to_owned(),
                strategy: swing_schema::Strategy::Asynchronous,
                switch: Some(switch),
                final_primary: k.final_is_primary.then(|| first.to_owned()),
                peer_port: 443,
            }),
            None,
        ),
        3 => (
            None,
            Some(Migration {
                from: first.to_owned(),
                to: second.to_owned(),
                switch,
            }),
        ),
        _ => (None, None),
    };
    // Windows long enough for any generated plan: 8 h, a week apart.
    let all = [
        (
            "first",
            "2026-12-05T20:00:00+01:00",
            "2026-12-06T04:00:00+01:00",
        ),
        (
            "second",
            "2026-12-12T20:00:00+01:00",
            "2026-12-13T04:00:00+01:00",
        ),
    ];
    let windows = all[..k.windows]
        .iter()
        .map(|(n, s, e)| Window {
            name: (*n).to_owned(),
            start: when(s),
            end: when(e),
        })
        .collect();
    let mut policy = Policy::default();
    if let Some(m) = k.install_min {
        policy
            .estimates
            .insert("install".to_owned(), DurationSpec::from_secs(m * 60));
    }
    let packages = (0..k.packages).map(|i| format!("pkg-{i}")).collect();
    let verify = k.manual_checks.map(|n| Verify {
        manual: Some((0..n).map(|i| format!("manual check {i}")).collect()),
    });
    Plan {
        version: FormatVersion,
        name: "generated".to_owned(),
        site: "access.example.com".to_owned(),
        target: Target {
            version: Version("25.1.3".to_owned()),
            source: if k.manual_source {
                Source::Manual
            } else {
                Source::Automatic
            },
            packages,
        },
        appliances,
        failover,
        migration,
        windows,
        policy,
        backup: Backup {
            directory: "./backups".to_owned(),
            password: secret("SWING_BACKUP_PASSWORD"),
            include_reporting_data: true,
        },
        verify,
        providers,
        notify: Vec::new(),
        state: None,
    }
}
