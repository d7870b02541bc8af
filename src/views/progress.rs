//! The one progress printer of a run: one JSON event per line, indicatif spinners for running
//! steps on a terminal, or plain lines otherwise. Used by `swing apply` and by anything else
//! that walks a plan and reports [`ApplyEvent`]s (the demo).
//!
//! A step that waits (a postcondition that does not hold yet: an install, a person's action
//! confirmed before it was done) shows what it waits for, what is observed now and when it
//! gives up: on a spinner's message on a terminal, otherwise as a line once it has waited
//! [`FIRST_PROGRESS_AFTER`] and then at least every `interval` (30 s by default), so a CI log
//! never goes quiet for long.
//!
//! Owns: how apply events look while a run goes on; every human line is passed through
//! [`terminal_line`] (step titles, command and appliance messages are not swing's). Must
//! not: decide anything about the run.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use swing_engine::apply::ApplyEvent;
use swing_engine::render::escape::terminal_line;

use super::Output;

/// A wait shorter than this shows no progress line.
pub const FIRST_PROGRESS_AFTER: Duration = Duration::from_secs(10);
/// Default time between two progress lines of a waiting step (non-terminal output).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(30);

/// Progress display of one run.
pub struct Progress {
    json: bool,
    multi: Option<indicatif::MultiProgress>,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    /// Per waiting step: the elapsed time at its last progress line.
    waits: Mutex<HashMap<String, u64>>,
    interval: Duration,
    /// While a question is on the terminal ([`Progress::asking`]): the lines held back so
    /// they do not write over it, shown once it is answered.
    held: Mutex<Option<Vec<String>>>,
}

/// The progress line of a polling step, if one is due: after [`FIRST_PROGRESS_AFTER`] (or
/// `interval`, if shorter), then every `interval`. `last` is the elapsed time of the previous
/// line; `now_ms` the wall clock, for the deadline.
pub fn progress_line(
    step: &str,
    detail: &str,
    elapsed_ms: u64,
    timeout_ms: u64,
    last: Option<u64>,
    interval: Duration,
    now_ms: i64,
) -> Option<String> {
    let every = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let first = u64::try_from(FIRST_PROGRESS_AFTER.as_millis())
        .unwrap_or(u64::MAX)
        .min(every);
    let due = match last {
        None => elapsed_ms >= first,
        Some(l) => elapsed_ms.saturating_sub(l) >= every,
    };
    due.then(|| {
        format!(
            "  … {step}: {detail} (waiting {}; {})",
            human_ms(elapsed_ms),
            deadline(elapsed_ms, timeout_ms, now_ms)
        )
    })
}

/// `gives up at 14:32:10 UTC, in 2h`.
fn deadline(elapsed_ms: u64, timeout_ms: u64, now_ms: i64) -> String {
    let left = timeout_ms.saturating_sub(elapsed_ms);
    let at = now_ms.saturating_add(i64::try_from(left).unwrap_or(i64::MAX / 2));
    let clock = swing_engine::time::rfc3339_ms(at);
    let hms = clock.get(11..19).unwrap_or(&clock);
    format!("gives up at {hms} UTC, in {}", human_ms(left))
}

/// A duration in milliseconds, the way plans write durations (`1m30s`).
pub fn human_ms(ms: u64) -> String {
    swing_schema::DurationSpec::from_secs(ms / 1000).to_string()
}

impl Progress {
    /// A printer for `output`; spinners only for human output on a terminal.
    pub fn new(output: Output, tty: bool) -> Progress {
        Progress::with_interval(output, tty, PROGRESS_INTERVAL)
    }

    /// As [`Progress::new`], with progress lines of waiting steps every `interval`.
    pub fn with_interval(output: Output, tty: bool, interval: Duration) -> Progress {
        let json = output == Output::Json;
        let multi = (!json && tty).then(indicatif::MultiProgress::new);
        Progress {
            json,
            multi,
            bars: Mutex::new(HashMap::new()),
            waits: Mutex::new(HashMap::new()),
            interval,
            held: Mutex::new(None),
        }
    }

    /// Runs `ask` (a question on the terminal and the reading of its answer) with the
    /// spinners off the screen and the lines of steps that go on meanwhile held back, so
    /// nothing writes over the question or the answer being typed; then shows them again.
    pub fn asking<R>(&self, ask: impl FnOnce() -> R) -> R {
        let Some(m) = &self.multi else {
            return ask();
        };
        let _ = m.clear();
        m.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
        let answer = ask();
        let held = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        m.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        for l in held {
            let _ = m.println(l);
        }
        answer
    }

