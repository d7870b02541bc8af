//! `swing`: the command-line interface. Everything lives in the library (`swing::cli` parses
//! and dispatches to `swing::commands`); this file only exits with the code a command returns.
//!
//! Must not: hold any logic. It is the only place in the workspace that exits the process.

fn main() {
    std::process::exit(swing::cli::run().code());
}
