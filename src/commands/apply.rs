//! `swing apply [PLANFILE] [--resume] [--confirm STEP]... [--auto-approve] [--output text|json]
//! [--require-signature PUBKEY]`, `swing apply PLANFILE --abandon --reason TEXT`
//!
//! Parses, finds what to apply (`crate::target`), asks for approval of a plan file, wires the
//! providers, makes one engine call (`swing_engine::ops::apply`) and hands the
//! outcome to the view (`crate::views::apply`: spinners on a TTY, one JSON event per line with
//! `--output json`, the report).
//!
//! Exit codes: 0 done or no changes; 1 error, failed step, stale plan, drift; 3 paused for a
//! person or a window (with the exact resume command); 4 another apply holds the lock.
//! Must not: decide what a step does or re-implement engine checks.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use swing_engine::apply::abandon::{AbandonError, AbandonRequest};
use swing_engine::apply::{ApplyError, LockError, WalkOptions};
use swing_engine::ops::{self, SiteApply, SiteError, SiteOutcome};

use crate::exit::{CliError, CliResult, Exit};
use crate::views::Output;
use crate::views::apply::ApplyView;
pub use crate::views::apply::report_text;
use crate::views::prompt::approve;

/// Output of `swing apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ApplyOutput {
    /// Progress and report for people.
    #[default]
    Text,
    /// One JSON event per line.
    Json,
}

/// Arguments of `swing apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApplyArgs {
    /// A saved plan (`swing plan --out FILE`) or a plan file. With --resume it may be left
    /// out: the unfinished apply in the state directory is continued.
    pub file: Option<PathBuf>,
    /// Continue an apply that paused or stopped (re-observes the step that was in flight).
    #[arg(long)]
    pub resume: bool,
    /// Confirm an operator step or gate (repeatable); may be given up front.
    #[arg(long = "confirm", value_name = "STEP")]
    pub confirm: Vec<String>,
    /// Who confirms (recorded with each confirmation). Default: `SWING_ACTOR`, else the CI's
    /// actor (`GITHUB_ACTOR`, `GITLAB_USER_LOGIN`, …), else user@host.
    #[arg(long = "as", value_name = "NAME")]
    pub actor: Option<String>,
    /// Why, or what was done (recorded with each confirmation of this run).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Apply a plan file without asking first. Never skips an operator step or gate that
    /// needs a person.
    #[arg(long)]
    pub auto_approve: bool,
    /// Progress output.
    #[arg(long, value_enum, default_value_t = ApplyOutput::Text)]
    pub output: ApplyOutput,
    /// Without a terminal: how often a step that waits (an install, a person's action) prints
    /// what it waits for, what is observed now and when it gives up (first after 10 s).
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = parse_interval)]
    pub progress_interval: std::time::Duration,
    /// Do not watch the site as a client would while a switch or a restart of the serving
    /// appliance runs (the report then has no measured client downtime).
    #[arg(long)]
    pub no_probe: bool,
    #[command(flatten)]
    pub state: crate::target::StateArgs,
    /// End an apply that cannot go on (journaled, with --reason); the next apply starts fresh.
    #[arg(long, requires = "reason", conflicts_with_all = ["resume", "confirm"])]
    pub abandon: bool,
    /// Why the apply is abandoned (recorded in the journal with who abandoned it).
    #[arg(long, value_name = "TEXT", requires = "abandon")]
    pub reason: Option<String>,
    /// Apply only a saved plan signed (`swing plan --sign`) by this Ed25519 public key: a PEM
    /// file or the PEM text. Default: the environment variable `SWING_REQUIRE_SIGNATURE`.
    #[arg(long, value_name = "PUBKEY")]
    pub require_signature: Option<String>,
}

/// The public key `--require-signature` (or `SWING_REQUIRE_SIGNATURE`) names, if any.
pub(crate) fn required_key(
    arg: Option<&str>,
) -> Result<Option<swing_engine::signing::PublicKey>, CliError> {
    let Some(given) = arg
        .map(str::to_owned)
        .or_else(|| std::env::var("SWING_REQUIRE_SIGNATURE").ok())
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    let (text, origin) = if given.trim_start().starts_with("-----BEGIN") {
        (given, "the --require-signature key".to_owned())
    } else {
        let bytes = swing_engine::load::read_capped(std::path::Path::new(&given))
            .map_err(|e| CliError::msg(format!("--require-signature {given}: {e}")))?;
        (String::from_utf8_lossy(&bytes).into_owned(), given)
    };
    swing_engine::signing::PublicKey::from_pem(&text, &origin)
        .map(Some)
        .map_err(CliError::new)
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = swing_schema::DurationSpec::parse(s).map_err(|e| e.to_string())?;
    if d.secs() == 0 {
        return Err("must be at least 1s".into());
    }
    Ok(std::time::Duration::from_secs(d.secs()))
}

