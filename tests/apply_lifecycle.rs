//! End to end (issue 6): the change-management loop against two in-process simulators
//! (`operator: sim`, fast time scale) and the real `swing` binary: a saved plan is refused
//! when the world moved (precise reason), applied when it did not, and re-planning then finds
//! no changes (`swing plan --out` / `--detailed-exitcode`); two concurrent applies → one runs, the other exits 4; an apply killed with
//! SIGKILL at every step boundary and in the middle of every wait resumes to the end without any
//! non-idempotent action running twice (the simulators' action logs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use swing::wiring;
use swing_engine::planfile::SavedPlan;
use swing_engine::provider::{OperatorAction, OperatorTask};
use swing_testkit::kit::{self, Lab, LabOptions, Scenario, wait_until};
use tokio::io::{AsyncBufReadExt, BufReader};

fn swing() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

/// Runs `swing ARGS FILE` in `dir` to the end.
async fn run(dir: &Path, args: &[&str], file: &Path) -> std::process::Output {
    swing()
        .args(args)
        .arg(file)
        .current_dir(dir)
        .env("XDG_STATE_HOME", kit::state_home(dir))
        .output()
        .await
        .unwrap()
}

fn load(plan: &Path) -> swing_engine::validate::ValidPlan {
    swing_engine::validate::check_file(plan)
        .plan
        .expect("the lab plan is valid")
}

/// `swing plan --out OUT --detailed-exitcode PLAN` (live: refreshes through the simulators);
/// returns the exit code, stdout and the saved plan.
async fn plan_out(dir: &Path, plan_path: &Path, out: &Path) -> (Option<i32>, String, SavedPlan) {
    let o = swing()
        .args(["plan", "--detailed-exitcode", "--out"])
        .arg(out)
        .arg(plan_path)
        .current_dir(dir)
        .env("XDG_STATE_HOME", kit::state_home(dir))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        matches!(o.status.code(), Some(0 | 2)),
        "swing plan failed: {}\n{stdout}",
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), stdout, SavedPlan::read(out).unwrap())
}

