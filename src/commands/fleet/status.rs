//! `swing fleet status PATH... [--waves LIST] [--max-failures N] [--format text|json|markdown]
//! [--state URL]`: the fleet's table from what is on record — each site's journal and lock in
//! its store — judged with the waves and budget given (the same as `fleet apply`'s). Reads
//! only: works while runners apply the fleet, and contacts no site. Exit 0 (1 on an error).
//!
//! Must not: judge (`swing_engine::fleet`) or word (`swing_engine::render::fleet`) the table.

use std::path::PathBuf;

use swing_engine::render::fleet as render;

use crate::exit::{CliResult, Exit};

/// Output formats of the fleet table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TableFormat {
    #[default]
    Text,
    /// The fleet view (`outcome`, `failures`, `sites[]` with `site`, `wave`, `state`,
    /// `waiting_for`, `downtime_s`, `unprotected_s`).
    Json,
    Markdown,
}

impl TableFormat {
    pub(super) fn render(self, v: &swing_schema::fleet::FleetView) -> String {
        match self {
            TableFormat::Text => render::text(v),
            TableFormat::Json => render::json(v),
            TableFormat::Markdown => render::markdown(v),
        }
    }
}

/// Arguments of `swing fleet status`.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetStatusArgs {
    /// The fleet's plan files or saved plans, or directories holding them.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub waves: super::WaveArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TableFormat::Text)]
    pub format: TableFormat,
    #[command(flatten)]
    pub state: crate::target::StateArgs,
}

/// Runs `swing fleet status`.
pub fn run(args: &FleetStatusArgs) -> CliResult {
    const P: &str = "swing fleet status";
    let files = super::files(&args.paths, P)?;
    let stores = crate::wiring::Stores::new(args.state.clone());
    let now = swing_engine::time::now_ms();
    let members = super::members(
        &files,
        args.state.state_dir.as_deref(),
        &stores,
        Some(now),
        P,
    )?;
    let facts: Vec<_> = members.into_iter().filter_map(|m| m.facts).collect();
    let rules = args.waves.rules(&[]);
    let states: Vec<_> = facts.iter().map(|f| f.state).collect();
    let j = swing_engine::fleet::judge(&states, &rules);
    // A reader runs nothing: every site counts as tried.
    let v = swing_engine::fleet::view(&facts, &j, j.outcome(&vec![true; facts.len()]), &rules);
    Ok(
        if crate::views::out::write_stdout(&args.format.render(&v)) {
            Exit::Ok
        } else {
            Exit::Error
        },
    )
}
