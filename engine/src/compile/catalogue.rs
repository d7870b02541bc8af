//! The step catalogue of `procedures.md`: one constructor per step, with the step id, kind,
//! title, postcondition and the vendor's exact English UI paths and labels for a person.
//!
//! Owns the wording an operator reads at 2 a.m. Must not decide order, dependencies, windows
//! or durations (the passes and `estimate` do); estimates here are 0 until `estimate` fills them.

use swing_schema::output::{Condition, Phase, StepKind};
use swing_schema::{Plan, Source, Switch};

use super::Step;

/// What a person must do when an install fails (the guide is explicit about it).
pub const INSTALL_FAILURE: &str = "If the installation fails: do NOT restart the appliance. Stop here and contact BeyondTrust Technical Support.";

fn base(id: String, title: String, kind: StepKind, phase: Phase, action: &'static str) -> Step {
    Step {
        id,
        title,
        kind,
        phase,
        action,
        resource: String::new(),
        appliance: None,
        depends_on: Vec::new(),
        preconditions: Vec::new(),
        postcondition: Condition::Confirmed,
        instructions: Vec::new(),
        on_failure: None,
        estimate_s: 0,
        downtime: false,
        downtime_s: 0,
        unprotected: false,
        window: None,
        window_bound: false,
    }
}

fn on(mut s: Step, appliance: &str) -> Step {
    s.resource = format!("appliance {appliance}");
    s.appliance = Some(appliance.to_owned());
    s
}

fn address(plan: &Plan, name: &str) -> String {
    plan.appliances
        .get(name)
        .map(|a| a.address.clone())
        .unwrap_or_else(|| name.to_owned())
}

fn port(plan: &Plan, name: &str) -> u16 {
    plan.appliances.get(name).map(|a| a.port).unwrap_or(443)
}

pub fn health(x: &str) -> Step {
    let mut s = on(
        base(
            format!("{x}.health"),
            format!("Check appliance {x} is reachable over TLS and healthy"),
            StepKind::Auto,
            Phase::Preflight,
            "health",
        ),
        x,
    );
    s.postcondition = Condition::Healthy {
        appliance: x.to_owned(),
    };
    s.on_failure = Some(format!(
        "Nothing has changed. Find out why {x} is unhealthy (/appliance > Status > Basics) before planning again."
    ));
    s
}

pub fn clock(plan: &Plan, x: &str) -> Step {
    let max = plan.policy.clock_skew_max.secs();
    let mut s = on(
        base(
            format!("{x}.clock"),
            format!(
                "Check appliance {x}'s clock is within {} of ours",
                plan.policy.clock_skew_max
            ),
            StepKind::Auto,
            Phase::Preflight,
            "clock",
        ),
        x,
    );
    s.postcondition = Condition::ClockSkew {
        appliance: x.to_owned(),
        max_s: max,
    };
    s.on_failure = Some(format!(
        "Correct the time on {x}: check the NTP settings at /appliance > Network > IP Configuration (the download key and many functions need the right time)."
    ));
    s
}

pub fn tls(plan: &Plan, x: &str) -> Step {
    let mut s = on(
        base(
            format!("{x}.tls"),
            format!(
                "Check appliance {x} serves a trusted certificate for {} valid ≥ {} more days",
                plan.site, plan.policy.certificate_min_days
            ),
            StepKind::Auto,
            Phase::Preflight,
            "tls",
        ),
        x,
    );
    s.postcondition = Condition::Certificate {
        appliance: x.to_owned(),
        site: plan.site.clone(),
        min_days: plan.policy.certificate_min_days,
    };
    s.on_failure = Some(
        "Renew or fix the certificate first: with an outdated certificate store most Jump Clients show offline after an upgrade to a newly built site package.".to_owned(),
    );
    s
}

