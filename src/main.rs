//! `swing`: the command-line interface. Everything lives in the library (`swing::cli` parses
//! and dispatches to `swing::commands`); this file only exits with the code a command returns.
//!
//! Must not: hold any logic. It is the only place in the workspace that exits the process.

/// mimalloc instead of the system allocator: planning many files on all cores allocates
/// small values at a high rate, where glibc's allocator spent a third of the time (see
/// `docs/performance.md`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(swing::cli::run().code());
}
