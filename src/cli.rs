//! The command line of `swing`: the clap definition, the global `--color` choice, and the
//! dispatch of each subcommand to its module under `commands/`.
//!
//! Owns: which subcommands exist and the one place a [`CliError`] is printed. Must not: exit
//! the process (`main.rs` does, with the returned [`Exit`]) or hold any command's logic.

use clap::{Parser, Subcommand};

use crate::commands;
use crate::exit::{CliError, CliResult, Exit};
use crate::views::color::ColorWhen;

/// Declarative plan/apply engine for BeyondTrust PRA B Series appliance upgrades.
#[derive(Debug, Parser)]
#[command(name = "swing", version, about, propagate_version = true)]
pub struct Cli {
    /// When to use colour: auto (a terminal, honouring NO_COLOR, CLICOLOR and CLICOLOR_FORCE),
    /// always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plan files: every problem of every file, pointed at file:line:col.
    #[command(
        after_help = "Examples:\n  swing validate plans/site-a.yaml\n  swing validate plans/                 # every *.yaml / *.yml plan in the directory\n  swing validate --format json plans/    # diagnostics as JSON"
    )]
    Validate(commands::validate::ValidateArgs),
    /// Print the JSON schema of the plan format (v1).
    #[command(
        after_help = "Examples:\n  swing schema > plan.schema.json\n  # first line of a plan, for editors using yaml-language-server:\n  # yaml-language-server: $schema=./plan.schema.json"
    )]
    Schema(commands::schema::SchemaArgs),
    /// Compile plans into their steps: order, operator instructions, estimates, downtime.
    #[command(
        after_help = "Examples:\n  swing plan site-a.yaml                          # observe the site, show the steps still needed\n  swing plan --offline site-a.yaml                # compile only, no network\n  swing plan --out site-a.plan.json site-a.yaml   # save the plan for `swing apply`\n  swing plan --detailed-exitcode site-a.yaml      # exit 2 when there are changes"
    )]
    Plan(commands::plan::PlanArgs),
    /// The step dependency graph of a plan (DOT, Mermaid) or its schedule (Mermaid Gantt).
    #[command(
        after_help = "Examples:\n  swing graph site-a.yaml | dot -Tsvg > steps.svg\n  swing graph --format mermaid site-a.yaml\n  swing graph --format gantt site-a.yaml"
    )]
    Graph(commands::graph::GraphArgs),
    /// Render a saved plan (`swing plan --out`) or a JSON plan view again.
    #[command(
        after_help = "Examples:\n  swing show site-a.plan.json\n  swing show --format json site-a.plan.json\n  swing show --refresh site-a.plan.json   # mark what changed on the site since the plan was saved"
    )]
    Show(commands::show::ShowArgs),
    /// Apply a saved plan (or a plan file), resumably: journal, lock, gates, windows.
    #[command(
        after_help = "Examples:\n  swing apply site-a.plan.json                        # apply exactly the saved plan\n  swing apply --output json site-a.plan.json          # event stream v1 (docs/events.md)\n  swing apply --resume --confirm backup.certificates  # continue after an operator step\n\nExit codes: 0 done, 1 error, 3 paused (waiting for an operator or a window), 4 locked."
    )]
    Apply(commands::apply::ApplyArgs),
    /// Many sites in waves: plan them, apply them (canary, gates, failure budget), one table.
    #[command(
        after_help = "Examples:\n  swing fleet plan --waves 1,10%,100% --out saved/ plans/\n  swing fleet apply --waves 1,10%,100% --max-failures 0 saved/\n  swing fleet status --format markdown saved/"
    )]
    Fleet(commands::fleet::FleetArgs),
    /// Remove a site's apply lock left behind by an apply that died.
    #[command(
        after_help = "Examples:\n  swing unlock site-a.plan.json\n  swing unlock --force site-a.plan.json   # the holder is known to be dead"
    )]
    Unlock(commands::unlock::UnlockArgs),
    /// Run a whole change against simulated appliances on this machine, with measured downtime.
    #[cfg(feature = "demo")]
    #[command(after_help = "Examples:\n  swing demo\n  swing demo async-dns --keep /tmp/lab")]
    Demo(commands::demo::DemoArgs),
    /// Rehearse this plan on a twin of this site (simulated, faults included); changes nothing.
    #[cfg(feature = "demo")]
    #[command(
        after_help = "Examples:\n  swing rehearse site-a.yaml                       # observe the site read-only, rehearse on its twin\n  swing rehearse --offline site-a.yaml             # twin from the plan's facts\n  swing rehearse --fault install-fails@b.install site-a.yaml\n  swing rehearse --install-takes 5s --format markdown site-a.yaml >> ticket.md\n\nExit codes: 0 the change completed on the twin, 1 it halted (the report says where and why) or an error."
    )]
    Rehearse(commands::rehearse::RehearseArgs),
    /// Where a change stands: outcome, phase, what it waits for, lock, time without failover.
    #[command(
        after_help = "Examples:\n  swing status site-a.plan.json\n  swing status --format json site-a.yaml   # outcome, phase, steps_done, waiting, unprotected_s, lock\n  swing status --format markdown site-a.plan.json >> ticket.md"
    )]
    Status(commands::status::StatusArgs),
    /// The change record for the ticket: steps, who confirmed them, backups, downtime.
    #[command(
        after_help = "Examples:\n  swing report site-a.plan.json >> ticket.md\n  swing report --format json site-a.plan.json   # steps[], downtime_measured_s, unprotected_s, backups[]"
    )]
    Report(commands::report::ReportArgs),
    /// Check a site is ready for its change, days before the window; changes nothing.
    #[command(
        after_help = "Examples:\n  swing doctor site-a.yaml\n  swing doctor --format markdown plans/ > readiness.md\n  swing doctor --capture ./capture --redact-hostnames site-a.yaml   # raw API answers, for a compatibility report\n\nExit codes: 0 ready, 1 a check blocks the change (each named with its fix) or an error."
    )]
    Doctor(commands::doctor::DoctorArgs),
    /// Watch a site as a client reaches it: outages (measured downtime) and who answered.
    #[command(
        after_help = "Examples:\n  swing probe pra.example.com --address 192.0.2.10 --duration 30s\n  swing probe pra.example.com --dns 192.0.2.53:53 --output json"
    )]
    Probe(commands::probe::ProbeArgs),
    /// Print the shell completion script for bash, zsh or fish.
    #[command(
        after_help = "Examples:\n  source <(swing completions bash)\n  swing completions zsh > \"${fpath[1]}/_swing\"\n  swing completions fish > ~/.config/fish/completions/swing.fish"
    )]
    Completions(commands::completions::CompletionsArgs),
    /// Print the manual page (roff) of swing and every subcommand.
    #[command(
        after_help = "Examples:\n  swing man | man -l -\n  swing man > /usr/local/share/man/man1/swing.1"
    )]
    Man(commands::man::ManArgs),
}

