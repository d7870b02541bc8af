//! A real BIND `named` on 127.0.0.1 with a free high port, serving the TSIG-protected zone
//! `example.test` (`update-policy { grant swing-key zonesub ANY; }`) and a zone `locked.test`
//! that accepts no updates, from a temp dir; plus the real `dig` and `nsupdate` clients
//! pointed at it. The provider tests use it as a plain server; the fault matrix also switches
//! its faults while an apply runs: updates refused by policy (`REFUSED`, by rewriting the
//! configuration and reloading named with SIGHUP) and the server down (named stopped, later
//! started again on the same port with the same zone and update journal).
//!
//! Owns: the named process and its files. It waits until named answers (polls `dig` with a
//! deadline, no fixed sleep) and kills named on Drop, so a failing test never leaves it
//! behind. Must not: talk to anything but 127.0.0.1.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The TSIG key named trusts (test-only key material).
pub const KEY_NAME: &str = "swing-key";
pub const KEY_SECRET: &str = "3q2+7wYWl4OGx0ZkKDkKcE1ObG1nbGRWSmlpa3RldGVzdGs=";
/// Another valid base64 secret of the same length that named does NOT know.
pub const WRONG_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISI=";

/// A running named (or one stopped by [`Named::stop`], ready for [`Named::restart`]).
pub struct Named {
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

/// A (name, ttl, type, value) line from `dig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigAnswer {
    pub name: String,
    pub ttl: u32,
    pub rtype: String,
    pub value: String,
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
        let mut zone = String::from(
            "$TTL 300\n@ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 60\n@ IN NS ns.example.test.\nns IN A 127.0.0.1\n",
        );
        for (label, ttl, rtype, value) in records {
            zone.push_str(&format!("{label} {ttl} IN {rtype} {value}\n"));
        }
        let locked = "$TTL 300\n@ IN SOA ns.locked.test. hostmaster.locked.test. 1 3600 600 86400 60\n@ IN NS ns.locked.test.\nns IN A 127.0.0.1\naccess 300 IN A 10.0.0.11\n";
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).map_err(|e| e.to_string())
        };
        write("example.test.zone", &zone)?;
        write("locked.test.zone", locked)?;
        write(
            "update.key",
            &format!("key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{KEY_SECRET}\"; }};\n"),
        )?;
        let mut named = Named {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            child: None,
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

    /// Refuse (or allow again) every dynamic update of `example.test`: rewrite the
    /// configuration, reload named (SIGHUP), and wait until an update gets the new answer.
    pub fn allow_updates(&self, allow: bool) {
        if let Err(e) = self.write_conf(allow) {
            panic!("cannot write named.conf: {e}");
        }
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

/// A real `dig` against `addr`.
pub fn dig_at(addr: SocketAddr, name: &str, rtype: &str) -> Vec<DigAnswer> {
    let out = Command::new("dig")
        .arg(format!("@{}", addr.ip()))
        .args([
            "-p",
            &addr.port().to_string(),
            "+norecurse",
            "+noall",
            "+answer",
            "+tries=1",
            "+time=1",
        ])
        .args([name, rtype])
        .output()
        .expect("run dig (install bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 5 || l.starts_with(';') {
                return None;
            }
            Some(DigAnswer {
                name: f[0].trim_end_matches('.').to_owned(),
                ttl: f[1].parse().ok()?,
                rtype: f[3].to_owned(),
                value: f[4..].join(" "),
            })
        })
        .collect()
}

/// A real `nsupdate` against `addr` for `zone` with the key in `key_file`.
pub fn nsupdate_at(addr: SocketAddr, key_file: &Path, zone: &str, commands: &str) -> bool {
    let mut child = Command::new("nsupdate")
        .arg("-v")
        .arg("-k")
        .arg(key_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nsupdate (install bind9-dnsutils)");
    let script = format!(
        "server {} {}\nzone {zone}\n{commands}\nsend\n",
        addr.ip(),
        addr.port()
    );
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(script.as_bytes());
    }
    child
        .wait_with_output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}
