//! The `swing` command line as a library: the clap definition and dispatch (`cli`), one module
//! per subcommand (`commands`), the output seam (`views`: human or JSON, colour, progress,
//! reports), exit codes and errors (`exit`), provider wiring and secret resolution (`wiring`),
//! and the one async runtime every command runs the engine on ([`runtime`]).
//!
//! Must not: hold engine logic (compile, observe, diff, apply live in `swing_engine`) or exit
//! the process (only `main.rs` does).

pub mod actor;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod fleet;
pub mod target;
pub mod views;
pub mod wiring;

/// The tokio runtime the engine runs on: multi-threaded, with I/O and timers.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
