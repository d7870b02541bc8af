//! The `beyondtrust` appliance provider and the operator bridges against the REAL simulator
//! (`swing-sim`, started in-process on loopback ports it picks itself).
//!
//! Owns: end-to-end checks that the provider speaks the vendor wire formats (one OAuth token
//! for many calls, check_health, backups with the simulator's checksum, Jump Client paging,
//! TLS failures named), that every operator step done through `operator: sim` is observable
//! through the vendor APIs, and the appliance conformance suite.
//!
//! Must not: send traffic anywhere but 127.0.0.0/8, disable TLS verification, or sleep in
//! place of waiting for a condition (polls have deadlines).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use swing_engine::provider::{
    ApplianceObservation, ApplianceProvider, ErrorKind, FailoverRole, OperatorAction,
    OperatorBridge, OperatorTask,
};
use swing_providers::beyondtrust::{BeyondTrustAppliance, BeyondTrustConfig, RetryPolicy};
use swing_providers::conformance::appliance::{ApplianceExpectations, run_all};
use swing_providers::operator::{SimOperator, SimTarget};
use swing_schema::SecretValue;
use swing_sim::{SimConfig, SimHandle, Simulator};

const ID: &str = "swing-provider-test";
const SECRET: &str = "provider-test-secret-not-real";
const BACKUP_PASSWORD: &str = "backup-pass-not-real";
const SITE: &str = "access.example.test";

fn sim_config(name: &str, ca_dir: &Path) -> SimConfig {
    let mut c = SimConfig::new(name, ca_dir);
    c.client_id = ID.into();
    c.client_secret = SECRET.into();
    c.site = SITE.into();
    c.time_scale = 0.001;
    // The recorded dialect unless `SWING_SIM_DIALECT` asks for the other (scripts/test runs both).
    c.dialect = swing_testkit::kit::default_dialect();
    c
}

async fn start(cfg: SimConfig) -> SimHandle {
    Simulator::start(cfg).await.expect("simulator starts")
}

fn config_for(sim: &SimHandle, secret: &str) -> BeyondTrustConfig {
    let mut c = BeyondTrustConfig::new(sim.addr().ip().to_string(), ID, SecretValue::new(secret));
    c.port = sim.addr().port();
    c.site_hostname = Some(SITE.into());
    c.ca_file = Some(sim.ca_pem_path());
    c.backup_password = Some(SecretValue::new(BACKUP_PASSWORD));
    c.retry = RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    c
}

fn provider(sim: &SimHandle) -> BeyondTrustAppliance {
    BeyondTrustAppliance::new(config_for(sim, SECRET)).expect("provider builds")
}

/// Polls `f` until it yields `Some`, failing the test after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn observe_until(
    p: &BeyondTrustAppliance,
    what: &str,
    cond: impl Fn(&ApplianceObservation) -> bool,
) -> ApplianceObservation {
    eventually(Duration::from_secs(30), what, || async {
        match p.observe().await {
            Ok(o) if cond(&o) => Some(o),
            _ => None,
        }
    })
    .await
}

fn task(step: &str, appliance: &str, action: OperatorAction) -> OperatorTask {
    OperatorTask {
        step_id: step.into(),
        appliance: appliance.into(),
        action,
        instructions: vec![],
    }
}

fn bridge(sims: &[&SimHandle], names: &[&str]) -> SimOperator {
    let targets = sims
        .iter()
        .zip(names)
        .map(|(s, n)| SimTarget {
            name: (*n).into(),
            url: s.url(),
        })
        .collect();
    SimOperator::new(
        targets,
        Some(sims[0].ca_pem_path()),
        Some(SecretValue::new(BACKUP_PASSWORD)),
        Duration::from_secs(30),
    )
    .expect("bridge builds")
}

/// A loopback address no other test uses (127.0.0.0/8 is all on `lo` on Linux).
fn unique_loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        fastrand::u8(1..=254),
        fastrand::u8(..),
        fastrand::u8(2..=254),
    ))
}

