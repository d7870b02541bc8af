//! The one progress printer of a run: one JSON event per line, indicatif spinners for running
//! steps on a terminal, or plain lines otherwise. Used by `swing apply` and by anything else
//! that walks a plan and reports [`ApplyEvent`]s (the demo).
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

/// Progress display of one run.
pub struct Progress {
    json: bool,
    multi: Option<indicatif::MultiProgress>,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
}

/// A duration in milliseconds, the way plans write durations (`1m30s`).
pub fn human_ms(ms: u64) -> String {
    swing_schema::DurationSpec::from_secs(ms / 1000).to_string()
}

impl Progress {
    /// A printer for `output`; spinners only for human output on a terminal.
    pub fn new(output: Output, tty: bool) -> Progress {
        let json = output == Output::Json;
        let multi = (!json && tty).then(indicatif::MultiProgress::new);
        Progress {
            json,
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn line(&self, s: String) {
        let s = terminal_line(&s);
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
            ApplyEvent::StepPolling { step, detail, .. } => {
                if let Some(pb) = bars.get(step) {
                    pb.set_message(terminal_line(&format!("{step}: {detail}")));
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
