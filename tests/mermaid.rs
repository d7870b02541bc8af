//! Every Mermaid diagram swing writes is valid for Mermaid itself: the plan Markdown of every
//! example (the dependency flowchart and one Gantt chart per window), `swing graph --format
//! mermaid|gantt`, and window names with dots and underscores — each checked with
//! `mermaid.parse` under jsdom (npm `mermaid` 11 and `jsdom`, installed by the testkit).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn swing(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// (blocks checked, the checker's output) — asserting every block is valid.
fn check(markdown: &str, what: &str) -> usize {
    let tools = swing_testkit::tools::node_tools();
    let mut child = Command::new("node")
        .arg(root().join("testkit/js/mermaid-check.mjs"))
        .current_dir(&tools)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(markdown.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{what}: invalid Mermaid\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.lines()
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn fenced(diagram: &str) -> String {
    format!("```mermaid\n{diagram}```\n")
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("plans/examples"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_diagram_of_every_example_is_valid_mermaid() {
    let mut blocks = 0;
    for p in examples() {
        let plan = p.to_str().unwrap();
        let md = swing(&["plan", "--offline", "--format", "markdown", plan]);
        let n = check(&md, plan);
        assert!(n >= 2, "{plan}: the flowchart and a schedule ({n} blocks)");
        blocks += n;
        for format in ["mermaid", "gantt"] {
            let d = swing(&["graph", "--format", format, plan]);
            assert_eq!(check(&fenced(&d), plan), 1, "{plan} {format}");
            blocks += 1;
        }
    }
    assert!(blocks >= 30, "{blocks}");
}

#[test]
fn a_checker_that_sees_a_broken_diagram_fails() {
    // The checker is not a rubber stamp.
    let tools = swing_testkit::tools::node_tools();
    let o = Command::new("node")
        .arg(root().join("testkit/js/mermaid-check.mjs"))
        .current_dir(&tools)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .unwrap()
                .write_all(b"```mermaid\nflowchart TD\n  A --> B[[[\n```\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("1 blocks, 1 invalid"),
        "the parser itself refused it: {out}"
    );
}

#[test]
fn window_names_with_dots_and_underscores_stay_inside_their_chart() {
    let base =
        std::fs::read_to_string(root().join("plans/examples/failover-async-dns.yaml")).unwrap();
    let hostile = base
        .replace("name: first,", "name: \"first-x\",")
        .replace("{ name: second,", "{ name: \"w.2_end\",");
    let dir = tempfile::tempdir().unwrap();
    let p: &Path = &dir.path().join("p.yaml");
    std::fs::write(p, hostile).unwrap();
    let md = swing(&[
        "plan",
        "--offline",
        "--format",
        "markdown",
        p.to_str().unwrap(),
    ]);
    assert!(md.contains("w.2_end"), "{md}");
    assert!(check(&md, "hostile names") >= 3);
}
