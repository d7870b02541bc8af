//! A real Knot DNS `knotd` on 127.0.0.1 with a free high port, from a temp dir: the zone
//! `example.test` updatable with [`KEY_NAME`] (an `acl:` with `action: update` and that key),
//! a second key [`OTHER_KEY_NAME`] that Knot knows but no ACL allows, and a zone `locked.test`
//! with no ACL at all. Knot answers an update signed with a key its ACL does not allow (or a
//! key it does not know) with NOTAUTH + TSIG error BADKEY, a known key with the wrong secret
//! with NOTAUTH + BADSIG, a record outside the zone with NOTZONE, and an update of a zone it
//! does not serve with NOTAUTH (no TSIG error). [`Knot::start_skewed`] runs knotd with its
//! clock moved (libfaketime preloaded into knotd alone), which it answers with NOTAUTH + BADTIME.
//!
//! Owns: the knotd process and its files (configuration, zone files, database storage);
//! process, port and client helpers are [`crate::dns`]'s, shared with BIND. It waits until
//! knotd answers (an SOA query polled with a deadline) and kills it on Drop.
//! Must not: talk to anything but 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::dns::{
    DigAnswer, KEY_NAME, KEY_SECRET, ServerProcess, dig_at, free_port, nsupdate_at, skew_clock,
    soa_serial_at, write_key_file, zone_text,
};

/// A key Knot knows (in `key:`) but that no zone's ACL allows.
pub const OTHER_KEY_NAME: &str = "other-key";
pub const OTHER_KEY_SECRET: &str = "b3RoZXIta2V5LXNlY3JldC1mb3Ita25vdC10ZXN0czAxMjM=";

/// A running knotd; killed on Drop.
pub struct Knot {
    pub addr: SocketAddr,
    process: ServerProcess,
    dir: tempfile::TempDir,
}

impl Knot {
    /// Starts knotd with `example.test` holding `records` (`(label, ttl, type, value)`).
    pub fn start(records: &[(&str, u32, &str, &str)]) -> Knot {
        Self::start_with_clock(records, None)
    }

    /// Starts knotd whose clock runs `skew_s` seconds off this host's (libfaketime preloaded
    /// into knotd only, Debian `faketime`): its TSIG checks then see our signatures as
    /// that far off.
    pub fn start_skewed(records: &[(&str, u32, &str, &str)], skew_s: i64) -> Knot {
        Self::start_with_clock(records, Some(skew_s))
    }

    fn start_with_clock(records: &[(&str, u32, &str, &str)], skew_s: Option<i64>) -> Knot {
        let mut last_log = String::new();
        // A port found free may be taken before knotd binds it: then try another.
        for _attempt in 0..5 {
            match Self::try_start(records, skew_s) {
                Ok(k) => return k,
                Err(log) => last_log = log,
            }
        }
        panic!("knotd did not start:\n{last_log}");
    }

    fn try_start(records: &[(&str, u32, &str, &str)], skew_s: Option<i64>) -> Result<Knot, String> {
        let dir = tempfile::Builder::new()
            .prefix("swing-knot-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        let write =
            |name: &str, text: &str| std::fs::write(d.join(name), text).map_err(|e| e.to_string());
        write("example.test.zone", &zone_text("example.test", records))?;
        write(
            "locked.test.zone",
            &zone_text("locked.test", &[("access", 300, "A", "10.0.0.11")]),
        )?;
        std::fs::create_dir(d.join("db")).map_err(|e| e.to_string())?;
        write_key_file(&d.join("update.key"), KEY_NAME, KEY_SECRET).map_err(|e| e.to_string())?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let dd = d.display();
        let port = addr.port();
        let conf = format!(
            r#"server:
    listen: 127.0.0.1@{port}
    rundir: "{dd}"
    user: root
database:
    storage: "{dd}/db"
log:
  - target: stderr
    any: info
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {KEY_SECRET}
  - id: {OTHER_KEY_NAME}
    algorithm: hmac-sha256
    secret: {OTHER_KEY_SECRET}
acl:
  - id: update
    key: {KEY_NAME}
    action: update
template:
  - id: default
    storage: "{dd}"
    zonefile-sync: -1
    zonefile-load: whole
zone:
  - domain: example.test
    file: example.test.zone
    acl: update
  - domain: locked.test
    file: locked.test.zone
"#
        );
        write("knot.conf", &conf)?;
        let mut command = Command::new("knotd");
        command.arg("-c").arg(d.join("knot.conf"));
        if let Some(skew) = skew_s {
            skew_clock(&mut command, skew)?;
        }
        let process = ServerProcess::start(
            command,
            "knotd (install knot)",
            &d.join("knot.log"),
            addr,
            "example.test",
        )?;
        Ok(Knot { addr, process, dir })
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `nsupdate -k` key file for [`KEY_NAME`].
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("update.key")
    }

    /// Answers of a real `dig` for `name` `rtype`.
    pub fn dig(&self, name: &str, rtype: &str) -> Vec<DigAnswer> {
        dig_at(self.addr, name, rtype)
    }

    /// The SOA serial of `zone`, as `dig` reads it.
    pub fn soa_serial(&self, zone: &str) -> Option<u32> {
        soa_serial_at(self.addr, zone)
    }

    /// A real `nsupdate` of `example.test` signed with [`KEY_NAME`]; true on success.
    pub fn nsupdate(&self, commands: &str) -> bool {
        nsupdate_at(self.addr, &self.key_file(), "example.test", commands)
    }
}
