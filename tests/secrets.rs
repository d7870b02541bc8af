//! The secret canary: a unique value put into EVERY secret every example plan references
//! (each `${env:NAME}` gets it in the environment, each `${file:PATH}` gets it in the file),
//! then everything the real `swing` binary offers runs — validate, plan in every format,
//! plan --out + show, graph, a live plan and `show --refresh`, and apply against an in-process simulator whose API account
//! secret and backup password are canaries — and the canary must appear nowhere: not in
//! stdout, stderr, saved plans, journals, locks, backup metadata, any file the runs left in
//! their directories, nor in the committed snapshots. Literal secrets in a plan are refused
//! without being echoed.
//!
//! Owns: these leak checks. Must not: reach anything but loopback, or hold a real secret.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use swing_sim::{SimConfig, Simulator};

/// Every canary starts with this; a leak of any of them contains it.
const CANARY: &str = "CANARY-7f3a9c";

fn canary_for(what: &str) -> String {
    format!("{CANARY}-{what}-e41b")
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `${scheme:VALUE}` reference in `text`, as (scheme, value).
fn references(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find('}') else { break };
        if let Some((scheme, value)) = rest[..end].split_once(':') {
            out.push((scheme.to_string(), value.to_string()));
        }
        rest = &rest[end..];
    }
    out
}

/// Collects every output and every file under the given directories and fails naming
/// each place the canary shows up.
#[derive(Default)]
struct LeakCheck {
    places: Vec<(String, Vec<u8>)>,
    /// Files that hold the canary on purpose (the secret files themselves).
    allowed: BTreeSet<PathBuf>,
}

impl LeakCheck {
    fn output(&mut self, label: &str, o: &Output) {
        self.places
            .push((format!("{label}: stdout"), o.stdout.clone()));
        self.places
            .push((format!("{label}: stderr"), o.stderr.clone()));
    }

    fn tree(&mut self, root: &Path) {
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let Ok(ft) = e.file_type() else { continue };
                if ft.is_dir() {
                    stack.push(p);
                } else if ft.is_file() && !self.allowed.contains(&p) {
                    let data = std::fs::read(&p).unwrap_or_default();
                    self.places.push((p.display().to_string(), data));
                }
            }
        }
    }

    /// Number of places looked at (so a test can show it checked something).
    fn assert_clean(&self) -> usize {
        let needle = CANARY.as_bytes();
        let leaks: Vec<&str> = self
            .places
            .iter()
            .filter(|(_, data)| data.windows(needle.len()).any(|w| w == needle))
            .map(|(l, _)| l.as_str())
            .collect();
        assert!(leaks.is_empty(), "the canary leaked into: {leaks:#?}");
        self.places.len()
    }
}

/// A copy of plans/examples in a temp dir with the canary in every file a plan references,
/// and the environment that gives every `${env:NAME}` the canary.
struct Examples {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    secret_files: BTreeSet<PathBuf>,
    plans: Vec<PathBuf>,
}

fn examples_with_canaries() -> Examples {
    let dir = tempfile::tempdir().unwrap();
    let src = manifest_dir().join("plans/examples");
    let mut env = BTreeSet::new();
    let mut secret_files = BTreeSet::new();
    let mut plans = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let dest = dir.path().join(p.file_name().unwrap());
        std::fs::write(&dest, &text).unwrap();
        plans.push(dest);
        for (scheme, value) in references(&text) {
            match scheme.as_str() {
                "env" => {
                    env.insert(value);
                }
                "file" => {
                    let f = dir.path().join(&value);
                    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                    std::fs::write(&f, canary_for("file")).unwrap();
                    secret_files.insert(f);
                }
                other => panic!("example {} uses an unknown scheme {other}", p.display()),
            }
        }
    }
    plans.sort();
    assert!(
        plans.len() >= 8,
        "expected every example plan, found {plans:?}"
    );
    assert!(
        env.contains("BT_CLIENT_SECRET")
            && env.contains("SWING_BACKUP_PASSWORD")
            && env.contains("SWING_TSIG_SECRET"),
        "the examples should reference the usual secrets: {env:?}"
    );
    assert!(!secret_files.is_empty(), "no ${{file:..}} reference found");
    let env = env
        .into_iter()
        .map(|name| {
            let v = canary_for(&name);
            (name, v)
        })
        .collect();
    Examples {
        dir,
        env,
        secret_files,
        plans,
    }
}

