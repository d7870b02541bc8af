//! `swing`: the command-line interface. Parses the command line, dispatches to one file per
//! command under `commands/`, and exits with the code the command returns.
//!
//! The only place (with `commands/`) that knows clap, the terminal and exit codes. Must not:
//! hold engine logic or resolve secrets itself.

use clap::{Parser, Subcommand};

mod commands;
use swing::wiring;

/// Declarative plan/apply engine for BeyondTrust PRA B Series appliance upgrades.
#[derive(Debug, Parser)]
#[command(name = "swing", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check plan files: every problem of every file, pointed at file:line:col.
    Validate(commands::validate::ValidateArgs),
    /// Print the JSON schema of the plan format (v1).
    Schema(commands::schema::SchemaArgs),
    /// Compile plans into their steps: order, operator instructions, estimates, downtime.
    Plan(commands::plan::PlanArgs),
    /// The step dependency graph of a plan (DOT, Mermaid) or its schedule (Mermaid Gantt).
    Graph(commands::graph::GraphArgs),
    /// Render a saved plan (`swing plan --out`) or a JSON plan view again.
    Show(commands::show::ShowArgs),
    /// Apply a saved plan (or a plan file), resumably: journal, lock, gates, windows.
    Apply(commands::apply::ApplyArgs),
    /// Remove a site's apply lock left behind by an apply that died.
    Unlock(commands::unlock::UnlockArgs),
    /// Run a whole change against simulated appliances on this machine, with measured downtime.
    #[cfg(feature = "demo")]
    Demo(commands::demo::DemoArgs),
    /// Watch a site as a client reaches it: outages (measured downtime) and who answered.
    Probe(commands::probe::ProbeArgs),
}

fn main() {
    // Usage errors exit 1 (the documented "error" code), not clap's 2, which means
    // "changes present" for `plan --detailed-exitcode`; --help and --version exit 0.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let _ = e.print();
        std::process::exit(if e.use_stderr() { 1 } else { 0 })
    });
    let code = match &cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Plan(args) => commands::plan::run(args),
        Command::Graph(args) => commands::graph::run(args),
        Command::Show(args) => commands::show::run(args),
        Command::Apply(args) => commands::apply::run(args),
        Command::Unlock(args) => commands::unlock::run(args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => commands::demo::run(args),
        Command::Probe(args) => commands::probe::run(args),
    };
    std::process::exit(code);
}