pub fn window(plan: &Plan) -> Step {
    let mut s = base(
        "preflight.window".to_owned(),
        if plan.windows.is_empty() {
            "Check maintenance window (none given: any time is allowed)".to_owned()
        } else {
            "Check that now is inside a maintenance window".to_owned()
        },
        StepKind::Auto,
        Phase::Preflight,
        "window",
    );
    s.resource = "windows".to_owned();
    s.postcondition = Condition::InWindow;
    s.window_bound = !plan.windows.is_empty();
    s
}

pub fn backup_config(plan: &Plan, x: &str) -> Step {
    let mut s = on(
        base(
            "backup.config".to_owned(),
            format!(
                "Download the configuration backup of {x} (password-protected{}) to {}",
                if plan.backup.include_reporting_data {
                    ", with reporting data"
                } else {
                    ""
                },
                plan.backup.directory
            ),
            StepKind::Auto,
            Phase::Backup,
            "backup",
        ),
        x,
    );
    s.resource = format!("backup of {x}");
    s.postcondition = Condition::BackupExists {
        appliance: x.to_owned(),
    };
    s.on_failure = Some("Do not upgrade without a backup. Fix the backup API account or download it by hand: /login > Management > Software > Download Backup.".to_owned());
    s
}

fn export_instructions(plan: &Plan, x: &str, step: &str) -> Vec<String> {
    vec![
        format!("On appliance {x} ({}), open /appliance > Security > Certificates.", address(plan, x)),
        format!(
            "In Security :: Certificates tick the certificate assigned to the active IP address (Issued To: {}), then choose Export from the drop-down menu above the list.",
            plan.site
        ),
        "On Security :: Certificates :: Export include the certificate, the private key and the certificate chain, and set a passphrase for the private key.".to_owned(),
        format!(
            "Save the file in {} (exporting does not remove the certificate from the appliance). swing checks that the file's leaf fingerprint matches the certificate {x} serves; then confirm `{step}`.",
            plan.backup.directory
        ),
    ]
}

pub fn backup_certificates(plan: &Plan, x: &str) -> Step {
    let mut s = on(
        base(
            "backup.certificates".to_owned(),
            format!("Export {x}'s certificate, private key and chain"),
            StepKind::Operator,
            Phase::Backup,
            "certificates",
        ),
        x,
    );
    s.postcondition = Condition::CertificateExported {
        appliance: x.to_owned(),
    };
    s.instructions = export_instructions(plan, x, "backup.certificates");
    s
}

pub fn vault_key(plan: &Plan, x: &str) -> Step {
    let mut s = on(
        base(
            "backup.vault-key".to_owned(),
            format!("Back up {x}'s Vault encryption key (it is not in the configuration backup)"),
            StepKind::Operator,
            Phase::Backup,
            "vault-key",
        ),
        x,
    );
    s.instructions = vec![
        format!("On appliance {x} ({}), open /login > Management > Software.", address(plan, x)),
        "Back up the Vault encryption key (it must be backed up separately and restored together with a configuration backup).".to_owned(),
        format!("Store the key file with the configuration backup in {}, protected like it.", plan.backup.directory),
    ];
    s
}

pub fn throttle(plan: &Plan, x: &str) -> Step {
    let n = plan.policy.jump_clients.max_concurrent_upgrades;
    let mut s = base(
        "clients.throttle".to_owned(),
        format!("Limit concurrent Jump Client upgrades to {n}"),
        StepKind::Operator,
        Phase::Backup,
        "throttle",
    );
    s.resource = "jump clients".to_owned();
    s.appliance = Some(x.to_owned());
    s.instructions = vec![
        format!(
            "On appliance {x} ({}), open /login > Jump > Jump Clients.",
            address(plan, x)
        ),
        format!("Set \"Maximum number of concurrent Jump Client upgrades\" to {n} and save."),
    ];
    s
}

