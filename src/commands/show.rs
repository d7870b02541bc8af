//! `swing show PLANFILE [--format text|markdown|json|dot|mermaid|gantt|github] [--max-chars N]
//! [--refresh]`: render a
//! saved plan (`swing plan --out`) — or a JSON plan view (`swing plan --format json`) — again,
//! in any format, without any appliance. A saved plan is marked when it cannot be applied as it
//! is: made `--offline`, modified after it was written, its plan file changed since, or (with
//! `--refresh`, which observes the site through the providers) the world moved since.
//!
//! Must not: recompile or re-plan; it shows exactly the view that was saved.

use std::path::PathBuf;

use swing_engine::ops::Assessment;
use swing_engine::planfile::SavedPlan;
use swing_engine::render::Format;
use swing_schema::output::{OUTPUT_FORMAT_VERSION, PlanView};

use crate::exit::{CliError, CliResult};
use crate::views::show::marks;

/// Output formats of `swing show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Text,
    Markdown,
    Json,
    Dot,
    Mermaid,
    Gantt,
    /// GitHub workflow annotations: one per finding and drift.
    Github,
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
    /// Markdown: the most characters to write; detail is cut, never the summary.
    #[arg(long, value_name = "N", default_value_t = swing_engine::render::markdown::MAX_CHARS)]
    pub max_chars: usize,
    /// Also observe the site (needs the providers' credentials) and mark the saved plan stale
    /// when anything it was made against moved.
    #[arg(long)]
    pub refresh: bool,
}

/// Runs `swing show`.
pub fn run(args: &ShowArgs) -> CliResult {
    const P: &str = "swing show";
    let (view, saved) = read(&args.file).map_err(|e| CliError::prefixed(P, e))?;
    let marks = match (&saved, args.refresh) {
        (Some(saved), refresh) => {
            let assessment = assess(saved, refresh).map_err(|e| CliError::prefixed(P, e))?;
            marks(saved, &assessment)
        }
        (None, true) => {
            return Err(CliError::prefixed(
                P,
                format!(
                    "--refresh needs a saved plan (swing plan --out FILE); {} is a plan view",
                    args.file.display()
                ),
            ));
        }
        (None, false) => Vec::new(),
    };
    let format = match args.format {
        ShowFormat::Text => Format::Text,
        ShowFormat::Markdown => Format::Markdown,
        ShowFormat::Json => Format::Json,
        ShowFormat::Dot => Format::Dot,
        ShowFormat::Mermaid => Format::Mermaid,
        ShowFormat::Gantt => Format::Gantt,
        ShowFormat::Github => Format::Github,
    };
    Ok(crate::views::show::show(
        &view,
        format,
        args.max_chars,
        &marks,
    ))
}

/// Assesses a saved plan, observing the site through the providers when `refresh` is asked
/// for (and the plan was not made offline).
fn assess(saved: &SavedPlan, refresh: bool) -> Result<Assessment, String> {
    let providers = if refresh && !saved.offline {
        Some(crate::wiring::build(&saved.plan, &saved.base_dir).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let rt = crate::runtime().map_err(|e| e.to_string())?;
    Ok(rt.block_on(swing_engine::ops::assess(saved, providers.as_ref())))
}

fn read(path: &std::path::Path) -> Result<(PlanView, Option<SavedPlan>), String> {
    let (view, saved) = if SavedPlan::sniff(path) {
        let saved = SavedPlan::read(path).map_err(|e| e.to_string())?;
        (saved.view.clone(), Some(saved))
    } else {
        let text = swing_engine::load::read_capped(path).map_err(|e| e.to_string())?;
        let v = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "{} is neither a saved plan nor a JSON plan view: {e}",
                path.display()
            )
        })?;
        (v, None)
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
    let view = serde_json::from_value(view)
        .map_err(|e| format!("{}: not a plan view: {e}", path.display()))?;
    Ok((view, saved))
}
