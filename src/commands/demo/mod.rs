//! `swing demo [SCENARIO]`: the one-command tour, a rehearsal of the scenario's built-in
//! example plan (`plans/examples/`): the plan is written into a temporary directory, shown as
//! `swing plan --offline` renders it, and rehearsed exactly as `swing rehearse --offline` does
//! — a twin of the plan's site (simulated appliances on loopback, the embedded DNS server, a
//! NAT namespace as root), the same compiled plan applied with `operator: sim` through the
//! engine's `ops::apply` while the prober measures what a client sees — ending with the
//! rehearsal's report, the measured downtime in it. Needs nothing but this binary.
//!
//! Owns: parsing the demo's arguments and how it ends; the run is
//! `swing_testkit::rehearse::rehearse`, the terminal output `narrate` and
//! `crate::views::rehearse`. Must not: implement any engine step itself, talk to anything
//! but loopback (and, as root, its own namespaces), or print a secret (the twin's are
//! generated into the temporary directory).

mod narrate;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use swing_testkit::demo::LabDir;
use swing_testkit::rehearse::{Rehearsal, RehearseOptions, nat_twin_available, rehearse};

use crate::exit::{CliError, CliResult, Exit};
use swing_testkit::kit::{Scenario, TIME_SCALE_45MIN_IN_2S};

/// Arguments of `swing demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Scenario: async-shared-ip (default), async-dns, async-dns-final-primary, sync,
    /// single, single-manual, migration, async-nat (as root: its twin is a network namespace
    /// with real nftables).
    #[arg(default_value = "async-shared-ip")]
    pub scenario: String,
    /// Real seconds per simulated second (default: a 45-minute install takes 2 s).
    #[arg(long, default_value_t = TIME_SCALE_45MIN_IN_2S)]
    pub time_scale: f64,
    /// Milliseconds between client probes.
    #[arg(long, default_value_t = 50)]
    pub probe_interval_ms: u64,
    /// Keep the lab directory (plan, journal, backups) here instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
}

/// Runs `swing demo`.
pub fn run(args: &DemoArgs) -> CliResult {
    let rt = crate::runtime()
        .map_err(|e| CliError::msg(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(demo(args)).map_err(CliError::new)
}

/// The binary's wiring, as `swing apply` builds providers.
fn wiring(
    plan: &swing_schema::Plan,
    dir: &std::path::Path,
) -> anyhow::Result<swing_engine::refresh::Providers> {
    crate::wiring::build(plan, dir).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Rehearses the scenario's example plan in `dir` (offline: the plan's own facts), each
/// event shown by `narrator`.
pub async fn rehearse_example(
    scenario: Scenario,
    dir: &std::path::Path,
    scale: f64,
    probe_interval: Duration,
    narrator: Arc<dyn swing_testkit::demo::Narrator>,
    show_plan: &dyn Fn(&str, &swing_engine::compile::CompiledPlan),
) -> anyhow::Result<Rehearsal> {
    let (file, text) = scenario.example_plan();
    let path = dir.join(file);
    std::fs::write(&path, text)?;
    let checked = swing_engine::validate::check_file(&path);
    let plan = checked.plan.ok_or_else(|| {
        let msgs: Vec<String> = checked.diagnostics.iter().map(|d| d.to_string()).collect();
        anyhow::anyhow!("the example plan is not valid:\n  {}", msgs.join("\n  "))
    })?;
    let compiled = swing_engine::compile::compile(
        &plan,
        &swing_engine::compile::CompileOptions {
            offline: true,
            file: Some(file.to_owned()),
        },
    )?;
    show_plan(file, &compiled);
    let twin = swing_testkit::twin::describe(&plan, None, swing_engine::time::now_ms() / 1000)
        .map_err(anyhow::Error::msg)?;
    let twin_dir = dir.join("twin");
    std::fs::create_dir_all(&twin_dir)?;
    let options = RehearseOptions {
        scale,
        faults: Vec::new(),
        probe_interval,
        narrator,
    };
    rehearse(&compiled, &twin, &options, &twin_dir, &wiring).await
}

async fn demo(args: &DemoArgs) -> anyhow::Result<Exit> {
    let scenario: Scenario = args
        .scenario
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    if scenario == Scenario::AsyncNat && !nat_twin_available() {
        anyhow::bail!(
            "the nat scenario needs root, `ip netns` and nft (its twin is a private network namespace with real nftables); run it as root"
        );
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 1.0) {
        anyhow::bail!("--time-scale must be within (0, 1]");
    }
    let dir = LabDir::new(args.keep.as_deref())?;
    let (file, _) = scenario.example_plan();
    println!(
        "swing demo: scenario {} — the example plan plans/examples/{file}, rehearsed on a twin of its site (simulated appliances on loopback, operator: sim)",
        scenario.name()
    );
    println!(
        "time scale {:.6} (a 45-minute install takes {:.1} s); directory {}\n",
        args.time_scale,
        2700.0 * args.time_scale,
        dir.path.display()
    );
    let interval = Duration::from_millis(args.probe_interval_ms.max(1));
    let r = rehearse_example(
        scenario,
        &dir.path,
        args.time_scale,
        interval,
        Arc::new(narrate::Terminal),
        &|file, compiled| narrate::print_plan(file, compiled, interval),
    )
    .await?;
    narrate::print_final(&r);
    Ok(if r.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Error
    })
}