pub fn sync(plan: &Plan, primary: &str, backup: &str) -> Step {
    let mut s = base(
        "failover.sync".to_owned(),
        format!("Sync Now on primary {primary} and wait for the data sync to finish"),
        StepKind::Operator,
        Phase::Break,
        "sync",
    );
    s.resource = pair(primary, backup);
    s.appliance = Some(primary.to_owned());
    s.preconditions = vec![
        Condition::Role {
            appliance: primary.to_owned(),
            role: "primary".to_owned(),
        },
        Condition::Role {
            appliance: backup.to_owned(),
            role: "backup".to_owned(),
        },
    ];
    s.postcondition = Condition::SyncAfter {
        appliance: backup.to_owned(),
        after_step: "failover.sync".to_owned(),
    };
    s.instructions = vec![
        format!(
            "On primary {primary} ({}), open /login > Management > Failover.",
            address(plan, primary)
        ),
        "Click Sync Now and wait until the page shows the last data sync finished successfully."
            .to_owned(),
    ];
    s
}

pub fn pair(a: &str, b: &str) -> String {
    format!("failover {a}+{b}")
}

pub fn break_failover(plan: &Plan, primary: &str, backup: &str) -> Step {
    let mut s = base(
        "failover.break".to_owned(),
        format!("Break the failover relationship between {primary} and {backup}"),
        StepKind::Operator,
        Phase::Break,
        "break",
    );
    s.resource = pair(primary, backup);
    s.appliance = Some(primary.to_owned());
    s.postcondition = Condition::All {
        all: vec![
            Condition::Role {
                appliance: primary.to_owned(),
                role: "none".to_owned(),
            },
            Condition::Role {
                appliance: backup.to_owned(),
                role: "none".to_owned(),
            },
        ],
    };
    s.instructions = vec![
        format!("On primary {primary} ({}), open /login > Management > Failover.", address(plan, primary)),
        "Click Break Failover Relationship and confirm. No configuration other than the relationship is lost.".to_owned(),
    ];
    s.window_bound = true;
    s
}

pub fn install(plan: &Plan, x: &str) -> Step {
    let target = plan.target.version.as_str();
    let mut s = on(
        base(
            format!("{x}.install"),
            format!("Install {target} on {x}"),
            StepKind::Operator,
            Phase::UpgradeFirst,
            "install",
        ),
        x,
    );
    let addr = address(plan, x);
    let pkgs: Vec<String> = if plan.target.packages.is_empty() {
        vec![format!(
            "the BeyondTrust update to {target} (first any base software update it depends on)"
        )]
    } else {
        plan.target.packages.clone()
    };
    let mut ins = Vec::new();
    match plan.target.source {
        Source::Automatic => {
            ins.push(format!(
                "On appliance {x} ({addr}), open /appliance > Updates and click Check for Updates."
            ));
            for (i, p) in pkgs.iter().enumerate() {
                ins.push(format!(
                    "{}nder Available Updates, click Install This Update for {p} and wait until it has finished.",
                    if i == 0 { "U" } else { "Then u" }
                ));
            }
        }
        Source::Manual => {
            ins.push(format!("On appliance {x} ({addr}), open /appliance > Updates and click Appliance Download Key."));
            ins.push("From an unrestricted system, submit the key at https://btupdate.com and download every available update to removable media.".to_owned());
            ins.push(format!("Bring the media to a system that can open {x}'s /appliance interface. Install right away: a downloaded update no longer appears in the list."));
            for (i, p) in pkgs.iter().enumerate() {
                ins.push(format!(
                    "{}nder Updates > Manual Installation, choose the file for {p} and click Update Software; wait until it has finished.",
                    if i == 0 { "U" } else { "Then u" }
                ));
            }
        }
    }
    if pkgs.len() > 1 {
        ins.push("Keep this order: base software first, it unlocks the next package.".to_owned());
    }
    ins.push("The appliance restarts; swing then waits until it answers again.".to_owned());
    s.instructions = ins;
    s.preconditions = vec![Condition::BackupExists {
        appliance: backup_source(plan),
    }];
    if plan.target.source == Source::Manual {
        s.preconditions.push(Condition::ClockSkew {
            appliance: x.to_owned(),
            max_s: plan.policy.clock_skew_max.secs(),
        });
    }
    if plan.failover.is_some() {
        s.preconditions.push(Condition::Role {
            appliance: x.to_owned(),
            role: "none".to_owned(),
        });
    }
    s.postcondition = Condition::Version {
        appliance: x.to_owned(),
        version: target.to_owned(),
    };
    s.on_failure = Some(INSTALL_FAILURE.to_owned());
    s.window_bound = true;
    s
}

