//! The step catalogue of `procedures.md`: one constructor per step, with the step id, kind,
//! title, postcondition and the vendor's exact English UI paths and labels for a person.
//!
//! Owns the wording an operator reads at 2 a.m. Must not decide order, dependencies, windows
//! or durations (the step passes and the estimate passes do); estimates here are 0 until the estimate passes fill them.

use swing_schema::output::{ApiNeed, Condition, Phase, StepKind};
use swing_schema::{Plan, Source, Switch};

use super::Step;

/// What a person must do when an install fails (the guide is explicit about it).
pub const INSTALL_FAILURE: &str = "If the installation fails: do NOT restart the appliance. Stop here and contact BeyondTrust Technical Support.";

/// What a compiled step does: the typed operation behind its id.
///
/// Set by the catalogue's constructors; the executor, diff, view, invariants and estimates
/// decide behaviour on it. The id string ([`StepOp::id`]) is only the label, the journal key
/// and the contract of `procedures.md`. An appliance name in a variant is the appliance the
/// step concerns (`X` in `X.install`, the target of `switch.to-X`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StepOp {
    /// `X.health`: reachable over TLS, `check_health` success, role as planned.
    Health(String),
    /// `X.api`: the API account holds every permission the plan will use on X.
    Api(String),
    /// `X.clock`: the appliance's clock within `policy.clock_skew_max`.
    Clock(String),
    /// `X.tls`: the served certificate is valid for the site long enough.
    Tls(String),
    /// `preflight.window`: now is inside a maintenance window.
    Window,
    /// `backup.config`: the configuration backup of the primary.
    BackupConfig,
    /// `backup.certificates`: certificate, key and chain exported by a person.
    BackupCertificates,
    /// `backup.vault-key`: the Vault encryption key backed up by a person.
    VaultKey,
    /// `clients.throttle`: limit concurrent Jump Client upgrades.
    Throttle,
    /// `failover.sync`: Sync Now on the primary.
    Sync,
    /// `failover.break`: break the failover relationship.
    Break,
    /// `X.install`: install the target version.
    Install(String),
    /// `X.online`: wait until the appliance answers again.
    Online(String),
    /// `X.verify`: version, health and certificate after the install.
    Verify(String),
    /// `X.verify-manual`: the plan's manual checks, approved by a person.
    VerifyManual(String),
    /// `failover.keys`: both appliances hold the same inter-appliance key.
    Keys,
    /// `failover.establish`: establish the relationship again.
    Establish,
    /// `failover.resync`: wait for the first data sync after establishing.
    Resync,
    /// `switch.prepare`: lower the DNS record's TTL and wait out the old one.
    LowerTtl,
    /// `switch.to-X`: make X serve the site (shared IP, DNS or NAT).
    SwitchTo(String),
    /// `switch.verify-X`: the site endpoint answers as X.
    VerifySwitch(String),
    /// `failover.promote-X`: make X primary again through the vendor API.
    Promote(String),
    /// `switch.restore`: restore the DNS record's original TTL.
    RestoreTtl,
    /// `clients.wait`: Jump Clients back online and upgraded.
    ClientsWait,
    /// `clients.followup`: the client work no appliance does by itself.
    ClientsFollowup,
    /// `certs.export`: export the old appliance's certificate (migration).
    CertsExport,
    /// `certs.import`: import it on the new appliance.
    CertsImport,
    /// `certs.default`: make it the new appliance's default certificate.
    CertsDefault,
    /// `X.restore`: restore the old appliance's backup on the new one (migration).
    Restore(String),
    /// `X.decommission`: factory reset and shut down the old appliance.
    Decommission(String),
}

