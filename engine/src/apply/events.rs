//! Progress events, their JSON stream (event stream v1) and the final report of an apply.
//!
//! Owns the event vocabulary the walker emits (the CLI draws indicatif bars from it on a TTY,
//! or prints one JSON object per line with `--output json`), the lines of that stream — the
//! version line first, then every event stamped with `@timestamp` ([`version_line`],
//! [`stream_line`]; contract in `docs/events.md`, schema `docs/events.schema.json`) — and the
//! report computed from the journal, so a resumed apply reports the whole change, not just its
//! last part.
//!
//! Must not: print, read the clock (the caller passes the time), or carry secrets (events hold
//! step ids, messages and observations only).

use serde::{Deserialize, Serialize};

use super::journal::{Artifact, Record};
use super::walker::{Failure, Protection, StepSpec, Waiting};
pub use crate::provider::ClientDowntime;
use crate::time::rfc3339_ms;

/// The version of the JSON event stream (`--output json`): bumped when an event loses a
/// field, changes a field's meaning or type; new event types and new optional fields keep it.
pub const EVENT_STREAM_VERSION: u32 = 1;

/// The first line of the event stream: which swing wrote it and which stream version it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamVersion {
    /// Always `version`.
    #[serde(rename = "type")]
    pub kind: String,
    /// swing's version (`crate::SWING_VERSION`).
    pub swing: String,
    /// [`EVENT_STREAM_VERSION`].
    pub stream: u32,
}

/// One event of the stream as written: the event's fields plus `@timestamp`.
#[derive(Debug, Serialize)]
struct Stamped<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    #[serde(flatten)]
    event: &'a ApplyEvent,
}

/// The stream's first line (no trailing newline).
pub fn version_line() -> String {
    let v = StreamVersion {
        kind: "version".to_owned(),
        swing: crate::SWING_VERSION.to_owned(),
        stream: EVENT_STREAM_VERSION,
    };
    serde_json::to_string(&v).unwrap_or_default()
}

/// One event as a line of the stream, stamped with `now_ms` (UNIX milliseconds) as RFC 3339
/// UTC with milliseconds (no trailing newline).
pub fn stream_line(event: &ApplyEvent, now_ms: i64) -> serde_json::Result<String> {
    serde_json::to_string(&Stamped {
        timestamp: crate::time::rfc3339_ms(now_ms),
        event,
    })
}

/// One progress event. Serialized with its kind in `type` (kebab-case).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ApplyEvent {
    /// The site already looks as the plan ends: nothing was run.
    NoChanges,
    /// The journal says this step completed in an earlier run; it is not run again.
    StepAlreadyDone {
        step: String,
    },
    StepStarted {
        step: String,
        title: String,
        kind: String,
    },
    /// The postcondition does not hold yet; polling goes on.
    StepPolling {
        step: String,
        detail: String,
        elapsed_ms: u64,
        timeout_ms: u64,
    },
    StepSucceeded {
        step: String,
        duration_ms: u64,
    },
    StepFailed {
        step: String,
        message: String,
    },
    StepWaiting {
        step: String,
        reason: String,
    },
    StepSkipped {
        step: String,
        because: String,
    },
    Finished {
        report: Box<ApplyReport>,
    },
    /// What a client saw while a step that can take the site down ran, until it was verified
    /// (the apply's prober; `swing apply --no-probe` turns it off).
    ClientMeasured {
        step: String,
        downtime: ClientDowntime,
    },
    /// The prober could not watch a step; the step ran as it would have.
    ProbeFailed {
        step: String,
        message: String,
    },
    /// A notification (`notify` in the plan) could not be delivered after its attempts; the
    /// apply's outcome is unchanged. `target` is `webhook #1`, `exec #2 (./notify.sh)`.
    NotificationFailed {
        target: String,
        notification: String,
        attempts: u32,
        message: String,
    },
}