/// The appliance `backup.config` is taken from.
pub fn backup_source(plan: &Plan) -> String {
    if let Some(f) = &plan.failover {
        return f.primary.clone();
    }
    if let Some(m) = &plan.migration {
        return m.from.clone();
    }
    plan.appliances.keys().next().cloned().unwrap_or_default()
}

pub fn online(x: &str, phase: Phase) -> Step {
    let mut s = on(
        base(
            format!("{x}.online"),
            format!("Wait until {x} answers again and reports healthy"),
            StepKind::Wait,
            phase,
            "online",
        ),
        x,
    );
    s.postcondition = Condition::Healthy {
        appliance: x.to_owned(),
    };
    s.on_failure = Some(INSTALL_FAILURE.to_owned());
    s.window_bound = true;
    s
}

pub fn verify(plan: &Plan, x: &str, phase: Phase) -> Step {
    let target = plan.target.version.as_str();
    let mut s = on(
        base(
            format!("{x}.verify"),
            format!("Verify {x} runs {target}, is healthy and serves a valid certificate"),
            StepKind::Auto,
            phase,
            "verify",
        ),
        x,
    );
    s.postcondition = Condition::All {
        all: vec![
            Condition::Version {
                appliance: x.to_owned(),
                version: target.to_owned(),
            },
            Condition::Healthy {
                appliance: x.to_owned(),
            },
            Condition::Certificate {
                appliance: x.to_owned(),
                site: plan.site.clone(),
                min_days: plan.policy.certificate_min_days,
            },
        ],
    };
    s.window_bound = true;
    s
}

/// `hosts_file`: the appliance does not serve the site yet, so testers point their hosts file at it.
pub fn verify_manual(plan: &Plan, x: &str, phase: Phase, hosts_file: bool) -> Step {
    let mut s = on(
        base(
            format!("{x}.verify-manual"),
            format!("Confirm the manual checks on {x}"),
            StepKind::Gate,
            phase,
            "verify-manual",
        ),
        x,
    );
    let mut ins = Vec::new();
    if hosts_file {
        ins.push(format!(
            "On at least two workstations, edit the hosts file so {} resolves to {x}'s address {}.",
            plan.site,
            address(plan, x)
        ));
    }
    for c in plan.manual_checks() {
        ins.push(c);
    }
    ins.push(format!("When every check passes, approve `{x}.verify-manual`. If one fails, stop: see the abort path of this phase."));
    s.instructions = ins;
    s.window_bound = true;
    s
}

pub fn keys(plan: &Plan, a: &str, b: &str) -> Step {
    let mut s = base(
        "failover.keys".to_owned(),
        format!("Confirm {a} and {b} hold the same inter-appliance key"),
        StepKind::Operator,
        Phase::Reestablish,
        "keys",
    );
    s.resource = pair(a, b);
    s.instructions = vec![
        format!(
            "On {a} ({}) and on {b} ({}), open /login > Management > Security.",
            address(plan, a),
            address(plan, b)
        ),
        "Compare the inter-appliance communication pre-shared key: both must be identical, or the relationship cannot be established.".to_owned(),
    ];
    s.window_bound = true;
    s
}

