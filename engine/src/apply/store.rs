//! The state store contract: where a change's journal, its site's lock, and the records of its
//! saved plans live, keyed by (namespace, site) and the change name.
//!
//! Two implementations: [`LocalStore`] here (today's files: the journal in a state directory,
//! `.swing/` next to the plan by default, the site lock in the host-wide lock directory) and
//! the PostgreSQL store in `swing-providers` (`state::postgres`), which the CLI's wiring
//! builds from `state:` in the plan or `--state URL`. Everything above this seam — run,
//! resume, abandon, status, report, unlock — goes through [`Store`] and never knows which.
//!
//! The contract every store keeps:
//! - a journal append is durable (fsync'd or committed) before [`Journal::append`] returns,
//!   and an append that fails is never retried behind the caller's back (so nothing is
//!   recorded twice); the walker then stops before its next action;
//! - the lock is released when its holder ends, even by `kill -9` (a `flock`, a database
//!   session); a second holder is refused with [`LockError::Held`] naming the first;
//! - a journal is never rewritten: a finished one is kept and the next apply starts a new one.
//!
//! Owns: that contract and the local layout. Must not: know what a record means beyond
//! [`History`](super::history::History)'s fold, decide exit codes or print.

use std::path::{Path, PathBuf};

use super::history::History;
use super::journal::{Journal, JournalError, Record, now_ms};
use super::lock::{self, LockError, LockGuard, LockHolder, LockKey, LockOptions};

/// A saved plan an apply or a plan run recorded in the store (its digest and signer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPlanRecord {
    pub change: String,
    pub digest: String,
    /// The signer's key fingerprint (`SHA256:…`), when the saved plan was signed.
    pub signer: Option<String>,
}

/// Where a change's state lives. See the module doc for the contract.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where this store is, for messages: a directory, or `postgres host:port/db` — never a
    /// password.
    fn describe(&self) -> String;
    /// The namespace the sites' state is keyed by.
    fn namespace(&self) -> &str;
    /// What identifies the change's journal in this store: two changes with the same id
    /// would write one journal (`swing fleet` refuses such a fleet).
    fn journal_id(&self, site: &str, change: &str) -> String {
        format!("{}\0{site}\0{change}", self.describe())
    }
    /// The records of the change's current journal, oldest first (empty when there is none).
    fn records(&self, site: &str, change: &str) -> Result<Vec<Record>, JournalError>;
    /// Opens the change's journal for appending: the current one, or with `fresh` a new one
    /// after the current (finished) one, which is kept.
    fn journal(&self, site: &str, change: &str, fresh: bool) -> Result<Journal, JournalError>;
    /// Keeps an abandoned journal aside so the next apply starts fresh; says where it is.
    fn retire_abandoned(&self, site: &str, change: &str) -> Result<String, JournalError>;
    /// Takes the site's lock for `change`, or says who holds it.
    fn lock(&self, site: &str, change: &str, opts: LockOptions) -> Result<LockGuard, LockError>;
    /// Who holds the site's lock, if anyone is on record.
    fn holder(&self, site: &str) -> Option<LockHolder>;
    /// Removes a lock nobody holds any more (`swing unlock --force`); a live holder is
    /// refused with [`LockError::Held`]. Returns the holder the removed lock named.
    fn force_unlock(&self, site: &str) -> Result<Option<LockHolder>, LockError>;
    /// The unfinished changes on record: `(change, source)` of each (`apply --resume`
    /// without a plan argument).
    fn unfinished(&self) -> Result<Vec<(String, Option<String>)>, JournalError>;
    /// Records a saved plan of the site (`plan --out`, and each apply of a saved plan).
    fn record_saved_plan(&self, site: &str, saved: &SavedPlanRecord) -> Result<(), JournalError>;
    /// The saved plans on record for the change, oldest first.
    fn saved_plans(&self, site: &str, change: &str) -> Result<Vec<SavedPlanRecord>, JournalError>;
}

/// The local store: journal files in a state directory, the site lock in the host-wide lock
/// directory. Saved plans are their own record (the file), so nothing more is kept.
#[derive(Debug, Clone)]
pub struct LocalStore {
    pub state_dir: PathBuf,
    /// The host-wide lock directory (see [`lock`]).
    pub lock_dir: PathBuf,
    pub namespace: String,
}

impl LocalStore {
    /// A local store in the default namespace.
    pub fn new(state_dir: &Path, lock_dir: &Path) -> LocalStore {
        LocalStore {
            state_dir: state_dir.to_owned(),
            lock_dir: lock_dir.to_owned(),
            namespace: LockKey::DEFAULT_NAMESPACE.to_owned(),
        }
    }

    fn lock_path(&self, site: &str) -> PathBuf {
        lock::lock_path(&self.lock_dir, &LockKey::new(&self.namespace, site))
    }
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        self.state_dir.display().to_string()
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Journals are files named by the change: one per change and state directory.
    fn journal_id(&self, _site: &str, change: &str) -> String {
        Journal::path_for(&self.state_dir, change)
            .display()
            .to_string()
    }

    fn records(&self, _site: &str, change: &str) -> Result<Vec<Record>, JournalError> {
        Journal::read(&Journal::path_for(&self.state_dir, change))
    }

    fn journal(&self, _site: &str, change: &str, fresh: bool) -> Result<Journal, JournalError> {
        let path = Journal::path_for(&self.state_dir, change);
        if fresh && path.exists() {
            // A finished journal is kept for the record; this apply starts a new one.
            let kept = self
                .state_dir
                .join(format!("{change}.journal.{}.jsonl", now_ms()));
            std::fs::rename(&path, &kept)
                .map_err(|source| JournalError::Write { path: kept, source })?;
        }
        Journal::open(&path)
    }

    fn retire_abandoned(&self, _site: &str, change: &str) -> Result<String, JournalError> {
        let path = Journal::path_for(&self.state_dir, change);
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".abandoned-{}", now_ms()));
        let kept = PathBuf::from(name);
        std::fs::rename(&path, &kept).map_err(|source| JournalError::Write {
            path: kept.clone(),
            source,
        })?;
        Ok(kept.display().to_string())
    }

    fn lock(&self, site: &str, change: &str, opts: LockOptions) -> Result<LockGuard, LockError> {
        lock::acquire(&self.lock_path(site), change, opts)
    }

    fn holder(&self, site: &str) -> Option<LockHolder> {
        lock::read_lock(&self.lock_path(site))
    }

    fn force_unlock(&self, site: &str) -> Result<Option<LockHolder>, LockError> {
        lock::force_unlock(&self.lock_path(site))
    }

    fn unfinished(&self) -> Result<Vec<(String, Option<String>)>, JournalError> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.state_dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(source) => {
                return Err(JournalError::Read {
                    path: self.state_dir.clone(),
                    source,
                });
            }
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter_map(|n| n.strip_suffix(".journal.jsonl").map(str::to_owned))
            .collect();
        names.sort();
        for change in names {
            let records = Journal::read(&Journal::path_for(&self.state_dir, &change))?;
            let h = History::fold(&records);
            if h.unfinished() {
                out.push((change, h.last_source.flatten()));
            }
        }
        Ok(out)
    }

    fn record_saved_plan(&self, _site: &str, _saved: &SavedPlanRecord) -> Result<(), JournalError> {
        Ok(())
    }

    fn saved_plans(
        &self,
        _site: &str,
        _change: &str,
    ) -> Result<Vec<SavedPlanRecord>, JournalError> {
        Ok(Vec::new())
    }
}
