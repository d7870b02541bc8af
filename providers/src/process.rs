//! Running a site's command once: the one way the exec provider and `operator: exec` start a
//! process.
//!
//! Owns: spawning without a shell in a new process group (`process_group(0)`), writing the
//! request to stdin, reading stdout and stderr concurrently with a byte cap each (no unbounded
//! memory, whatever the command writes), the timeout — on expiry the WHOLE process group is
//! sent `SIGKILL`, so grandchildren the command started die with it — and the environment
//! rule: variables the caller names are removed before the command starts.
//!
//! Must not: interpret output or exit codes (callers own their protocols and error messages),
//! put anything on the command line beyond the caller's arguments, retry, or signal a process
//! group whose leader has already been reaped (its id could belong to someone else by then).
//!
//! Safety of the group kill: the leader is reaped only after stdout and stderr are closed, so
//! while the timeout can still fire the leader is at worst a zombie and its pid — the group
//! id — cannot have been reused. A guard kills the group as well when the run is cancelled
//! (the future dropped) before the leader was reaped.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// Which part of an over-long stream is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The first `cap` bytes; reading stops there and the pipe is closed, so a command that
    /// keeps writing gets `EPIPE`/`SIGPIPE` instead of filling memory.
    Head,
    /// The last `cap` bytes; the stream is drained to the end so the command never blocks on
    /// a full pipe (for protocols whose answer is the last line).
    Tail,
}

/// How much of one output stream is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub bytes: usize,
    pub keep: Keep,
}

impl Cap {
    pub const fn head(bytes: usize) -> Self {
        Cap {
            bytes,
            keep: Keep::Head,
        }
    }

    pub const fn tail(bytes: usize) -> Self {
        Cap {
            bytes,
            keep: Keep::Tail,
        }
    }
}

/// One output stream as read.
#[derive(Debug, Default)]
pub struct Captured {
    /// At most the cap's number of bytes.
    pub bytes: Vec<u8>,
    /// The command wrote more than the cap; `bytes` holds the kept part only.
    pub truncated: bool,
    /// Reading failed part-way; `bytes` holds what was read before.
    pub read_error: Option<std::io::Error>,
}

/// How the run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The command exited (or was killed by someone else) within the timeout.
    Exited(ExitStatus),
    /// The timeout expired; the whole process group was killed.
    TimedOut,
}