pub fn establish(plan: &Plan, primary: &str, backup: &str, peer_port: u16) -> Step {
    let mut s = base(
        "failover.establish".to_owned(),
        format!("Establish the failover relationship: {primary} primary, {backup} backup"),
        StepKind::Operator,
        Phase::Reestablish,
        "establish",
    );
    s.resource = pair(primary, backup);
    s.appliance = Some(primary.to_owned());
    s.instructions = vec![
        format!(
            "On {primary} (to become primary, {}), open /login > Management > Failover.",
            address(plan, primary)
        ),
        format!(
            "Under New Backup Site Connection Details enter {backup}'s unique address {} and TLS port {peer_port}.",
            address(plan, backup)
        ),
        format!(
            "Under Reverse Connection Details to This Primary Site enter {primary}'s unique address {} and TLS port {peer_port}.",
            address(plan, primary)
        ),
        "Click Establish Relationship.".to_owned(),
    ];
    s.postcondition = Condition::All {
        all: vec![
            Condition::Role {
                appliance: primary.to_owned(),
                role: "primary".to_owned(),
            },
            Condition::Role {
                appliance: backup.to_owned(),
                role: "backup".to_owned(),
            },
        ],
    };
    s.window_bound = true;
    s
}

pub fn resync(primary: &str, backup: &str) -> Step {
    let mut s = base(
        "failover.resync".to_owned(),
        format!(
            "Wait for the first data sync from {primary} to {backup} (starts within about 60 s; Sync Now forces it)"
        ),
        StepKind::Wait,
        Phase::Reestablish,
        "resync",
    );
    s.resource = pair(primary, backup);
    s.appliance = Some(backup.to_owned());
    s.postcondition = Condition::SyncAfter {
        appliance: backup.to_owned(),
        after_step: "failover.establish".to_owned(),
    };
    s.window_bound = true;
    s
}

/// Old TTL swing waits out before a DNS swing when it cannot observe it (offline).
pub const ASSUMED_OLD_TTL_S: u64 = 3_600;

/// The old TTL: `policy.estimates["switch.prepare"]` when given, else [`ASSUMED_OLD_TTL_S`].
pub fn old_ttl(plan: &Plan) -> u64 {
    plan.policy
        .estimates
        .get("switch.prepare")
        .map(|d| d.secs())
        .unwrap_or(ASSUMED_OLD_TTL_S)
}

pub fn prepare(plan: &Plan, record: &str, ttl: u32) -> Step {
    let mut s = base(
        "switch.prepare".to_owned(),
        format!(
            "Lower the TTL of dns {record} to {ttl}s, then wait out the old TTL ({}) so caches expire before the swing",
            swing_schema::output::human_duration(old_ttl(plan))
        ),
        StepKind::Auto,
        Phase::Switch,
        "prepare",
    );
    s.resource = format!("dns {record}");
    s.postcondition = Condition::DnsTtl {
        record: record.to_owned(),
        ttl_s: u64::from(ttl),
    };
    s.window_bound = true;
    s
}

/// The site moves from `from` to `to`.
pub fn switch_to(plan: &Plan, sw: &Switch, from: &str, to: &str, phase: Phase) -> Step {
    let (kind, title, resource, ins) = match sw {
        Switch::SharedIp { address: ip } => (
            StepKind::Operator,
            format!("Move shared IP {ip} from {from} to {to}"),
            format!("shared ip {ip}"),
            vec![
                format!(
                    "Open /appliance > Networking > IP Configuration on {to} ({}) in a second browser tab now.",
                    address(plan, to)
                ),
                format!(
                    "On {from} ({}), open /appliance > Networking > IP Configuration, click the shared IP {ip}, untick IP Enabled and click Save Changes.",
                    address(plan, from)
                ),
                format!(
                    "Immediately on {to}: click the shared IP {ip}, tick IP Enabled and click Save Changes. The site is unreachable between the two saves."
                ),
            ],
        ),
        Switch::Dns { record, .. } => (
            StepKind::Auto,
            format!("Point dns {record} at {to} ({})", address(plan, to)),
            format!("dns {record}"),
            Vec::new(),
        ),
        Switch::Nat { public, .. } => (
            StepKind::Auto,
            format!(
                "Point the NAT rule for {public} at {to} ({}:{})",
                address(plan, to),
                port(plan, to)
            ),
            format!("nat {public}"),
            Vec::new(),
        ),
    };
    let mut s = base(format!("switch.to-{to}"), title, kind, phase, "switch");
    s.resource = resource;
    s.appliance = Some(to.to_owned());
    s.instructions = ins;
    s.preconditions = vec![Condition::SiteServedBy {
        appliance: from.to_owned(),
    }];
    s.postcondition = Condition::SiteServedBy {
        appliance: to.to_owned(),
    };
    s.on_failure = Some(format!(
        "Point the site back at {from}: it still runs and holds the data."
    ));
    s.downtime = true;
    s.window_bound = true;
    s
}

