//! The `beyondtrust` appliance provider: a BeyondTrust PRA B Series appliance reached through
//! its vendor APIs (OAuth, command API XML, backup API, configuration API).
//!
//! Owns: [`BeyondTrustConfig`] (plain configuration the engine wires from a plan, secrets
//! already resolved) and [`BeyondTrustAppliance`], the
//! [`swing_engine::provider::ApplianceProvider`] implementation: `observe` (check_health,
//! clock skew from `Date`, served certificate, Jump Client readiness from the configuration
//! API's fields, following its paging), `backup` (streamed to disk with SHA-256, mode 0600,
//! atomic) and `set_failover_role`. Submodules: `client` (HTTP, token, retries, the
//! per-account rate limit), `xml` (tolerant command API parser), `tls` (verifying config and
//! certificate inspection), `backup` (the on-disk sink).
//!
//! Must not: call the simulator's `/_sim` endpoints (production path), disable or weaken TLS
//! verification, retry state-changing calls, or expose a secret in errors, logs or `Debug`.

mod backup;
mod client;
pub mod tls;
pub mod xml;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use swing_engine::provider::{
    ApplianceObservation, ApplianceProvider, BackupInfo, CertificateInfo, ErrorKind, FailoverRole,
    JumpClientSummary, ProviderError, ProviderResult, RawAnswer,
};
use swing_schema::SecretValue;

pub use backup::{BackupSink, valid_stem};
pub use client::RateLimit;
pub use xml::{
    ApiInfo, ApplianceHealth, CommandXmlError, HealthReport, parse_api_info, parse_check_health,
    parse_command_result,
};

use client::{ApplianceClient, status_error};

/// Timeouts of one appliance's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connection establishment.
    pub connect: Duration,
    /// Longest wait for any single read from the socket.
    pub read: Duration,
    /// Whole call (request + full answer) for API calls.
    pub request: Duration,
    /// Whole backup download.
    pub backup: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
            request: Duration::from_secs(30),
            backup: Duration::from_secs(30 * 60),
        }
    }
}

/// Retries of idempotent reads: `attempts` in total, exponential backoff from `base_delay`
/// capped at `max_delay`, each delay jittered to 50–100 %.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Delay before retry number `attempt + 1` (0-based), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(16)));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// Everything needed to reach one appliance. Secrets are resolved values; `Debug` redacts them.
#[derive(Debug, Clone)]
pub struct BeyondTrustConfig {
    /// The appliance's own unique IP or hostname (`appliances.X.address`).
    pub address: String,
    /// HTTPS port (default 443).
    pub port: u16,
    /// Name the served certificate must be valid for, sent as SNI and `Host` (the plan's
    /// `site`); connections still go to `address`. `None`: the address itself.
    pub site_hostname: Option<String>,
    /// PEM file with the site CA: when set, ONLY these roots are trusted.
    pub ca_file: Option<PathBuf>,
    pub client_id: String,
    pub client_secret: SecretValue,
    /// Password protecting the backup file; `None` = unprotected backup.
    pub backup_password: Option<SecretValue>,
    /// `backup.include_reporting_data`. The vendor backup API has no such switch (an API
    /// backup always holds configuration and logged data), so the provider sends nothing for
    /// it; the engine can read it back with [`BeyondTrustAppliance::include_reporting_data`].
    pub include_reporting_data: bool,
    pub timeouts: Timeouts,
    /// Close the connection after each call (vendor requirement; default true).
    pub close_connections: bool,
    pub retry: RetryPolicy,
    /// Only for answers without `last_disconnect_timestamp` (older appliances): an active
    /// Jump Client counts as online when it connected within this long before the
    /// appliance's clock. With the field, online = connected after the last disconnect.
    pub jump_client_online_within: Duration,
    /// `policy.jump_clients.include_passive`: count passive Jump Clients too (default false).
    pub include_passive_jump_clients: bool,
    /// Requests per API account (vendor: 20 a second, 15,000 an hour); shared by every
    /// client of the same account and appliance address in this process.
    pub rate_limit: RateLimit,
    /// Also inspect the served certificate in `observe` (default true).
    pub inspect_certificate: bool,
    /// Also count Jump Clients in `observe` (default true; needs configuration API access).
    pub count_jump_clients: bool,
}