    fn line(&self, s: String) {
        let s = terminal_line(&s);
        if let Some(held) = self.held.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            held.push(s);
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(s);
            }
            None => println!("{s}"),
        }
    }

    /// Shows one event.
    pub fn event(&self, e: &ApplyEvent) {
        if let ApplyEvent::NotificationFailed {
            target,
            notification,
            attempts,
            message,
        } = e
        {
            // On stderr whatever the output: a person should see it, and the apply goes on.
            eprintln!(
                "warning: notification `{notification}` to {} failed after {attempts} attempt(s): {}",
                terminal_line(target),
                terminal_line(message)
            );
        }
        if self.json {
            if let Ok(s) = swing_engine::apply::stream_line(e, swing_engine::time::now_ms()) {
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
                    pb.set_message(terminal_line(&format!("{step}: {title}")));
                    pb.enable_steady_tick(Duration::from_millis(120));
                    bars.insert(step.clone(), pb);
                }
                None => println!("{}", terminal_line(&format!("  > {step}: {title}"))),
            },
            ApplyEvent::StepPolling {
                step,
                detail,
                elapsed_ms,
                timeout_ms,
            } => {
                let now = swing_engine::time::now_ms();
                match bars.get(step) {
                    Some(pb) => pb.set_message(terminal_line(&format!(
                        "{step}: {detail} ({})",
                        deadline(*elapsed_ms, *timeout_ms, now)
                    ))),
                    None => {
                        let mut waits = self.waits.lock().unwrap_or_else(|p| p.into_inner());
                        let last = waits.get(step).copied();
                        if let Some(l) = progress_line(
                            step,
                            detail,
                            *elapsed_ms,
                            *timeout_ms,
                            last,
                            self.interval,
                            now,
                        ) {
                            waits.insert(step.clone(), *elapsed_ms);
                            drop(waits);
                            self.line(l);
                        }
                    }
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
            ApplyEvent::ClientMeasured { step, downtime } => self.line(format!(
                "    {step}: a client saw the site down for {:.3} s at most ({} probes)",
                downtime.longest_outage_ms as f64 / 1000.0,
                downtime.probes
            )),
            ApplyEvent::ProbeFailed { step, message } => {
                self.line(format!("    {step}: not measured ({message})"))
            }
            ApplyEvent::Finished { .. } => {}
            _ => {}
        }
    }

    /// Starts the JSON event stream with its version line (nothing for human output). Called
    /// once, before the first event.
    pub fn start(&self) {
        if self.json {
            println!("{}", swing_engine::apply::version_line());
        }
    }

    /// Clears the spinners still running (the run ended).
    pub fn finish(&self) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for (_, pb) in bars.drain() {
            pb.finish_and_clear();
        }
    }

    /// Shows a finished report: pretty JSON, or its human text.
    pub fn result<T: serde::Serialize>(
        &self,
        value: &T,
        human: impl FnOnce() -> String,
    ) -> serde_json::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            println!("{}", swing_engine::render::escape::terminal(&human()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_shows_a_line_after_ten_seconds_then_every_interval() {
        let line = |elapsed, last| {
            progress_line(
                "main.install",
                "appliance main runs 24.3.1, waiting for 25.1.3",
                elapsed,
                7_200_000,
                last,
                PROGRESS_INTERVAL,
                0,
            )
        };
        assert_eq!(line(9_999, None), None, "short waits stay quiet");
        let first = line(10_000, None).expect("a line after 10 s");
        assert!(first.contains("main.install: appliance main runs 24.3.1, waiting for 25.1.3"));
        assert!(first.contains("waiting 10s"), "{first}");
        assert!(
            first.contains("gives up at 01:59:50 UTC, in 1h59m50s"),
            "{first}"
        );
        assert_eq!(line(39_999, Some(10_000)), None);
        assert!(line(40_000, Some(10_000)).is_some(), "then every 30 s");
        // A shorter interval also brings the first line forward.
        let quick = progress_line("s", "d", 1_000, 5_000, None, Duration::from_secs(1), 0);
        assert!(quick.is_some());
    }
}