/// How many times a simulator logged an action.
fn count(lab: &Lab, sim: &str, action: &str) -> usize {
    lab.sim(sim)
        .unwrap()
        .state()
        .actions
        .iter()
        .filter(|a| a.action == action)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saved_plan_is_refused_when_the_world_moved_naming_what_moved() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::AsyncSharedIp, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan_path = lab.write_plan(None, None).unwrap();
    let out = lab.dir.join("change.plan");
    let (code, _, saved) = plan_out(&lab.dir, &plan_path, &out).await;
    assert_eq!(code, Some(2), "--detailed-exitcode: changes present");
    assert!(saved.has_changes && !saved.offline);

    // The world moves: b gets upgraded behind the plan's back.
    let plan = load(&plan_path);
    let providers = wiring::build(&plan, &lab.dir).unwrap();
    let bridge = providers.bridges.get("b").unwrap().clone();
    let task = OperatorTask {
        step_id: "b.install".into(),
        appliance: "b".into(),
        action: OperatorAction::Install {
            packages: plan.target.packages.clone(),
            version: plan.target.version.to_string(),
        },
        instructions: vec![],
    };
    bridge.perform(&task).await.unwrap();
    let b = lab.sim("b").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || b.state().version
            == kit::TARGET_VERSION)
        .await
    );

    // `swing show --refresh` marks it, naming what moved.
    let o = run(&lab.dir, &["show", "--refresh"], &out).await;
    let shown = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        shown.contains(&format!(
            "STALE: appliance b is now {}, the plan was made against {}",
            kit::TARGET_VERSION,
            kit::FROM_VERSION
        )),
        "{shown}"
    );

    let o = run(&lab.dir, &["apply", "--output", "json"], &out).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "stale: appliance b is now {}, the plan was made against {}",
            kit::TARGET_VERSION,
            kit::FROM_VERSION
        )),
        "{stderr}"
    );
    assert_eq!(
        count(&lab, "a", "backup.download"),
        0,
        "a stale plan touches nothing"
    );

    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saved_plan_applies_while_a_second_apply_exits_4_then_replan_has_no_changes() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::AsyncSharedIp, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan_path = lab.write_plan(None, None).unwrap();
    // `swing plan --out`, then apply exactly that saved plan.
    let out = lab.dir.join("change.plan");
    let (code, stdout, saved) = plan_out(&lab.dir, &plan_path, &out).await;
    assert_eq!(code, Some(2), "{stdout}");
    assert!(saved.has_changes && !saved.offline && !saved.fingerprint.resources.is_empty());
    assert!(
        stdout.contains("Refreshed state:") && stdout.contains("a.install"),
        "{stdout}"
    );
    let o = run(&lab.dir, &["show", "--refresh"], &out).await;
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("Current: the site still looks as it did") && !shown.contains("STALE"),
        "{shown}"
    );
    let first = swing()
        .args(["apply", "--output", "json"])
        .arg(&out)
        .current_dir(&lab.dir)
        .env("XDG_STATE_HOME", kit::state_home(&lab.dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = kit::site_lock(&lab.dir, kit::SITE);
    assert!(
        wait_until(Duration::from_secs(30), || lock.exists()).await,
        "the first apply never took the lock"
    );
    let o = run(&lab.dir, &["apply", "--auto-approve"], &plan_path).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("another apply holds the lock") && stderr.contains("pid"),
        "{stderr}"
    );
    let first = tokio::time::timeout(Duration::from_secs(180), first.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&first.stderr),
        String::from_utf8_lossy(&first.stdout)
    );
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    // While the pair was broken, the shared IP's move was verified by asking who answers
    // there (check_health lists shared IPs only inside a relationship), not taken on trust.
    let journal = std::fs::read_to_string(swing_engine::apply::Journal::path_for(
        &lab.dir.join(".swing"),
        &load(&plan_path).name,
    ))
    .unwrap();
    let verified = journal
        .lines()
        .filter(|l| l.contains("\"switch.to-b\"") && l.contains("\"answered_by\""))
        .count();
    assert!(
        verified >= 1,
        "switch.to-b not verified at the shared IP:\n{journal}"
    );
    assert!(!journal.contains("\"observable\":false"), "{journal}");
    // Re-plan: no changes (exit 0 with --detailed-exitcode); applying that is a no-op.
    let (code, stdout, again) = plan_out(&lab.dir, &plan_path, &out).await;
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("No changes. The site matches the plan."),
        "{stdout}"
    );
    assert!(!again.has_changes, "{:?}", again.steps);
    let o = run(&lab.dir, &["apply"], &out).await;
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("No changes. The site matches the plan."));
    lab.shutdown().await;
}

/// Where a run was killed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Kill {
    /// Right after the step succeeded (a step boundary).
    After(String),
    /// While the step was waiting for its postcondition (install, online, Jump Clients, …).
    MidWait(String),
}

