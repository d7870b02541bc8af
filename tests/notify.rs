//! Notifications (`notify` in the plan) against a lab and the real `swing` binary: a webhook
//! receiver on loopback gets `paused` (signed: the test checks the HMAC-SHA256) with the exact
//! resume command, then `done` after resuming with it; an exec target gets the same event as
//! JSON on stdin, without the plan's secret variables. A failed install is `failed`, with the
//! step and why. A receiver that answers 500 and one that is not listening change nothing of
//! the apply's exit code; each failure is on stderr and in the journal — and neither the
//! signing key nor the URL a reference holds appears in any output or file.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use swing_testkit::kit::{self, Lab, LabOptions, Scenario, wait_until};
use swing_testkit::webhook::{self, events, receiver};

const SECRET: &str = "hook-key-5f2b9c1e-never-shown";
/// The token a chat hook URL embeds: secret when the URL comes from a reference.
const URL_TOKEN: &str = "T0KEN-8d41a7-in-the-url";

fn verify_signature(sig: &str, body: &[u8]) -> bool {
    webhook::verify_signature(SECRET.as_bytes(), sig, body)
}

/// The lab's plan with a manual check (the apply pauses for a person after the upgrade) and
/// `notify` appended.
fn write_plan(lab: &Lab, notify: &str) -> std::path::PathBuf {
    let yaml = lab.plan_yaml(None, None).unwrap().replace(
        "  manual: []",
        "  manual: [\"Help > About shows the target build\"]",
    );
    assert!(
        yaml.contains("Help > About"),
        "the lab plan has a verify section"
    );
    let path = lab.dir.join("plan.yaml");
    std::fs::write(&path, format!("{yaml}\nnotify:\n{notify}")).unwrap();
    path
}

