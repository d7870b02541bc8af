//! The view of `swing apply`: progress while it runs (human or JSON, chosen once), then the
//! report, the failed step with its advice, the paused message with the exact resume command,
//! or the lock holder.
//!
//! Owns: the wording of apply's output and which [`Exit`] each outcome ends with. Every
//! string from a plan, a command or an appliance passes through
//! [`swing_engine::render::escape::terminal`] before it is printed. Must not: decide what a
//! step does or re-check anything the engine checked.

use std::sync::Arc;

use swing_engine::apply::{
    ApplyEvent, ApplyReport, LockError, Outcome, WaitReason, Waiting, resume_command,
};

use swing_engine::render::escape::{terminal, terminal_line};

use super::Output;
use super::progress::Progress;
use crate::exit::Exit;

/// Apply's output, human or JSON.
pub struct ApplyView {
    output: Output,
    progress: Arc<Progress>,
}

impl ApplyView {
    /// The view for `output`; spinners only for human output on a terminal.
    pub fn new(output: Output, tty: bool) -> ApplyView {
        ApplyView::with_progress_interval(output, tty, super::progress::PROGRESS_INTERVAL)
    }

    /// As [`ApplyView::new`], a waiting step printing a line every `interval` (text output
    /// without a terminal).
    pub fn with_progress_interval(
        output: Output,
        tty: bool,
        interval: std::time::Duration,
    ) -> ApplyView {
        let progress = Arc::new(Progress::with_interval(output, tty, interval));
        progress.start();
        ApplyView { output, progress }
    }

    fn human(&self) -> bool {
        self.output == Output::Human
    }

    /// The terminal's prompter for person-steps: it asks with the progress display out of
    /// the way.
    pub fn prompter(&self) -> Arc<dyn swing_engine::apply::Prompter> {
        Arc::new(super::prompt::TtyPrompter {
            progress: self.progress.clone(),
        })
    }

    /// The sink the engine reports its events to.
    pub fn events(&self) -> Arc<dyn Fn(&ApplyEvent) + Send + Sync> {
        let sink = self.progress.clone();
        Arc::new(move |e: &ApplyEvent| sink.event(e))
    }

    /// The run ended: clears what is still spinning.
    pub fn finish(&self) {
        self.progress.finish();
    }

    /// Nothing to do: the site already looks as the plan ends.
    pub fn no_changes(&self) -> Exit {
        if self.human() {
            println!("{}", swing_engine::diff::NO_CHANGES);
        } else {
            self.progress.event(&ApplyEvent::NoChanges);
        }
        Exit::Ok
    }

    /// The run ended with `outcome`: the report, then why it stopped.
    pub fn ran(&self, report: &ApplyReport, outcome: &Outcome, source: &str) -> Exit {
        if self.human() {
            print_report(report);
        }
        match outcome {
            Outcome::Done => Exit::Ok,
            Outcome::Failed { root_cause, .. } => {
                if self.human() {
                    eprintln!(
                        "\nerror: {} failed: {}",
                        terminal_line(&root_cause.step),
                        terminal(&root_cause.message)
                    );
                    for a in &root_cause.advice {
                        eprintln!("  {}", terminal(a));
                    }
                }
                Exit::Error
            }
            Outcome::Paused { waiting } => {
                if self.human() {
                    print_paused(waiting, source);
                }
                Exit::Paused
            }
        }
    }

    /// Another apply holds the lock of `site`.
    pub fn locked(&self, site: &str, source: &str, e: &LockError) -> Exit {
        let holder = match e {
            LockError::Held { holder, .. } => holder.to_string(),
            other => other.to_string(),
        };
        eprintln!(
            "error: another apply holds the lock of {}: {}",
            terminal_line(site),
            terminal(&holder)
        );
        eprintln!(
            "  If that apply is dead, remove the lock with `swing unlock --force {}`.",
            terminal_line(source)
        );
        Exit::Locked
    }
}

/// Prints what the run waits for and the exact command that continues it.
pub fn print_paused(waiting: &[Waiting], source: &str) {
    println!();
    for w in waiting {
        println!("Paused: {}", terminal(&w.describe()));
        if let WaitReason::Confirmation { instructions } = &w.reason {
            for (i, line) in instructions.iter().enumerate() {
                println!("  {}. {}", i + 1, terminal_line(line));
            }
        }
    }
    let cmd = resume_command(waiting, Some(source));
    println!("\nWhen done, continue with:\n  {}", terminal_line(&cmd));
}

/// Prints the outcome line and the report.
pub fn print_report(r: &ApplyReport) {
    println!(
        "\nApply {}: {} step(s) run now\n{}",
        r.outcome,
        r.steps_run,
        terminal(&report_text(r))
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
        if let Some(who) = &s.confirmed_by {
            let _ = writeln!(
                out,
                "             confirmed by {}{}",
                terminal_line(who),
                s.note
                    .as_deref()
                    .map(|n| format!(": {}", terminal_line(n)))
                    .unwrap_or_default()
            );
        }
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
                terminal_line(&c.served_by.join(" → "))
            );
            for d in &r.downtime_by_step {
                let _ = writeln!(
                    out,
                    "  {:<26} {:.3} s  longest outage ({} probes, served by {})",
                    terminal_line(&d.step),
                    secs(d.seen.longest_outage_ms),
                    d.seen.probes,
                    terminal_line(&d.seen.served_by.join(" → "))
                );
            }
        }
        None => {
            let _ = writeln!(
                out,
                "downtime (measured):         no client probe ran (`--no-probe`, or no step that takes the site down ran)"
            );
        }
    }
    for u in &r.unprobed {
        let _ = writeln!(
            out,
            "  {:<26} not measured: {}",
            terminal_line(&u.step),
            terminal_line(&u.message)
        );
    }
    let _ = writeln!(
        out,
        "downtime steps (engine):     {:.2} s  summed durations of the steps that take the site down",
        secs(r.downtime_ms)
    );
    let _ = writeln!(
        out,
        "without failover protection: {:.2} s  wall clock from failover.break verified to failover.establish verified",
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
