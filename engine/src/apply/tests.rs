//! Tests of the walker and of `run` with an in-memory fake executor (fakes live only here).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::events::build_report;
use super::*;

#[derive(Default)]
struct Fake {
    acts: Mutex<HashMap<String, u32>>,
    verifies: Mutex<HashMap<String, u32>>,
    /// act fails with this (retryable) error.
    act_fails: HashMap<String, StepError>,
    /// verify says NotYet this many times before Holds.
    verify_after: HashMap<String, u32>,
    /// verify never holds.
    never: HashSet<String>,
    /// act sleeps this long (to observe concurrency).
    act_sleep: Duration,
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Fake {
    fn acts(&self, id: &str) -> u32 {
        self.acts.lock().unwrap().get(id).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl StepExecutor for Fake {
    async fn act(&self, step: &StepSpec) -> Result<Vec<Artifact>, StepError> {
        *self
            .acts
            .lock()
            .unwrap()
            .entry(step.id.clone())
            .or_default() += 1;
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        if !self.act_sleep.is_zero() {
            tokio::time::sleep(self.act_sleep).await;
        }
        self.now.fetch_sub(1, Ordering::SeqCst);
        if let Some(e) = self.act_fails.get(&step.id) {
            return Err(e.clone());
        }
        if step.id == "backup.config" {
            return Ok(vec![Artifact {
                path: "/b/x.nsb".into(),
                sha256: "ab".repeat(32),
                bytes: 3,
            }]);
        }
        Ok(Vec::new())
    }
    async fn verify(&self, step: &StepSpec) -> Result<Check, StepError> {
        let mut v = self.verifies.lock().unwrap();
        let n = v.entry(step.id.clone()).or_default();
        *n += 1;
        if self.never.contains(&step.id) {
            return Ok(Check::NotYet(format!("{} still installing", step.id)));
        }
        if *n <= self.verify_after.get(&step.id).copied().unwrap_or(0) {
            return Ok(Check::NotYet("not yet".into()));
        }
        Ok(Check::Holds(serde_json::json!({ "step": step.id })))
    }
}

fn fast() -> WalkOptions {
    WalkOptions {
        poll: PollPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            act_attempts: 3,
        },
        ..WalkOptions::default()
    }
}

struct Env {
    _dir: tempfile::TempDir,
    journal: Arc<Journal>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(Journal::open(&dir.path().join("j.jsonl")).unwrap());
    Env { _dir: dir, journal }
}

fn chain() -> Vec<StepSpec> {
    vec![
        StepSpec::new("a.health", StepKind::Auto, &[]),
        StepSpec::new("backup.config", StepKind::Auto, &["a.health"]),
        StepSpec::new("b.install", StepKind::Operator, &["backup.config"]),
        StepSpec::new("b.online", StepKind::Wait, &["b.install"]),
    ]
}

#[tokio::test]
async fn runs_everything_in_order_and_journals_it() {
    let e = env();
    let fake = Arc::new(Fake {
        verify_after: HashMap::from([("b.online".into(), 3)]),
        ..Fake::default()
    });
    let r = walk(
        &chain(),
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &fast(),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    assert_eq!(r.report.steps_run, 4);
    assert_eq!(r.report.backups.len(), 1);
    assert!(r.report.steps.iter().all(|s| s.status == "succeeded"));
    for id in ["a.health", "backup.config", "b.install", "b.online"] {
        assert_eq!(fake.acts(id), 1, "{id}");
    }
    assert_eq!(fake.verifies.lock().unwrap()["b.online"], 4);
    let st = ResumeState::from_records(&e.journal.records().unwrap());
    assert!(st.finished);
    assert!(st.steps.values().all(|p| *p == Prior::Succeeded));
}

#[tokio::test]
async fn parallelism_is_respected() {
    let e = env();
    let steps: Vec<StepSpec> = (0..6)
        .map(|i| StepSpec::new(format!("s{i}"), StepKind::Auto, &[]))
        .collect();
    let fake = Arc::new(Fake {
        act_sleep: Duration::from_millis(20),
        ..Fake::default()
    });
    let opts = WalkOptions {
        parallelism: 2,
        ..fast()
    };
    let r = walk(
        &steps,
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    assert_eq!(fake.max.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn failure_skips_downstream_and_reports_root_cause_once() {
    let e = env();
    let mut steps = chain();
    steps.push(StepSpec::new(
        "clients.throttle",
        StepKind::Auto,
        &["a.health"],
    ));
    let fake = Arc::new(Fake {
        act_fails: HashMap::from([("backup.config".into(), StepError::fatal("backup refused"))]),
        ..Fake::default()
    });
    let opts = WalkOptions {
        parallelism: 1,
        ..fast()
    };
    let r = walk(
        &steps,
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &opts,
    )
    .await
    .unwrap();
    let Outcome::Failed {
        root_cause,
        skipped,
    } = &r.outcome
    else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(root_cause.step, "backup.config");
    assert_eq!(root_cause.message, "backup refused");
    assert_eq!(
        skipped,
        &vec!["b.install".to_owned(), "b.online".to_owned()]
    );
    assert_eq!(fake.acts("b.install"), 0);
    let failed: Vec<_> = r
        .report
        .steps
        .iter()
        .filter(|s| s.status == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
}

#[tokio::test]
async fn failed_install_is_never_retried_even_on_resume() {
    let e = env();
    let mut steps = chain();
    steps[2].idempotent = false;
    steps[2].no_retry = true;
    steps[2].failure_advice =
        vec!["Do not restart the appliance; contact BeyondTrust support.".into()];
    let fake = Arc::new(Fake {
        act_fails: HashMap::from([(
            "b.install".into(),
            StepError {
                message: "install failed".into(),
                retryable: true,
            },
        )]),
        never: HashSet::from(["b.install".to_owned()]),
        ..Fake::default()
    });
    let r = walk(
        &steps,
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &fast(),
    )
    .await
    .unwrap();
    let Outcome::Failed { root_cause, .. } = &r.outcome else {
        panic!()
    };
    assert_eq!(root_cause.step, "b.install");
    assert!(root_cause.advice[0].contains("contact BeyondTrust support"));
    assert_eq!(
        fake.acts("b.install"),
        1,
        "a retryable error must still not retry an install"
    );

    let prior = ResumeState::from_records(&e.journal.records().unwrap());
    let r2 = walk(&steps, fake.clone(), e.journal.clone(), &prior, &fast())
        .await
        .unwrap();
    assert!(
        matches!(&r2.outcome, Outcome::Failed { root_cause, .. } if root_cause.message.contains("not retried"))
    );
    assert_eq!(fake.acts("b.install"), 1);
    assert_eq!(
        fake.acts("a.health"),
        1,
        "completed steps are not run again"
    );
}

#[tokio::test]
async fn retryable_act_error_of_idempotent_step_is_retried() {
    let e = env();
    let steps = vec![StepSpec::new("x", StepKind::Auto, &[])];
    let fake = Arc::new(Fake {
        act_fails: HashMap::from([(
            "x".into(),
            StepError {
                message: "timeout".into(),
                retryable: true,
            },
        )]),
        ..Fake::default()
    });
    let r = walk(
        &steps,
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &fast(),
    )
    .await
    .unwrap();
    assert!(matches!(r.outcome, Outcome::Failed { .. }));
    assert_eq!(fake.acts("x"), 3);
}

#[tokio::test]
async fn verify_times_out_with_the_last_reason() {
    let e = env();
    let mut s = StepSpec::new("b.online", StepKind::Wait, &[]);
    s.verify_timeout = Duration::from_millis(30);
    let fake = Arc::new(Fake {
        never: HashSet::from(["b.online".to_owned()]),
        ..Fake::default()
    });
    let r = walk(
        &[s],
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &fast(),
    )
    .await
    .unwrap();
    let Outcome::Failed { root_cause, .. } = &r.outcome else {
        panic!()
    };
    assert!(
        root_cause.message.contains("did not complete"),
        "{}",
        root_cause.message
    );
    assert!(root_cause.message.contains("still installing"));
    assert!(*fake.verifies.lock().unwrap().get("b.online").unwrap() >= 2);
}

#[tokio::test]
async fn gate_pauses_until_confirmed_and_the_confirmation_is_remembered() {
    let e = env();
    let mut steps = chain();
    let mut gate = StepSpec::new("b.verify-manual", StepKind::Gate, &["b.online"]);
    gate.instructions = vec!["Start an access session".into()];
    steps.push(gate);
    steps.push(StepSpec::new(
        "switch.to-b",
        StepKind::Auto,
        &["b.verify-manual"],
    ));
    let fake = Arc::new(Fake::default());
    let r = walk(
        &steps,
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &fast(),
    )
    .await
    .unwrap();
    let Outcome::Paused { waiting } = &r.outcome else {
        panic!("{:?}", r.outcome)
    };
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].step, "b.verify-manual");
    assert!(
        matches!(&waiting[0].reason, WaitReason::Confirmation { instructions } if instructions.len() == 1)
    );
    assert_eq!(fake.acts("switch.to-b"), 0);

    // Resume with --confirm: the gate passes (never "acted"), the rest runs once.
    let prior = ResumeState::from_records(&e.journal.records().unwrap());
    let opts = WalkOptions {
        confirmed: BTreeSet::from(["b.verify-manual".to_owned()]),
        ..fast()
    };
    let r = walk(&steps, fake.clone(), e.journal.clone(), &prior, &opts)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    assert_eq!(fake.acts("b.verify-manual"), 0);
    assert_eq!(fake.acts("switch.to-b"), 1);
    assert_eq!(fake.acts("b.install"), 1);
    let prior = ResumeState::from_records(&e.journal.records().unwrap());
    assert!(prior.confirmed.contains("b.verify-manual"));
}

struct Yes;
#[async_trait::async_trait]
impl Prompter for Yes {
    async fn confirm(&self, _step: &StepSpec) -> bool {
        true
    }
}

#[tokio::test]
async fn a_prompt_can_confirm_a_gate() {
    let e = env();
    let steps = vec![StepSpec::new("g", StepKind::Gate, &[])];
    let opts = WalkOptions {
        prompter: Some(Arc::new(Yes)),
        ..fast()
    };
    let r = walk(
        &steps,
        Arc::new(Fake::default()),
        e.journal.clone(),
        &ResumeState::default(),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Done);
}

struct FixedClock(i64);
impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

#[tokio::test]
async fn window_bound_step_waits_for_its_window() {
    let e = env();
    let second = swing_schema::Window {
        name: "second".into(),
        start: chrono::DateTime::parse_from_rfc3339("2026-12-12T22:00:00+01:00").unwrap(),
        end: chrono::DateTime::parse_from_rfc3339("2026-12-13T02:00:00+01:00").unwrap(),
    };
    let mut a = StepSpec::new("a.install", StepKind::Operator, &[]);
    a.window = Some("second".into());
    let steps = vec![
        a,
        StepSpec::new("a.online", StepKind::Wait, &["a.install"]),
        StepSpec::new("other", StepKind::Auto, &[]),
    ];
    let before = second.start.timestamp_millis() - 1000;
    let opts = WalkOptions {
        windows: vec![second.clone()],
        clock: Arc::new(FixedClock(before)),
        ..fast()
    };
    let fake = Arc::new(Fake::default());
    let r = walk(
        &steps,
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &opts,
    )
    .await
    .unwrap();
    let Outcome::Paused { waiting } = &r.outcome else {
        panic!()
    };
    assert!(
        waiting[0]
            .describe()
            .starts_with("waiting for window second (starts 2026-12-12T22:00:00+01:00)")
    );
    assert_eq!(fake.acts("a.install"), 0);
    assert_eq!(fake.acts("other"), 1);

    let prior = ResumeState::from_records(&e.journal.records().unwrap());
    let inside = second.start.timestamp_millis() + 1000;
    let opts = WalkOptions {
        windows: vec![second.clone()],
        clock: Arc::new(FixedClock(inside)),
        ..fast()
    };
    let r = walk(&steps, fake.clone(), e.journal.clone(), &prior, &opts)
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    assert_eq!(fake.acts("other"), 1);

    let after = second.end.timestamp_millis() + 1;
    let opts = WalkOptions {
        windows: vec![second],
        clock: Arc::new(FixedClock(after)),
        ..fast()
    };
    let r = walk(
        &steps,
        fake.clone(),
        e.journal.clone(),
        &ResumeState::default(),
        &opts,
    )
    .await
    .unwrap();
    assert!(
        matches!(&r.outcome, Outcome::Failed { root_cause, .. } if root_cause.message.contains("window second ended"))
    );
}

#[tokio::test]
async fn in_flight_install_is_only_re_observed() {
    let e = env();
    let mut steps = chain();
    // An install: never sent twice unless its bridge can tell it never arrived (this one
    // cannot).
    steps[2].idempotent = false;
    steps[2].no_retry = true;
    for entry in [
        Entry::StepStarted {
            step: "a.health".into(),
        },
        Entry::StepSucceeded {
            step: "a.health".into(),
            observed: serde_json::Value::Null,
        },
        Entry::StepStarted {
            step: "backup.config".into(),
        },
        Entry::StepSucceeded {
            step: "backup.config".into(),
            observed: serde_json::Value::Null,
        },
        Entry::StepStarted {
            step: "b.install".into(),
        },
        Entry::ActionSent {
            step: "b.install".into(),
        },
    ] {
        e.journal.append(entry).unwrap();
    }
    let prior = ResumeState::from_records(&e.journal.records().unwrap());
    let fake = Arc::new(Fake {
        verify_after: HashMap::from([("b.install".into(), 2)]),
        ..Fake::default()
    });
    let r = walk(&steps, fake.clone(), e.journal.clone(), &prior, &fast())
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    assert_eq!(
        fake.acts("b.install"),
        0,
        "the install was sent before the crash; never again"
    );
    assert_eq!(fake.acts("a.health"), 0);
    assert_eq!(fake.acts("b.online"), 1);
}

#[tokio::test]
async fn in_flight_step_whose_action_was_not_sent_runs() {
    let e = env();
    let mut steps = chain();
    steps[2].idempotent = false;
    e.journal
        .append(Entry::StepStarted {
            step: "b.install".into(),
        })
        .unwrap();
    let prior = ResumeState::from_records(&e.journal.records().unwrap());
    let fake = Arc::new(Fake::default());
    walk(&steps, fake.clone(), e.journal.clone(), &prior, &fast())
        .await
        .unwrap();
    assert_eq!(fake.acts("b.install"), 1);
}

#[tokio::test]
async fn bad_graphs_are_refused() {
    let e = env();
    let fake: Arc<dyn StepExecutor> = Arc::new(Fake::default());
    let st = ResumeState::default();
    let unknown = vec![StepSpec::new("a", StepKind::Auto, &["nope"])];
    assert!(matches!(
        walk(&unknown, fake.clone(), e.journal.clone(), &st, &fast()).await,
        Err(WalkError::UnknownDependency { .. })
    ));
    let cyc = vec![
        StepSpec::new("a", StepKind::Auto, &["b"]),
        StepSpec::new("b", StepKind::Auto, &["a"]),
    ];
    assert!(matches!(
        walk(&cyc, fake.clone(), e.journal.clone(), &st, &fast()).await,
        Err(WalkError::Cycle(_))
    ));
    let dup = vec![
        StepSpec::new("a", StepKind::Auto, &[]),
        StepSpec::new("a", StepKind::Auto, &[]),
    ];
    assert!(matches!(
        walk(&dup, fake, e.journal.clone(), &st, &fast()).await,
        Err(WalkError::DuplicateStep(_))
    ));
}

fn request(dir: &std::path::Path, digest: &str, resume: bool) -> ApplyRequest {
    ApplyRequest {
        store: Arc::new(LocalStore::new(
            &dir.join(".swing"),
            &dir.join(".swing").join("locks"),
        )),
        change: "chg".into(),
        site: "access.example.com".into(),
        plan_digest: digest.into(),
        source: Some("change.plan".into()),
        resume,
        lock: LockOptions::default(),
        walk: fast(),
    }
}

#[tokio::test]
async fn run_guards_lock_resume_and_plan_identity() {
    let dir = tempfile::tempdir().unwrap();
    let mut steps = chain();
    steps.push(StepSpec::new("gate", StepKind::Gate, &["b.online"]));
    let fake = Arc::new(Fake::default());

    // Resume with nothing to resume.
    assert!(matches!(
        run(&request(dir.path(), "d1", true), &steps, fake.clone()).await,
        Err(ApplyError::NothingToResume { .. })
    ));

    // Another apply holds the site.
    let held = lock::acquire(
        &lock_path(
            &dir.path().join(".swing").join("locks"),
            &LockKey::site("access.example.com"),
        ),
        "other",
        LockOptions::default(),
    )
    .unwrap();
    match run(&request(dir.path(), "d1", false), &steps, fake.clone()).await {
        Err(ApplyError::Locked(LockError::Held { holder, .. })) => {
            assert_eq!(holder.holder, "other")
        }
        other => panic!("{:?}", other.map(|r| r.outcome)),
    }
    drop(held);

    // Pauses at the gate; a fresh apply is refused, a resume of another plan too.
    let r = run(&request(dir.path(), "d1", false), &steps, fake.clone())
        .await
        .unwrap();
    assert!(matches!(r.outcome, Outcome::Paused { .. }));
    assert!(matches!(
        run(&request(dir.path(), "d1", false), &steps, fake.clone()).await,
        Err(ApplyError::Unfinished { .. })
    ));
    assert!(matches!(
        run(&request(dir.path(), "d2", true), &steps, fake.clone()).await,
        Err(ApplyError::DifferentPlan { .. })
    ));
    assert_eq!(
        journal_steps(
            &LocalStore::new(&dir.path().join(".swing"), dir.path()),
            "access.example.com",
            "chg"
        )
        .unwrap()
        .len(),
        steps.len()
    );
    assert_eq!(
        LocalStore::new(&dir.path().join(".swing"), dir.path())
            .unfinished()
            .unwrap(),
        vec![("chg".to_owned(), Some("change.plan".to_owned()))]
    );

    // Resume with the confirmation finishes; the lock is released.
    let mut req = request(dir.path(), "d1", true);
    req.walk.confirmed.insert("gate".into());
    let r = run(&req, &steps, fake.clone()).await.unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    assert_eq!(fake.acts("b.install"), 1);
    assert!(
        !lock_path(
            &dir.path().join(".swing").join("locks"),
            &LockKey::site("access.example.com")
        )
        .exists()
    );
    assert!(
        LocalStore::new(&dir.path().join(".swing"), dir.path())
            .unfinished()
            .unwrap()
            .is_empty()
    );

    // A new apply after a finished one starts a fresh journal, keeping the old one.
    let r = run(&request(dir.path(), "d2", false), &steps, fake.clone())
        .await
        .unwrap();
    assert!(matches!(r.outcome, Outcome::Paused { .. }));
    let kept = std::fs::read_dir(dir.path().join(".swing"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("chg.journal.1")
        })
        .count();
    assert_eq!(kept, 1);
}

/// A prober that records which steps it watched and reports one outage per watch.
#[derive(Default)]
struct FakeProbe {
    started: Mutex<Vec<BTreeMap<String, String>>>,
    settled: Mutex<Vec<bool>>,
    refuse: bool,
}

struct FakeSpan(Arc<FakeProbe>, u64);

#[async_trait::async_trait]
impl crate::provider::ClientProbe for Arc<FakeProbe> {
    async fn start(
        &self,
        labels: &BTreeMap<String, String>,
    ) -> crate::provider::ProviderResult<Box<dyn crate::provider::ProbeSpan>> {
        if self.refuse {
            return Err(crate::provider::ProviderError::new(
                crate::provider::ErrorKind::Invalid,
                "the prober: no route",
            ));
        }
        let mut s = self.started.lock().unwrap();
        s.push(labels.clone());
        Ok(Box::new(FakeSpan(self.clone(), 100 * s.len() as u64)))
    }
}

#[async_trait::async_trait]
impl crate::provider::ProbeSpan for FakeSpan {
    async fn stop(self: Box<Self>, settle: bool) -> ClientDowntime {
        self.0.settled.lock().unwrap().push(settle);
        ClientDowntime {
            longest_outage_ms: self.1,
            outages: 1,
            total_outage_ms: self.1,
            probes: 10,
            interval_ms: 50,
            // The first watch sees the switch from a to b, the next only b.
            served_by: if self.1 == 100 {
                vec!["a".into(), "b".into()]
            } else {
                vec!["b".into()]
            },
        }
    }
}

fn with_downtime() -> Vec<StepSpec> {
    let mut steps = vec![
        StepSpec::new("b.health", StepKind::Auto, &[]),
        StepSpec::new("switch.to-b", StepKind::Auto, &["b.health"]),
        StepSpec::new("switch.verify-b", StepKind::Auto, &["switch.to-b"]),
        StepSpec::new("failover.promote-a", StepKind::Auto, &["switch.verify-b"]),
    ];
    steps[1].downtime = true;
    steps[3].downtime = true;
    steps
}

#[tokio::test]
async fn the_prober_watches_exactly_the_downtime_steps_and_the_report_carries_each() {
    let e = env();
    let probe = Arc::new(FakeProbe::default());
    let opts = WalkOptions {
        probe: Some(Arc::new(probe.clone())),
        probe_labels: BTreeMap::from([("id-b".to_owned(), "b".to_owned())]),
        ..fast()
    };
    let fake = Arc::new(Fake::default());
    let r = walk(
        &with_downtime(),
        fake,
        e.journal.clone(),
        &ResumeState::default(),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    let started = probe.started.lock().unwrap().clone();
    assert_eq!(started.len(), 2, "one watch per downtime step");
    assert_eq!(started[0].get("id-b").map(String::as_str), Some("b"));
    assert_eq!(*probe.settled.lock().unwrap(), [true, true]);
    let by: Vec<(&str, u64)> = r
        .report
        .downtime_by_step
        .iter()
        .map(|d| (d.step.as_str(), d.seen.longest_outage_ms))
        .collect();
    assert_eq!(by, [("switch.to-b", 100), ("failover.promote-a", 200)]);
    let all = r
        .report
        .client_downtime
        .expect("the change as the client saw it");
    assert_eq!(all.longest_outage_ms, 200);
    assert_eq!((all.outages, all.total_outage_ms, all.probes), (2, 300, 20));
    assert_eq!(
        all.served_by,
        ["a", "b"],
        "consecutive answers of one appliance merged"
    );
    // Journaled: a report built later from the journal alone says the same.
    let records = e.journal.records().unwrap();
    let again = build_report(
        &with_downtime(),
        &records,
        0,
        "done",
        None,
        Vec::new(),
        Vec::new(),
    );
    assert_eq!(again.downtime_by_step, r.report.downtime_by_step);
}

#[tokio::test]
async fn a_prober_that_cannot_start_changes_nothing_of_the_apply_and_is_reported() {
    let e = env();
    let probe = Arc::new(FakeProbe {
        refuse: true,
        ..FakeProbe::default()
    });
    let opts = WalkOptions {
        probe: Some(Arc::new(probe.clone())),
        ..fast()
    };
    let r = walk(
        &with_downtime(),
        Arc::new(Fake::default()),
        e.journal.clone(),
        &ResumeState::default(),
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Done);
    assert!(r.report.client_downtime.is_none());
    let unprobed: Vec<&str> = r.report.unprobed.iter().map(|u| u.step.as_str()).collect();
    assert_eq!(unprobed, ["switch.to-b", "failover.promote-a"]);
    assert!(r.report.unprobed[0].message.contains("no route"));
}

#[tokio::test]
async fn after_a_failed_downtime_step_the_watch_stops_at_once() {
    let e = env();
    let probe = Arc::new(FakeProbe::default());
    let opts = WalkOptions {
        probe: Some(Arc::new(probe.clone())),
        ..fast()
    };
    let fake = Arc::new(Fake {
        act_fails: HashMap::from([("switch.to-b".into(), StepError::fatal("refused"))]),
        ..Fake::default()
    });
    let r = walk(
        &with_downtime(),
        fake,
        e.journal.clone(),
        &ResumeState::default(),
        &opts,
    )
    .await
    .unwrap();
    assert!(matches!(r.outcome, Outcome::Failed { .. }));
    assert_eq!(*probe.settled.lock().unwrap(), [false]);
    assert_eq!(
        r.report.downtime_by_step.len(),
        1,
        "the failed step's outage is kept"
    );
}