async fn swing(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_swing"));
    c.stdin(Stdio::null())
        .kill_on_drop(true)
        .args(args)
        .current_dir(dir)
        .env("XDG_STATE_HOME", kit::state_home(dir));
    for (k, v) in envs {
        c.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(300), c.output())
        .await
        .expect("swing ends")
        .unwrap()
}

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn journal(lab: &Lab) -> String {
    let path = lab
        .dir
        .join(".swing")
        .join(format!("lab-{}.journal.jsonl", lab.scenario.name()));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, read as text (journals, kept journals, locks, backups' metadata).
fn tree_text(dir: &Path) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push_str(&tree_text(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push_str(&String::from_utf8_lossy(&b));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pause_and_the_end_are_notified_signed_with_the_resume_command() {
    let (base, got) = receiver(StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::SingleAutomatic, dir.path(), LabOptions::default())
        .await
        .unwrap();
    std::fs::write(
        lab.dir.join("notify.sh"),
        "#!/bin/sh\ncat >> notified.jsonl\necho >> notified.jsonl\nenv > notify-env.txt\n",
    )
    .unwrap();
    std::fs::set_permissions(
        lab.dir.join("notify.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let plan = write_plan(
        &lab,
        "  - type: webhook\n    url: ${env:SWING_TEST_HOOK_URL}\n    secret: ${env:SWING_TEST_HOOK_SECRET}\n  \
         - type: exec\n    command: ./notify.sh\n    events: [paused]\n",
    );
    let url = format!("{base}/hooks/{URL_TOKEN}");
    let envs = [
        ("SWING_TEST_HOOK_URL", url.as_str()),
        ("SWING_TEST_HOOK_SECRET", SECRET),
    ];
    let plan_s = plan.to_str().unwrap();

    let o = swing(&lab.dir, &["apply", "--auto-approve", plan_s], &envs).await;
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(3),
        "pauses for a person\n{out}\n{err}"
    );
    let got_now = got.lock().unwrap().clone();
    assert_eq!(got_now.len(), 1, "one notification: {:?}", events(&got));
    let (sig, body) = &got_now[0];
    assert!(
        verify_signature(sig.as_deref().expect("signed"), body),
        "X-Swing-Signature {sig:?} does not verify"
    );
    let paused = &events(&got)[0];
    assert_eq!(paused["event"], "paused", "{paused}");
    assert_eq!(paused["outcome"], "paused");
    assert_eq!(paused["site"], kit::SITE);
    let step = paused["step"].as_str().expect("the step it paused at");
    assert!(
        paused["awaiting"][0]
            .as_str()
            .unwrap_or_default()
            .contains(step),
        "{paused}"
    );
    let resume = paused["resume_command"].as_str().expect("resume command");
    // The same command the paused message prints.
    assert!(out.contains(resume), "{resume} not in\n{out}");
    assert!(resume.contains(&format!("--confirm {step}")), "{resume}");

    // The exec target got the very event on stdin.
    let exec_got = std::fs::read_to_string(lab.dir.join("notified.jsonl")).unwrap();
    let exec_event: serde_json::Value = serde_json::from_str(exec_got.trim()).unwrap();
    assert_eq!(&exec_event, paused);
    // ...without the variables the plan's secret references name.
    let env = std::fs::read_to_string(lab.dir.join("notify-env.txt")).unwrap();
    for leak in [
        "SWING_TEST_HOOK_SECRET",
        SECRET,
        "SWING_TEST_HOOK_URL",
        URL_TOKEN,
    ] {
        assert!(
            !env.contains(leak),
            "the exec target's environment holds {leak}"
        );
    }

    // Resume with exactly that command: the change ends, `done` is sent.
    let words: Vec<&str> = resume.split(' ').collect();
    assert_eq!(words[0], "swing");
    let mut args = words[1..].to_vec();
    args.push("--auto-approve");
    let o = swing(&lab.dir, &args, &envs).await;
    let (out2, err2) = text(&o);
    assert_eq!(o.status.code(), Some(0), "resumed to done\n{out2}\n{err2}");
    assert!(
        wait_until(Duration::from_secs(10), || got.lock().unwrap().len() == 2).await,
        "{:?}",
        events(&got)
    );
    let done = &events(&got)[1];
    assert_eq!(done["event"], "done", "{done}");
    assert!(done.get("resume_command").is_none(), "{done}");
    let (sig, body) = &got.lock().unwrap()[1].clone();
    assert!(verify_signature(sig.as_deref().unwrap_or_default(), body));
    // The exec target hears only about pauses.
    assert_eq!(
        std::fs::read_to_string(lab.dir.join("notified.jsonl"))
            .unwrap()
            .trim()
            .lines()
            .count(),
        1
    );

    for (place, t) in [
        ("stdout", &out),
        ("stderr", &err),
        ("stdout (resume)", &out2),
        ("stderr (resume)", &err2),
        ("state", &tree_text(&lab.dir.join(".swing"))),
    ] {
        assert!(!t.contains(SECRET), "the signing key is in {place}");
        assert!(!t.contains(URL_TOKEN), "the secret URL is in {place}");
    }
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_notifications_change_no_outcome_and_are_reported_and_journaled() {
    let (base, got) = receiver(StatusCode::INTERNAL_SERVER_ERROR).await;
    // A port nobody listens on: bound, then closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::SingleAutomatic, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan = write_plan(
        &lab,
        &format!(
            "  - type: webhook\n    url: ${{env:SWING_TEST_HOOK_URL}}\n    format: text\n  \
             - type: webhook\n    url: http://{closed}/hook\n"
        ),
    );
    let url = format!("{base}/hooks/{URL_TOKEN}");
    let envs = [("SWING_TEST_HOOK_URL", url.as_str())];
    let o = swing(
        &lab.dir,
        &["apply", "--auto-approve", plan.to_str().unwrap()],
        &envs,
    )
    .await;
    let (out, err) = text(&o);
    assert_eq!(
        o.status.code(),
        Some(3),
        "still paused, exit 3\n{out}\n{err}"
    );
    // The failing receiver was tried 3 times, with the text body.
    let bodies = events(&got);
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    let line = bodies[0]["text"].as_str().expect("a text body");
    assert!(
        line.contains("paused") && line.contains("swing apply --resume"),
        "{line}"
    );
    assert!(
        err.contains(
            "warning: notification `paused` to webhook #1 failed after 3 attempt(s): answered HTTP 500"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "warning: notification `paused` to webhook #2 (http://{closed}/hook) failed after 3 attempt(s)"
        )),
        "{err}"
    );
    let j = journal(&lab);
    let failed: Vec<serde_json::Value> = j
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|r| r["event"] == "notification-failed")
        .collect();
    assert_eq!(failed.len(), 2, "{j}");
    assert_eq!(failed[0]["target"], "webhook #1");
    assert_eq!(failed[0]["notification"], "paused");
    for (place, t) in [("stdout", &out), ("stderr", &err), ("journal", &j)] {
        assert!(!t.contains(URL_TOKEN), "the secret URL is in {place}");
    }
    // The journal still resumes: the failed notification says nothing about the steps.
    let o = swing(&lab.dir, &["apply", "--resume", "--output", "json"], &envs).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "paused again\n{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("\"type\":\"notification-failed\"")),
        "the event stream reports it\n{out}"
    );
    lab.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_step_is_notified_with_the_step_and_why() {
    let (base, got) = receiver(StatusCode::OK).await;
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::SingleAutomatic, dir.path(), LabOptions::default())
        .await
        .unwrap();
    lab.sim("main")
        .unwrap()
        .set_fault(swing_sim::Fault::InstallFails(true));
    let plan = write_plan(
        &lab,
        &format!("  - {{ type: webhook, url: '{base}/hook', events: [failed] }}\n"),
    );
    let o = swing(
        &lab.dir,
        &["apply", "--auto-approve", plan.to_str().unwrap()],
        &[],
    )
    .await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "the install fails\n{out}\n{err}");
    let got = events(&got);
    assert_eq!(got.len(), 1, "{got:?}");
    let n = &got[0];
    assert_eq!(n["event"], "failed", "{n}");
    assert_eq!(n["outcome"], "failed");
    let step = n["step"].as_str().expect("the failed step");
    assert!(step.ends_with(".install"), "{n}");
    assert!(
        err.contains(&format!("error: {step} failed")),
        "the same step as the failure message\n{err}"
    );
    assert!(!n["message"].as_str().unwrap_or_default().is_empty(), "{n}");
    assert!(n.get("resume_command").is_none(), "{n}");
    lab.shutdown().await;
}
