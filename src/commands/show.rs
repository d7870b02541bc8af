//! `swing show PLANFILE [--format text|markdown|json|dot|mermaid|gantt]`: render a saved plan
//! (`swing plan --out`) — or a JSON plan view (`swing plan --format json`) — again, in any
//! format, without the plan file or any appliance.
//!
//! Must not: recompile; it shows exactly the view that was saved.

use std::io::IsTerminal;
use std::path::PathBuf;

use swing_engine::planfile::SavedPlan;
use swing_engine::render::{self, Format, RenderOptions};
use swing_schema::output::{OUTPUT_FORMAT_VERSION, PlanView};

/// Output formats of `swing show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Text,
    Markdown,
    Json,
    Dot,
    Mermaid,
    Gantt,
}

/// Arguments of `swing show`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// A saved plan (`swing plan --out`) or a JSON plan view.
    #[arg(value_name = "PLANFILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
    pub format: ShowFormat,
}

/// Runs `swing show`; returns the exit code.
pub fn run(args: &ShowArgs) -> i32 {
    let view = match read(&args.file) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("swing show: {e}");
            return 1;
        }
    };
    let format = match args.format {
        ShowFormat::Text => Format::Text,
        ShowFormat::Markdown => Format::Markdown,
        ShowFormat::Json => Format::Json,
        ShowFormat::Dot => Format::Dot,
        ShowFormat::Mermaid => Format::Mermaid,
        ShowFormat::Gantt => Format::Gantt,
    };
    let color = format == Format::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    if super::plan::write_stdout(&render::render(&view, format, RenderOptions { color })) {
        0
    } else {
        1
    }
}

fn read(path: &std::path::Path) -> Result<PlanView, String> {
    let view = if SavedPlan::sniff(path) {
        SavedPlan::read(path).map_err(|e| e.to_string())?.view
    } else {
        let text = swing_engine::load::read_capped(path).map_err(|e| e.to_string())?;
        serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{} is neither a saved plan nor a JSON plan view: {e}",
                path.display()
            )
        })?
    };
    let found = view
        .get("format_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if found != u64::from(OUTPUT_FORMAT_VERSION) {
        return Err(format!(
            "{} holds a plan view of format version {found}; this swing reads version {OUTPUT_FORMAT_VERSION}",
            path.display()
        ));
    }
    serde_json::from_value(view).map_err(|e| format!("{}: not a plan view: {e}", path.display()))
}
