//! One module per `swing` subcommand. Each parses its arguments (a `clap::Args` struct), makes
//! one engine call, hands the result to its view (`crate::views`) and returns how it ended
//! (`pub fn run(&Args) -> CliResult`: an [`Exit`](crate::exit::Exit) or a
//! [`CliError`](crate::exit::CliError) that `main` prints once; codes in docs/plan-format.md).
//! Must not: hold engine logic, print errors itself or exit the process.

pub mod apply;
pub mod completions;
#[cfg(feature = "demo")]
pub mod demo;
pub mod doctor;
pub mod fleet;
pub mod graph;
pub mod man;
pub mod plan;
pub mod probe;
#[cfg(feature = "demo")]
pub mod rehearse;
pub mod report;
pub mod schema;
pub mod show;
pub mod status;
pub mod unlock;
pub mod validate;
