//! The `operator: sim` bridge: performs operator steps through the simulator's `/_sim`
//! automation endpoints (documented in `docs/simulator.md`), where a person would click.
//!
//! Owns: the mapping of every [`OperatorAction`] to its `/_sim` call, the plan-name →
//! simulator URL table, and the little state one step hands to the next (a certificate
//! bundle exported from one appliance and imported into another, the fingerprint to make
//! default). Calls go over the same verifying TLS setup the appliance provider uses.
//!
//! Must not: be used against a real appliance (there is no `/_sim` there), verify outcomes
//! (the engine does that through the vendor APIs), or put the backup password or a
//! certificate passphrase into an error.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use serde_json::{Value, json};
use swing_engine::provider::{
    ErrorKind, OperatorAction, OperatorBridge, OperatorTask, ProviderError, ProviderResult,
};
use swing_schema::SecretValue;
use tokio::sync::Mutex;

use crate::beyondtrust::tls;

/// One simulated appliance the bridge can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTarget {
    /// Plan name of the appliance (`a`, `b`, `old`, …).
    pub name: String,
    /// `https://IP:PORT` of the simulator.
    pub url: String,
}

/// Performs operator steps on simulators.
pub struct SimOperator {
    http: reqwest::Client,
    targets: Vec<SimTarget>,
    backup_password: Option<SecretValue>,
    /// Certificate bundles exported per appliance, with the passphrase used.
    exported: Mutex<HashMap<String, (String, SecretValue)>>,
    /// Fingerprint of the certificate last imported per appliance.
    imported: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for SimOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimOperator")
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl SimOperator {
    /// `ca_file` verifies the simulators (their shared CA); `backup_password` opens backups
    /// for `RestoreBackup`.
    pub fn new(
        targets: Vec<SimTarget>,
        ca_file: Option<PathBuf>,
        backup_password: Option<SecretValue>,
        timeout: Duration,
    ) -> ProviderResult<Self> {
        let config = tls::client_config(ca_file.as_deref())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .https_only(true)
            .http1_only()
            .no_proxy()
            .pool_max_idle_per_host(0)
            .timeout(timeout)
            .build()
            .map_err(|e| {
                ProviderError::new(
                    ErrorKind::Invalid,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(SimOperator {
            http,
            targets,
            backup_password,
            exported: Mutex::new(HashMap::new()),
            imported: Mutex::new(HashMap::new()),
        })
    }

    fn target(&self, name: &str) -> ProviderResult<&SimTarget> {
        self.targets.iter().find(|t| t.name == name).ok_or_else(|| {
            ProviderError::new(
                ErrorKind::NotFound,
                format!("operator: sim has no simulator for appliance {name:?}"),
            )
        })
    }

    /// `host:port` of a target's URL.
    fn authority(t: &SimTarget) -> ProviderResult<String> {
        let url = reqwest::Url::parse(&t.url).map_err(|e| {
            ProviderError::new(ErrorKind::Invalid, format!("simulator URL {}: {e}", t.url))
        })?;
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(443);
        Ok(format!("{host}:{port}"))
    }

    /// POSTs `body` to `/_sim/<path>` of `appliance`; returns the JSON answer.
    async fn post(
        &self,
        step: &str,
        appliance: &str,
        path: &str,
        body: Value,
    ) -> ProviderResult<Value> {
        let t = self.target(appliance)?;
        let url = format!("{}/_sim/{path}", t.url.trim_end_matches('/'));
        let res = self
            .http
            .post(&url)
            .header(reqwest::header::CONNECTION, "close")
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                if let Some(r) = tls::find_rustls_error(&e) {
                    return ProviderError::new(
                        ErrorKind::Tls,
                        format!("{step}: {}", tls::describe_tls_error(r, &t.url)),
                    );
                }
                let kind = if e.is_timeout() || e.is_connect() {
                    ErrorKind::Transient
                } else {
                    ErrorKind::Failed
                };
                ProviderError::new(
                    kind,
                    format!("{step}: /_sim/{path} on {appliance} ({}): {e}", t.url),
                )
            })?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() || answer.get("ok") == Some(&Value::Bool(false)) {
            let msg = answer
                .get("error")
                .and_then(Value::as_str)
                .map(|s| s.chars().take(300).collect::<String>())
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            let kind = match status.as_u16() {
                409 => ErrorKind::Conflict,
                404 => ErrorKind::NotFound,
                400 => ErrorKind::Invalid,
                s if s >= 500 => ErrorKind::Transient,
                _ => ErrorKind::Failed,
            };
            return Err(ProviderError::new(
                kind,
                format!("{step}: /_sim/{path} on {appliance} failed: {msg}"),
            ));
        }
        Ok(answer)
    }

    async fn export(&self, step: &str, appliance: &str) -> ProviderResult<(String, SecretValue)> {
        let passphrase = SecretValue::new(format!(
            "{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        ));
        let answer = self
            .post(
                step,
                appliance,
                "certificates/export",
                json!({ "passphrase": passphrase.expose() }),
            )
            .await?;
        let bundle = answer
            .get("bundle_pem")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ProviderError::new(
                    ErrorKind::Failed,
                    format!("{step}: export returned no bundle"),
                )
            })?
            .to_owned();
        self.exported
            .lock()
            .await
            .insert(appliance.to_owned(), (bundle.clone(), passphrase.clone()));
        Ok((bundle, passphrase))
    }
}

/// Saves the certificate chain of an exported bundle as `DIR/<appliance>-certificate.pem`
/// (mode 0600), where a person saves the export: the step's check reads it from there. Only the
/// `CERTIFICATE` blocks are written — the private key stays in memory, for the import.
async fn write_export(
    step: &str,
    appliance: &str,
    directory: &std::path::Path,
    bundle: &str,
) -> ProviderResult<()> {
    let mut chain = String::new();
    let mut inside = false;
    for line in bundle.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            inside = true;
        }
        if inside {
            chain.push_str(line);
            chain.push('\n');
        }
        if line.starts_with("-----END CERTIFICATE-----") {
            inside = false;
        }
    }
    let path = directory.join(format!("{appliance}-certificate.pem"));
    let failed = |e: std::io::Error| {
        ProviderError::new(
            ErrorKind::Failed,
            format!("{step}: cannot save the export as {}: {e}", path.display()),
        )
    };
    tokio::fs::create_dir_all(directory).await.map_err(failed)?;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(0o600);
    let mut file = options.open(&path).await.map_err(failed)?;
    tokio::io::AsyncWriteExt::write_all(&mut file, chain.as_bytes())
        .await
        .map_err(failed)?;
    file.sync_all().await.map_err(failed)
}

