//! Running a NAT gateway's tools (`nft`, `iptables-save`/`iptables-restore`, `conntrack`) for the
//! NAT providers, optionally inside a network namespace (`ip netns exec NAME program …`), and
//! the conntrack flush both providers do after a swing.
//!
//! Owns: the command line (program and separate arguments, never a shell string), running it
//! through [`crate::process::Run`] (own process group killed on timeout, capped output), typed
//! errors for what every gateway tool can hit (the launcher or the tool not installed, the
//! namespace missing, the timeout, output too large), the name rule for tables, chains,
//! namespaces and plan names, and `conntrack -D` for the old target of a swing.
//!
//! Must not: interpret a tool's own output beyond those shared failures (each provider owns its
//! tool's protocol), retry, or print to the terminal.

use std::net::SocketAddr;
use std::time::Duration;

use swing_engine::provider::{ErrorKind, ProviderError, ProviderResult};

use crate::process::{Cap, Outcome, Run, RunError};

/// Longest stderr excerpt put into an error message.
pub(crate) const STDERR_MAX: usize = 2000;

/// Most bytes of a tool's stdout read (a listing of a large chain stays far below).
const STDOUT_MAX: usize = 16 * 1024 * 1024;

/// What the best-effort conntrack flush after a swing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConntrackFlush {
    /// Flushing is switched off (the provider's `with_conntrack_flush(false)`).
    Disabled,
    /// `conntrack -D` ran; this many entries of the old target were deleted.
    Deleted(u64),
    /// `conntrack` could not run or failed; the swing itself succeeded.
    Failed(String),
}

/// How a NAT provider reaches its gateway's tools: the namespace and the per-command timeout.
#[derive(Debug, Clone)]
pub(crate) struct Gateway {
    pub netns: Option<String>,
    pub timeout: Duration,
}

/// One finished tool run.
#[derive(Debug)]
pub(crate) struct ToolOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

pub(crate) fn err(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
    ProviderError::new(kind, message)
}

/// A table, chain, namespace or plan name that is safe as a separate argument: no leading
/// `-` (an option to the tool or to ip), no `.`/`..` (a path under /run/netns), no whitespace or
/// quotes.
/// The one DNAT rule for `public` among the `found` ones: `None` when there is none, a
/// `Conflict` listing them (by `id`, a `label` such as "handles") when there are several —
/// swing never guesses which rule a swing should move.
pub(crate) fn exactly_one<T>(
    mut found: Vec<T>,
    public: SocketAddr,
    location: &str,
    label: &str,
    id: impl Fn(&T) -> String,
) -> ProviderResult<Option<T>> {
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => {
            let ids: Vec<String> = found.iter().map(id).collect();
            Err(err(
                ErrorKind::Conflict,
                format!(
                    "{n} DNAT rules match {public} in {location} ({label} {}); swing needs exactly one",
                    ids.join(", ")
                ),
            ))
        }
    }
}

/// `rule`, or `NotFound` naming where no rule for `public` was found.
pub(crate) fn required<T>(
    rule: Option<T>,
    public: SocketAddr,
    location: &str,
) -> ProviderResult<T> {
    rule.ok_or_else(|| {
        err(
            ErrorKind::NotFound,
            format!("no DNAT rule matches {public} in {location}"),
        )
    })
}

pub(crate) fn valid_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 256
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

