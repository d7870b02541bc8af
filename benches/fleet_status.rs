//! Fleet status benchmark (not a timed test): `swing fleet status DIR --state URL --format
//! json` — the real release binary — over 1,000 sites whose state is in a real PostgreSQL
//! (a cluster started here, `swing_testkit::postgres`). Each site is a generated valid plan
//! (`swing_testkit::plangen`, fixed seed) with its own site name; each has a journal in the
//! database — done, paused at a window, failed or not started, in turn — written through the
//! same PostgreSQL store an apply uses. Prints the wall time (best and median of 5 runs) and
//! the peak resident memory of the `swing` process. Figures are in `docs/performance.md`.
//!
//! Run: `cargo bench --bench fleet_status` (optionally `-- 1000 5000 ...`).
//!
//! Must not: reach anything but the loopback cluster it starts.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use swing_engine::apply::{Entry, Store, WaitKind};

/// Writes `n` plans with distinct sites into a new temporary directory and their journals
/// into `store`.
fn fleet(n: usize, store: &dyn Store) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut runner = TestRunner::deterministic();
    let strategy = swing_testkit::plangen::plans();
    for i in 0..n {
        let mut plan = strategy
            .new_tree(&mut runner)
            .expect("a generated plan")
            .current();
        plan.site = format!("site-{n}-{i:05}.example.com");
        plan.name = format!("upgrade-{i:05}");
        let text = serde_json::to_string(&plan).expect("a plan serializes");
        std::fs::write(dir.path().join(format!("site-{i:05}.yaml")), text).expect("written");
        if i % 4 == 3 {
            continue; // not started
        }
        let j = store
            .journal(&plan.site, &plan.name, false)
            .expect("a journal");
        let append = |e: Entry| {
            j.append(e).expect("a record");
        };
        append(Entry::RunStarted {
            plan_digest: format!("digest-{i}"),
            resume: false,
            pid: 1,
            host: "bench".into(),
            source: Some(format!("site-{i:05}.yaml")),
            steps: vec!["a.health".into(), "a.install".into()],
        });
        append(Entry::StepStarted {
            step: "a.health".into(),
        });
        append(Entry::StepSucceeded {
            step: "a.health".into(),
            observed: serde_json::Value::Null,
        });
        let outcome = match i % 4 {
            0 => "done",
            1 => {
                append(Entry::StepWaiting {
                    step: "a.install".into(),
                    reason: "window w2 opens later".into(),
                    kind: Some(WaitKind::Window),
                });
                "paused"
            }
            _ => {
                append(Entry::StepFailed {
                    step: "a.install".into(),
                    message: "the install failed".into(),
                    no_retry: true,
                });
                "failed"
            }
        };
        append(Entry::RunFinished {
            outcome: outcome.into(),
        });
    }
    dir
}

/// One run: (wall time, peak RSS in MiB of the children so far).
fn run(dir: &std::path::Path, url: &str) -> Duration {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(["fleet", "status", "--state", url, "--format", "json"])
        .arg(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("swing runs");
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "swing fleet status failed: {}",
        out.status
    );
    let table: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(table.to_string().contains("-00000.example.com"));
    elapsed
}

fn peak_mib() -> f64 {
    // SAFETY: `rusage` is plain data the kernel fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes.push(1_000);
    }
    sizes.sort_unstable();
    let pg = swing_testkit::postgres::Postgres::start().expect("a PostgreSQL cluster starts");
    let url = pg.url("bench");
    println!("| sites | wall time (best / median of 5) | peak RSS |");
    println!("|---|---|---|");
    for n in sizes {
        let store = swing_providers::pg_state::PgStore::connect(
            &swing_schema::SecretValue::new(url.clone()),
            swing_engine::apply::LockKey::DEFAULT_NAMESPACE,
            None,
        )
        .expect("the store");
        let dir = fleet(n, &store);
        let mut runs: Vec<Duration> = (0..5).map(|_| run(dir.path(), &url)).collect();
        runs.sort();
        println!(
            "| {n} | {:.3} s / {:.3} s | {:.1} MiB |",
            runs[0].as_secs_f64(),
            runs[2].as_secs_f64(),
            peak_mib()
        );
    }
}
