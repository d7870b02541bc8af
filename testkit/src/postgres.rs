//! A real PostgreSQL server for tests: Debian's `postgresql` binaries, a fresh cluster
//! (`initdb`) in a temporary directory, started by `pg_ctl` on a free loopback port with its
//! own socket directory, stopped and removed on drop. As root the server runs as the
//! `postgres` user (PostgreSQL refuses to run as root); otherwise as the current user.
//!
//! Owns: the cluster's life (start, stop, start again on the same data and port) and a
//! client for the test's own queries. Must not: be used outside tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// A running (or stopped) test cluster.
pub struct Postgres {
    _dir: tempfile::TempDir,
    data: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// The newest `/usr/lib/postgresql/<version>/bin`.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (Debian package `postgresql`; scripts/test installs it as root)")?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| p.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, p)| p)
        .context("no /usr/lib/postgresql/<version>/bin/pg_ctl")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Postgres {
    /// A new cluster, started.
    pub fn start() -> anyhow::Result<Postgres> {
        use std::os::unix::fs::PermissionsExt;
        let bin = bin_dir()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        // Every parent must be traversable by the server's user.
        let dir = tempfile::Builder::new()
            .prefix("swing-pg-")
            .tempdir_in("/tmp")?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let (data, socket_dir) = (dir.path().join("data"), dir.path().join("sock"));
        let log = dir.path().join("server.log");
        for d in [&data, &socket_dir] {
            std::fs::create_dir(d)?;
        }
        std::fs::write(&log, "")?;
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()?;
            if !st.success() {
                bail!("chown to postgres failed (is there a `postgres` user?)");
            }
        }
        let pg = Postgres {
            _dir: dir,
            data,
            socket_dir,
            log,
            bin,
            port: free_port()?,
            as_postgres,
        };
        let out = pg
            .tool("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&pg.data)
            .output()?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        pg.start_again()?;
        Ok(pg)
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Starts the (stopped) cluster on its port and waits until it accepts connections.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.socket_dir.display()
        );
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()?;
        if !out.status.success() {
            bail!(
                "pg_ctl start failed: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Stops the server (`-m fast`: open sessions are ended, as at a server restart).
    pub fn stop(&self) -> anyhow::Result<()> {
        let out = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "fast", "stop"])
            .output()?;
        if !out.status.success() {
            bail!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the cluster's `postgres` database, with `password` in it (the server
    /// trusts loopback connections, so any password is accepted: a canary for leaks).
    pub fn url(&self, password: &str) -> String {
        format!(
            "postgres://postgres:{password}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Runs `f` with a client for the test's own queries, on a thread of its own (the
    /// synchronous client must not run inside a test's async runtime).
    pub fn with_client<R: Send>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> R + Send,
    ) -> anyhow::Result<R> {
        let url = self.url("x");
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
                Ok(f(&mut c))
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the query thread panicked"))?
        })
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-w", "-m", "immediate", "stop"])
            .output();
    }
}