/// How one step ended, over all runs of the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub id: String,
    /// `succeeded`, `failed`, `waiting`, `skipped`, `in-flight`, `not-started`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// When it first started and when it last succeeded (RFC 3339), over every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// Who confirmed it (a person-step), and their note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The final report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// `done`, `paused`, `failed`.
    pub outcome: String,
    pub steps: Vec<StepReport>,
    /// Steps that ran (succeeded) in this invocation.
    pub steps_run: usize,
    /// Measured: summed durations of the steps that cause downtime.
    pub downtime_ms: u64,
    /// Measured by the wall clock: from `failover.break` verified to `failover.establish`
    /// verified (up to now while the pair is still unprotected), pauses and runs included.
    pub unprotected_ms: u64,
    pub backups: Vec<Artifact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<Failure>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Waiting>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Downtime as a client saw it, over every step the prober watched (the longest outage
    /// of any of them, the others summed); `None` when no probe ran. `downtime_ms` is the
    /// engine's own timing of its downtime steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_downtime: Option<ClientDowntime>,
    /// What the client saw per step that can take the site down (a switch, a promotion, the
    /// install of the appliance serving the site), in step order, over every run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub downtime_by_step: Vec<StepDowntime>,
    /// Steps the prober could not watch, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unprobed: Vec<Unprobed>,
}

/// What a probing client saw while one step ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDowntime {
    pub step: String,
    #[serde(flatten)]
    pub seen: ClientDowntime,
}

/// A step the prober could not watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unprobed {
    pub step: String,
    pub message: String,
}

/// The whole change as the client saw it: the longest outage of any step, the rest summed,
/// who answered in order (an appliance named once per run of answers).
pub fn overall_downtime(by_step: &[StepDowntime]) -> Option<ClientDowntime> {
    let first = by_step.first()?;
    let mut all = ClientDowntime {
        interval_ms: first.seen.interval_ms,
        ..ClientDowntime::default()
    };
    for d in by_step {
        all.longest_outage_ms = all.longest_outage_ms.max(d.seen.longest_outage_ms);
        all.outages += d.seen.outages;
        all.total_outage_ms += d.seen.total_outage_ms;
        all.probes += d.seen.probes;
        for who in &d.seen.served_by {
            if all.served_by.last() != Some(who) {
                all.served_by.push(who.clone());
            }
        }
    }
    Some(all)
}

/// Time without failover protection by the wall clock: from `failover.break` verified to
/// `failover.establish` verified, or to `now_ms` while the pair is still broken.
pub fn unprotected_ms(broken: Option<i64>, restored: Option<i64>, now_ms: i64) -> u64 {
    match (broken, restored) {
        (Some(b), Some(r)) => u64::try_from(r - b).unwrap_or(0),
        (Some(b), None) => u64::try_from(now_ms - b).unwrap_or(0),
        _ => 0,
    }
}

