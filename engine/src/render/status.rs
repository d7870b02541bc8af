//! `swing status` as text (terminal), Markdown (a ticket comment) and JSON (the
//! [`StatusView`] itself).
//!
//! Owns the wording around the status fields; every string from the plan, the journal or a
//! lock file passes through [`super::escape`]. Must not: compute the status or do IO.

use std::fmt::Write as _;

use swing_schema::output::human_duration;
use swing_schema::status::StatusView;

use super::escape::{md_code, md_inline, terminal_line};

fn phase(v: &StatusView) -> String {
    phase_name(v.phase)
}

/// A phase as the plan format names it (`—` for none).
pub(super) fn phase_name(p: Option<swing_schema::output::Phase>) -> String {
    p.map(|p| {
        serde_json::to_value(p)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    })
    .unwrap_or_else(|| "—".to_owned())
}

fn lock_line(v: &StatusView) -> String {
    match &v.lock {
        None => "none".to_owned(),
        Some(l) => format!(
            "change {} (pid {} on {}, since {}, last heartbeat {}{})",
            l.holder,
            l.pid,
            l.host,
            l.since,
            l.heartbeat,
            if l.live {
                ""
            } else {
                " — stale: the holder is gone; `swing unlock --force` removes it"
            }
        ),
    }
}

/// Terminal text.
pub fn text(v: &StatusView) -> String {
    let t = terminal_line;
    let mut o = String::new();
    let _ = writeln!(o, "swing status: {} (change {})", t(&v.site), t(&v.change));
    let _ = writeln!(
        o,
        "  outcome: {} · phase: {} · {} of {} steps done",
        v.outcome,
        phase(v),
        v.steps_done,
        v.steps_total
    );
    if let Some(p) = &v.problem {
        let _ = writeln!(o, "  problem: {}", t(p));
    }
    if !v.waiting.is_empty() {
        let _ = writeln!(o, "  waiting for:");
        for w in &v.waiting {
            let _ = writeln!(
                o,
                "    {} ({}): {}{}",
                t(&w.step),
                w.kind,
                t(&w.reason),
                w.deadline
                    .as_deref()
                    .map(|d| format!(" — gives up at {}", t(d)))
                    .unwrap_or_default()
            );
            for (i, line) in w.instructions.iter().enumerate() {
                let _ = writeln!(o, "        {}. {}", i + 1, t(line));
            }
        }
    }
    if v.unprotected_s > 0 {
        let _ = writeln!(
            o,
            "  without failover protection: {} so far",
            human_duration(v.unprotected_s)
        );
    }
    match &v.next_window {
        Some(w) => {
            let _ = writeln!(
                o,
                "  next window: {} {} → {}{}",
                t(&w.name),
                w.start,
                w.end,
                if w.open { " (open now)" } else { "" }
            );
        }
        None => {
            let _ = writeln!(o, "  next window: none ahead");
        }
    }
    let _ = writeln!(o, "  lock: {}", t(&lock_line(v)));
    if !v.confirmations.is_empty() {
        let _ = writeln!(o, "  confirmations:");
        for c in &v.confirmations {
            let _ = writeln!(
                o,
                "    {} by {} at {}{}",
                t(&c.step),
                t(c.actor.as_deref().unwrap_or("(not recorded)")),
                c.at,
                c.note
                    .as_deref()
                    .map(|n| format!(": {}", t(n)))
                    .unwrap_or_default()
            );
        }
    }
    if !v.last_events.is_empty() {
        let _ = writeln!(o, "  last events:");
        for e in &v.last_events {
            let _ = writeln!(
                o,
                "    {} {}{}",
                e.at,
                e.event,
                e.step
                    .as_deref()
                    .map(|s| format!(" {}", t(s)))
                    .unwrap_or_default()
            );
        }
    }
    o
}

/// Markdown for a ticket or pull-request comment.
pub fn markdown(v: &StatusView) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### swing status: {}\n\n**{}** · phase {} · {} of {} steps done\n",
        md_inline(&v.site),
        v.outcome,
        md_code(&phase(v)),
        v.steps_done,
        v.steps_total
    );
    if let Some(p) = &v.problem {
        let _ = writeln!(o, "Problem: {}\n", md_inline(p));
    }
    if !v.waiting.is_empty() {
        let _ = writeln!(o, "| waiting | for | reason |\n|---|---|---|");
        for w in &v.waiting {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                md_code(&w.step),
                w.kind,
                md_inline(&w.reason)
            );
        }
        o.push('\n');
    }
    if v.unprotected_s > 0 {
        let _ = writeln!(
            o,
            "Without failover protection: {} so far\n",
            human_duration(v.unprotected_s)
        );
    }
    if let Some(w) = &v.next_window {
        let _ = writeln!(
            o,
            "Next window: {} {} → {}{}\n",
            md_inline(&w.name),
            w.start,
            w.end,
            if w.open { " (open now)" } else { "" }
        );
    }
    let _ = writeln!(o, "Lock: {}\n", md_inline(&lock_line(v)));
    if !v.confirmations.is_empty() {
        let _ = writeln!(o, "| step | confirmed by | at | note |\n|---|---|---|---|");
        for c in &v.confirmations {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                md_code(&c.step),
                md_inline(c.actor.as_deref().unwrap_or("(not recorded)")),
                c.at,
                md_inline(c.note.as_deref().unwrap_or(""))
            );
        }
    }
    o
}

/// JSON: the status view.
pub fn json(v: &StatusView) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}
