//! The notifiers behind `swing_engine::notify::Notifier`: a webhook (an HTTP POST of the
//! event, signed when the plan gives a key) and a command given the event as JSON on stdin.
//!
//! Owns: the webhook's body (`json`: the notification itself; `text`: `{"text": "<line>"}`),
//! its signature (`X-Swing-Signature: sha256=<hex of HMAC-SHA256 of the body>`), its TLS —
//! the appliance provider's verifying configuration ([`crate::beyondtrust::tls`]: the
//! `ca_file` CA only when given, else the platform's roots; never unverified) — and one
//! attempt's error in words that never hold the URL when it came from a secret reference.
//! The command is started the one way commands are ([`crate::process`]), without the
//! plan's secret variables.
//!
//! Must not: retry (the engine does, bounded), print, or follow a redirect (the signed body
//! would go where the plan did not say).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use swing_engine::notify::{Notification, Notifier, NotifyError};
use swing_schema::{NotifyEvent, NotifyFormat, SecretValue};

use crate::beyondtrust::tls;
use crate::process::{Cap, Outcome, Run};

/// How long one webhook request or one command run may take (the engine cuts an attempt off
/// at the same time).
pub const TIMEOUT: Duration = swing_engine::apply::deliver::ATTEMPT_TIMEOUT;

/// The header holding the body's signature.
pub const SIGNATURE_HEADER: &str = "X-Swing-Signature";

/// `sha256=<hex>`: HMAC-SHA256 of `body` keyed with `key`, as sent in [`SIGNATURE_HEADER`].
pub fn signature(key: &SecretValue, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose().as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let mut out = String::from("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A webhook target.
pub struct Webhook {
    /// `webhook #N`, plus the URL when it was written in the plan (not a reference).
    name: String,
    /// How the host is named in a TLS error (`the webhook host` for a secret URL).
    host_label: String,
    url: SecretValue,
    secret: Option<SecretValue>,
    events: Vec<NotifyEvent>,
    format: NotifyFormat,
    http: reqwest::Client,
}

/// What a webhook needs; `url` already checked (`swing_engine::notify::check_url`).
pub struct WebhookConfig {
    /// 1-based place in the plan's `notify`.
    pub index: usize,
    pub url: SecretValue,
    /// The URL came from a secret reference: it is never shown.
    pub url_is_secret: bool,
    pub secret: Option<SecretValue>,
    pub events: Vec<NotifyEvent>,
    pub format: NotifyFormat,
    pub ca_file: Option<PathBuf>,
}

impl Webhook {
    pub fn new(cfg: WebhookConfig) -> Result<Webhook, NotifyError> {
        let parsed = swing_engine::notify::check_url(cfg.url.expose()).map_err(|e| {
            // The problem names the scheme or host only when the URL is not secret.
            if cfg.url_is_secret {
                NotifyError::new(format!(
                    "webhook #{}: the URL its reference holds is refused: {}",
                    cfg.index,
                    e.label()
                ))
            } else {
                NotifyError::new(format!("webhook #{}: {e}", cfg.index))
            }
        })?;
        let (name, host_label) = if cfg.url_is_secret {
            (
                format!("webhook #{}", cfg.index),
                "the webhook host".to_owned(),
            )
        } else {
            (
                format!("webhook #{} ({})", cfg.index, cfg.url.expose()),
                parsed.host_str().unwrap_or_default().to_owned(),
            )
        };
        let config = tls::client_config(cfg.ca_file.as_deref())
            .map_err(|e| NotifyError::new(format!("{name}: {}", e.message)))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(TIMEOUT)
            .timeout(TIMEOUT)
            .user_agent(concat!("swing/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                NotifyError::new(format!(
                    "{name}: cannot build the HTTP client: {}",
                    e.without_url()
                ))
            })?;
        Ok(Webhook {
            name,
            host_label,
            url: cfg.url,
            secret: cfg.secret,
            events: cfg.events,
            format: cfg.format,
            http,
        })
    }

    /// The body sent for `n`.
    pub fn body(&self, n: &Notification) -> Vec<u8> {
        match self.format {
            NotifyFormat::Json => serde_json::to_vec(n),
            NotifyFormat::Text => serde_json::to_vec(&serde_json::json!({ "text": n.text() })),
        }
        .unwrap_or_default()
    }
}

#[async_trait]
impl Notifier for Webhook {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = self.body(n);
        let mut req = self
            .http
            .post(self.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.secret {
            req = req.header(SIGNATURE_HEADER, signature(key, &body));
        }
        let resp = req.body(body).send().await.map_err(|e| {
            let why = match tls::find_rustls_error(&e) {
                Some(r) => tls::describe_tls_error(r, &self.host_label),
                None if e.is_timeout() => format!("no answer within {} s", TIMEOUT.as_secs_f64()),
                None if e.is_connect() => "cannot connect".to_owned(),
                None => e.without_url().to_string(),
            };
            NotifyError::new(why)
        })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NotifyError::new(format!("answered HTTP {status}")))
        }
    }
}

