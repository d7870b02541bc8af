//! The one colour decision of `swing`: `--color auto|always|never`, and for `auto` what
//! `anstream` decides for stdout (a terminal that supports colour, honouring `NO_COLOR`,
//! `CLICOLOR` and `CLICOLOR_FORCE`).
//!
//! Owns: whether output is coloured. Must not: pick colours or write output itself.

use anstream::ColorChoice;

/// When to colour output (the global `--color` flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR or CLICOLOR=0 say otherwise (CLICOLOR_FORCE forces it).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Records the `--color` choice for the whole process; called once, before any output.
pub fn choose(when: ColorWhen) {
    ColorChoice::write_global(match when {
        ColorWhen::Auto => ColorChoice::Auto,
        ColorWhen::Always => ColorChoice::Always,
        ColorWhen::Never => ColorChoice::Never,
    });
}

/// Whether what goes to stdout is coloured.
pub fn stdout() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != ColorChoice::Never
}
