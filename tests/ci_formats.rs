//! The CI formats as the pipelines read them: `swing validate --format github|sarif|junit` on
//! `plans/invalid` (GitHub's annotation grammar, Microsoft's SARIF validator, a JUnit parser),
//! `swing plan --format github`, and the Markdown comment's limit, marker and summary file.
//!
//! Must not: reach the network (every command here is offline; the SARIF validator is a
//! local program installed once into `target/nodetools`) or write outside a temp dir.

use std::path::PathBuf;
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

/// Every diagnostic of `plans/invalid`, as `--format json` reports them.
fn diagnostics_json() -> Vec<serde_json::Value> {
    let o = swing(&["validate", "plans/invalid", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["diagnostics"].as_array().unwrap().clone())
        .collect()
}

/// GitHub's workflow-command grammar for annotations: `::LEVEL [PROPS]::DATA`, properties
/// `file`, `title` (values with `%`, CR, LF, `:`, `,` escaped as `%25 %0D %0A %3A %2C`) and
/// `line`, `col`, `endLine`, `endColumn` (positive integers); data with `%`, CR, LF escaped.
fn annotation() -> regex::Regex {
    let value = r"(?:[^%:,\r\n]|%25|%0D|%0A|%3A|%2C)*";
    let prop = format!(r"(?:(?:file|title)={value}|(?:line|col|endLine|endColumn)=[1-9][0-9]*)");
    regex::Regex::new(&format!(
        r"^::(error|warning|notice)(?: {prop}(?:,{prop})*)?::(?:[^%\r\n]|%25|%0D|%0A)*$"
    ))
    .unwrap()
}

#[test]
fn validate_github_lines_follow_the_annotation_grammar() {
    let o = swing(&["validate", "plans/invalid", "--format", "github"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let diags = diagnostics_json();
    assert_eq!(out.lines().count(), diags.len(), "{out}");
    let re = annotation();
    for (line, d) in out.lines().zip(&diags) {
        let caps = re
            .captures(line)
            .unwrap_or_else(|| panic!("not an annotation: {line:?}"));
        assert_eq!(&caps[1], d["severity"].as_str().unwrap(), "{line}");
        assert!(
            line.contains(&format!("title={}", d["code"].as_str().unwrap())),
            "{line}"
        );
        if d["line"].as_u64().unwrap() > 0 {
            assert!(line.contains(&format!(",line={},", d["line"])), "{line}");
        }
    }
    // The first diagnostic of each file is the one its `# expect:` line names.
    let first = out
        .lines()
        .find(|l| l.contains("primary-equals-backup.yaml"))
        .unwrap();
    assert!(first.contains("title=primary-equals-backup"), "{first}");
}

/// Microsoft's SARIF multitool from `target/nodetools` (installed once, as scripts/test does).
/// Without npm this fails: CI has npm, and the check must not pass unseen.
fn multitool() -> PathBuf {
    let root = swing_testkit::tools::node_tools();
    let native = root.join("node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool");
    // Its postinstall script (which only marks the program executable) may not have run.
    if native.exists() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&native, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root.join("node_modules/.bin/sarif-multitool")
}

#[test]
fn validate_sarif_passes_microsofts_validator() {
    let o = swing(&["validate", "plans/invalid", "--format", "sarif"]);
    assert_eq!(o.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), diagnostics_json().len());
    for r in results {
        let i = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[i]["id"], r["ruleId"]);
        assert!(
            rules[i]["help"]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
        let region = &r["locations"][0]["physicalLocation"]["region"];
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        assert!(uri.starts_with("plans/invalid/"), "{uri}");
        if !region.is_null() {
            assert!(region["startLine"].as_u64().unwrap() >= 1);
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("invalid.sarif");
    std::fs::write(&file, &o.stdout).unwrap();
    let report = dir.path().join("validation.sarif");
    let v = Command::new(multitool())
        .arg("validate")
        .arg(&file)
        .arg("--output")
        .arg(&report)
        .env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(v.status.success(), "SARIF validator failed:\n{text}");
    // The validator writes its findings as SARIF too: no error-level result.
    let found: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let errors = found["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["results"].as_array().cloned().unwrap_or_default())
        .filter(|r| r["level"] == "error")
        .count();
    assert_eq!(errors, 0, "SARIF validator errors:\n{text}");
}

#[test]
fn validate_junit_has_one_case_per_plan_failing_with_its_errors() {
    let o = swing(&[
        "validate",
        "plans/invalid",
        "plans/examples",
        "--format",
        "junit",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let report = quick_junit::Report::deserialize_from_str(&stdout(&o)).unwrap();
    let suite = &report.test_suites[0];
    let invalid = std::fs::read_dir("plans/invalid").unwrap().count();
    let examples = std::fs::read_dir("plans/examples").unwrap().count();
    assert_eq!(suite.test_cases.len(), invalid + examples);
    for case in &suite.test_cases {
        let failed = !matches!(case.status, quick_junit::TestCaseStatus::Success { .. });
        assert_eq!(
            failed,
            case.name.as_str().contains("plans/invalid/"),
            "{}",
            case.name.as_str()
        );
    }
}

#[test]
fn plan_github_annotates_findings_on_the_plan_file() {
    // single-manual has findings (operator steps, manual windows); every one is one line.
    let json = swing(&[
        "plan",
        "plans/examples/hardware-migration.yaml",
        "--offline",
        "--format",
        "json",
    ]);
    let view: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let o = swing(&[
        "plan",
        "plans/examples/hardware-migration.yaml",
        "--offline",
        "--format",
        "github",
    ]);
    let out = stdout(&o);
    assert_eq!(
        out.lines().count(),
        view["findings"].as_array().unwrap().len(),
        "{out}"
    );
    let re = annotation();
    for l in out.lines() {
        assert!(re.is_match(l), "{l:?}");
        assert!(
            l.contains("file=plans/examples/hardware-migration.yaml"),
            "{l}"
        );
    }
}

fn markdown(paths: &[&str], extra: &[&str]) -> (String, Output) {
    let mut args = vec!["plan"];
    args.extend_from_slice(paths);
    args.extend_from_slice(&["--offline", "--format", "markdown"]);
    args.extend_from_slice(extra);
    let o = swing(&args);
    (stdout(&o), o)
}

/// The part that is never cut ends where the first detail section begins.
fn summary_of(md: &str) -> &str {
    let end = md
        .find("<details><summary>Refreshed state")
        .or_else(|| md.find("### Resource changes"));
    &md[..end.unwrap()]
}

#[test]
fn markdown_max_chars_cuts_detail_never_the_summary() {
    let plan = "plans/examples/failover-async-dns-final-a.yaml";
    let (full, o) = markdown(&[plan], &[]);
    assert_eq!(o.status.code(), Some(0));
    let summary = summary_of(&full);
    for max in [32_768usize, summary.chars().count() + 300] {
        let (md, o) = markdown(&[plan], &["--max-chars", &max.to_string()]);
        assert_eq!(o.status.code(), Some(0));
        assert!(md.chars().count() <= max, "{} > {max}", md.chars().count());
        assert!(md.starts_with(summary), "summary cut at --max-chars {max}");
        if full.chars().count() > max {
            assert!(md.contains("_Cut to stay under"), "no note at {max}");
        } else {
            assert_eq!(md, full);
        }
    }
    // The small limit cuts and says what.
    let (md, _) = markdown(
        &[plan],
        &["--max-chars", &(summary.chars().count() + 300).to_string()],
    );
    let note = md.lines().last().unwrap();
    assert!(
        note.contains("resource changes") || note.contains("timeline"),
        "{note}"
    );
    // A fleet over Bitbucket's limit keeps the fleet table whole.
    let every = std::fs::read_dir("plans/examples")
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect::<Vec<_>>();
    let every: Vec<&str> = every.iter().map(String::as_str).collect();
    let (all, _) = markdown(&every, &["--max-chars", "32768"]);
    assert!(all.chars().count() <= 32_768);
    assert!(all.contains(&format!("## swing plan: {} sites", every.len())));
}

#[test]
fn markdown_starts_with_a_marker_a_ci_step_can_find() {
    let plan = "plans/examples/single-manual.yaml";
    let (md, _) = markdown(&[plan], &[]);
    let first = md.lines().next().unwrap();
    let re = regex::Regex::new(
        r"^<!-- swing:plan site=access\.example\.com name=access\x2D25\x2D1\x2Doffline digest=[0-9a-f]{16} -->$",
    )
    .unwrap();
    // `-` is percent-encoded so no value can hold `-->`.
    assert!(
        re.is_match(&first.replace("%2D", "\x2D"))
            && first.contains("name=access%2D25%2D1%2Doffline"),
        "{first}"
    );
    // Same plan, same digest; another plan, another digest.
    assert_eq!(markdown(&[plan], &[]).0.lines().next().unwrap(), first);
    let (other, _) = markdown(&["plans/examples/single-automatic.yaml"], &[]);
    assert_ne!(other.lines().next().unwrap(), first);
}

#[test]
fn summary_file_appends_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("step-summary.md");
    std::fs::write(&file, "earlier step\n").unwrap();
    let plan = "plans/examples/single-manual.yaml";
    let path = file.display().to_string();
    let (md, o) = markdown(&[plan], &["--summary-file", &path]);
    assert_eq!(o.status.code(), Some(0));
    let written = std::fs::read_to_string(&file).unwrap();
    let summary = summary_of(&md);
    assert_eq!(written, format!("earlier step\n{summary}\n"));
    // Text output still appends the Markdown summary.
    let o = swing(&["plan", plan, "--offline", "--summary-file", &path]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("earlier step\n{summary}\n{summary}\n")
    );
}
