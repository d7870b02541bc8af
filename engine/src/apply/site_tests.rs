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
    fail_install: bool,
}

impl World {
    fn new(fail_install: bool) -> Arc<World> {
        let w = World {
            fail_install,
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
            last_sync_status: Some("ok".into()),
            clock_skew_s: Some(0),
            certificate: Some(CertificateInfo {
                leaf_sha256: "ab".repeat(32),
                not_after: "2099-01-01T00:00:00Z".into(),
                sans: vec!["access.example.com".into()],
                trusted: true,
            }),
            jump_clients: Some(JumpClientSummary {
                total: 10,
                upgraded_online: 10,
                needs_update: 0,
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

fn request(dir: &std::path::Path, gates: &[String], resume: bool) -> ApplyRequest {
    ApplyRequest {
        state_dir: dir.join(".swing"),
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

#[tokio::test]
async fn async_shared_ip_upgrade_runs_end_to_end_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(false);
    let p = providers(&world);
    let c = Arc::new(compile(&plan(), &CompileOptions::default()).unwrap());
    let d = diff(&c, &refresh(&plan(), &p).await);
    assert!(d.drift.is_empty(), "{:?}", d.drift);
    let specs = step_specs(&c, &d.needed, &p);
    let gates: Vec<String> = specs
        .iter()
        .filter(|s| s.needs_person)
        .map(|s| s.id.clone())
        .collect();
    assert!(gates.contains(&"b.verify-manual".to_owned()), "{gates:?}");

    // Without confirmations the apply pauses at the first gate.
    let exec = Arc::new(SiteExecutor::new(
        c.clone(),
        p.clone(),
        dir.path().into(),
        Arc::new(SystemClock),
        &[],
    ));
    let r = run(&request(dir.path(), &[], false), &specs, exec)
        .await
        .unwrap();
    let Outcome::Paused { waiting } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(waiting[0].step, "b.verify-manual");
    assert_eq!(world.apps.lock().unwrap()["b"].version, "25.1.3");

    // Resume with the gates confirmed: runs to the end.
    let records = Journal::read(&Journal::path_for(
        &dir.path().join(".swing"),
        "access-25-1-async-ip",
    ))
    .unwrap();
    let exec = Arc::new(SiteExecutor::new(
        c.clone(),
        p.clone(),
        dir.path().into(),
        Arc::new(SystemClock),
        &records,
    ));
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
    let p = providers(&world);
    let c = Arc::new(compile(&plan(), &CompileOptions::default()).unwrap());
    let d = diff(&c, &refresh(&plan(), &p).await);
    let specs = step_specs(&c, &d.needed, &p);
    let gates: Vec<String> = specs
        .iter()
        .filter(|s| s.needs_person)
        .map(|s| s.id.clone())
        .collect();
    let exec = Arc::new(SiteExecutor::new(
        c.clone(),
        p.clone(),
        dir.path().into(),
        Arc::new(SystemClock),
        &[],
    ));
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
    let records = Journal::read(&Journal::path_for(
        &dir.path().join(".swing"),
        "access-25-1-async-ip",
    ))
    .unwrap();
    let exec = Arc::new(SiteExecutor::new(
        c.clone(),
        p.clone(),
        dir.path().into(),
        Arc::new(SystemClock),
        &records,
    ));
    let r = run(&request(dir.path(), &gates, true), &specs, exec)
        .await
        .unwrap();
    assert!(matches!(r.outcome, Outcome::Failed { .. }));
    assert_eq!(world.count("b.install b"), 1);
    assert_eq!(world.count("backup a"), 1);
}

fn site_apply(
    dir: &std::path::Path,
    saved: Option<crate::planfile::SavedPlan>,
    gates: &[String],
    resume: bool,
) -> super::site::SiteApply {
    super::site::SiteApply {
        plan: plan(),
        saved,
        source: "change.plan".into(),
        base_dir: dir.to_owned(),
        state_dir: dir.join(".swing"),
        resume,
        walk: request(dir, gates, resume).walk,
    }
}

#[tokio::test]
async fn saved_plan_applies_then_replan_says_no_changes_and_stale_plans_are_refused() {
    use super::site::{SiteError, SiteOutcome, apply_site, plan_site};
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(false);
    let p = providers(&world);

    // A plan saved now goes stale when b changes before apply.
    let stale_plan = plan_site(&plan(), "plan.yaml", dir.path(), Some(&p))
        .await
        .unwrap()
        .saved;
    assert!(stale_plan.has_changes);
    world.apps.lock().unwrap().get_mut("b").unwrap().version = "25.1.3".into();
    match apply_site(
        site_apply(dir.path(), Some(stale_plan), &[], false),
        p.clone(),
    )
    .await
    {
        Err(SiteError::Stale(reasons)) => assert_eq!(
            reasons,
            vec!["stale: appliance b is now 25.1.3, the plan was made against 24.3.2".to_owned()]
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(world.count("backup a"), 0, "a stale plan touches nothing");
    world.apps.lock().unwrap().get_mut("b").unwrap().version = "24.3.2".into();

    // plan --out, then apply: pauses at the first gate, resume with the gates finishes.
    let super::site::PlannedSite {
        compiled, saved, ..
    } = plan_site(&plan(), "plan.yaml", dir.path(), Some(&p))
        .await
        .unwrap();
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
    let super::site::PlannedSite {
        diff: d,
        saved: again,
        ..
    } = plan_site(&plan(), "plan.yaml", dir.path(), Some(&p))
        .await
        .unwrap();
    assert!(!d.has_changes() && !again.has_changes, "{:?}", d.needed);
    let r = apply_site(site_apply(dir.path(), Some(again), &[], false), p.clone())
        .await
        .unwrap();
    assert!(matches!(r, SiteOutcome::NoChanges));
    assert_eq!(world.count("a.install a"), 1);
}
