//! End-to-end tests of `swing plan`, `swing graph` and `swing show` as a user runs them:
//! exit codes, deterministic output, the Markdown size limit, the saved plan round trip.
//!
//! Must not: reach the network (every command here is offline) or write outside a temp dir.

use std::path::Path;
use std::process::{Command, Output};

fn swing(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn plan_json_lists_the_async_dns_steps() {
    let o = swing(&[
        "plan",
        "plans/examples/failover-async-dns.yaml",
        "--offline",
        "--format",
        "json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["format_version"], 1);
    let ids: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for id in [
        "failover.sync",
        "failover.break",
        "west.install",
        "switch.prepare",
        "switch.to-west",
        "switch.verify-west",
        "east.install",
        "failover.establish",
        "failover.resync",
        "switch.restore",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for s in v["steps"].as_array().unwrap() {
        for key in [
            "id",
            "kind",
            "depends_on",
            "estimate_s",
            "downtime",
            "unprotected",
        ] {
            assert!(s.get(key).is_some(), "step without {key}: {s}");
        }
    }
}

#[test]
fn output_is_byte_identical_across_runs() {
    for format in ["text", "markdown", "json"] {
        let a = swing(&["plan", "plans/examples", "--offline", "--format", format]);
        let b = swing(&["plan", "plans/examples", "--offline", "--format", format]);
        assert_eq!(a.status.code(), Some(0));
        assert!(!a.stdout.is_empty());
        assert_eq!(a.stdout, b.stdout, "{format} differs between runs");
    }
}

#[test]
fn a_directory_plans_the_whole_fleet() {
    let o = swing(&["plan", "plans/examples", "--offline", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["format_version"], 1);
    assert!(v["plans"].as_array().unwrap().len() >= 8);
    let md = swing(&[
        "plan",
        "plans/examples",
        "--offline",
        "--format",
        "markdown",
    ]);
    assert!(stdout(&md).chars().count() <= 65_000);
}

/// More files than one chunk of the parallel planner: the output is in file order and the
/// same as planning each file alone; one invalid file among them stops everything before
/// anything is written.
#[test]
fn a_fleet_larger_than_a_chunk_is_planned_in_file_order_and_refused_whole_if_one_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let examples: Vec<std::path::PathBuf> = {
        let mut v: Vec<_> = std::fs::read_dir("plans/examples")
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    };
    let n = 150;
    for i in 0..n {
        let text = std::fs::read_to_string(&examples[i % examples.len()]).unwrap();
        let text = text.replacen("\nname: ", &format!("\nname: site-{i:03}-"), 1);
        std::fs::write(dir.path().join(format!("p{i:03}.yaml")), text).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let o = swing(&["plan", d, "--offline", "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names: Vec<String> = v["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["plan"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), n);
    for (i, name) in names.iter().enumerate() {
        assert!(name.starts_with(&format!("site-{i:03}-")), "{i}: {name}");
    }
    let one = swing(&[
        "plan",
        dir.path().join("p077.yaml").to_str().unwrap(),
        "--offline",
        "--format",
        "json",
    ]);
    let alone: serde_json::Value = serde_json::from_str(&stdout(&one)).unwrap();
    assert_eq!(v["plans"][77], alone);

    std::fs::write(dir.path().join("p140.yaml"), "version: 1\nname: [broken\n").unwrap();
    let o = swing(&["plan", d, "--offline", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        o.stdout.is_empty(),
        "nothing is written when a file is invalid"
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("1 invalid plan file"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn live_plan_without_credentials_says_what_is_missing_and_how_to_plan_offline() {
    // Without the secrets the providers cannot be built, so nothing is contacted.
    let o = Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(["plan", "plans/examples/single-automatic.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SWING_BACKUP_PASSWORD")
        .env_remove("BT_CLIENT_ID")
        .env_remove("BT_CLIENT_SECRET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("environment variable SWING_BACKUP_PASSWORD is not set")
            && stderr.contains("--offline"),
        "{stderr}"
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn detailed_exitcode_says_changes_are_present() {
    let o = swing(&[
        "plan",
        "plans/examples/single-automatic.yaml",
        "--offline",
        "--detailed-exitcode",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an offline plan always has changes"
    );
    let o = swing(&["plan", "plans/examples/single-automatic.yaml", "--offline"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn an_invalid_plan_fails_with_its_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "version: 1\nname: x\n").unwrap();
    let o = swing(&["plan", bad.to_str().unwrap(), "--offline"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.yaml"));
}

#[test]
fn saved_plan_shows_again_in_every_format_marked_when_it_cannot_be_applied() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("migration.yaml");
    std::fs::copy("plans/examples/hardware-migration.yaml", &plan).unwrap();
    let out = dir.path().join("change.plan");
    let o = swing(&[
        "plan",
        plan.to_str().unwrap(),
        "--offline",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.exists());
    let shown = swing(&["show", out.to_str().unwrap()]);
    assert_eq!(shown.status.code(), Some(0));
    let text = stdout(&shown);
    assert!(
        text.ends_with(&stdout(&o)),
        "show renders the saved view exactly as plan did, after its marks"
    );
    let marks = &text[..text.len() - o.stdout.len()];
    assert!(
        marks.contains("OFFLINE") && !marks.contains("STALE"),
        "{marks}"
    );
    for format in ["markdown", "json", "dot", "mermaid", "gantt"] {
        let s = swing(&["show", out.to_str().unwrap(), "--format", format]);
        assert_eq!(s.status.code(), Some(0), "{format}");
        assert!(!s.stdout.is_empty(), "{format}");
    }
    // Machine formats stay parseable; the marks go to stderr.
    let json = swing(&["show", out.to_str().unwrap(), "--format", "json"]);
    serde_json::from_slice::<serde_json::Value>(&json.stdout).unwrap();
    assert!(String::from_utf8_lossy(&json.stderr).contains("OFFLINE"));
    // The plan file changes after the plan was saved: marked stale.
    let yaml = std::fs::read_to_string(&plan).unwrap();
    assert!(yaml.contains("\nname: "));
    std::fs::write(&plan, yaml.replacen("\nname: ", "\nname: changed-", 1)).unwrap();
    let stale = stdout(&swing(&["show", out.to_str().unwrap()]));
    assert!(
        stale.contains(&format!("STALE: {} changed", plan.display())),
        "{stale}"
    );
    // The saved plan holds secret references only, never values.
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("${env:"));
}

#[test]
fn graph_renders_dot_mermaid_and_gantt() {
    let p = "plans/examples/failover-async-nat.yaml";
    let dot = stdout(&swing(&["graph", p]));
    assert!(dot.starts_with("digraph"));
    assert!(dot.contains("\"b.verify-manual\" -> \"switch.to-b\""));
    let mm = stdout(&swing(&["graph", p, "--format", "mermaid"]));
    assert!(mm.starts_with("flowchart TD"));
    let g = stdout(&swing(&["graph", p, "--format", "gantt"]));
    assert!(g.starts_with("gantt"));
    assert!(g.contains("section Windows"));
    let missing = swing(&["graph", "does-not-exist.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn show_refuses_what_is_not_a_plan() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x.json");
    std::fs::write(&f, "{\"hello\": 1}").unwrap();
    let o = swing(&["show", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!Path::new(&f).with_extension("plan").exists());
}
