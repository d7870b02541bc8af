//! Writing to the terminal: rendered text to stdout (a closed pipe is not an error) and the
//! diagnostics of invalid plan files to stderr.
//!
//! Owns: how output reaches stdout/stderr. Must not: decide what is written or the exit code.

use swing_engine::validate::Checked;

/// Writes rendered output to stdout; a closed pipe (`| head`) is not an error. False on failure
/// (already reported on stderr).
pub fn write_stdout(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => true,
        Err(e) => {
            eprintln!("swing: cannot write output: {e}");
            false
        }
    }
}

/// Prints the diagnostics of every file; true when any file has an error.
pub fn report_invalid(command: &str, checked: &[Checked]) -> bool {
    for c in checked {
        print_diagnostics(c);
    }
    invalid_summary(command, checked.iter().filter(|c| c.has_errors()).count())
}

/// Prints one file's diagnostics (errors and warnings) on stderr.
pub fn print_diagnostics(c: &Checked) {
    for d in &c.diagnostics {
        eprintln!("{}", swing_engine::render::escape::terminal(&d.to_plain()));
    }
}

/// Says how many files are invalid, if any; true when some are.
pub fn invalid_summary(command: &str, invalid: usize) -> bool {
    if invalid > 0 {
        eprintln!(
            "{command}: {invalid} invalid plan file{}; run `swing validate` for details",
            if invalid == 1 { "" } else { "s" }
        );
    }
    invalid > 0
}