/// Parses the command line, runs the subcommand, prints its error if it failed, and returns
/// the exit the process ends with.
pub fn run() -> Exit {
    // Usage errors exit 1 (the documented "error" code), not clap's 2, which means
    // "changes present" for `plan --detailed-exitcode`; --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Error
            } else {
                Exit::Ok
            };
        }
    };
    crate::views::color::choose(cli.color);
    match dispatch(&cli.command) {
        Ok(exit) => exit,
        Err(e) => report(&e),
    }
}

fn dispatch(command: &Command) -> CliResult {
    match command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Schema(args) => commands::schema::run(args),
        Command::Plan(args) => commands::plan::run(args),
        Command::Graph(args) => commands::graph::run(args),
        Command::Show(args) => commands::show::run(args),
        Command::Apply(args) => commands::apply::run(args),
        Command::Unlock(args) => commands::unlock::run(args),
        Command::Fleet(args) => commands::fleet::run(args),
        #[cfg(feature = "demo")]
        Command::Demo(args) => commands::demo::run(args),
        #[cfg(feature = "demo")]
        Command::Rehearse(args) => commands::rehearse::run(args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Probe(args) => commands::probe::run(args),
        Command::Completions(args) => commands::completions::run(args),
        Command::Man(args) => commands::man::run(args),
    }
}

/// Prints an error once, with its cause chain, and returns its exit.
fn report(e: &CliError) -> Exit {
    // Error text carries plan strings, command stderr and appliance answers: no control
    // character of theirs reaches the terminal.
    eprintln!("{}", swing_engine::render::escape::terminal(&e.to_string()));
    e.exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_is_global_and_defaults_to_auto() {
        let cli = Cli::try_parse_from(["swing", "validate", "p.yaml"]).unwrap();
        assert_eq!(cli.color, ColorWhen::Auto);
        let cli = Cli::try_parse_from(["swing", "validate", "p.yaml", "--color", "never"]).unwrap();
        assert_eq!(cli.color, ColorWhen::Never);
        let cli = Cli::try_parse_from(["swing", "--color", "always", "plan", "p.yaml"]).unwrap();
        assert_eq!(cli.color, ColorWhen::Always);
        assert!(Cli::try_parse_from(["swing", "--color", "sometimes", "schema"]).is_err());
    }
}
