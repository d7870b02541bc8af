//! The `exec` provider: a site's own command that speaks swing's versioned JSON protocol over
//! stdin/stdout (docs/exec-protocol.md), implementing the NAT and DNS provider traits.
//!
//! Owns: what to start (one process per call through [`crate::process`]: its own process
//! group, request on stdin, response on stdout, the whole group killed on the per-call
//! timeout), the output limits (stdout: the first [`MAX_RESPONSE_BYTES`], more is an error;
//! stderr: the first 64 KiB read, 2000 bytes quoted), turning exit codes / bad JSON /
//! protocol errors into typed [`ProviderError`]s with the command's stderr (truncated), and the provider-side semantics around the plugin:
//! compare-and-swap pre-check, idempotent re-swing, and verification by observing again
//! (never trusting the plugin's own report of an apply).
//!
//! Must not: put anything but the configured `args` on the command line (requests, and any
//! value that could be secret, go over stdin only), pass on environment variables the caller
//! asked to strip ([`ExecPlugin::without_env`]), retry an `apply`, or print to the terminal.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use swing_engine::provider::{
    DnsObservation, DnsProvider, ErrorKind, NatObservation, NatProvider, ProviderError,
    ProviderResult,
};

use crate::process::{Cap, Outcome, Run, RunError};

/// The protocol version this provider speaks (`"protocol": 1` in every request).
pub const PROTOCOL_VERSION: u64 = 1;
/// Largest response read from stdout; a longer one is cut here and reported as an error.
pub const MAX_RESPONSE_BYTES: u64 = 1 << 20;
/// Longest stderr excerpt put into an error message.
const STDERR_MAX: usize = 2000;
/// Most stderr bytes read (the rest is discarded).
const STDERR_READ_MAX: usize = 64 * 1024;

/// A site's command speaking the exec protocol. One process per call.
#[derive(Debug, Clone)]
pub struct ExecPlugin {
    program: PathBuf,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    plan: String,
    timeout: Duration,
    env_remove: Vec<String>,
}

fn err(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, message)
}

impl ExecPlugin {
    /// The plan's `exec` provider. A `command` containing `/` is relative to `plan_dir`; a bare
    /// name is looked up in `PATH`. The command runs with `plan_dir` as working directory.
    pub fn new(
        config: &swing_schema::plan::ExecProvider,
        plan_dir: &Path,
        plan_name: &str,
    ) -> Self {
        // Absolute paths: with `current_dir` set, a relative program path would be resolved
        // against a platform-dependent directory (std::process::Command docs).
        let dir = std::path::absolute(plan_dir).unwrap_or_else(|_| plan_dir.to_path_buf());
        let cmd = Path::new(&config.command);
        let program = if config.command.contains('/') && cmd.is_relative() {
            dir.join(cmd)
        } else {
            cmd.to_path_buf()
        };
        ExecPlugin {
            program,
            args: config.args.clone(),
            cwd: Some(dir),
            plan: plan_name.to_owned(),
            timeout: Duration::from_secs(60),
            env_remove: Vec::new(),
        }
    }

    /// A plugin from a program path and arguments (tests, other wiring); no working directory change.
    pub fn from_command(program: impl Into<PathBuf>, args: Vec<String>, plan_name: &str) -> Self {
        ExecPlugin {
            program: program.into(),
            args,
            cwd: None,
            plan: plan_name.to_owned(),
            timeout: Duration::from_secs(60),
            env_remove: Vec::new(),
        }
    }

