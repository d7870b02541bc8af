//! TLS is always verified: the production appliance client
//! (`swing_providers::beyondtrust`) against an in-process simulator refuses an untrusted CA
//! (the CA of ANOTHER simulator), an expired certificate (the sim's `cert-expiring` knob,
//! switched at run time) and a hostname mismatch (a name not in the SANs) — on every call it
//! makes, with `ErrorKind::Tls` and words naming the cause, and without writing a backup
//! file. The real `swing apply` stops at the health check with the same words. And no source
//! file contains a way to switch verification off.
//!
//! Owns: these refusal checks and the source scan. Must not: send traffic anywhere but
//! 127.0.0.0/8, or contain a verification bypass itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use swing_engine::provider::{ApplianceProvider, ErrorKind, ProviderError};
use swing_providers::beyondtrust::{BeyondTrustAppliance, BeyondTrustConfig, RetryPolicy};
use swing_schema::SecretValue;
use swing_sim::{Fault, SimConfig, SimHandle, Simulator};

const SITE: &str = "access.example.test";
const ID: &str = "swing-tls-test";
const SECRET: &str = "tls-test-secret-not-real";

async fn start_sim(ca_dir: &Path) -> SimHandle {
    let mut c = SimConfig::new("a", ca_dir);
    c.site = SITE.into();
    c.client_id = ID.into();
    c.client_secret = SECRET.into();
    Simulator::start(c).await.expect("simulator starts")
}

fn config(sim: &SimHandle, ca_file: PathBuf) -> BeyondTrustConfig {
    let mut c = BeyondTrustConfig::new(sim.addr().ip().to_string(), ID, SecretValue::new(SECRET));
    c.port = sim.addr().port();
    c.site_hostname = Some(SITE.into());
    c.ca_file = Some(ca_file);
    c.retry = RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    c
}

/// Every call the provider makes must fail with a TLS error containing one of `words`, and a
/// refused backup must leave no file behind.
async fn every_call_refused(cfg: BeyondTrustConfig, words: &[&str]) {
    let p = BeyondTrustAppliance::new(cfg).expect("the provider builds without contacting");
    let out = tempfile::tempdir().unwrap();
    let check = |what: &str, e: ProviderError| {
        assert_eq!(e.kind, ErrorKind::Tls, "{what}: {e}");
        let m = e.message.to_lowercase();
        assert!(
            words.iter().any(|w| m.contains(w)),
            "{what}: expected one of {words:?} in {:?}",
            e.message
        );
        assert!(!e.message.contains(SECRET), "{what} leaks the secret");
    };
    check("check_health", p.check_health().await.unwrap_err());
    check("observe", p.observe().await.unwrap_err());
    check(
        "inspect_certificate",
        p.inspect_certificate().await.unwrap_err(),
    );
    check(
        "backup",
        p.backup(out.path(), "tls-test").await.unwrap_err(),
    );
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "a refused backup left files: {left:?}");
}

#[tokio::test]
async fn the_verified_path_works_so_the_refusals_below_mean_something() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(&dir.path().join("ca")).await;
    let p = BeyondTrustAppliance::new(config(&sim, sim.ca_pem_path())).unwrap();
    let h = p.check_health().await.expect("trusted, valid, right name");
    assert_eq!(h.report.appliances.len(), 1, "{h:?}");
    let cert = p.inspect_certificate().await.unwrap();
    assert!(cert.trusted, "{cert:?}");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(&dir.path().join("ca")).await;
    // A second simulator with its own CA directory: a valid CA, just not this site's.
    let other = start_sim(&dir.path().join("other-ca")).await;
    let other_ca = other.ca_pem_path();
    other.shutdown().await;
    assert_ne!(
        std::fs::read(&other_ca).unwrap(),
        std::fs::read(sim.ca_pem_path()).unwrap()
    );
    every_call_refused(config(&sim, other_ca), &["not trusted", "unknown ca"]).await;
    // Nothing reached the API: no token was issued to an unverified peer.
    assert_eq!(sim.state().backups_served, 0);
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(&dir.path().join("ca")).await;
    let cfg = config(&sim, sim.ca_pem_path());
    // Valid first, then the knob makes the served leaf expired (yesterday).
    BeyondTrustAppliance::new(cfg.clone())
        .unwrap()
        .check_health()
        .await
        .expect("valid before the fault");
    sim.set_fault(Fault::CertExpiring(Some(-1)));
    every_call_refused(cfg.clone(), &["expired"]).await;
    // And trusted again once the certificate is renewed.
    sim.set_fault(Fault::CertExpiring(None));
    BeyondTrustAppliance::new(cfg)
        .unwrap()
        .check_health()
        .await
        .expect("valid after renewal");
}

