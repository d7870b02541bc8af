//! `swing graph FILE [--format dot|mermaid|gantt]`: the step dependency graph of one plan (DOT
//! for Graphviz, a Mermaid flowchart) or the Mermaid Gantt chart of its estimated schedule.
//!
//! Parses, validates, makes one engine call (`swing_engine::view::plan_view`, offline) and
//! renders. Must not: build graphs itself.

use std::path::PathBuf;

use swing_engine::compile::CompileOptions;
use swing_engine::render::{self, Format, RenderOptions};
use swing_engine::validate::check_file;

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

/// Runs `swing graph`; returns the exit code.
pub fn run(args: &GraphArgs) -> i32 {
    let checked = check_file(&args.file);
    if super::plan::report_invalid("swing graph", std::slice::from_ref(&checked)) {
        return 1;
    }
    let Some(plan) = &checked.plan else { return 1 };
    let opts = CompileOptions {
        offline: true,
        file: Some(checked.origin.clone()),
    };
    let view = match swing_engine::view::plan_view(plan, &opts) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("swing graph: {}: {e}", checked.origin);
            return 1;
        }
    };
    let format = match args.format {
        GraphFormat::Dot => Format::Dot,
        GraphFormat::Mermaid => Format::Mermaid,
        GraphFormat::Gantt => Format::Gantt,
    };
    if super::plan::write_stdout(&render::render(&view, format, RenderOptions::default())) {
        0
    } else {
        1
    }
}
