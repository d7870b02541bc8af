//! The doctor's output: the reports rendered in the chosen format to stdout, the exit code
//! (0 every site ready, 1 otherwise), and the capture files written under `--capture DIR`.
//!
//! Must not: judge or word a check (the engine's `doctor` and `render::doctor` do).

use std::path::Path;

use swing_engine::doctor::{CaptureFile, DoctorReport};
use swing_engine::render::doctor as render;

use crate::commands::doctor::DoctorFormat;
use crate::exit::Exit;

/// Prints the reports; exit 0 when every site is ready.
pub fn show(reports: &[DoctorReport], format: DoctorFormat) -> Exit {
    let text = match format {
        DoctorFormat::Text => reports
            .iter()
            .map(render::text)
            .collect::<Vec<_>>()
            .join("\n"),
        DoctorFormat::Markdown => reports
            .iter()
            .map(render::markdown)
            .collect::<Vec<_>>()
            .join("\n"),
        DoctorFormat::Json => {
            let list: Vec<_> = reports.iter().map(render::json).collect();
            let mut t = serde_json::to_string_pretty(&list).unwrap_or_default();
            t.push('\n');
            t
        }
    };
    if !super::out::write_stdout(&text) {
        return Exit::Error;
    }
    if reports.iter().all(|r| r.ready) {
        Exit::Ok
    } else {
        Exit::Error
    }
}

/// Writes the capture files under `dir` (made private to this user), each atomically.
pub fn write_capture(dir: &Path, files: &[CaptureFile]) -> std::io::Result<()> {
    for (rel, bytes) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(parent)?;
        }
        swing_engine::planfile::write_atomically(&path, bytes)?;
    }
    Ok(())
}
