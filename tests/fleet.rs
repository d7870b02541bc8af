//! `swing fleet` against fleets of simulated failover pairs (in-process simulators at the fast
//! time scale, each pair its own site), through the real `swing` binary:
//!
//! - Six pairs in waves `1,50%,100%`: planned and saved (`fleet plan --out`); the first
//!   apply changes only the canary and waits for the gate of wave 2 (exit 3, the table
//!   says so); with the gates passed every site converges, the canary is not touched again,
//!   no wave starts before the one before it has finished, and no action is sent twice.
//! - `install-fails` on a site of wave 2 with `--max-failures 0`: exit 1, no site of wave 3
//!   starts (their simulators saw no action), and `fleet status` says why.
//! - Bad input: a site named twice, two plans that would share a journal, a non-gate
//!   `--confirm`, a plan file without `--auto-approve`, bad waves, saved plans beside their
//!   plan files — refused before anything is contacted.
//!
//! Two runners sharing a fleet are tested against PostgreSQL in `tests/state_postgres.rs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use swing_sim::Fault;
use swing_testkit::kit::{self, Lab, LabOptions, Scenario};

fn swing_cmd(dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", kit::state_home(dir))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// `swing ARGS` in `dir` to the end (240 s at most).
async fn swing(dir: &Path, args: &[&str]) -> std::process::Output {
    let child = swing_cmd(dir, args).spawn().unwrap();
    tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("swing {args:?} hangs"))
        .unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn site(i: usize) -> String {
    format!("site-{i}.example.test")
}

/// `n` synchronous pairs, each its own site with its plan in its own folder.
async fn fleet(dir: &Path, n: usize) -> (Vec<Lab>, Vec<PathBuf>) {
    let mut labs = Vec::new();
    let mut plans = Vec::new();
    for i in 0..n {
        let options = LabOptions {
            jump_clients: 5,
            site: site(i),
            ..LabOptions::default()
        };
        let lab = Lab::start(Scenario::Sync, &dir.join(format!("site-{i}")), options)
            .await
            .expect("lab starts");
        plans.push(lab.write_plan(None, None).unwrap());
        labs.push(lab);
    }
    (labs, plans)
}

fn count(lab: &Lab, action: &str) -> usize {
    lab.actions().iter().filter(|(_, a)| a == action).count()
}

/// The lab converged, each appliance was upgraded once and the configuration backed up once.
fn converged_once(lab: &Lab) {
    assert!(
        lab.check_final_state().is_empty(),
        "{}: {:?}",
        lab.options.site,
        lab.check_final_state()
    );
    let acts = lab.actions();
    for name in ["a", "b"] {
        let installs = acts
            .iter()
            .filter(|(n, a)| n == name && a == "install.started")
            .count();
        assert_eq!(installs, 1, "{}: {acts:?}", lab.options.site);
    }
    assert_eq!(
        count(lab, "backup.download"),
        1,
        "{}: {acts:?}",
        lab.options.site
    );
}

/// Actions sent to the lab since it started (the lab's own set-up excluded).
fn untouched(lab: &Lab) -> bool {
    lab.actions().iter().all(|(_, a)| a == "shared-ip.enabled")
}

fn paths(plans: &[PathBuf]) -> Vec<&str> {
    plans.iter().map(|p| p.to_str().unwrap()).collect()
}

fn table(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_pairs_converge_in_waves_behind_a_canary_and_gates() {
    let dir = tempfile::tempdir().unwrap();
    let (labs, plans) = fleet(dir.path(), 6).await;
    let mut args = vec!["fleet", "plan", "--waves", "1,50%,100%", "--out", "saved"];
    args.extend(paths(&plans));
    let o = swing(dir.path(), &args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Wave 3: 3 site(s) (gate: --confirm wave-3)"),
        "{out}"
    );
    let saved = dir.path().join("saved");
    assert_eq!(std::fs::read_dir(&saved).unwrap().count(), 6);

    // The canary only: then the gate of wave 2.
    let run = |extra: &'static [&'static str]| {
        let mut a = vec![
            "fleet",
            "apply",
            "saved",
            "--waves",
            "1,50%,100%",
            "--max-failures",
            "0",
            "--concurrency",
            "3",
            "--format",
            "json",
        ];
        a.extend(extra);
        a
    };
    let o = swing(dir.path(), &run(&[])).await;
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = table(&o);
    assert_eq!(t["outcome"], "waiting", "{t}");
    assert_eq!(t["sites"][0]["state"], "done", "{t}");
    assert_eq!(t["sites"][0]["wave"], 1, "{t}");
    for s in t["sites"].as_array().unwrap()[1..].iter() {
        assert_eq!(s["state"], "not-started", "{t}");
    }
    assert!(
        t["sites"][1]["waiting_for"]
            .as_str()
            .unwrap()
            .contains("--confirm wave-2"),
        "{t}"
    );
    assert!(t["summary"].as_str().unwrap().contains("wave-2"), "{t}");
    converged_once(&labs[0]);
    for lab in &labs[1..] {
        assert!(untouched(lab), "{:?}", lab.actions());
    }
    let canary_actions = labs[0].actions().len();

    // Gates passed: waves 2 and 3, each after the one before has finished.
    let o = swing(
        dir.path(),
        &run(&["--confirm", "wave-2", "--confirm", "wave-3"]),
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = table(&o);
    assert_eq!(t["outcome"], "done", "{t}");
    let waves: Vec<u64> = t["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["wave"].as_u64().unwrap())
        .collect();
    assert_eq!(waves, [1, 2, 2, 3, 3, 3], "{t}");
    for lab in &labs {
        converged_once(lab);
    }
    assert_eq!(
        labs[0].actions().len(),
        canary_actions,
        "the canary was touched again"
    );
    // Each wave started after every site of the one before was done.
    let err = String::from_utf8_lossy(&o.stderr);
    let at = |needle: &str| {
        err.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in:\n{err}"))
    };
    let wave3 = at("wave 3 of 3");
    assert!(at("wave 2 of 3") < wave3, "{err}");
    for i in [1, 2] {
        assert!(at(&format!("{}: done", site(i))) < wave3, "{err}");
    }
    // The table from anywhere, as JSON and for a ticket.
    let o = swing(
        dir.path(),
        &[
            "fleet",
            "status",
            "saved",
            "--waves",
            "1,50%,100%",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = table(&o);
    assert_eq!(t["outcome"], "done", "{t}");
    for s in t["sites"].as_array().unwrap() {
        assert_eq!(s["state"], "done", "{t}");
        assert_eq!(s["steps_done"], s["steps_total"], "{t}");
        assert!(s["unprotected_s"].as_u64().is_some(), "{t}");
    }
    let o = swing(
        dir.path(),
        &["fleet", "status", "saved", "--format", "markdown"],
    )
    .await;
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("| Site | Wave | State |"), "{md}");
    assert_eq!(md.matches("| done |").count(), 6, "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_in_wave_two_spends_the_budget_and_wave_three_never_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (labs, plans) = fleet(dir.path(), 6).await;
    let fault: Fault = "install-fails".parse().unwrap();
    for (_, s) in &labs[1].sims {
        s.set_fault(fault.clone());
    }
    let mut args = vec![
        "fleet",
        "apply",
        "--auto-approve",
        "--no-probe",
        "--waves",
        "1,50%,100%",
        "--max-failures",
        "0",
        "--concurrency",
        "2",
        "--confirm",
        "wave-2",
        "--confirm",
        "wave-3",
    ];
    args.extend(paths(&plans));
    let o = swing(dir.path(), &args).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("no further site starts"), "{out}");
    converged_once(&labs[0]);
    converged_once(&labs[2]);
    for lab in &labs[3..] {
        assert!(
            untouched(lab),
            "{} of wave 3 started: {:?}",
            lab.options.site,
            lab.actions()
        );
    }
    let mut args = vec![
        "fleet",
        "status",
        "--waves",
        "1,50%,100%",
        "--max-failures",
        "0",
        "--format",
        "json",
    ];
    args.extend(paths(&plans));
    let o = swing(dir.path(), &args).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = table(&o);
    assert_eq!(t["outcome"], "budget-spent", "{t}");
    assert_eq!(t["failures"], 1, "{t}");
    assert_eq!(t["sites"][1]["state"], "failed", "{t}");
    assert!(
        t["sites"][1]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("install")),
        "{t}"
    );
    for s in t["sites"].as_array().unwrap()[3..].iter() {
        assert_eq!(s["state"], "not-started", "{t}");
        assert_eq!(s["wave"], 3, "{t}");
        let why = s["waiting_for"].as_str().unwrap();
        assert!(why.contains("--max-failures 0"), "{t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_that_cannot_be_applied_as_given_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (labs, plans) = fleet(dir.path(), 2).await;
    let p = paths(&plans);
    // The same site twice.
    let o = swing(
        dir.path(),
        &["fleet", "apply", "--auto-approve", p[0], p[0], p[1]],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("are both the site site-0.example.test"),
        "{}",
        text(&o)
    );
    // Two plans of one change in one directory would write one local journal.
    let together = dir.path().join("together");
    std::fs::create_dir_all(&together).unwrap();
    std::fs::copy(&plans[0], together.join("a.yaml")).unwrap();
    std::fs::copy(&plans[1], together.join("b.yaml")).unwrap();
    let o = swing(dir.path(), &["fleet", "status", together.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("would write one journal (change lab-sync"),
        "{}",
        text(&o)
    );
    // A site's step is not confirmed fleet-wide.
    let o = swing(
        dir.path(),
        &[
            "fleet",
            "apply",
            "--auto-approve",
            "--confirm",
            "backup.config",
            p[0],
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("swing apply --resume --confirm STEP"),
        "{}",
        text(&o)
    );
    // Plan files need review or --auto-approve.
    let o = swing(dir.path(), &["fleet", "apply", p[0], p[1]]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("fleet plan --out DIR"), "{}", text(&o));
    // Bad waves.
    let o = swing(dir.path(), &["fleet", "status", "--waves", "0,50%", p[0]]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--waves 1,10%,100%"), "{}", text(&o));
    // Saved plans next to the plan files they came from.
    let o = swing(
        dir.path(),
        &[
            "fleet",
            "plan",
            "--offline",
            "--out",
            labs[0].dir.to_str().unwrap(),
            p[0],
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("a directory of their own"),
        "{}",
        text(&o)
    );
    for lab in &labs {
        assert!(untouched(lab), "{:?}", lab.actions());
    }
}
