//! The apply journal: an append-only JSON Lines file per change, one record per event
//! (run started, step started, action sent, what a step observed before acting, step
//! succeeded/failed/waiting/skipped, confirmations, run finished, a notification that could
//! not be delivered), each fsync'd before the engine goes on.
//!
//! Owns: the record format, the file (mode 0600 under the state directory), reading it back
//! tolerantly (a torn last line after `kill -9` is ignored, never fatal). Folding the records
//! (into the [`ResumeState`] `--resume` continues from, and more) is [`super::history`]'s.
//!
//! Must not: hold or write a secret (records are built from typed fields only: step ids,
//! observation values, error messages that providers already keep secret-free), decide what
//! to run next (that is the walker's job) or rewrite earlier records.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::statefs;

/// Errors reading or writing the journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[error("cannot write the apply journal {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the apply journal {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Unsafe(#[from] super::statefs::StateFsError),
    #[error("the apply journal {path} is damaged at line {line}: {message}")]
    Damaged {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// The state store (PostgreSQL) could not keep or give back a record. Nothing that should
    /// follow the record was done.
    #[error(
        "cannot {doing} the apply journal in {at}: {message}. Nothing was done after the last recorded step; when the state store is reachable (and writable) again, continue with `swing apply --resume`"
    )]
    Store {
        /// `write` or `read`.
        doing: &'static str,
        at: String,
        message: String,
    },
}

/// What happened, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Entry {
    /// An apply (or a resume) began.
    RunStarted {
        /// Digest of the plan being applied; a resume must apply the same plan.
        plan_digest: String,
        resume: bool,
        pid: u32,
        host: String,
        /// The plan or saved-plan path, so `--resume` can find it again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
        /// The steps this apply runs (a resume runs exactly these again).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<String>,
    },
    /// The walker took the step up.
    StepStarted { step: String },
    /// The action is about to be sent (after this, a non-idempotent step is never re-sent).
    ActionSent { step: String },
    /// The action call returned successfully.
    ActionDone {
        step: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        artifacts: Vec<Artifact>,
    },
    /// The postcondition holds.
    StepSucceeded {
        step: String,
        #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
        observed: serde_json::Value,
    },
    /// The step failed.
    StepFailed {
        step: String,
        message: String,
        /// The step must not be retried automatically (a failed install).
        no_retry: bool,
    },
    /// What a step observed before acting, kept so a resume continues from it instead of
    /// observing again a world the step already changed (the DNS TTL before it was lowered).
    StepObserved {
        step: String,
        observed: serde_json::Value,
    },
    /// The step waits for a person or a window.
    StepWaiting {
        step: String,
        reason: String,
        /// What it waits for (absent in journals written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<WaitKind>,
    },
    /// A person confirmed the step (`--confirm STEP` or the prompt): who (`--as`, else
    /// `SWING_ACTOR`, the CI's actor, `user@host`) and their `--note`.
    StepConfirmed {
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// What a client saw while the step ran and until it was verified (the apply's prober).
    ClientMeasured {
        step: String,
        downtime: crate::provider::ClientDowntime,
    },
    /// The prober could not watch the step; the step ran as it would have.
    ProbeFailed { step: String, message: String },
    /// Not run because a step it depends on failed.
    StepSkipped { step: String, because: String },
    /// The run ended: `done`, `paused`, `failed`.
    RunFinished { outcome: String },
    /// A notification (`notify` in the plan) could not be delivered; the apply went on as
    /// it would have. `target` names it as messages do (`webhook #1`), never by a secret URL.
    NotificationFailed {
        target: String,
        /// `paused`, `waiting-for-window`, `failed` or `done`.
        notification: String,
        attempts: u32,
        message: String,
    },
    /// A person ended an apply that could not go on (`swing apply --abandon`): the change
    /// counts as finished, and the next apply starts fresh.
    Abandoned {
        reason: String,
        /// Who abandoned it, `user@host`.
        actor: String,
    },
}

/// What a waiting step waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitKind {
    /// A person's confirmation.
    Confirmation,
    /// Its maintenance window to open.
    Window,
}

/// A file an action wrote (a backup), with its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// RFC 3339, UTC, with milliseconds.
    pub ts: String,
    /// UNIX milliseconds (for durations without parsing `ts`).
    pub ts_ms: i64,
    #[serde(flatten)]
    pub entry: Entry,
}

pub use crate::time::{now_ms, rfc3339_ms};

