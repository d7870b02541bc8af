//! Fleet makespan benchmark (not a timed test): `swing fleet apply` — the real release
//! binary — over a fleet of simulated synchronous failover pairs (in-process simulators at
//! the fast time scale, each pair its own site) in three waves `1,10%,100%`, every wave run at
//! once (`--concurrency` = the fleet). Each site's own duration is read from its journal
//! (first record to last); a wave's critical path is its longest site. Prints the makespan
//! (the `swing` process's wall time), Σ of the waves' critical paths, their ratio (the
//! fleet's own overhead: judging, waves' hand-overs, sharing two cores among the sites) and
//! the peak resident memory of the `swing` process. Figures are in `docs/performance.md`.
//!
//! Run: `cargo bench --bench fleet_makespan` (optionally `-- 20 50`: fleet sizes).
//!
//! Must not: reach anything but the loopback simulators it starts.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use swing_engine::apply::{LocalStore, Store};
use swing_testkit::kit::{self, Lab, LabOptions, Scenario};

const WAVES: &str = "1,10%,100%";

fn peak_mib() -> f64 {
    // SAFETY: `rusage` is plain data the kernel fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// One fleet of `n` pairs: (makespan, Σ critical paths of the waves).
fn fleet(rt: &tokio::runtime::Runtime, n: usize) -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut labs = Vec::new();
    let mut plans = Vec::new();
    for i in 0..n {
        let options = LabOptions {
            jump_clients: 5,
            site: format!("bench-{i:03}.example.test"),
            ..LabOptions::default()
        };
        let lab = rt
            .block_on(Lab::start(
                Scenario::Sync,
                &dir.path().join(format!("site-{i:03}")),
                options,
            ))
            .expect("a lab starts");
        plans.push(lab.write_plan(None, None).expect("the plan"));
        labs.push(lab);
    }
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_swing"))
        .args([
            "fleet",
            "apply",
            "--auto-approve",
            "--no-probe",
            "--waves",
            WAVES,
            "--confirm",
            "wave-2",
            "--confirm",
            "wave-3",
            "--concurrency",
            &n.to_string(),
            "--format",
            "json",
        ])
        .args(&plans)
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", kit::state_home(dir.path()))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("swing runs");
    let makespan = t.elapsed();
    assert!(
        out.status.success(),
        "swing fleet apply failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    for lab in &labs {
        let problems = lab.check_final_state();
        assert!(problems.is_empty(), "{}: {problems:?}", lab.options.site);
    }
    // Each site's duration from its journal; the waves as swing made them.
    let waves = WAVES
        .parse::<swing_engine::fleet::Waves>()
        .expect("waves")
        .split(n);
    let durations: Vec<i64> = labs
        .iter()
        .zip(&plans)
        .map(|(lab, plan)| {
            let store = LocalStore::new(
                &swing_engine::apply::default_state_dir(plan),
                &dir.path().join("unused-locks"),
            );
            let records = store
                .records(&lab.options.site, "lab-sync")
                .expect("the journal");
            let (first, last) = (records.first(), records.last());
            last.map_or(0, |l| l.ts_ms) - first.map_or(0, |f| f.ts_ms)
        })
        .collect();
    let critical: i64 = waves
        .iter()
        .map(|w| w.clone().map(|i| durations[i]).max().unwrap_or(0))
        .sum();
    (
        makespan,
        Duration::from_millis(u64::try_from(critical).unwrap_or(0)),
    )
}

fn main() {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes.push(50);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("| pairs | waves | makespan | Σ critical paths | ratio | peak RSS |");
    println!("|---|---|---|---|---|---|");
    for n in sizes {
        let (makespan, critical) = fleet(&rt, n);
        println!(
            "| {n} | {WAVES} | {:.2} s | {:.2} s | {:.3} | {:.1} MiB |",
            makespan.as_secs_f64(),
            critical.as_secs_f64(),
            makespan.as_secs_f64() / critical.as_secs_f64().max(0.001),
            peak_mib()
        );
    }
}
