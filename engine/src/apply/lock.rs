//! The site lock: one apply per (namespace, site) at a time, for the whole host.
//!
//! The lock lives in one host-wide lock directory (the CLI passes
//! `$XDG_STATE_HOME/swing/locks`, falling back to `~/.local/state/swing/locks`), not next to
//! the plan: the same site planned from two folders still has one lock. Its file
//! (`<namespace>@<site>.<hash>.lock`, see [`LockKey::file_name`]; mode 0600, opened without
//! following symlinks) names the holder (change, pid, host, start time, heartbeat). While held, the process also keeps an OS advisory lock (`flock`) on it,
//! so a holder that died (even by `kill -9`) releases it at once; the heartbeat covers state
//! directories shared between hosts, where `flock` may not reach. A second apply gets
//! [`LockError::Held`] naming the holder (the CLI maps it to exit 4).
//!
//! `swing unlock --force` ([`force_unlock`]) removes a lock only when nobody holds its
//! `flock`: a live holder on this host is never unlocked from under it.
//!
//! Owns: the lock's key and file name, taking, heart-beating, releasing and force-removing
//! the lock. Must not: decide exit codes or print (a taken-over stale lock is reported in
//! [`LockGuard::took_over`]), or know where the lock directory is (the caller passes it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use sha2::Digest;

use super::journal::{now_ms, rfc3339_ms};
use super::statefs::{self, StateFsError};

/// Who holds the lock, as written in the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The change (plan `name`) being applied.
    pub holder: String,
    pub pid: u32,
    pub host: String,
    /// RFC 3339.
    pub started: String,
    /// RFC 3339 of the last heartbeat.
    pub heartbeat: String,
    /// UNIX ms of the last heartbeat.
    pub heartbeat_ms: i64,
}

impl LockHolder {
    /// This process holding the lock for `change`, from now.
    pub fn this_process(change: &str) -> LockHolder {
        let now = now_ms();
        LockHolder {
            holder: change.to_owned(),
            pid: std::process::id(),
            host: host_name(),
            started: rfc3339_ms(now),
            heartbeat: rfc3339_ms(now),
            heartbeat_ms: now,
        }
    }
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "change {} (pid {} on {}, started {}, last heartbeat {})",
            self.holder, self.pid, self.host, self.started, self.heartbeat
        )
    }
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// `at`: where the lock is (its file, or the state store and key).
    #[error("another apply holds the lock {at}: {holder}")]
    Held { at: String, holder: Box<LockHolder> },
    #[error("another apply holds the lock {at} (holder unreadable)")]
    HeldUnknown { at: String },
    /// The state store (PostgreSQL) could not be asked; nothing was locked.
    #[error("cannot take the site lock in {at}: {message}")]
    Store { at: String, message: String },
    #[error(transparent)]
    Unsafe(#[from] StateFsError),
    #[error("cannot use the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Lock settings.
#[derive(Debug, Clone, Copy)]
pub struct LockOptions {
    /// How often the holder refreshes its heartbeat.
    pub heartbeat_every: Duration,
    /// A holder on another host whose heartbeat is older than this is considered dead.
    pub stale_after: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            heartbeat_every: Duration::from_secs(10),
            stale_after: Duration::from_secs(120),
        }
    }
}

/// What a lock is taken for: a site within a namespace (its state is keyed by both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockKey {
    pub namespace: String,
    pub site: String,
}

impl LockKey {
    /// The namespace of plans that name none.
    pub const DEFAULT_NAMESPACE: &'static str = "default";

    pub fn new(namespace: &str, site: &str) -> LockKey {
        LockKey {
            namespace: namespace.to_owned(),
            site: site.to_owned(),
        }
    }

    /// `site` in the default namespace.
    pub fn site(site: &str) -> LockKey {
        LockKey::new(LockKey::DEFAULT_NAMESPACE, site)
    }

    /// A file name safe on every file system whatever the names hold: both names reduced to
    /// `[A-Za-z0-9._-]` (at most 64 characters each, for people reading the directory), then
    /// the first 16 hex digits of the SHA-256 of the exact pair, so different keys never
    /// share a file.
    pub fn file_name(&self) -> String {
        fn readable(s: &str) -> String {
            s.chars()
                .take(64)
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        }
        let mut h = sha2::Sha256::new();
        h.update(self.namespace.as_bytes());
        h.update([0u8]);
        h.update(self.site.as_bytes());
        let digest = hex::encode(h.finalize());
        format!(
            "{}@{}.{}.lock",
            readable(&self.namespace),
            readable(&self.site),
            &digest[..16]
        )
    }
}

/// The lock file of `key` inside the host-wide lock directory.
pub fn lock_path(lock_dir: &Path, key: &LockKey) -> PathBuf {
    lock_dir.join(key.file_name())
}

