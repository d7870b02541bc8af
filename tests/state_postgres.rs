//! The PostgreSQL state store against a real server (Debian's `postgresql`: a fresh cluster
//! in a temporary directory on its own port, see `swing_testkit::postgres`), the real `swing`
//! binary and in-process simulators at the fast time scale. Each "checkout" is its own folder
//! with its own state home, as on different machines: only the database is shared.
//!
//! - A change planned in checkout A pauses at its second window; checkout B, holding only
//!   the saved plan and the state URL, resumes it; a third apply from C is refused (exit 4)
//!   naming the holder; `kill -9` of the holder frees the lock (its session ends) and a
//!   resume finishes with no action sent twice (the simulators' action logs).
//! - PostgreSQL stopped mid-apply: the apply halts before its next action with a clear
//!   message, never acting without a record; restarted, a resume finishes; the journal rows
//!   have no gap and no duplicate.
//! - Two runners given the same fleet and database share its sites and apply each once.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use swing_sim::{Fault, Faults};
use swing_testkit::kit::{self, Lab, LabOptions, Scenario, wait_until};
use swing_testkit::postgres::Postgres;

/// In the state URL: any password is accepted (trust), and it must never be shown.
const CANARY: &str = "pg-pass-canary-51d9";

fn cmd(dir: &Path, url: &str, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.args(args)
        .current_dir(dir)
        // Each checkout is another machine: its own host-wide lock directory.
        .env("XDG_STATE_HOME", kit::state_home(dir))
        .env("SWING_STATE_URL", url)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// `swing ARGS` in `dir` to the end (120 s at most).
async fn swing(dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let child = cmd(dir, url, args).spawn().unwrap();
    let o = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("swing {args:?} hangs"))
        .unwrap();
    let all = format!("{}{}", text(&o), "");
    assert!(
        !all.contains(CANARY),
        "the state URL's password leaked:\n{all}"
    );
    o
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn count(lab: &Lab, action: &str) -> usize {
    lab.actions().iter().filter(|(_, a)| a == action).count()
}

fn set_fault(lab: &Lab, spec: &str) {
    let f: Fault = spec.parse().expect("fault spec");
    for (_, s) in &lab.sims {
        s.set_fault(f.clone());
    }
}

fn clear_faults(lab: &Lab) {
    for (_, s) in &lab.sims {
        s.set_faults(Faults::default());
    }
}

/// The lab's plan in `folder`, every relative path made absolute (the backups and secrets
/// stand for shared storage), its state in PostgreSQL through `${env:SWING_STATE_URL}`, and
/// with `windows` (`(start_ms, end_ms)` each) when given.
fn plan_in(lab: &Lab, folder: &Path, windows: &[(i64, i64)]) -> PathBuf {
    std::fs::create_dir_all(folder).unwrap();
    let yaml = lab.plan_yaml(None, None).unwrap();
    let abs = format!("{}/", lab.dir.display());
    let mut yaml = yaml
        .replace(": ./", &format!(": {abs}"))
        .replace("file:./", &format!("file:{abs}"));
    if !windows.is_empty() {
        let t = swing_engine::time::rfc3339_ms;
        let mut w = String::from("windows:\n");
        for (i, (start, end)) in windows.iter().enumerate() {
            w.push_str(&format!(
                "  - {{ name: w{}, start: {}, end: {} }}\n",
                i + 1,
                t(*start),
                t(*end)
            ));
        }
        w.push_str("policy:\n");
        yaml = yaml.replacen("policy:\n", &w, 1);
        // Short estimates, so the steps before the install fit the first window and the
        // install does not.
        yaml = yaml.replacen(
            "policy:\n",
            "policy:\n  estimates: { health: 2s, backup: 2s, certificates: 2s, install: 60s, online: 5s, verify: 2s }\n",
            1,
        );
    }
    yaml.push_str(
        "state:\n  backend: postgres\n  url: ${env:SWING_STATE_URL}\n  namespace: prod\n",
    );
    let path = folder.join("plan.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// The journal rows of the change: `(generation, seq, event)`, in order.
fn rows(pg: &Postgres) -> Vec<(i32, i32, String)> {
    pg.with_client(|c| {
        c.query(
            "SELECT generation, seq, event FROM swing_journal WHERE namespace = 'prod' ORDER BY generation, seq",
            &[],
        )
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
    })
    .unwrap()
}

/// Rows of each generation are numbered 0, 1, 2, … with no gap; the primary key already
/// rules out duplicates, and no step succeeded twice.
fn check_rows(pg: &Postgres) {
    let rows = rows(pg);
    assert!(!rows.is_empty());
    let mut expect = (rows[0].0, 0);
    for (g, s, _) in &rows {
        if *g != expect.0 {
            expect = (*g, 0);
        }
        assert_eq!((*g, *s), expect, "a gap in the journal rows: {rows:?}");
        expect.1 += 1;
    }
    let twice: i64 = pg
        .with_client(|c| {
            c.query_one(
                "SELECT count(*) FROM (SELECT record->>'step' FROM swing_journal
                 WHERE event = 'step-succeeded' GROUP BY generation, record->>'step' HAVING count(*) > 1) t",
                &[],
            )
            .unwrap()
            .get(0)
        })
        .unwrap();
    assert_eq!(twice, 0, "a step recorded as succeeded twice: {rows:?}");
}

async fn lab(dir: &Path) -> Lab {
    let options = LabOptions {
        jump_clients: 5,
        ..LabOptions::default()
    };
    Lab::start(Scenario::SingleAutomatic, dir, options)
        .await
        .expect("lab starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_paused_on_one_machine_is_finished_from_another() {
    let pg = Postgres::start().expect("a PostgreSQL cluster starts");
    let url = pg.url(CANARY);
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path()).await;
    let now = swing_engine::time::now_ms();
    let second = now + 45_000;
    let (a, b, c) = (
        lab.dir.join("checkout-a"),
        lab.dir.join("checkout-b"),
        lab.dir.join("checkout-c"),
    );
    let plan = plan_in(
        &lab,
        &a,
        &[(now - 60_000, now + 25_000), (second, second + 3_600_000)],
    );

    // Checkout A: plan, save (signed), apply; the first window's steps run, then it waits.
    let pem = {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap()
            .to_string()
    };
    std::fs::write(a.join("approver.pem"), pem).unwrap();
    let o = swing(
        &a,
        &url,
        &[
            "plan",
            plan.to_str().unwrap(),
            "--out",
            "change.plan",
            "--sign",
            "${file:approver.pem}",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let saved = std::fs::read(a.join("change.plan")).unwrap();
    let plan_text = std::fs::read(&plan).unwrap();
    let o = swing(&a, &url, &["apply", "change.plan"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("w2"), "{}", text(&o));
    assert_eq!(count(&lab, "install.started"), 0, "{}", text(&o));
    let recorded: i64 = pg
        .with_client(|c| {
            c.query_one(
                "SELECT count(*) FROM swing_saved_plans WHERE namespace = 'prod'",
                &[],
            )
            .unwrap()
            .get(0)
        })
        .unwrap();
    assert_eq!(recorded, 1, "the saved plan is on record");

    // Checkout B holds only the saved plan and the URL; A is gone.
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("change.plan"), &saved).unwrap();
    std::fs::remove_dir_all(&a).unwrap();
    let o = swing(&b, &url, &["status", "change.plan", "--format", "json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["outcome"], "paused", "{st}");
    assert_eq!(st["waiting"][0]["kind"], "window", "{st}");

    assert!(
        wait_until(Duration::from_secs(90), || swing_engine::time::now_ms()
            > second + 500)
        .await
    );
    // The install hangs while the fault is set: B holds the site.
    set_fault(&lab, "install-hangs");
    let holder = cmd(
        &b,
        &url,
        &["apply", "--resume", "change.plan", "--output", "json"],
    )
    .spawn()
    .unwrap();
    let pid = holder.id().expect("running");
    assert!(
        wait_until(Duration::from_secs(60), || count(&lab, "install.started")
            == 1)
        .await,
        "checkout B never sent the install"
    );

    // Checkout C: refused while B is alive, naming it.
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("change.plan"), &saved).unwrap();
    let o = swing(&c, &url, &["apply", "--resume", "change.plan"]).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains(&format!("pid {pid}")), "{}", text(&o));

    // kill -9 of the holder: its session ends and the server frees the lock.
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = holder.wait_with_output().await;
    clear_faults(&lab);
    let o = swing(&c, &url, &["apply", "--resume", "change.plan"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    // No action twice: one install, one backup, and the install was not sent again.
    assert_eq!(count(&lab, "install.started"), 1, "{:?}", lab.actions());
    let mut seen = std::collections::BTreeMap::new();
    for a in lab.actions() {
        *seen.entry(a).or_insert(0) += 1;
    }
    assert!(
        seen.values().all(|n| *n == 1),
        "an action was performed twice: {seen:?}"
    );
    check_rows(&pg);
    let o = swing(&c, &url, &["status", "change.plan", "--format", "json"]).await;
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["outcome"], "done", "{st}");
    // The change record from the plan file alone names the signer the store recorded.
    std::fs::write(c.join("plan.yaml"), &plan_text).unwrap();
    let o = swing(&c, &url, &["report", "plan.yaml", "--format", "json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let saved_plan: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    assert_eq!(
        r["signed_by"], saved_plan["signature"]["fingerprint"],
        "{r}"
    );
    assert!(
        r["signed_by"]
            .as_str()
            .is_some_and(|s| s.starts_with("SHA256:")),
        "{r}"
    );
    assert_eq!(r["verdict"], "done", "{r}");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_apply_halts_it_and_a_resume_finishes() {
    let pg = Postgres::start().expect("a PostgreSQL cluster starts");
    let url = pg.url(CANARY);
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path()).await;
    let here = lab.dir.join("checkout");
    let plan = plan_in(&lab, &here, &[]);
    set_fault(&lab, "install-hangs");
    let apply = cmd(
        &here,
        &url,
        &["apply", "--auto-approve", plan.to_str().unwrap()],
    )
    .spawn()
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || count(&lab, "install.started")
            == 1)
        .await,
        "the apply never sent the install"
    );
    pg.stop().unwrap();
    let before = lab.actions();
    clear_faults(&lab);
    let o = tokio::time::timeout(Duration::from_secs(90), apply.wait_with_output())
        .await
        .expect("the apply halts instead of hanging")
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot write the apply journal") && err.contains("--resume"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(CANARY));
    // Nothing was done after the store went away: no action beyond the install in flight.
    assert_eq!(
        lab.actions(),
        before,
        "an action was performed without a record"
    );

    pg.start_again().unwrap();
    let o = swing(&here, &url, &["apply", "--resume", plan.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    assert_eq!(count(&lab, "install.started"), 1, "{:?}", lab.actions());
    check_rows(&pg);
    lab.shutdown().await;
}

/// Four synchronous pairs (each its own site) and two runners — two checkouts with their
/// own copies of the plans and their own state homes, as on two machines — given the same
/// fleet and database at once: the sites' advisory locks share the work, every site
/// converges with each appliance upgraded once, and each site's journal holds one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_share_a_fleet_through_postgres_and_apply_each_site_once() {
    let pg = Postgres::start().expect("a PostgreSQL cluster starts");
    let url = pg.url(CANARY);
    let dir = tempfile::tempdir().unwrap();
    let mut labs = Vec::new();
    for i in 0..4 {
        let options = LabOptions {
            jump_clients: 5,
            site: format!("fleet-{i}.example.test"),
            ..LabOptions::default()
        };
        let lab = Lab::start(
            Scenario::Sync,
            &dir.path().join(format!("lab-{i}")),
            options,
        )
        .await
        .expect("lab starts");
        labs.push(lab);
    }
    let runners = [dir.path().join("runner-1"), dir.path().join("runner-2")];
    let mut plans = Vec::new();
    for r in &runners {
        let ps: Vec<String> = labs
            .iter()
            .enumerate()
            .map(|(i, lab)| {
                plan_in(lab, &r.join(format!("site-{i}")), &[])
                    .display()
                    .to_string()
            })
            .collect();
        plans.push(ps);
    }
    let spawn = |k: usize| {
        let mut args = vec![
            "fleet",
            "apply",
            "--auto-approve",
            "--no-probe",
            "--waves",
            "1,100%",
            "--confirm",
            "wave-2",
            "--concurrency",
            "2",
            "--format",
            "json",
        ];
        args.extend(plans[k].iter().map(String::as_str));
        cmd(&runners[k], &url, &args).spawn().unwrap()
    };
    let (one, two) = (spawn(0), spawn(1));
    let wait = |c: tokio::process::Child| async move {
        tokio::time::timeout(Duration::from_secs(240), c.wait_with_output())
            .await
            .expect("a runner hangs")
            .unwrap()
    };
    let (one, two) = tokio::join!(wait(one), wait(two));
    for o in [&one, &two] {
        assert!(!text(o).contains(CANARY), "the state URL's password leaked");
        assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&one), text(&two));
        let t: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(t["outcome"], "done", "{t}");
    }
    for lab in &labs {
        assert!(
            lab.check_final_state().is_empty(),
            "{}: {:?}",
            lab.options.site,
            lab.check_final_state()
        );
        for name in ["a", "b"] {
            let installs = lab
                .actions()
                .iter()
                .filter(|(n, a)| n == name && a == "install.started")
                .count();
            assert_eq!(installs, 1, "{}: {:?}", lab.options.site, lab.actions());
        }
    }
    let runs: Vec<(String, i64)> = pg
        .with_client(|c| {
            c.query(
                "SELECT site, count(*) FROM swing_journal WHERE namespace = 'prod' AND event = 'run-started' GROUP BY site ORDER BY site",
                &[],
            )
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
        })
        .unwrap();
    let expected: Vec<(String, i64)> = (0..4)
        .map(|i| (format!("fleet-{i}.example.test"), 1))
        .collect();
    assert_eq!(runs, expected, "{}\n{}", text(&one), text(&two));
    // Each site was finished by exactly one of the runners.
    let finished =
        |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).matches(": done").count();
    assert_eq!(
        finished(&one) + finished(&two),
        4,
        "{}\n{}",
        text(&one),
        text(&two)
    );
}
