//! `swing status PLAN|SAVED-PLAN [--format text|json|markdown] [--state-dir DIR]`: where a
//! change stands — outcome, phase, steps done, what it waits for (a person with the
//! instructions, a window, a condition with its deadline), the lock holder, time without
//! failover so far, the next window, the confirmations and the last events. Reads the journal
//! and the lock only: works while an apply runs and after it, and contacts nothing.
//!
//! Parses, finds the plan and its state (`crate::target`), makes one engine call
//! (`swing_engine::ops::status`) and prints the rendered status. Exit 0 (1 on an error).
//! Must not: judge the status or word it.

use std::path::PathBuf;

use swing_engine::render::status as render;

use crate::exit::{CliError, CliResult, Exit};

/// Output formats of `swing status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    Text,
    /// The status object (`outcome`, `phase`, `steps_done`, `steps_total`, `waiting`,
    /// `unprotected_s`, `lock`, …).
    Json,
    Markdown,
}

/// Arguments of `swing status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The plan file or saved plan of the change.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    pub format: StatusFormat,
    #[command(flatten)]
    pub state: crate::target::StateArgs,
}

/// Runs `swing status`.
pub fn run(args: &StatusArgs) -> CliResult {
    const P: &str = "swing status";
    let t = crate::target::locate_file(&args.file, args.state.state_dir.as_deref())
        .map_err(|e| CliError::prefixed(P, e))?;
    let store = crate::wiring::store(Some(&t.plan), &t.base_dir, &args.state, &t.state_dir)
        .map_err(|e| CliError::prefixed(P, e.to_string()))?;
    let v = swing_engine::ops::status(
        &t.plan,
        &t.source,
        store.as_ref(),
        swing_engine::time::now_ms(),
    )
    .map_err(|e| CliError::prefixed(P, e.to_string()))?;
    let text = match args.format {
        StatusFormat::Text => render::text(&v),
        StatusFormat::Json => render::json(&v),
        StatusFormat::Markdown => render::markdown(&v),
    };
    Ok(if crate::views::out::write_stdout(&text) {
        Exit::Ok
    } else {
        Exit::Error
    })
}
