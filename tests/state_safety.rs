//! The state directory cannot be turned against its owner, and an apply that cannot go on can
//! be abandoned — the real `swing` binary against in-process simulators (fast time scale):
//! one lock per site for the whole host (the same site from two folders is applied once),
//! `unlock --force` refuses a live holder, symlinked or world-writable state and backup
//! folders are refused with the target untouched, and `apply --abandon` ends a failed apply
//! and a torn journal so that a fresh apply runs to the end.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use swing_sim::{Fault, Faults};
use swing_testkit::kit::{self, Lab, LabOptions, Scenario, wait_until};

/// `swing ARGS` in `dir` with the state home `home`, to the end (killed after 120 s; the
/// panic then shows what it printed so far).
async fn swing(dir: &Path, home: &Path, args: &[&str]) -> std::process::Output {
    use tokio::io::AsyncReadExt;
    let mut child = cmd(dir, home, args).spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let run = async {
        let (o, e, status) = tokio::join!(
            out.read_to_end(&mut stdout),
            err.read_to_end(&mut stderr),
            child.wait()
        );
        o.and(e).and(status)
    };
    let ended = tokio::time::timeout(Duration::from_secs(120), run).await;
    match ended {
        Ok(status) => std::process::Output {
            status: status.unwrap(),
            stdout,
            stderr,
        },
        Err(_) => panic!(
            "swing {args:?} hangs\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        ),
    }
}

fn cmd(dir: &Path, home: &Path, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", home)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn installs(lab: &Lab) -> usize {
    lab.sims
        .iter()
        .map(|(_, s)| {
            s.state()
                .actions
                .iter()
                .filter(|a| a.action == "install.started")
                .count()
        })
        .sum()
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

async fn lab(dir: &Path) -> Lab {
    let options = LabOptions {
        jump_clients: 5,
        ..LabOptions::default()
    };
    Lab::start(Scenario::SingleAutomatic, dir, options)
        .await
        .expect("lab starts")
}

/// The lab's plan written into `folder` with every relative path made absolute, so it is the
/// same change of the same site planned from another folder.
fn plan_in(lab: &Lab, folder: &Path) -> PathBuf {
    std::fs::create_dir_all(folder).unwrap();
    let yaml = std::fs::read_to_string(lab.write_plan(None, None).unwrap()).unwrap();
    let abs = format!("{}/", lab.dir.display());
    let yaml = yaml.replace(": ./", &format!(": {abs}"));
    let yaml = yaml.replace("file:./", &format!("file:{abs}"));
    let path = folder.join("plan.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn change_name(plan: &Path) -> String {
    swing_engine::validate::check_file(plan)
        .plan
        .expect("the lab plan is valid")
        .into_plan()
        .name
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_site_from_two_folders_is_applied_once_and_a_live_holder_is_not_force_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path()).await;
    let home = kit::state_home(&lab.dir);
    let here = plan_in(&lab, &lab.dir.join("one"));
    let there = plan_in(&lab, &lab.dir.join("two"));
    // The install never finishes while the fault is set: the first apply holds the site.
    set_fault(&lab, "install-hangs");
    let first = cmd(
        &lab.dir,
        &home,
        &["apply", "--auto-approve", "--output", "json"],
    )
    .arg(&here)
    .spawn()
    .unwrap();
    let pid = first.id().expect("running");
    assert!(
        wait_until(Duration::from_secs(60), || installs(&lab) == 1).await,
        "the first apply never sent the install"
    );

    let o = swing(
        &lab.dir,
        &home,
        &["apply", "--auto-approve", there.to_str().unwrap()],
    )
    .await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        err.contains("another apply holds the lock") && err.contains(&format!("pid {pid}")),
        "{}",
        text(&o)
    );

    let lock = kit::site_lock(&lab.dir, kit::SITE);
    let o = swing(
        &lab.dir,
        &home,
        &["unlock", "--force", there.to_str().unwrap()],
    )
    .await;
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        err.contains("refusing to unlock") && err.contains(&format!("pid {pid}")),
        "{}",
        text(&o)
    );
    assert!(lock.exists(), "the live holder's lock was removed");

    clear_faults(&lab);
    let first = tokio::time::timeout(Duration::from_secs(120), first.wait_with_output())
        .await
        .expect("the first apply finishes")
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(installs(&lab), 1, "the site was installed twice");
    assert!(!lock.exists(), "the lock is released at the end");
    lab.shutdown().await;
}

