//! The `swing` package as a library: what the binary and its integration tests share.
//! `wiring` builds the providers a plan names (the same for `swing apply`, `swing demo` and
//! the lifecycle tests).
//!
//! Must not: hold command-line parsing, terminal output or exit codes (those stay in the
//! binary's `commands/`).

pub mod wiring;
