//! What the real DNS servers of the tests share ([`crate::named`] for BIND, [`crate::knot`]
//! for Knot DNS): the test TSIG keys, a free loopback port, zone files, a skewed clock for a
//! server (libfaketime), the server process
//! (started in the foreground, stderr to a log file, waited for by querying it, killed on
//! Drop), and the real `dig` and `nsupdate` clients pointed at a server.
//!
//! Must not: talk to anything but 127.0.0.1, or wait by sleeping a fixed time (readiness is
//! a query that answers, polled with a deadline).

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The TSIG key the servers trust for updates of `example.test` (test-only key material).
pub const KEY_NAME: &str = "swing-key";
pub const KEY_SECRET: &str = "3q2+7wYWl4OGx0ZkKDkKcE1ObG1nbGRWSmlpa3RldGVzdGs=";
/// Another valid base64 secret of the same length that no server knows for [`KEY_NAME`].
pub const WRONG_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISI=";

/// A (name, ttl, type, value) line from `dig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigAnswer {
    pub name: String,
    pub ttl: u32,
    pub rtype: String,
    pub value: String,
}

/// A loopback port free for both UDP and TCP right now.
pub fn free_port() -> u16 {
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

/// A zone file for `zone` (serial 1, NS `ns.ZONE` at 127.0.0.1) holding `records`
/// (`(label, ttl, type, value)`).
pub fn zone_text(zone: &str, records: &[(&str, u32, &str, &str)]) -> String {
    let mut text = format!(
        "$TTL 300\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n@ IN NS ns.{zone}.\nns IN A 127.0.0.1\n"
    );
    for (label, ttl, rtype, value) in records {
        text.push_str(&format!("{label} {ttl} IN {rtype} {value}\n"));
    }
    text
}

/// Makes `command` see a clock `skew_s` seconds off this host's: the Debian `faketime`
/// package's libfaketime (`/usr/lib/<triplet>/faketime/`) preloaded into that process alone,
/// so the process started is the server itself (and is killed as such). Works for knotd;
/// BIND's `named` links jemalloc, under which libfaketime cannot initialise (named never
/// comes up), so BIND is not run skewed.
pub fn skew_clock(command: &mut Command, skew_s: i64) -> Result<(), String> {
    let lib = std::fs::read_dir("/usr/lib")
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file())
        .ok_or("libfaketime not found (install faketime)")?;
    command
        .env("LD_PRELOAD", lib)
        .env("FAKETIME", format!("{skew_s:+}"))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    Ok(())
}

/// A DNS server process run in the foreground, its stderr appended to a log file; killed
/// (and reaped) on [`ServerProcess::stop`] or Drop.
pub struct ServerProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `command` (`what` names it in errors) and waits until `addr` answers an SOA
    /// query for `zone` (30 s deadline). On failure the process is gone and the error holds
    /// its log.
    pub fn start(
        mut command: Command,
        what: &str,
        log: &Path,
        addr: SocketAddr,
        zone: &str,
    ) -> Result<ServerProcess, String> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| e.to_string())?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot run {what}: {e}"))?;
        let mut server = ServerProcess {
            child: Some(child),
            log: log.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = server.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                server.child = None;
                return Err(format!("{what} exited with {status}:\n{}", server.log()));
            }
            if !dig_at(addr, zone, "SOA").is_empty() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                server.stop();
                return Err(format!(
                    "{what} did not answer within 30s:\n{}",
                    server.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real `dig` against `addr` (non-recursive, UDP, one try).
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

/// The SOA serial of `zone` as a real `dig` reads it from `addr`.
pub fn soa_serial_at(addr: SocketAddr, zone: &str) -> Option<u32> {
    let answers = dig_at(addr, zone, "SOA");
    let soa = answers.iter().find(|a| a.rtype == "SOA")?;
    soa.value.split_whitespace().nth(2)?.parse().ok()
}

/// A real `nsupdate` against `addr` for `zone` with the key in `key_file` (BIND syntax);
/// true on success.
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

/// Writes a BIND-syntax key file for `nsupdate -k` (`name`, hmac-sha256, `secret`) at `path`.
pub fn write_key_file(path: &Path, name: &str, secret: &str) -> std::io::Result<()> {
    std::fs::write(
        path,
        format!("key \"{name}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"),
    )
}

/// An `rfc2136` provider for `zone` on `server`, signing with `key_name` (hmac-sha256) and
/// `secret`, with a 5 s timeout.
pub fn rfc2136_provider(
    server: &str,
    zone: &str,
    key_name: &str,
    secret: &str,
) -> swing_providers::rfc2136::Rfc2136Provider {
    swing_providers::rfc2136::Rfc2136Provider::new(swing_providers::rfc2136::Rfc2136Config {
        server: server.to_owned(),
        zone: zone.to_owned(),
        tsig: Some(swing_providers::rfc2136::TsigKey {
            name: key_name.to_owned(),
            algorithm: swing_schema::TsigAlgorithm::HmacSha256,
            secret: swing_schema::SecretValue::new(secret),
        }),
        timeout: Duration::from_secs(5),
    })
    .expect("provider config")
}
