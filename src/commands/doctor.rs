//! `swing doctor PLAN... [--format text|markdown|json] [--capture DIR [--redact-hostnames]]`:
//! whether each site is ready for its change, meant for days before the window. Observes
//! everything the plan names and makes only read-only probes; changes nothing.
//!
//! Parses the arguments, validates, wires the providers (`crate::wiring`), makes one engine
//! call per plan (`swing_engine::ops::doctor`) and hands the reports to the view
//! (`crate::views::doctor`). Exit 0 when every site is ready, 1 when any check blocks (each
//! named with its fix) or a plan is invalid. Must not: judge, word a check, or observe itself.

use std::path::PathBuf;

use swing_engine::ops;
use swing_engine::validate::{check_paths, expand_paths};

use crate::exit::{CliError, CliResult, Exit};
use crate::views::out::report_invalid;

/// Output formats of `swing doctor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DoctorFormat {
    /// One line per check, the fix under each blocker.
    Text,
    /// A table per site, for a change ticket or a pull request.
    Markdown,
    /// The reports as a JSON list (`format_version` 1).
    Json,
}

/// Arguments of `swing doctor`.
#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// Plan files, or directories holding `*.yaml` / `*.yml` plans.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
    pub format: DoctorFormat,
    /// Also write each appliance's raw API answers under DIR (tokens and secrets redacted),
    /// for a compatibility report.
    #[arg(long, value_name = "DIR")]
    pub capture: Option<PathBuf>,
    /// With --capture: replace the site's and appliances' host names in the answers too.
    #[arg(long, requires = "capture")]
    pub redact_hostnames: bool,
}

/// Runs `swing doctor`.
pub fn run(args: &DoctorArgs) -> CliResult {
    const P: &str = "swing doctor";
    if expand_paths(&args.paths).is_empty() {
        return Err(CliError::prefixed(
            P,
            "no plan files (*.yaml, *.yml) found in the given paths",
        ));
    }
    let checked = check_paths(&args.paths);
    if report_invalid(P, &checked) {
        return Ok(Exit::Error);
    }
    let rt = crate::runtime()
        .map_err(|e| CliError::prefixed(P, format!("cannot start the runtime: {e}")))?;
    let mut reports = Vec::with_capacity(checked.len());
    for c in &checked {
        let Some(plan) = &c.plan else { continue };
        let base = crate::target::base_dir(&c.origin).map_err(|e| CliError::prefixed(P, e))?;
        let providers = crate::wiring::build(plan, &base)
            .map_err(|e| CliError::prefixed(P, format!("{}: {e}", c.origin)))?;
        let now = swing_engine::time::now_ms() / 1000;
        let site = rt
            .block_on(ops::doctor(
                plan,
                &c.origin,
                &base,
                &providers,
                args.capture.is_some(),
                now,
            ))
            .map_err(|e| CliError::prefixed(P, format!("{}: {e}", c.origin)))?;
        if let Some(dir) = &args.capture {
            let hide = if args.redact_hostnames {
                site.hostnames.clone()
            } else {
                Vec::new()
            };
            let files = swing_engine::doctor::capture_files(&plan.site, &site.captured, &hide);
            crate::views::doctor::write_capture(dir, &files)
                .map_err(|e| CliError::prefixed(P, format!("--capture {}: {e}", dir.display())))?;
        }
        reports.push(site.report);
    }
    Ok(crate::views::doctor::show(&reports, args.format))
}
