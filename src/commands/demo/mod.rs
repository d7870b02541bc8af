//! `swing demo [SCENARIO]`: the one-command tour. Starts simulated appliances in-process
//! (and the embedded DNS server for the dns scenarios), writes a plan into a temporary
//! directory, shows the plan and applies it with `operator: sim` at a fast time scale —
//! through the same engine calls `swing plan` and `swing apply` make (validate, compile,
//! render; wiring, `ops::apply`) — while the prober measures what a client sees. Ends with
//! the final report, including the measured downtime. Needs nothing but this binary.
//!
//! Owns: parsing the demo's arguments and how it ends; the run itself is
//! `swing_testkit::demo::run_scenario`, the terminal output `narrate`. Must not: implement
//! any engine step itself, talk to anything but loopback, or print a secret (the plan
//! references its secrets as `${file:...}` in the temporary directory).

mod narrate;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use swing_testkit::demo::{LabDir, run_scenario};

use crate::exit::{CliError, CliResult, Exit};
use swing_testkit::kit::{LabOptions, Scenario, TIME_SCALE_45MIN_IN_2S};

/// Arguments of `swing demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Scenario: async-shared-ip (default), async-dns, async-dns-final-primary, sync,
    /// single, single-manual, migration. (async-nat needs root and network namespaces:
    /// see the end-to-end tests.)
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

async fn demo(args: &DemoArgs) -> anyhow::Result<Exit> {
    let scenario: Scenario = args
        .scenario
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    if scenario == Scenario::AsyncNat {
        anyhow::bail!(
            "the nat scenario needs root and network namespaces (nftables DNAT); it runs in the end-to-end tests (tests/e2e.rs, async_nat)"
        );
    }
    if !(args.time_scale.is_finite() && args.time_scale > 0.0 && args.time_scale <= 1.0) {
        anyhow::bail!("--time-scale must be within (0, 1]");
    }
    let dir = LabDir::new(args.keep.as_deref())?;
    println!(
        "swing demo: scenario {} — simulated appliances on loopback, operator: sim",
        scenario.name()
    );
    println!(
        "time scale {:.6} (a 45-minute install takes {:.1} s); lab directory {}\n",
        args.time_scale,
        2700.0 * args.time_scale,
        dir.path.display()
    );
    let options = LabOptions {
        time_scale: args.time_scale,
        state_estimates: true,
        ..LabOptions::default()
    };
    let result = run_scenario(
        scenario,
        &dir.path,
        options,
        Duration::from_millis(args.probe_interval_ms.max(1)),
        &wiring,
        Arc::new(narrate::Terminal),
    )
    .await?;
    narrate::print_final(scenario, &result);
    Ok(if result.succeeded() {
        Exit::Ok
    } else {
        Exit::Error
    })
}
