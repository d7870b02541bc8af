//! Fleet benchmark (not a timed test): `swing plan DIR --offline --format json` — the real
//! release binary — over directories of 1,000 and 10,000 generated valid plan files of every
//! scenario (`swing_testkit::plangen`, fixed seed, written as the JSON text a user may write:
//! JSON is YAML). Prints one Markdown table row per size: wall time (best and median of 3
//! runs), peak resident memory of the `swing` processes (`getrusage` of the children; sizes run
//! smallest first, so each row's peak is its own), and the
//! output's size. Figures are in `docs/performance.md`.
//!
//! Run: `cargo bench --bench plan_fleet` (optionally `-- 1000 10000 ...`). With
//! `PLAN_FLEET_WRITE=DIR` it only writes the largest size's plans into DIR (for profiling
//! `swing plan DIR` by hand) and exits.
//!
//! Must not: reach the network (`--offline`), or leave the plan directories behind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

/// Writes `n` plans into a new temporary directory.
fn fleet(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut runner = TestRunner::deterministic();
    let strategy = swing_testkit::plangen::plans();
    for i in 0..n {
        let plan = strategy
            .new_tree(&mut runner)
            .expect("a generated plan")
            .current();
        let text = serde_json::to_string(&plan).expect("a plan serializes");
        std::fs::write(dir.path().join(format!("site-{i:05}.yaml")), text).expect("written");
    }
    dir
}

/// One run: (wall time, peak RSS in MiB of the child, bytes written to stdout).
fn run(dir: &std::path::Path) -> (Duration, f64, u64) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_swing"))
        .args(["plan", "--offline", "--format", "json"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("swing starts");
    let mut out = child.stdout.take().expect("stdout");
    let bytes = std::io::copy(&mut out, &mut std::io::sink()).expect("output read");
    let status = child.wait().expect("swing ends");
    let elapsed = t.elapsed();
    assert!(status.success(), "swing plan failed: {status}");
    // SAFETY: `rusage` is plain data the kernel fills. The children's peak is the largest of
    // every child waited for so far: sizes run smallest first, so it is this size's.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    (elapsed, usage.ru_maxrss as f64 / 1024.0, bytes)
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let mut sizes = if sizes.is_empty() {
        vec![1_000, 10_000]
    } else {
        sizes
    };
    sizes.sort_unstable();
    if let Some(out) = std::env::var_os("PLAN_FLEET_WRITE") {
        let n = sizes.last().copied().unwrap_or(1_000);
        let dir = fleet(n);
        std::fs::create_dir_all(&out).expect("PLAN_FLEET_WRITE can be made");
        for e in std::fs::read_dir(dir.path()).expect("the plans") {
            let e = e.expect("an entry");
            std::fs::copy(e.path(), std::path::Path::new(&out).join(e.file_name()))
                .expect("copied");
        }
        return;
    }
    println!("| plans | wall time (best / median of 3) | peak RSS | output |");
    println!("|---|---|---|---|");
    for n in sizes {
        let dir = fleet(n);
        let mut runs: Vec<(Duration, f64, u64)> = (0..3).map(|_| run(dir.path())).collect();
        runs.sort_by_key(|r| r.0);
        let peak = runs.iter().map(|r| r.1).fold(0.0, f64::max);
        println!(
            "| {n} | {:.2} s / {:.2} s | {peak:.1} MiB | {:.1} MB |",
            runs[0].0.as_secs_f64(),
            runs[1].0.as_secs_f64(),
            runs[0].2 as f64 / 1e6
        );
    }
}
