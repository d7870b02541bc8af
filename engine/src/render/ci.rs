//! The formats CI systems read: GitHub workflow commands (annotations on the changed lines),
//! SARIF 2.1.0 (code scanning; `serde-sarif`) and JUnit XML (test reports; `quick-junit`) of
//! validation diagnostics, and GitHub annotations for a plan's findings and drift.
//!
//! Pure functions from diagnostics or plan views to text; the CLI only picks one. Must not:
//! decide exit codes, judge anything, or write anything itself.

use std::fmt::Write as _;

use serde_sarif::sarif;
use swing_schema::output::{Level, PlanView};

use crate::diagnostics::{PlanDiagnostic, Severity, codes, line_col};
use crate::validate::Checked;

use super::escape::terminal;

/// A GitHub workflow command's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationLevel {
    Error,
    Warning,
    Notice,
}

impl AnnotationLevel {
    fn as_str(self) -> &'static str {
        match self {
            AnnotationLevel::Error => "error",
            AnnotationLevel::Warning => "warning",
            AnnotationLevel::Notice => "notice",
        }
    }
}

/// One annotation: `::LEVEL file=F,line=L,col=C,endLine=…,endColumn=…,title=T::MESSAGE`.
#[derive(Debug, Clone, Default)]
pub struct Annotation<'a> {
    pub file: Option<&'a str>,
    /// 1-based; 0 when there is no location.
    pub line: usize,
    pub col: usize,
    pub end_line: usize,
    pub end_col: usize,
    pub title: &'a str,
    pub message: String,
}

/// The workflow command's data escaping (the Actions toolkit's `escapeData`).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// The workflow command's property escaping (the Actions toolkit's `escapeProperty`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

impl Annotation<'_> {
    /// The command line, newline-terminated. Control characters other than line breaks are
    /// removed (they would reach the job log), line breaks are escaped.
    pub fn line(&self, level: AnnotationLevel) -> String {
        let mut props = Vec::new();
        if let Some(f) = self.file {
            props.push(format!("file={}", escape_property(&terminal(f))));
        }
        if self.line > 0 {
            props.push(format!("line={}", self.line));
            if self.col > 0 {
                props.push(format!("col={}", self.col));
            }
            if self.end_line >= self.line {
                props.push(format!("endLine={}", self.end_line));
                if self.end_line == self.line && self.end_col > self.col {
                    props.push(format!("endColumn={}", self.end_col));
                }
            }
        }
        props.push(format!("title={}", escape_property(&terminal(self.title))));
        format!(
            "::{} {}::{}\n",
            level.as_str(),
            props.join(","),
            escape_data(&terminal(&self.message))
        )
    }
}

/// Where a diagnostic's primary span ends (1-based line and column), if it has a source.
fn end_of(d: &PlanDiagnostic) -> Option<(usize, usize)> {
    let label = d.labels.iter().find(|l| l.primary)?;
    let src = d.source()?;
    let text = src.inner();
    Some(line_col(text, label.span.end.max(label.span.start)))
}

fn message_with_help(d: &PlanDiagnostic) -> String {
    match &d.help {
        Some(h) => format!("{}\n{h}", d.message),
        None => d.message.clone(),
    }
}

/// `swing validate --format github`: one workflow command per diagnostic.
pub fn github_diagnostics(results: &[Checked]) -> String {
    let mut out = String::new();
    for c in results {
        for d in &c.diagnostics {
            let (end_line, end_col) = end_of(d).unwrap_or((0, 0));
            let level = match d.severity {
                Severity::Error => AnnotationLevel::Error,
                Severity::Warning => AnnotationLevel::Warning,
            };
            out.push_str(
                &Annotation {
                    file: Some(&d.file),
                    line: d.line,
                    col: d.column,
                    end_line,
                    end_col,
                    title: d.code,
                    message: message_with_help(d),
                }
                .line(level),
            );
        }
    }
    out
}

/// `swing plan|show --format github`: one annotation per finding, per resource that could not
/// be observed and per drift the plan does not cover, on the plan file.
pub fn plan_annotations(views: &[PlanView]) -> String {
    let mut out = String::new();
    for v in views {
        let file = v.plan.file.as_deref();
        for f in &v.findings {
            let level = match f.level {
                Level::Error => AnnotationLevel::Error,
                Level::Warning => AnnotationLevel::Warning,
                Level::Info => AnnotationLevel::Notice,
            };
            out.push_str(
                &Annotation {
                    file,
                    title: &f.code,
                    message: f.message.clone(),
                    ..Annotation::default()
                }
                .line(level),
            );
        }
        if let Some(r) = &v.refresh {
            for (title, list) in [("cannot-observe", &r.unobserved), ("drift", &r.drift)] {
                for d in list {
                    out.push_str(
                        &Annotation {
                            file,
                            title,
                            message: format!("{d} (apply is blocked)"),
                            ..Annotation::default()
                        }
                        .line(AnnotationLevel::Error),
                    );
                }
            }
        }
    }
    out
}

