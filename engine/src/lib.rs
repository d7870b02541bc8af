//! swing-engine: the pure core (load, validate, compile, diff, render) and the orchestration
//! (plan files, apply). See `docs/architecture.md` for the code map.
//!
//! Must not: know clap or the terminal, decide exit codes, or import a concrete provider or
//! the simulator — providers are reached only through the traits in [`provider`].

/// swing's version, as the event stream (`apply --output json`) and the JSON plan view
/// (`swing_version`) report it. Every crate of the workspace is released with the same version.
pub const SWING_VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod apply;
pub mod compile;
pub mod condition;
pub mod diagnostics;
pub mod diff;
pub mod doctor;
pub mod fleet;
pub mod input_file;
pub mod invariants;
pub mod load;
pub mod notify;
pub mod ops;
pub mod planfile;
pub mod provider;
pub mod refresh;
pub mod render;
pub mod report;
pub mod signing;
pub mod status;
pub mod time;
pub mod validate;
pub mod view;
