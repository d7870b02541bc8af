//! What `swing fleet apply` prints while it runs (standard error, one line per event, each
//! prefixed with its site): a wave starting, a site's steps succeeding or failing, a site
//! done, paused, failed or left to another runner. The table at the end is
//! `swing_engine::render::fleet`'s.
//!
//! Owns that wording; plan strings pass through `terminal_line`. Must not: decide anything.

use std::sync::Arc;

use swing_engine::apply::{ApplyEvent, EventSink};
use swing_engine::render::escape::terminal_line as t;

/// A wave starts with these sites.
pub fn wave(number: usize, of: usize, sites: &[&str]) {
    let names: Vec<String> = sites.iter().map(|s| t(s)).collect();
    eprintln!("wave {number} of {of}: {}", names.join(", "));
}

/// The events of one site's apply, as lines prefixed with the site.
pub fn events(site: &str) -> EventSink {
    let site = t(site);
    Arc::new(move |e: &ApplyEvent| match e {
        ApplyEvent::StepSucceeded { step, duration_ms } => eprintln!(
            "{site}: {} done ({:.1} s)",
            t(step),
            *duration_ms as f64 / 1000.0
        ),
        ApplyEvent::StepFailed { step, message } => {
            eprintln!("{site}: {} failed: {}", t(step), t(message));
        }
        ApplyEvent::StepWaiting { step, reason } => {
            eprintln!("{site}: {} waits: {}", t(step), t(reason));
        }
        _ => {}
    })
}

/// How one site's turn ended.
pub fn site_ended(site: &str, what: &str) {
    eprintln!("{}: {}", t(site), t(what));
}

/// This runner waits for sites another apply holds.
pub fn waiting_for_others(sites: &[&str]) {
    let names: Vec<String> = sites.iter().map(|s| t(s)).collect();
    eprintln!(
        "waiting for {}: another apply holds each (another runner of this fleet?)",
        names.join(", ")
    );
}
