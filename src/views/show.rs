//! The view of `swing show`: the saved plan rendered again, led by the marks that keep it from
//! being applied as it is (made offline, modified, its plan file changed, the site moved).
//!
//! Owns: the wording and placement of the marks (first in text and Markdown, on stderr for
//! machine formats). Must not: judge staleness itself or recompile anything.

use swing_engine::render::{self, Format, RenderOptions};
use swing_schema::output::PlanView;

use super::out::write_stdout;
use crate::exit::Exit;

/// Renders `view` in `format`, led by `marks`; returns the exit.
pub fn show(view: &PlanView, format: Format, marks: &[String]) -> Exit {
    let color = format == Format::Text && super::color::stdout();
    let mut text = String::new();
    match format {
        // People read these: the marks come first, where nobody can miss them.
        Format::Text | Format::Markdown => {
            for m in marks {
                text.push_str(&if format == Format::Markdown {
                    format!("> **{m}**\n\n")
                } else {
                    format!("{m}\n")
                });
            }
            if !marks.is_empty() && format == Format::Text {
                text.push('\n');
            }
        }
        // Machine formats stay parseable: the marks go to stderr.
        _ => marks.iter().for_each(|m| eprintln!("swing show: {m}")),
    }
    text.push_str(&render::render(view, format, RenderOptions { color }));
    if write_stdout(&text) {
        Exit::Ok
    } else {
        Exit::Error
    }
}
