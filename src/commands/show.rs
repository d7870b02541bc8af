//! `swing show PLANFILE [--format text|markdown|json|dot|mermaid|gantt] [--refresh]`: render a
//! saved plan (`swing plan --out`) — or a JSON plan view (`swing plan --format json`) — again,
//! in any format, without any appliance. A saved plan is marked when it cannot be applied as it
//! is: made `--offline`, modified after it was written, its plan file changed since, or (with
//! `--refresh`, which observes the site through the providers) the world moved since.
//!
//! Must not: recompile or re-plan; it shows exactly the view that was saved.

use std::path::PathBuf;

use swing_engine::planfile::SavedPlan;
use swing_engine::render::Format;
use swing_schema::output::{OUTPUT_FORMAT_VERSION, PlanView};

use crate::exit::{CliError, CliResult};

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
        (Some(saved), refresh) => marks(saved, refresh).map_err(|e| CliError::prefixed(P, e))?,
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
    };
    Ok(crate::views::show::show(&view, format, &marks))
}

/// What keeps a saved plan from being applied as it is, worded for the reader.
fn marks(saved: &SavedPlan, refresh: bool) -> Result<Vec<String>, String> {
    let mut out = vec![format!(
        "Saved plan of {} made {} by swing {}.",
        saved.source, saved.created, saved.swing_version
    )];
    if saved.offline {
        out.push(
            "OFFLINE: made without observing the site; for review only (run `swing plan --out FILE` without --offline to get an appliable plan)."
                .to_owned(),
        );
    }
    if swing_engine::planfile::plan_digest(&saved.plan) != saved.plan_digest {
        out.push(
            "MODIFIED: the saved plan was changed after it was written; apply refuses it."
                .to_owned(),
        );
    }
    let source = std::path::Path::new(&saved.source);
    let source = if source.is_absolute() || source.exists() {
        source.to_path_buf()
    } else {
        saved.base_dir.join(source.file_name().unwrap_or_default())
    };
    if source.is_file() {
        let now = swing_engine::validate::check_file(&source).plan;
        let same = now
            .as_ref()
            .is_some_and(|p| swing_engine::planfile::plan_digest(p) == saved.plan_digest);
        if !same {
            out.push(format!(
                "STALE: {} changed since this plan was made; plan again.",
                source.display()
            ));
        }
    }
    if refresh && !saved.offline {
        let providers =
            crate::wiring::build(&saved.plan, &saved.base_dir).map_err(|e| e.to_string())?;
        let rt = crate::runtime().map_err(|e| e.to_string())?;
        let observed = rt.block_on(swing_engine::refresh::refresh(&saved.plan, &providers));
        let reasons = saved.stale_reasons(&swing_engine::refresh::Fingerprint::of(&observed));
        if reasons.is_empty() {
            out.push("Current: the site still looks as it did when the plan was made.".to_owned());
        } else {
            out.extend(
                reasons
                    .iter()
                    .map(|r| format!("STALE: {}", r.strip_prefix("stale: ").unwrap_or(r))),
            );
        }
    }
    if !saved.has_changes {
        out.push(swing_engine::diff::NO_CHANGES.to_owned());
    }
    Ok(out)
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
