//! End to end (issue 6): the change-management loop against two in-process simulators
//! (`operator: sim`, fast time scale) and the real `swing` binary: a saved plan is refused
//! when the world moved (precise reason), applied when it did not, and re-planning then finds
//! no changes; two concurrent applies → one runs, the other exits 4; an apply killed with
//! SIGKILL at step boundaries and in the middle of waits resumes to the end without any
//! non-idempotent action running twice (the simulators' action logs).

#[path = "../src/commands/demo/kit.rs"]
mod kit;
#[path = "../src/wiring.rs"]
#[allow(dead_code)]
mod wiring;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kit::{Lab, LabOptions, Scenario, wait_until};
use swing_engine::apply::site::plan_site;
use swing_engine::planfile::SavedPlan;
use swing_engine::provider::{OperatorAction, OperatorTask};
use tokio::io::{AsyncBufReadExt, BufReader};

fn swing() -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

fn load(plan: &Path) -> swing_schema::Plan {
    swing_engine::validate::check_file(plan)
        .plan
        .expect("the lab plan is valid")
}

async fn save_plan(plan_path: &Path, out: &Path) -> SavedPlan {
    let plan = load(plan_path);
    let base = plan_path.parent().unwrap();
    let providers = wiring::build(&plan, base).expect("providers");
    let (_, _, saved) = plan_site(
        &plan,
        &plan_path.display().to_string(),
        base,
        Some(&providers),
    )
    .await
    .unwrap();
    saved.write(out).unwrap();
    saved
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
    let saved = save_plan(&plan_path, &out).await;
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

    let o = swing()
        .args(["apply", "--output", "json"])
        .arg(&out)
        .current_dir(&lab.dir)
        .output()
        .await
        .unwrap();
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
    // plan --out, then apply exactly that saved plan.
    let out = lab.dir.join("change.plan");
    save_plan(&plan_path, &out).await;
    let first = swing()
        .args(["apply", "--output", "json"])
        .arg(&out)
        .current_dir(&lab.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = lab.dir.join(".swing").join(format!("{}.lock", kit::SITE));
    assert!(
        wait_until(Duration::from_secs(30), || lock.exists()).await,
        "the first apply never took the lock"
    );
    let o = swing()
        .args(["apply", "--auto-approve"])
        .arg(&plan_path)
        .current_dir(&lab.dir)
        .output()
        .await
        .unwrap();
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
    // Re-plan: no changes; applying that is a no-op.
    let again = save_plan(&plan_path, &out).await;
    assert!(!again.has_changes, "{:?}", again.steps);
    let o = swing()
        .args(["apply"])
        .arg(&out)
        .current_dir(&lab.dir)
        .output()
        .await
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("No changes. The site matches the plan."));
    lab.shutdown().await;
}

/// Runs `swing apply` (or `--resume`) and kills it with SIGKILL after `kill_after` more
/// events of interest; returns the exit code when it ended on its own.
async fn run_until(dir: &Path, plan: &PathBuf, resume: bool, kill_after: usize) -> Option<i32> {
    let mut cmd = swing();
    cmd.args(["apply", "--auto-approve", "--output", "json"]);
    if resume {
        cmd.arg("--resume");
    }
    let mut child = cmd
        .arg(plan)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .expect("apply hangs");
        let Ok(Some(line)) = line else { break };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        // Step boundaries and the middle of waits (install, online, Jump Clients).
        if matches!(
            v["event"].as_str(),
            Some("step-succeeded") | Some("step-polling")
        ) {
            seen += 1;
            if seen >= kill_after {
                child.start_kill().unwrap();
                let _ = child.wait().await;
                return None;
            }
        }
    }
    child.wait().await.unwrap().code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn apply_killed_at_step_boundaries_and_mid_wait_resumes_without_repeating_actions() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::AsyncSharedIp, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan_path = lab.write_plan(None, None).unwrap();
    let mut resume = false;
    let mut kills = 0;
    let code = loop {
        // Kill after 1, 2, 3, … events: every run gets a little further than the last.
        match run_until(&lab.dir, &plan_path, resume, 1 + kills % 3).await {
            Some(code) => break code,
            None => {
                kills += 1;
                resume = true;
                assert!(kills < 200, "never finished");
                // The kill can land after the apply closed its journal (the last event was
                // already out): then the change is complete and there is nothing to resume.
                let state = swing_engine::apply::default_state_dir(&plan_path);
                if swing_engine::apply::unfinished(&state)
                    .expect("state dir readable")
                    .is_empty()
                {
                    break 0;
                }
            }
        }
    };
    assert_eq!(code, 0, "after {kills} kills");
    assert!(
        kills >= 5,
        "only {kills} kills: the test did not interrupt enough"
    );
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
