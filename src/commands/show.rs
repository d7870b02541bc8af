//! `swing show PLANFILE [--format text|markdown|json|dot|mermaid|gantt|github] [--max-chars N]
//! [--refresh]`: render a
//! saved plan (`swing plan --out`) — or a JSON plan view (`swing plan --format json`) — again,
//! in any format, without any appliance. A saved plan is marked when it cannot be applied as it
//! is: made `--offline`, modified after it was written, its plan file changed since, or (with
//! `--refresh`, which observes the site through the providers) the world moved since; and it
//! says who signed it and whether the signature verifies.
//!
//! Renders what applying the saved plan would run: the stored view while the digest covers it,
//! the embedded plan compiled again (`ops::view_to_run`) when it was modified. Must not: re-plan
//! against the world, or contact anything for a modified plan.

use std::path::PathBuf;

use swing_engine::ops::{self, Assessment};
use swing_engine::planfile::SavedPlan;
use swing_engine::render::Format;
use swing_engine::validate::ValidPlan;
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
    if !SavedPlan::sniff(&args.file) {
        if args.refresh {
            return Err(CliError::prefixed(
                P,
                format!(
                    "--refresh needs a saved plan (swing plan --out FILE); {} is a plan view",
                    args.file.display()
                ),
            ));
        }
        let view = read_view(&args.file).map_err(|e| CliError::prefixed(P, e))?;
        return Ok(crate::views::show::show(
            &view,
            format(args.format),
            args.max_chars,
            &[],
        ));
    }
    let saved = SavedPlan::read(&args.file).map_err(|e| CliError::prefixed(P, e))?;
    // The plan that would run, validated exactly like a plan file.
    let plan = saved.valid_plan().map_err(|c| {
        CliError::prefixed(
            P,
            format!(
                "the plan embedded in {} is not valid ({} problem(s)); make the saved plan again",
                args.file.display(),
                c.diagnostics.len()
            ),
        )
    })?;
    // Intact: the stored view is covered by the digest, so it is the one the plan was made
    // with. Modified: render what applying it would run, never the stored view.
    let view = if saved.is_intact() {
        parse_view(saved.view.clone(), &args.file).map_err(|e| CliError::prefixed(P, e))?
    } else {
        ops::view_to_run(&saved, &plan).map_err(|e| CliError::prefixed(P, e))?
    };
    let assessment = assess(&saved, &plan, args.refresh).map_err(|e| CliError::prefixed(P, e))?;
    let marks = marks(&saved, &assessment);
    Ok(crate::views::show::show(
        &view,
        format(args.format),
        args.max_chars,
        &marks,
    ))
}

fn format(f: ShowFormat) -> Format {
    match f {
        ShowFormat::Text => Format::Text,
        ShowFormat::Markdown => Format::Markdown,
        ShowFormat::Json => Format::Json,
        ShowFormat::Dot => Format::Dot,
        ShowFormat::Mermaid => Format::Mermaid,
        ShowFormat::Gantt => Format::Gantt,
        ShowFormat::Github => Format::Github,
    }
}

/// Assesses a saved plan, observing the site through the providers when `refresh` is asked
/// for — only for an intact plan that was not made offline: an edited plan (its addresses,
/// its `base_dir`) must not make a review command contact anything or run anything.
fn assess(saved: &SavedPlan, plan: &ValidPlan, refresh: bool) -> Result<Assessment, String> {
    let providers = if refresh && !saved.offline && saved.is_intact() {
        Some(crate::wiring::build(plan, &saved.base_dir).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let rt = crate::runtime().map_err(|e| e.to_string())?;
    Ok(rt.block_on(ops::assess(saved, plan, providers.as_ref())))
}

fn read_view(path: &std::path::Path) -> Result<PlanView, String> {
    let text = swing_engine::load::read_capped(path).map_err(|e| e.to_string())?;
    let v = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{} is neither a saved plan nor a JSON plan view: {e}",
            path.display()
        )
    })?;
    parse_view(v, path)
}

fn parse_view(view: serde_json::Value, path: &std::path::Path) -> Result<PlanView, String> {
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