#[tokio::test]
async fn observes_health_version_certificate_and_jump_clients_with_one_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = sim_config("a", dir.path());
    cfg.jump_clients = 250; // three pages of 100
    let sim = start(cfg).await;
    let p = Arc::new(provider(&sim));

    let o = p.observe().await.unwrap();
    assert!(o.reachable && o.healthy, "{o:?}");
    assert_eq!(o.appliance_id.as_deref(), Some(sim.appliance_id()));
    assert_eq!(o.version.as_deref(), Some("24.3.1"));
    assert_eq!(o.role, FailoverRole::None);
    assert!(o.shared_ips.is_empty());
    assert!(
        o.clock_skew_s.is_some_and(|s| s.abs() <= 2),
        "{:?}",
        o.clock_skew_s
    );
    let state = sim.state();
    let served = state.certificates.iter().find(|c| c.default).unwrap();
    let cert = o.certificate.as_ref().unwrap();
    assert_eq!(cert.leaf_sha256, served.leaf_sha256);
    assert!(cert.trusted);
    assert!(cert.sans.iter().any(|s| s == SITE), "{:?}", cert.sans);
    let jc = o.jump_clients.unwrap();
    assert_eq!(jc.total, 250);
    assert_eq!(jc.needs_update, 0);
    assert_eq!(
        jc.upgraded_online as u32,
        state.jump_clients.upgraded_online
    );

    // 60 more calls, half of them concurrent: still the one token.
    for _ in 0..30 {
        p.check_health().await.unwrap();
    }
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let p = p.clone();
        set.spawn(async move { p.check_health().await.map(|h| h.report.appliances.len()) });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 1);
    }
    let state = sim.state();
    assert_eq!(state.tokens_issued, 1, "one token for all calls");
    assert!(state.tokens_live <= 1);
}

#[tokio::test]
async fn a_token_invalidated_by_the_appliance_is_replaced_once() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(sim_config("a", dir.path())).await;
    let p = provider(&sim);
    p.check_health().await.unwrap();
    // The account holds at most 30 tokens: 30 other clients push ours out.
    for _ in 0..30 {
        provider(&sim).check_health().await.unwrap();
    }
    assert_eq!(sim.state().tokens_issued, 31);
    // Our cached token now gets a 401; the provider fetches one new token and succeeds.
    p.check_health().await.unwrap();
    p.check_health().await.unwrap();
    assert_eq!(sim.state().tokens_issued, 32);
}

#[tokio::test]
async fn wrong_secret_is_an_auth_error_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(sim_config("a", dir.path())).await;
    let p = BeyondTrustAppliance::new(config_for(&sim, "definitely-wrong-secret")).unwrap();
    let e = p.observe().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert!(!e.message.contains("definitely-wrong-secret"), "{e}");
    assert!(e.message.contains("client_id"), "{e}");
}

#[tokio::test]
async fn tls_failures_say_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(sim_config("a", dir.path())).await;

    // Not trusted: the system roots do not know the simulator's CA.
    let mut c = config_for(&sim, SECRET);
    c.ca_file = None;
    let e = BeyondTrustAppliance::new(c)
        .unwrap()
        .observe()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(e.message.contains("not trusted"), "{e}");

    // Hostname mismatch: the certificate is for the site, not for another name.
    let mut c = config_for(&sim, SECRET);
    c.site_hostname = Some("other.example.test".into());
    let e = BeyondTrustAppliance::new(c)
        .unwrap()
        .observe()
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(e.message.contains("hostname mismatch"), "{e}");

    // Expired.
    let dir2 = tempfile::tempdir().unwrap();
    let mut cfg = sim_config("old", dir2.path());
    cfg.cert_valid_days = -2;
    let expired = start(cfg).await;
    let e = provider(&expired).inspect_certificate().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    assert!(e.message.contains("expired"), "{e}");
}

#[tokio::test]
async fn backup_is_saved_with_the_simulators_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let sim = start(sim_config("a", dir.path())).await;
    let p = provider(&sim);
    let info = p.backup(out.path(), "change-a").await.unwrap();
    let state = sim.state();
    assert_eq!(state.backups_served, 1);
    assert_eq!(state.backup_sha256.as_deref(), Some(info.sha256.as_str()));
    assert_eq!(std::fs::metadata(&info.path).unwrap().len(), info.bytes);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&info.path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let log = serde_json::to_string(&state.actions).unwrap();
    assert!(log.contains("\"password_protected\":true"), "{log}");
    assert!(!log.contains(BACKUP_PASSWORD));
}