/// Runs `swing apply` (or `--resume`) and kills it with SIGKILL at the next position not yet
/// killed at: every step boundary, and the first poll of every step that waits. Returns the
/// exit code when it ended on its own, else where it was killed.
async fn run_until(
    dir: &Path,
    plan: &PathBuf,
    resume: bool,
    killed: &std::collections::BTreeSet<Kill>,
) -> Result<Option<i32>, Kill> {
    let mut cmd = swing();
    cmd.args(["apply", "--auto-approve", "--output", "json"]);
    if resume {
        cmd.arg("--resume");
    }
    let mut child = cmd
        .arg(plan)
        .current_dir(dir)
        .env("XDG_STATE_HOME", kit::state_home(dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("apply hangs");
        let Ok(Some(line)) = line else { break };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let step = v["step"].as_str().unwrap_or_default().to_owned();
        let at = match v["type"].as_str() {
            Some("step-succeeded") => Kill::After(step),
            Some("step-polling") => Kill::MidWait(step),
            _ => continue,
        };
        if !killed.contains(&at) {
            child.start_kill().unwrap();
            let _ = child.wait().await;
            return Err(at);
        }
    }
    Ok(child.wait().await.unwrap().code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_killed_at_every_step_boundary_and_mid_wait_resumes_without_repeating_actions() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::AsyncSharedIp, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan_path = lab.write_plan(None, None).unwrap();
    // One step at a time, so every step boundary is a position of its own.
    let yaml = std::fs::read_to_string(&plan_path).unwrap();
    assert!(!yaml.contains("parallelism"), "{yaml}");
    let yaml = yaml.replacen("policy:\n", "policy:\n  parallelism: 1\n", 1);
    std::fs::write(&plan_path, &yaml).unwrap();
    assert_eq!(load(&plan_path).policy.parallelism, 1, "{yaml}");
    let compiled = swing_engine::compile::compile(
        &load(&plan_path),
        &swing_engine::compile::CompileOptions::default(),
    )
    .unwrap();
    let mut resume = false;
    let mut killed = std::collections::BTreeSet::new();
    // Each run is killed at the first position not killed at before, so the loop visits every
    // step boundary and the middle of every wait once, in order, and always makes progress.
    let code = loop {
        match run_until(&lab.dir, &plan_path, resume, &killed).await {
            Ok(code) => break code.unwrap_or(-1),
            Err(at) => {
                killed.insert(at);
                resume = true;
                assert!(killed.len() < 400, "never finished");
                // The kill can land after the apply closed its journal (the last event was
                // already out): then the change is complete and there is nothing to resume.
                let state = swing_engine::apply::default_state_dir(&plan_path);
                let store = swing_engine::apply::LocalStore::new(&state, &state);
                if swing_engine::apply::Store::unfinished(&store)
                    .expect("state dir readable")
                    .is_empty()
                {
                    break 0;
                }
            }
        }
    };
    let kills = killed.len();
    // Every step that ran was killed right after it succeeded.
    let boundaries: std::collections::BTreeSet<&str> = killed
        .iter()
        .filter_map(|k| match k {
            Kill::After(s) => Some(s.as_str()),
            Kill::MidWait(_) => None,
        })
        .collect();
    let missing: Vec<&str> = compiled
        .steps
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| !boundaries.contains(id))
        .collect();
    assert!(
        missing.len() <= 1,
        "not killed after: {missing:?} (only the last step may finish the apply first)"
    );
    // The installs always wait (the simulator takes its time); other waits may hold at once.
    for wait in ["a.install", "b.install"] {
        assert!(
            killed.contains(&Kill::MidWait(wait.into())),
            "never killed in the middle of {wait}: {killed:?}"
        );
    }
    assert_eq!(code, 0, "after {kills} kills");
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    for sim in ["a", "b"] {
        let state = lab.sim(sim).unwrap().state();
        for once in ["install.started", "backup.download"] {
            let n = state.actions.iter().filter(|a| a.action == once).count();
            assert!(
                n <= 1 && (once != "install.started" || n == 1),
                "{sim}: {once} × {n}: {:?}",
                state.actions
            );
        }
        for once in [
            "failover.break",
            "failover.establish",
            "shared-ip.enabled",
            "shared-ip.disabled",
        ] {
            assert!(
                state.actions.iter().filter(|a| a.action == once).count() <= 1,
                "{sim}: {once} ran twice: {:?}",
                state.actions
            );
        }
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_appliance_that_does_not_answer_blocks_plan_and_apply_naming_it_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::AsyncSharedIp, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan_path = lab.write_plan(None, None).unwrap();
    // b resets every connection: it cannot be observed.
    lab.sim("b")
        .unwrap()
        .set_faults(swing_sim::Faults::parse_all(["reset=1"]).unwrap());

    let out = lab.dir.join("change.plan");
    let o = swing()
        .args(["plan", "--detailed-exitcode", "--out"])
        .arg(&out)
        .arg(&plan_path)
        .current_dir(&lab.dir)
        .env("XDG_STATE_HOME", kit::state_home(&lab.dir))
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("cannot observe appliance b does not answer:")
            && stderr.contains("not saved"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Cannot observe (apply is blocked):"),
        "{stdout}"
    );
    assert!(!out.exists(), "no saved plan without an observation of b");

    let o = run(&lab.dir, &["apply", "--auto-approve"], &plan_path).await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot observe what the plan starts from")
            && stderr.contains("appliance b does not answer:")
            && stderr.contains("Nothing was changed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("drift"),
        "an outage is not drift: {stderr}"
    );
    assert_eq!(count(&lab, "a", "backup.download"), 0, "nothing touched");
    lab.shutdown().await;
}