    /// Per-call timeout (default 60 s); on expiry the command's whole process group is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Environment variables NOT passed to the command — the wiring passes the names of every
    /// `${env:NAME}` secret reference in the plan, so the site's command never sees them.
    pub fn without_env<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.env_remove.extend(names.into_iter().map(Into::into));
        self
    }

    fn name(&self) -> String {
        self.program.display().to_string()
    }

    /// One protocol call: `request` (the `protocol` and `plan` fields are added) on stdin, the
    /// response object from stdout. `Ok` only for `"ok": true`; `"ok": false` becomes the
    /// plugin's typed error.
    pub async fn call(&self, op: &str, resource: Value, extra: Value) -> ProviderResult<Value> {
        let mut request = json!({ "protocol": PROTOCOL_VERSION, "op": op, "plan": self.plan, "resource": resource });
        if let (Some(req), Value::Object(more)) = (request.as_object_mut(), extra) {
            req.extend(more);
        }
        let body = serde_json::to_vec(&request).map_err(|e| {
            err(
                ErrorKind::Failed,
                format!("cannot encode the exec request: {e}"),
            )
        })?;
        let out = self.run(&body).await?;
        self.interpret(op, out)
    }

    async fn run(&self, body: &[u8]) -> ProviderResult<RunOutput> {
        let finished = Run::new(&self.program, self.args.clone())
            .env("SWING_EXEC_PROTOCOL", PROTOCOL_VERSION.to_string())
            .env_remove(&self.env_remove)
            .current_dir(self.cwd.clone())
            .stdin(body.to_vec())
            .timeout(self.timeout)
            .stdout_cap(Cap::head(MAX_RESPONSE_BYTES as usize))
            .stderr_cap(Cap::head(STDERR_READ_MAX))
            .run()
            .await
            .map_err(|e| match e {
                RunError::Spawn(e) => match e.kind() {
                    std::io::ErrorKind::NotFound => err(
                        ErrorKind::NotFound,
                        format!("exec provider command `{}` not found", self.name()),
                    ),
                    std::io::ErrorKind::PermissionDenied => err(
                        ErrorKind::Invalid,
                        format!("exec provider command `{}` is not executable", self.name()),
                    ),
                    _ => err(
                        ErrorKind::Failed,
                        format!("cannot start exec provider `{}`: {e}", self.name()),
                    ),
                },
                RunError::Wait(e) => err(
                    ErrorKind::Failed,
                    format!("waiting for `{}` failed: {e}", self.name()),
                ),
            })?;
        let status = match finished.outcome {
            Outcome::TimedOut => {
                return Err(err(
                    ErrorKind::Transient,
                    format!(
                        "exec provider `{}` did not answer within {:?}; it was killed",
                        self.name(),
                        self.timeout
                    ),
                ));
            }
            Outcome::Exited(status) => status,
        };
        if let Some(e) = finished.stdout.read_error {
            return Err(err(
                ErrorKind::Failed,
                format!("reading `{}` output: {e}", self.name()),
            ));
        }
        Ok(RunOutput {
            code: status.code(),
            success: status.success(),
            stdout: finished.stdout.bytes,
            stdout_truncated: finished.stdout.truncated,
            stderr: truncate(&String::from_utf8_lossy(&finished.stderr.bytes)),
        })
    }

    fn interpret(&self, op: &str, out: RunOutput) -> ProviderResult<Value> {
        let name = self.name();
        let with_stderr = |msg: String| {
            if out.stderr.is_empty() {
                msg
            } else {
                format!("{msg}; stderr: {}", out.stderr)
            }
        };
        let exit = out
            .code
            .map(|c| format!("exit status {c}"))
            .unwrap_or_else(|| "a signal".to_owned());
        if out.stdout_truncated {
            return Err(err(
                ErrorKind::Failed,
                format!(
                    "exec provider `{name}` ({op}) wrote more than {MAX_RESPONSE_BYTES} bytes to stdout"
                ),
            ));
        }
        let parsed: Option<Value> = serde_json::from_slice(&out.stdout)
            .ok()
            .filter(Value::is_object);
        let Some(resp) = parsed else {
            let what = if out.stdout.iter().all(u8::is_ascii_whitespace) {
                "no response".to_owned()
            } else {
                "a response that is not a JSON object".to_owned()
            };
            let msg = if out.success {
                format!("exec provider `{name}` ({op}) exited 0 but wrote {what}")
            } else {
                format!("exec provider `{name}` ({op}) failed with {exit} and wrote {what}")
            };
            return Err(err(ErrorKind::Failed, with_stderr(msg)));
        };
        if let Some(v) = resp.get("protocol")
            && v.as_u64() != Some(PROTOCOL_VERSION)
        {
            return Err(err(
                ErrorKind::Invalid,
                format!(
                    "exec provider `{name}` answered with protocol {v}; swing speaks protocol {PROTOCOL_VERSION}"
                ),
            ));
        }
        match resp.get("ok").and_then(Value::as_bool) {
            Some(true) if out.success => Ok(resp),
            Some(true) => Err(err(
                ErrorKind::Failed,
                with_stderr(format!(
                    "exec provider `{name}` ({op}) said ok but exited with {exit}"
                )),
            )),
            Some(false) => {
                let e = resp.get("error");
                let kind = e
                    .and_then(|e| e.get("kind"))
                    .and_then(|k| serde_json::from_value::<ErrorKind>(k.clone()).ok())
                    .unwrap_or(ErrorKind::Failed);
                let message = e
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("no message");
                Err(err(
                    kind,
                    with_stderr(format!(
                        "exec provider `{name}` ({op}): {}",
                        truncate(message)
                    )),
                ))
            }
            None => Err(err(
                ErrorKind::Failed,
                with_stderr(format!(
                    "exec provider `{name}` ({op}) answered without a boolean `ok`"
                )),
            )),
        }
    }

    fn bad(&self, op: &str, what: &str) -> ProviderError {
        err(
            ErrorKind::Failed,
            format!(
                "exec provider `{}` ({op}) answered with {what}",
                self.name()
            ),
        )
    }

    /// `verify` with `expect`; `Failed` unless the plugin says the postcondition holds.
    async fn verify(&self, resource: Value, expect: Value) -> ProviderResult<()> {
        let resp = self
            .call("verify", resource, json!({ "expect": expect }))
            .await?;
        match resp.get("holds").and_then(Value::as_bool) {
            Some(true) => Ok(()),
            Some(false) => {
                let detail = resp
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or("no detail");
                Err(err(
                    ErrorKind::Failed,
                    format!(
                        "exec provider `{}`: postcondition does not hold: {}",
                        self.name(),
                        truncate(detail)
                    ),
                ))
            }
            None => Err(self.bad("verify", "no boolean `holds`")),
        }
    }

    fn observation<'a>(&self, resp: &'a Value) -> ProviderResult<&'a Value> {
        resp.get("observation")
            .filter(|o| o.is_object())
            .ok_or_else(|| self.bad("observe", "no `observation` object"))
    }
}

