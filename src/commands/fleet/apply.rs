//! `swing fleet apply PATH... [--waves LIST] [--max-failures N] [--concurrency N]
//! [--confirm wave-N]... [--auto-approve] [--state URL] [--format text|json|markdown]`
//!
//! Applies each site of the fleet through the same site apply as `swing apply`, in waves:
//! the engine's fleet judge says, from the sites' journals and locks, which sites may start or
//! go on; this runner applies those (up to `--concurrency` at once), then judges again, until
//! nothing more can happen now. A site whose lock another apply holds (another runner given
//! the same fleet and store) is left to it and waited for; under the site's lock the journal
//! decides whether a site starts, resumes or is already finished, so no site is applied twice.
//! Ends with the fleet's table on standard output.
//!
//! Exit codes: 0 every site done; 1 the failure budget is spent, a site failed or an error;
//! 3 waiting (the next wave's gate, a window, a person).
//! Must not: judge the fleet, or apply a site except through `commands::apply::apply_site`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use swing_engine::apply::{ApplyError, LockError, LockOptions, Outcome, WalkOptions};
use swing_engine::fleet::{FleetOutcome, SiteState, Verdict};
use swing_engine::ops::{SiteError, SiteOutcome};

use super::Member;
use crate::commands::apply::{SiteRun, apply_site, required_key};
use crate::exit::{CliError, CliResult, Exit};
use crate::views::fleet as view;

/// Arguments of `swing fleet apply`.
#[derive(Debug, Clone, clap::Args)]
pub struct FleetApplyArgs {
    /// The fleet's saved plans (`swing fleet plan --out DIR`) or plan files, or directories
    /// holding them.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub waves: super::WaveArgs,
    /// How many sites this runner applies at once.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Pass the gate of a wave (`wave-2`, repeatable; may be given up front). A site's own
    /// steps are confirmed with `swing apply --resume --confirm STEP` on its plan.
    #[arg(long = "confirm", value_name = "wave-N")]
    pub confirm: Vec<String>,
    /// Who runs the fleet (recorded with each site's confirmations). Default as `swing apply`.
    #[arg(long = "as", value_name = "NAME")]
    pub actor: Option<String>,
    /// Why, or what was checked (recorded with each confirmation of this run).
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
    /// Apply plan files (not saved plans) without review. Never passes a gate.
    #[arg(long)]
    pub auto_approve: bool,
    /// Do not watch each site as a client would while a step that can take it down runs.
    #[arg(long)]
    pub no_probe: bool,
    /// Apply only saved plans signed by this Ed25519 public key (as `swing apply`).
    #[arg(long, value_name = "PUBKEY")]
    pub require_signature: Option<String>,
    /// Format of the table printed at the end.
    #[arg(long, value_enum, default_value_t = super::status::TableFormat::Text)]
    pub format: super::status::TableFormat,
    #[command(flatten)]
    pub state: crate::target::StateArgs,
}

/// How one site's turn in this run ended.
enum Turn {
    /// Ran (or resumed): the journal now says how it stands.
    Ran,
    /// Already as planned: nothing to do (no journal is written).
    NoChanges,
    /// Another apply holds its lock.
    Locked,
    /// Refused or could not start (stale or unsigned saved plan, drift, wiring): nothing
    /// was changed; counts as failed.
    Refused(String),
}

