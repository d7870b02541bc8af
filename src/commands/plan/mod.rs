//! `swing plan FILE|DIR... [--offline] [--format text|markdown|json|github] [--max-chars N]
//! [--summary-file PATH] [--out PLANFILE [--sign KEYREF]] [--detailed-exitcode]`: compile every plan file into its steps, observe the live state
//! through the providers (unless `--offline`), and show what is left to do, in what order, what
//! a person must do, how long it takes and how much downtime it costs.
//!
//! Parses the arguments, validates every file first, then plans them one by one (`files`:
//! a chunk at a time on all cores, written in file order), wires the providers
//! (`crate::wiring`, the only place secrets are resolved), makes one engine call per plan
//! (`swing_engine::ops::plan`: compile, refresh, diff, view, saved plan) and hands
//! the result to the view (`crate::views::plan`). Exit code 0 when every plan can be applied as planned
//! (with `--detailed-exitcode`: 0 no changes, 2 changes), 1 on error findings, drift, or a
//! resource that cannot be observed. Must not: compile, observe, diff or word anything itself.

use std::path::PathBuf;

use swing_engine::render::Format;
use swing_engine::validate::expand_paths;

use crate::exit::{CliError, CliResult, Exit};
use crate::views::plan::PlanView;

pub(crate) mod files;

/// Output formats of `swing plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// Terraform-like text (colour only on a terminal).
    Text,
    /// Markdown for a pull-request comment (at most --max-chars characters).
    Markdown,
    /// The versioned JSON plan view (docs/plan-json.md).
    Json,
    /// GitHub workflow annotations: one per finding, drift and unobservable resource.
    Github,
}

impl PlanFormat {
    fn engine(self) -> Format {
        match self {
            PlanFormat::Text => Format::Text,
            PlanFormat::Markdown => Format::Markdown,
            PlanFormat::Json => Format::Json,
            PlanFormat::Github => Format::Github,
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
    /// Markdown: the most characters to write (GitHub 65,000, Bitbucket 32,768); detail is
    /// cut, never the summary, and a note says what was cut.
    #[arg(long, value_name = "N", default_value_t = swing_engine::render::markdown::MAX_CHARS,
          value_parser = clap::value_parser!(usize))]
    pub max_chars: usize,
    /// Also append the Markdown summary to PATH (e.g. "$GITHUB_STEP_SUMMARY").
    #[arg(long, value_name = "PATH")]
    pub summary_file: Option<PathBuf>,
    /// Also save the plan (one plan file only) for review (`swing show`) and `swing apply`.
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Sign the saved plan (`--out`) with this Ed25519 private key (PKCS#8 PEM), given as a
    /// secret reference: `${env:NAME}` or `${file:PATH}` (relative to the current directory).
    #[arg(long, value_name = "KEYREF", requires = "out")]
    pub sign: Option<String>,
    /// With `--out`: also record the saved plan (digest, signer) in this state store
    /// (`local`, `postgres://…`, `${env:NAME}`; default: the plan's `state`). The local state
    /// keeps no such record: the saved plan file is it.
    #[arg(long, value_name = "URL", requires = "out")]
    pub state: Option<String>,
}

/// Runs `swing plan`.
pub fn run(args: &PlanArgs) -> CliResult {
    const P: &str = "swing plan";
    let files = expand_paths(&args.paths);
    if files.is_empty() {
        return Err(CliError::prefixed(
            P,
            "no plan files (*.yaml, *.yml) found in the given paths",
        ));
    }
    if args.out.is_some() && files.len() != 1 {
        return Err(CliError::prefixed(
            P,
            format!(
                "--out saves one plan; {} plan files were given",
                files.len()
            ),
        ));
    }
    if let Some(out) = &args.out {
        crate::target::refuse_overwriting_an_input(out, &files)
            .map_err(|e| CliError::prefixed(P, e))?;
    }
    let signing_key = match &args.sign {
        Some(r) => Some(signing_key(r).map_err(|e| CliError::prefixed(P, e))?),
        None => None,
    };
    let invalid = files::count_invalid(&files);
    if crate::views::out::invalid_summary(P, invalid) {
        return Ok(Exit::Error);
    }
    let rt = crate::runtime()
        .map_err(|e| CliError::prefixed(P, format!("cannot start the runtime: {e}")))?;
    let view = PlanView {
        format: args.format.engine(),
        max_chars: args.max_chars,
        summary_file: args.summary_file.clone(),
        out: args.out.clone(),
        detailed_exitcode: args.detailed_exitcode,
    };
    let mut shown = view.stream(files.len());
    files::plan_each(&files, args.offline, args.out.is_some(), &rt, |planned| {
        let mut p = planned.map_err(|e| CliError::prefixed(P, e))?;
        if let Some(saved) = &mut p.saved {
            if let Some(key) = &signing_key {
                swing_engine::signing::sign(saved, key)
                    .map_err(|e| CliError::prefixed(P, format!("--sign: {e}")))?;
            }
            record_saved(saved, args.state.clone()).map_err(|e| CliError::prefixed(P, e))?;
        }
        shown.push(p);
        Ok::<(), CliError>(())
    })?;
    Ok(shown.finish())
}

/// Records a saved plan in the state store the plan (or `--state`) names; nothing for the
/// local state, whose record is the saved plan file itself.
pub(crate) fn record_saved(
    saved: &swing_engine::planfile::SavedPlan,
    state: Option<String>,
) -> Result<(), String> {
    let plan = &saved.plan;
    let remote = state.as_deref().is_some_and(|s| s.trim() != "local")
        || (state.is_none()
            && matches!(
                plan.state,
                Some(swing_schema::StateBackend::Postgres { .. })
            ));
    if !remote {
        return Ok(());
    }
    let args = crate::target::StateArgs {
        state,
        state_dir: None,
    };
    let store = crate::wiring::store(Some(plan), &saved.base_dir, &args, &saved.base_dir)
        .map_err(|e| e.to_string())?;
    store
        .record_saved_plan(
            &plan.site,
            &swing_engine::apply::SavedPlanRecord {
                change: plan.name.clone(),
                digest: saved.digest.clone(),
                signer: saved.signature.as_ref().map(|s| s.fingerprint.clone()),
            },
        )
        .map_err(|e| e.to_string())
}

/// Resolves the `--sign` key reference into the secret it names.
pub(crate) fn signing_key(reference: &str) -> Result<swing_schema::SecretValue, String> {
    let r = swing_schema::SecretRef::parse(reference).map_err(|e| {
        format!("--sign {reference}: {e} (give the key as ${{env:NAME}} or ${{file:PATH}})")
    })?;
    let here = std::env::current_dir().map_err(|e| e.to_string())?;
    crate::wiring::resolve(&r, &here, "the --sign key").map_err(|e| e.to_string())
}
