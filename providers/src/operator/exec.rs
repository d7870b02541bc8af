//! The `operator: exec` bridge: runs the site's own automation for an operator step.
//!
//! Owns: the operator exec protocol, version 1 (documented in `docs/providers.md`): the
//! command is started without a shell, gets ONE JSON document describing the step on stdin
//! ([`OperatorRequest`]), and reports by its exit status — 0 done, anything else failed —
//! optionally with a JSON [`OperatorResponse`] as the last line of stdout. A timeout kills its
//! whole process group (anything it started included), through [`crate::process`].
//!
//! Must not: pass secrets to the command (the request holds none), interpret the command
//! through a shell, trust the command's word as verification (the engine verifies through the
//! vendor APIs afterwards), or copy unbounded output into errors.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use swing_engine::provider::{
    ErrorKind, OperatorAction, OperatorBridge, OperatorTask, ProviderError, ProviderResult,
};

use crate::process::{Cap, Outcome, Run, RunError};

/// Protocol identifier sent in every request.
pub const OPERATOR_PROTOCOL: &str = "swing-operator/1";

/// Output kept from the command (stdout and stderr each): the last 64 KiB, the rest drained
/// and dropped, so the response on the last line survives a chatty command.
const MAX_OUTPUT: usize = 64 * 1024;
/// Output quoted in an error message.
const MAX_QUOTE: usize = 500;

/// What the command reads on stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorRequest {
    /// Always [`OPERATOR_PROTOCOL`].
    pub protocol: String,
    pub step_id: String,
    /// Plan name of the appliance the step is performed on.
    pub appliance: String,
    /// The action, tagged by `action` (kebab-case), e.g. `{"action":"install",...}`.
    pub action: OperatorAction,
    /// The instructions a person would follow.
    pub instructions: Vec<String>,
}

/// What the command may print as the last line of stdout (optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorResponse {
    /// `done` or `failed`.
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
}

/// Runs `program args…` per operator step.
#[derive(Debug, Clone)]
pub struct ExecOperator {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    env_remove: Vec<String>,
}

impl ExecOperator {
    /// Removes these variables from the command's environment (the plan's secret references).
    pub fn without_env<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.env_remove.extend(names.into_iter().map(Into::into));
        self
    }

    /// `program` is run directly (no shell) with `args`; it is killed after `timeout`.
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>, timeout: Duration) -> Self {
        ExecOperator {
            program: program.into(),
            args,
            timeout,
            env_remove: Vec::new(),
        }
    }

    /// The JSON document sent for `task`.
    pub fn request(task: &OperatorTask) -> OperatorRequest {
        OperatorRequest {
            protocol: OPERATOR_PROTOCOL.to_owned(),
            step_id: task.step_id.clone(),
            appliance: task.appliance.clone(),
            action: task.action.clone(),
            instructions: task.instructions.clone(),
        }
    }
}

fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let start = text
        .char_indices()
        .rev()
        .nth(MAX_QUOTE)
        .map(|(i, _)| i)
        .unwrap_or(0);
    if start > 0 {
        format!("…{}", &text[start..])
    } else {
        text.to_owned()
    }
}