pub(crate) fn truncate(s: &str) -> String {
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

/// `conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.`
pub(crate) fn parse_deleted(stderr: &str) -> Option<u64> {
    let idx = stderr.find(" flow entries have been deleted")?;
    stderr[..idx]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

impl Gateway {
    /// Checks the namespace name; `None` runs the tools in swing's own namespace.
    pub fn new(netns: Option<String>) -> ProviderResult<Gateway> {
        if let Some(ns) = &netns
            && !valid_name(ns)
        {
            return Err(err(
                ErrorKind::Invalid,
                format!("network namespace name `{ns}` is not a valid name"),
            ));
        }
        Ok(Gateway {
            netns,
            timeout: Duration::from_secs(10),
        })
    }

    /// ` in network namespace `NAME`` or nothing, for messages.
    pub fn in_netns(&self) -> String {
        self.netns
            .as_deref()
            .map(|n| format!(" in network namespace `{n}`"))
            .unwrap_or_default()
    }

    /// Runs `program args…` (inside the namespace if configured) with `stdin`. A run that
    /// finished is `Ok` whatever its exit status, except for the failures every tool shares:
    /// not installed, namespace missing (`NotFound`), timeout (`Transient`).
    pub async fn run(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> ProviderResult<ToolOutput> {
        let (launcher, argv): (&str, Vec<String>) = match &self.netns {
            Some(ns) => {
                let mut v: Vec<String> = vec!["netns".into(), "exec".into(), ns.clone()];
                v.push(program.to_owned());
                v.extend(args.iter().map(|a| (*a).to_owned()));
                ("ip", v)
            }
            None => (program, args.iter().map(|a| (*a).to_owned()).collect()),
        };
        let mut run = Run::new(launcher, argv)
            .timeout(self.timeout)
            .stdout_cap(Cap::head(STDOUT_MAX))
            .stderr_cap(Cap::head(64 * 1024));
        if let Some(input) = stdin {
            run = run.stdin(input.to_vec());
        }
        let finished = run.run().await.map_err(|e| match e {
            RunError::Spawn(io) if io.kind() == std::io::ErrorKind::NotFound => err(
                ErrorKind::NotFound,
                format!(
                    "`{launcher}` not found on this machine (install {})",
                    package_of(launcher)
                ),
            ),
            other => err(
                ErrorKind::Failed,
                format!("cannot run `{launcher}`: {other}"),
            ),
        })?;
        let status = match finished.outcome {
            Outcome::TimedOut => {
                return Err(err(
                    ErrorKind::Transient,
                    format!(
                        "`{program}` did not finish within {:?}{} (killed)",
                        self.timeout,
                        self.in_netns()
                    ),
                ));
            }
            Outcome::Exited(s) => s,
        };
        if finished.stdout.truncated {
            return Err(err(
                ErrorKind::Failed,
                format!(
                    "`{program}` printed more than {} MiB{}; swing does not read that much",
                    STDOUT_MAX / (1024 * 1024),
                    self.in_netns()
                ),
            ));
        }
        let stderr = truncate(&String::from_utf8_lossy(&finished.stderr.bytes));
        if !status.success() {
            if stderr.contains("Cannot open network namespace") {
                let ns = self.netns.as_deref().unwrap_or_default();
                return Err(err(
                    ErrorKind::NotFound,
                    format!("network namespace `{ns}` does not exist: {stderr}"),
                ));
            }
            if stderr.contains(&format!("exec of \"{program}\" failed")) {
                return Err(err(
                    ErrorKind::NotFound,
                    format!(
                        "`{program}` not found{} (install {}): {stderr}",
                        self.in_netns(),
                        package_of(program)
                    ),
                ));
            }
        }
        Ok(ToolOutput {
            success: status.success(),
            code: status.code(),
            stdout: finished.stdout.bytes,
            stderr,
        })
    }

    /// Deletes the conntrack entries of connections to `public` that were sent to `old`, so
    /// their next packets are NATed afresh (to the new target). `program`: `None` = disabled.
    pub async fn flush_conntrack(
        &self,
        program: Option<&str>,
        public: SocketAddr,
        old: SocketAddr,
    ) -> ConntrackFlush {
        let Some(program) = program else {
            return ConntrackFlush::Disabled;
        };
        let family = if public.is_ipv4() { "ipv4" } else { "ipv6" };
        let (pub_ip, pub_port, old_ip, old_port) = (
            public.ip().to_string(),
            public.port().to_string(),
            old.ip().to_string(),
            old.port().to_string(),
        );
        let args = [
            "-D",
            "-f",
            family,
            "-p",
            "tcp",
            "--orig-dst",
            &pub_ip,
            "--orig-port-dst",
            &pub_port,
            "--reply-src",
            &old_ip,
            "--reply-port-src",
            &old_port,
        ];
        match self.run(program, &args, None).await {
            Err(e) => ConntrackFlush::Failed(e.message),
            Ok(out) => match parse_deleted(&out.stderr) {
                Some(n) => ConntrackFlush::Deleted(n),
                None => ConntrackFlush::Failed(format!(
                    "conntrack exited with {:?}: {}",
                    out.code, out.stderr
                )),
            },
        }
    }
}

/// The Debian package that ships a gateway tool, for "install …" hints.
fn package_of(program: &str) -> &'static str {
    match program {
        "ip" => "iproute2",
        "conntrack" => "conntrack",
        p if p.contains("iptables") => "iptables",
        _ => "nftables",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_count_is_parsed() {
        assert_eq!(
            parse_deleted("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted."),
            Some(3)
        );
        assert_eq!(
            parse_deleted("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted."),
            Some(0)
        );
        assert_eq!(parse_deleted("conntrack: operation failed"), None);
    }

    #[test]
    fn long_stderr_is_truncated() {
        let s = "é".repeat(STDERR_MAX);
        let t = truncate(&s);
        assert!(t.len() < s.len());
        assert!(t.ends_with("(truncated)"));
    }

    #[test]
    fn names_that_could_be_options_or_paths_are_refused() {
        for bad in ["-e", "..", ".x", "a b", "a\"b", ""] {
            assert!(!valid_name(bad), "{bad}");
            assert!(Gateway::new(Some(bad.into())).is_err(), "{bad}");
        }
        for good in ["PREROUTING", "nat", "swt-1-2-gw", "a_b.c"] {
            assert!(valid_name(good), "{good}");
        }
    }

    #[tokio::test]
    async fn a_missing_tool_is_not_found_with_its_package() {
        let g = Gateway::new(None).unwrap();
        let e = g
            .run("/nonexistent/swing-iptables-save", &[], None)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
        assert!(e.message.contains("install iptables"), "{e}");
    }
}
