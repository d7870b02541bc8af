//! `swing apply [PLANFILE] [--resume] [--confirm STEP]... [--auto-approve] [--output text|json]`
//!
//! Parses, loads the saved plan (or a plan file), wires the providers, makes one engine call
//! (`swing_engine::apply::site::apply_site`) and shows progress: indicatif spinners on a TTY,
//! one JSON event per line with `--output json`, and the final report.
//!
//! Exit codes: 0 done or no changes; 1 error, failed step, stale plan, drift; 3 paused for a
//! person or a window (with the exact resume command); 4 another apply holds the lock.
//! Must not: decide what a step does or re-implement engine checks.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swing_engine::apply::site::{SiteApply, SiteError, SiteOutcome, apply_site};
use swing_engine::apply::{
    ApplyError, ApplyEvent, ApplyReport, LockError, Outcome, Prompter, StepSpec, WaitReason,
    WalkOptions,
};
use swing_engine::planfile::SavedPlan;

/// Exit code: paused, waiting for a person or a window.
pub const EXIT_PAUSED: i32 = 3;
/// Exit code: another apply holds the lock.
pub const EXIT_LOCKED: i32 = 4;

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
    /// Apply a plan file without asking first. Never skips an operator step or gate that
    /// needs a person.
    #[arg(long)]
    pub auto_approve: bool,
    /// Progress output.
    #[arg(long, value_enum, default_value_t = ApplyOutput::Text)]
    pub output: ApplyOutput,
    /// State directory (journal, lock). Default: `.swing/` next to the plan.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

fn eprintln_err(msg: impl std::fmt::Display) {
    eprintln!("error: {msg}");
}

/// Runs `swing apply`; returns the exit code.
pub fn run(args: &ApplyArgs) -> i32 {
    match run_inner(args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln_err(msg);
            1
        }
    }
}

/// What apply was pointed at.
struct Target {
    plan: swing_engine::validate::ValidPlan,
    saved: Option<SavedPlan>,
    source: String,
    base_dir: PathBuf,
    state_dir: PathBuf,
}

fn locate(args: &ApplyArgs) -> Result<Target, String> {
    let file = match (&args.file, args.resume) {
        (Some(f), _) => f.clone(),
        (None, true) => {
            let state = args
                .state_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(".swing"));
            let open = swing_engine::apply::unfinished(&state).map_err(|e| e.to_string())?;
            match open.as_slice() {
                [(_, Some(src))] => PathBuf::from(src),
                [] => return Err(format!("nothing to resume in {}", state.display())),
                [(change, None)] => {
                    return Err(format!(
                        "the journal of {change} does not name its plan file"
                    ));
                }
                _ => {
                    let names: Vec<&str> = open.iter().map(|(c, _)| c.as_str()).collect();
                    return Err(format!(
                        "several unfinished applies in {}: {}; name the plan file",
                        state.display(),
                        names.join(", ")
                    ));
                }
            }
        }
        (None, false) => {
            return Err("name a saved plan (swing plan --out FILE) or a plan file".into());
        }
    };
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| swing_engine::apply::default_state_dir(&file));
    let source = file.display().to_string();
    if SavedPlan::sniff(&file) {
        let saved = SavedPlan::read(&file).map_err(|e| e.to_string())?;
        let plan = saved.valid_plan().map_err(|c| {
            format!(
                "the plan embedded in {source} is not valid ({} problem(s)); make the saved plan again",
                c.diagnostics.len()
            )
        })?;
        return Ok(Target {
            plan,
            base_dir: saved.base_dir.clone(),
            saved: Some(saved),
            source,
            state_dir,
        });
    }
    let checked = swing_engine::validate::check_file(&file);
    let Some(plan) = checked.plan else {
        let n = checked.diagnostics.len();
        return Err(format!(
            "{source} is not a valid plan ({n} problem(s)); run `swing validate {source}`"
        ));
    };
    let base_dir = std::path::absolute(
        file.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )
    .map_err(|e| e.to_string())?;
    Ok(Target {
        plan,
        saved: None,
        source,
        base_dir,
        state_dir,
    })
}

