//! `swing apply --abandon`: ending an apply that cannot go on, so nobody deletes state files
//! by hand.
//!
//! Under the site lock (a running apply is never abandoned from under it), an `abandoned`
//! record with the reason and who gave it is appended to the change's journal — a torn last
//! record (the process died mid-write) is cut off first, and a journal damaged further up is
//! still abandoned — and the journal is then kept as `<journal>.abandoned-<unix-ms>`, never
//! deleted. The next plan or apply of the change starts fresh; even if the rename did not
//! happen, [`super::history::History::fold`] counts an abandoned change as finished.
//!
//! Owns: that sequence. Must not: contact the world (abandoning changes no appliance), decide
//! exit codes or print.

use std::sync::Arc;

use super::journal::{Entry, JournalError};
use super::lock::LockOptions;
use super::store::Store;
use super::{ApplyError, history::History};

/// What to abandon, and why.
#[derive(Debug, Clone)]
pub struct AbandonRequest {
    /// Where the change's journal and the site's lock live.
    pub store: Arc<dyn Store>,
    /// The change name (plan `name`).
    pub change: String,
    /// The site (plan `site`).
    pub site: String,
    /// Why the apply cannot go on (recorded).
    pub reason: String,
    /// Who abandons it, `user@host` (recorded).
    pub actor: String,
}

/// What was abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// Where the abandoned journal is kept.
    pub kept: String,
}

/// Why nothing was abandoned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AbandonError {
    #[error("nothing to abandon: no unfinished apply of {change} in {state}")]
    NothingToAbandon { change: String, state: String },
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl From<JournalError> for AbandonError {
    fn from(e: JournalError) -> Self {
        AbandonError::Apply(ApplyError::Journal(e))
    }
}

/// Abandons the unfinished apply of `req.change` (see the module doc).
pub fn abandon(req: &AbandonRequest) -> Result<Abandoned, AbandonError> {
    let store = req.store.as_ref();
    let _guard = store
        .lock(&req.site, &req.change, LockOptions::default())
        .map_err(ApplyError::from)?;
    match store.records(&req.site, &req.change) {
        Ok(records) if !History::fold(&records).unfinished() => {
            return Err(AbandonError::NothingToAbandon {
                change: req.change.clone(),
                state: store.describe(),
            });
        }
        // A journal damaged above its last line cannot be folded, which is one more reason
        // to abandon it.
        Ok(_) | Err(JournalError::Damaged { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let journal = store.journal(&req.site, &req.change, false)?;
    journal.append(Entry::Abandoned {
        reason: req.reason.clone(),
        actor: req.actor.clone(),
    })?;
    drop(journal);
    let kept = store.retire_abandoned(&req.site, &req.change)?;
    Ok(Abandoned { kept })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::journal::Journal;
    use crate::apply::store::LocalStore;
    use std::io::Write;
    use std::path::{Path, PathBuf};

    fn req(dir: &Path) -> AbandonRequest {
        AbandonRequest {
            store: Arc::new(LocalStore::new(&dir.join(".swing"), &dir.join("locks"))),
            change: "chg".into(),
            site: "access.example.com".into(),
            reason: "install overflowed".into(),
            actor: "ops@host".into(),
        }
    }

    fn started(dir: &Path) -> PathBuf {
        let path = Journal::path_for(&dir.join(".swing"), "chg");
        let j = Journal::open(&path).unwrap();
        j.append(Entry::RunStarted {
            plan_digest: "d".into(),
            resume: false,
            pid: 1,
            host: "h".into(),
            source: None,
            steps: vec!["a.install".into()],
        })
        .unwrap();
        j.append(Entry::StepStarted {
            step: "a.install".into(),
        })
        .unwrap();
        path
    }

    #[test]
    fn a_torn_journal_is_abandoned_recorded_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let path = started(d.path());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"ts\":\"2026-").unwrap();
        drop(f);
        let done = abandon(&req(d.path())).unwrap();
        assert!(!path.exists());
        let recs = Journal::read(Path::new(&done.kept)).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(
            recs[2].entry,
            Entry::Abandoned {
                reason: "install overflowed".into(),
                actor: "ops@host".into()
            }
        );
        let h = History::fold(&recs);
        assert!(!h.unfinished());
        assert_eq!(
            h.abandoned,
            Some(("ops@host".into(), "install overflowed".into()))
        );
        // Nothing is left to abandon.
        assert!(matches!(
            abandon(&req(d.path())),
            Err(AbandonError::NothingToAbandon { .. })
        ));
    }

    #[test]
    fn a_running_apply_is_not_abandoned() {
        let d = tempfile::tempdir().unwrap();
        let path = started(d.path());
        let r = req(d.path());
        let _held = r
            .store
            .lock(&r.site, "chg", LockOptions::default())
            .unwrap();
        assert!(matches!(
            abandon(&r),
            Err(AbandonError::Apply(ApplyError::Locked(_)))
        ));
        assert_eq!(Journal::read(&path).unwrap().len(), 2);
    }
}