impl BeyondTrustConfig {
    /// A configuration with the defaults: port 443, connections closed after each call,
    /// default timeouts and retries, Jump Clients online within 15 minutes.
    pub fn new(
        address: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretValue,
    ) -> Self {
        BeyondTrustConfig {
            address: address.into(),
            port: 443,
            site_hostname: None,
            ca_file: None,
            client_id: client_id.into(),
            client_secret,
            backup_password: None,
            include_reporting_data: true,
            timeouts: Timeouts::default(),
            close_connections: true,
            retry: RetryPolicy::default(),
            jump_client_online_within: Duration::from_secs(15 * 60),
            include_passive_jump_clients: false,
            rate_limit: RateLimit::default(),
            inspect_certificate: true,
            count_jump_clients: true,
        }
    }
}

/// A BeyondTrust appliance behind the vendor APIs.
pub struct BeyondTrustAppliance {
    client: ApplianceClient,
    /// Kept to reach the same site at another address (`identify_at`).
    config: BeyondTrustConfig,
    /// One client per other address asked, so its token and TLS sessions are reused.
    elsewhere: std::sync::Mutex<std::collections::HashMap<String, Arc<BeyondTrustAppliance>>>,
    backup_password: Option<SecretValue>,
    include_reporting_data: bool,
    online_within: Duration,
    include_passive: bool,
    inspect_certificate: bool,
    count_jump_clients: bool,
}

impl std::fmt::Debug for BeyondTrustAppliance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeyondTrustAppliance")
            .field("address", &self.client.cfg.address)
            .field("port", &self.client.cfg.port)
            .field("host", &self.client.host)
            .finish_non_exhaustive()
    }
}

/// Result of one `check_health` call with the clock reading taken from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub report: HealthReport,
    /// Appliance clock minus engine clock, seconds (from `Date`).
    pub clock_skew_s: Option<i64>,
    /// Appliance clock as UNIX seconds (from `Date`).
    pub appliance_time: Option<i64>,
}

/// Whole seconds since the UNIX epoch (negative before it).
fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn xml_error(e: CommandXmlError, what: &str, host: &str) -> ProviderError {
    let kind = match e {
        CommandXmlError::Api(_) => ErrorKind::Refused,
        _ => ErrorKind::Failed,
    };
    ProviderError::new(kind, format!("{what} on {host}: {e}"))
}

impl BeyondTrustAppliance {
    /// Builds the provider; reads `ca_file` now, contacts nothing.
    pub fn new(config: BeyondTrustConfig) -> ProviderResult<Self> {
        let client = ApplianceClient::new(&config)?;
        Ok(BeyondTrustAppliance {
            client,
            config: config.clone(),
            elsewhere: std::sync::Mutex::new(std::collections::HashMap::new()),
            backup_password: config.backup_password,
            include_reporting_data: config.include_reporting_data,
            online_within: config.jump_client_online_within,
            include_passive: config.include_passive_jump_clients,
            inspect_certificate: config.inspect_certificate,
            count_jump_clients: config.count_jump_clients,
        })
    }

    /// The configured `include_reporting_data` (an API backup always includes logged data).
    pub fn include_reporting_data(&self) -> bool {
        self.include_reporting_data
    }

    /// `GET /api/command?action=check_health`, parsed, with the clock skew.
    pub async fn check_health(&self) -> ProviderResult<HealthCheck> {
        let what = "check_health";
        let url = self.client.url("api/command")?;
        let a = self
            .client
            .call(what, true, self.client.cfg.request_timeout, |http| {
                Ok(http.get(url.clone()).query(&[("action", "check_health")]))
            })
            .await?;
        if !a.status.is_success() {
            return Err(status_error(a.status, what, &self.client.host));
        }
        let text = String::from_utf8_lossy(&a.body);
        let report =
            parse_check_health(&text).map_err(|e| xml_error(e, what, &self.client.host))?;
        let appliance_time = a.date.map(unix);
        let clock_skew_s = appliance_time.map(|t| t - unix(a.received));
        Ok(HealthCheck {
            report,
            clock_skew_s,
            appliance_time,
        })
    }

