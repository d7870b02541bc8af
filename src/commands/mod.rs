//! One module per `swing` subcommand. Each parses its arguments (a `clap::Args` struct), makes
//! one engine call, renders the result and returns the process exit code (`pub fn run(&Args) ->
//! i32`). Exit codes are decided here and nowhere else (see docs/plan-format.md).
//! Must not: hold engine logic.

pub mod apply;
#[cfg(feature = "demo")]
pub mod demo;
pub mod graph;
pub mod plan;
pub mod probe;
pub mod schema;
pub mod show;
pub mod unlock;
pub mod validate;