impl StepOp {
    /// The step id of `procedures.md`.
    pub fn id(&self) -> String {
        match self {
            StepOp::Health(x) => format!("{x}.health"),
            StepOp::Api(x) => format!("{x}.api"),
            StepOp::Clock(x) => format!("{x}.clock"),
            StepOp::Tls(x) => format!("{x}.tls"),
            StepOp::Window => "preflight.window".to_owned(),
            StepOp::BackupConfig => "backup.config".to_owned(),
            StepOp::BackupCertificates => "backup.certificates".to_owned(),
            StepOp::VaultKey => "backup.vault-key".to_owned(),
            StepOp::Throttle => "clients.throttle".to_owned(),
            StepOp::Sync => "failover.sync".to_owned(),
            StepOp::Break => "failover.break".to_owned(),
            StepOp::Install(x) => format!("{x}.install"),
            StepOp::Online(x) => format!("{x}.online"),
            StepOp::Verify(x) => format!("{x}.verify"),
            StepOp::VerifyManual(x) => format!("{x}.verify-manual"),
            StepOp::Keys => "failover.keys".to_owned(),
            StepOp::Establish => "failover.establish".to_owned(),
            StepOp::Resync => "failover.resync".to_owned(),
            StepOp::LowerTtl => "switch.prepare".to_owned(),
            StepOp::SwitchTo(x) => format!("switch.to-{x}"),
            StepOp::VerifySwitch(x) => format!("switch.verify-{x}"),
            StepOp::Promote(x) => format!("failover.promote-{x}"),
            StepOp::RestoreTtl => "switch.restore".to_owned(),
            StepOp::ClientsWait => "clients.wait".to_owned(),
            StepOp::ClientsFollowup => "clients.followup".to_owned(),
            StepOp::CertsExport => "certs.export".to_owned(),
            StepOp::CertsImport => "certs.import".to_owned(),
            StepOp::CertsDefault => "certs.default".to_owned(),
            StepOp::Restore(x) => format!("{x}.restore"),
            StepOp::Decommission(x) => format!("{x}.decommission"),
        }
    }

    /// The action name `policy.estimates` accepts besides the step id (`install`, `sync`, …);
    /// also the `action` of the JSON plan view.
    pub fn action(&self) -> &'static str {
        match self {
            StepOp::Health(_) => "health",
            StepOp::Api(_) => "api",
            StepOp::Clock(_) => "clock",
            StepOp::Tls(_) => "tls",
            StepOp::Window => "window",
            StepOp::BackupConfig => "backup",
            StepOp::BackupCertificates => "certificates",
            StepOp::VaultKey => "vault-key",
            StepOp::Throttle => "throttle",
            StepOp::Sync => "sync",
            StepOp::Break => "break",
            StepOp::Install(_) => "install",
            StepOp::Online(_) => "online",
            StepOp::Verify(_) => "verify",
            StepOp::VerifyManual(_) => "verify-manual",
            StepOp::Keys => "keys",
            StepOp::Establish => "establish",
            StepOp::Resync => "resync",
            StepOp::LowerTtl => "prepare",
            StepOp::SwitchTo(_) => "switch",
            StepOp::VerifySwitch(_) => "switch-verify",
            StepOp::Promote(_) => "promote",
            StepOp::RestoreTtl => "restore-ttl",
            StepOp::ClientsWait => "clients-wait",
            StepOp::ClientsFollowup => "clients-followup",
            StepOp::CertsExport => "certs-export",
            StepOp::CertsImport => "certs-import",
            StepOp::CertsDefault => "certs-default",
            StepOp::Restore(_) => "restore",
            StepOp::Decommission(_) => "decommission",
        }
    }

    /// Sending the action again changes nothing (given an auto or wait step): false for a
    /// switch (it moves the site) and a promotion (it disconnects users).
    pub fn repeatable(&self) -> bool {
        !matches!(self, StepOp::SwitchTo(_) | StepOp::Promote(_))
    }

    /// A failed attempt is never retried, also not on resume: the guide says not to restart
    /// an appliance whose install failed.
    pub fn never_retried(&self) -> bool {
        matches!(self, StepOp::Install(_))
    }

    /// The action looks at the world before it moves anything, so a resume may run it again
    /// after a crash cut it off (`switch.to-X` does only what is missing).
    pub fn reentrant(&self) -> bool {
        matches!(self, StepOp::SwitchTo(_))
    }
}