/// One refused case: what to plant, then the apply must exit 1 saying `fix`, and `victim`
/// must read as before.
async fn refused(lab: &Lab, case: &str, plant: impl FnOnce(&Path, &Path, &Path), fix: &str) {
    let folder = lab.dir.join(case);
    let plan = plan_in(lab, &folder);
    let home = folder.join("state-home");
    std::fs::create_dir_all(&home).unwrap();
    let victim = lab.dir.join(format!("{case}-victim"));
    std::fs::write(&victim, "precious").unwrap();
    plant(&folder, &home, &victim);
    let o = swing(
        &folder,
        &home,
        &["apply", "--auto-approve", plan.to_str().unwrap()],
    )
    .await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{case}: {all}");
    assert!(all.contains(fix), "{case}: {all}");
    assert!(!all.contains("panicked"), "{case}: {all}");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious",
        "{case}: the symlink target was changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinked_and_world_writable_state_and_backup_folders_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path()).await;
    let name = change_name(&plan_in(&lab, &lab.dir.join("probe")));

    // `.swing` is a symlink to a directory holding a file named like the journal.
    refused(
        &lab,
        "swing-dir-link",
        |folder, _, victim| {
            let elsewhere = folder.join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, folder.join(".swing")).unwrap();
            std::os::unix::fs::symlink(victim, elsewhere.join(format!("{name}.journal.jsonl")))
                .unwrap();
        },
        "remove the symlink",
    )
    .await;
    // The journal is a symlink to another file.
    refused(
        &lab,
        "journal-link",
        |folder, _, victim| {
            let state = folder.join(".swing");
            std::fs::create_dir(&state).unwrap();
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::symlink(victim, state.join(format!("{name}.journal.jsonl")))
                .unwrap();
        },
        "remove the symlink",
    )
    .await;
    // The site lock is a symlink to another file.
    refused(
        &lab,
        "lock-link",
        |_, home, victim| {
            let lock = swing_engine::apply::lock_path(
                &home.join("swing").join("locks"),
                &swing_engine::apply::LockKey::site(kit::SITE),
            );
            std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(victim, &lock).unwrap();
        },
        "remove the symlink",
    )
    .await;
    // The state directory is writable by everyone.
    refused(
        &lab,
        "state-world-writable",
        |folder, _, _| {
            let state = folder.join(".swing");
            std::fs::create_dir(&state).unwrap();
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        },
        "chmod 700",
    )
    .await;
    // The lock directory is writable by everyone.
    refused(
        &lab,
        "locks-world-writable",
        |_, home, _| {
            let locks = home.join("swing").join("locks");
            std::fs::create_dir_all(&locks).unwrap();
            std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o777)).unwrap();
        },
        "chmod 700",
    )
    .await;
    // The backup directory is writable by everyone: no backup is written into it.
    let backups = lab.dir.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    std::fs::set_permissions(&backups, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(&lab, "backups-world-writable", |_, _, _| {}, "chmod 700").await;
    assert_eq!(
        std::fs::read_dir(&backups).unwrap().count(),
        0,
        "a backup was written into a world-writable directory"
    );
    assert_eq!(installs(&lab), 0, "a refused apply installed");
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_apply_is_abandoned_and_a_fresh_apply_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path()).await;
    let home = kit::state_home(&lab.dir);
    let plan = lab.write_plan(None, None).unwrap();
    let p = plan.to_str().unwrap();
    // The apply halts (at main.clock) on a fault a person can fix by hand. (Not `install-fails`: the
    // simulated appliance then reports the failed install for good — "do not restart the
    // appliance, contact support" — so every later apply rightly waits at `main.health` for a
    // healthy appliance, and the simulator has no "support fixed it" knob.)
    set_fault(&lab, "clock-skew=600");
    let o = swing(&lab.dir, &home, &["apply", "--auto-approve", p]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(installs(&lab), 0, "the halted apply installed");
    clear_faults(&lab);
    // The failed run is never retried: without --abandon the change is stuck.
    let o = swing(&lab.dir, &home, &["apply", "--auto-approve", p]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stopped before finishing"),
        "{}",
        text(&o)
    );

    let o = swing(
        &lab.dir,
        &home,
        &[
            "apply",
            p,
            "--abandon",
            "--reason",
            "the clock was off; fixed by hand",
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let name = change_name(&plan);
    let state = lab.dir.join(".swing");
    assert!(!state.join(format!("{name}.journal.jsonl")).exists());
    let kept: Vec<PathBuf> = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".abandoned-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let journal = std::fs::read_to_string(&kept[0]).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "abandoned", "{journal}");
    assert_eq!(last["reason"], "the clock was off; fixed by hand");
    assert!(last["actor"].as_str().unwrap().contains('@'), "{last}");

    let o = swing(&lab.dir, &home, &["apply", "--auto-approve", p]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(installs(&lab), 1, "the fresh apply installs");
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_journal_is_abandoned_and_a_fresh_apply_runs_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab(dir.path()).await;
    let home = kit::state_home(&lab.dir);
    let plan = lab.write_plan(None, None).unwrap();
    let p = plan.to_str().unwrap();
    let name = change_name(&plan);
    // An apply killed while writing its third record (and with a plan since edited).
    let state = lab.dir.join(".swing");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let journal = state.join(format!("{name}.journal.jsonl"));
    std::fs::write(
        &journal,
        concat!(
            r#"{"ts":"2026-12-01T10:00:00.000Z","ts_ms":1796119200000,"event":"run-started","plan_digest":"old","resume":false,"pid":1,"host":"h","steps":["main.health"]}"#,
            "\n",
            r#"{"ts":"2026-12-01T10:00:01.000Z","ts_ms":1796119201000,"event":"step-started","step":"main.health"}"#,
            "\n",
            r#"{"ts":"2026-12-01T10:00:02.000Z","ts_ms":179611"#,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = swing(&lab.dir, &home, &["apply", "--auto-approve", p]).await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    let o = swing(
        &lab.dir,
        &home,
        &["apply", p, "--abandon", "--reason", "the apply was killed"],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!journal.exists());

    let o = swing(&lab.dir, &home, &["apply", "--auto-approve", p]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(installs(&lab), 1);
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    lab.shutdown().await;
}
