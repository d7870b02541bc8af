//! `swing fleet plan PATH... [--waves LIST] [--offline] [--out DIR [--sign KEYREF]]
//! [--format text|json|markdown]`: plans every site of a fleet (observing each unless
//! `--offline`), one file at a time as `swing plan DIR` does, and shows the steps each still
//! needs by wave; `--out DIR` writes each site's saved plan as `DIR/<site>/plan.json`
//! for `swing fleet apply DIR`. Exit 0, or 1 when a plan has errors or a site cannot be
//! applied as it is (drift, something not observed: nothing is saved for that site).
//!
//! Must not: word the table (`swing_engine::render::fleet`) or plan a site differently from
//! `swing plan`.

use std::path::PathBuf;

use swing_engine::render::fleet as render;
use swing_schema::fleet::{FleetPlanSite, FleetPlanView};

use crate::commands::plan::{files as plan_files, record_saved, signing_key};
use crate::exit::{CliError, CliResult, Exit};

/// Arguments of `swing fleet plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetPlanArgs {
    /// The fleet's plan files, or directories holding `*.yaml` / `*.yml` plans.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// How many sites have been started by the end of each wave (as `fleet apply`).
    #[arg(long, value_name = "LIST", default_value = "100%",
          value_parser = |s: &str| s.parse::<swing_engine::fleet::Waves>())]
    pub waves: swing_engine::fleet::Waves,
    /// Plan without reading live state (such saved plans can be reviewed, not applied).
    #[arg(long)]
    pub offline: bool,
    /// Save each site's plan into this directory (not one holding the plan files).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Sign each saved plan with this Ed25519 private key, a secret reference
    /// (`${env:NAME}` or `${file:PATH}`).
    #[arg(long, value_name = "KEYREF", requires = "out")]
    pub sign: Option<String>,
    /// Also record each saved plan in this state store (default: each plan's `state`).
    #[arg(long, value_name = "URL", requires = "out")]
    pub state: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = super::status::TableFormat::Text)]
    pub format: super::status::TableFormat,
}

/// Runs `swing fleet plan`.
pub fn run(args: &FleetPlanArgs) -> CliResult {
    const P: &str = "swing fleet plan";
    let files = swing_engine::validate::expand_paths(&args.paths);
    if files.is_empty() {
        return Err(CliError::prefixed(
            P,
            "no plan files (*.yaml, *.yml) found in the given paths",
        ));
    }
    if let Some(out) = &args.out {
        refuse_out_dir(out, &files).map_err(|e| CliError::prefixed(P, e))?;
    }
    let signing_key = match &args.sign {
        Some(r) => Some(signing_key(r).map_err(|e| CliError::prefixed(P, e))?),
        None => None,
    };
    let invalid = plan_files::count_invalid(&files);
    if crate::views::out::invalid_summary(P, invalid) {
        return Ok(Exit::Error);
    }
    let rt = crate::runtime()
        .map_err(|e| CliError::prefixed(P, format!("cannot start the runtime: {e}")))?;
    let waves = args.waves.split(files.len());
    let mut sites = Vec::with_capacity(files.len());
    let mut blocked = false;
    let mut seen = std::collections::HashMap::new();
    plan_files::plan_each(&files, args.offline, args.out.is_some(), &rt, |planned| {
        let mut p = planned.map_err(|e| CliError::prefixed(P, e))?;
        let site = p.compiled.plan.site.clone();
        if let Some(first) = seen.insert(site.clone(), p.source.clone()) {
            return Err(CliError::prefixed(
                P,
                format!(
                    "{first} and {} are both the site {site}: a fleet changes each site once; remove one",
                    p.source
                ),
            ));
        }
        let s = &p.view.summary;
        let errors = s.errors;
        let mut row = FleetPlanSite {
            site,
            change: p.compiled.plan.name.clone(),
            plan: p.source.clone(),
            wave: swing_engine::fleet::wave_of(&waves, sites.len()),
            steps_needed: p.diff.needed.len(),
            steps_total: p.compiled.steps.len(),
            estimate_s: s.estimate_s,
            downtime_s: s.downtime_s,
            unprotected_s: s.unprotected_s,
            drift: p.diff.drift.clone(),
            unobserved: p.diff.unobserved.clone(),
            errors,
            saved: None,
        };
        blocked |= errors > 0 || !row.drift.is_empty() || !row.unobserved.is_empty();
        if let (Some(dir), Some(saved)) = (&args.out, &mut p.saved)
            && row.unobserved.is_empty()
        {
            if let Some(key) = &signing_key {
                swing_engine::signing::sign(saved, key)
                    .map_err(|e| CliError::prefixed(P, format!("--sign: {e}")))?;
            }
            // A directory per site: each saved plan keeps its local state (`.swing/`) apart.
            let site_dir = dir.join(dir_name(&row.site));
            std::fs::create_dir_all(&site_dir)
                .map_err(|e| CliError::prefixed(P, format!("--out {}: {e}", site_dir.display())))?;
            let path = site_dir.join(super::SAVED_PLAN);
            saved
                .write(&path)
                .map_err(|e| CliError::prefixed(P, e.to_string()))?;
            record_saved(saved, args.state.clone()).map_err(|e| CliError::prefixed(P, e))?;
            row.saved = Some(path.display().to_string());
        }
        sites.push(row);
        Ok::<(), CliError>(())
    })?;
    let v = FleetPlanView {
        format_version: 1,
        waves: swing_engine::fleet::wave_views(&waves),
        sites,
    };
    let text = match args.format {
        super::status::TableFormat::Text => render::plan_text(&v),
        super::status::TableFormat::Json => render::plan_json(&v),
        super::status::TableFormat::Markdown => render::plan_markdown(&v),
    };
    if !crate::views::out::write_stdout(&text) || blocked {
        return Ok(Exit::Error);
    }
    Ok(Exit::Ok)
}

/// The directory of a site's saved plan: the site (unique in a fleet), every character but
/// letters, digits, `.`, `-` and `_` written `_`.
fn dir_name(site: &str) -> String {
    let stem: String = site
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = stem.trim_start_matches('.');
    if stem.is_empty() {
        "site".to_owned()
    } else {
        stem.to_owned()
    }
}

/// `--out` must be a directory (made if missing) that holds none of the plan files: the
/// saved plans would otherwise sit beside the plans they came from, and `fleet apply DIR`
/// would see each site twice.
fn refuse_out_dir(out: &std::path::Path, files: &[PathBuf]) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("--out {}: {e}", out.display()))?;
    let o = std::fs::canonicalize(out).map_err(|e| format!("--out {}: {e}", out.display()))?;
    for f in files {
        let dir = f
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        if std::fs::canonicalize(dir).is_ok_and(|d| d == o) {
            return Err(format!(
                "--out {} holds the plan file {}: save the fleet's plans into a directory of their own, e.g. --out saved/",
                out.display(),
                f.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn saved_plans_are_named_by_their_site_and_stay_in_the_directory() {
        assert_eq!(super::dir_name("pra.example.com"), "pra.example.com");
        assert_eq!(super::dir_name("../etc/x"), "_etc_x");
        assert_eq!(super::dir_name("a b/c"), "a_b_c");
        assert_eq!(super::dir_name(".."), "site");
    }
}
