//! `swing plan FILE|DIR... [--offline] [--format text|markdown|json] [--out PLANFILE]
//! [--detailed-exitcode]`: compile every plan file into its steps, observe the live state
//! through the providers (unless `--offline`), and show what is left to do, in what order, what
//! a person must do, how long it takes and how much downtime it costs.
//!
//! Parses the arguments, validates (`swing_engine::validate::check_paths`), wires the providers
//! (`crate::wiring`, the only place secrets are resolved), makes one engine call per plan
//! (`swing_engine::apply::site::plan_site`: compile, refresh, diff, view, saved plan) and renders
//! the views (`swing_engine::render`). Exit code 0 when every plan can be applied as planned
//! (with `--detailed-exitcode`: 0 no changes, 2 changes), 1 on error findings, drift, or a
//! resource that cannot be observed. Must not: compile, observe, diff or word anything itself.

use std::io::IsTerminal;
use std::path::PathBuf;

use swing_engine::apply::site::{PlannedSite, plan_site};
use swing_engine::render::{self, Format, RenderOptions};
use swing_engine::validate::{Checked, check_paths, expand_paths};

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
    /// Plan without reading live state (no credentials needed): versions from
    /// `current_version`, else unknown; such a saved plan can be reviewed, not applied.
    #[arg(long)]
    pub offline: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
    /// Also save the plan (one plan file only) for review (`swing show`) and `swing apply`.
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

/// Exit code of `--detailed-exitcode` when there are changes.
pub const EXIT_CHANGES: i32 = 2;

/// Runs `swing plan`; returns the exit code.
pub fn run(args: &PlanArgs) -> i32 {
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
    if report_invalid("swing plan", &checked) {
        return 1;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swing plan: cannot start the runtime: {e}");
            return 1;
        }
    };
    let mut planned = Vec::with_capacity(checked.len());
    for c in &checked {
        let Some(plan) = &c.plan else { continue };
        match rt.block_on(plan_one(c, plan, args.offline)) {
            Ok(p) => planned.push(p),
            Err(e) => {
                eprintln!("swing plan: {}: {e}", c.origin);
                return 1;
            }
        }
    }
    let mut blocked = Vec::new();
    for p in &planned {
        let origin = &p.saved.source;
        blocked.extend(
            p.diff
                .unobserved
                .iter()
                .map(|u| format!("{origin}: cannot observe {u}")),
        );
        blocked.extend(p.diff.drift.iter().map(|d| format!("{origin}: drift: {d}")));
    }
    let views: Vec<_> = planned.iter().map(|p| p.view.clone()).collect();
    let color = args.format == PlanFormat::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let text = render::render_many(&views, args.format.engine(), RenderOptions { color });
    if !write_stdout(&text) {
        return 1;
    }
    if let (Some(out), [p]) = (&args.out, planned.as_slice()) {
        if !p.diff.unobserved.is_empty() {
            eprintln!(
                "swing plan: not saved to {}: {} resource(s) could not be observed (below), so the saved plan could not be checked for staleness",
                out.display(),
                p.diff.unobserved.len()
            );
            blocked.push(format!(
                "{}: nothing saved; plan again once everything answers",
                p.saved.source
            ));
        } else if let Err(e) = p.saved.write(out) {
            eprintln!("swing plan: {e}");
            return 1;
        }
    }
    let errors: u32 = views.iter().map(|v| v.summary.errors).sum();
    if errors > 0 {
        eprintln!(
            "swing plan: {errors} error finding{} (see above): the plan cannot be applied as it is",
            if errors == 1 { "" } else { "s" }
        );
        return 1;
    }
    if !blocked.is_empty() {
        for b in &blocked {
            eprintln!("swing plan: {b}");
        }
        eprintln!(
            "swing plan: apply is blocked until the site looks as the plan starts (or the plan is changed to cover it)"
        );
        return 1;
    }
    if args.detailed_exitcode && planned.iter().any(|p| p.diff.has_changes()) {
        return EXIT_CHANGES;
    }
    0
}

/// Compiles one plan and, unless offline, observes its site and diffs.
async fn plan_one(
    c: &Checked,
    plan: &swing_engine::validate::ValidPlan,
    offline: bool,
) -> Result<PlannedSite, String> {
    let base = base_dir(&c.origin)?;
    let providers = if offline {
        None
    } else {
        Some(crate::wiring::build(plan, &base).map_err(|e| {
            format!("{e}\n  (planning against live state needs the providers' credentials; `swing plan --offline` needs none)")
        })?)
    };
    plan_site(plan, &c.origin, &base, providers.as_ref())
        .await
        .map_err(|e| e.to_string())
}

/// The directory a plan's relative paths (backups, `${file:…}`, CA files) are resolved from.
fn base_dir(origin: &str) -> Result<PathBuf, String> {
    let dir = std::path::Path::new(origin)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Prints the diagnostics of every file; true when any file has an error.
pub(crate) fn report_invalid(command: &str, checked: &[Checked]) -> bool {
    for c in checked {
        for d in &c.diagnostics {
            eprintln!("{}", d.to_plain());
        }
    }
    let invalid = checked.iter().filter(|c| c.has_errors()).count();
    if invalid > 0 {
        eprintln!(
            "{command}: {invalid} invalid plan file{}; run `swing validate` for details",
            if invalid == 1 { "" } else { "s" }
        );
    }
    invalid > 0
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