fn run_inner(args: &ApplyArgs) -> Result<i32, String> {
    let t = locate(args)?;
    let tty = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if t.saved.is_none() && !args.resume && !args.auto_approve {
        if !tty {
            return Err(format!(
                "applying a plan file needs approval: review `swing plan {}` and pass --auto-approve, or apply a saved plan (swing plan --out FILE)",
                t.source
            ));
        }
        print!(
            "Apply {} to {}? Only 'yes' is accepted: ",
            t.plan.name, t.plan.site
        );
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        if line.trim() != "yes" {
            return Err("apply cancelled".into());
        }
    }
    let providers = crate::wiring::build(&t.plan, &t.base_dir).map_err(|e| e.to_string())?;
    let json = args.output == ApplyOutput::Json;
    let progress = Arc::new(Progress::new(json, tty));
    let sink = progress.clone();
    let walk = WalkOptions {
        parallelism: usize::try_from(t.plan.policy.parallelism)
            .unwrap_or(1)
            .max(1),
        confirmed: args.confirm.iter().cloned().collect::<BTreeSet<_>>(),
        windows: t.plan.windows.clone(),
        prompter: if tty && !json {
            Some(Arc::new(TtyPrompter) as Arc<dyn Prompter>)
        } else {
            None
        },
        events: Arc::new(move |e: &ApplyEvent| sink.event(e)),
        ..WalkOptions::default()
    };
    let req = SiteApply {
        plan: t.plan.clone(),
        saved: t.saved,
        source: t.source.clone(),
        base_dir: t.base_dir,
        state_dir: t.state_dir,
        resume: args.resume,
        walk,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = rt.block_on(apply_site(req, providers));
    progress.finish();
    match result {
        Ok(SiteOutcome::NoChanges) => {
            if json {
                println!("{}", serde_json::json!({"event": "no-changes"}));
            } else {
                println!("{}", swing_engine::diff::NO_CHANGES);
            }
            Ok(0)
        }
        Ok(SiteOutcome::Ran(r)) => {
            if !json {
                print_report(&r.report);
            }
            Ok(match &r.outcome {
                Outcome::Done => 0,
                Outcome::Failed { root_cause, .. } => {
                    if !json {
                        eprintln!(
                            "\nerror: {} failed: {}",
                            root_cause.step, root_cause.message
                        );
                        for a in &root_cause.advice {
                            eprintln!("  {a}");
                        }
                    }
                    1
                }
                Outcome::Paused { waiting } => {
                    if !json {
                        print_paused(waiting, &t.source);
                    }
                    EXIT_PAUSED
                }
            })
        }
        Err(SiteError::Apply(ApplyError::Locked(e))) => {
            let holder = match &e {
                LockError::Held { holder, .. } => holder.to_string(),
                other => other.to_string(),
            };
            eprintln_err(format!(
                "another apply holds the lock of {}: {holder}",
                t.plan.site
            ));
            eprintln!(
                "  If that apply is dead, remove the lock with `swing unlock --force {}`.",
                t.source
            );
            Ok(EXIT_LOCKED)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn print_paused(waiting: &[swing_engine::apply::Waiting], source: &str) {
    let mut confirm = Vec::new();
    println!();
    for w in waiting {
        println!("Paused: {}", w.describe());
        if let WaitReason::Confirmation { instructions } = &w.reason {
            for (i, line) in instructions.iter().enumerate() {
                println!("  {}. {line}", i + 1);
            }
            confirm.push(format!("--confirm {}", w.step));
        }
    }
    let mut cmd = String::from("swing apply --resume");
    for c in &confirm {
        cmd.push(' ');
        cmd.push_str(c);
    }
    if Path::new(source).exists() {
        cmd.push(' ');
        cmd.push_str(source);
    }
    println!("\nWhen done, continue with:\n  {cmd}");
}

fn human_ms(ms: u64) -> String {
    swing_schema::DurationSpec::from_secs(ms / 1000).to_string()
}

fn print_report(r: &ApplyReport) {
    println!(
        "\nApply {}: {} step(s) run now\n{}",
        r.outcome,
        r.steps_run,
        report_text(r)
    );
}

/// The apply report as text: steps, the client's measured downtime, the engine's timing of
/// its downtime steps, time without failover protection, backups.
pub fn report_text(r: &ApplyReport) -> String {
    use std::fmt::Write as _;
    let secs = |ms: u64| ms as f64 / 1000.0;
    let mut out = String::new();
    let done = r.steps.iter().filter(|s| s.status == "succeeded").count();
    let _ = writeln!(
        out,
        "steps:                       {done} of {} succeeded",
        r.steps.len()
    );
    for s in &r.steps {
        let d = s
            .duration_ms
            .map(|d| format!("{:>7.2} s", secs(d)))
            .unwrap_or_default();
        let _ = writeln!(out, "  {:<10} {:<24} {d}", s.status, s.id);
    }
    match &r.client_downtime {
        Some(c) => {
            let _ = writeln!(
                out,
                "downtime (measured):         {:.3} s  longest outage a client saw, probing every {} ms ({} outage(s), {:.3} s in total, {} probes; served by {})",
                secs(c.longest_outage_ms),
                c.interval_ms,
                c.outages,
                secs(c.total_outage_ms),
                c.probes,
                c.served_by.join(" → ")
            );
        }
        None => {
            let _ = writeln!(
                out,
                "downtime (measured):         no client probe ran (run `swing probe` alongside to measure it)"
            );
        }
    }
    let _ = writeln!(
        out,
        "downtime steps (engine):     {:.2} s  summed durations of the steps that take the site down",
        secs(r.downtime_ms)
    );
    let _ = writeln!(
        out,
        "without failover protection: {:.2} s",
        secs(r.unprotected_ms)
    );
    for b in &r.backups {
        let _ = writeln!(
            out,
            "backup written:              {} (SHA-256 {})",
            b.path.display(),
            b.sha256
        );
    }
    out
}

/// Progress display: JSON lines, or indicatif spinners for running steps on a TTY, or
/// plain lines otherwise.
struct Progress {
    json: bool,
    multi: Option<indicatif::MultiProgress>,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
}

impl Progress {
    fn new(json: bool, tty: bool) -> Progress {
        let multi = (!json && tty).then(indicatif::MultiProgress::new);
        Progress {
            json,
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, s: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => println!("{s}"),
        }
    }

    fn event(&self, e: &ApplyEvent) {
        if self.json {
            if let Ok(s) = serde_json::to_string(e) {
                println!("{s}");
            }
            return;
        }
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            ApplyEvent::StepAlreadyDone { step } => {
                self.line(format!("  = {step} (done in an earlier run)"))
            }
            ApplyEvent::StepStarted { step, title, .. } => match &self.multi {
                Some(m) => {
                    let pb = m.add(indicatif::ProgressBar::new_spinner());
                    if let Ok(style) =
                        indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    {
                        pb.set_style(style);
                    }
                    pb.set_message(format!("{step}: {title}"));
                    pb.enable_steady_tick(Duration::from_millis(120));
                    bars.insert(step.clone(), pb);
                }
                None => println!("  > {step}: {title}"),
            },
            ApplyEvent::StepPolling { step, detail, .. } => {
                if let Some(pb) = bars.get(step) {
                    pb.set_message(format!("{step}: {detail}"));
                }
            }
            ApplyEvent::StepSucceeded { step, duration_ms } => {
                if let Some(pb) = bars.remove(step) {
                    pb.finish_and_clear();
                }
                self.line(format!("  ✓ {step} ({})", human_ms(*duration_ms)));
            }
            ApplyEvent::StepFailed { step, message } => {
                if let Some(pb) = bars.remove(step) {
                    pb.finish_and_clear();
                }
                self.line(format!("  ✗ {step}: {message}"));
            }
            ApplyEvent::StepWaiting { step, reason } => self.line(format!("  … {step}: {reason}")),
            ApplyEvent::StepSkipped { step, because } => {
                self.line(format!("  - {step} skipped ({because} failed)"))
            }
            ApplyEvent::Finished { .. } => {}
            _ => {}
        }
    }

    fn finish(&self) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for (_, pb) in bars.drain() {
            pb.finish_and_clear();
        }
    }
}

/// Asks on the terminal whether a step that needs a person is done.
struct TtyPrompter;

#[async_trait::async_trait]
impl Prompter for TtyPrompter {
    async fn confirm(&self, step: &StepSpec) -> bool {
        let step = step.clone();
        tokio::task::spawn_blocking(move || {
            println!("\n? {} — {}", step.id, step.title);
            for (i, line) in step.instructions.iter().enumerate() {
                println!("  {}. {line}", i + 1);
            }
            print!(
                "Type the step id ({}) when done, or press Enter to pause: ",
                step.id
            );
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            let _ = std::io::stdin().lock().read_line(&mut line);
            line.trim() == step.id
        })
        .await
        .unwrap_or(false)
    }
}