#[tokio::test]
async fn transient_5xx_on_reads_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start(sim_config("a", dir.path())).await;
    let mut c = config_for(&sim, SECRET);
    c.retry = RetryPolicy {
        attempts: 8,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    let p = BeyondTrustAppliance::new(c).unwrap();
    p.check_health().await.unwrap();
    sim.set_fault("http-5xx=0.5".parse().unwrap());
    // Each read gets 8 attempts: a call fails only if all 8 get a 500 (0.5^8 ≈ 0.4 %), so at
    // least 17 of 20 succeed except with negligible probability; without retries about 10 would.
    let mut ok = 0;
    for _ in 0..20 {
        match p.check_health().await {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.kind, ErrorKind::Transient, "{e}"),
        }
    }
    assert!(ok >= 17, "only {ok}/20 reads succeeded with retries");
    // A state change is not retried: with every answer a 500 it reports the failure (and
    // the simulator performed nothing).
    sim.set_fault("http-5xx=1".parse().unwrap());
    let before = sim.state().actions.len();
    let e = p
        .set_failover_role(FailoverRole::Primary, false)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert_eq!(sim.state().actions.len(), before);
}

#[tokio::test]
async fn failover_pair_operator_steps_via_sim_are_observed_via_the_vendor_api() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = sim_config("a", dir.path());
    ca.key = Some("inter-appliance-key-not-real".into());
    ca.update_to = Some("25.1.3".into());
    ca.jump_clients = 10;
    let mut cb = sim_config("b", dir.path());
    cb.key = Some("inter-appliance-key-not-real".into());
    cb.update_to = Some("25.1.3".into());
    let a = start(ca).await;
    let b = start(cb).await;
    let (pa, pb) = (provider(&a), provider(&b));
    let op = bridge(&[&a, &b], &["a", "b"]);

    // failover.keys, failover.establish (a primary, b backup)
    op.perform(&task("failover.keys", "a", OperatorAction::ConfirmKeys))
        .await
        .unwrap();
    op.perform(&task(
        "failover.establish",
        "a",
        OperatorAction::EstablishFailover {
            backup_address: b.addr().ip().to_string(),
            peer_port: 443,
        },
    ))
    .await
    .unwrap();
    observe_until(&pa, "a primary", |o| o.role == FailoverRole::Primary).await;
    observe_until(&pb, "b backup", |o| o.role == FailoverRole::Backup).await;

    // failover.resync: the first sync after establishing completes on its own.
    observe_until(&pa, "first sync done", |o| o.last_sync_unix.is_some()).await;

    // failover.sync: last_data_sync_time advances and the status is reported.
    // Timestamps have one-second resolution: start the step in a later second than the last
    // sync, so "advanced" is observable.
    let before = pa.observe().await.unwrap().last_sync_unix.unwrap();
    eventually(Duration::from_secs(3), "next second", || async {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        (now > before).then_some(())
    })
    .await;
    op.perform(&task("failover.sync", "a", OperatorAction::SyncNow))
        .await
        .unwrap();
    let synced = observe_until(&pa, "sync time advanced", |o| {
        o.last_sync_unix.is_some_and(|t| t > before)
    })
    .await;
    assert!(synced.last_sync_status.is_some());

    // failover.break: both report role none.
    op.perform(&task("failover.break", "a", OperatorAction::BreakFailover))
        .await
        .unwrap();
    observe_until(&pa, "a none", |o| o.role == FailoverRole::None).await;
    observe_until(&pb, "b none", |o| o.role == FailoverRole::None).await;

    // b.install: b goes away, comes back with the target version.
    op.perform(&task(
        "b.install",
        "b",
        OperatorAction::Install {
            packages: vec!["base-7.2.1".into(), "pra-25.1.3".into()],
            version: "25.1.3".into(),
        },
    ))
    .await
    .unwrap();
    let up = observe_until(&pb, "b upgraded", |o| {
        o.reachable && o.version.as_deref() == Some("25.1.3")
    })
    .await;
    assert!(up.healthy);
    assert_eq!(
        pa.observe().await.unwrap().version.as_deref(),
        Some("24.3.1")
    );

    // switch.to-b (shared IP): disable on a (not enabled), enable on b → b reports it.
    let vip = unique_loopback();
    op.perform(&task(
        "switch.to-b",
        "a",
        OperatorAction::SharedIp {
            address: vip.to_string(),
            enabled: false,
        },
    ))
    .await
    .unwrap();
    op.perform(&task(
        "switch.to-b",
        "b",
        OperatorAction::SharedIp {
            address: vip.to_string(),
            enabled: true,
        },
    ))
    .await
    .unwrap();
    // switch.verify-b: through the shared IP the site now answers as b.
    let mut via_vip = config_for(&b, SECRET);
    via_vip.address = vip.to_string();
    let via_vip = BeyondTrustAppliance::new(via_vip).unwrap();
    let o = via_vip.observe().await.unwrap();
    assert_eq!(o.appliance_id.as_deref(), Some(b.appliance_id()));

    // a.install (second window), then re-establish with b primary.
    op.perform(&task(
        "a.install",
        "a",
        OperatorAction::Install {
            packages: vec![],
            version: "25.1.3".into(),
        },
    ))
    .await
    .unwrap();
    observe_until(&pa, "a upgraded", |o| {
        o.reachable && o.version.as_deref() == Some("25.1.3")
    })
    .await;
    // Re-establish with b primary, then promote a back through the vendor API.
    op.perform(&task("failover.keys", "b", OperatorAction::ConfirmKeys))
        .await
        .unwrap();
    op.perform(&task(
        "failover.establish",
        "b",
        OperatorAction::EstablishFailover {
            backup_address: a.addr().ip().to_string(),
            peer_port: 443,
        },
    ))
    .await
    .unwrap();
    // In a relationship, check_health lists the enabled shared IP.
    let o = observe_until(&pb, "b primary", |o| o.role == FailoverRole::Primary).await;
    assert_eq!(o.shared_ips, vec![vip.to_string()]);
    pa.set_failover_role(FailoverRole::Primary, false)
        .await
        .unwrap();
    observe_until(&pa, "a promoted", |o| o.role == FailoverRole::Primary).await;
    observe_until(&pb, "b demoted", |o| o.role == FailoverRole::Backup).await;

    // Steps no vendor API can observe: the simulator's state shows them done.
    op.perform(&task("backup.vault-key", "a", OperatorAction::VaultKey))
        .await
        .unwrap();
    op.perform(&task(
        "clients.throttle",
        "a",
        OperatorAction::ClientThrottle {
            max_concurrent_upgrades: 7,
        },
    ))
    .await
    .unwrap();
    op.perform(&task(
        "clients.followup",
        "a",
        OperatorAction::ClientFollowup,
    ))
    .await
    .unwrap();
    let st = a.state();
    assert!(st.vault_key_backed_up);
    assert_eq!(st.jump_clients.throttle, 7);
    assert!(st.actions.iter().any(|x| x.action == "clients.followup"));

    // Unknown appliance names are refused, not guessed.
    let e = op
        .perform(&task("x", "zz", OperatorAction::VaultKey))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn migration_operator_steps_via_sim_are_observed_via_the_vendor_api() {
    let dir = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let old = start(sim_config("old", dir.path())).await;
    // The new appliance starts with its own (factory) API account.
    let mut cn = sim_config("new", dir.path());
    cn.client_secret = "factory-account-secret-not-real".into();
    let new = start(cn).await;
    let (p_old, p_new) = (provider(&old), provider(&new));
    let op = bridge(&[&old, &new], &["old", "new"]);

    // Before the restore, the old API account does not exist on new.
    assert_eq!(p_new.observe().await.unwrap_err().kind, ErrorKind::Auth);

    // certs.export / certs.import / certs.default: new serves old's certificate.
    let old_fp = p_old.inspect_certificate().await.unwrap().leaf_sha256;
    let mut c = config_for(&new, "factory-account-secret-not-real");
    c.count_jump_clients = false;
    let new_fp_before = BeyondTrustAppliance::new(c)
        .unwrap()
        .inspect_certificate()
        .await
        .unwrap()
        .leaf_sha256;
    assert_ne!(old_fp, new_fp_before);
    let exports = tempfile::tempdir().unwrap();
    op.perform(&task(
        "certs.export",
        "old",
        OperatorAction::ExportCertificate {
            directory: exports.path().to_owned(),
        },
    ))
    .await
    .unwrap();
    // The export is saved where a person saves it, and its leaf is the served certificate.
    let saved = std::fs::read(exports.path().join("old-certificate.pem")).unwrap();
    assert_eq!(
        swing_engine::apply::exported::leaf_sha256(&saved).unwrap(),
        old_fp
    );
    assert!(
        !String::from_utf8_lossy(&saved).contains("PRIVATE KEY"),
        "the saved export holds no private key"
    );
    op.perform(&task(
        "certs.import",
        "new",
        OperatorAction::ImportCertificate {
            from_appliance: "old".into(),
        },
    ))
    .await
    .unwrap();
    op.perform(&task(
        "certs.default",
        "new",
        OperatorAction::DefaultCertificate,
    ))
    .await
    .unwrap();
    let served = eventually(
        Duration::from_secs(10),
        "new serves old's certificate",
        || async {
            p_new
                .inspect_certificate()
                .await
                .ok()
                .filter(|c| c.leaf_sha256 == old_fp)
        },
    )
    .await;
    assert_eq!(served.leaf_sha256, old_fp);

    // backup.config on old, new.restore: the restored API account authenticates on new.
    let backup = p_old.backup(out.path(), "migration").await.unwrap();
    op.perform(&task(
        "new.restore",
        "new",
        OperatorAction::RestoreBackup {
            backup_path: backup.path.clone(),
        },
    ))
    .await
    .unwrap();
    let o = p_new.observe().await.unwrap();
    assert_eq!(o.appliance_id.as_deref(), Some(new.appliance_id()));
    assert!(o.healthy);

    // old.decommission: factory reset and power off → old no longer answers.
    op.perform(&task(
        "old.decommission",
        "old",
        OperatorAction::FactoryReset,
    ))
    .await
    .unwrap();
    observe_until(&p_old, "old gone", |o| !o.reachable).await;
}

