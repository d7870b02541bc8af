//! `swing doctor` against the labs: every example lab (simulators, a real BIND for the dns
//! scenarios) is ready, and each blocker a site can have days before its window — a wrong
//! TSIG key, an API account without `perm_backup`, a certificate expiring before the last
//! window, a backup directory that cannot be written — is named with its fix and exit 1.
//! The doctor changes nothing: the simulators record no action and the zone's serial stays.
//! `--capture` writes the raw answers without the client secret (and, when asked, without
//! host names). The real `swing` binary throughout.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use swing_schema::SecretValue;
use swing_testkit::kit::{CLIENT_SECRET, DnsSetup, Lab, LabOptions, SITE, Scenario};
use swing_testkit::named::{self, Named};

async fn swing(dir: &Path, args: &[&str]) -> Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("XDG_STATE_HOME", swing_testkit::kit::state_home(dir))
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), c.output())
        .await
        .expect("swing doctor finished")
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A started lab with its plan written (and BIND for the dns scenarios).
struct Site {
    lab: Lab,
    named: Option<Named>,
    plan: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn site(scenario: Scenario, options: LabOptions, tsig_secret: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(scenario, dir.path(), options).await.unwrap();
    let (named, dns) = if scenario.uses_dns() {
        let first = lab.first_address().unwrap().to_string();
        let n = Named::start(&[("access", 3, "A", &first)]);
        let dns = DnsSetup {
            server: n.addr,
            key_name: named::KEY_NAME.into(),
            secret: SecretValue::new(tsig_secret),
        };
        (Some(n), Some(dns))
    } else {
        (None, None)
    };
    let plan = lab.write_plan(dns.as_ref(), None).unwrap();
    Site {
        lab,
        named,
        plan,
        _dir: dir,
    }
}

/// Every simulator's recorded actions (a doctor must add none).
fn actions(lab: &Lab) -> Vec<(String, usize)> {
    lab.sims
        .iter()
        .map(|(n, s)| (n.clone(), s.state().actions.len()))
        .collect()
}

fn soa_serial(n: &Named) -> String {
    n.dig("example.test", "SOA")
        .first()
        .map(|a| a.value.split_whitespace().nth(2).unwrap_or("").to_owned())
        .unwrap_or_default()
}

/// `swing doctor --format json` on the site: (exit code, the report), asserting nothing changed.
async fn doctor(s: &Site, extra: &[&str]) -> (Option<i32>, Value, String) {
    let before = actions(&s.lab);
    let serial = s.named.as_ref().map(soa_serial);
    let mut args = vec!["doctor", "--format", "json"];
    args.extend_from_slice(extra);
    args.push(s.plan.to_str().unwrap());
    let o = swing(&s.lab.dir, &args).await;
    let shown = text(&o);
    assert_eq!(
        actions(&s.lab),
        before,
        "the doctor changed a simulator\n{shown}"
    );
    if let Some(n) = &s.named {
        assert_eq!(Some(soa_serial(n)), serial, "the zone changed\n{shown}");
    }
    let reports: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("doctor's JSON: {e}\n{shown}"));
    (o.status.code(), reports[0].clone(), shown)
}

fn checks_with<'a>(r: &'a Value, status: &str) -> Vec<&'a Value> {
    r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == status)
        .collect()
}