/// Where a journal's records are kept: a file ([`Journal::open`]) or a state store's rows
/// (a [`super::store::Store`] implementation). Each append is durable before it returns.
pub trait JournalSink: Send + Sync + std::fmt::Debug {
    /// Stores one record durably (fsync'd, or committed) before returning; an error means
    /// the record may not be there, and nothing more may be done that it should precede.
    fn append(&self, record: &Record) -> Result<(), JournalError>;
    /// Every record of this journal, oldest first.
    fn read(&self) -> Result<Vec<Record>, JournalError>;
}

/// An open journal. Appends are serialized and durable; safe to share between tasks.
#[derive(Debug)]
pub struct Journal {
    /// Where it is, for messages (a path, or the store and key).
    at: String,
    sink: Box<dyn JournalSink>,
}

/// The journal file of a local state directory.
#[derive(Debug)]
struct FileSink {
    path: PathBuf,
    file: Mutex<File>,
}

impl JournalSink for FileSink {
    fn append(&self, record: &Record) -> Result<(), JournalError> {
        let err = |source| JournalError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(record).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        // A poisoned lock only means another task panicked mid-append; the file is still ours.
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let before = file.metadata().map(|m| m.len());
        if let Err(e) = file.write_all(&line) {
            // A full disk may take part of the record: leave no partial line behind.
            if let Ok(len) = before {
                let _ = file.set_len(len);
            }
            return Err(err(e));
        }
        file.sync_data().map_err(err)
    }

    fn read(&self) -> Result<Vec<Record>, JournalError> {
        Journal::read(&self.path)
    }
}

impl Journal {
    /// The journal file of a change inside a state directory.
    pub fn path_for(state_dir: &Path, change: &str) -> PathBuf {
        state_dir.join(format!("{change}.journal.jsonl"))
    }

