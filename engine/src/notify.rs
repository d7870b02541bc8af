//! Notifications: the event an apply sends when it pauses, fails or is done
//! ([`Notification`]), the [`Notifier`] contract the webhook and exec notifiers implement, and
//! the rule a webhook URL must follow ([`check_url`]: `https`, or `http` to a loopback
//! address only).
//!
//! Owns: the notification's fields and its one readable line ([`Notification::text`]), the
//! URL rule (validation checks a literal URL with it, wiring a URL resolved from a secret
//! reference). Must not: send anything, retry, print, or hold a secret (a notification is
//! built from the apply's outcome only; the URL and signing key stay with the notifier).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use swing_schema::NotifyEvent;

/// What a notification tells: the change, where it stands, what it waits for and how to go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// `paused`, `waiting-for-window`, `failed` or `done`.
    pub event: NotifyEvent,
    /// The change name (plan `name`).
    pub change: String,
    /// The site (plan `site`).
    pub site: String,
    /// The step it paused or failed at (the first, when several wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// What is awaited, one line per waiting step (`waiting for confirmation of b.verify-manual`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub awaiting: Vec<String>,
    /// The exact command that continues a paused apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_command: Option<String>,
    /// Why the step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How the apply ended: `done`, `paused`, `failed`.
    pub outcome: String,
    /// When, RFC 3339 UTC with milliseconds.
    pub at: String,
}

impl Notification {
    /// One readable line (the `text` format of a webhook).
    pub fn text(&self) -> String {
        let mut s = format!("swing: {} on {}", self.change, self.site);
        match self.event {
            NotifyEvent::Done => s.push_str(" is done"),
            NotifyEvent::Failed => {
                s.push_str(" failed");
                if let Some(step) = &self.step {
                    s.push_str(&format!(" at {step}"));
                }
                if let Some(m) = &self.message {
                    s.push_str(&format!(": {m}"));
                }
            }
            NotifyEvent::Paused | NotifyEvent::WaitingForWindow => {
                s.push_str(" paused");
                if !self.awaiting.is_empty() {
                    s.push_str(&format!(": {}", self.awaiting.join("; ")));
                }
                if let Some(c) = &self.resume_command {
                    s.push_str(&format!("; continue with: {c}"));
                }
            }
        }
        s.replace(['\n', '\r'], " ")
    }
}

/// Why a notification could not be delivered (secret-free: never the URL of a reference).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotifyError {
    pub message: String,
}

impl NotifyError {
    pub fn new(message: impl Into<String>) -> NotifyError {
        NotifyError {
            message: message.into(),
        }
    }
}

/// Delivers notifications to one target. One call is one attempt; the caller retries.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// How the target is named in messages and the journal: `webhook #1` (never a URL that
    /// came from a secret reference), `exec #2 (./notify.sh)`.
    fn describe(&self) -> String;
    /// The events this target hears about.
    fn wants(&self, event: NotifyEvent) -> bool;
    /// One attempt to deliver `n`.
    async fn send(&self, n: &Notification) -> Result<(), NotifyError>;
}

/// What is wrong with a webhook URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlProblem {
    #[error("the webhook URL is not a URL ({0})")]
    Unparsable(String),
    #[error("the webhook URL uses `{0}`; only https (or http to this host) is sent to")]
    Scheme(String),
    #[error("the webhook URL sends in plain http to `{0}`, which is not a loopback address")]
    PlainHttp(String),
}

impl UrlProblem {
    /// The short label of the diagnostic.
    pub fn label(&self) -> &'static str {
        match self {
            UrlProblem::Unparsable(_) => "not a URL",
            UrlProblem::Scheme(_) => "not https",
            UrlProblem::PlainHttp(_) => "plain http beyond this host",
        }
    }
    /// What to do.
    pub fn help(&self) -> &'static str {
        match self {
            UrlProblem::Unparsable(_) => "write the full URL, e.g. https://hooks.example.com/swing",
            UrlProblem::Scheme(_) | UrlProblem::PlainHttp(_) => {
                "use https (verified; `ca_file` for a private CA); plain http only to 127.0.0.1, ::1 or localhost"
            }
        }
    }
}

/// A webhook URL swing sends to: `https`, or `http` to 127.0.0.0/8, `::1` or `localhost`.
pub fn check_url(url: &str) -> Result<url::Url, UrlProblem> {
    let parsed = url::Url::parse(url).map_err(|e| UrlProblem::Unparsable(e.to_string()))?;
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(parsed),
        "http" => match parsed.host() {
            Some(url::Host::Ipv4(a)) if a.is_loopback() => Ok(parsed),
            Some(url::Host::Ipv6(a)) if a.is_loopback() => Ok(parsed),
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Ok(parsed),
            Some(h) => Err(UrlProblem::PlainHttp(h.to_string())),
            None => Err(UrlProblem::Unparsable("no host".into())),
        },
        "https" => Err(UrlProblem::Unparsable("no host".into())),
        other => Err(UrlProblem::Scheme(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_to_loopback() {
        for ok in [
            "https://hooks.example.com/x",
            "http://127.0.0.1:8080/hook",
            "http://127.5.6.7/",
            "http://[::1]:9/",
            "http://localhost/x",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        assert!(matches!(
            check_url("http://hooks.example.com/x"),
            Err(UrlProblem::PlainHttp(h)) if h == "hooks.example.com"
        ));
        assert!(matches!(
            check_url("http://10.0.0.1/x"),
            Err(UrlProblem::PlainHttp(_))
        ));
        assert!(matches!(
            check_url("ftp://example.com/"),
            Err(UrlProblem::Scheme(_))
        ));
        assert!(matches!(
            check_url("hooks.example.com"),
            Err(UrlProblem::Unparsable(_))
        ));
    }

    #[test]
    fn text_is_one_line_with_what_is_awaited_and_the_resume_command() {
        let n = Notification {
            event: NotifyEvent::Paused,
            change: "upgrade".into(),
            site: "access.example.com".into(),
            step: Some("b.verify-manual".into()),
            awaiting: vec!["waiting for confirmation of b.verify-manual".into()],
            resume_command: Some("swing apply --resume --confirm b.verify-manual".into()),
            message: None,
            outcome: "paused".into(),
            at: "2026-12-02T10:00:00.000Z".into(),
        };
        assert_eq!(
            n.text(),
            "swing: upgrade on access.example.com paused: waiting for confirmation of \
             b.verify-manual; continue with: swing apply --resume --confirm b.verify-manual"
        );
    }
}
