//! Renderers of the plan view: text (terminal, Terraform-like), Markdown (pull-request comment),
//! JSON (the versioned output model), DOT and Mermaid (dependency graph, Gantt schedule),
//! GitHub workflow annotations; the doctor's readiness report (`doctor`) and where a change
//! stands (`status`); and the CI formats of validation diagnostics (`ci`: GitHub
//! annotations, SARIF, JUnit XML). Plan strings reach every one of them through `escape`, the
//! one module that makes user text safe per medium.
//!
//! Owns every byte of user-facing plan text. All plan renderers read only
//! `swing_schema::output::PlanView`, so they cannot disagree (the doctor's reads its
//! `DoctorReport`, status its `StatusView`), and all are deterministic (no
//! clock, no hash-map order). Must not: compile, estimate, touch the terminal (the caller says
//! whether colour is wanted) or do IO.

pub mod ci;
pub mod doctor;
pub mod dot;
pub mod escape;
pub mod fleet;
pub mod json;
pub mod markdown;
pub mod mermaid;
pub mod report;
pub mod set;
pub mod status;
pub mod text;

use swing_schema::output::{PlanView, human_duration};

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
    Dot,
    /// Mermaid flowchart of the dependencies.
    Mermaid,
    /// Mermaid Gantt chart of the estimated schedule across the windows.
    Gantt,
    /// GitHub workflow commands: one annotation per finding and per drift.
    Github,
}

impl Format {
    /// Parses a `--format` value.
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "text" => Format::Text,
            "markdown" | "md" => Format::Markdown,
            "json" => Format::Json,
            "dot" => Format::Dot,
            "mermaid" => Format::Mermaid,
            "gantt" | "mermaid-gantt" => Format::Gantt,
            "github" => Format::Github,
            _ => return None,
        })
    }
}

/// How to render.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// ANSI colours (text only; the caller decides, e.g. only on a TTY).
    pub color: bool,
    /// Markdown only: the most characters to write (default [`markdown::MAX_CHARS`]).
    pub max_chars: Option<usize>,
}

impl RenderOptions {
    pub(crate) fn max_chars(self) -> usize {
        self.max_chars.unwrap_or(markdown::MAX_CHARS)
    }
}

/// Renders one plan.
pub fn render(view: &PlanView, format: Format, opts: RenderOptions) -> String {
    match format {
        Format::Text => text::render(view, opts.color),
        Format::Markdown => markdown::render(view, opts.max_chars()),
        Format::Github => ci::plan_annotations(std::slice::from_ref(view)),
        Format::Json => json::render(view),
        Format::Dot => dot::render(view),
        Format::Mermaid => mermaid::flowchart(view),
        Format::Gantt => mermaid::gantt(view),
    }
}

/// Renders several plans (a fleet of sites) into one output, in the order given: the
/// [`set::SetRenderer`] over a slice.
pub fn render_many(views: &[PlanView], format: Format, opts: RenderOptions) -> String {
    let mut r = set::SetRenderer::new(format, opts, views.len(), false);
    let mut out: String = views.iter().map(|v| r.push(v)).collect();
    out.push_str(&r.finish());
    out
}

/// Wall-clock label of an offset: `Sat 05 Dec 22:05` from the schedule origin, or `T+1h05m`.
pub(crate) fn when(view: &PlanView, offset_s: u64) -> String {
    if let Some(t) = origin(view) {
        let at = t + chrono::Duration::seconds(offset_s.min(i64::MAX as u64) as i64);
        return at.format("%a %d %b %H:%M").to_string();
    }
    if offset_s == 0 {
        "T+0".to_owned()
    } else {
        format!("T+{}", human_duration(offset_s))
    }
}

pub(crate) fn origin(view: &PlanView) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    view.plan
        .schedule_origin
        .as_deref()
        .and_then(|o| chrono::DateTime::parse_from_rfc3339(o).ok())
}

/// `(known after refresh)` for an unknown value.
pub(crate) fn or_unknown(v: Option<&str>) -> &str {
    v.unwrap_or("(known after refresh)")
}

/// The one line of a change: `appliance b: version 24.3.1 → 25.1.3`.
pub(crate) fn change_line(c: &swing_schema::output::ChangeView) -> String {
    let before = or_unknown(c.before.as_deref());
    if c.attribute == "address" {
        // `dns access.example.com A: 10.0.0.11 → 10.0.0.12` — the record type says it.
        format!("{}: {before} → {}", c.resource, c.after)
    } else {
        format!("{}: {} {before} → {}", c.resource, c.attribute, c.after)
    }
}