struct RunOutput {
    code: Option<i32>,
    success: bool,
    stdout: Vec<u8>,
    /// More than [`MAX_RESPONSE_BYTES`] were written; `stdout` holds the first part only.
    stdout_truncated: bool,
    stderr: String,
}

fn truncate(s: &str) -> String {
    let s = s.trim();
    if s.len() <= STDERR_MAX {
        return s.to_owned();
    }
    let mut end = STDERR_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (truncated)", &s[..end])
}

fn nat_resource(public: SocketAddr) -> Value {
    json!({ "kind": "nat", "public": public.to_string() })
}

fn dns_resource(record: &str) -> Value {
    json!({ "kind": "dns", "record": record })
}

#[async_trait]
impl NatProvider for ExecPlugin {
    async fn observe(&self, public: SocketAddr) -> ProviderResult<NatObservation> {
        let resp = self
            .call("observe", nat_resource(public), json!({}))
            .await?;
        let obs = self.observation(&resp)?;
        let target = match obs.get("target") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                s.parse::<SocketAddr>()
                    .map_err(|_| self.bad("observe", "a target that is not address:port"))?,
            ),
            Some(_) => return Err(self.bad("observe", "a target that is not a string")),
        };
        let comment = obs
            .get("comment")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(NatObservation {
            public,
            target,
            comment,
        })
    }

    async fn swing(
        &self,
        public: SocketAddr,
        from: SocketAddr,
        to: SocketAddr,
    ) -> ProviderResult<()> {
        let before = NatProvider::observe(self, public).await?;
        match before.target {
            None => {
                return Err(err(
                    ErrorKind::NotFound,
                    format!(
                        "exec provider `{}` has no NAT rule for {public}",
                        self.name()
                    ),
                ));
            }
            Some(t) if t == to => return Ok(()),
            Some(t) if t != from => {
                return Err(err(
                    ErrorKind::Conflict,
                    format!(
                        "the NAT rule for {public} points at {t}, not at {from} as planned; nothing changed"
                    ),
                ));
            }
            Some(_) => {}
        }
        let action = json!({ "type": "swing", "from": from.to_string(), "to": to.to_string(),
                             "comment": format!("swing:{}", self.plan) });
        self.call("apply", nat_resource(public), json!({ "action": action }))
            .await?;
        self.verify(nat_resource(public), json!({ "target": to.to_string() }))
            .await?;
        let after = NatProvider::observe(self, public).await?;
        if after.target != Some(to) {
            let seen = after
                .target
                .map(|t| t.to_string())
                .unwrap_or_else(|| "no rule".to_owned());
            return Err(err(
                ErrorKind::Failed,
                format!(
                    "exec provider `{}` applied the swing of {public} but observing shows {seen}, not {to}",
                    self.name()
                ),
            ));
        }
        Ok(())
    }
}