#[async_trait]
impl OperatorBridge for ExecOperator {
    async fn perform(&self, task: &OperatorTask) -> ProviderResult<()> {
        let step = &task.step_id;
        let shown = self.program.display().to_string();
        let input = serde_json::to_vec(&Self::request(task)).map_err(|e| {
            ProviderError::new(
                ErrorKind::Invalid,
                format!("{step}: cannot encode the operator request: {e}"),
            )
        })?;
        let finished = Run::new(&self.program, self.args.clone())
            .env("SWING_OPERATOR_PROTOCOL", OPERATOR_PROTOCOL)
            .env("SWING_STEP_ID", step)
            .env_remove(&self.env_remove)
            .stdin(input)
            .timeout(self.timeout)
            .stdout_cap(Cap::tail(MAX_OUTPUT))
            .stderr_cap(Cap::tail(MAX_OUTPUT))
            .run()
            .await
            .map_err(|e| match e {
                RunError::Spawn(e) => {
                    let kind = if e.kind() == std::io::ErrorKind::NotFound {
                        ErrorKind::NotFound
                    } else {
                        ErrorKind::Invalid
                    };
                    ProviderError::new(
                        kind,
                        format!("{step}: cannot start operator command {shown}: {e}"),
                    )
                }
                RunError::Wait(e) => ProviderError::new(
                    ErrorKind::Failed,
                    format!("{step}: waiting for {shown} failed: {e}"),
                ),
            })?;
        let status = match finished.outcome {
            Outcome::Exited(status) => status,
            Outcome::TimedOut => {
                return Err(ProviderError::new(
                    ErrorKind::Failed,
                    format!(
                        "{step}: operator command {shown} did not finish within {}s and was killed",
                        self.timeout.as_secs()
                    ),
                ));
            }
        };
        let (out, err) = (finished.stdout.bytes, finished.stderr.bytes);
        let response = String::from_utf8_lossy(&out)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str::<OperatorResponse>(l.trim()).ok());
        let message = response.as_ref().and_then(|r| r.message.clone());
        let said_failed = response
            .as_ref()
            .is_some_and(|r| !r.status.eq_ignore_ascii_case("done"));
        if status.success() && !said_failed {
            return Ok(());
        }
        let why = match (message, status.code()) {
            (Some(m), _) => m,
            (None, Some(c)) => format!("exit status {c}"),
            (None, None) => "killed by a signal".to_owned(),
        };
        let stderr_tail = quote(&err);
        let detail = if stderr_tail.is_empty() {
            String::new()
        } else {
            format!("; stderr: {stderr_tail}")
        };
        Err(ProviderError::new(
            ErrorKind::Failed,
            format!("{step}: operator command {shown} failed: {why}{detail}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> OperatorTask {
        OperatorTask {
            step_id: "b.install".into(),
            appliance: "b".into(),
            action: OperatorAction::Install {
                packages: vec!["base-7.2.1".into(), "pra-25.1.3".into()],
                version: "25.1.3".into(),
            },
            instructions: vec!["/appliance > Updates > Check for Updates".into()],
        }
    }

    fn script(dir: &std::path::Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("op.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        p
    }

    #[tokio::test]
    async fn sends_the_step_as_json_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let seen = dir.path().join("seen.json");
        let p = script(
            dir.path(),
            &format!("cat > '{}'; echo '{{\"status\":\"done\"}}'", seen.display()),
        );
        ExecOperator::new(p, vec![], Duration::from_secs(20))
            .perform(&task())
            .await
            .unwrap();
        let req: OperatorRequest = serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
        assert_eq!(req.protocol, OPERATOR_PROTOCOL);
        assert_eq!(req, ExecOperator::request(&task()));
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&seen).unwrap()).unwrap();
        assert_eq!(raw["action"]["action"], "install");
        assert_eq!(raw["action"]["packages"][0], "base-7.2.1");
    }

    #[tokio::test]
    async fn failures_are_reported_with_message_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "cat >/dev/null; echo 'disk full' >&2; exit 3");
        let e = ExecOperator::new(p, vec![], Duration::from_secs(20))
            .perform(&task())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Failed);
        assert!(
            e.message.contains("exit status 3") && e.message.contains("disk full"),
            "{}",
            e.message
        );

        let p = script(
            dir.path(),
            "echo '{\"status\":\"failed\",\"message\":\"no media\"}'",
        );
        let e = ExecOperator::new(p, vec![], Duration::from_secs(20))
            .perform(&task())
            .await
            .unwrap_err();
        assert!(e.message.contains("no media"), "{}", e.message);
    }

    #[tokio::test]
    async fn missing_command_and_timeout() {
        let e = ExecOperator::new("/nonexistent/swing-op", vec![], Duration::from_secs(5))
            .perform(&task())
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "exec sleep 30");
        let started = std::time::Instant::now();
        let e = ExecOperator::new(p, vec![], Duration::from_millis(300))
            .perform(&task())
            .await
            .unwrap_err();
        assert!(e.message.contains("killed"), "{}", e.message);
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn timeout_kills_what_the_command_started() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let p = script(
            dir.path(),
            &format!(
                "sleep 300 </dev/null >/dev/null 2>&1 & echo $! > '{}'\nsleep 300",
                pidfile.display()
            ),
        );
        let e = ExecOperator::new(p, vec![], Duration::from_millis(500))
            .perform(&task())
            .await
            .unwrap_err();
        assert!(e.message.contains("killed"), "{}", e.message);
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            // Gone, or a zombie waiting for its reaper: either way no longer running.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("");
            if stat.is_empty() || state == "Z" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the command's child {pid} survived the timeout: {stat}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
