//! Test support for the DNS cells of the fault matrix: a real BIND `named` on 127.0.0.1
//! serving the TSIG-protected zone `example.test`, whose faults can be switched while an
//! apply runs — updates refused by policy (`REFUSED`, by rewriting the configuration and
//! reloading named with SIGHUP), the server down (named stopped, later started again on the
//! same port with the same zone and journal), and a concurrent change (a real `nsupdate`).
//! A wrong TSIG key (BADSIG) needs no server change: the plan's key file is rewritten.
//!
//! Owns: its named process and files (a temp dir); it waits for named with a deadline (no
//! fixed sleep) and kills it on Drop. Must not: talk to anything but 127.0.0.1, or change the
//! shared harness in providers/tests/support_named (it reuses its key and `dig`/`nsupdate`
//! helpers).

#![allow(dead_code)] // the fault matrix uses some of it per cell

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support_named::{DigAnswer, KEY_NAME, KEY_SECRET, dig_at, nsupdate_at};

/// A named whose update policy can be switched and which can be stopped and started again.
pub struct FaultyNamed {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> u16 {
    for _ in 0..50 {
        let Ok(tcp) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else { continue };
        if UdpSocket::bind(("127.0.0.1", addr.port())).is_ok() {
            return addr.port();
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

impl FaultyNamed {
    /// Starts named with `example.test` holding `records` (`(label, ttl, type, value)`).
    pub fn start(records: &[(&str, u32, &str, &str)]) -> FaultyNamed {
        let mut dir = tempfile::Builder::new()
            .prefix("swing-faulty-named-")
            .tempdir()
            .expect("temp dir");
        let mut zone = String::from(
            "$TTL 300\n@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60\n@ IN NS ns.example.test.\nns IN A 127.0.0.1\n",
        );
        for (label, ttl, rtype, value) in records {
            zone.push_str(&format!("{label} {ttl} IN {rtype} {value}\n"));
        }
        std::fs::write(dir.path().join("example.test.zone"), zone).expect("zone file");
        std::fs::write(
            dir.path().join("update.key"),
            format!("key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{KEY_SECRET}\"; }};\n"),
        )
        .expect("key file");
        let mut last = String::new();
        for _ in 0..5 {
            let mut n = FaultyNamed {
                addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
                dir,
                child: None,
            };
            n.write_conf(true);
            match n.run() {
                Ok(()) => return n,
                Err(log) => {
                    last = log;
                    dir = n.take_dir();
                }
            }
        }
        panic!("named did not start:\n{last}");
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        self.stop();
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }

    fn write_conf(&self, allow_updates: bool) {
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
zone "example.test" {{
    type primary;
    file "{d}/example.test.zone";
    {policy}
}};
"#
        );
        std::fs::write(self.dir.path().join("named.conf"), conf).expect("named.conf");
    }

    /// Starts named and waits until it answers.
    fn run(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("named.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new("named")
            .args(["-g", "-u", "root", "-c"])
            .arg(self.dir.path().join("named.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run named (install bind9): {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Err(format!("named exited with {status}:\n{}", self.log()));
            }
            if !self.dig("example.test", "SOA").is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!("named did not answer within 30s:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops named (the server is down) — its zone and update journal stay on disk.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
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

    /// Refuse (or allow again) every dynamic update: rewrite the configuration, reload named
    /// (SIGHUP), and wait until an update gets the new answer.
    pub fn allow_updates(&self, allow: bool) {
        self.write_conf(allow);
        let pid = self.child.as_ref().map(Child::id).expect("named runs");
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

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("update.key")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn dig(&self, name: &str, rtype: &str) -> Vec<DigAnswer> {
        dig_at(self.addr, name, rtype)
    }

    /// A real `nsupdate` with the trusted key; true when named accepted it.
    pub fn nsupdate(&self, commands: &str) -> bool {
        nsupdate_at(self.addr, &self.key_file(), "example.test", commands)
    }
}

impl Drop for FaultyNamed {
    fn drop(&mut self) {
        self.stop();
    }
}
