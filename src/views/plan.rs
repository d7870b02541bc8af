//! The view of `swing plan`: the rendered plans (text, Markdown, JSON or GitHub annotations),
//! written one plan at a time as they are planned ([`PlanStream`]), the Markdown summary
//! `--summary-file` appends, the saved plan `--out` writes, and what keeps the plans from being
//! applied (error findings, drift, resources that cannot be observed), with the exit each case
//! ends with.
//!
//! Owns: the wording of plan's verdict and its exit code. Must not: compile, observe or diff.

use std::path::Path;

use swing_engine::ops::PlannedSite;
use swing_engine::render::escape::terminal;
use swing_engine::render::{self, Format, RenderOptions};

use super::out::write_stdout;
use crate::exit::Exit;

/// How the plans are shown and what the exit reports.
pub struct PlanView {
    /// Output format.
    pub format: Format,
    /// Markdown: the most characters to write.
    pub max_chars: usize,
    /// Where to append the Markdown summary, if anywhere.
    pub summary_file: Option<std::path::PathBuf>,
    /// Where to save the plan (one plan only).
    pub out: Option<std::path::PathBuf>,
    /// Exit [`Exit::Changes`] when there are changes.
    pub detailed_exitcode: bool,
}

impl PlanView {
    /// Starts showing `total` plans: each is written as it is pushed, so a fleet of plans is
    /// never held in memory at once.
    pub fn stream(&self, total: usize) -> PlanStream<'_> {
        let color = self.format == Format::Text && super::color::stdout();
        let opts = RenderOptions {
            color,
            max_chars: Some(self.max_chars),
        };
        PlanStream {
            view: self,
            renderer: render::set::SetRenderer::new(
                self.format,
                opts,
                total,
                self.summary_file.is_some(),
            ),
            blocked: Vec::new(),
            errors: 0,
            changes: false,
            to_save: None,
            write_failed: false,
        }
    }
}

/// The plans shown so far and what keeps them from being applied.
pub struct PlanStream<'a> {
    view: &'a PlanView,
    renderer: render::set::SetRenderer,
    blocked: Vec<String>,
    errors: u32,
    changes: bool,
    /// The one plan `--out` saves.
    to_save: Option<PlannedSite>,
    write_failed: bool,
}

impl PlanStream<'_> {
    /// Shows one planned site.
    pub fn push(&mut self, p: PlannedSite) {
        let origin = &p.source;
        self.blocked.extend(
            p.diff
                .unobserved
                .iter()
                .map(|u| format!("{origin}: cannot observe {u}")),
        );
        self.blocked
            .extend(p.diff.drift.iter().map(|d| format!("{origin}: drift: {d}")));
        self.errors += p.view.summary.errors;
        self.changes |= p.diff.has_changes();
        let text = self.renderer.push(&p.view);
        if !self.write_failed && !write_stdout(&text) {
            self.write_failed = true;
        }
        if self.view.out.is_some() {
            self.to_save = Some(p);
        }
    }

    /// Ends the output: appends the summary, saves the plan, and returns the exit.
    pub fn finish(mut self) -> Exit {
        let text = self.renderer.finish();
        if self.write_failed || !write_stdout(&text) {
            return Exit::Error;
        }
        if let Some(path) = &self.view.summary_file
            && let Err(e) = append(path, &self.renderer.summaries())
        {
            eprintln!(
                "swing plan: cannot append the summary to {}: {e}",
                terminal(&path.display().to_string())
            );
            return Exit::Error;
        }
        if let (Some(out), Some(p)) = (&self.view.out, &self.to_save) {
            match save(out, p) {
                Ok(Some(b)) => self.blocked.push(b),
                Ok(None) => {}
                Err(()) => return Exit::Error,
            }
        }
        let errors = self.errors;
        if errors > 0 {
            eprintln!(
                "swing plan: {errors} error finding{} (see above): the plan cannot be applied as it is",
                if errors == 1 { "" } else { "s" }
            );
            return Exit::Error;
        }
        if !self.blocked.is_empty() {
            for b in &self.blocked {
                eprintln!("swing plan: {}", terminal(b));
            }
            eprintln!(
                "swing plan: apply is blocked until the site looks as the plan starts (or the plan is changed to cover it)"
            );
            return Exit::Error;
        }
        if self.view.detailed_exitcode && self.changes {
            return Exit::Changes;
        }
        Exit::Ok
    }
}

/// Appends `text` to `path` (created if missing), as a step summary file is written to.
fn append(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.flush()
}

/// Saves the plan unless something could not be observed (then returns why it blocks).
fn save(out: &Path, p: &PlannedSite) -> Result<Option<String>, ()> {
    if !p.diff.unobserved.is_empty() {
        eprintln!(
            "swing plan: not saved to {}: {} resource(s) could not be observed (below), so the saved plan could not be checked for staleness",
            out.display(),
            p.diff.unobserved.len()
        );
        return Ok(Some(format!(
            "{}: nothing saved; plan again once everything answers",
            p.source
        )));
    }
    let Some(saved) = &p.saved else {
        return Ok(None);
    };
    saved.write(out).map(|()| None).map_err(|e| {
        eprintln!("swing plan: {e}");
    })
}
