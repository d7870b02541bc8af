//! `swing fleet plan|apply|status PATH...`: many sites, each its own plan file or saved plan
//! (a directory stands for its `*.yaml`, `*.yml` and `*.json` files and the saved plan
//! `<site>/plan.json` of each subdirectory, as `fleet plan --out` writes them), changed in waves with a
//! canary first, a gate between waves, a failure budget and a status table. Each site keeps
//! its own lock and journal in its state store (`--state` or the plan's `state`), so a fleet
//! run can stop and go on anywhere, and several runners given the same fleet and store share
//! the sites without applying one twice.
//!
//! Owns: the fleet's command line, turning paths into the fleet's sites and the check that
//! no two sites would share a lock or a journal. Must not: judge the fleet
//! (`swing_engine::fleet`), word its table (`swing_engine::render::fleet`) or apply a site
//! other than through `commands::apply::apply_site`.

mod apply;
mod plan;
mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use swing_engine::apply::Store;
use swing_engine::fleet::Rules;

use crate::exit::{CliError, CliResult};

/// Arguments of `swing fleet`.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// The subcommands of `swing fleet`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum FleetCommand {
    /// Plan every site and show the waves; `--out DIR` saves each site's plan for
    /// `swing fleet apply`.
    #[command(
        after_help = "Examples:\n  swing fleet plan --waves 1,10%,100% plans/\n  swing fleet plan --out saved/ --sign '${env:SWING_SIGNING_KEY}' plans/\n  swing fleet plan --offline --format markdown plans/ >> pr-comment.md"
    )]
    Plan(plan::FleetPlanArgs),
    /// Apply every site in waves: the canary first, a gate between waves, a failure budget.
    #[command(
        after_help = "Examples:\n  swing fleet apply --waves 1,10%,100% --max-failures 0 saved/\n  swing fleet apply --waves 1,10%,100% --confirm wave-2 saved/     # after checking the canary\n  swing fleet apply --state '${env:SWING_STATE_URL}' --concurrency 4 saved/   # on several runners at once\n\nExit codes: 0 every site done, 1 the failure budget is spent, a site failed or an error, 3 waiting (a wave's gate, a window, a person)."
    )]
    Apply(apply::FleetApplyArgs),
    /// Where every site of a fleet stands: wave, state, phase, what it waits for, downtime.
    #[command(
        after_help = "Examples:\n  swing fleet status saved/\n  swing fleet status --format json --state '${env:SWING_STATE_URL}' saved/\n  swing fleet status --waves 1,10%,100% --max-failures 0 --format markdown saved/ >> ticket.md"
    )]
    Status(status::FleetStatusArgs),
}

/// How the sites are split into waves and how many may fail (`fleet apply` and `status`).
#[derive(Debug, Clone, clap::Args)]
pub struct WaveArgs {
    /// How many sites have been started by the end of each wave: counts or shares of the
    /// fleet, e.g. `1,10%,100%` (the first wave is the canary). Sites beyond the last entry
    /// form one more wave. Default: one wave of every site.
    #[arg(long, value_name = "LIST", default_value = "100%",
          value_parser = |s: &str| s.parse::<swing_engine::fleet::Waves>())]
    pub waves: swing_engine::fleet::Waves,
    /// The failure budget: once more than N sites have failed, no further site starts.
    /// Default: no budget.
    #[arg(long, value_name = "N")]
    pub max_failures: Option<usize>,
}

impl WaveArgs {
    fn rules(&self, confirmed: &[String]) -> Rules {
        Rules {
            waves: self.waves.clone(),
            max_failures: self.max_failures,
            gates: swing_engine::fleet::gates_confirmed(confirmed),
        }
    }
}

/// Runs `swing fleet`.
pub fn run(args: &FleetArgs) -> CliResult {
    match &args.command {
        FleetCommand::Plan(a) => plan::run(a),
        FleetCommand::Apply(a) => apply::run(a),
        FleetCommand::Status(a) => status::run(a),
    }
}

/// The file name of a site's saved plan in its directory (`fleet plan --out DIR` writes
/// `DIR/<site>/plan.json`, so each keeps its local state apart).
const SAVED_PLAN: &str = "plan.json";