/// Runs `swing fleet apply`.
pub fn run(args: &FleetApplyArgs) -> CliResult {
    const P: &str = "swing fleet apply";
    if let Some(bad) = args
        .confirm
        .iter()
        .find(|c| swing_engine::fleet::gates_confirmed([*c]).is_empty())
    {
        return Err(CliError::prefixed(
            P,
            format!(
                "--confirm {bad}: a fleet confirms wave gates (wave-2, wave-3, …); confirm a site's step with `swing apply --resume --confirm STEP` on that site's plan"
            ),
        ));
    }
    let files = super::files(&args.paths, P)?;
    let state_dir = args.state.state_dir.as_deref();
    let key = required_key(args.require_signature.as_deref())?;
    // Refused from the files alone, before any site is contacted or any lock taken.
    let mut refused = Vec::new();
    for f in &files {
        let t = crate::target::locate_file(f, state_dir).map_err(|e| CliError::prefixed(P, e))?;
        let why = match &t.saved {
            Some(saved) => swing_engine::ops::trust(saved, key.as_ref()),
            None if key.is_some() => vec![swing_engine::ops::StaleReason::Unsigned],
            None if !args.auto_approve => {
                refused.push(format!(
                    "{}: a plan file needs review: save the fleet's plans (`swing fleet plan --out DIR`) or pass --auto-approve",
                    t.source
                ));
                continue;
            }
            None => Vec::new(),
        };
        if !why.is_empty() {
            refused.push(format!("{}: {}", t.source, SiteError::Untrusted(why)));
        }
    }
    if !refused.is_empty() {
        return Err(CliError::prefixed(P, refused.join("\n")));
    }
    let stores = crate::wiring::Stores::new(args.state.clone());
    let members = super::members(&files, state_dir, &stores, None, P)?;
    let rules = args.waves.rules(&args.confirm);
    let rt = crate::runtime()
        .map_err(|e| CliError::prefixed(P, format!("cannot start the runtime: {e}")))?;
    let n = members.len();
    let mut tried = vec![false; n];
    let mut held = vec![false; n];
    // What this run learnt that no journal says: a site already as planned, a refusal.
    let mut learnt: Vec<Option<(SiteState, Option<String>)>> = vec![None; n];
    let mut announced = 0;
    loop {
        let states = states(&members, &learnt).map_err(|e| CliError::prefixed(P, e))?;
        let j = swing_engine::fleet::judge(&states, &rules);
        let runnable: Vec<usize> = (0..n)
            .filter(|&i| {
                !tried[i] && !held[i] && matches!(j.verdicts[i], Verdict::Start | Verdict::Resume)
            })
            .collect();
        if runnable.is_empty() {
            let others: Vec<usize> = (0..n)
                .filter(|&i| held[i] || j.verdicts[i] == Verdict::Busy)
                .collect();
            if others.is_empty() {
                break;
            }
            wait_for_others(&members, &others);
            for i in others {
                held[i] = false;
            }
            continue;
        }
        for (k, w) in j.waves.iter().enumerate().skip(announced) {
            if runnable.iter().any(|i| w.contains(i)) {
                let sites: Vec<&str> = w.clone().map(|i| members[i].site.as_str()).collect();
                view::wave(k + 1, j.waves.len(), &sites);
                announced = k + 1;
            }
        }
        let failures = AtomicUsize::new(j.failures);
        let turns = batch(
            &members,
            &runnable,
            &j.verdicts,
            &failures,
            &rules,
            args,
            &key,
            &rt,
        );
        for (i, turn) in turns {
            match turn {
                None => {} // Not started: the budget was spent meanwhile.
                Some(Turn::Ran) => tried[i] = true,
                Some(Turn::NoChanges) => {
                    tried[i] = true;
                    learnt[i] = Some((SiteState::Done, None));
                }
                Some(Turn::Locked) => held[i] = true,
                Some(Turn::Refused(why)) => {
                    tried[i] = true;
                    learnt[i] = Some((SiteState::Failed, Some(why)));
                }
            }
        }
    }
    // The table: what is on record now, with what this run learnt.
    let mut facts = super::facts(&members, state_dir, swing_engine::time::now_ms())?;
    for (f, l) in facts.iter_mut().zip(&learnt) {
        if let Some((state, problem)) = l {
            f.state = *state;
            if problem.is_some() {
                f.status.problem = problem.clone();
            }
        }
    }
    let states: Vec<SiteState> = facts.iter().map(|f| f.state).collect();
    let j = swing_engine::fleet::judge(&states, &rules);
    let outcome = j.outcome(&tried);
    let v = swing_engine::fleet::view(&facts, &j, outcome, &rules);
    if !crate::views::out::write_stdout(&args.format.render(&v)) {
        return Ok(Exit::Error);
    }
    Ok(match outcome {
        FleetOutcome::Done => Exit::Ok,
        FleetOutcome::WaitingForSites | FleetOutcome::WaitingForGate(_) => Exit::Paused,
        FleetOutcome::BudgetSpent
        | FleetOutcome::Failed
        | FleetOutcome::Running
        | FleetOutcome::Ready => Exit::Error,
    })
}

/// Each member's state from its journal and lock (one read of each), unless this run learnt
/// better.
fn states(
    members: &[Member],
    learnt: &[Option<(SiteState, Option<String>)>],
) -> Result<Vec<SiteState>, String> {
    let stale = LockOptions::default().stale_after.as_millis();
    let now = swing_engine::time::now_ms();
    members
        .iter()
        .zip(learnt)
        .map(|(m, l)| {
            if let Some((s, _)) = l {
                return Ok(*s);
            }
            let records = m
                .store
                .records(&m.site, &m.change)
                .map_err(|e| format!("{}: {e}", m.source))?;
            let running = m.store.holder(&m.site).is_some_and(|h| {
                h.holder == m.change
                    && u128::try_from(now.saturating_sub(h.heartbeat_ms)).unwrap_or(0) < stale
            });
            Ok(SiteState::of(&records, running))
        })
        .collect()
}

