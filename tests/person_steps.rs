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

/// The signing key of the webhook in the two-window change.
const HOOK_KEY: &str = "two-window-hook-key-3c9a";

/// A stamped event of a `--output json` run: its `@timestamp` as UNIX milliseconds.
fn event_ms(out: &str, kind: &str, step: &str) -> Option<i64> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["type"] == kind && v["step"] == step)
        .and_then(|v| {
            chrono::DateTime::parse_from_rfc3339(v["@timestamp"].as_str()?)
                .ok()
                .map(|t| t.timestamp_millis())
        })
}

/// The asynchronous DNS lab's plan as people run it: `operator: prompt`, the first window
/// open now until `first_end_ms`, the second opening at `second_start_ms`, estimates of a
/// person's minute-long clicks (so the schedule keeps every step in its guide window), and a
/// signed webhook.
fn two_window_plan(
    lab: &Lab,
    dns: &kit::DnsSetup,
    now_ms: i64,
    first_end_ms: i64,
    second_start_ms: i64,
    hook: &str,
) -> std::path::PathBuf {
    let t = swing_engine::time::rfc3339_ms;
    let yaml = lab
        .plan_yaml(Some(dns), None)
        .unwrap()
        .replace("operator: sim", "operator: prompt");
    let (a, b) = (
        yaml.find("  estimates:").unwrap(),
        yaml.find("backup:\n").unwrap(),
    );
    let yaml = format!(
        "{}  estimates: {{ switch.prepare: {}s, health: 2s, backup: 2s, certificates: 2s, \
         vault-key: 2s, throttle: 2s, sync: 20s, break: 2s, install: 20s, online: 5s, verify: 2s, \
         switch-verify: 3s, keys: 2s, establish: 5s, resync: 10s, restore-ttl: 2s, \
         clients-wait: 5s, clients-followup: 2s }}\n{}",
        &yaml[..a],
        kit::DNS_OLD_TTL,
        &yaml[b..]
    );
    let windows = format!(
        "windows:\n  - {{ name: first, start: {}, end: {} }}\n  - {{ name: second, start: {}, end: {} }}\npolicy:\n",
        t(now_ms - 60_000),
        t(first_end_ms),
        t(second_start_ms),
        t(second_start_ms + 6 * 3_600_000)
    );
    let yaml = yaml.replacen("policy:\n", &windows, 1);
    std::fs::write(lab.dir.join("hook.key"), HOOK_KEY).unwrap();
    std::fs::set_permissions(
        lab.dir.join("hook.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let path = lab.dir.join("plan.yaml");
    std::fs::write(
        &path,
        format!(
            "{yaml}notify:\n  - type: webhook\n    url: {hook}/swing\n    secret: ${{file:./hook.key}}\n"
        ),
    )
    .unwrap();
    path
}

/// The asynchronous DNS lab with a real `named` serving the site at the first appliance.
async fn dns_lab(dir: &Path) -> (Lab, swing_testkit::named::Named, kit::DnsSetup) {
    let lab = Lab::start(Scenario::AsyncDns, dir, LabOptions::default())
        .await
        .unwrap();
    let first = lab.first_address().unwrap().to_string();
    let named = swing_testkit::named::Named::start(&[("access", kit::DNS_OLD_TTL, "A", &first)]);
    let dns = kit::DnsSetup {
        server: named.addr,
        key_name: swing_testkit::named::KEY_NAME.into(),
        secret: swing_schema::SecretValue::new(swing_testkit::named::KEY_SECRET),
    };
    (lab, named, dns)
}

/// What a person does on the appliances for each person-step of the asynchronous DNS change.
struct People {
    sim: SimOperator,
    lab_dir: std::path::PathBuf,
    a_address: String,
    peer_port: u16,
}

impl People {
    fn new(lab: &Lab) -> People {
        let targets = ["a", "b"]
            .iter()
            .map(|n| SimTarget {
                name: (*n).to_owned(),
                url: format!("https://{}", lab.sim(n).unwrap().addr()),
            })
            .collect();
        People {
            sim: SimOperator::new(
                targets,
                Some(lab.ca_file.clone()),
                None,
                Duration::from_secs(30),
            )
            .unwrap(),
            lab_dir: lab.dir.clone(),
            a_address: lab.address("a").unwrap().to_string(),
            peer_port: lab.port,
        }
    }

    /// Does `step` as the plan's instructions say, on the appliance it names.
    async fn done(&self, lab: &Lab, step: &str) {
        let install = || OperatorAction::Install {
            packages: vec!["base-7.2.1".into(), format!("pra-{TARGET_VERSION}")],
            version: TARGET_VERSION.into(),
        };
        let (on, action) = match step {
            "backup.certificates" => (
                "a",
                OperatorAction::ExportCertificate {
                    directory: self.lab_dir.join("backups"),
                },
            ),
            "backup.vault-key" => ("a", OperatorAction::VaultKey),
            "clients.throttle" => (
                "a",
                OperatorAction::ClientThrottle {
                    max_concurrent_upgrades: 100,
                },
            ),
            "failover.sync" => ("a", OperatorAction::SyncNow),
            "failover.break" => ("a", OperatorAction::BreakFailover),
            "b.install" => ("b", install()),
            "a.install" => ("a", install()),
            "failover.keys" => ("a", OperatorAction::ConfirmKeys),
            "failover.establish" => (
                "b",
                OperatorAction::EstablishFailover {
                    backup_address: self.a_address.clone(),
                    peer_port: self.peer_port,
                },
            ),
            "clients.followup" => ("b", OperatorAction::ClientFollowup),
            other => panic!("no person's action for {other}"),
        };
        let clicked_s = swing_engine::time::now_ms() / 1000;
        person_does(&self.sim, on, step, action).await;
        if step == "failover.sync" {
            // "Click Sync Now and wait until the page shows the last data sync finished
            // successfully": the person waits for it, then reads the page for a moment.
            let b = lab.sim("b").unwrap();
            assert!(
                kit::wait_until(Duration::from_secs(60), || {
                    let st = b.state();
                    !st.sync_in_progress && st.last_data_sync_unix.is_some_and(|t| t >= clicked_s)
                })
                .await,
                "the sync did not finish"
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// An asynchronous DNS upgrade (real `named`) driven by people over two windows: the backup
/// group confirmed together, Sync Now confirmed before it was clicked (swing waits and says
/// so, then verifies), the break and west's install confirmed together, a pause for the second
/// window, status right at every pause, every actor and note in the change record, time
/// without failover equal to the wall clock between break and establish, and a signed webhook
/// that heard `paused`, `waiting-for-window` and `done`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_async_dns_change_driven_by_people_across_two_windows() {
    let (hook, got) = swing_testkit::webhook::receiver(axum::http::StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let (lab, named, dns) = dns_lab(dir.path()).await;
    // The first window holds the steps up to the swing; the second opens while the test runs.
    let now = swing_engine::time::now_ms();
    let second_start = now + 95_000;
    let path = two_window_plan(&lab, &dns, now, now + 90_000, second_start, &hook);
    let plan = path.to_str().unwrap();
    let people = People::new(&lab);
    let json = |args: &[&'static str]| {
        let mut v: Vec<&str> = args.to_vec();
        v.extend(["--output", "json", plan]);
        v.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let go = |args: Vec<String>| {
        let dir = lab.dir.clone();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            run(&dir, &refs).await
        }
    };

    // 1. Up to the backup group: three person-steps at once.
    let (code, out) = go(json(&["apply", "--auto-approve"])).await;
    assert_eq!(code, Some(3), "{out}");
    let group = [
        "backup.certificates",
        "backup.vault-key",
        "clients.throttle",
    ];
    assert_eq!(waiting(&report(&out)), group, "{out}");
    let s = status(&lab.dir, plan).await;
    assert_eq!(
        (s["outcome"].as_str(), s["phase"].as_str()),
        (Some("paused"), Some("backup")),
        "{s}"
    );
    assert_eq!(
        waits(&s),
        group.map(|g| (g.to_owned(), "confirmation".to_owned())),
        "{s}"
    );
    assert_eq!(s["unprotected_s"], 0, "{s}");

    // 2. Alice does all three and confirms them together.
    for g in group {
        people.done(&lab, g).await;
    }
    let mut args = json(&[
        "apply",
        "--resume",
        "--as",
        "alice",
        "--note",
        "exported; vault key in the safe",
    ]);
    for g in group {
        args.splice(2..2, ["--confirm".to_owned(), g.to_owned()]);
    }
    let (code, out) = go(args).await;
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(waiting(&report(&out)), ["failover.sync"], "{out}");
    let s = status(&lab.dir, plan).await;
    assert_eq!(
        waits(&s),
        [("failover.sync".to_owned(), "confirmation".to_owned())],
        "{s}"
    );

    // 3. Bob confirms Sync Now before clicking it: swing waits, says what for, then verifies.
    let mut child = swing(&lab.dir)
        .args([
            "apply",
            "--resume",
            "--confirm",
            "failover.sync",
            "--as",
            "bob",
        ])
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
            .unwrap_or_else(|| panic!("apply ended before the sync\n{log}"));
        log.push_str(&line);
        log.push('\n');
        if line.contains("… failover.sync:") {
            break line;
        }
    };
    assert!(
        progress.contains("waiting for a successful data sync") && progress.contains("gives up at"),
        "{progress}"
    );
    let s = status(&lab.dir, plan).await;
    assert_eq!(s["outcome"], "running", "{s}");
    assert_eq!(
        waits(&s),
        [("failover.sync".to_owned(), "condition".to_owned())],
        "{s}"
    );
    people.done(&lab, "failover.sync").await;
    while let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the apply goes on after the sync")
        .unwrap()
    {
        log.push_str(&line);
        log.push('\n');
    }
    assert_eq!(child.wait().await.unwrap().code(), Some(3), "{log}");
    assert!(log.contains("✓ failover.sync"), "{log}");
    let s = status(&lab.dir, plan).await;
    assert_eq!(
        waits(&s),
        [("failover.break".to_owned(), "confirmation".to_owned())],
        "{s}"
    );

    // 4. Carol breaks the pair and installs west, then confirms both: the first window ends
    //    with the site on b and the change waiting for the second window.
    people.done(&lab, "failover.break").await;
    people.done(&lab, "b.install").await;
    let (code, out) = go(json(&[
        "apply",
        "--resume",
        "--confirm",
        "failover.break",
        "--confirm",
        "b.install",
        "--as",
        "carol",
        "--note",
        "pair broken, west installed",
    ]))
    .await;
    assert_eq!(code, Some(3), "{out}");
    let broken_ms = event_ms(&out, "step-succeeded", "failover.break").expect("break verified");
    let r = report(&out);
    assert_eq!(waiting(&r), ["a.install"], "{out}");
    assert_eq!(r["waiting"][0]["reason"], "window", "{r}");
    assert_eq!(r["waiting"][0]["window"], "second", "{r}");
    let s = status(&lab.dir, plan).await;
    assert_eq!(s["outcome"], "paused", "{s}");
    assert_eq!(
        waits(&s),
        [("a.install".to_owned(), "window".to_owned())],
        "{s}"
    );
    assert!(s["unprotected_s"].as_u64().is_some(), "{s}");
    assert_eq!(
        named.dig(kit::SITE, "A")[0].value,
        lab.address("b").unwrap().to_string(),
        "the site is on b between the windows"
    );
    // The client's view of the swing was measured by the apply itself.
    let by = r["downtime_by_step"].as_array().expect("measured per step");
    assert_eq!(by[0]["step"], "switch.to-b", "{r}");
    assert!(by[0]["longest_outage_ms"].as_u64().unwrap() <= 2_000, "{r}");

    // 5. The second window opens; Dave installs east.
    tokio::time::sleep_until(
        tokio::time::Instant::now()
            + Duration::from_millis(
                u64::try_from(second_start - swing_engine::time::now_ms()).unwrap_or(0) + 200,
            ),
    )
    .await;
    let (code, out) = go(json(&["apply", "--resume"])).await;
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(waiting(&report(&out)), ["a.install"], "{out}");
    let s = status(&lab.dir, plan).await;
    assert_eq!(
        waits(&s),
        [("a.install".to_owned(), "confirmation".to_owned())],
        "{s}"
    );
    people.done(&lab, "a.install").await;
    let (code, out) = go(json(&[
        "apply",
        "--resume",
        "--confirm",
        "a.install",
        "--as",
        "dave",
    ]))
    .await;
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(waiting(&report(&out)), ["failover.keys"], "{out}");

    // 6. Erin checks the keys and establishes the pair, confirming both.
    people.done(&lab, "failover.keys").await;
    people.done(&lab, "failover.establish").await;
    let (code, out) = go(json(&[
        "apply",
        "--resume",
        "--confirm",
        "failover.keys",
        "--confirm",
        "failover.establish",
        "--as",
        "erin",
        "--note",
        "keys identical; b primary",
    ]))
    .await;
    assert_eq!(code, Some(3), "{out}");
    let restored_ms =
        event_ms(&out, "step-succeeded", "failover.establish").expect("establish verified");
    assert_eq!(waiting(&report(&out)), ["clients.followup"], "{out}");

    // 7. Frank follows up on the clients: done.
    people.done(&lab, "clients.followup").await;
    let (code, out) = go(json(&[
        "apply",
        "--resume",
        "--confirm",
        "clients.followup",
        "--as",
        "frank",
    ]))
    .await;
    assert_eq!(code, Some(0), "{out}");
    let s = status(&lab.dir, plan).await;
    assert_eq!(s["outcome"], "done", "{s}");
    assert_eq!(s["steps_done"], s["steps_total"], "{s}");

    // The change record names everyone and the wall clock without failover.
    let (code, out) = run(&lab.dir, &["report", "--format", "json", plan]).await;
    assert_eq!(code, Some(0), "{out}");
    let rec: Value = serde_json::from_str(out.split("\n--- stderr").next().unwrap()).unwrap();
    assert_eq!(rec["verdict"], "done", "{rec}");
    let by = |id: &str| {
        rec["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| (s["confirmed_by"].clone(), s["note"].clone()))
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    for (step, who, note) in [
        (
            "backup.certificates",
            "alice",
            Some("exported; vault key in the safe"),
        ),
        (
            "clients.throttle",
            "alice",
            Some("exported; vault key in the safe"),
        ),
        ("failover.sync", "bob", None),
        (
            "failover.break",
            "carol",
            Some("pair broken, west installed"),
        ),
        ("b.install", "carol", Some("pair broken, west installed")),
        ("a.install", "dave", None),
        (
            "failover.establish",
            "erin",
            Some("keys identical; b primary"),
        ),
        ("clients.followup", "frank", None),
    ] {
        let (by, n) = by(step);
        assert_eq!(by, who, "{step}");
        assert_eq!(n.as_str(), note, "{step}");
    }
    let wall_s = (restored_ms - broken_ms) as f64 / 1000.0;
    let unprotected = rec["unprotected_s"].as_f64().unwrap();
    eprintln!("without failover: report {unprotected} s, wall clock {wall_s} s");
    assert!(
        (unprotected - wall_s).abs() <= 1.0,
        "unprotected {unprotected} s, wall clock {wall_s} s"
    );
    assert!(
        wall_s > 30.0,
        "the pause between the windows is counted: {wall_s} s"
    );
    assert!(rec["downtime_measured_s"].as_f64().is_some(), "{rec}");
    let (code, md) = run(&lab.dir, &["report", plan]).await;
    assert_eq!(code, Some(0), "{md}");
    for who in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        assert!(md.contains(who), "{who} is not in the record\n{md}");
    }

    // The webhook heard the pauses, the wait for the second window and the end, all signed.
    let bodies = got.lock().unwrap().clone();
    let kinds: Vec<String> = swing_testkit::webhook::events(&got)
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    for k in ["paused", "waiting-for-window", "done"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    assert_eq!(kinds.last().map(String::as_str), Some("done"), "{kinds:?}");
    for (sig, body) in &bodies {
        assert!(
            swing_testkit::webhook::verify_signature(
                HOOK_KEY.as_bytes(),
                sig.as_deref().unwrap_or_default(),
                body
            ),
            "a notification with no valid signature: {}",
            String::from_utf8_lossy(body)
        );
    }
    let window_wait = swing_testkit::webhook::events(&got)
        .into_iter()
        .find(|e| e["event"] == "waiting-for-window")
        .unwrap();
    assert_eq!(window_wait["step"], "a.install", "{window_wait}");
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    lab.shutdown().await;
}

/// A tmux server of its own (`-L`), killed on drop: a real terminal for `swing apply`.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("swing-test-{}-{}", std::process::id(), fastrand::u32(..)),
        }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux runs (install tmux)")
    }

    /// Runs `shell` in a new window `name` of a wide terminal.
    fn run(&self, name: &str, shell: &str) {
        let first = !self.cmd(&["has-session", "-t", "swing"]).status.success();
        let o = if first {
            self.cmd(&[
                "new-session",
                "-d",
                "-s",
                "swing",
                "-n",
                name,
                "-x",
                "220",
                "-y",
                "50",
                shell,
            ])
        } else {
            self.cmd(&["new-window", "-t", "swing", "-n", name, shell])
        };
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// The window's screen and its history.
    fn screen(&self, name: &str) -> String {
        let o = self.cmd(&[
            "capture-pane",
            "-p",
            "-J",
            "-S",
            "-5000",
            "-t",
            &format!("swing:{name}"),
        ]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn type_line(&self, name: &str, text: &str) {
        let target = format!("swing:{name}");
        let o = self.cmd(&["send-keys", "-t", &target, "-l", text]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = self.cmd(&["send-keys", "-t", &target, "Enter"]);
        assert!(o.status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// Drives one `swing apply` in tmux window `name` through its prompts: each person-step asked
/// for is done by the person (`people`) and then answered with its id — but `early`, which is
/// answered first and done after, as a person who confirms before clicking. Returns the exit
/// code the shell printed and the screen.
async fn through_prompts(
    tmux: &Tmux,
    name: &str,
    lab: &Lab,
    people: &People,
    early: &[&str],
) -> (i32, String) {
    let header = regex::Regex::new(r"(?m)^\? ([a-z0-9.\-]+) — ").unwrap();
    let exited = regex::Regex::new(r"\[swing exited (\d+)\]").unwrap();
    let mut answered: Vec<String> = Vec::new();
    let mut screen = String::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(240);
    while tokio::time::Instant::now() < until {
        screen = tmux.screen(name);
        if let Some(c) = exited.captures(&screen) {
            return (c[1].parse().unwrap(), screen);
        }
        let asked: Vec<String> = header
            .captures_iter(&screen)
            .map(|c| c[1].to_owned())
            .collect();
        let prompt_shown = asked.len() > answered.len()
            && screen.contains(&format!(
                "Type the step id ({}) when done",
                asked[answered.len()]
            ));
        if prompt_shown {
            let step = asked[answered.len()].clone();
            if early.contains(&step.as_str()) {
                tmux.type_line(name, &step);
                people.done(lab, &step).await;
            } else {
                people.done(lab, &step).await;
                tmux.type_line(name, &step);
            }
            answered.push(step);
            continue;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("swing did not end in window {name}; answered {answered:?}\n{screen}");
}

/// The same change on a real terminal: every person-step is asked for at the prompt (the
/// backup group one prompt after another in the same run), answered by typing the step id;
/// the first window's run ends waiting for the second, whose run is prompted to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_change_on_a_real_terminal_passes_through_the_prompts() {
    let (hook, _got) = swing_testkit::webhook::receiver(axum::http::StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let (lab, _named, dns) = dns_lab(dir.path()).await;
    let now = swing_engine::time::now_ms();
    let second_start = now + 75_000;
    let path = two_window_plan(&lab, &dns, now, now + 70_000, second_start, &hook);
    let people = People::new(&lab);
    let tmux = Tmux::new();
    let shell = |args: &str| {
        format!(
            "cd '{}' && env -u SWING_ACTOR -u GITHUB_ACTOR -u GITLAB_USER_LOGIN XDG_STATE_HOME='{}' '{}' apply {args} --as tom '{}'; echo \"[swing exited $?]\"; sleep 3600",
            lab.dir.display(),
            kit::state_home(&lab.dir).display(),
            env!("CARGO_BIN_EXE_swing"),
            path.display()
        )
    };

    tmux.run("first", &shell("--auto-approve"));
    // Sync Now is clicked when asked and confirmed after it finished, as its instructions
    // say (the sync counts from the moment swing asked); west's install is confirmed first.
    let (code, screen) = through_prompts(&tmux, "first", &lab, &people, &["b.install"]).await;
    assert_eq!(
        code, 3,
        "the first window's run waits for the second\n{screen}"
    );
    for step in [
        "backup.certificates",
        "backup.vault-key",
        "clients.throttle",
        "failover.sync",
        "failover.break",
        "b.install",
    ] {
        assert!(
            screen.contains(&format!("? {step} — ")),
            "{step} was not asked\n{screen}"
        );
    }
    let plan = path.to_str().unwrap();
    let s = status(&lab.dir, plan).await;
    assert_eq!(
        waits(&s),
        [("a.install".to_owned(), "window".to_owned())],
        "{s}"
    );

    tokio::time::sleep_until(
        tokio::time::Instant::now()
            + Duration::from_millis(
                u64::try_from(second_start - swing_engine::time::now_ms()).unwrap_or(0) + 200,
            ),
    )
    .await;
    tmux.run("second", &shell("--resume"));
    let (code, screen) = through_prompts(&tmux, "second", &lab, &people, &[]).await;
    assert_eq!(code, 0, "{screen}");
    for step in [
        "a.install",
        "failover.keys",
        "failover.establish",
        "clients.followup",
    ] {
        assert!(
            screen.contains(&format!("? {step} — ")),
            "{step} was not asked\n{screen}"
        );
    }
    let s = status(&lab.dir, plan).await;
    assert_eq!(s["outcome"], "done", "{s}");
    let (code, out) = run(&lab.dir, &["report", "--format", "json", plan]).await;
    assert_eq!(code, Some(0), "{out}");
    let rec: Value = serde_json::from_str(out.split("\n--- stderr").next().unwrap()).unwrap();
    let confirmed: Vec<&str> = rec["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["confirmed_by"].is_string())
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        confirmed.len(),
        10,
        "every person-step confirmed at a prompt: {confirmed:?}"
    );
    assert!(
        rec["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["confirmed_by"].is_string())
            .all(|s| s["confirmed_by"] == "tom"),
        "{rec}"
    );
    assert!(
        lab.check_final_state().is_empty(),
        "{:?}",
        lab.check_final_state()
    );
    lab.shutdown().await;
}
