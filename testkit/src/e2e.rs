//! Runs of the real `swing` binary for the end-to-end tests and benchmark (`swing apply
//! --auto-approve --output json PLAN`) against a scenario lab while the prober watches the site
//! from the test process, and what both saw. The caller names the binary
//! (`env!("CARGO_BIN_EXE_swing")`, which only a test or bench of the root package knows).
//!
//! Owns: spawning the binary (killed on drop), parsing its JSON events, the common
//! assertions of a completed change. Must not: talk to anything but loopback or namespaces a
//! test created.

use std::path::Path;
use std::time::{Duration, Instant};

use swing_providers::probe::{ProbeHandle, ProbeReport, Prober, Route};

use crate::kit::{Lab, settle, wait_until};

/// What one end-to-end run saw.
#[derive(Debug)]
pub struct E2eRun {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The final `ApplyReport` (the `finished` event), as JSON.
    pub report: Option<serde_json::Value>,
    pub probe: ProbeReport,
    pub makespan: Duration,
}

impl E2eRun {
    /// Duration of a step that succeeded, from the apply report.
    pub fn step_ms(&self, id: &str) -> Option<u64> {
        self.report.as_ref()?["steps"]
            .as_array()?
            .iter()
            .find(|s| s["id"] == id && s["status"] == "succeeded")?["duration_ms"]
            .as_u64()
    }

    /// Every step of the report succeeded.
    pub fn all_steps_succeeded(&self) -> Result<(), String> {
        let Some(steps) = self.report.as_ref().and_then(|r| r["steps"].as_array()) else {
            return Err(format!("no report; stderr:\n{}", self.stderr));
        };
        let bad: Vec<String> = steps
            .iter()
            .filter(|s| s["status"] != "succeeded")
            .map(|s| format!("{} {}", s["id"], s["status"]))
            .collect();
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad.join(", "))
        }
    }

    pub fn explain(&self) -> String {
        format!(
            "exit {:?}\n--- probe\n{}\n--- stderr\n{}\n--- stdout (last 3000 chars)\n{}",
            self.exit_code,
            self.probe.summary(),
            self.stderr,
            tail(&self.stdout, 3000)
        )
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Run `swing apply --auto-approve --output json` on `plan` while probing `route`.
pub async fn apply_with_probe(
    swing: &Path,
    lab: &Lab,
    plan: &Path,
    route: Route,
    limit: Duration,
) -> E2eRun {
    let mut cfg = lab.probe_config(route);
    cfg.timeout = Duration::from_secs(1);
    let probe = Prober::start(cfg).expect("prober starts");
    run_apply(
        lab,
        probe,
        swing_apply_command(swing, lab, plan, None),
        limit,
    )
    .await
}

/// `SWING apply --auto-approve --output json [--confirm STEP]… PLAN` in the lab directory,
/// killed on drop; run inside network namespace `netns` (`ip netns exec`, which execs the
/// binary, so the child is swing itself) when given.
pub fn swing_apply_command(
    swing: &Path,
    lab: &Lab,
    plan: &Path,
    netns: Option<&str>,
) -> tokio::process::Command {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["netns", "exec", ns]).arg(swing);
            c
        }
        None => tokio::process::Command::new(swing),
    };
    cmd.args(["apply", "--auto-approve", "--output", "json"])
        .args(
            lab.scenario
                .confirmations()
                .iter()
                .flat_map(|c| ["--confirm", c]),
        )
        .arg(plan)
        .current_dir(&lab.dir)
        .env("XDG_STATE_HOME", crate::kit::state_home(&lab.dir))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Wait until `probe` sees the site answer, run `cmd` (a `swing apply`, see
/// [`swing_apply_command`]) to completion within `limit`, let the client settle on the final
/// appliance, and collect what the binary and the prober saw.
pub async fn run_apply(
    lab: &Lab,
    probe: ProbeHandle,
    mut cmd: tokio::process::Command,
    limit: Duration,
) -> E2eRun {
    assert!(
        wait_until(Duration::from_secs(10), || probe
            .last()
            .is_some_and(|r| r.ok))
        .await,
        "the site must answer before the change: {}",
        probe.report().summary()
    );
    let t0 = Instant::now();
    let child = cmd.spawn().expect("swing binary starts");
    let out = tokio::time::timeout(limit, child.wait_with_output()).await;
    let makespan = t0.elapsed();
    settle(lab, &probe).await;
    let report = probe.stop().await;
    let out = match out {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => panic!("waiting for swing failed: {e}"),
        Err(_) => panic!(
            "swing apply did not finish within {limit:?}; probe: {}",
            report.summary()
        ),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let finished = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "finished")
        .map(|v| v["report"].clone());
    E2eRun {
        exit_code: out.status.code(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: finished,
        probe: report,
        makespan,
    }
}

/// The common assertions: exit 0, every step succeeded, final state as planned, the site
/// served by the expected appliances in order, and no secret in any output.
pub fn assert_change_complete(lab: &Lab, run: &E2eRun) {
    assert_eq!(run.exit_code, Some(0), "{}", run.explain());
    if let Err(e) = run.all_steps_succeeded() {
        panic!("steps not succeeded: {e}\n{}", run.explain());
    }
    let problems = lab.check_final_state();
    assert!(
        problems.is_empty(),
        "final state: {problems:?}\n{}",
        run.explain()
    );
    if let Err(e) = run.probe.check_served_by(lab.scenario.expected_sequence()) {
        panic!("{e}\n{}", run.explain());
    }
    for secret_file in ["client-secret", "backup-password", "tsig.key"] {
        if let Ok(secret) = std::fs::read_to_string(lab.dir.join(secret_file)) {
            assert!(
                !run.stdout.contains(secret.trim()),
                "{secret_file} leaked to stdout"
            );
            assert!(
                !run.stderr.contains(secret.trim()),
                "{secret_file} leaked to stderr"
            );
        }
    }
}

/// Lowercase hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One line per run on stdout (shown with `--nocapture`, kept in the test log otherwise):
/// the measured downtime, outages and makespan, for docs/performance.md.
pub fn report_measurement(lab: &Lab, run: &E2eRun) {
    println!(
        "e2e-measurement scenario={} downtime_ms={} outages={} total_outage_ms={} unprotected_ms={} makespan_ms={} probes={}",
        lab.scenario.name(),
        run.probe.longest_outage_ms,
        run.probe.outages.len(),
        run.probe.total_outage_ms,
        run.report
            .as_ref()
            .and_then(|r| r["unprotected_ms"].as_u64())
            .map_or_else(|| "?".to_owned(), |u| u.to_string()),
        run.makespan.as_millis(),
        run.probe.probes
    );
}