#[tokio::test]
async fn appliance_conformance_suite_passes_against_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut cfg = sim_config("a", dir.path());
    cfg.jump_clients = 3;
    let sim = start(cfg).await;
    let p = provider(&sim);
    let expect = ApplianceExpectations {
        version: Some("24.3.1".into()),
        role: Some(FailoverRole::None),
        appliance_id: Some(sim.appliance_id().into()),
        secrets: vec![SECRET.into(), BACKUP_PASSWORD.into()],
    };
    let failures = run_all(&p, scratch.path(), &expect).await;
    assert!(failures.is_empty(), "conformance failures: {failures:#?}");
}

#[tokio::test]
async fn the_sim_bridge_tells_whether_an_install_reached_the_appliance() {
    let ca = tempfile::tempdir().unwrap();
    let mut cfg = sim_config("b", ca.path());
    cfg.update_to = Some("25.1.3".into());
    let sim = start(cfg).await;
    let b = bridge(&[&sim], &["b"]);
    let install = task(
        "b.install",
        "b",
        OperatorAction::Install {
            packages: vec![],
            version: "25.1.3".into(),
        },
    );
    // Nothing sent yet: the bridge knows it did not arrive.
    assert_eq!(b.reached(&install).await.unwrap(), Some(false));
    // Other actions show in what the engine observes; the bridge does not answer for them.
    let other = task("failover.break", "b", OperatorAction::BreakFailover);
    assert_eq!(b.reached(&other).await.unwrap(), None);
    b.perform(&install).await.unwrap();
    // Installing (refusing connections: cannot tell) or done: never "did not arrive".
    let seen = eventually(Duration::from_secs(30), "the install finishes", || async {
        let done = sim.state().version == "25.1.3";
        let r = b.reached(&install).await.unwrap();
        assert_ne!(
            r,
            Some(false),
            "an install that started is reported as not arrived"
        );
        done.then_some(r)
    })
    .await;
    assert_eq!(seen, Some(true));
    sim.shutdown().await;
}
