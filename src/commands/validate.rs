//! `swing validate FILE|DIR...`: check plan files and show every problem of every file.
//!
//! Parses the arguments, makes one engine call ([`swing_engine::validate::check_paths`]) and
//! renders the diagnostics: miette's graphical report (coloured as `--color`, `NO_COLOR`, `CLICOLOR` and a terminal say),
//! a stable plain form (`--format plain`, one `file:line:col` header per problem), JSON
//! (`--format json`), or what CI systems read (`--format github|sarif|junit`, rendered by
//! `swing_engine::render::ci`). Exit code 0 when no file has an error, 1 otherwise.
//! Must not: check anything itself — every rule lives in `swing_engine::validate`.

use std::io::Write;
use std::path::PathBuf;

use miette::{GraphicalReportHandler, GraphicalTheme};
use swing_engine::render::{ci, escape};
use swing_engine::validate::{Checked, check_paths, expand_paths};

use crate::exit::{CliError, CliResult, Exit};

/// How diagnostics are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// miette's report with the source excerpt (colour only on a terminal).
    Human,
    /// `file:line:col: severity[code]: message`, the labelled line and the help; stable for logs.
    Plain,
    /// One JSON document on stdout (files, diagnostics with file/line/column/code/severity/message/help).
    Json,
    /// GitHub workflow commands: `::error file=F,line=L,col=C,title=CODE::message`, one per problem.
    Github,
    /// SARIF 2.1.0 for code scanning: rules are the diagnostic codes, results point at regions.
    Sarif,
    /// JUnit XML: one test case per plan file, failing with its errors.
    Junit,
}

/// Arguments of `swing validate`.
#[derive(Debug, Clone, clap::Args)]
pub struct ValidateArgs {
    /// Plan files, or directories holding `*.yaml` / `*.yml` plans.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Runs `swing validate`.
pub fn run(args: &ValidateArgs) -> CliResult {
    if expand_paths(&args.paths).is_empty() {
        return Err(CliError::prefixed(
            "swing validate",
            "no plan files (*.yaml, *.yml) found in the given paths",
        ));
    }
    let results = check_paths(&args.paths);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = match args.format {
        Format::Json => write_json(&mut out, &results),
        Format::Plain => write_plain(&mut out, &results),
        Format::Human => write_human(&mut out, &results, crate::views::color::stdout()),
        Format::Github => out.write_all(ci::github_diagnostics(&results).as_bytes()),
        Format::Sarif => out.write_all(ci::sarif(&results).as_bytes()),
        Format::Junit => out.write_all(ci::junit(&results).as_bytes()),
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("swing validate: cannot write output: {e}");
        }
        return Ok(Exit::Error);
    }
    Ok(if results.iter().any(Checked::has_errors) {
        Exit::Error
    } else {
        Exit::Ok
    })
}

fn summary(results: &[Checked]) -> String {
    let invalid = results.iter().filter(|c| c.has_errors()).count();
    let errors: usize = results.iter().map(Checked::error_count).sum();
    let warnings: usize = results.iter().map(Checked::warning_count).sum();
    format!(
        "{} file{} checked: {} valid, {} invalid ({} error{}, {} warning{})",
        results.len(),
        plural(results.len()),
        results.len() - invalid,
        invalid,
        errors,
        plural(errors),
        warnings,
        plural(warnings)
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn write_plain(out: &mut impl Write, results: &[Checked]) -> std::io::Result<()> {
    for c in results {
        if c.diagnostics.is_empty() {
            writeln!(out, "{}: ok", c.origin)?;
        }
        for d in &c.diagnostics {
            write!(out, "{}", escape::terminal(&d.to_plain()))?;
        }
    }
    writeln!(out, "{}", summary(results))
}

fn write_human(out: &mut impl Write, results: &[Checked], colour: bool) -> std::io::Result<()> {
    let theme = if colour {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    for c in results {
        if c.diagnostics.is_empty() {
            writeln!(out, "✓ {}", c.origin)?;
            continue;
        }
        for d in &c.diagnostics {
            let mut s = String::new();
            if handler.render_report(&mut s, d).is_err() {
                s = d.to_plain();
            }
            // The plan text quoted in the report is the file's, not swing's: only miette's
            // own colours may reach the terminal.
            writeln!(out, "{}", escape::terminal_keep_colour(&s))?;
        }
    }
    writeln!(out, "{}", summary(results))
}

fn write_json(out: &mut impl Write, results: &[Checked]) -> std::io::Result<()> {
    let files: Vec<serde_json::Value> = results
        .iter()
        .map(|c| {
            serde_json::json!({
                "file": c.origin,
                "valid": !c.has_errors(),
                "errors": c.error_count(),
                "warnings": c.warning_count(),
                "diagnostics": c.diagnostics,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "valid": !results.iter().any(Checked::has_errors),
        "files": files,
    });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(std::io::Error::other)?;
    writeln!(out)
}