/// This machine's host name (best effort).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// A held lock. Dropping it releases the lock (and stops the heartbeat).
#[derive(Debug)]
pub struct LockGuard {
    /// Where the lock is, for messages.
    at: String,
    holder: LockHolder,
    /// The previous holder, when a dead holder's lock was taken over.
    pub took_over: Option<LockHolder>,
    held: Held,
}

/// What keeps a lock held.
#[derive(Debug)]
enum Held {
    /// A lock file with its `flock`.
    File {
        path: PathBuf,
        file: Arc<std::sync::Mutex<File>>,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
    },
    /// A state store's lock; dropping the value releases it (the store beats its heartbeat).
    Store(#[allow(dead_code)] Box<dyn std::fmt::Debug + Send + Sync>),
}

impl LockGuard {
    /// A lock held in a state store: `release` lets it go when dropped.
    pub fn in_store(
        at: String,
        holder: LockHolder,
        took_over: Option<LockHolder>,
        release: Box<dyn std::fmt::Debug + Send + Sync>,
    ) -> LockGuard {
        LockGuard {
            at,
            holder,
            took_over,
            held: Held::Store(release),
        }
    }

    /// Where the lock is (its file, or the state store and key).
    pub fn at(&self) -> &str {
        &self.at
    }
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }

    /// Starts a background task refreshing a lock file's heartbeat (needs a tokio runtime).
    /// A store's lock is kept alive by its store.
    pub fn start_heartbeat(&mut self, every: Duration) {
        let Held::File { path, file, stop } = &mut self.held else {
            return;
        };
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let (path, file, holder) = (path.clone(), file.clone(), self.holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    _ = tokio::time::sleep(every) => {
                        // A failed heartbeat only makes the lock look stale sooner to other hosts.
                        let _ = beat(&path, &file, &holder);
                    }
                }
            }
        });
        *stop = Some(tx);
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Held::File { path, file, stop } = &mut self.held else {
            return;
        };
        if let Some(tx) = stop.take() {
            let _ = tx.send(());
        }
        // Remove the file only if it is still ours (`unlock --force` may have replaced it).
        use std::os::unix::fs::MetadataExt;
        let ours = file.lock().ok().and_then(|f| f.metadata().ok());
        let on_disk = std::fs::metadata(&*path).ok();
        if let (Some(a), Some(b)) = (ours, on_disk)
            && a.dev() == b.dev()
            && a.ino() == b.ino()
        {
            let _ = std::fs::remove_file(&*path);
        }
    }
}

fn beat(path: &Path, file: &std::sync::Mutex<File>, holder: &LockHolder) -> Result<(), LockError> {
    let mut h = holder.clone();
    h.heartbeat_ms = now_ms();
    h.heartbeat = rfc3339_ms(h.heartbeat_ms);
    let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
    write_holder(&mut f, &h).map_err(|source| LockError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_holder(f: &mut File, h: &LockHolder) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(h).map_err(std::io::Error::other)?;
    f.set_len(0)?;
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&text)?;
    f.write_all(b"\n")?;
    f.sync_data()
}

/// Takes the OS lock on an open lock file without waiting; a live holder is named from what
/// the file says (taking the lock and force-removing it both refuse the same way).
fn try_flock(file: &mut File, path: &Path) -> Result<(), LockError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(match read_holder(file) {
            Some(h) => LockError::Held {
                at: path.display().to_string(),
                holder: Box::new(h),
            },
            None => LockError::HeldUnknown {
                at: path.display().to_string(),
            },
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn read_holder(f: &mut File) -> Option<LockHolder> {
    let mut s = String::new();
    f.seek(SeekFrom::Start(0)).ok()?;
    f.read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

/// Reads the lock file's holder without taking the lock (for messages and `unlock`).
pub fn read_lock(path: &Path) -> Option<LockHolder> {
    let mut f = statefs::open_read(path).ok()??;
    read_holder(&mut f)
}

/// Takes the site lock for `change`, or says who holds it.
pub fn acquire(path: &Path, change: &str, opts: LockOptions) -> Result<LockGuard, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        statefs::ensure_dir(dir)?;
    }
    let mut file = statefs::open(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600),
    )?;
    try_flock(&mut file, path)?;
    let host = host_name();
    let previous = read_holder(&mut file);
    if let Some(prev) = &previous {
        // flock does not reach other hosts on a shared directory: trust a fresh heartbeat.
        let age_ms = now_ms().saturating_sub(prev.heartbeat_ms);
        let fresh = u128::try_from(age_ms.max(0)).unwrap_or(0) < opts.stale_after.as_millis();
        if prev.host != host && fresh {
            return Err(LockError::Held {
                at: path.display().to_string(),
                holder: Box::new(prev.clone()),
            });
        }
    }
    let holder = LockHolder::this_process(change);
    write_holder(&mut file, &holder).map_err(io)?;
    Ok(LockGuard {
        at: path.display().to_string(),
        holder,
        took_over: previous,
        held: Held::File {
            path: path.to_owned(),
            file: Arc::new(std::sync::Mutex::new(file)),
            stop: None,
        },
    })
}