/// The files `paths` stand for: files as given, directories expanded to their `*.yaml`,
/// `*.yml` and `*.json` files and their subdirectories' `plan.json`, in sorted order.
fn files(paths: &[PathBuf], prefix: &str) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p)
            .map_err(|e| CliError::prefixed(prefix, format!("{}: {e}", p.display())))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter_map(|f| {
                if f.is_dir() {
                    return Some(f.join(SAVED_PLAN)).filter(|p| p.is_file());
                }
                matches!(
                    f.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
                .then_some(f)
            })
            .collect();
        found.sort();
        out.extend(found);
    }
    if out.is_empty() {
        return Err(CliError::prefixed(
            prefix,
            "no plan files (*.yaml, *.yml, *.json) found in the given paths",
        ));
    }
    Ok(out)
}

/// One site of a fleet: where its plan is and where its state lives. The plan itself is read
/// again when the site is applied, so a fleet's plans are not held at once.
pub(crate) struct Member {
    pub path: PathBuf,
    pub source: String,
    pub site: String,
    pub change: String,
    pub store: Arc<dyn Store>,
    /// What is on record of it, when asked for while loading (`swing fleet status`).
    pub facts: Option<swing_engine::fleet::SiteFacts>,
}

/// The sites of `files`, in order, each with its store (`stores`) and, with `facts_at`
/// (the engine clock), what is on record of it: every file must be a valid plan or saved
/// plan, and no two may name one site or write one journal.
fn members(
    files: &[PathBuf],
    state_dir: Option<&Path>,
    stores: &crate::wiring::Stores,
    facts_at: Option<i64>,
    prefix: &str,
) -> Result<Vec<Member>, CliError> {
    let mut members = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    let _ = crate::fleet::for_each_ordered(
        files,
        |f| -> Result<Member, String> {
            let t = crate::target::locate_file(f, state_dir)?;
            let store = stores.for_target(&t).map_err(|e| e.to_string())?;
            let facts = match facts_at {
                Some(now) => Some(
                    swing_engine::ops::fleet_site(&t.plan, &t.source, store.as_ref(), now)
                        .map_err(|e| format!("{}: {e}", t.source))?,
                ),
                None => None,
            };
            Ok(Member {
                facts,
                path: f.clone(),
                source: t.source,
                site: t.plan.site.clone(),
                change: t.plan.name.clone(),
                store,
            })
        },
        |r| {
            match r {
                Ok(m) => members.push(m),
                Err(e) => problems.push(e),
            }
            Ok::<(), ()>(())
        },
    );
    // Each site, and each journal, belongs to the first plan naming it.
    let mut sites = std::collections::HashMap::new();
    let mut journals = std::collections::HashMap::new();
    for (i, m) in members.iter().enumerate() {
        let first = &members[*sites.entry(m.site.as_str()).or_insert(i)];
        if !std::ptr::eq(first, m) {
            problems.push(format!(
                "{} and {} are both the site {}: a fleet changes each site once; remove one",
                first.source, m.source, m.site
            ));
            continue;
        }
        let first = &members[*journals
            .entry(m.store.journal_id(&m.site, &m.change))
            .or_insert(i)];
        if !std::ptr::eq(first, m) {
            problems.push(format!(
                "{} and {} would write one journal (change {} in {}): give the plans different names or their own directories",
                first.source,
                m.source,
                m.change,
                m.store.describe()
            ));
        }
    }
    if problems.is_empty() {
        Ok(members)
    } else {
        Err(CliError::prefixed(prefix, problems.join("\n")))
    }
}

/// What is on record of every member, in order (their plans compiled offline, journals and
/// locks read), a chunk at a time on all cores.
fn facts(
    members: &[Member],
    state_dir: Option<&Path>,
    now_ms: i64,
) -> Result<Vec<swing_engine::fleet::SiteFacts>, CliError> {
    let mut out = Vec::with_capacity(members.len());
    crate::fleet::for_each_ordered(
        members,
        |m| -> Result<_, String> {
            let t = crate::target::locate_file(&m.path, state_dir)?;
            swing_engine::ops::fleet_site(&t.plan, &t.source, m.store.as_ref(), now_ms)
                .map_err(|e| format!("{}: {e}", m.source))
        },
        |r| {
            out.push(r.map_err(CliError::msg)?);
            Ok::<(), CliError>(())
        },
    )?;
    Ok(out)
}
