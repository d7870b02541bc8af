//! Who is acting: the name recorded with every confirmation and abandonment — `--as NAME`,
//! else `SWING_ACTOR`, else the CI system's actor (`GITHUB_ACTOR`, `GITLAB_USER_LOGIN`,
//! `BUILD_REQUESTEDFOREMAIL` of Azure Pipelines, `BUILD_USER_ID` of Jenkins), else
//! `user@host`.
//!
//! Owns that order and the shape of the recorded text (one line, at most
//! [`MAX_ACTOR_CHARS`] characters, no control characters). Must not: authenticate anyone —
//! the name is what the environment says; signing saved plans is how approval is proven.

/// Longest actor name recorded.
pub const MAX_ACTOR_CHARS: usize = 128;
/// Longest `--note` recorded.
pub const MAX_NOTE_CHARS: usize = 1000;

/// The CI systems' variables naming who started the job, in the order they are tried.
const CI_ACTORS: [&str; 4] = [
    "GITHUB_ACTOR",
    "GITLAB_USER_LOGIN",
    "BUILD_REQUESTEDFOREMAIL",
    "BUILD_USER_ID",
];

/// The actor of this invocation.
pub fn resolve(given: Option<&str>) -> String {
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let name = given
        .map(str::to_owned)
        .filter(|v| !v.trim().is_empty())
        .or_else(|| from_env("SWING_ACTOR"))
        .or_else(|| CI_ACTORS.iter().find_map(|k| from_env(k)))
        .unwrap_or_else(|| {
            let user = from_env("USER")
                .or_else(|| from_env("LOGNAME"))
                .unwrap_or_else(|| "unknown-user".to_owned());
            format!("{user}@{}", swing_engine::apply::lock::host_name())
        });
    one_line(&name, MAX_ACTOR_CHARS)
}

/// A `--note` as recorded: one line, bounded.
pub fn note(given: Option<&str>) -> Option<String> {
    given
        .map(|n| one_line(n, MAX_NOTE_CHARS))
        .filter(|n| !n.is_empty())
}

fn one_line(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_name_is_one_bounded_line() {
        assert_eq!(resolve(Some("  alice\n\u{1b}[31m ")), "alice [31m");
        assert_eq!(
            resolve(Some(&"x".repeat(500))).chars().count(),
            MAX_ACTOR_CHARS
        );
        assert_eq!(note(Some("  ")), None);
        assert_eq!(
            note(Some("line one\nline two")).as_deref(),
            Some("line one line two")
        );
    }
}
