//! Validation: plan text → typed [`swing_schema::Plan`] plus every diagnostic, all at once.
//!
//! Owns the pipeline `load` → JSON schema (`schema`) → lowering into the typed model →
//! cross-field checks (`semantic`), and the public entry points [`check_source`],
//! [`check_file`], [`check_paths`] and [`check_plan`] (a plan already in memory, such as the
//! one a saved plan embeds, checked as the plan file it serializes to). Nothing downstream
//! re-checks raw input: a [`Checked::plan`] that is `Some` holds a [`ValidPlan`], which only
//! this module can build.
//! Must not: print, decide exit codes, resolve secrets (validation needs none), or touch the
//! network.

mod schema;
mod semantic;
mod valid;

pub use valid::ValidPlan;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::NamedSource;
use swing_schema::Plan;

use crate::diagnostics::{DiagnosticBuilder, PlanDiagnostic, Severity, WithHelp, codes};
use crate::load::{self, LoadProblem, ReadError};

/// The result of checking one plan file.
#[derive(Debug, Clone)]
pub struct Checked {
    /// File path or origin name, as shown in diagnostics.
    pub origin: String,
    /// The text checked (lossy if it was not UTF-8), for rendering diagnostics.
    pub source: Arc<NamedSource<String>>,
    /// The typed plan; `Some` only when there is no error (warnings allowed).
    pub plan: Option<ValidPlan>,
    /// Every problem found, errors and warnings, in source order.
    pub diagnostics: Vec<PlanDiagnostic>,
}

impl Checked {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }
}

/// Checks plan text. `origin` names it in diagnostics (a path, or `<stdin>`).
pub fn check_source(origin: &str, text: &str) -> Checked {
    // Diagnostics show the text with literal secrets masked; checks run on the real text.
    let shown = crate::diagnostics::mask_secrets(text);
    let source = Arc::new(NamedSource::new(origin, shown).with_language("yaml"));
    let b = DiagnosticBuilder::new(origin, source.clone());
    let mut diagnostics = Vec::new();

    if text.len() as u64 > load::MAX_FILE_BYTES {
        diagnostics.push(
            b.whole_file(
                Severity::Error,
                codes::TOO_LARGE,
                format!(
                    "the plan is larger than {} bytes; a plan is a few kilobytes",
                    load::MAX_FILE_BYTES
                ),
            )
            .help("is this the right file?"),
        );
        return finish(origin, source, None, diagnostics);
    }

    let parsed = load::parse(text);
    diagnostics.extend(parsed.problems.iter().map(|p| from_problem(&b, p)));
    let Some(mut doc) = parsed.document else {
        return finish(origin, source, None, diagnostics);
    };

    let shape = schema::check(&b, &mut doc);
    let shape_ok = shape.is_empty();
    diagnostics.extend(shape);
    if !shape_ok || diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return finish(origin, source, None, diagnostics);
    }

    let plan = match schema::lower(&b, &doc) {
        Ok(plan) => plan,
        Err(d) => {
            diagnostics.push(*d);
            return finish(origin, source, None, diagnostics);
        }
    };
    diagnostics.extend(semantic::check(&b, &doc.spans, &plan));
    finish(origin, source, Some(plan), diagnostics)
}

/// Checks a plan held in memory by validating the plan file it serializes to (JSON, which is
/// YAML), exactly as if that file had been given: a plan deserialized from elsewhere (a saved
/// plan) becomes a [`ValidPlan`] only through the same checks.
pub fn check_plan(origin: &str, plan: &Plan) -> Checked {
    match serde_json::to_string_pretty(plan) {
        Ok(text) => check_source(origin, &text),
        Err(e) => {
            let source = Arc::new(NamedSource::new(origin, String::new()));
            let b = DiagnosticBuilder::new(origin, source.clone());
            let d = b.whole_file(
                Severity::Error,
                codes::IO,
                format!("the plan cannot be serialized for checking: {e}"),
            );
            finish(origin, source, None, vec![d])
        }
    }
}