    /// Opens (creating, mode 0600) the journal file for appending.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let err = |source| JournalError::Write {
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
                .create(true)
                .append(true)
                .mode(0o600),
        )?;
        drop_torn_tail(&mut file).map_err(err)?;
        Ok(Journal::with_sink(
            path.display().to_string(),
            Box::new(FileSink {
                path: path.to_owned(),
                file: Mutex::new(file),
            }),
        ))
    }

    /// A journal kept by `sink`; `at` names it in messages.
    pub fn with_sink(at: String, sink: Box<dyn JournalSink>) -> Journal {
        Journal { at, sink }
    }

    /// Where the journal is (a path, or the store and key), for messages.
    pub fn at(&self) -> &str {
        &self.at
    }

    /// Appends one record; it is durable when this returns.
    pub fn append(&self, entry: Entry) -> Result<Record, JournalError> {
        let ts_ms = now_ms();
        let record = Record {
            ts: rfc3339_ms(ts_ms),
            ts_ms,
            entry,
        };
        self.sink.append(&record)?;
        Ok(record)
    }

    /// Every record of this journal, oldest first.
    pub fn records(&self) -> Result<Vec<Record>, JournalError> {
        self.sink.read()
    }

    /// Reads every record of a journal file. A torn final line (the process was killed
    /// mid-write) is ignored; damage anywhere else is an error. A missing file reads as empty.
    pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
        let Some(file) = statefs::open_read(path)? else {
            return Ok(Vec::new());
        };
        let lines: Vec<String> = BufReader::new(file)
            .lines()
            .collect::<Result<_, _>>()
            .map_err(|source| JournalError::Read {
                path: path.to_owned(),
                source,
            })?;
        let mut out = Vec::with_capacity(lines.len());
        let last = lines.len();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(line) {
                Ok(r) => out.push(r),
                Err(_) if i + 1 == last => break,
                Err(e) => {
                    return Err(JournalError::Damaged {
                        path: path.to_owned(),
                        line: i + 1,
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Cuts off a torn last record (the process was killed, or the disk filled, mid-write) so the
/// next record does not follow it: a torn line in the middle would make the journal
/// unreadable, while one at the end is simply ignored.
fn drop_torn_tail(file: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    let mut bytes = Vec::new();
    file.seek(std::io::SeekFrom::Start(0))?;
    file.read_to_end(&mut bytes)?;
    if bytes.last().is_none_or(|b| *b == b'\n') {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    file.set_len(keep as u64)?;
    file.sync_data()
}

/// What the journal says about one step.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prior {
    /// Started; `action_sent` says whether its action may have reached the world.
    InFlight {
        action_sent: bool,
    },
    Succeeded,
    Failed {
        message: String,
        no_retry: bool,
        action_sent: bool,
    },
}

/// The journal folded into what `--resume` needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResumeState {
    pub steps: BTreeMap<String, Prior>,
    /// Steps a person confirmed in an earlier run.
    pub confirmed: std::collections::BTreeSet<String>,
    /// Digest of the plan the journal's runs applied (the latest one).
    pub plan_digest: Option<String>,
    /// The last run ended with `done`.
    pub finished: bool,
    /// Whether any record exists.
    pub any: bool,
}

impl ResumeState {
    /// Folds records, oldest first (through the one journal reader,
    /// [`History`](super::history::History)).
    pub fn from_records(records: &[Record]) -> ResumeState {
        super::history::History::fold(records).resume
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn appends_reads_and_folds() {
        let dir = tempfile::tempdir().unwrap();
        let path = Journal::path_for(&dir.path().join(".swing"), "chg");
        let j = Journal::open(&path).unwrap();
        j.append(Entry::RunStarted {
            plan_digest: "d1".into(),
            resume: false,
            pid: 1,
            host: "h".into(),
            source: None,
            steps: vec!["a.health".into()],
        })
        .unwrap();
        j.append(Entry::StepStarted {
            step: "a.health".into(),
        })
        .unwrap();
        j.append(Entry::StepSucceeded {
            step: "a.health".into(),
            observed: serde_json::json!({"v": 1}),
        })
        .unwrap();
        j.append(Entry::StepStarted {
            step: "b.install".into(),
        })
        .unwrap();
        j.append(Entry::ActionSent {
            step: "b.install".into(),
        })
        .unwrap();
        j.append(Entry::StepConfirmed {
            step: "b.verify-manual".into(),
            actor: Some("alice".into()),
            note: Some("two workstations checked".into()),
        })
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let recs = Journal::read(&path).unwrap();
        assert_eq!(recs.len(), 6);
        let st = ResumeState::from_records(&recs);
        assert_eq!(st.steps["a.health"], Prior::Succeeded);
        assert_eq!(st.steps["b.install"], Prior::InFlight { action_sent: true });
        assert!(st.confirmed.contains("b.verify-manual"));
        assert_eq!(st.plan_digest.as_deref(), Some("d1"));
        assert!(!st.finished);
    }

    #[test]
    fn restarted_step_keeps_action_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let j = Journal::open(&path).unwrap();
        j.append(Entry::StepStarted { step: "x".into() }).unwrap();
        j.append(Entry::ActionSent { step: "x".into() }).unwrap();
        j.append(Entry::StepStarted { step: "x".into() }).unwrap();
        let st = ResumeState::from_records(&Journal::read(&path).unwrap());
        assert_eq!(st.steps["x"], Prior::InFlight { action_sent: true });
    }

    #[test]
    fn torn_last_line_is_ignored_but_middle_damage_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let j = Journal::open(&path).unwrap();
        j.append(Entry::StepStarted { step: "x".into() }).unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"ts\":\"2026-").unwrap();
        drop(f);
        assert_eq!(Journal::read(&path).unwrap().len(), 1);

        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"\n{\"ts\":\"x\",\"ts_ms\":1,\"event\":\"step-started\",\"step\":\"y\"}\n")
            .unwrap();
        drop(f);
        assert!(matches!(
            Journal::read(&path),
            Err(JournalError::Damaged { line: 2, .. })
        ));
    }

    #[test]
    fn a_torn_last_record_is_cut_off_before_the_next_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let j = Journal::open(&path).unwrap();
        j.append(Entry::StepStarted { step: "x".into() }).unwrap();
        drop(j);
        // Killed (or out of space) in the middle of the next record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"ts\":\"2026-").unwrap();
        drop(f);
        // The resume opens the journal and goes on: every record stays readable.
        let j = Journal::open(&path).unwrap();
        j.append(Entry::StepStarted { step: "y".into() }).unwrap();
        let steps: Vec<Entry> = Journal::read(&path)
            .unwrap()
            .into_iter()
            .map(|r| r.entry)
            .collect();
        assert_eq!(
            steps,
            vec![
                Entry::StepStarted { step: "x".into() },
                Entry::StepStarted { step: "y".into() }
            ]
        );
    }

    #[test]
    fn missing_journal_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let recs = Journal::read(&dir.path().join("none.jsonl")).unwrap();
        assert!(recs.is_empty());
        assert!(!ResumeState::from_records(&recs).any);
    }
}