    /// `action=get_api_info`: the API version and the API account's permissions.
    pub async fn api_info(&self) -> ProviderResult<ApiInfo> {
        let what = "get_api_info";
        let url = self.client.url("api/command")?;
        let a = self
            .client
            .call(what, true, self.client.cfg.request_timeout, |http| {
                Ok(http.get(url.clone()).query(&[("action", "get_api_info")]))
            })
            .await?;
        if !a.status.is_success() {
            return Err(status_error(a.status, what, &self.client.host));
        }
        parse_api_info(&String::from_utf8_lossy(&a.body))
            .map_err(|e| xml_error(e, what, &self.client.host))
    }

    /// The served certificate, verified with the same roots every call uses.
    pub async fn inspect_certificate(&self) -> ProviderResult<CertificateInfo> {
        let addrs = self.client.socket_addrs().await?;
        tls::inspect(
            self.client.tls_config.clone(),
            &addrs,
            &self.client.host,
            self.client.cfg.request_timeout,
        )
        .await
    }

    /// Counts Jump Clients through the configuration API, following every page.
    /// `now_unix` is the appliance's clock (or ours), used only for answers without
    /// `last_disconnect_timestamp`.
    pub async fn jump_clients(&self, now_unix: i64) -> ProviderResult<JumpClientSummary> {
        const PER_PAGE: u64 = 100;
        const MAX_PAGES: u64 = 10_000;
        let what = "GET /api/config/v1/jump-client";
        let url = self.client.url("api/config/v1/jump-client")?;
        let online_since =
            now_unix - i64::try_from(self.online_within.as_secs()).unwrap_or(i64::MAX / 2);
        let mut summary = JumpClientSummary::default();
        let mut page: u64 = 1;
        loop {
            let a = self
                .client
                .call(what, true, self.client.cfg.request_timeout, |http| {
                    Ok(http
                        .get(url.clone())
                        .header(ACCEPT, "application/json")
                        .query(&[("per_page", PER_PAGE), ("current_page", page)]))
                })
                .await?;
            if !a.status.is_success() {
                return Err(status_error(a.status, what, &self.client.host));
            }
            let items = parse_jump_client_page(&a.body).map_err(|m| {
                ProviderError::new(
                    ErrorKind::Failed,
                    format!("{what} on {}: {m}", self.client.host),
                )
            })?;
            let count = items.len() as u64;
            for c in items {
                tally(&mut summary, &c, self.include_passive, online_since);
            }
            // The last page from `X-BT-Pagination-Last-Page`, else the `Link` relation
            // `next`, else a full page means there may be more.
            let more = match (a.last_page, a.link_next) {
                (Some(last), _) => page < last,
                (None, Some(next)) => next,
                (None, None) => count >= PER_PAGE,
            };
            if !more || count == 0 {
                break;
            }
            page += 1;
            if page > MAX_PAGES {
                return Err(ProviderError::new(
                    ErrorKind::Failed,
                    format!(
                        "{what} on {}: more than {MAX_PAGES} pages",
                        self.client.host
                    ),
                ));
            }
        }
        Ok(summary)
    }

    async fn observe_inner(&self) -> ProviderResult<ApplianceObservation> {
        let health = match self.check_health().await {
            Ok(h) => h,
            // Not answering (down, rebooting, installing): nothing else is known.
            Err(e) if e.kind == ErrorKind::Transient => {
                return Ok(ApplianceObservation {
                    error_message: Some(e.message),
                    ..ApplianceObservation::unreachable()
                });
            }
            Err(e) => return Err(e),
        };
        let local = health.report.local().cloned().unwrap_or_default();
        // The certificate and the Jump Clients are independent reads: both at once.
        let certificate = async {
            if !self.inspect_certificate {
                return Ok(None);
            }
            self.inspect_certificate().await.map(Some)
        };
        let jump_clients = async {
            if !self.count_jump_clients {
                return Ok(None);
            }
            let now = health
                .appliance_time
                .unwrap_or_else(|| unix(SystemTime::now()));
            self.jump_clients(now).await.map(Some)
        };
        // The permissions decide nothing of the observation: a failure to read them leaves them
        // unknown, with a warning.
        let permissions = async { self.api_info().await };
        let (certificate, jump_clients, permissions) =
            tokio::join!(certificate, jump_clients, permissions);
        let (certificate, jump_clients) = (certificate?, jump_clients?);
        let mut warnings = local.warnings;
        let (api_permissions, api_version) = match permissions {
            Ok(info) => (Some(info.permissions), info.api_version),
            Err(e) => {
                warnings.push(format!(
                    "get_api_info failed, the API account's permissions are unknown: {}",
                    e.message
                ));
                (None, None)
            }
        };
        Ok(ApplianceObservation {
            reachable: true,
            appliance_id: local.id,
            hostname: local.hostname,
            version: local.version,
            healthy: local.success,
            error_message: local.error_message,
            role: local.failover_role.unwrap_or(FailoverRole::None),
            shared_ips: local.shared_ips,
            last_sync_unix: local.last_sync_unix,
            last_sync_status: local.last_sync_status,
            clock_skew_s: health.clock_skew_s,
            certificate,
            jump_clients,
            api_permissions,
            api_version,
            warnings,
        })
    }
}