/// An artifact URI for a path as given: relative paths as relative references (`/`
/// separators, percent-encoded), absolute ones as `file://` URIs.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    if out.starts_with('/') {
        format!("file://{out}")
    } else {
        out
    }
}

/// `swing validate --format sarif`: one SARIF 2.1.0 log with one run; the rules are every
/// diagnostic code with its help text, each result points at its region.
pub fn sarif(results: &[Checked]) -> String {
    let rules: Vec<sarif::ReportingDescriptor> = codes::ALL
        .iter()
        .map(|(code, text)| {
            sarif::ReportingDescriptor::builder()
                .id(*code)
                .short_description(&(*text).to_owned())
                .full_description(&(*text).to_owned())
                .help(&(*text).to_owned())
                .build()
        })
        .collect();
    let mut artifacts: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for c in results {
        for d in &c.diagnostics {
            let index = match artifacts.iter().position(|a| a == &d.file) {
                Some(i) => i,
                None => {
                    artifacts.push(d.file.clone());
                    artifacts.len() - 1
                }
            };
            let location = sarif::ArtifactLocation::builder()
                .uri(uri(&d.file))
                .index(index as i64)
                .build();
            let physical = if d.line > 0 {
                let region = match end_of(d) {
                    Some((end_line, end_col)) if (end_line, end_col) > (d.line, d.column) => {
                        sarif::Region::builder()
                            .start_line(d.line as i64)
                            .start_column(d.column.max(1) as i64)
                            .end_line(end_line as i64)
                            .end_column(end_col as i64)
                            .build()
                    }
                    _ => sarif::Region::builder()
                        .start_line(d.line as i64)
                        .start_column(d.column.max(1) as i64)
                        .build(),
                };
                sarif::PhysicalLocation::builder()
                    .artifact_location(location)
                    .region(region)
                    .build()
            } else {
                sarif::PhysicalLocation::builder()
                    .artifact_location(location)
                    .build()
            };
            let builder = sarif::Result::builder()
                .rule_id(d.code)
                .message(&terminal(&message_with_help(d)))
                .locations(vec![
                    sarif::Location::builder()
                        .physical_location(physical)
                        .build(),
                ])
                .level(match d.severity {
                    Severity::Error => sarif::ResultLevel::Error,
                    Severity::Warning => sarif::ResultLevel::Warning,
                });
            let result = match codes::ALL.iter().position(|(code, _)| *code == d.code) {
                Some(i) => builder.rule_index(i as i64).build(),
                None => builder.build(),
            };
            out.push(result);
        }
    }
    let driver = sarif::ToolComponent::builder()
        .name("swing")
        .version(env!("CARGO_PKG_VERSION"))
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .rules(rules)
        .build();
    let run = sarif::Run::builder()
        .tool(sarif::Tool::builder().driver(driver).build())
        .artifacts(
            artifacts
                .iter()
                .map(|a| {
                    sarif::Artifact::builder()
                        .location(sarif::ArtifactLocation::builder().uri(uri(a)).build())
                        .build()
                })
                .collect::<Vec<_>>(),
        )
        .results(out)
        .build();
    let log = sarif::Sarif::builder()
        .schema(sarif::SCHEMA_URL)
        .version(sarif::Version::V2_1_0.to_string())
        .runs(vec![run])
        .build();
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}

/// `swing validate --format junit`: one test suite, one test case per plan file; a file with
/// errors fails with every error in the failure's text, warnings go to the case's output.
pub fn junit(results: &[Checked]) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let line = |d: &PlanDiagnostic| {
        format!(
            "{}:{}:{}: {}[{}]: {}",
            d.file,
            d.line,
            d.column,
            d.severity,
            d.code,
            terminal(&message_with_help(d)).replace('\n', " — ")
        )
    };
    let mut suite = TestSuite::new("swing validate");
    for c in results {
        let errors: Vec<&PlanDiagnostic> = c
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        let status = match errors.first() {
            None => TestCaseStatus::success(),
            Some(first) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "{} error{}; first: {}",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" },
                    terminal(&first.message)
                ))
                .set_type(first.code)
                .set_description(
                    errors
                        .iter()
                        .map(|d| line(d))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                s
            }
        };
        let mut case = TestCase::new(c.origin.as_str(), status);
        case.set_classname("swing.validate");
        let warnings: Vec<String> = c
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(line)
            .collect();
        if !warnings.is_empty() {
            case.set_system_out(warnings.join("\n"));
        }
        suite.add_test_case(case);
    }
    let mut report = Report::new("swing");
    report.add_test_suite(suite);
    report.to_string().unwrap_or_default()
}
