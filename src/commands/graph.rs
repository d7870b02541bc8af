//! `swing graph FILE [--format dot|mermaid|gantt]`: the step dependency graph of one plan (DOT
//! for Graphviz, a Mermaid flowchart) or the Mermaid Gantt chart of its estimated schedule.
//!
//! Parses, validates, makes one engine call (`swing_engine::view::plan_view`, offline) and
//! renders. Must not: build graphs itself.

use std::path::PathBuf;

use swing_engine::compile::CompileOptions;
use swing_engine::render::{self, Format, RenderOptions};
use swing_engine::validate::check_file;

use crate::exit::{CliError, CliResult, Exit};
use crate::views::out::{report_invalid, write_stdout};

/// Output formats of `swing graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart of the dependencies.
    Mermaid,
    /// Mermaid Gantt chart of the estimated schedule across the windows.
    Gantt,
}

/// Arguments of `swing graph`.
#[derive(Debug, Clone, clap::Args)]
pub struct GraphArgs {
    /// The plan file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

/// Runs `swing graph`.
pub fn run(args: &GraphArgs) -> CliResult {
    let checked = check_file(&args.file);
    if report_invalid("swing graph", std::slice::from_ref(&checked)) {
        return Ok(Exit::Error);
    }
    let Some(plan) = &checked.plan else {
        return Ok(Exit::Error);
    };
    let opts = CompileOptions {
        offline: true,
        file: Some(checked.origin.clone()),
    };
    let view = swing_engine::view::plan_view(plan, &opts)
        .map_err(|e| CliError::prefixed("swing graph", format!("{}: {e}", checked.origin)))?;
    let format = match args.format {
        GraphFormat::Dot => Format::Dot,
        GraphFormat::Mermaid => Format::Mermaid,
        GraphFormat::Gantt => Format::Gantt,
    };
    if write_stdout(&render::render(&view, format, RenderOptions::default())) {
        Ok(Exit::Ok)
    } else {
        Ok(Exit::Error)
    }
}