#[async_trait]
impl OperatorBridge for SimOperator {
    async fn reached(&self, task: &OperatorTask) -> ProviderResult<Option<bool>> {
        let OperatorAction::Install { version, .. } = &task.action else {
            return Ok(None);
        };
        let t = self.target(&task.appliance)?;
        let url = format!("{}/_sim/state", t.url.trim_end_matches('/'));
        let answer = self
            .http
            .get(&url)
            .header(reqwest::header::CONNECTION, "close")
            .send()
            .await;
        // An installing simulator refuses connections: it cannot say, so the engine waits.
        let Ok(res) = answer else { return Ok(None) };
        let Ok(state) = res.json::<Value>().await else {
            return Ok(None);
        };
        let started = state["status"] == "installing"
            || state["version"].as_str() == Some(version.as_str())
            || state["actions"]
                .as_array()
                .is_some_and(|a| a.iter().any(|r| r["action"] == "install.started"));
        Ok(Some(started))
    }

    async fn perform(&self, task: &OperatorTask) -> ProviderResult<()> {
        let step = task.step_id.as_str();
        let on = task.appliance.as_str();
        match &task.action {
            OperatorAction::Install { packages, version } => {
                let body = if packages.is_empty() {
                    json!({ "version": version })
                } else {
                    json!({ "packages": packages })
                };
                self.post(step, on, "install", body).await?;
            }
            OperatorAction::SharedIp { address, enabled } => {
                self.post(
                    step,
                    on,
                    "shared-ip",
                    json!({ "address": address, "enabled": enabled }),
                )
                .await?;
            }
            OperatorAction::SyncNow => {
                // A person waits for the sync to finish before going on; so does the bridge.
                self.post(step, on, "sync-now", json!({ "wait": true }))
                    .await?;
            }
            OperatorAction::BreakFailover => {
                self.post(step, on, "break", json!({})).await?;
            }
            OperatorAction::ConfirmKeys => {
                // The relationship is broken at this point: name the other appliance.
                let peer = self
                    .targets
                    .iter()
                    .find(|t| t.name != on)
                    .map(Self::authority)
                    .transpose()?;
                let body = match peer {
                    Some(p) => json!({ "peer": p }),
                    None => json!({}),
                };
                self.post(step, on, "confirm-keys", body).await?;
            }
            OperatorAction::EstablishFailover {
                backup_address,
                peer_port,
            } => {
                // Plan addresses name appliances; a simulator listens on its own port.
                let by_plan = self.targets.iter().find(|t| {
                    t.name != on
                        && (t.name == *backup_address
                            || Self::authority(t).is_ok_and(|a| {
                                a.rsplit_once(':').is_some_and(|(h, _)| h == backup_address)
                            }))
                });
                let body = match by_plan {
                    Some(t) => json!({ "backup_address": Self::authority(t)? }),
                    None => json!({ "backup_address": backup_address, "peer_port": peer_port }),
                };
                self.post(step, on, "establish", body).await?;
            }
            OperatorAction::ExportCertificate { directory } => {
                let (bundle, _) = self.export(step, on).await?;
                write_export(step, on, directory, &bundle).await?;
            }
            OperatorAction::ImportCertificate { from_appliance } => {
                let cached = self.exported.lock().await.get(from_appliance).cloned();
                let (bundle, passphrase) = match cached {
                    Some(c) => c,
                    None => self.export(step, from_appliance).await?,
                };
                let answer = self
                    .post(
                        step,
                        on,
                        "certificates/import",
                        json!({ "bundle_pem": bundle, "passphrase": passphrase.expose(), "name": format!("from-{from_appliance}") }),
                    )
                    .await?;
                if let Some(fp) = answer.get("leaf_sha256").and_then(Value::as_str) {
                    self.imported
                        .lock()
                        .await
                        .insert(on.to_owned(), fp.to_owned());
                }
            }
            OperatorAction::DefaultCertificate => {
                let fp = self.imported.lock().await.get(on).cloned().ok_or_else(|| {
                    ProviderError::new(
                        ErrorKind::Invalid,
                        format!("{step}: no certificate was imported into {on} by this bridge"),
                    )
                })?;
                self.post(
                    step,
                    on,
                    "certificates/default",
                    json!({ "leaf_sha256": fp }),
                )
                .await?;
            }
            OperatorAction::VaultKey => {
                self.post(step, on, "vault-key", json!({})).await?;
            }
            OperatorAction::ClientThrottle {
                max_concurrent_upgrades,
            } => {
                self.post(
                    step,
                    on,
                    "clients/throttle",
                    json!({ "max_concurrent_upgrades": max_concurrent_upgrades }),
                )
                .await?;
            }
            OperatorAction::ClientFollowup => {
                self.post(step, on, "clients/followup", json!({})).await?;
            }
            OperatorAction::RestoreBackup { backup_path } => {
                let blob = tokio::fs::read(backup_path).await.map_err(|e| {
                    ProviderError::new(
                        ErrorKind::NotFound,
                        format!("{step}: cannot read {}: {e}", backup_path.display()),
                    )
                })?;
                let body = json!({
                    "backup_base64": base64::engine::general_purpose::STANDARD.encode(&blob),
                    "password": self.backup_password.as_ref().map(SecretValue::expose),
                });
                self.post(step, on, "restore", body).await?;
            }
            OperatorAction::FactoryReset => {
                self.post(step, on, "factory-reset", json!({ "power_off": true }))
                    .await?;
            }
            other => {
                return Err(ProviderError::new(
                    ErrorKind::Invalid,
                    format!("{step}: operator: sim cannot perform {other:?}"),
                ));
            }
        }
        Ok(())
    }
}