/// Runs `swing apply`.
pub fn run(args: &ApplyArgs) -> CliResult {
    let state = &args.state;
    let t = crate::target::locate(
        args.file.as_deref(),
        args.resume,
        state.state_dir.as_deref(),
        |dir| {
            let store = crate::wiring::store(None, Path::new("."), state, dir)
                .map_err(|e| e.to_string())?;
            let open = store.unfinished().map_err(|e| e.to_string())?;
            Ok((store.describe(), open))
        },
    )
    .map_err(CliError::msg)?;
    if args.abandon {
        let actor = crate::actor::resolve(args.actor.as_deref());
        let store = crate::wiring::store(Some(&t.plan), &t.base_dir, state, &t.state_dir)?;
        return abandon(&t, store, args.reason.clone().unwrap_or_default(), actor);
    }
    let require_signature = required_key(args.require_signature.as_deref())?;
    // Refused from the file alone, before wiring resolves a secret or contacts anything.
    let refused = match &t.saved {
        Some(saved) => ops::trust(saved, require_signature.as_ref()),
        None if require_signature.is_some() => vec![ops::StaleReason::Unsigned],
        None => Vec::new(),
    };
    if !refused.is_empty() {
        return Err(CliError::new(SiteError::Untrusted(refused)));
    }
    let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if t.saved.is_none() && !args.resume && !args.auto_approve {
        if !tty {
            return Err(CliError::msg(format!(
                "applying a plan file needs approval: review `swing plan {}` and pass --auto-approve, or apply a saved plan (swing plan --out FILE)",
                t.source
            )));
        }
        if !approve(&t.plan.name, &t.plan.site) {
            return Err(CliError::msg("apply cancelled"));
        }
    }
    let store = crate::wiring::store(Some(&t.plan), &t.base_dir, state, &t.state_dir)?;
    let output = match args.output {
        ApplyOutput::Text => Output::Human,
        ApplyOutput::Json => Output::Json,
    };
    let view = ApplyView::with_progress_interval(output, tty, args.progress_interval);
    let walk = WalkOptions {
        confirmed: args.confirm.iter().cloned().collect::<BTreeSet<_>>(),
        prompter: (tty && output == Output::Human).then(|| view.prompter()),
        events: view.events(),
        actor: crate::actor::resolve(args.actor.as_deref()),
        note: crate::actor::note(args.note.as_deref()),
        ..WalkOptions::default()
    };
    let (site, source) = (t.plan.site.clone(), t.source.clone());
    let run = SiteRun {
        store,
        resume: args.resume,
        from_journal: false,
        require_signature,
        probe: !args.no_probe,
        walk,
    };
    let result = apply_site(t, run, &crate::runtime()?)?;
    view.finish();
    match result {
        Ok(SiteOutcome::NoChanges) => Ok(view.no_changes()),
        Ok(SiteOutcome::Ran(r)) => Ok(view.ran(&r.report, &r.outcome, &source)),
        // Only a fleet lets the journal decide (`from_journal`).
        Ok(SiteOutcome::OnRecord(s)) => Err(CliError::msg(format!(
            "the journal of {site} says the change is {}",
            s.name()
        ))),
        Err(SiteError::Apply(ApplyError::Locked(
            e @ (LockError::Held { .. } | LockError::HeldUnknown { .. }),
        ))) => Ok(view.locked(&site, &source, &e)),
        Err(e) => Err(CliError::new(e)),
    }
}

/// How one site is applied (by `swing apply`, or by `swing fleet apply` for each site).
pub(crate) struct SiteRun {
    pub store: std::sync::Arc<dyn swing_engine::apply::Store>,
    pub resume: bool,
    /// Let the journal decide whether to start, resume or leave the change (fleets).
    pub from_journal: bool,
    pub require_signature: Option<swing_engine::signing::PublicKey>,
    /// Watch the site as a client would while a step that can take it down runs.
    pub probe: bool,
    /// Confirmations, prompter, events, actor; parallelism, windows, notifiers and the
    /// prober are filled in from the plan.
    pub walk: WalkOptions,
}

/// Wires the providers, notifiers and prober of `t`'s plan and applies it on `rt`. The outer
/// error: the apply could not be set up (nothing was contacted); the inner: the engine's.
pub(crate) fn apply_site(
    t: crate::target::Target,
    run: SiteRun,
    rt: &tokio::runtime::Runtime,
) -> Result<Result<SiteOutcome, SiteError>, CliError> {
    let providers = crate::wiring::build(&t.plan, &t.base_dir)?;
    let notifiers = crate::wiring::notifiers(&t.plan, &t.base_dir)?;
    let probe = if run.probe {
        Some(crate::wiring::probe(&t.plan, &t.base_dir)?)
    } else {
        None
    };
    let walk = WalkOptions {
        parallelism: usize::try_from(t.plan.policy.parallelism)
            .unwrap_or(1)
            .max(1),
        windows: t.plan.windows.clone(),
        notifiers,
        probe,
        ..run.walk
    };
    let req = SiteApply {
        plan: t.plan,
        saved: t.saved,
        source: t.source,
        base_dir: t.base_dir,
        store: run.store,
        resume: run.resume,
        from_journal: run.from_journal,
        require_signature: run.require_signature,
        walk,
    };
    Ok(rt.block_on(ops::apply(req, providers)))
}

/// `--abandon`: one engine call; exit 4 while another apply holds the site.
fn abandon(
    t: &crate::target::Target,
    store: std::sync::Arc<dyn swing_engine::apply::Store>,
    reason: String,
    actor: String,
) -> CliResult {
    let req = AbandonRequest {
        store,
        change: t.plan.name.clone(),
        site: t.plan.site.clone(),
        reason,
        actor,
    };
    match swing_engine::apply::abandon::abandon(&req) {
        Ok(done) => {
            println!(
                "Abandoned the apply of {} (journal kept as {}). The next `swing plan` and `swing apply` start fresh.",
                req.change, done.kept
            );
            Ok(Exit::Ok)
        }
        Err(AbandonError::Apply(ApplyError::Locked(
            e @ (LockError::Held { .. } | LockError::HeldUnknown { .. }),
        ))) => Ok(ApplyView::new(Output::Human, false).locked(&req.site, &t.source, &e)),
        Err(e) => Err(CliError::new(e)),
    }
}
