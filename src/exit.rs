//! How a `swing` command ends: an [`Exit`] code (documented in docs/plan-format.md) or a
//! [`CliError`] that carries its cause chain and is printed once, by `main`.
//!
//! Owns: the exit codes and the wording of the final error line. Must not: exit the process
//! (only `main.rs` does) or print anything but the error it was handed.

use std::fmt;

/// The exit code of a command that ran to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// Done, or nothing to do.
    Ok = 0,
    /// An error, a failed step, error findings, drift, a stale plan — already reported.
    Error = 1,
    /// `plan --detailed-exitcode`: there are changes.
    Changes = 2,
    /// Paused, waiting for a person or a window.
    Paused = 3,
    /// Another apply holds the lock.
    Locked = 4,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// What a command returns: an exit, or an error to print before exiting 1.
pub type CliResult = Result<Exit, CliError>;

/// An error that ends a command with [`Exit::Error`]. Printed as `PREFIX: message`, followed by
/// each cause of its chain that the message does not already contain, so nothing is said twice.
#[derive(Debug)]
pub struct CliError {
    prefix: String,
    error: anyhow::Error,
}

impl CliError {
    /// An error printed as `error: …`.
    pub fn new(error: impl Into<anyhow::Error>) -> CliError {
        CliError::with_prefix("error", error)
    }

    /// An error printed as `error: …` from a message.
    pub fn msg(message: impl fmt::Display) -> CliError {
        CliError::new(anyhow::anyhow!("{message}"))
    }

    /// An error printed as `PREFIX: …` (e.g. `swing plan: …`).
    pub fn with_prefix(prefix: impl Into<String>, error: impl Into<anyhow::Error>) -> CliError {
        CliError {
            prefix: prefix.into(),
            error: error.into(),
        }
    }

    /// A message printed as `PREFIX: …`.
    pub fn prefixed(prefix: impl Into<String>, message: impl fmt::Display) -> CliError {
        CliError::with_prefix(prefix, anyhow::anyhow!("{message}"))
    }

    /// The exit code this error ends the command with.
    pub fn exit(&self) -> Exit {
        Exit::Error
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.error.to_string();
        write!(f, "{}: {said}", self.prefix)?;
        for cause in self.error.chain().skip(1) {
            let text = cause.to_string();
            if !said.contains(&text) {
                write!(f, ": {text}")?;
                said.push_str(&text);
            }
        }
        Ok(())
    }
}

/// Any error becomes an `error: …` line.
impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(e: E) -> CliError {
        CliError::new(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Embeds {
        path: &'static str,
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the journal is unusable")]
    struct Hides {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let e = CliError::new(Embeds {
            path: "x.plan",
            source: std::io::Error::other("disk on fire"),
        });
        assert_eq!(e.to_string(), "error: cannot read x.plan: disk on fire");
    }

    #[test]
    fn a_cause_the_message_leaves_out_is_appended() {
        let e = CliError::with_prefix(
            "swing plan",
            Hides {
                source: std::io::Error::other("disk on fire"),
            },
        );
        assert_eq!(
            e.to_string(),
            "swing plan: the journal is unusable: disk on fire"
        );
        assert_eq!(e.exit(), Exit::Error);
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        let all = [
            Exit::Ok,
            Exit::Error,
            Exit::Changes,
            Exit::Paused,
            Exit::Locked,
        ];
        assert_eq!(all.map(Exit::code), [0, 1, 2, 3, 4]);
    }
}