/// Builds the report from the whole journal of the change (`steps_run` is left 0 for the
/// walker to fill in).
pub fn build_report(
    specs: &[StepSpec],
    records: &[Record],
    now_ms: i64,
    outcome: &str,
    root_cause: Option<Failure>,
    waiting: Vec<Waiting>,
    skipped: Vec<String>,
) -> ApplyReport {
    let past = super::history::History::fold(records);
    let backups = past.artifacts;
    let mut steps = Vec::with_capacity(specs.len());
    let mut downtime_ms = 0u64;
    let mut downtime_by_step = Vec::new();
    let mut unprobed = Vec::new();
    let (mut broken, mut restored): (Option<i64>, Option<i64>) = (None, None);
    for s in specs {
        // A step the journal shows only acting (no start, outcome or wait) has no status.
        let a = past.steps.get(&s.id).filter(|a| !a.status.is_empty());
        let status = a
            .map(|a| a.status)
            .filter(|s| !s.is_empty())
            .unwrap_or("not-started");
        let duration_ms = a.and_then(|a| match (a.started, a.finished) {
            (Some(st), Some(fin)) if fin >= st => u64::try_from(fin - st).ok(),
            _ => None,
        });
        if s.downtime {
            downtime_ms += duration_ms.unwrap_or(0);
        }
        match a.and_then(|a| a.client.clone()) {
            Some(Ok(seen)) => downtime_by_step.push(StepDowntime {
                step: s.id.clone(),
                seen,
            }),
            Some(Err(message)) => unprobed.push(Unprobed {
                step: s.id.clone(),
                message,
            }),
            None => {}
        }
        let verified = a
            .filter(|a| a.status == "succeeded")
            .and_then(|a| a.finished);
        match s.protection {
            Protection::Breaks => broken = verified,
            Protection::Restores => restored = verified,
            Protection::Unchanged => {}
        }
        steps.push(StepReport {
            id: s.id.clone(),
            status: status.to_owned(),
            duration_ms,
            started: a.and_then(|a| a.first_started).map(rfc3339_ms),
            finished: a.and_then(|a| a.finished).map(rfc3339_ms),
            confirmed_by: a.and_then(|a| a.confirmed_by.clone()),
            note: a.and_then(|a| a.note.clone()),
        });
    }
    let unprotected_ms = unprotected_ms(broken, restored, now_ms);
    ApplyReport {
        outcome: outcome.to_owned(),
        steps,
        steps_run: 0,
        downtime_ms,
        unprotected_ms,
        backups,
        root_cause,
        waiting,
        skipped,
        client_downtime: overall_downtime(&downtime_by_step),
        downtime_by_step,
        unprobed,
    }
}

#[cfg(test)]
mod stream_tests {
    //! The committed event schema (`docs/events.schema.json`) is kept in sync with these types:
    //! one event of every kind, with every optional field filled, must validate, and the schema
    //! refuses fields it does not name — so a new field or event kind fails here until the
    //! schema (and `docs/events.md`) say what it is.

    use super::*;
    use crate::apply::step::WaitReason;
    use std::path::PathBuf;

