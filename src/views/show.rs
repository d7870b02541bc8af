//! The view of `swing show`: the saved plan rendered again, led by the marks that keep it from
//! being applied as it is (made offline, modified, its plan file changed, the site moved).
//!
//! Owns: the wording and placement of the marks (first in text and Markdown, on stderr for
//! machine formats), matched on the engine's typed [`StaleReason`]s. Must not: judge
//! staleness itself or recompile anything.

use swing_engine::ops::{Assessment, StaleReason};
use swing_engine::planfile::SavedPlan;
use swing_engine::render::escape::{md_inline, terminal_line};
use swing_engine::render::{self, Format, RenderOptions};
use swing_engine::signing::SignatureCheck;
use swing_schema::output::PlanView;

use super::out::write_stdout;
use crate::exit::Exit;

/// What keeps a saved plan from being applied as it is, worded for the reader.
pub fn marks(saved: &SavedPlan, a: &Assessment) -> Vec<String> {
    let mut out = vec![format!(
        "Saved plan of {} made {} by swing {}.",
        saved.source, saved.created, saved.swing_version
    )];
    if a.offline {
        out.push(
            "OFFLINE: made without observing the site; for review only (run `swing plan --out FILE` without --offline to get an appliable plan)."
                .to_owned(),
        );
    }
    if a.modified {
        out.push(
            "MODIFIED: the saved plan was changed after it was written (digest mismatch); apply refuses it. Shown: what its embedded plan would run."
                .to_owned(),
        );
    }
    out.push(match &a.signature {
        SignatureCheck::Unsigned => "Not signed.".to_owned(),
        SignatureCheck::Valid { signer } => {
            format!("Signed by {signer}: the signature verifies.")
        }
        SignatureCheck::Invalid { signer } => {
            format!("BAD SIGNATURE: the signature by {signer} does not verify; apply refuses it.")
        }
    });
    if let Some(source) = &a.source_changed {
        out.push(format!(
            "STALE: {} changed since this plan was made; plan again.",
            source.display()
        ));
    }
    match a.refreshed.as_deref() {
        Some([]) => {
            out.push("Current: the site still looks as it did when the plan was made.".to_owned())
        }
        Some(reasons) => out.extend(reasons.iter().map(|r| match r {
            StaleReason::Moved(change) => format!("STALE: {change}"),
            other => format!("STALE: {other}"),
        })),
        None => {}
    }
    if !saved.has_changes {
        out.push(swing_engine::diff::NO_CHANGES.to_owned());
    }
    out
}

/// Renders `view` in `format`, led by `marks`; returns the exit.
pub fn show(view: &PlanView, format: Format, max_chars: usize, marks: &[String]) -> Exit {
    let color = format == Format::Text && super::color::stdout();
    let mut text = String::new();
    match format {
        // People read these: the marks come first, where nobody can miss them.
        Format::Text | Format::Markdown => {
            for m in marks {
                text.push_str(&if format == Format::Markdown {
                    format!("> **{}**\n\n", md_inline(m))
                } else {
                    format!("{}\n", terminal_line(m))
                });
            }
            if !marks.is_empty() && format == Format::Text {
                text.push('\n');
            }
        }
        // Machine formats stay parseable: the marks go to stderr.
        _ => marks
            .iter()
            .for_each(|m| eprintln!("swing show: {}", terminal_line(m))),
    }
    let opts = RenderOptions {
        color,
        max_chars: Some(max_chars),
    };
    let rendered = render::render(view, format, opts);
    match (format, rendered.split_once('\n')) {
        // The comment marker stays the first line, above the marks.
        (Format::Markdown, Some((marker, rest))) => {
            text = format!("{marker}\n{text}{rest}");
        }
        _ => text.push_str(&rendered),
    }
    if write_stdout(&text) {
        Exit::Ok
    } else {
        Exit::Error
    }
}