pub fn switch_verify(to: &str, phase: Phase) -> Step {
    let mut s = base(
        format!("switch.verify-{to}"),
        format!("Verify the site now answers as {to}"),
        StepKind::Auto,
        phase,
        "switch-verify",
    );
    s.resource = "site".to_owned();
    s.appliance = Some(to.to_owned());
    s.postcondition = Condition::SiteServedBy {
        appliance: to.to_owned(),
    };
    s.window_bound = true;
    s
}

pub fn promote(x: &str) -> Step {
    let mut s = on(
        base(
            format!("failover.promote-{x}"),
            format!(
                "Make {x} primary again (set_failover_role with data sync first; users are disconnected meanwhile)"
            ),
            StepKind::Auto,
            Phase::SwitchBack,
            "promote",
        ),
        x,
    );
    s.postcondition = Condition::Role {
        appliance: x.to_owned(),
        role: "primary".to_owned(),
    };
    s.downtime = true;
    s.window_bound = true;
    s
}

pub fn restore_ttl(plan: &Plan, record: &str) -> Step {
    let mut s = base(
        "switch.restore".to_owned(),
        format!("Restore the original TTL of dns {record}"),
        StepKind::Auto,
        Phase::Restore,
        "restore-ttl",
    );
    s.resource = format!("dns {record}");
    s.postcondition = Condition::DnsTtl {
        record: record.to_owned(),
        ttl_s: old_ttl(plan),
    };
    s
}

pub fn clients_wait(plan: &Plan) -> Step {
    let jc = &plan.policy.jump_clients;
    let mut s = base(
        "clients.wait".to_owned(),
        format!(
            "Wait until ≥ {:.0}% of Jump Clients are online and upgraded (at most {})",
            jc.online_ratio * 100.0,
            jc.wait_timeout
        ),
        StepKind::Wait,
        Phase::Clients,
        "clients-wait",
    );
    s.resource = "jump clients".to_owned();
    s.postcondition = Condition::JumpClientsRatio {
        ratio: jc.online_ratio,
    };
    s.on_failure = Some("Be patient until the Jump Clients are back online before any further upgrade step; a client still marked Upgrade Pending moves up the queue when someone jumps to it.".to_owned());
    s
}

pub fn clients_followup(serving: &str) -> Step {
    let mut s = base(
        "clients.followup".to_owned(),
        "Follow up on clients that do not update themselves".to_owned(),
        StepKind::Operator,
        Phase::Clients,
        "clients-followup",
    );
    s.resource = "clients".to_owned();
    s.instructions = vec![
        "Reinstall the BeyondTrust Integration Clients by hand (installers: Downloads page of the BeyondTrust support portal); they are not updated automatically.".to_owned(),
        format!("If an Integration Client is configured by IP address instead of host name, make sure it can pull data from {serving}."),
        "Regenerate every Jump Client and access console installer package created before the upgrade: the old installers stopped working with the upgrade.".to_owned(),
        "Access consoles deployed with an MSI on locked-down computers may need to be redeployed.".to_owned(),
    ];
    s
}