/// The result of [`Run::run`].
#[derive(Debug)]
pub struct Finished {
    pub outcome: Outcome,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// Why a run produced no [`Finished`].
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The command could not be started (not found, not executable, …).
    #[error("cannot start the command: {0}")]
    Spawn(#[source] std::io::Error),
    /// Waiting for the exit status failed.
    #[error("waiting for the command failed: {0}")]
    Wait(#[source] std::io::Error),
}

/// One process run: program, arguments, environment, stdin, caps and timeout.
#[derive(Debug, Clone)]
pub struct Run {
    program: PathBuf,
    args: Vec<String>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    env_remove: Vec<String>,
    stdin: Vec<u8>,
    timeout: Duration,
    stdout_cap: Cap,
    stderr_cap: Cap,
}

/// Default cap for each stream: 64 KiB, the head kept.
pub const DEFAULT_CAP: Cap = Cap::head(64 * 1024);

impl Run {
    /// `program args…`, run directly (no shell); 60 s timeout, [`DEFAULT_CAP`] on both streams.
    pub fn new(program: impl Into<PathBuf>, args: Vec<String>) -> Self {
        Run {
            program: program.into(),
            args,
            cwd: None,
            env: Vec::new(),
            env_remove: Vec::new(),
            stdin: Vec::new(),
            timeout: Duration::from_secs(60),
            stdout_cap: DEFAULT_CAP,
            stderr_cap: DEFAULT_CAP,
        }
    }

    pub fn current_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cwd = dir;
        self
    }

    /// Sets one variable for the command (on top of the inherited environment).
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Removes these variables from the inherited environment (applied after [`Run::env`], so a
    /// removed name never reaches the command).
    pub fn env_remove<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.env_remove
            .extend(names.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Bytes written to stdin, which is then closed. A command that exits without reading
    /// all of it is not an error.
    pub fn stdin(mut self, input: Vec<u8>) -> Self {
        self.stdin = input;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn stdout_cap(mut self, cap: Cap) -> Self {
        self.stdout_cap = cap;
        self
    }

    pub fn stderr_cap(mut self, cap: Cap) -> Self {
        self.stderr_cap = cap;
        self
    }

    /// Starts the command and waits for it (or for the timeout).
    pub async fn run(&self) -> Result<Finished, RunError> {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for name in &self.env_remove {
            cmd.env_remove(name);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let child = cmd.spawn().map_err(RunError::Spawn)?;
        let mut group = Group::new(child);
        let stdin = group.child.stdin.take();
        let stdout = group.child.stdout.take();
        let stderr = group.child.stderr.take();
        let input = self.stdin.as_slice();
        let (out_cap, err_cap) = (self.stdout_cap, self.stderr_cap);

        let mut out = Captured::default();
        let mut errout = Captured::default();
        let status = {
            let work = async {
                let write = async move {
                    if let Some(mut p) = stdin {
                        let _ = p.write_all(input).await;
                        let _ = p.shutdown().await;
                    }
                };
                // Streams first, exit status after: the leader stays unreaped (a zombie at
                // worst) until both pipes are closed, so the group id stays ours to signal.
                let ((), o, e) =
                    tokio::join!(write, capture(stdout, out_cap), capture(stderr, err_cap));
                out = o;
                errout = e;
                group.child.wait().await
            };
            tokio::time::timeout(self.timeout, work).await
        };
        match status {
            Err(_) => {
                group.kill();
                // Reap the leader so no zombie is left behind; SIGKILL makes this prompt.
                let _ = group.child.wait().await;
                group.reaped = true;
                Ok(Finished {
                    outcome: Outcome::TimedOut,
                    stdout: out,
                    stderr: errout,
                })
            }
            Ok(status) => {
                group.reaped = true;
                let status = status.map_err(RunError::Wait)?;
                Ok(Finished {
                    outcome: Outcome::Exited(status),
                    stdout: out,
                    stderr: errout,
                })
            }
        }
    }
}

/// The spawned leader of a process group; kills the group when dropped unreaped.
struct Group {
    child: Child,
    pgid: Option<i32>,
    reaped: bool,
}

impl Group {
    fn new(child: Child) -> Self {
        let pgid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 0);
        Group {
            child,
            pgid,
            reaped: false,
        }
    }

    /// `SIGKILL` to every process in the group. Only called while the leader is unreaped.
    fn kill(&self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg(3) only signals; no memory is touched. The group was created for
            // this child (`process_group(0)`) and its leader is not reaped yet, so the id is
            // still this group's and no other process is hit.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
        }
    }
}

/// Reads `r` to its end under `cap` (see [`Keep`]).
async fn capture<R: AsyncRead + Unpin>(r: Option<R>, cap: Cap) -> Captured {
    let mut c = Captured::default();
    let Some(r) = r else { return c };
    match cap.keep {
        Keep::Head => {
            let limit = u64::try_from(cap.bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            if let Err(e) = r.take(limit).read_to_end(&mut c.bytes).await {
                c.read_error = Some(e);
            }
            if c.bytes.len() > cap.bytes {
                c.bytes.truncate(cap.bytes);
                c.truncated = true;
            }
        }
        Keep::Tail => {
            let mut r = r;
            let mut buf = [0u8; 8192];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) => break,
                    Err(e) => {
                        c.read_error = Some(e);
                        break;
                    }
                    Ok(n) => {
                        c.bytes.extend_from_slice(&buf[..n]);
                        if c.bytes.len() > cap.bytes {
                            c.bytes.drain(..c.bytes.len() - cap.bytes);
                            c.truncated = true;
                        }
                    }
                }
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn script(dir: &std::path::Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join("cmd.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        p
    }

    /// Waits (bounded) until `pid` is gone or a zombie; panics if it is still running.
    fn wait_until_dead(pid: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("");
            if stat.is_empty() || state == "Z" {
                return;
            }
            assert!(Instant::now() < deadline, "{pid} survived: {stat}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn stdin_is_written_and_output_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(dir.path(), "cat; echo oops >&2; exit 4");
        let f = Run::new(p, vec![])
            .stdin(b"hello".to_vec())
            .timeout(Duration::from_secs(20))
            .run()
            .await
            .unwrap();
        match f.outcome {
            Outcome::Exited(s) => assert_eq!(s.code(), Some(4)),
            Outcome::TimedOut => panic!("timed out"),
        }
        assert_eq!(f.stdout.bytes, b"hello");
        assert!(!f.stdout.truncated);
        assert_eq!(f.stderr.bytes, b"oops\n");
    }

    #[tokio::test]
    async fn environment_is_set_and_stripped() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "echo \"a=${SWING_T_SET-unset} b=${CARGO_PKG_NAME-unset}\"",
        );
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let f = Run::new(p, vec![])
            .env("SWING_T_SET", "yes")
            .env_remove(["CARGO_PKG_NAME"])
            .run()
            .await
            .unwrap();
        assert_eq!(f.stdout.bytes, b"a=yes b=unset\n");
    }

    #[tokio::test]
    async fn output_over_the_cap_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = script(
            dir.path(),
            "head -c 100000 /dev/zero | tr '\\0' x; echo; echo last; head -c 50000 /dev/zero >&2",
        );
        let f = Run::new(p, vec![])
            .stdout_cap(Cap::tail(1000))
            .stderr_cap(Cap::head(100))
            .timeout(Duration::from_secs(20))
            .run()
            .await
            .unwrap();
        assert!(f.stdout.truncated && f.stdout.bytes.len() == 1000);
        assert!(f.stdout.bytes.ends_with(b"x\nlast\n"));
        assert!(f.stderr.truncated && f.stderr.bytes.len() == 100);
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group_grandchildren_included() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // The grandchild lets go of every pipe, so only the group kill can reach it.
        let p = script(
            dir.path(),
            &format!(
                "sleep 300 </dev/null >/dev/null 2>&1 & echo $! > {}\nexec sleep 300",
                pidfile.display()
            ),
        );
        let started = Instant::now();
        let f = Run::new(p, vec![])
            .timeout(Duration::from_millis(500))
            .run()
            .await
            .unwrap();
        assert!(matches!(f.outcome, Outcome::TimedOut));
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
        wait_until_dead(&pid);
    }

    #[tokio::test]
    async fn spawn_failure_is_typed() {
        let e = Run::new("/nonexistent/swing-cmd", vec![])
            .run()
            .await
            .unwrap_err();
        assert!(
            matches!(&e, RunError::Spawn(io) if io.kind() == std::io::ErrorKind::NotFound),
            "{e}"
        );
    }
}