fn swing(cwd: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_swing"));
    c.args(args)
        .current_dir(cwd)
        .env("XDG_STATE_HOME", swing_testkit::kit::state_home(cwd))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn the_canary_never_leaves_the_example_plans_offline() {
    let ex = examples_with_canaries();
    let d = ex.dir.path();
    let mut check = LeakCheck {
        allowed: ex.secret_files.clone(),
        ..LeakCheck::default()
    };
    let mut run = |label: String, args: &[&str], want: i32| {
        let o = swing(d, &ex.env, args);
        assert_eq!(
            o.status.code(),
            Some(want),
            "{label}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        check.output(&label, &o);
    };
    for fmt in ["human", "plain", "json"] {
        run(
            format!("validate {fmt}"),
            &["validate", ".", "--format", fmt],
            0,
        );
    }
    for fmt in ["text", "markdown", "json"] {
        run(
            format!("plan {fmt}"),
            &["plan", ".", "--offline", "--format", fmt],
            0,
        );
    }
    for plan in &ex.plans {
        let name = plan.file_name().unwrap().to_str().unwrap();
        let saved = format!("saved/{name}.plan.json");
        std::fs::create_dir_all(d.join("saved")).unwrap();
        run(
            format!("plan --out {name}"),
            &["plan", name, "--offline", "--out", &saved],
            0,
        );
        for fmt in ["text", "markdown", "json", "dot", "mermaid", "gantt"] {
            run(
                format!("show {fmt} {name}"),
                &["show", &saved, "--format", fmt],
                0,
            );
        }
        for fmt in ["dot", "mermaid", "gantt"] {
            run(
                format!("graph {fmt} {name}"),
                &["graph", name, "--format", fmt],
                0,
            );
        }
    }
    check.tree(d);
    let looked = check.assert_clean();
    assert!(looked > 100, "only {looked} places checked");
}

#[test]
fn a_literal_secret_is_refused_without_being_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let src =
        std::fs::read_to_string(manifest_dir().join("plans/invalid/literal-client-secret.yaml"))
            .unwrap();
    let literal = canary_for("literal");
    let typo = canary_for("typo");
    let lit = src.replace(
        "    client_secret: 9f8e7d6c5b4a",
        &format!("    client_secret: {literal}\n    client_secert: {typo}"),
    );
    assert!(lit.contains(&literal), "fixture changed: {src}");
    // Also the backup password and the TSIG secret written inline, quoted and as a block.
    let lit = lit
        .replace(
            "password: ${env:SWING_BACKUP_PASSWORD}",
            &format!("password: \"{}\"", canary_for("password")),
        )
        .replace(
            "secret: \"${env:SWING_TSIG_SECRET}\"",
            &format!("secret: '{}'", canary_for("tsig")),
        );
    std::fs::write(dir.path().join("plan.yaml"), &lit).unwrap();
    let mut check = LeakCheck::default();
    for fmt in ["human", "plain", "json"] {
        let o = swing(dir.path(), &[], &["validate", "plan.yaml", "--format", fmt]);
        assert_eq!(o.status.code(), Some(1), "validate {fmt} must refuse");
        let all =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(
            all.contains("literal"),
            "validate {fmt} must name the cause:\n{all}"
        );
        check.output(&format!("validate {fmt}"), &o);
    }
    for args in [
        &["plan", "plan.yaml", "--offline"][..],
        &["plan", "plan.yaml", "--offline", "--format", "json"],
        &["graph", "plan.yaml"],
        &[
            "apply",
            "plan.yaml",
            "--state-dir",
            "state",
            "--auto-approve",
        ],
    ] {
        let o = swing(dir.path(), &[], args);
        assert_eq!(o.status.code(), Some(1), "{args:?} must refuse");
        check.output(&format!("{args:?}"), &o);
    }
    // Only the plan itself may hold the literal.
    check.allowed.insert(dir.path().join("plan.yaml"));
    check.tree(dir.path());
    check.assert_clean();
}

#[test]
fn committed_snapshots_hold_no_canary() {
    let root = manifest_dir();
    let mut check = LeakCheck::default();
    let mut dirs = vec![root.join("tests/snapshots")];
    for e in std::fs::read_dir(&root).unwrap().flatten() {
        let snaps = e.path().join("tests/snapshots");
        if snaps.is_dir() {
            dirs.push(snaps);
        }
    }
    for d in &dirs {
        check.tree(d);
    }
    let n = check.assert_clean();
    assert!(n > 0, "no snapshot files found in {dirs:?}");
}

/// The plan of a single-appliance change against `addr` whose secrets are references.
fn sim_plan(addr: std::net::SocketAddr) -> String {
    format!(
        "version: 1
name: canary-single
site: access.example.test
target:
  version: \"25.1.3\"
  source: automatic
  packages: [base-7.2.1, pra-25.1.3]
appliances:
  main: {{ address: {ip}, port: {port} }}
policy:
  jump_clients: {{ online_ratio: 0.95, wait_timeout: 4h }}
backup:
  directory: ./backups
  password: ${{file:./secrets/backup-password}}
  include_reporting_data: true
verify:
  manual: []
providers:
  appliance:
    type: beyondtrust
    client_id: canary-account
    client_secret: ${{env:SWING_CANARY_CLIENT_SECRET}}
    ca_file: ./ca/ca.pem
    operator: prompt
",
        ip = addr.ip(),
        port = addr.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_never_leaves_an_apply_against_the_simulator() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let client_secret = canary_for("client-secret");
    let mut cfg = SimConfig::new("main", d.join("ca"));
    cfg.site = "access.example.test".into();
    cfg.update_to = Some("25.1.3".into());
    cfg.client_id = "canary-account".into();
    cfg.client_secret = client_secret.clone();
    cfg.jump_clients = 5;
    cfg.time_scale = 0.0002; // a 45-minute install takes about half a second
    let sim = Simulator::start(cfg).await.unwrap();
    std::fs::create_dir_all(d.join("secrets")).unwrap();
    // No backups/ directory: backup.config makes it.
    let secret_file = d.join("secrets/backup-password");
    std::fs::write(&secret_file, canary_for("backup-password")).unwrap();
    // A webhook whose URL (a chat hook's, with its token) and signing key are references,
    // aimed at a port nobody listens on: the failed notification is reported, and neither
    // canary with it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let hook_url = format!("http://{closed}/hooks/{}", canary_for("hook-url"));
    let hook_env = [
        ("SWING_CANARY_HOOK_URL".to_string(), hook_url),
        (
            "SWING_CANARY_HOOK_SECRET".to_string(),
            canary_for("hook-secret"),
        ),
    ];
    std::fs::write(
        d.join("plan.yaml"),
        format!(
            "{}notify:\n  - type: webhook\n    url: ${{env:SWING_CANARY_HOOK_URL}}\n    \
             secret: ${{env:SWING_CANARY_HOOK_SECRET}}\n",
            sim_plan(sim.addr())
        ),
    )
    .unwrap();

    let mut check = LeakCheck::default();
    check.allowed.insert(secret_file.clone());
    let run = |env: Vec<(String, String)>, args: Vec<String>| {
        let d = d.clone();
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            swing(&d, &env, &a)
        })
    };
    let mut good_env = vec![(
        "SWING_CANARY_CLIENT_SECRET".to_string(),
        client_secret.clone(),
    )];
    good_env.extend(hook_env.iter().cloned());
    let args = |state: &str| -> Vec<String> {
        [
            "apply",
            "plan.yaml",
            "--auto-approve",
            "--output",
            "json",
            "--state-dir",
            state,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };

    // 1. A wrong secret that is itself a canary: refused as an auth problem, never echoed.
    let wrong_env = || {
        let mut env = vec![(
            "SWING_CANARY_CLIENT_SECRET".to_string(),
            canary_for("wrong-secret"),
        )];
        env.extend(hook_env.iter().cloned());
        env
    };
    let o = tokio::time::timeout(
        Duration::from_secs(120),
        run(wrong_env(), args("state-wrong")),
    )
    .await
    .expect("apply with a wrong secret ends")
    .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "wrong secret must fail\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    check.output("apply with a wrong secret", &o);

    // 1b. A live plan (refresh through the canary account), saved, and shown with a
    //     refresh — text and JSON — with the right and the wrong secret.
    for (label, env) in [("good", good_env.clone()), ("wrong", wrong_env())] {
        let saved = format!("change-{label}.plan");
        for fmt in ["text", "json", "markdown"] {
            let args: Vec<String> = ["plan", "plan.yaml", "--format", fmt, "--out", &saved]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let o = tokio::time::timeout(Duration::from_secs(120), run(env.clone(), args))
                .await
                .expect("plan ends")
                .unwrap();
            if label == "good" {
                assert_eq!(
                    o.status.code(),
                    Some(0),
                    "{}",
                    String::from_utf8_lossy(&o.stderr)
                );
                assert!(!o.stdout.is_empty());
            } else {
                assert_eq!(o.status.code(), Some(1), "a wrong secret observes nothing");
            }
            check.output(&format!("live plan ({label}, {fmt})"), &o);
        }
        if label == "good" {
            let args: Vec<String> = ["show", "--refresh", &saved]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let o = tokio::time::timeout(Duration::from_secs(120), run(env.clone(), args))
                .await
                .expect("show ends")
                .unwrap();
            assert_eq!(o.status.code(), Some(0));
            check.output("show --refresh", &o);
        }
    }

    // 2. The change with JSON progress and `operator: prompt`: every automatic step up to
    //    the first operator step runs (health, clock, TLS, the password-protected backup
    //    through the canary account), then the apply pauses for a person (exit 3).
    let o = tokio::time::timeout(
        Duration::from_secs(180),
        run(good_env.clone(), args("state")),
    )
    .await
    .expect("apply ends")
    .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(
        o.status.code(),
        Some(3),
        "apply must pause at the first operator step\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("backup.config"), "{stdout}");
    assert!(
        stdout.contains("\"type\":\"notification-failed\"")
            && String::from_utf8_lossy(&o.stderr).contains("to webhook #1 failed"),
        "the failed notification is reported\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    check.output("apply", &o);
    assert!(
        sim.state().backups_served >= 1,
        "the backup went through the canary account"
    );

    // 3. Resume, confirming the paused operator steps without doing them: the engine's
    //    verification refuses or pauses again (never done), and still no canary.
    let mut resume = args("state");
    resume.push("--resume".into());
    for step in [
        "backup.certificates",
        "backup.vault-key",
        "clients.throttle",
    ] {
        resume.push("--confirm".into());
        resume.push(step.into());
    }
    let o = tokio::time::timeout(Duration::from_secs(120), run(good_env, resume))
        .await
        .expect("resumed apply ends")
        .unwrap();
    assert!(
        matches!(o.status.code(), Some(1) | Some(3)),
        "resume without the operator's work cannot finish\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    check.output("apply --resume", &o);

    // The simulator's own state and action log (what the API account did) hold no secret.
    check.places.push((
        "sim state".into(),
        serde_json::to_vec(&sim.state()).unwrap(),
    ));
    // Journals, locks, backup files and their metadata, the CA: every file the runs left.
    check.tree(&d);
    let backups: Vec<_> = std::fs::read_dir(d.join("backups"))
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(!backups.is_empty(), "apply should have written a backup");
    let looked = check.assert_clean();
    assert!(looked >= 8, "only {looked} places checked");
    sim.shutdown().await;
}

#[test]
fn the_leak_check_finds_a_planted_canary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("deep/er")).unwrap();
    std::fs::write(
        dir.path().join("deep/er/journal.jsonl"),
        format!("{{\"x\":\"{}\"}}", canary_for("planted")),
    )
    .unwrap();
    let mut check = LeakCheck::default();
    check.tree(dir.path());
    let caught = std::panic::catch_unwind(|| check.assert_clean());
    assert!(caught.is_err(), "a planted canary must be found");
}