/// Applies the `runnable` members, up to `--concurrency` at once. A site that would start
/// (not resume) is not started once `failures` exceed the budget.
#[allow(clippy::too_many_arguments)]
fn batch(
    members: &[Member],
    runnable: &[usize],
    verdicts: &[Verdict],
    failures: &AtomicUsize,
    rules: &swing_engine::fleet::Rules,
    args: &FleetApplyArgs,
    key: &Option<swing_engine::signing::PublicKey>,
    rt: &tokio::runtime::Runtime,
) -> Vec<(usize, Option<Turn>)> {
    let next = AtomicUsize::new(0);
    let workers = usize::from(args.concurrency).min(runnable.len()).max(1);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(&i) = runnable.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let spent = rules
                        .max_failures
                        .is_some_and(|m| failures.load(Ordering::SeqCst) > m);
                    let turn = if spent && verdicts[i] == Verdict::Start {
                        view::site_ended(
                            &members[i].site,
                            "not started: the failure budget is spent",
                        );
                        None
                    } else {
                        let (turn, failed) = one(&members[i], args, key, rt);
                        if failed {
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(turn)
                    };
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((i, turn));
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// One site's turn: its apply, the journal deciding whether it starts, resumes or is left.
/// Also says whether the site failed.
fn one(
    m: &Member,
    args: &FleetApplyArgs,
    key: &Option<swing_engine::signing::PublicKey>,
    rt: &tokio::runtime::Runtime,
) -> (Turn, bool) {
    let refused = |why: String| {
        view::site_ended(&m.site, &format!("refused: {why}"));
        (Turn::Refused(why), true)
    };
    let t = match crate::target::locate_file(&m.path, args.state.state_dir.as_deref()) {
        Ok(t) => t,
        Err(e) => return refused(e),
    };
    let run = SiteRun {
        store: m.store.clone(),
        resume: false,
        from_journal: true,
        require_signature: key.clone(),
        probe: !args.no_probe,
        walk: WalkOptions {
            events: view::events(&m.site),
            actor: crate::actor::resolve(args.actor.as_deref()),
            note: crate::actor::note(args.note.as_deref()),
            ..WalkOptions::default()
        },
    };
    match apply_site(t, run, rt) {
        Err(e) => refused(e.to_string()),
        Ok(Err(SiteError::Apply(ApplyError::Locked(
            e @ (LockError::Held { .. } | LockError::HeldUnknown { .. }),
        )))) => {
            view::site_ended(&m.site, &format!("left to another apply: {e}"));
            (Turn::Locked, false)
        }
        Ok(Err(e)) => refused(e.to_string()),
        Ok(Ok(SiteOutcome::NoChanges)) => {
            view::site_ended(&m.site, swing_engine::diff::NO_CHANGES);
            (Turn::NoChanges, false)
        }
        Ok(Ok(SiteOutcome::OnRecord(s))) => {
            view::site_ended(
                &m.site,
                &format!("already {} (its journal says so)", s.name()),
            );
            (Turn::Ran, false)
        }
        Ok(Ok(SiteOutcome::Ran(r))) => match &r.outcome {
            Outcome::Done => {
                view::site_ended(&m.site, "done");
                (Turn::Ran, false)
            }
            Outcome::Paused { waiting } => {
                let w: Vec<String> = waiting.iter().map(|w| w.describe()).collect();
                view::site_ended(&m.site, &format!("paused: {}", w.join("; ")));
                (Turn::Ran, false)
            }
            Outcome::Failed { root_cause, .. } => {
                view::site_ended(
                    &m.site,
                    &format!("failed at {}: {}", root_cause.step, root_cause.message),
                );
                (Turn::Ran, true)
            }
        },
    }
}

/// Waits until another apply no longer holds any of `sites` (its lock released, or its
/// holder gone stale).
fn wait_for_others(members: &[Member], sites: &[usize]) {
    let names: Vec<&str> = sites.iter().map(|&i| members[i].site.as_str()).collect();
    view::waiting_for_others(&names);
    let stale = LockOptions::default().stale_after.as_millis();
    loop {
        let now = swing_engine::time::now_ms();
        let free = sites.iter().any(|&i| {
            members[i].store.holder(&members[i].site).is_none_or(|h| {
                u128::try_from(now.saturating_sub(h.heartbeat_ms)).unwrap_or(0) >= stale
            })
        });
        if free {
            return;
        }
        // Polling the store: another runner's lock has no notification to wait on.
        std::thread::sleep(Duration::from_millis(250));
    }
}