/// `connection_type` of a Jump Client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JumpConnection {
    Active,
    Passive,
    Uninstalled,
}

/// One Jump Client as far as the summary needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpClientEntry {
    /// Missing or unknown types count as active (the ones that must come back).
    pub connection_type: JumpConnection,
    pub needs_update: bool,
    pub last_connect_unix: Option<i64>,
    /// `None`: never disconnected (empty or null), or the field is absent.
    pub last_disconnect_unix: Option<i64>,
    /// Whether the answer has `last_disconnect_timestamp` at all (older ones do not).
    pub has_disconnect_field: bool,
    /// `is_lost`: disconnected longer than the site's "lost" setting.
    pub is_lost: bool,
}

impl JumpClientEntry {
    /// An active client is online when it connected after its last disconnect (or never
    /// disconnected). Without the disconnect field: connected at or after `online_since`.
    pub fn online(&self, online_since: i64) -> bool {
        let Some(connect) = self.last_connect_unix else {
            return false;
        };
        if self.has_disconnect_field {
            self.last_disconnect_unix.is_none_or(|d| connect > d)
        } else {
            connect >= online_since
        }
    }
}

/// Adds one client to the summary: uninstalled and lost ones apart, passive ones apart
/// unless included; a counted client is ready when it needs no update and (active) is online.
fn tally(s: &mut JumpClientSummary, c: &JumpClientEntry, include_passive: bool, since: i64) {
    if c.connection_type == JumpConnection::Uninstalled {
        s.uninstalled += 1;
        return;
    }
    if c.is_lost {
        s.lost += 1;
        return;
    }
    let passive = c.connection_type == JumpConnection::Passive;
    if passive {
        s.passive += 1;
        if !include_passive {
            return;
        }
    }
    s.total += 1;
    if c.needs_update {
        s.needs_update += 1;
    } else if passive || c.online(since) {
        s.upgraded_online += 1;
    }
}

fn json_bool(v: Option<&serde_json::Value>) -> bool {
    match v {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        Some(serde_json::Value::String(s)) => matches!(s.as_str(), "1" | "true"),
        _ => false,
    }
}

/// RFC 3339 text (any offset, `Z` or `+00:00`), UNIX seconds, or nothing (null, empty).
fn json_time(v: Option<&serde_json::Value>) -> Option<i64> {
    match v {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
            chrono::DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.timestamp())
                .ok()
                .or_else(|| s.trim().parse::<i64>().ok())
        }
        _ => None,
    }
}

/// Parses one configuration API page: a JSON array of Jump Clients (or an object holding one).
/// `needs_update` and `is_lost` may be a bool or 0/1; timestamps RFC 3339 text, UNIX
/// seconds, empty or null; `connection_type` `active`, `passive` or `uninstalled`.
pub fn parse_jump_client_page(body: &[u8]) -> Result<Vec<JumpClientEntry>, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let items = match &v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.values().find_map(|x| x.as_array()) {
            Some(a) => a,
            None => return Err("no list of Jump Clients in the answer".into()),
        },
        _ => return Err("no list of Jump Clients in the answer".into()),
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let connection_type = match item.get("connection_type").and_then(|t| t.as_str()) {
            Some(t) if t.eq_ignore_ascii_case("passive") => JumpConnection::Passive,
            Some(t) if t.eq_ignore_ascii_case("uninstalled") => JumpConnection::Uninstalled,
            _ => JumpConnection::Active,
        };
        out.push(JumpClientEntry {
            connection_type,
            needs_update: json_bool(item.get("needs_update")),
            last_connect_unix: json_time(item.get("last_connect_timestamp")),
            last_disconnect_unix: json_time(item.get("last_disconnect_timestamp")),
            has_disconnect_field: item.get("last_disconnect_timestamp").is_some(),
            is_lost: json_bool(item.get("is_lost")),
        });
    }
    Ok(out)
}