/// Validates plan text that is known to be valid (tests, examples, built-in plans).
///
/// # Panics
/// When the text has an error; the message lists the diagnostics.
pub fn valid(text: &str) -> ValidPlan {
    let checked = check_source("<plan>", text);
    match checked.plan {
        Some(plan) => plan,
        None => panic!(
            "the plan is not valid: {:#?}",
            checked
                .diagnostics
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
        ),
    }
}

/// [`valid`] for a plan written as JSON.
///
/// # Panics
/// When the plan has an error; the message lists the diagnostics.
pub fn valid_json(value: serde_json::Value) -> ValidPlan {
    valid(&value.to_string())
}

/// [`check_plan`] for a plan that is known to be valid (tests, examples).
///
/// # Panics
/// When the plan has an error; the message lists the diagnostics.
pub fn valid_plan(plan: &Plan) -> ValidPlan {
    match serde_json::to_string(plan) {
        Ok(text) => valid(&text),
        Err(e) => panic!("the plan cannot be serialized: {e}"),
    }
}

/// Reads and checks one file. Unreadable, oversized or non-UTF-8 files give a diagnostic.
pub fn check_file(path: &Path) -> Checked {
    let origin = path.display().to_string();
    let bytes = match load::read_capped(path) {
        Ok(b) => b,
        Err(e) => {
            let source = Arc::new(NamedSource::new(&origin, String::new()));
            let b = DiagnosticBuilder::new(&origin, source.clone());
            let (code, help) = match &e {
                ReadError::TooLarge { .. } => (codes::TOO_LARGE, "is this the right file?"),
                _ => (codes::IO, "check the path and the file's permissions"),
            };
            let d = b
                .whole_file(Severity::Error, code, e.to_string())
                .help(help);
            return finish(&origin, source, None, vec![d]);
        }
    };
    match load::decode(&bytes) {
        Ok(text) => check_source(&origin, text),
        Err(problem) => {
            let lossy = crate::diagnostics::mask_secrets(&String::from_utf8_lossy(&bytes));
            let source = Arc::new(NamedSource::new(&origin, lossy));
            let b = DiagnosticBuilder::new(&origin, source.clone());
            let d = from_problem(&b, &problem);
            finish(&origin, source, None, vec![d])
        }
    }
}

/// Checks files and directories (a directory stands for its `*.yaml` / `*.yml` files, sorted,
/// not recursive). A path that does not exist gives a diagnostic for that path.
pub fn check_paths(paths: &[PathBuf]) -> Vec<Checked> {
    expand_paths(paths).iter().map(|p| check_file(p)).collect()
}

/// The plan files `paths` stand for: files as given, directories expanded to their
/// `*.yaml` / `*.yml` files in sorted order. Unreadable directories are kept as given so that
/// checking them reports the problem.
pub fn expand_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(entries) => {
                    let mut files: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|f| {
                            f.is_file()
                                && matches!(
                                    f.extension().and_then(|e| e.to_str()),
                                    Some("yaml" | "yml")
                                )
                        })
                        .collect();
                    files.sort();
                    out.extend(files);
                }
                Err(_) => out.push(p.clone()),
            }
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn from_problem(b: &DiagnosticBuilder, p: &LoadProblem) -> PlanDiagnostic {
    let mut d = b.at(
        Severity::Error,
        p.code,
        p.span,
        p.label.clone(),
        p.message.clone(),
    );
    if let Some((span, label)) = &p.related {
        d = b.also(d, *span, label.clone());
    }
    if let Some(h) = &p.help {
        d = d.help(h.clone());
    }
    d
}

fn finish(
    origin: &str,
    source: Arc<NamedSource<String>>,
    plan: Option<Plan>,
    mut diagnostics: Vec<PlanDiagnostic>,
) -> Checked {
    diagnostics.sort_by_key(|d| (d.line == 0, d.line, d.column));
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    Checked {
        origin: origin.to_owned(),
        source,
        plan: if has_errors {
            None
        } else {
            plan.map(ValidPlan::checked)
        },
        diagnostics,
    }
}