/// `swing unlock --force`: removes a lock file nobody holds any more. A holder that is alive
/// on this host still holds the file's `flock`: then nothing is removed and the holder is
/// returned as [`LockError::Held`] (or [`LockError::HeldUnknown`]). Returns the holder the
/// removed file named (`None`: there was no lock file).
pub fn force_unlock(path: &Path) -> Result<Option<LockHolder>, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    let Some(mut file) = statefs::open(path, OpenOptions::new().read(true).write(true))
        .map(Some)
        .or_else(|e| match e {
            StateFsError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            e => Err(e),
        })?
    else {
        return Ok(None);
    };
    try_flock(&mut file, path)?;
    // Holding the flock now, nobody can take the lock between the check and the removal.
    let holder = read_holder(&mut file);
    match std::fs::remove_file(path) {
        Ok(()) => Ok(holder),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn second_acquire_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), &LockKey::site("access.example.com"));
        let g = acquire(&path, "chg-one", LockOptions::default()).unwrap();
        assert!(g.took_over.is_none());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        match acquire(&path, "chg-two", LockOptions::default()) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder.holder, "chg-one");
                assert_eq!(holder.pid, std::process::id());
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(g);
        assert!(!path.exists());
        let g2 = acquire(&path, "chg-two", LockOptions::default()).unwrap();
        assert_eq!(read_lock(&path).unwrap().holder, "chg-two");
        drop(g2);
    }

    #[test]
    fn dead_local_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), &LockKey::site("site"));
        // A lock file left behind by a killed process: content, but no flock.
        let dead = LockHolder {
            holder: "old".into(),
            pid: 999_999,
            host: host_name(),
            started: "2026-01-01T00:00:00Z".into(),
            heartbeat: "2026-01-01T00:00:00Z".into(),
            heartbeat_ms: now_ms(),
        };
        std::fs::write(&path, serde_json::to_vec(&dead).unwrap()).unwrap();
        let g = acquire(&path, "new", LockOptions::default()).unwrap();
        assert_eq!(g.took_over.as_ref().map(|h| h.holder.as_str()), Some("old"));
    }

    #[test]
    fn fresh_holder_on_another_host_is_respected_stale_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), &LockKey::site("site"));
        let mut other = LockHolder {
            holder: "remote".into(),
            pid: 1,
            host: format!("{}-elsewhere", host_name()),
            started: "x".into(),
            heartbeat: "x".into(),
            heartbeat_ms: now_ms(),
        };
        std::fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        assert!(matches!(
            acquire(&path, "me", LockOptions::default()),
            Err(LockError::Held { .. })
        ));
        other.heartbeat_ms = now_ms() - 10 * 60 * 1000;
        std::fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        let g = acquire(&path, "me", LockOptions::default()).unwrap();
        assert_eq!(g.took_over.as_ref().unwrap().holder, "remote");
    }

    #[test]
    fn force_unlock_refuses_a_live_holder_and_removes_a_dead_ones_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), &LockKey::site("site"));
        let g = acquire(&path, "held", LockOptions::default()).unwrap();
        match force_unlock(&path) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.holder, "held"),
            other => panic!("a live holder must be refused, got {other:?}"),
        }
        assert_eq!(read_lock(&path).unwrap().holder, "held");
        // A holder that died without cleaning up leaves the file but no flock.
        let dead = dir.path().join("dead.lock");
        std::fs::write(&dead, std::fs::read(&path).unwrap()).unwrap();
        drop(g);
        let h = force_unlock(&dead).unwrap();
        assert_eq!(h.unwrap().holder, "held");
        assert!(!dead.exists());
        // A new apply can take the site now.
        let g2 = acquire(&dead, "next", LockOptions::default()).unwrap();
        drop(g2);
        assert_eq!(force_unlock(&dead).unwrap(), None);
    }

    #[test]
    fn lock_names_are_file_system_safe_and_distinct() {
        let a = LockKey::site("../../etc/passwd").file_name();
        assert!(!a.contains('/'), "{a}");
        assert!(a.starts_with("default@.._.._etc_passwd."), "{a}");
        let long = "x".repeat(5000);
        assert!(LockKey::site(&long).file_name().len() < 255);
        assert_ne!(
            LockKey::site("a/b").file_name(),
            LockKey::site("a_b").file_name()
        );
        assert_ne!(
            LockKey::new("prod", "s").file_name(),
            LockKey::new("default", "s").file_name()
        );
    }

    #[tokio::test]
    async fn heartbeat_advances() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), &LockKey::site("site"));
        let mut g = acquire(&path, "hb", LockOptions::default()).unwrap();
        let first = read_lock(&path).unwrap().heartbeat_ms;
        g.start_heartbeat(Duration::from_millis(20));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let now = read_lock(&path).map(|h| h.heartbeat_ms).unwrap_or(first);
            if now > first {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "heartbeat never advanced"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