/// The backup API body: `{"password": "..."}` for a protected backup (vendor format).
#[derive(serde::Serialize)]
struct BackupBody<'a> {
    password: &'a str,
}

#[async_trait]
impl ApplianceProvider for BeyondTrustAppliance {
    async fn observe(&self) -> ProviderResult<ApplianceObservation> {
        self.observe_inner().await
    }

    async fn capture(&self) -> ProviderResult<Vec<RawAnswer>> {
        let calls: [(&str, &str, &str, Vec<(&str, String)>); 3] = [
            (
                "check_health.xml",
                "api/command",
                "check_health",
                vec![("action", "check_health".to_owned())],
            ),
            (
                "get_api_info.xml",
                "api/command",
                "get_api_info",
                vec![("action", "get_api_info".to_owned())],
            ),
            (
                "jump-client.json",
                "api/config/v1/jump-client",
                "GET /api/config/v1/jump-client",
                vec![
                    ("per_page", "5".to_owned()),
                    ("current_page", "1".to_owned()),
                ],
            ),
        ];
        let mut out = Vec::with_capacity(calls.len());
        for (name, path, what, query) in calls {
            let url = self.client.url(path)?;
            let a = self
                .client
                .call(what, true, self.client.cfg.request_timeout, |http| {
                    Ok(http.get(url.clone()).query(&query))
                })
                .await?;
            let mut headers = Vec::with_capacity(a.headers.len());
            for (k, v) in a.headers {
                let v = if matches!(k.as_str(), "set-cookie" | "authorization") {
                    "[redacted]".to_owned()
                } else {
                    String::from_utf8_lossy(&self.client.redact_secrets(v.as_bytes()).await)
                        .into_owned()
                };
                headers.push((k, v));
            }
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push(RawAnswer {
                name: name.to_owned(),
                request: format!("GET /{path}?{}", q.join("&")),
                status: a.status.as_u16(),
                headers,
                body: self.client.redact_secrets(&a.body).await,
            });
        }
        Ok(out)
    }

