//! The site executor against an in-memory world (fake appliances + operator bridge, test
//! code only): the async shared-ip plan is compiled, diffed, applied to the end, re-diffed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::site::{SiteExecutor, step_specs};
use super::*;
use crate::compile::{CompileOptions, compile};
use crate::diff::diff;
use crate::provider::*;
use crate::refresh::{Providers, refresh};

#[derive(Clone)]
struct App {
    version: String,
    role: FailoverRole,
    shared: bool,
    sync: i64,
}

#[derive(Default)]
struct World {
    apps: Mutex<BTreeMap<String, App>>,
    log: Mutex<Vec<String>>,
    /// The same as `log`, with the UNIX ms of each entry.
    timed: Mutex<Vec<(i64, String)>>,
    fail_install: bool,
    /// `last_data_sync_status` every appliance reports (`ok` unless a test says otherwise).
    sync_status: Mutex<String>,
}

impl World {
    fn new(fail_install: bool) -> Arc<World> {
        let w = World {
            fail_install,
            sync_status: Mutex::new("ok".into()),
            ..World::default()
        };
        let old = |role| App {
            version: "24.3.2".into(),
            role,
            shared: false,
            sync: 0,
        };
        let mut a = old(FailoverRole::Primary);
        a.shared = true;
        w.apps.lock().unwrap().insert("a".into(), a);
        w.apps
            .lock()
            .unwrap()
            .insert("b".into(), old(FailoverRole::Backup));
        Arc::new(w)
    }
    fn count(&self, what: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.as_str() == what)
            .count()
    }
}

struct FakeAppliance {
    name: String,
    world: Arc<World>,
}