pub fn certs_export(plan: &Plan, old: &str) -> Step {
    let mut s = on(
        base(
            "certs.export".to_owned(),
            format!("Export {old}'s certificate, private key and chain"),
            StepKind::Operator,
            Phase::Certificates,
            "certs-export",
        ),
        old,
    );
    s.postcondition = Condition::CertificateExported {
        appliance: old.to_owned(),
    };
    s.instructions = export_instructions(plan, old, "certs.export");
    s
}

pub fn certs_import(plan: &Plan, old: &str, new: &str) -> Step {
    let mut s = on(
        base(
            "certs.import".to_owned(),
            format!("Import {old}'s certificate on {new}"),
            StepKind::Operator,
            Phase::Certificates,
            "certs-import",
        ),
        new,
    );
    s.instructions = vec![
        format!("On the new appliance {new} ({}), open /appliance > Security > Certificates.", address(plan, new)),
        "In Security :: Certificate Installation click Import.".to_owned(),
        "Choose the certificate file exported in certs.export, enter its passphrase and click Upload.".to_owned(),
    ];
    s
}

pub fn certs_default(plan: &Plan, old: &str, new: &str) -> Step {
    let mut s = on(
        base(
            "certs.default".to_owned(),
            format!("Make the imported certificate {new}'s default"),
            StepKind::Operator,
            Phase::Certificates,
            "certs-default",
        ),
        new,
    );
    s.instructions = vec![
        format!("On {new} ({}), open /appliance > Security > Certificates.", address(plan, new)),
        format!("In Security :: Certificates find the certificate Issued To {}.", plan.site),
        "Make sure no warnings are listed for it; resolve any warning first (see the BeyondTrust support portal).".to_owned(),
        "Select its radio button in the Default column. swing verifies that the new appliance serves the same certificate as the old one.".to_owned(),
    ];
    s.postcondition = Condition::SameCertificate {
        appliance: new.to_owned(),
        as_appliance: old.to_owned(),
    };
    s
}

pub fn restore(plan: &Plan, old: &str, new: &str) -> Step {
    let mut s = on(
        base(
            "new.restore".to_owned(),
            format!("Restore {old}'s configuration backup on {new}"),
            StepKind::Operator,
            Phase::UpgradeFirst,
            "restore",
        ),
        new,
    );
    s.id = format!("{new}.restore");
    s.instructions = vec![
        format!(
            "Log in to /login on {new} ({}) with the factory default account (admin / password) and change its password when asked.",
            address(plan, new)
        ),
        "Open /login > Management > Software.".to_owned(),
        format!(
            "In Software :: Restore Settings choose the backup file saved by backup.config in {}, enter the backup password and click Upload Backup.",
            plan.backup.directory
        ),
        "Restore the Vault encryption key saved in backup.vault-key on the same page.".to_owned(),
    ];
    s.preconditions = vec![Condition::BackupExists {
        appliance: old.to_owned(),
    }];
    s.postcondition = Condition::ApiAccount {
        appliance: new.to_owned(),
    };
    s.window_bound = true;
    s
}

pub fn decommission(plan: &Plan, old: &str) -> Step {
    let mut s = on(
        base(
            format!("{old}.decommission"),
            format!("Factory reset and shut down the old appliance {old}"),
            StepKind::Gate,
            Phase::Decommission,
            "decommission",
        ),
        old,
    );
    s.instructions = vec![
        "Only after every other step is done and the new appliance has been tested in production.".to_owned(),
        format!(
            "On the old appliance {old} ({}), open /appliance > Status > Basics and click Reset Appliance to Factory Defaults; wait until the reset has finished.",
            address(plan, old)
        ),
        "Click Shut Down This Appliance.".to_owned(),
        "Physical appliance: pack it and return it with the BeyondTrust return label. Virtual appliance: delete it.".to_owned(),
    ];
    s.on_failure = Some(
        "Irreversible: approve only when the new appliance serves the site correctly.".to_owned(),
    );
    s.window_bound = true;
    s
}