    async fn identify_at(&self, address: &str) -> ProviderResult<Option<String>> {
        let cached = self
            .elsewhere
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(address)
            .cloned();
        let there = match cached {
            Some(there) => there,
            None => {
                let mut cfg = self.config.clone();
                cfg.address = address.to_owned();
                let there = Arc::new(BeyondTrustAppliance::new(cfg)?);
                self.elsewhere
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(address.to_owned(), there.clone());
                there
            }
        };
        match there.check_health().await {
            Ok(h) => Ok(h.report.local().and_then(|l| l.id.clone())),
            // Nobody answers at that address (yet).
            Err(e) if e.kind == ErrorKind::Transient => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn backup(&self, dir: &Path, file_stem: &str) -> ProviderResult<BackupInfo> {
        let what = "POST /api/backup";
        let url = self.client.url("api/backup")?;
        // Create the destination first: a bad directory fails before the appliance works.
        let mut sink = BackupSink::create(dir, file_stem).await?;
        let mut res = self
            .client
            .call_streaming(what, |http| {
                let req = http.post(url.clone());
                let Some(password) = self.backup_password.as_ref() else {
                    return Ok(req);
                };
                let bytes = serde_json::to_vec(&BackupBody {
                    password: password.expose(),
                })
                .map_err(|_| {
                    ProviderError::new(ErrorKind::Invalid, "cannot encode the backup request")
                })?;
                Ok(req.header(CONTENT_TYPE, "application/json").body(bytes))
            })
            .await?;
        let status = res.status();
        if !status.is_success() {
            return Err(status_error(status, what, &self.client.host));
        }
        let header = |name| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (content_type, disposition) = (header(CONTENT_TYPE), header(CONTENT_DISPOSITION));
        let is_document = content_type
            .as_deref()
            .is_some_and(|c| c.contains("xml") || c.contains("json"));
        if is_document {
            // A backup is binary; an XML/JSON answer is an error report: say what it reports.
            let mut body = Vec::new();
            while let Some(chunk) = res
                .chunk()
                .await
                .map_err(|e| self.client.transport_error(&e, what))?
            {
                if body.len() + chunk.len() > client::MAX_BODY {
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            let text = String::from_utf8_lossy(&body);
            let msg = match parse_command_result(&text) {
                Err(CommandXmlError::Api(m)) => m,
                _ => "the appliance answered with a document instead of a backup file".to_owned(),
            };
            return Err(ProviderError::new(
                ErrorKind::Refused,
                format!("{what} on {}: {msg}", self.client.host),
            ));
        }
        let mut head = Vec::new();
        let mut bytes = 0u64;
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| self.client.transport_error(&e, what))?
        {
            let room = backup::BACKUP_HEAD_BYTES.saturating_sub(head.len());
            head.extend_from_slice(&chunk[..room.min(chunk.len())]);
            bytes += chunk.len() as u64;
            sink.write(&chunk).await?;
        }
        // Judged before the file is renamed into place: dropping the sink removes it.
        backup::check_backup_body(
            content_type.as_deref(),
            disposition.as_deref(),
            &head,
            bytes,
        )
        .map_err(|why| {
            ProviderError::new(
                ErrorKind::Refused,
                format!("{what} on {}: {why}; nothing was stored", self.client.host),
            )
        })?;
        sink.finish().await
    }

    async fn set_failover_role(
        &self,
        role: FailoverRole,
        data_sync_first: bool,
    ) -> ProviderResult<()> {
        let role_text = match role {
            FailoverRole::Primary => "primary",
            FailoverRole::Backup => "backup",
            FailoverRole::None | FailoverRole::Unknown => {
                return Err(ProviderError::new(
                    ErrorKind::Invalid,
                    "set_failover_role accepts primary or backup; breaking the relationship is an operator step",
                ));
            }
        };
        let what = "set_failover_role";
        let url = self.client.url("api/command")?;
        let form = [
            ("action", "set_failover_role"),
            ("role", role_text),
            ("data_sync_first", if data_sync_first { "1" } else { "0" }),
            ("force", "0"),
        ];
        // Not idempotent: never retried (except once after a 401, which the appliance refused).
        let a = self
            .client
            .call(what, false, self.client.cfg.request_timeout, |http| {
                Ok(http.post(url.clone()).form(&form))
            })
            .await?;
        if !a.status.is_success() {
            return Err(status_error(a.status, what, &self.client.host));
        }
        parse_command_result(&String::from_utf8_lossy(&a.body))
            .map(|_| ())
            .map_err(|e| xml_error(e, what, &self.client.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let mut c =
            BeyondTrustConfig::new("127.0.0.1", "api-id", SecretValue::new("s3cr3t-client"));
        c.backup_password = Some(SecretValue::new("s3cr3t-backup"));
        let text = format!("{c:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        let p = BeyondTrustAppliance::new(c).unwrap();
        assert!(!format!("{p:?}").contains("s3cr3t"));
    }

    #[test]
    fn retry_delays_grow_jittered_and_capped() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        for _ in 0..50 {
            let d0 = p.delay(0);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100),
                "{d0:?}"
            );
            let d9 = p.delay(9);
            assert!(
                d9 >= Duration::from_millis(250) && d9 <= Duration::from_millis(500),
                "{d9:?}"
            );
        }
        assert!(p.delay(u32::MAX) <= Duration::from_millis(500));
    }

    #[test]
    fn jump_client_pages() {
        let body =
            br#"[{"id":1,"needs_update":true,"last_connect_timestamp":"2026-11-26T10:00:00Z"},
                        {"id":2,"needs_update":0,"last_connect_timestamp":1795658400},
                        {"id":3,"last_connect_timestamp":null}]"#;
        let v = parse_jump_client_page(body).unwrap();
        assert_eq!(v.len(), 3);
        assert!(v[0].needs_update);
        assert_eq!(v[0].last_connect_unix, Some(1_795_687_200));
        assert!(!v[1].needs_update);
        assert_eq!(v[1].last_connect_unix, Some(1_795_658_400));
        assert_eq!(v[2].last_connect_unix, None);
        assert!(
            v.iter()
                .all(|c| c.connection_type == JumpConnection::Active)
        );
        assert!(v.iter().all(|c| !c.has_disconnect_field));
        let wrapped = br#"{"data":[{"needs_update":false}]}"#;
        assert_eq!(parse_jump_client_page(wrapped).unwrap().len(), 1);
        assert!(parse_jump_client_page(b"<xml/>").is_err());
        assert!(parse_jump_client_page(b"42").is_err());
    }

    /// The OpenAPI fields: online = connected after the last disconnect; uninstalled and
    /// lost apart; passive apart unless included.
    #[test]
    fn jump_client_readiness_from_the_vendor_fields() {
        let body = br#"[
            {"connection_type":"active","needs_update":false,"last_connect_timestamp":"2026-12-01T10:00:00+00:00","last_disconnect_timestamp":"","is_lost":false},
            {"connection_type":"active","needs_update":false,"last_connect_timestamp":"2026-12-01T10:00:00+00:00","last_disconnect_timestamp":"2026-11-30T10:00:00+00:00","is_lost":false},
            {"connection_type":"active","needs_update":false,"last_connect_timestamp":"2026-12-01T10:00:00+00:00","last_disconnect_timestamp":"2026-12-01T11:00:00Z","is_lost":false},
            {"connection_type":"active","needs_update":true,"last_connect_timestamp":"2026-12-01T10:00:00+00:00","last_disconnect_timestamp":null,"is_lost":false},
            {"connection_type":"passive","needs_update":false,"last_connect_timestamp":"2026-12-01T08:00:00+00:00","last_disconnect_timestamp":"2026-12-01T08:00:05+00:00","is_lost":false},
            {"connection_type":"passive","needs_update":true,"last_connect_timestamp":"2026-12-01T08:00:00+00:00","last_disconnect_timestamp":"2026-12-01T08:00:05+00:00","is_lost":false},
            {"connection_type":"uninstalled","needs_update":true,"last_connect_timestamp":"2026-11-01T08:00:00+00:00","last_disconnect_timestamp":"2026-11-02T08:00:00+00:00","is_lost":false},
            {"connection_type":"active","needs_update":true,"last_connect_timestamp":"2026-10-01T08:00:00+00:00","last_disconnect_timestamp":"2026-10-02T08:00:00+00:00","is_lost":true}
        ]"#;
        let v = parse_jump_client_page(body).unwrap();
        assert!(v[0].has_disconnect_field && v[0].last_disconnect_unix.is_none());
        assert!(
            v[0].online(i64::MAX),
            "never disconnected: online whatever the clock"
        );
        assert!(v[1].online(i64::MAX), "reconnected after the disconnect");
        assert!(!v[2].online(0), "disconnected after the last connect");
        let mut s = JumpClientSummary::default();
        for c in &v {
            tally(&mut s, c, false, 0);
        }
        assert_eq!(
            s,
            JumpClientSummary {
                total: 4,
                upgraded_online: 2,
                needs_update: 1,
                passive: 2,
                uninstalled: 1,
                lost: 1,
            }
        );
        assert!((s.ratio() - 0.5).abs() < 1e-9);
        let mut s = JumpClientSummary::default();
        for c in &v {
            tally(&mut s, c, true, 0);
        }
        assert_eq!((s.total, s.upgraded_online, s.needs_update), (6, 3, 2));
        assert_eq!((s.passive, s.uninstalled, s.lost), (2, 1, 1));
    }

    #[tokio::test]
    async fn unreachable_appliance_is_observed_as_unreachable() {
        // A port on loopback nobody listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = BeyondTrustConfig::new("127.0.0.1", "id", SecretValue::new("secret"));
        c.port = port;
        c.retry = RetryPolicy {
            attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let p = BeyondTrustAppliance::new(c).unwrap();
        let o = p.observe().await.unwrap();
        assert!(!o.reachable);
        // The cause travels with the observation, so a refresh can say why.
        let cause = o.error_message.expect("cause of the outage");
        assert!(cause.contains(&port.to_string()), "{cause}");
        // State-changing calls report the failure instead.
        let e = p
            .set_failover_role(FailoverRole::Primary, false)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Transient);
        assert!(!e.message.contains("secret"));
        let e = p
            .set_failover_role(FailoverRole::None, false)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Invalid);
    }
}
