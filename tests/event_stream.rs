//! Event stream v1 of `swing apply --output json` (docs/events.md): every line of a real apply
//! against simulated appliances — the version line first, then every event with `type` and
//! `@timestamp` — validates against the committed `docs/events.schema.json` (jsonschema, draft
//! 2020-12, formats checked), and a second apply of the finished change streams `no-changes`.
//!
//! Must not: touch anything but loopback (the lab's simulators) and the test's temp directory.

use std::path::Path;
use std::time::Duration;

use swing_testkit::e2e;
use swing_testkit::kit::{Lab, LabOptions, Scenario};

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/events.schema.json"
    ))
    .expect("docs/events.schema.json");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the event schema compiles")
}

/// Checks every line of `stdout` and returns the event types after the version line.
fn check_stream(stdout: &str, explain: &str) -> Vec<String> {
    let v = validator();
    let mut lines = stdout.lines();
    let first: serde_json::Value =
        serde_json::from_str(lines.next().expect("a first line")).expect("the first line is JSON");
    assert_eq!(first["type"], "version", "{explain}");
    assert_eq!(first["swing"], env!("CARGO_PKG_VERSION"), "{explain}");
    assert_eq!(first["stream"], 1, "{explain}");
    assert!(v.is_valid(&first), "{first}");
    let mut kinds = Vec::new();
    let mut last_ts = String::new();
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line: {line:?}: {e}\n{explain}"));
        let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{line}\n{errors:#?}");
        let ts = value["@timestamp"].as_str().expect("@timestamp").to_owned();
        // Same fixed-width UTC format, so text order is time order.
        assert!(ts >= last_ts, "time went backwards: {last_ts} then {ts}");
        last_ts = ts;
        kinds.push(value["type"].as_str().expect("type").to_owned());
    }
    kinds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_event_of_an_apply_validates_against_the_committed_schema() {
    let swing = Path::new(env!("CARGO_BIN_EXE_swing"));
    let dir = tempfile::tempdir().unwrap();
    let options = LabOptions {
        state_estimates: true,
        ..LabOptions::default()
    };
    let lab = Lab::start(Scenario::AsyncSharedIp, dir.path(), options)
        .await
        .unwrap();
    let plan = lab.write_plan(None, None).unwrap();
    let route = lab.direct_route().expect("a direct route");
    let run = e2e::apply_with_probe(swing, &lab, &plan, route, Duration::from_secs(120)).await;
    let explain = run.explain();
    assert_eq!(run.exit_code, Some(0), "{explain}");
    let kinds = check_stream(&run.stdout, &explain);
    for k in ["step-started", "step-polling", "step-succeeded"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} event: {kinds:?}");
    }
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("finished"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "step-started").count(),
        kinds.iter().filter(|k| *k == "step-succeeded").count(),
        "every started step succeeded: {kinds:?}"
    );

    // The change is done: a second apply runs nothing and says so in the stream.
    let again = tokio::process::Command::new(swing)
        .args(["apply", "--auto-approve", "--output", "json"])
        .arg(&plan)
        .current_dir(&lab.dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let again = tokio::time::timeout(Duration::from_secs(60), again)
        .await
        .expect("the second apply ends")
        .expect("swing runs");
    let out = String::from_utf8_lossy(&again.stdout).into_owned();
    let explain = format!("{out}\n{}", String::from_utf8_lossy(&again.stderr));
    assert_eq!(again.status.code(), Some(0), "{explain}");
    assert_eq!(check_stream(&out, &explain), ["no-changes"], "{explain}");
    lab.shutdown().await;
}
