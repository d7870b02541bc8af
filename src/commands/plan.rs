//! `swing plan FILE|DIR... --offline [--format text|markdown|json] [--out PLANFILE]`: compile
//! every plan file into its steps and show what will happen, in what order, what a person must
//! do, how long it takes and how much downtime it costs.
//!
//! Parses the arguments, validates (`swing_engine::validate::check_paths`), makes one engine
//! call per plan (`swing_engine::view::plan_view`) and renders the views
//! (`swing_engine::render`). Exit code 0 when every plan compiled without error findings, 1
//! otherwise. Must not: compile, estimate or word anything itself.

use std::io::IsTerminal;
use std::path::PathBuf;

use swing_engine::compile::CompileOptions;
use swing_engine::planfile::SavedPlan;
use swing_engine::render::{self, Format, RenderOptions};
use swing_engine::validate::{Checked, check_paths, expand_paths};
use swing_schema::output::PlanView;

/// Output formats of `swing plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Terraform-like text (colour only on a terminal).
    Text,
    /// Markdown for a pull-request comment (under 65,000 characters).
    Markdown,
    /// The versioned JSON plan view (docs/plan-json.md).
    Json,
}

impl PlanFormat {
    fn engine(self) -> Format {
        match self {
            PlanFormat::Text => Format::Text,
            PlanFormat::Markdown => Format::Markdown,
            PlanFormat::Json => Format::Json,
        }
    }
}

/// Arguments of `swing plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// Plan files, or directories holding `*.yaml` / `*.yml` plans (a fleet of sites).
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Plan without reading live state: versions from `current_version`, else unknown.
    #[arg(long)]
    pub offline: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also save the plan (one plan file only) for `swing show` and review.
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
}

/// Runs `swing plan`; returns the exit code.
pub fn run(args: &PlanArgs) -> i32 {
    if !args.offline {
        eprintln!(
            "swing plan: planning against live state is not available in this build; run with --offline (versions from current_version, others known after refresh)"
        );
        return 1;
    }
    let files = expand_paths(&args.paths);
    if files.is_empty() {
        eprintln!("swing plan: no plan files (*.yaml, *.yml) found in the given paths");
        return 1;
    }
    if args.out.is_some() && files.len() != 1 {
        eprintln!(
            "swing plan: --out saves one plan; {} plan files were given",
            files.len()
        );
        return 1;
    }
    let checked = check_paths(&args.paths);
    if report_invalid(&checked) {
        return 1;
    }
    let mut views = Vec::with_capacity(checked.len());
    for c in &checked {
        let Some(plan) = &c.plan else { continue };
        let opts = CompileOptions {
            offline: true,
            file: Some(c.origin.clone()),
        };
        match swing_engine::view::plan_view(plan, &opts) {
            Ok(v) => views.push(v),
            Err(e) => {
                eprintln!("swing plan: {}: {e}", c.origin);
                return 1;
            }
        }
    }
    if let (Some(out), [view], [c]) = (&args.out, views.as_slice(), checked.as_slice())
        && let Err(e) = save(out, c, view)
    {
        eprintln!("swing plan: {e}");
        return 1;
    }
    let color = args.format == PlanFormat::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let text = render::render_many(&views, args.format.engine(), RenderOptions { color });
    if !super::plan::write_stdout(&text) {
        return 1;
    }
    let errors: u32 = views.iter().map(|v| v.summary.errors).sum();
    if errors > 0 {
        eprintln!(
            "swing plan: {errors} error finding{} (see above): the plan cannot be applied as it is",
            if errors == 1 { "" } else { "s" }
        );
        return 1;
    }
    0
}

/// Prints the diagnostics of every file; true when any file has an error.
pub(crate) fn report_invalid(checked: &[Checked]) -> bool {
    for c in checked {
        for d in &c.diagnostics {
            eprintln!("{}", d.to_plain());
        }
    }
    let invalid = checked.iter().filter(|c| c.has_errors()).count();
    if invalid > 0 {
        eprintln!(
            "swing plan: {invalid} invalid plan file{}; run `swing validate` for details",
            if invalid == 1 { "" } else { "s" }
        );
    }
    invalid > 0
}

fn save(out: &std::path::Path, c: &Checked, view: &PlanView) -> Result<(), String> {
    let Some(plan) = &c.plan else {
        return Err(format!("{}: no valid plan to save", c.origin));
    };
    let dir = std::path::Path::new(&c.origin)
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(std::path::Path::new("."));
    let base = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let value = serde_json::to_value(view).map_err(|e| e.to_string())?;
    let steps = view.steps.iter().map(|s| s.id.clone()).collect();
    let saved = SavedPlan::new(
        plan,
        &c.origin,
        &base,
        true,
        steps,
        Vec::new(),
        Default::default(),
        value,
    );
    saved.write(out).map_err(|e| e.to_string())
}

/// Writes rendered output to stdout; a closed pipe (`| head`) is not an error. False on failure.
pub(crate) fn write_stdout(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            eprintln!("swing: cannot write output: {e}");
            false
        }
    }
}
