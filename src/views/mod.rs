//! The output seam of `swing`: everything a command shows, chosen once per command — human or
//! JSON ([`Output`]), coloured or not ([`color`]) — and written through one place ([`out`]).
//!
//! - [`apply`]: apply's progress, report, failure, pause and lock messages.
//! - [`progress`]: the one progress printer of a run (also for the demo).
//! - [`doctor`]: the doctor's reports, exit code and capture files.
//! - [`plan`]: plan's rendering, saving and the findings that block an apply.
//! - [`show`]: the marks that keep a saved plan from being applied as it is.
//! - [`prompt`]: questions asked on the terminal.
//! - `rehearse`: the rehearsal report (feature `demo`).
//!
//! Must not: hold engine logic or decide what a step does; views only word what the engine
//! returned and pick the [`Exit`](crate::exit::Exit) it ends with.

pub mod apply;
pub mod color;
pub mod doctor;
pub mod fleet;
pub mod out;
pub mod plan;
pub mod progress;
pub mod prompt;
#[cfg(feature = "demo")]
pub mod rehearse;
pub mod show;

/// Output for people or for machines, decided once per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Text for people.
    Human,
    /// JSON (one document, or one event per line while a run goes on).
    Json,
}
