//! A real BIND `named` on 127.0.0.1 with a free high port, serving the TSIG-protected zone
//! `example.test` (`update-policy { grant swing-key zonesub ANY; }`) and a zone `locked.test`
//! that accepts no updates, from a temp dir; plus the real `dig` and `nsupdate` clients
//! pointed at it. The provider tests use it as a plain server; the fault matrix also switches
//! its faults while an apply runs: updates refused by policy (`REFUSED`, by rewriting the
//! configuration and reloading named with SIGHUP) and the server down (named stopped, later
//! started again on the same port with the same zone and update journal).
//!
//! BIND answers a key it does not know with NOTAUTH + TSIG error BADKEY, a known key with the
//! wrong secret with NOTAUTH + BADSIG, a known key its update-policy does not grant with
//! REFUSED, and an update of a zone it does not serve with NOTAUTH (no TSIG error).
//!
//! Owns: the named process and its files (the process, port, zone files, `dig`/`nsupdate`
//! helpers are [`crate::dns`]'s, shared with Knot). It waits until named answers (polls `dig`
//! with a deadline, no fixed sleep) and kills named on Drop, so a failing test never leaves it
//! behind. Must not: talk to anything but 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use crate::dns::{DigAnswer, KEY_NAME, KEY_SECRET, WRONG_SECRET, dig_at, nsupdate_at};
use crate::dns::{ServerProcess, free_port, write_key_file, zone_text};

/// A key named knows but whose update-policy grants nothing (its updates are REFUSED).
pub const UNGRANTED_KEY_NAME: &str = "ungranted-key";
pub const UNGRANTED_KEY_SECRET: &str = "c3dpbmctdW5ncmFudGVkLWtleS1zZWNyZXQtMDEyMzQ1Njc=";

/// A running named (or one stopped by [`Named::stop`], ready for [`Named::restart`]).
pub struct Named {
    pub addr: SocketAddr,
    process: Option<ServerProcess>,
    dir: tempfile::TempDir,
}

impl Named {
    /// Starts named with `example.test` holding `records` (`(label, ttl, type, value)`).
    pub fn start(records: &[(&str, u32, &str, &str)]) -> Named {
        let mut last_log = String::new();
        for _attempt in 0..5 {
            match Self::try_start(records) {
                Ok(n) => return n,
                Err(log) => last_log = log,
            }
        }
        panic!("named did not start:\n{last_log}");
    }

    fn try_start(records: &[(&str, u32, &str, &str)]) -> Result<Named, String> {
        let dir = tempfile::Builder::new()
            .prefix("swing-named-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).map_err(|e| e.to_string())
        };
        write("example.test.zone", &zone_text("example.test", records))?;
        write(
            "locked.test.zone",
            &zone_text("locked.test", &[("access", 300, "A", "10.0.0.11")]),
        )?;
        write_key_file(&dir.path().join("update.key"), KEY_NAME, KEY_SECRET)
            .map_err(|e| e.to_string())?;
        let mut named = Named {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            process: None,
            dir,
        };
        named.write_conf(true)?;
        named.run()?;
        Ok(named)
    }

    /// Writes `named.conf`: `example.test` updatable with the trusted key, or by nobody.
    fn write_conf(&self, allow_updates: bool) -> Result<(), String> {
        let d = self.dir.path().display();
        let port = self.addr.port();
        let policy = if allow_updates {
            format!("update-policy {{ grant {KEY_NAME} zonesub ANY; }};")
        } else {
            "allow-update { none; };".to_owned()
        };
        let conf = format!(
            r#"options {{
    directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    recursion no;
    dnssec-validation no;
    notify no;
    allow-query {{ 127.0.0.1; }};
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{KEY_SECRET}"; }};
key "{UNGRANTED_KEY_NAME}" {{ algorithm hmac-sha256; secret "{UNGRANTED_KEY_SECRET}"; }};
zone "example.test" {{
    type primary;
    file "{d}/example.test.zone";
    {policy}
}};
zone "locked.test" {{
    type primary;
    file "{d}/locked.test.zone";
    allow-update {{ none; }};
}};
"#
        );
        std::fs::write(self.dir.path().join("named.conf"), conf).map_err(|e| e.to_string())
    }

    /// Starts named and waits until it answers.
    fn run(&mut self) -> Result<(), String> {
        let mut command = Command::new("named");
        command
            .args(["-g", "-u", "root", "-c"])
            .arg(self.dir.path().join("named.conf"));
        let process = ServerProcess::start(
            command,
            "named (install bind9)",
            &self.dir.path().join("named.log"),
            self.addr,
            "example.test",
        )?;
        self.process = Some(process);
        Ok(())
    }

    /// Stops named (the server is down) — its zone and update journal stay on disk.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop();
        }
    }

    /// Starts named again on the same port, with the updates it had accepted.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match self.run() {
                Ok(()) => return,
                // The port may still be held for a moment by the old process.
                Err(log) if Instant::now() > deadline => panic!("named did not restart:\n{log}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Refuse (or allow again) every dynamic update of `example.test`: rewrite the
    /// configuration, reload named (SIGHUP), and wait until an update gets the new answer.
    pub fn allow_updates(&self, allow: bool) {
        if let Err(e) = self.write_conf(allow) {
            panic!("cannot write named.conf: {e}");
        }
        let pid = self
            .process
            .as_ref()
            .and_then(ServerProcess::pid)
            .expect("named runs");
        let pid = libc::pid_t::try_from(pid).expect("pid fits");
        // SAFETY: kill(2) with our own child's pid and a valid signal touches no memory.
        let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
        assert_eq!(
            rc,
            0,
            "cannot signal named: {}",
            std::io::Error::last_os_error()
        );
        let probe = "update delete probe-reload.example.test. TXT";
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.nsupdate(probe) != allow {
            assert!(
                Instant::now() < deadline,
                "named did not take the new update policy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("update.key")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Answers of a real `dig` (non-recursive, TCP off, one try) for `name` `rtype`.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<DigAnswer> {
        dig_at(self.addr, name, rtype)
    }

    /// The SOA serial of `zone`, as `dig` reads it.
    pub fn soa_serial(&self, zone: &str) -> Option<u32> {
        crate::dns::soa_serial_at(self.addr, zone)
    }

    /// Runs `nsupdate -k KEYFILE` with `commands` (after `server`/`zone` lines); true on success.
    pub fn nsupdate(&self, commands: &str) -> bool {
        nsupdate_at(self.addr, &self.key_file(), "example.test", commands)
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.stop();
    }
}