impl ExecPlugin {
    fn dns_observation(&self, record: &str, resp: &Value) -> ProviderResult<DnsObservation> {
        let obs = self.observation(resp)?;
        let addresses = obs
            .get("addresses")
            .and_then(Value::as_array)
            .ok_or_else(|| self.bad("observe", "no `addresses` array"))?
            .iter()
            .map(|a| a.as_str().and_then(|s| s.parse::<IpAddr>().ok()))
            .collect::<Option<Vec<IpAddr>>>()
            .ok_or_else(|| self.bad("observe", "an address that is not an IP address"))?;
        let ttl = obs
            .get("ttl")
            .and_then(Value::as_u64)
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| self.bad("observe", "no valid `ttl`"))?;
        Ok(DnsObservation {
            record: record.to_owned(),
            addresses,
            ttl,
        })
    }
}

fn addr_set(a: &[IpAddr]) -> BTreeSet<IpAddr> {
    a.iter().copied().collect()
}

fn addr_strings(a: &[IpAddr]) -> Vec<String> {
    a.iter().map(IpAddr::to_string).collect()
}

#[async_trait]
impl DnsProvider for ExecPlugin {
    async fn observe(&self, record: &str) -> ProviderResult<DnsObservation> {
        let resp = self
            .call("observe", dns_resource(record), json!({}))
            .await?;
        self.dns_observation(record, &resp)
    }

    async fn set_ttl(&self, record: &str, expect: &DnsObservation, ttl: u32) -> ProviderResult<()> {
        let expect_json =
            json!({ "addresses": addr_strings(&expect.addresses), "ttl": expect.ttl });
        let action = json!({ "type": "set-ttl", "expect": expect_json, "ttl": ttl });
        self.call("apply", dns_resource(record), json!({ "action": action }))
            .await?;
        let want = json!({ "addresses": addr_strings(&expect.addresses), "ttl": ttl });
        self.verify(dns_resource(record), want).await?;
        let after = DnsProvider::observe(self, record).await?;
        if after.ttl != ttl || addr_set(&after.addresses) != addr_set(&expect.addresses) {
            return Err(err(
                ErrorKind::Failed,
                format!(
                    "exec provider `{}` set the TTL of {record} but observing shows TTL {}",
                    self.name(),
                    after.ttl
                ),
            ));
        }
        Ok(())
    }

    async fn swing(&self, record: &str, from: IpAddr, to: IpAddr, ttl: u32) -> ProviderResult<()> {
        let before = DnsProvider::observe(self, record).await?;
        let done = |o: &DnsObservation| o.addresses.contains(&to) && !o.addresses.contains(&from);
        if done(&before) {
            return Ok(());
        }
        if !before.addresses.contains(&from) {
            return Err(err(
                ErrorKind::Conflict,
                format!(
                    "{record} holds {}, not {from} as planned; nothing changed",
                    addr_strings(&before.addresses).join(", ")
                ),
            ));
        }
        let action =
            json!({ "type": "swing", "from": from.to_string(), "to": to.to_string(), "ttl": ttl });
        self.call("apply", dns_resource(record), json!({ "action": action }))
            .await?;
        let mut want: Vec<IpAddr> = before
            .addresses
            .iter()
            .copied()
            .filter(|a| *a != from)
            .collect();
        if !want.contains(&to) {
            want.push(to);
        }
        self.verify(
            dns_resource(record),
            json!({ "addresses": addr_strings(&want), "ttl": ttl }),
        )
        .await?;
        let after = DnsProvider::observe(self, record).await?;
        if !done(&after) {
            return Err(err(
                ErrorKind::Failed,
                format!(
                    "exec provider `{}` applied the swing of {record} but observing shows {}",
                    self.name(),
                    addr_strings(&after.addresses).join(", ")
                ),
            ));
        }
        Ok(())
    }
}