#[tokio::test]
async fn a_hostname_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sim = start_sim(&dir.path().join("ca")).await;
    // The site name the plan gives is not in the certificate.
    let mut cfg = config(&sim, sim.ca_pem_path());
    cfg.site_hostname = Some("other.example.test".into());
    every_call_refused(cfg, &["hostname mismatch"]).await;
    // Connecting by a name that resolves to the appliance but is not in its SANs.
    let mut cfg = config(&sim, sim.ca_pem_path());
    cfg.address = "localhost".into();
    cfg.site_hostname = None;
    every_call_refused(cfg, &["hostname mismatch"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swing_apply_stops_at_the_health_check_naming_the_untrusted_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let sim = start_sim(&d.join("ca")).await;
    let other = start_sim(&d.join("other-ca")).await;
    other.shutdown().await;
    std::fs::write(d.join("client-secret"), SECRET).unwrap();
    std::fs::write(
        d.join("plan.yaml"),
        format!(
            "version: 1
name: tls-refusal
site: {SITE}
target: {{ version: \"25.1.3\", source: automatic }}
appliances:
  main: {{ address: {ip}, port: {port} }}
backup:
  directory: ./backups
  password: ${{file:./client-secret}}
verify:
  manual: []
providers:
  appliance:
    type: beyondtrust
    client_id: {ID}
    client_secret: ${{file:./client-secret}}
    ca_file: ./other-ca/ca.pem
    operator: prompt
",
            ip = sim.addr().ip(),
            port = sim.addr().port()
        ),
    )
    .unwrap();
    let o = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_swing"))
            .args([
                "apply",
                "plan.yaml",
                "--auto-approve",
                "--state-dir",
                "state",
            ])
            .current_dir(&d)
            .env("XDG_STATE_HOME", swing_testkit::kit::state_home(&d))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("not trusted"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    assert!(!all.contains(SECRET), "{all}");
    assert_eq!(
        sim.state().backups_served,
        0,
        "no backup over an untrusted link"
    );
}

/// Patterns that switch TLS verification off (Rust crates and the usual tools).
const BYPASSES: &[&str] = &[
    "danger_accept_invalid",
    "dangerous()",
    "NoCertificateVerification",
    "NoServerVerification",
    "AcceptAnyCert",
    "InsecureSkipVerify",
    "accept_invalid_hostnames",
    "accept_invalid_certs",
    "set_verify(SslVerifyMode::NONE",
    "SslVerifyMode::NONE",
    "verify_none",
    "curl -k",
    "curl --insecure",
    "wget --no-check-certificate",
    "PYTHONHTTPSVERIFY=0",
    "verify=False",
];

fn scan(dir: &Path, hits: &mut Vec<String>, files: &mut usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "target" || name.starts_with('.') {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            scan(&p, hits, files);
            continue;
        }
        let scanned = ["rs", "toml", "sh", "py", "yaml", "yml"]
            .iter()
            .any(|x| p.extension().and_then(|e| e.to_str()) == Some(x));
        if !scanned {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        *files += 1;
        for (n, line) in text.lines().enumerate() {
            if BYPASSES.iter().any(|pat| line.contains(pat)) {
                hits.push(format!("{}:{}: {}", p.display(), n + 1, line.trim()));
            }
        }
    }
}

#[test]
fn no_source_file_disables_certificate_verification() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut hits = Vec::new();
    let mut files = 0;
    for d in [
        "src",
        "engine",
        "providers",
        "sim",
        "schema",
        "scripts",
        "plans",
    ] {
        scan(&root.join(d), &mut hits, &mut files);
    }
    assert!(files > 50, "only {files} files scanned: wrong root?");
    assert!(
        hits.is_empty(),
        "TLS verification must never be disabled:\n{}",
        hits.join("\n")
    );
    // The scanner itself finds a bypass when there is one.
    let planted = tempfile::tempdir().unwrap();
    std::fs::write(
        planted.path().join("bad.rs"),
        "let c = reqwest::Client::builder().danger_accept_invalid_certs(true);",
    )
    .unwrap();
    let mut found = Vec::new();
    let mut n = 0;
    scan(planted.path(), &mut found, &mut n);
    assert_eq!(found.len(), 1, "{found:?}");
}
