//! `swing rehearse PLAN [--offline] [--install-takes DURATION | --time-scale X]
//! [--fault NAME[=VALUE]@STEP]... [--format text|json|markdown]`: rehearse the user's own change
//! on a twin of their own site. Observes the real site read-only (the refresh `swing plan`
//! makes; `--offline`: the plan's facts), describes the twin (`swing_testkit::twin`), and runs
//! the same compiled plan on it with the prober watching (`swing_testkit::rehearse`); the
//! report (`crate::views::rehearse`) is in real units.
//!
//! Owns: parsing the arguments, the time scale, refusing bad faults before anything starts.
//! Must not: write anything to the real site (its providers only observe), print a secret
//! (the real plan's are resolved by the wiring for the refresh only), or run an engine step.

use std::path::PathBuf;
use std::time::Duration;

use swing_engine::compile::{CompileOptions, StepOp};
use swing_testkit::rehearse::{RehearseOptions, parse_fault, rehearse};

use crate::exit::{CliError, CliResult, Exit};
use crate::views::rehearse::{Format, show};

/// Arguments of `swing rehearse`.
#[derive(Debug, Clone, clap::Args)]
pub struct RehearseArgs {
    /// The plan file of the change to rehearse.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    /// Do not observe the site: the twin copies `current_version` and the plan's facts.
    #[arg(long)]
    pub offline: bool,
    /// How long the twin's install takes (the time scale follows from the plan's install
    /// estimate); default 2s.
    #[arg(long, value_name = "DURATION", conflicts_with = "time_scale")]
    pub install_takes: Option<String>,
    /// Real seconds of the twin per second of the plan, within (0, 1].
    #[arg(long, value_name = "X")]
    pub time_scale: Option<f64>,
    /// Switch a fault on when STEP starts: a simulator fault (docs/simulator.md) on the
    /// step's appliance, or dns-down (the twin's DNS server). Repeatable.
    #[arg(long = "fault", value_name = "NAME[=VALUE]@STEP")]
    pub faults: Vec<String>,
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Keep the twin's directory (its plan, journal, backups) here.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Milliseconds between client probes.
    #[arg(long, default_value_t = 50)]
    pub probe_interval_ms: u64,
}

const P: &str = "swing rehearse";

/// Runs `swing rehearse`.
pub fn run(args: &RehearseArgs) -> CliResult {
    let checked = swing_engine::validate::check_paths(std::slice::from_ref(&args.plan));
    if crate::views::out::report_invalid(P, &checked) {
        return Ok(Exit::Error);
    }
    let Some(c) = checked.first() else {
        return Err(CliError::prefixed(P, "no plan file given"));
    };
    let Some(plan) = &c.plan else {
        return Ok(Exit::Error);
    };
    let compiled = swing_engine::compile::compile(
        plan,
        &CompileOptions {
            offline: args.offline,
            file: Some(c.origin.clone()),
        },
    )
    .map_err(|e| CliError::prefixed(P, e))?;
    let faults = args
        .faults
        .iter()
        .map(|f| parse_fault(f, &compiled))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::prefixed(P, e))?;
    let scale = time_scale(args, &compiled).map_err(|e| CliError::prefixed(P, e))?;
    let base = crate::target::base_dir(&c.origin).map_err(|e| CliError::prefixed(P, e))?;
    let rt = crate::runtime()
        .map_err(|e| CliError::prefixed(P, format!("cannot start the runtime: {e}")))?;
    let observed = if args.offline {
        None
    } else {
        // The refresh `swing plan` makes: read-only, through the real plan's providers.
        let providers = crate::wiring::build(plan, &base).map_err(|e| {
            CliError::prefixed(
                P,
                format!("{e}\n  (observing the site needs the providers' credentials; `swing rehearse --offline` needs none)"),
            )
        })?;
        Some(rt.block_on(swing_engine::refresh::refresh(plan, &providers)))
    };
    let now = swing_engine::time::now_ms() / 1000;
    let twin = swing_testkit::twin::describe(plan, observed.as_ref(), now).map_err(|e| {
        CliError::prefixed(
            P,
            format!("{e}\n  (or rehearse from the plan's facts: --offline)"),
        )
    })?;
    let dir = swing_testkit::demo::LabDir::new(args.keep.as_deref()).map_err(CliError::new)?;
    let options = RehearseOptions {
        scale,
        faults,
        probe_interval: Duration::from_millis(args.probe_interval_ms.max(1)),
        narrator: std::sync::Arc::new(swing_testkit::demo::Quiet),
    };
    let wiring = |p: &swing_schema::Plan, d: &std::path::Path| {
        crate::wiring::build(p, d).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let report = rt
        .block_on(rehearse(&compiled, &twin, &options, &dir.path, &wiring))
        .map_err(|e| CliError::prefixed(P, format!("{e:#}")))?;
    Ok(show(&report, args.format))
}

/// The time scale: `--time-scale`, or `--install-takes` (default 2 s) over the plan's longest
/// install estimate.
fn time_scale(
    args: &RehearseArgs,
    compiled: &swing_engine::compile::CompiledPlan,
) -> Result<f64, String> {
    let scale = match args.time_scale {
        Some(x) => x,
        None => {
            let takes = match &args.install_takes {
                Some(d) => swing_schema::DurationSpec::parse(d)
                    .map_err(|e| format!("--install-takes {d}: {e}"))?
                    .secs(),
                None => 2,
            };
            let install = compiled
                .steps
                .iter()
                .filter(|s| matches!(s.op, StepOp::Install(_)))
                .map(|s| s.estimate_s)
                .max()
                .unwrap_or(swing_engine::compile::default_estimate("install"));
            takes as f64 / install.max(1) as f64
        }
    };
    if !(scale.is_finite() && scale > 0.0 && scale <= 1.0) {
        return Err(format!(
            "the time scale must be within (0, 1] (got {scale}); give --time-scale or a shorter --install-takes"
        ));
    }
    Ok(scale)
}