/// A command given the notification as JSON on stdin; exit status 0 is delivered.
pub struct ExecNotifier {
    name: String,
    run: Run,
    events: Vec<NotifyEvent>,
}

impl ExecNotifier {
    /// `command` relative to `plan_dir` when it holds a `/`; run in `plan_dir`, without the
    /// variables `env_remove` names (the plan's secret references).
    pub fn new(
        index: usize,
        command: &str,
        args: &[String],
        events: Vec<NotifyEvent>,
        plan_dir: &Path,
        env_remove: Vec<String>,
    ) -> ExecNotifier {
        let dir = std::path::absolute(plan_dir).unwrap_or_else(|_| plan_dir.to_path_buf());
        let program = if command.contains('/') && Path::new(command).is_relative() {
            dir.join(command)
        } else {
            PathBuf::from(command)
        };
        let run = Run::new(program, args.to_vec())
            .current_dir(Some(dir))
            .env_remove(env_remove)
            .timeout(TIMEOUT)
            .stdout_cap(Cap::head(4 * 1024))
            .stderr_cap(Cap::tail(2 * 1024));
        ExecNotifier {
            name: format!("exec #{index} ({command})"),
            run,
            events,
        }
    }
}

#[async_trait]
impl Notifier for ExecNotifier {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }

    async fn send(&self, n: &Notification) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(n).unwrap_or_default();
        let done = self
            .run
            .clone()
            .stdin(body)
            .run()
            .await
            .map_err(|e| NotifyError::new(e.to_string()))?;
        match done.outcome {
            Outcome::Exited(s) if s.success() => Ok(()),
            Outcome::Exited(s) => {
                let stderr = String::from_utf8_lossy(&done.stderr.bytes);
                let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
                Err(NotifyError::new(match last {
                    Some(l) => format!("exited with {s}: {}", l.trim()),
                    None => format!("exited with {s}"),
                }))
            }
            Outcome::TimedOut => Err(NotifyError::new(format!(
                "did not finish within {} s (killed)",
                TIMEOUT.as_secs_f64()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str, url_is_secret: bool) -> WebhookConfig {
        WebhookConfig {
            index: 2,
            url: SecretValue::new(url),
            url_is_secret,
            secret: None,
            events: NotifyEvent::all(),
            format: NotifyFormat::Json,
            ca_file: None,
        }
    }

    #[test]
    fn a_url_from_a_reference_is_checked_and_never_shown() {
        let url = "http://hooks.example.com/services/T0KEN-secret";
        let e = Webhook::new(config(url, true))
            .err()
            .expect("plain http refused");
        assert!(e.message.starts_with("webhook #2:"), "{}", e.message);
        assert!(!e.message.contains("hooks.example.com"), "{}", e.message);
        let e = Webhook::new(config(url, false))
            .err()
            .expect("plain http refused");
        assert!(e.message.contains("hooks.example.com"), "{}", e.message);
        let hook = Webhook::new(config("https://hooks.example.com/T0KEN-secret", true)).unwrap();
        assert_eq!(hook.describe(), "webhook #2");
        let hook = Webhook::new(config("http://127.0.0.1:9/x", false)).unwrap();
        assert_eq!(hook.describe(), "webhook #2 (http://127.0.0.1:9/x)");
    }

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231, test case 2.
        let key = SecretValue::new("Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn paused() -> Notification {
        Notification {
            event: NotifyEvent::Paused,
            change: "chg".into(),
            site: "site.example".into(),
            step: None,
            awaiting: vec![],
            resume_command: None,
            message: None,
            outcome: "paused".into(),
            at: "2026-12-02T10:00:00.000Z".into(),
        }
    }

    /// An https webhook is verified: against a server whose CA is not trusted the attempt
    /// fails in the handshake, saying so; with that CA as `ca_file` the request is sent
    /// (the simulator answers it with an HTTP status: no TLS error).
    #[tokio::test]
    async fn https_is_verified_against_the_system_roots_or_only_the_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let sim = swing_sim::Simulator::start(swing_sim::SimConfig::new("a", dir.path()))
            .await
            .unwrap();
        let url = format!("{}/hooks/x", sim.url());
        let untrusted = Webhook::new(config(&url, false)).unwrap();
        let e = untrusted.send(&paused()).await.unwrap_err();
        assert!(e.message.contains("not trusted"), "{}", e.message);
        let mut cfg = config(&url, true);
        cfg.ca_file = Some(sim.ca_pem_path());
        let trusted = Webhook::new(cfg).unwrap();
        match trusted.send(&paused()).await {
            Ok(()) => {}
            Err(e) => assert!(e.message.starts_with("answered HTTP"), "{}", e.message),
        }
        sim.shutdown().await;
    }
}