/// The one blocker of the report, asserting it is the only one and carries a fix.
fn only_blocker<'a>(r: &'a Value, shown: &str) -> &'a Value {
    let b = checks_with(r, "blocker");
    assert_eq!(b.len(), 1, "exactly one blocker expected\n{shown}");
    assert!(
        b[0]["fix"].as_str().is_some_and(|f| !f.is_empty()),
        "the blocker names its fix\n{shown}"
    );
    b[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_lab_is_ready_and_nothing_changes() {
    for scenario in Scenario::ALL {
        if scenario == Scenario::AsyncNat {
            continue; // needs namespaces: see nat_gateway_is_checked_without_a_swing
        }
        let s = site(scenario, LabOptions::default(), named::KEY_SECRET).await;
        let (code, r, shown) = doctor(&s, &[]).await;
        assert_eq!(code, Some(0), "{}: {shown}", scenario.name());
        assert_eq!(r["ready"], true, "{shown}");
        assert!(checks_with(&r, "blocker").is_empty(), "{shown}");
        let names: Vec<String> = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c["subject"].as_str().unwrap(),
                    c["check"].as_str().unwrap()
                )
            })
            .collect();
        for (name, _) in &s.lab.sims {
            for check in ["api-token", "tls", "api-version", "jump-clients"] {
                let want = format!("appliance {name} {check}");
                assert!(
                    names.contains(&want),
                    "{}: no {want}\n{shown}",
                    scenario.name()
                );
            }
        }
        // The API account and the clock are checked where the plan checks them (`X.api`,
        // `X.clock`: every appliance outside a migration, procedures.md).
        if scenario != Scenario::Migration {
            for (name, _) in &s.lab.sims {
                for check in ["api-permissions", "clock"] {
                    let want = format!("appliance {name} {check}");
                    assert!(
                        names.contains(&want),
                        "{}: no {want}
{shown}",
                        scenario.name()
                    );
                }
            }
        }
        assert!(names.contains(&"backup directory".to_owned()), "{shown}");
        assert!(names.contains(&"windows next-window".to_owned()), "{shown}");
        if scenario.uses_dns() {
            assert!(names.contains(&"dns lab-dns record".to_owned()), "{shown}");
            let tsig = r["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["check"] == "tsig-update")
                .unwrap_or_else(|| panic!("no tsig-update check\n{shown}"));
            assert_eq!(tsig["status"], "ok", "{shown}");
        }
        s.lab.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_tsig_key_is_named_with_its_fix() {
    let s = site(
        Scenario::AsyncDns,
        LabOptions::default(),
        named::WRONG_SECRET,
    )
    .await;
    let (code, r, shown) = doctor(&s, &[]).await;
    assert_eq!(code, Some(1), "{shown}");
    assert_eq!(r["ready"], false);
    let b = checks_with(&r, "blocker");
    assert!(!b.is_empty(), "{shown}");
    assert!(
        b.iter().all(|c| c["subject"] == "dns lab-dns"),
        "only the DNS checks block\n{shown}"
    );
    assert!(
        b.iter()
            .any(|c| c["detail"].as_str().unwrap().contains("TSIG")
                && c["fix"].as_str().is_some_and(|f| !f.is_empty())),
        "the TSIG refusal is named with its fix\n{shown}"
    );
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_account_without_perm_backup_is_named_with_its_fix() {
    let options = LabOptions {
        permissions: Some("perm_backup=0".into()),
        ..LabOptions::default()
    };
    let s = site(Scenario::SingleAutomatic, options, named::KEY_SECRET).await;
    let (code, r, shown) = doctor(&s, &[]).await;
    assert_eq!(code, Some(1), "{shown}");
    let b = only_blocker(&r, &shown);
    assert_eq!(b["check"], "api-permissions", "{shown}");
    assert!(
        b["detail"].as_str().unwrap().contains("perm_backup"),
        "{shown}"
    );
    assert!(
        b["fix"].as_str().unwrap().contains("API Configuration"),
        "{shown}"
    );
    s.lab.shutdown().await;
}

/// Adds `windows` to a lab plan: one starting in `from_days` days, one ending in `to_days`.
fn with_windows(plan: &Path, from_days: i64, to_days: i64) {
    let now = swing_engine::time::now_ms();
    let w = |d: i64| swing_engine::time::rfc3339_ms(now + d * 86_400_000);
    let mut text = std::fs::read_to_string(plan).unwrap();
    if let (Some(a), Some(b)) = (text.find("windows:\n"), text.find("policy:\n")) {
        text.replace_range(a..b, "");
    }
    let windows = format!(
        "windows:\n  - {{ start: {}, end: {} }}\n  - {{ name: last, start: {}, end: {} }}\npolicy:\n",
        w(from_days),
        w(from_days + 1),
        w(to_days - 1),
        w(to_days)
    );
    std::fs::write(plan, text.replacen("policy:\n", &windows, 1)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_expiring_before_the_last_window_is_named_with_its_fix() {
    let s = site(
        Scenario::SingleAutomatic,
        LabOptions::default(),
        named::KEY_SECRET,
    )
    .await;
    // The simulator's certificate is valid for 365 days; windows in 3 days are fine …
    with_windows(&s.plan, 3, 10);
    let (code, r, shown) = doctor(&s, &[]).await;
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        checks_with(&r, "ok")
            .iter()
            .any(|c| c["check"] == "next-window"
                && c["detail"].as_str().unwrap().contains("window-1")),
        "an unnamed window is window-1\n{shown}"
    );
    // … a last window in 370 days is after it expires.
    with_windows(&s.plan, 300, 370);
    let (code, r, shown) = doctor(&s, &[]).await;
    assert_eq!(code, Some(1), "{shown}");
    let b = only_blocker(&r, &shown);
    let subject = format!("appliance {}", s.lab.sims[0].0);
    assert_eq!(
        (b["subject"].as_str(), b["check"].as_str()),
        (Some(subject.as_str()), Some("tls")),
        "{shown}"
    );
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("before the end of the last window"),
        "{shown}"
    );
    assert!(
        b["fix"].as_str().unwrap().contains("Certificates"),
        "{shown}"
    );
    // Windows 340–350 days out: valid throughout, but fewer than the plan's 30 days left when
    // the first opens — the apply's preflight would refuse, so the doctor does now.
    with_windows(&s.plan, 340, 350);
    let (code, r, shown) = doctor(&s, &[]).await;
    assert_eq!(code, Some(1), "{shown}");
    let b = only_blocker(&r, &shown);
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("policy.certificate_min_days"),
        "{shown}"
    );
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_backup_directory_is_named_with_its_fix() {
    let s = site(
        Scenario::SingleAutomatic,
        LabOptions::default(),
        named::KEY_SECRET,
    )
    .await;
    // Not a directory: unwritable for every user, root included.
    let backups = s.lab.dir.join("backups");
    std::fs::remove_dir_all(&backups).unwrap();
    std::fs::write(&backups, "a file where the directory should be").unwrap();
    let (code, r, shown) = doctor(&s, &[]).await;
    assert_eq!(code, Some(1), "{shown}");
    let b = only_blocker(&r, &shown);
    assert_eq!(
        (b["subject"].as_str(), b["check"].as_str()),
        (Some("backup"), Some("directory")),
        "{shown}"
    );
    assert!(
        b["fix"].as_str().unwrap().contains("backup.directory"),
        "{shown}"
    );
    assert_eq!(
        std::fs::read_to_string(&backups).unwrap(),
        "a file where the directory should be",
        "nothing was written"
    );
    // A directory others may write to is refused by the apply (chmod 700): so by the doctor.
    std::fs::remove_file(&backups).unwrap();
    std::fs::create_dir(&backups).unwrap();
    std::fs::set_permissions(
        &backups,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o777),
    )
    .unwrap();
    let (code, r, shown) = doctor(&s, &[]).await;
    assert_eq!(code, Some(1), "{shown}");
    let b = only_blocker(&r, &shown);
    assert!(
        b["detail"].as_str().unwrap().contains("chmod 700"),
        "{shown}"
    );
    // The text format names it too.
    let o = swing(&s.lab.dir, &["doctor", s.plan.to_str().unwrap()]).await;
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        t.contains("BLOCKER") && t.contains("fix: ") && t.contains("NOT READY"),
        "{t}"
    );
    s.lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_writes_raw_answers_without_secrets_or_host_names() {
    let s = site(
        Scenario::SingleAutomatic,
        LabOptions::default(),
        named::KEY_SECRET,
    )
    .await;
    let out = s.lab.dir.join("capture");
    let out_s = out.to_str().unwrap().to_owned();
    let (code, _, shown) = doctor(&s, &["--capture", &out_s, "--redact-hostnames"]).await;
    assert_eq!(code, Some(0), "{shown}");
    let mut files = Vec::new();
    for e in walk(&out) {
        let bytes = std::fs::read(&e).unwrap();
        let t = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(
            !t.contains(&CLIENT_SECRET.to_lowercase()),
            "{}: the client secret",
            e.display()
        );
        assert!(
            !t.contains(&SITE.to_lowercase()),
            "{}: the site name\n{t}",
            e.display()
        );
        let ip = s.lab.address(&s.lab.sims[0].0).unwrap().to_string();
        assert!(!t.contains(&ip), "{}: the appliance address", e.display());
        files.push(e.file_name().unwrap().to_string_lossy().into_owned());
    }
    files.sort();
    assert_eq!(
        files,
        [
            "check_health.xml",
            "get_api_info.xml",
            "index.json",
            "jump-client.json"
        ],
        "{shown}"
    );
    let health = walk(&out)
        .into_iter()
        .find(|p| p.ends_with("check_health.xml"))
        .unwrap();
    assert!(
        std::fs::read_to_string(health)
            .unwrap()
            .contains("<health_check")
            || s.lab.options.dialect != swing_sim::Dialect::Bomgar,
        "the raw recorded-shape answer is kept"
    );
    s.lab.shutdown().await;
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