#[async_trait]
impl ApplianceProvider for FakeAppliance {
    async fn observe(&self) -> ProviderResult<ApplianceObservation> {
        let a = self.world.apps.lock().unwrap()[&self.name].clone();
        Ok(ApplianceObservation {
            warnings: Vec::new(),
            api_permissions: Some(
                [("perm_command", "full_access"), ("perm_backup", "1")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ),
            api_version: Some("1.19.0".into()),
            reachable: true,
            appliance_id: Some(format!("id-{}", self.name)),
            hostname: Some(self.name.clone()),
            version: Some(a.version),
            healthy: true,
            error_message: None,
            role: a.role,
            shared_ips: if a.shared {
                vec!["10.0.0.10".into()]
            } else {
                vec![]
            },
            last_sync_unix: Some(a.sync),
            last_sync_status: Some(self.world.sync_status.lock().unwrap().clone()),
            clock_skew_s: Some(0),
            certificate: Some(CertificateInfo {
                leaf_sha256: super::exported::tests::SERVED_SHA256.to_owned(),
                not_after: "2099-01-01T00:00:00Z".into(),
                sans: vec!["access.example.com".into()],
                trusted: true,
            }),
            jump_clients: Some(JumpClientSummary {
                total: 10,
                upgraded_online: 10,
                needs_update: 0,
                ..JumpClientSummary::default()
            }),
        })
    }
    async fn backup(&self, dir: &std::path::Path, stem: &str) -> ProviderResult<BackupInfo> {
        use sha2::Digest;
        std::fs::create_dir_all(dir)
            .map_err(|e| ProviderError::new(ErrorKind::Failed, e.to_string()))?;
        let path = dir.join(format!("{stem}.nsb"));
        std::fs::write(&path, b"backup")
            .map_err(|e| ProviderError::new(ErrorKind::Failed, e.to_string()))?;
        self.world
            .log
            .lock()
            .unwrap()
            .push(format!("backup {}", self.name));
        Ok(BackupInfo {
            path,
            sha256: hex::encode(sha2::Sha256::digest(b"backup")),
            bytes: 6,
        })
    }
    async fn set_failover_role(&self, role: FailoverRole, _sync_first: bool) -> ProviderResult<()> {
        self.world
            .apps
            .lock()
            .unwrap()
            .get_mut(&self.name)
            .unwrap()
            .role = role;
        Ok(())
    }
}

struct FakeBridge(Arc<World>);

#[async_trait]
impl OperatorBridge for FakeBridge {
    async fn perform(&self, task: &OperatorTask) -> ProviderResult<()> {
        let now_s = journal::now_ms() / 1000 + 1;
        self.0
            .log
            .lock()
            .unwrap()
            .push(format!("{} {}", task.step_id, task.appliance));
        self.0.timed.lock().unwrap().push((
            journal::now_ms(),
            format!("{} {}", task.step_id, task.appliance),
        ));
        let mut apps = self.0.apps.lock().unwrap();
        match &task.action {
            OperatorAction::Install { version, .. } => {
                if self.0.fail_install {
                    return Err(ProviderError::new(
                        ErrorKind::Failed,
                        "installation of base-7.2.1 failed",
                    ));
                }
                apps.get_mut(&task.appliance).unwrap().version = version.clone();
            }
            OperatorAction::SharedIp { enabled, .. } => {
                apps.get_mut(&task.appliance).unwrap().shared = *enabled
            }
            OperatorAction::SyncNow => apps.values_mut().for_each(|a| a.sync = now_s),
            OperatorAction::BreakFailover => {
                apps.values_mut().for_each(|a| a.role = FailoverRole::None)
            }
            // Saved where a person saves it: the step's check reads it back.
            OperatorAction::ExportCertificate { directory } => {
                std::fs::create_dir_all(directory).unwrap();
                std::fs::write(
                    directory.join(format!("{}-certificate.pem", task.appliance)),
                    super::exported::tests::SERVED_PEM,
                )
                .unwrap();
            }
            OperatorAction::EstablishFailover { .. } => {
                for (n, a) in apps.iter_mut() {
                    a.role = if *n == task.appliance {
                        FailoverRole::Primary
                    } else {
                        FailoverRole::Backup
                    };
                    a.sync = now_s;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn plan() -> swing_schema::Plan {
    serde_json::from_value(serde_json::json!({
        "version": 1, "name": "access-25-1-async-ip", "site": "access.example.com",
        "target": {"version": "25.1.3", "packages": ["base-7.2.1", "pra-25.1.3"]},
        "appliances": {"a": {"address": "10.0.0.11"}, "b": {"address": "10.0.0.12"}},
        "failover": {"primary": "a", "backup": "b", "strategy": "asynchronous",
                      "switch": {"method": "shared-ip", "address": "10.0.0.10"}},
        "backup": {"directory": "./backups", "password": "${env:P}"},
        "providers": {"appliance": {"type": "beyondtrust", "client_id": "x", "client_secret": "${env:S}", "operator": "sim"}}
    }))
    .unwrap()
}

fn providers(world: &Arc<World>) -> Providers {
    let mut p = Providers::default();
    for n in ["a", "b"] {
        p.appliances.insert(
            n.into(),
            Arc::new(FakeAppliance {
                name: n.into(),
                world: world.clone(),
            }),
        );
        p.bridges
            .insert(n.into(), Arc::new(FakeBridge(world.clone())));
    }
    p
}

/// The records of a change's journal under `dir/.swing`.
fn journal_of(dir: &std::path::Path, change: &str) -> Vec<Record> {
    Journal::read(&Journal::path_for(&dir.join(".swing"), change)).unwrap()
}

/// An executor for `c` with the system clock, resuming from `records`.
fn site_executor(
    c: &Arc<crate::compile::CompiledPlan>,
    p: &Providers,
    dir: &std::path::Path,
    records: &[Record],
) -> Arc<SiteExecutor> {
    Arc::new(SiteExecutor::new(
        c.clone(),
        p.clone(),
        dir.into(),
        Arc::new(SystemClock),
        records,
    ))
}

fn request(dir: &std::path::Path, gates: &[String], resume: bool) -> ApplyRequest {
    ApplyRequest {
        store: Arc::new(crate::apply::LocalStore::new(
            &dir.join(".swing"),
            &dir.join(".swing").join("locks"),
        )),
        change: "access-25-1-async-ip".into(),
        site: "access.example.com".into(),
        plan_digest: crate::planfile::plan_digest(&plan()),
        source: None,
        resume,
        lock: LockOptions::default(),
        walk: WalkOptions {
            confirmed: gates.iter().cloned().collect::<BTreeSet<_>>(),
            poll: PollPolicy {
                initial: std::time::Duration::from_millis(2),
                max: std::time::Duration::from_millis(20),
                act_attempts: 2,
            },
            ..WalkOptions::default()
        },
    }
}

/// The plan compiled, diffed against `world` and turned into step specs, with the steps a
/// person must confirm (what every test here starts from).
struct Prepared {
    p: Providers,
    c: Arc<crate::compile::CompiledPlan>,
    d: crate::diff::Diff,
    specs: Vec<StepSpec>,
    gates: Vec<String>,
}

async fn prepare(world: &Arc<World>) -> Prepared {
    let p = providers(world);
    let c = Arc::new(
        compile(
            &crate::validate::valid_plan(&plan()),
            &CompileOptions::default(),
        )
        .unwrap(),
    );
    let d = diff(&c, &refresh(&plan(), &p).await);
    let specs = step_specs(&c, &d.needed, &p);
    let gates = specs
        .iter()
        .filter(|s| s.needs_person)
        .map(|s| s.id.clone())
        .collect();
    Prepared {
        p,
        c,
        d,
        specs,
        gates,
    }
}

#[tokio::test]
async fn async_shared_ip_upgrade_runs_end_to_end_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(false);
    let Prepared {
        p,
        c,
        d,
        specs,
        gates,
    } = prepare(&world).await;
    assert!(d.drift.is_empty(), "{:?}", d.drift);
    assert!(gates.contains(&"b.verify-manual".to_owned()), "{gates:?}");

    // Without confirmations the apply pauses at the first gate.
    let exec = site_executor(&c, &p, dir.path(), &[]);
    let r = run(&request(dir.path(), &[], false), &specs, exec)
        .await
        .unwrap();
    let Outcome::Paused { waiting } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(waiting[0].step, "b.verify-manual");
    assert_eq!(world.apps.lock().unwrap()["b"].version, "25.1.3");

    // Resume with the gates confirmed: runs to the end.
    let records = journal_of(dir.path(), "access-25-1-async-ip");
    let exec = site_executor(&c, &p, dir.path(), &records);
    let r = run(&request(dir.path(), &gates, true), &specs, exec)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Done, "{:?}", r.report.root_cause);
    assert_eq!(r.report.backups.len(), 1);
    assert!(
        r.report.backups[0]
            .path
            .starts_with(dir.path().join("backups"))
    );
    for once in [
        "b.install b",
        "a.install a",
        "failover.break a",
        "failover.establish b",
        "backup a",
    ] {
        assert_eq!(
            world.count(once),
            1,
            "{once}: {:?}",
            world.log.lock().unwrap()
        );
    }
    {
        let apps = world.apps.lock().unwrap();
        assert_eq!(apps["a"].role, FailoverRole::Backup);
        assert_eq!(apps["b"].role, FailoverRole::Primary);
        assert!(apps["b"].shared && !apps["a"].shared);
    }
    // Re-plan: nothing left.
    let d = diff(&c, &refresh(&plan(), &p).await);
    assert!(!d.has_changes(), "{:?}", d.needed);
}

#[tokio::test]
async fn failed_install_halts_with_the_guides_advice_and_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(true);
    let Prepared {
        p, c, specs, gates, ..
    } = prepare(&world).await;
    let exec = site_executor(&c, &p, dir.path(), &[]);
    let r = run(&request(dir.path(), &gates, false), &specs, exec)
        .await
        .unwrap();
    let Outcome::Failed {
        root_cause,
        skipped,
    } = &r.outcome
    else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(root_cause.step, "b.install");
    assert!(
        root_cause
            .message
            .contains("installation of base-7.2.1 failed")
    );
    let advice = root_cause.advice.join("\n");
    assert!(advice.contains("do NOT restart"), "{advice}");
    assert!(advice.contains("Abort path"), "{advice}");
    assert!(skipped.contains(&"switch.to-b".to_owned()));
    assert_eq!(world.count("b.install b"), 1);

    // A resume does not retry it either.
    let records = journal_of(dir.path(), "access-25-1-async-ip");
    let exec = site_executor(&c, &p, dir.path(), &records);
    let r = run(&request(dir.path(), &gates, true), &specs, exec)
        .await
        .unwrap();
    assert!(matches!(r.outcome, Outcome::Failed { .. }));
    assert_eq!(world.count("b.install b"), 1);
    assert_eq!(world.count("backup a"), 1);
}

/// A data sync the appliance reports as failed halts the sync step with the appliance's own
/// text — however recent `last_data_sync_time` is — and nothing after it runs.
#[tokio::test]
async fn a_failed_sync_status_halts_the_sync_step_with_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(false);
    *world.sync_status.lock().unwrap() = "Failed: peer 10.0.0.12 refused the connection".into();
    let Prepared {
        p, c, specs, gates, ..
    } = prepare(&world).await;
    let exec = site_executor(&c, &p, dir.path(), &[]);
    let r = run(&request(dir.path(), &gates, false), &specs, exec)
        .await
        .unwrap();
    let Outcome::Failed {
        root_cause,
        skipped,
    } = &r.outcome
    else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(root_cause.step, "failover.sync", "{root_cause:?}");
    assert!(
        root_cause
            .message
            .contains("peer 10.0.0.12 refused the connection"),
        "{}",
        root_cause.message
    );
    assert!(
        skipped.contains(&"failover.break".to_owned()),
        "{skipped:?}"
    );
    assert_eq!(
        world.count("failover.break a"),
        0,
        "nothing after the sync ran"
    );
}

fn site_apply(
    dir: &std::path::Path,
    saved: Option<crate::planfile::SavedPlan>,
    gates: &[String],
    resume: bool,
) -> crate::ops::SiteApply {
    crate::ops::SiteApply {
        plan: crate::validate::valid_plan(&plan()),
        saved,
        source: "change.plan".into(),
        base_dir: dir.to_owned(),
        store: Arc::new(crate::apply::LocalStore::new(
            &dir.join(".swing"),
            &dir.join(".swing").join("locks"),
        )),
        resume,
        from_journal: false,
        require_signature: None,
        walk: request(dir, gates, resume).walk,
    }
}

#[tokio::test]
async fn saved_plan_applies_then_replan_says_no_changes_and_stale_plans_are_refused() {
    use crate::ops::{SiteError, SiteOutcome, apply as apply_site, plan as plan_site};
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(false);
    let p = providers(&world);

    // A plan saved now goes stale when b changes before apply.
    let stale_plan = plan_site(
        &crate::validate::valid_plan(&plan()),
        "plan.yaml",
        dir.path(),
        Some(&p),
        true,
    )
    .await
    .unwrap()
    .saved
    .unwrap();
    assert!(stale_plan.has_changes);
    world.apps.lock().unwrap().get_mut("b").unwrap().version = "25.1.3".into();
    match apply_site(
        site_apply(dir.path(), Some(stale_plan), &[], false),
        p.clone(),
    )
    .await
    {
        Err(SiteError::Stale(reasons)) => assert_eq!(
            reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec!["stale: appliance b is now 25.1.3, the plan was made against 24.3.2".to_owned()]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(world.count("backup a"), 0, "a stale plan touches nothing");
    world.apps.lock().unwrap().get_mut("b").unwrap().version = "24.3.2".into();

    // plan --out, then apply: pauses at the first gate, resume with the gates finishes.
    let crate::ops::PlannedSite {
        compiled, saved, ..
    } = plan_site(
        &crate::validate::valid_plan(&plan()),
        "plan.yaml",
        dir.path(),
        Some(&p),
        true,
    )
    .await
    .unwrap();
    let saved = saved.unwrap();
    saved.write(&dir.path().join("change.plan")).unwrap();
    let saved = crate::planfile::SavedPlan::read(&dir.path().join("change.plan")).unwrap();
    let gates: Vec<String> = step_specs(&compiled, &saved.steps, &p)
        .iter()
        .filter(|s| s.needs_person)
        .map(|s| s.id.clone())
        .collect();
    let r = apply_site(
        site_apply(dir.path(), Some(saved.clone()), &[], false),
        p.clone(),
    )
    .await
    .unwrap();
    assert!(matches!(&r, SiteOutcome::Ran(w) if matches!(w.outcome, Outcome::Paused { .. })));
    let r = apply_site(site_apply(dir.path(), Some(saved), &gates, true), p.clone())
        .await
        .unwrap();
    let SiteOutcome::Ran(r) = r else { panic!() };
    assert_eq!(r.outcome, Outcome::Done, "{:?}", r.report.root_cause);

    // Re-plan: no changes; applying it again is a no-op.
    let crate::ops::PlannedSite {
        diff: d,
        saved: again,
        ..
    } = plan_site(
        &crate::validate::valid_plan(&plan()),
        "plan.yaml",
        dir.path(),
        Some(&p),
        true,
    )
    .await
    .unwrap();
    let again = again.unwrap();
    assert!(!d.has_changes() && !again.has_changes, "{:?}", d.needed);
    let r = apply_site(site_apply(dir.path(), Some(again), &[], false), p.clone())
        .await
        .unwrap();
    assert!(matches!(r, SiteOutcome::NoChanges));
    assert_eq!(world.count("a.install a"), 1);
}

/// One DNS record in memory; every change is logged with its UNIX ms.
struct FakeDns {
    record: Mutex<(Vec<std::net::IpAddr>, u32)>,
    log: Mutex<Vec<(i64, String)>>,
}

impl FakeDns {
    fn new(at: &str, ttl: u32) -> Arc<FakeDns> {
        Arc::new(FakeDns {
            record: Mutex::new((vec![at.parse().unwrap()], ttl)),
            log: Mutex::new(Vec::new()),
        })
    }
    fn ttl(&self) -> u32 {
        self.record.lock().unwrap().1
    }
    /// When `what` happened (the first time) and how often.
    fn at(&self, what: &str) -> (Option<i64>, usize) {
        let log = self.log.lock().unwrap();
        let hits: Vec<i64> = log
            .iter()
            .filter(|(_, w)| w == what)
            .map(|(t, _)| *t)
            .collect();
        (hits.first().copied(), hits.len())
    }
}

#[async_trait]
impl DnsProvider for FakeDns {
    async fn observe(&self, record: &str) -> ProviderResult<DnsObservation> {
        let (addresses, ttl) = self.record.lock().unwrap().clone();
        Ok(DnsObservation {
            record: record.to_owned(),
            addresses,
            ttl,
        })
    }
    async fn set_ttl(
        &self,
        _record: &str,
        expect: &DnsObservation,
        ttl: u32,
    ) -> ProviderResult<()> {
        let mut r = self.record.lock().unwrap();
        if r.0 != expect.addresses {
            return Err(ProviderError::new(ErrorKind::Conflict, "record changed"));
        }
        r.1 = ttl;
        self.log
            .lock()
            .unwrap()
            .push((journal::now_ms(), format!("ttl {ttl}")));
        Ok(())
    }
    async fn swing(
        &self,
        _record: &str,
        from: std::net::IpAddr,
        to: std::net::IpAddr,
        ttl: u32,
    ) -> ProviderResult<()> {
        let mut r = self.record.lock().unwrap();
        if r.0 != vec![from] {
            return Err(ProviderError::new(ErrorKind::Conflict, "record changed"));
        }
        *r = (vec![to], ttl);
        self.log
            .lock()
            .unwrap()
            .push((journal::now_ms(), format!("swing {to}")));
        Ok(())
    }
}

/// The record's TTL before the change (what swing must observe, wait out and restore).
const REAL_OLD_TTL: u32 = 2;
/// The TTL the plan lowers it to around the swing.
const LOWERED_TTL: u32 = 1;

/// Async failover with a DNS switch. The plan assumes an old TTL of 5 s
/// (`policy.estimates.switch.prepare`); the record really has [`REAL_OLD_TTL`].
fn dns_plan() -> swing_schema::Plan {
    serde_json::from_value(serde_json::json!({
        "version": 1, "name": "access-25-1-async-dns", "site": "access.example.com",
        "target": {"version": "25.1.3", "packages": ["base-7.2.1", "pra-25.1.3"]},
        "appliances": {"a": {"address": "10.0.0.11"}, "b": {"address": "10.0.0.12"}},
        "failover": {"primary": "a", "backup": "b", "strategy": "asynchronous",
                      "switch": {"method": "dns", "provider": "corp-dns",
                                 "record": "access.example.com", "ttl": LOWERED_TTL}},
        "policy": {"estimates": {"switch.prepare": "5s"}},
        "backup": {"directory": "./backups", "password": "${env:P}"},
        "verify": {"manual": []},
        "providers": {
            "appliance": {"type": "beyondtrust", "client_id": "x", "client_secret": "${env:S}", "operator": "sim"},
            "corp-dns": {"type": "rfc2136", "server": "10.0.0.53:53", "zone": "example.com",
                         "tsig": {"name": "k", "secret": "${env:T}"}}
        }
    }))
    .unwrap()
}

struct DnsLab {
    world: Arc<World>,
    dns: Arc<FakeDns>,
    providers: Providers,
    compiled: Arc<crate::compile::CompiledPlan>,
    specs: Vec<StepSpec>,
}

async fn dns_lab() -> DnsLab {
    dns_lab_with(dns_plan(), REAL_OLD_TTL).await
}

async fn dns_lab_with(plan: swing_schema::Plan, record_ttl: u32) -> DnsLab {
    let world = World::new(false);
    let dns = FakeDns::new("10.0.0.11", record_ttl);
    let mut p = providers(&world);
    p.dns = Some(dns.clone());
    let compiled = Arc::new(
        compile(
            &crate::validate::valid_plan(&plan),
            &CompileOptions::default(),
        )
        .unwrap(),
    );
    let d = diff(&compiled, &refresh(&plan, &p).await);
    assert!(d.drift.is_empty(), "{:?}", d.drift);
    let specs = step_specs(&compiled, &d.needed, &p);
    DnsLab {
        world,
        dns,
        providers: p,
        compiled,
        specs,
    }
}

fn dns_request(dir: &std::path::Path, resume: bool) -> ApplyRequest {
    ApplyRequest {
        change: "access-25-1-async-dns".into(),
        plan_digest: crate::planfile::plan_digest(&dns_plan()),
        ..request(dir, &[], resume)
    }
}

fn dns_journal(dir: &std::path::Path) -> Vec<Record> {
    journal_of(dir, "access-25-1-async-dns")
}

fn executor(lab: &DnsLab, dir: &std::path::Path, records: &[Record]) -> Arc<SiteExecutor> {
    site_executor(&lab.compiled, &lab.providers, dir, records)
}

/// When the bridge performed `what` (first time).
fn bridge_at(world: &World, what: &str) -> Option<i64> {
    world
        .timed
        .lock()
        .unwrap()
        .iter()
        .find(|(_, w)| w == what)
        .map(|(t, _)| *t)
}

#[tokio::test]
async fn dns_swing_waits_out_the_observed_ttls_and_restores_the_observed_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dns_lab().await;
    let r = run(
        &dns_request(dir.path(), false),
        &lab.specs,
        executor(&lab, dir.path(), &[]),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Done, "{:?}", r.report.root_cause);

    let (lowered, n_lowered) = lab.dns.at(&format!("ttl {LOWERED_TTL}"));
    let (swung, _) = lab.dns.at("swing 10.0.0.12");
    let (lowered, swung) = (lowered.unwrap(), swung.unwrap());
    assert_eq!(n_lowered, 1);
    // a: the swing waits out the TTL observed before lowering (2 s), not the plan's 5 s.
    assert!(
        swung - lowered >= i64::from(REAL_OLD_TTL) * 1000,
        "swung {} ms after lowering the TTL",
        swung - lowered
    );
    assert!(swung - lowered < 4_500, "waited the plan's assumed TTL");
    let observed = dns_journal(dir.path())
        .into_iter()
        .find_map(|r| match r.entry {
            Entry::StepObserved { step, observed } if step == "switch.prepare" => Some(observed),
            _ => None,
        });
    assert_eq!(
        observed.unwrap()["ttl"],
        serde_json::json!(REAL_OLD_TTL),
        "the old TTL is journaled"
    );
    // b: a goes down for its install only after clients' caches of a's address expired.
    let a_down = bridge_at(&lab.world, "a.install a").unwrap();
    assert!(
        a_down - swung >= i64::from(LOWERED_TTL) * 1000,
        "a.install {} ms after the swing",
        a_down - swung
    );
    // c: the TTL observed before the change is restored, not the plan's assumption.
    assert_eq!(lab.dns.ttl(), REAL_OLD_TTL);
    let d = diff(&lab.compiled, &refresh(&dns_plan(), &lab.providers).await);
    assert!(!d.has_changes(), "{:?}", d.needed);
}

#[tokio::test]
async fn dns_prepare_resumed_after_a_crash_waits_only_the_rest_and_restores_the_first_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dns_lab().await;
    let first = tokio::spawn({
        let (req, specs, exec) = (
            dns_request(dir.path(), false),
            lab.specs.clone(),
            executor(&lab, dir.path(), &[]),
        );
        async move { run(&req, &specs, exec).await }
    });
    // Crash (the apply stops dead) 1 s into the wait after the TTL was lowered.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let lowered = loop {
        let done = dns_journal(dir.path())
            .into_iter()
            .find_map(|r| match r.entry {
                Entry::ActionDone { step, .. } if step == "switch.prepare" => Some(r.ts_ms),
                _ => None,
            });
        if let Some(t) = done {
            break t;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "switch.prepare never acted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let crash_at = lowered + 1_000;
    tokio::time::sleep(std::time::Duration::from_millis(
        u64::try_from(crash_at - journal::now_ms()).unwrap_or(0),
    ))
    .await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    assert!(
        lab.dns.at("swing 10.0.0.12").0.is_none(),
        "crashed before the swing"
    );
    assert_eq!(lab.dns.ttl(), LOWERED_TTL);

    // Resume: the journal, not the (lowered) record, says what the old TTL was.
    let records = dns_journal(dir.path());
    let r = run(
        &dns_request(dir.path(), true),
        &lab.specs,
        executor(&lab, dir.path(), &records),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Done, "{:?}", r.report.root_cause);
    let (first_lowered, n_lowered) = lab.dns.at(&format!("ttl {LOWERED_TTL}"));
    assert_eq!(n_lowered, 1, "lowered once");
    let swung = lab.dns.at("swing 10.0.0.12").0.unwrap();
    let waited = swung - first_lowered.unwrap();
    assert!(waited >= i64::from(REAL_OLD_TTL) * 1000, "{waited} ms");
    // Waiting the whole old TTL again after the resume would take at least 3 s.
    assert!(
        waited < 2_900,
        "the resume waited the whole TTL again: {waited} ms"
    );
    assert_eq!(lab.dns.ttl(), REAL_OLD_TTL, "the TTL seen before lowering");
}

#[test]
fn only_a_swing_followed_by_taking_the_old_appliance_down_waits_the_lowered_ttl() {
    // final_primary: a: the site moves to b (a installs next: wait), then back to a (b stays
    // up as the backup: no wait).
    let mut plan = serde_json::to_value(dns_plan()).unwrap();
    plan["failover"]["final_primary"] = serde_json::json!("a");
    let plan: swing_schema::Plan = serde_json::from_value(plan).unwrap();
    let compiled = Arc::new(
        compile(
            &crate::validate::valid_plan(&plan),
            &CompileOptions::default(),
        )
        .unwrap(),
    );
    assert!(compiled.step("switch.verify-a").is_some());
    let exec = SiteExecutor::new(
        compiled,
        Providers::default(),
        ".".into(),
        Arc::new(SystemClock),
        &[],
    );
    assert!(
        exec.old_goes_down_after("b"),
        "a.install follows the swing to b"
    );
    assert!(
        !exec.old_goes_down_after("a"),
        "nothing takes b down after the swing back"
    );
}

#[tokio::test]
async fn a_record_already_at_the_switch_ttl_waits_and_restores_the_plans_old_ttl() {
    // Lowered by hand ahead of the change: the TTL it had before is not observable, so the
    // plan's old TTL (policy.estimates.switch.prepare: 2s) stands for it.
    let mut plan = serde_json::to_value(dns_plan()).unwrap();
    plan["policy"]["estimates"]["switch.prepare"] = serde_json::json!("2s");
    let plan: swing_schema::Plan = serde_json::from_value(plan).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lab = dns_lab_with(plan, LOWERED_TTL).await;
    let r = run(
        &dns_request(dir.path(), false),
        &lab.specs,
        executor(&lab, dir.path(), &[]),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Done, "{:?}", r.report.root_cause);
    assert_eq!(
        lab.dns.at(&format!("ttl {LOWERED_TTL}")).1,
        0,
        "nothing to lower"
    );
    let (observed_at, observed) = dns_journal(dir.path())
        .into_iter()
        .find_map(|r| match r.entry {
            Entry::StepObserved { step, observed } if step == "switch.prepare" => {
                Some((r.ts_ms, observed))
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(observed["ttl"], 2);
    assert_eq!(observed["assumed"], true);
    let swung = lab.dns.at("swing 10.0.0.12").0.unwrap();
    assert!(swung - observed_at >= 2_000, "{} ms", swung - observed_at);
    assert_eq!(lab.dns.ttl(), 2, "the plan's old TTL is restored");
}