    fn schema() -> jsonschema::Validator {
        let text = include_str!("../../../docs/events.schema.json");
        let schema: serde_json::Value = serde_json::from_str(text).expect("schema is JSON");
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&schema)
            .expect("schema compiles")
    }

    fn full_report() -> ApplyReport {
        ApplyReport {
            outcome: "paused".to_owned(),
            steps: vec![StepReport {
                id: "backup.config".to_owned(),
                status: "succeeded".to_owned(),
                duration_ms: Some(12),
                started: Some("2026-12-05T21:00:00.000Z".to_owned()),
                finished: Some("2026-12-05T21:00:00.012Z".to_owned()),
                confirmed_by: Some("alice".to_owned()),
                note: Some("exported to the vault share".to_owned()),
            }],
            steps_run: 1,
            downtime_ms: 3,
            unprotected_ms: 4,
            backups: vec![Artifact {
                path: PathBuf::from("/var/backups/a.bin"),
                sha256: "0".repeat(64),
                bytes: 10,
            }],
            root_cause: Some(Failure {
                step: "a.install".to_owned(),
                message: "refused".to_owned(),
                advice: vec!["look".to_owned()],
            }),
            waiting: vec![
                Waiting {
                    step: "backup.certificates".to_owned(),
                    reason: WaitReason::Confirmation {
                        instructions: vec!["export".to_owned()],
                    },
                },
                Waiting {
                    step: "a.install".to_owned(),
                    reason: WaitReason::Window {
                        window: "first".to_owned(),
                        starts: "2026-01-01T00:00:00Z".to_owned(),
                    },
                },
            ],
            skipped: vec!["b.install".to_owned()],
            client_downtime: Some(seen()),
            downtime_by_step: vec![StepDowntime {
                step: "switch.to-b".to_owned(),
                seen: seen(),
            }],
            unprobed: vec![Unprobed {
                step: "failover.promote-a".to_owned(),
                message: "the prober: invalid".to_owned(),
            }],
        }
    }

    fn seen() -> ClientDowntime {
        ClientDowntime {
            longest_outage_ms: 1,
            outages: 1,
            total_outage_ms: 1,
            probes: 9,
            interval_ms: 50,
            served_by: vec!["a".to_owned()],
        }
    }

    /// One event of every kind; the match makes a new kind a compile error here.
    fn every_kind() -> Vec<ApplyEvent> {
        let step = || "a.health".to_owned();
        let all = vec![
            ApplyEvent::NoChanges,
            ApplyEvent::StepAlreadyDone { step: step() },
            ApplyEvent::StepStarted {
                step: step(),
                title: "t".to_owned(),
                kind: "check".to_owned(),
            },
            ApplyEvent::StepPolling {
                step: step(),
                detail: "d".to_owned(),
                elapsed_ms: 1,
                timeout_ms: 2,
            },
            ApplyEvent::StepSucceeded {
                step: step(),
                duration_ms: 1,
            },
            ApplyEvent::StepFailed {
                step: step(),
                message: "m".to_owned(),
            },
            ApplyEvent::StepWaiting {
                step: step(),
                reason: "r".to_owned(),
            },
            ApplyEvent::StepSkipped {
                step: step(),
                because: "a.install".to_owned(),
            },
            ApplyEvent::Finished {
                report: Box::new(full_report()),
            },
            ApplyEvent::NotificationFailed {
                target: "webhook #1".to_owned(),
                notification: "paused".to_owned(),
                attempts: 3,
                message: "answered HTTP 500 Internal Server Error".to_owned(),
            },
            ApplyEvent::ClientMeasured {
                step: "switch.to-b".to_owned(),
                downtime: seen(),
            },
            ApplyEvent::ProbeFailed {
                step: "switch.to-b".to_owned(),
                message: "m".to_owned(),
            },
        ];
        for e in &all {
            match e {
                ApplyEvent::NoChanges
                | ApplyEvent::StepAlreadyDone { .. }
                | ApplyEvent::StepStarted { .. }
                | ApplyEvent::StepPolling { .. }
                | ApplyEvent::StepSucceeded { .. }
                | ApplyEvent::StepFailed { .. }
                | ApplyEvent::StepWaiting { .. }
                | ApplyEvent::StepSkipped { .. }
                | ApplyEvent::Finished { .. }
                | ApplyEvent::NotificationFailed { .. }
                | ApplyEvent::ClientMeasured { .. }
                | ApplyEvent::ProbeFailed { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_event_kind_with_every_field_matches_the_committed_schema() {
        let v = schema();
        let line: serde_json::Value = serde_json::from_str(&version_line()).unwrap();
        assert_eq!(line["type"], "version");
        assert_eq!(line["stream"], EVENT_STREAM_VERSION);
        assert_eq!(line["swing"], crate::SWING_VERSION);
        assert!(v.is_valid(&line), "version line {line}");
        for e in every_kind() {
            let text = stream_line(&e, 1_767_225_600_123).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["@timestamp"], "2026-01-01T00:00:00.123Z");
            let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{text}: {errors:?}");
        }
    }

    #[test]
    fn the_schema_refuses_unknown_fields_kinds_and_bad_timestamps() {
        let v = schema();
        let ok = stream_line(
            &ApplyEvent::StepSucceeded {
                step: "a.health".to_owned(),
                duration_ms: 1,
            },
            0,
        )
        .unwrap();
        let ok: serde_json::Value = serde_json::from_str(&ok).unwrap();
        assert!(v.is_valid(&ok));
        let mut extra = ok.clone();
        extra["surprise"] = serde_json::json!(1);
        assert!(!v.is_valid(&extra), "an unknown field must be refused");
        let mut kind = ok.clone();
        kind["type"] = serde_json::json!("step-exploded");
        assert!(!v.is_valid(&kind), "an unknown event type must be refused");
        let mut ts = ok.clone();
        ts["@timestamp"] = serde_json::json!("2026-01-01 00:00:00");
        assert!(
            !v.is_valid(&ts),
            "a timestamp without T, ms and Z must be refused"
        );
        let mut missing = ok;
        missing.as_object_mut().unwrap().remove("@timestamp");
        assert!(
            !v.is_valid(&missing),
            "an event without @timestamp must be refused"
        );
    }
}
