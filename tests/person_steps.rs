//! A change driven by people (`operator: prompt`), with the real `swing` binary against a
//! simulated appliance whose `/_sim` automation stands in for the person's clicks: the three
//! independent person-steps of the backup group are offered together with one resume command
//! confirming them all; every confirmation is recorded with who gave it and their note; a
//! step confirmed before the person did it is waited for, with progress lines in a log that
//! say what is awaited and until when, and verified once done.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use swing_engine::provider::{OperatorAction, OperatorBridge, OperatorTask};
use swing_providers::operator::{SimOperator, SimTarget};
use swing_testkit::kit::{self, Lab, LabOptions, Scenario, TARGET_VERSION};
use tokio::io::{AsyncBufReadExt, BufReader};

fn swing(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.current_dir(dir)
        .stdin(Stdio::null())
        .env("XDG_STATE_HOME", kit::state_home(dir))
        .env_remove("SWING_ACTOR")
        .env_remove("GITHUB_ACTOR")
        .env_remove("GITLAB_USER_LOGIN")
        .kill_on_drop(true);
    c
}

async fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let o = tokio::time::timeout(Duration::from_secs(120), swing(dir).args(args).output())
        .await
        .expect("swing apply ends")
        .unwrap();
    (
        o.status.code(),
        format!(
            "{}\n--- stderr\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// The `finished` event's report of a `--output json` run.
fn report(out: &str) -> Value {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == "finished")
        .map(|v| v["report"].clone())
        .unwrap_or_else(|| panic!("no finished event\n{out}"))
}

fn waiting(r: &Value) -> Vec<String> {
    r["waiting"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|x| x["step"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `swing status --format json PLAN`.
async fn status(dir: &Path, plan: &str) -> Value {
    let (code, out) = run(dir, &["status", "--format", "json", plan]).await;
    assert_eq!(code, Some(0), "{out}");
    let json = out.split("\n--- stderr").next().unwrap_or_default();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("status JSON: {e}\n{out}"))
}

fn waits(s: &Value) -> Vec<(String, String)> {
    s["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["step"].as_str().unwrap().to_owned(),
                w["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// What the person does on the appliance, through the simulator's automation.
async fn person_does(person: &SimOperator, appliance: &str, step: &str, action: OperatorAction) {
    let task = OperatorTask {
        step_id: step.into(),
        appliance: appliance.into(),
        action,
        instructions: Vec::new(),
    };
    person.perform(&task).await.expect("the person's action");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_confirm_together_are_recorded_and_an_early_confirmation_is_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::SingleAutomatic, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let path = lab.write_plan(None, None).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("operator: sim", "operator: prompt")).unwrap();
    let plan = path.to_str().unwrap();
    let name = lab.sims[0].0.clone();
    let addr = lab.sim(&name).unwrap().addr();
    let person = SimOperator::new(
        vec![SimTarget {
            name: name.clone(),
            url: format!("https://{addr}"),
        }],
        Some(lab.ca_file.clone()),
        None,
        Duration::from_secs(30),
    )
    .unwrap();

    // 1. Up to the backup group: its three person-steps are offered together.
    let (code, out) = run(&lab.dir, &["apply", "--auto-approve", plan]).await;
    assert_eq!(code, Some(3), "{out}");
    let group = [
        "backup.certificates",
        "backup.vault-key",
        "clients.throttle",
    ];
    for s in group {
        assert!(
            out.contains(&format!("waiting for confirmation of {s}")),
            "{out}"
        );
    }
    assert!(
        out.contains(
            "swing apply --resume --confirm backup.certificates --confirm backup.vault-key --confirm clients.throttle"
        ),
        "one command confirms all three\n{out}"
    );
    let s = status(&lab.dir, plan).await;
    assert_eq!(s["outcome"], "paused", "{s}");
    assert_eq!(s["phase"], "backup", "{s}");
    assert_eq!(
        waits(&s),
        group.map(|g| (g.to_owned(), "confirmation".to_owned())),
        "{s}"
    );
    assert!(
        s["waiting"][0]["instructions"]
            .as_array()
            .is_some_and(|i| !i.is_empty()),
        "a person-step comes with its instructions: {s}"
    );
    assert!(s["lock"].is_null(), "a paused apply holds no lock: {s}");
    let total = s["steps_total"].as_u64().unwrap();
    let done_before = s["steps_done"].as_u64().unwrap();
    assert!(done_before >= 6 && done_before < total, "{s}");

    // 2. The person does all three, then confirms them in one go, with a note.
    let backups = lab.dir.join("backups");
    person_does(
        &person,
        &name,
        "backup.certificates",
        OperatorAction::ExportCertificate { directory: backups },
    )
    .await;
    person_does(&person, &name, "backup.vault-key", OperatorAction::VaultKey).await;
    person_does(
        &person,
        &name,
        "clients.throttle",
        OperatorAction::ClientThrottle {
            max_concurrent_upgrades: 100,
        },
    )
    .await;
    let mut args = vec!["apply", "--resume", "--output", "json"];
    for s in group {
        args.extend(["--confirm", s]);
    }
    args.extend([
        "--as",
        "alice",
        "--note",
        "exported; vault key in the safe",
        plan,
    ]);
    let (code, out) = run(&lab.dir, &args).await;
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(waiting(&report(&out)), [format!("{name}.install")], "{out}");
    let s = status(&lab.dir, plan).await;
    assert_eq!(s["outcome"], "paused", "{s}");
    assert_eq!(s["steps_done"].as_u64(), Some(done_before + 3), "{s}");
    assert_eq!(s["confirmations"].as_array().map(Vec::len), Some(3), "{s}");
    assert_eq!(s["confirmations"][0]["actor"], "alice", "{s}");

    // 3. Bob confirms the install before doing it: swing waits and says so in the log, then
    //    verifies once he has installed.
    let install = format!("{name}.install");
    let mut child = swing(&lab.dir)
        .args(["apply", "--resume", "--confirm", &install, "--as", "bob"])
        .args(["--progress-interval", "1s", plan])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = String::new();
    let progress = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no progress line while waiting\n{log}"))
            .unwrap()
            .unwrap_or_else(|| panic!("apply ended before the install\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains(&format!("… {install}:")) {
            break line;
        }
    };
    assert!(
        progress.contains(&format!("waiting for {TARGET_VERSION}"))
            && progress.contains("gives up at"),
        "what is awaited, what is seen, until when: {progress}"
    );
    // Asked while the apply runs: it holds the lock and waits for the install's condition.
    let s = status(&lab.dir, plan).await;
    assert_eq!(s["outcome"], "running", "{s}");
    assert_eq!(s["lock"]["live"], true, "{s}");
    assert_eq!(
        waits(&s),
        [(install.clone(), "condition".to_owned())],
        "{s}"
    );
    assert!(s["waiting"][0]["deadline"].is_string(), "{s}");
    person_does(
        &person,
        &name,
        &install,
        OperatorAction::Install {
            packages: vec!["base-7.2.1".into(), format!("pra-{TARGET_VERSION}")],
            version: TARGET_VERSION.into(),
        },
    )
    .await;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("apply goes on after the install")
        .unwrap()
    {
        log.push_str(&line);
        log.push('\n');
    }
    let exited = child.wait().await.unwrap();
    assert_eq!(exited.code(), Some(3), "paused at the follow-up\n{log}");
    assert!(log.contains(&format!("✓ {install}")), "{log}");

    // 4. Carol does the client follow-up; the change is done and its report names everyone.
    let (code, out) = run(
        &lab.dir,
        &[
            "apply",
            "--resume",
            "--output",
            "json",
            "--confirm",
            "clients.followup",
            "--as",
            "carol",
            plan,
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}");
    let r = report(&out);
    assert_eq!(r["outcome"], "done", "{out}");
    let step = |id: &str| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no step {id} in {r}"))
    };
    for s in group {
        let s = step(s);
        assert_eq!(s["confirmed_by"], "alice", "{s}");
        assert_eq!(s["note"], "exported; vault key in the safe", "{s}");
    }
    assert_eq!(step(&install)["confirmed_by"], "bob");
    assert!(step(&install)["note"].is_null());
    assert_eq!(step("clients.followup")["confirmed_by"], "carol");
    let done = step(&install);
    assert!(
        done["started"].as_str().is_some() && done["finished"].as_str().is_some(),
        "{done}"
    );
    let s = status(&lab.dir, plan).await;
    assert_eq!(s["outcome"], "done", "{s}");
    assert_eq!(s["steps_done"], s["steps_total"], "{s}");
    assert!(waits(&s).is_empty(), "{s}");
    // The change record names every actor and note, each run, and the backup with its hash.
    let (code, out) = run(&lab.dir, &["report", "--format", "json", plan]).await;
    assert_eq!(code, Some(0), "{out}");
    let rec: Value = serde_json::from_str(out.split("\n--- stderr").next().unwrap()).unwrap();
    assert_eq!(rec["verdict"], "done", "{rec}");
    assert_eq!(rec["runs"].as_array().map(Vec::len), Some(4), "{rec}");
    let by = |id: &str| {
        rec["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| (s["confirmed_by"].clone(), s["note"].clone()))
            .unwrap()
    };
    assert_eq!(by("backup.vault-key").0, "alice");
    assert_eq!(by("backup.vault-key").1, "exported; vault key in the safe");
    assert_eq!(by(&install).0, "bob");
    assert_eq!(by("clients.followup").0, "carol");
    let backups = rec["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1, "{rec}");
    let b = &backups[0];
    assert_eq!(
        b["sha256"].as_str(),
        Some(swing_testkit::e2e::sha256_file(Path::new(b["path"].as_str().unwrap())).as_str())
    );
    let (code, md) = run(&lab.dir, &["report", plan]).await;
    assert_eq!(code, Some(0), "{md}");
    assert!(
        md.contains("**done**") && md.contains("alice") && md.contains("carol"),
        "{md}"
    );
    assert!(md.len() < 65_000);
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    lab.shutdown().await;
}
