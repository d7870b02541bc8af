//! `swing report PLAN|SAVED-PLAN [--format markdown|json] [--state-dir DIR]`: the change
//! record for the ticket — plan digest and signer, each step's start, end and duration, who
//! confirmed it and their note, what swing observed when it verified it, the runs, backups
//! with SHA-256, measured client downtime, time without failover, failures and a verdict.
//!
//! Parses, finds the plan, its saved plan and state (`crate::target`), makes one engine call
//! (`swing_engine::ops::report`) and prints it. Exit 0 (1 on an error). Must not: build or
//! word the record.

use std::path::PathBuf;

use swing_engine::render::report as render;

use crate::exit::{CliError, CliResult, Exit};

/// Output formats of `swing report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// For the change ticket (at most 65,000 characters).
    Markdown,
    /// The record (`steps[]`, `downtime_measured_s`, `unprotected_s`, `backups[]`, …).
    Json,
}

/// Arguments of `swing report`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The saved plan or plan file of the change.
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Markdown)]
    pub format: ReportFormat,
    #[command(flatten)]
    pub state: crate::target::StateArgs,
}

/// Runs `swing report`.
pub fn run(args: &ReportArgs) -> CliResult {
    const P: &str = "swing report";
    let t = crate::target::locate_file(&args.file, args.state.state_dir.as_deref())
        .map_err(|e| CliError::prefixed(P, e))?;
    let store = crate::wiring::store(Some(&t.plan), &t.base_dir, &args.state, &t.state_dir)
        .map_err(|e| CliError::prefixed(P, e.to_string()))?;
    let r = swing_engine::ops::report(
        &t.plan,
        &t.source,
        t.saved.as_ref(),
        store.as_ref(),
        swing_engine::time::now_ms(),
    )
    .map_err(|e| CliError::prefixed(P, e.to_string()))?;
    let text = match args.format {
        ReportFormat::Markdown => render::markdown(&r, render::MAX_CHARS),
        ReportFormat::Json => render::json(&r),
    };
    Ok(if crate::views::out::write_stdout(&text) {
        Exit::Ok
    } else {
        Exit::Error
    })
}