fn base(op: StepOp, title: String, kind: StepKind, phase: Phase) -> Step {
    Step {
        id: op.id(),
        title,
        kind,
        phase,
        op,
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
            StepOp::Health(x.to_owned()),
            format!("Check appliance {x} is reachable over TLS and healthy"),
            StepKind::Auto,
            Phase::Preflight,
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

/// `X.api`, needing nothing yet: [`api_needs`] fills in what the compiled plan uses.
pub fn api(x: &str) -> Step {
    let mut s = on(
        base(
            StepOp::Api(x.to_owned()),
            format!("Check the API account on {x} may do what this plan asks of it"),
            StepKind::Auto,
            Phase::Preflight,
        ),
        x,
    );
    s.postcondition = Condition::ApiPermissions {
        appliance: x.to_owned(),
        needs: Vec::new(),
    };
    s.on_failure = Some(format!(
        "Nothing has changed. Grant the missing permission to the API account at /login > Management > API Configuration on {x}, then plan again."
    ));
    s
}

/// What each `X.api` step checks: the permissions the plan's other steps use on X —
/// `perm_backup` for the configuration backup, `perm_command` full access for
/// `set_failover_role`, Configuration API read for the Jump Client wait (on the appliance
/// that serves the site at the end).
pub fn api_needs(steps: &mut [Step], serving_at_end: &str) {
    let mut needs: std::collections::BTreeMap<String, std::collections::BTreeSet<ApiNeed>> =
        Default::default();
    for s in steps.iter() {
        let (who, need) = match &s.op {
            StepOp::BackupConfig => (s.appliance.clone(), ApiNeed::Backup),
            StepOp::Promote(x) => (Some(x.clone()), ApiNeed::CommandFullAccess),
            StepOp::ClientsWait => (Some(serving_at_end.to_owned()), ApiNeed::ConfigurationRead),
            _ => continue,
        };
        if let Some(x) = who {
            needs.entry(x).or_default().insert(need);
        }
    }
    for s in steps.iter_mut() {
        if let (StepOp::Api(x), Condition::ApiPermissions { needs: n, .. }) =
            (&s.op, &mut s.postcondition)
        {
            *n = needs.remove(x).unwrap_or_default().into_iter().collect();
        }
    }
}

pub fn clock(plan: &Plan, x: &str) -> Step {
    let max = plan.policy.clock_skew_max.secs();
    let mut s = on(
        base(
            StepOp::Clock(x.to_owned()),
            format!(
                "Check appliance {x}'s clock is within {} of ours",
                plan.policy.clock_skew_max
            ),
            StepKind::Auto,
            Phase::Preflight,
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
            StepOp::Tls(x.to_owned()),
            format!(
                "Check appliance {x} serves a trusted certificate for {} valid ≥ {} more days",
                plan.site, plan.policy.certificate_min_days
            ),
            StepKind::Auto,
            Phase::Preflight,
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
        StepOp::Window,
        if plan.windows.is_empty() {
            "Check maintenance window (none given: any time is allowed)".to_owned()
        } else {
            "Check that now is inside a maintenance window".to_owned()
        },
        StepKind::Auto,
        Phase::Preflight,
    );
    s.resource = "windows".to_owned();
    s.postcondition = Condition::InWindow;
    s.window_bound = !plan.windows.is_empty();
    s
}

pub fn backup_config(plan: &Plan, x: &str) -> Step {
    let mut s = on(
        base(
            StepOp::BackupConfig,
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
            StepOp::BackupCertificates,
            format!("Export {x}'s certificate, private key and chain"),
            StepKind::Operator,
            Phase::Backup,
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
            StepOp::VaultKey,
            format!("Back up {x}'s Vault encryption key (it is not in the configuration backup)"),
            StepKind::Operator,
            Phase::Backup,
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
        StepOp::Throttle,
        format!("Limit concurrent Jump Client upgrades to {n}"),
        StepKind::Operator,
        Phase::Backup,
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
        StepOp::Sync,
        format!("Sync Now on primary {primary} and wait for the data sync to finish"),
        StepKind::Operator,
        Phase::Break,
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
        StepOp::Break,
        format!("Break the failover relationship between {primary} and {backup}"),
        StepKind::Operator,
        Phase::Break,
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
            StepOp::Install(x.to_owned()),
            format!("Install {target} on {x}"),
            StepKind::Operator,
            Phase::UpgradeFirst,
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
            StepOp::Online(x.to_owned()),
            format!("Wait until {x} answers again and reports healthy"),
            StepKind::Wait,
            phase,
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
            StepOp::Verify(x.to_owned()),
            format!("Verify {x} runs {target}, is healthy and serves a valid certificate"),
            StepKind::Auto,
            phase,
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
            StepOp::VerifyManual(x.to_owned()),
            format!("Confirm the manual checks on {x}"),
            StepKind::Gate,
            phase,
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
        StepOp::Keys,
        format!("Confirm {a} and {b} hold the same inter-appliance key"),
        StepKind::Operator,
        Phase::Reestablish,
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
        StepOp::Establish,
        format!("Establish the failover relationship: {primary} primary, {backup} backup"),
        StepKind::Operator,
        Phase::Reestablish,
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
        StepOp::Resync,
        format!(
            "Wait for the first data sync from {primary} to {backup} (starts within about 60 s; Sync Now forces it)"
        ),
        StepKind::Wait,
        Phase::Reestablish,
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
        StepOp::LowerTtl,
        format!(
            "Lower the TTL of dns {record} to {ttl}s, then wait out the old TTL ({}) so caches expire before the swing",
            swing_schema::output::human_duration(old_ttl(plan))
        ),
        StepKind::Auto,
        Phase::Switch,
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
    let mut s = base(StepOp::SwitchTo(to.to_owned()), title, kind, phase);
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
        StepOp::VerifySwitch(to.to_owned()),
        format!("Verify the site now answers as {to}"),
        StepKind::Auto,
        phase,
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
            StepOp::Promote(x.to_owned()),
            format!(
                "Make {x} primary again (set_failover_role with data sync first; users are disconnected meanwhile)"
            ),
            StepKind::Auto,
            Phase::SwitchBack,
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
        StepOp::RestoreTtl,
        format!("Restore the original TTL of dns {record}"),
        StepKind::Auto,
        Phase::Restore,
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
        StepOp::ClientsWait,
        format!(
            "Wait until ≥ {:.0}% of Jump Clients are online and upgraded (at most {})",
            jc.online_ratio * 100.0,
            jc.wait_timeout
        ),
        StepKind::Wait,
        Phase::Clients,
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
        StepOp::ClientsFollowup,
        "Follow up on clients that do not update themselves".to_owned(),
        StepKind::Operator,
        Phase::Clients,
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
            StepOp::CertsExport,
            format!("Export {old}'s certificate, private key and chain"),
            StepKind::Operator,
            Phase::Certificates,
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
            StepOp::CertsImport,
            format!("Import {old}'s certificate on {new}"),
            StepKind::Operator,
            Phase::Certificates,
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
            StepOp::CertsDefault,
            format!("Make the imported certificate {new}'s default"),
            StepKind::Operator,
            Phase::Certificates,
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
            StepOp::Restore(new.to_owned()),
            format!("Restore {old}'s configuration backup on {new}"),
            StepKind::Operator,
            Phase::UpgradeFirst,
        ),
        new,
    );
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
            StepOp::Decommission(old.to_owned()),
            format!("Factory reset and shut down the old appliance {old}"),
            StepKind::Gate,
            Phase::Decommission,
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
