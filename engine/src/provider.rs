//! The provider contract: the small traits every provider implements, and the vocabulary
//! types they speak (observations, actions, errors).
//!
//! Owns: what the engine may ask of the world. Three resource kinds exist — an appliance,
//! a DNS record, a NAT rule — plus the operator bridge that carries out steps no vendor API
//! covers. Each provider can *observe* current state, *perform* an action, and the engine
//! *verifies* a postcondition by observing again (verification never trusts the action's
//! own report).
//!
//! Must not: import any concrete provider, the simulator, the terminal, or resolve secrets
//! itself (providers get resolved [`swing_schema::SecretValue`]s from the engine's wiring).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Why a provider call failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct ProviderError {
    pub kind: ErrorKind,
    /// What happened, for a person; never contains a secret.
    pub message: String,
}

/// Classes of provider failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Network trouble, timeouts, 5xx, connection refused: retry may help.
    Transient,
    /// Credentials refused (OAuth 401, TSIG BADSIG/BADKEY, NOTAUTH).
    Auth,
    /// TLS verification failed (untrusted chain, expired, hostname mismatch).
    Tls,
    /// The server refused the request (REFUSED, 403, an `<error>` from the command API).
    Refused,
    /// A precondition of the action did not hold (e.g. DNS compare-and-swap found another value).
    Conflict,
    /// The request or configuration is wrong; retrying the same call cannot help.
    Invalid,
    /// The action ran and failed on the other side (e.g. an install that failed).
    Failed,
    /// Something needed is missing (table, chain, record, command).
    NotFound,
}

impl ProviderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            message: message.into(),
        }
    }
    /// Whether the engine may retry the same call (only ever for idempotent calls).
    pub fn retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient)
    }
}

pub type ProviderResult<T> = Result<T, ProviderError>;

/// Failover role as the command API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailoverRole {
    None,
    Primary,
    Backup,
    /// The appliance answered with a role text swing does not know: nothing is assumed.
    Unknown,
}

impl FailoverRole {
    /// The role as the plan and the command API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverRole::None => "none",
            FailoverRole::Primary => "primary",
            FailoverRole::Backup => "backup",
            FailoverRole::Unknown => "unknown",
        }
    }
}

/// The served TLS certificate as seen by a verifying client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// SHA-256 of the leaf certificate (DER), lowercase hex.
    pub leaf_sha256: String,
    /// `notAfter`, RFC 3339.
    pub not_after: String,
    /// Subject alternative names (DNS names and IPs as text).
    pub sans: Vec<String>,
    /// Whether the chain verified against the configured roots.
    pub trusted: bool,
}

/// Jump Client population, from the configuration API. `total`, `upgraded_online` and
/// `needs_update` cover the COUNTED clients: the active ones that are neither uninstalled nor
/// lost, plus the passive ones when the plan includes them; the rest are counted apart.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct JumpClientSummary {
    pub total: u64,
    /// Ready: not `needs_update` and, for an active client, connected after its last disconnect.
    pub upgraded_online: u64,
    pub needs_update: u64,
    /// Passive clients seen (part of `total` only when included).
    #[serde(default)]
    pub passive: u64,
    /// Uninstalled clients: never come back, never counted.
    #[serde(default)]
    pub uninstalled: u64,
    /// Lost clients (disconnected longer than the site's "lost" setting): never counted.
    #[serde(default)]
    pub lost: u64,
}

impl JumpClientSummary {
    /// Ready fraction of the counted Jump Clients (1.0 when none are counted).
    pub fn ratio(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.upgraded_online as f64 / self.total as f64
        }
    }
}

/// What an appliance looks like right now. `reachable = false` means nothing else is known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplianceObservation {
    pub reachable: bool,
    /// The appliance id (GUID) from `check_health`.
    pub appliance_id: Option<String>,
    pub hostname: Option<String>,
    /// Version as reported (e.g. `25.1.3`; the build suffix removed).
    pub version: Option<String>,
    /// `check_health` success = 1.
    pub healthy: bool,
    pub error_message: Option<String>,
    pub role: FailoverRole,
    pub shared_ips: Vec<String>,
    /// `last_data_sync_time` as UNIX seconds.
    pub last_sync_unix: Option<i64>,
    pub last_sync_status: Option<String>,
    /// Appliance clock minus engine clock, seconds (from the HTTP `Date` header).
    pub clock_skew_s: Option<i64>,
    pub certificate: Option<CertificateInfo>,
    pub jump_clients: Option<JumpClientSummary>,
    /// The API account's permissions as `get_api_info` lists them (`perm_backup` → `1`);
    /// `None` when they could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_permissions: Option<std::collections::BTreeMap<String, String>>,
    /// `get_api_info`'s `<api_version>` (e.g. `1.19.0`), when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Values the appliance sent that could not be read (each one made unknown), for people.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl ApplianceObservation {
    /// The observation of an appliance that did not answer.
    pub fn unreachable() -> Self {
        ApplianceObservation {
            reachable: false,
            appliance_id: None,
            hostname: None,
            version: None,
            healthy: false,
            error_message: None,
            role: FailoverRole::None,
            shared_ips: Vec::new(),
            last_sync_unix: None,
            last_sync_status: None,
            clock_skew_s: None,
            certificate: None,
            jump_clients: None,
            api_permissions: None,
            api_version: None,
            warnings: Vec::new(),
        }
    }
}

/// One raw answer of a read-only call, as [`ApplianceProvider::capture`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAnswer {
    /// A file name for it, e.g. `check_health.xml`.
    pub name: String,
    /// The request, e.g. `GET /api/command?action=check_health`.
    pub request: String,
    pub status: u16,
    /// Response headers in the order received (names lower-case).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A configuration backup written to disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

/// The vendor APIs of one appliance (check_health, set_failover_role, backup, config API).
#[async_trait]
pub trait ApplianceProvider: Send + Sync {
    /// Health, version, role, shared IPs, sync, clock, certificate, Jump Clients.
    async fn observe(&self) -> ProviderResult<ApplianceObservation>;
    /// Download a (password-protected) configuration backup into `dir`, mode 0600, atomically.
    async fn backup(&self, dir: &std::path::Path, file_stem: &str) -> ProviderResult<BackupInfo>;
    /// `set_failover_role` through the command API.
    async fn set_failover_role(
        &self,
        role: FailoverRole,
        data_sync_first: bool,
    ) -> ProviderResult<()>;
    /// The appliance id of whichever appliance answers the command API at `address` (a shared
    /// IP) with this appliance's site name and credentials; `None` when nobody answers there.
    /// Tells who holds a shared IP while no failover relationship lists it.
    /// The raw answers of the read-only calls (`swing doctor --capture`), for a compatibility
    /// report: each as it came, with the secrets this provider holds (client secret, token)
    /// and cookies redacted. Host names are left to the caller.
    async fn capture(&self) -> ProviderResult<Vec<RawAnswer>> {
        Err(ProviderError::new(
            ErrorKind::NotFound,
            "this provider has no raw answers to capture",
        ))
    }
    async fn identify_at(&self, address: &str) -> ProviderResult<Option<String>> {
        let _ = address;
        Err(ProviderError::new(
            ErrorKind::NotFound,
            "this provider cannot tell who answers at another address",
        ))
    }
}

/// A step no vendor API covers, described for whoever carries it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OperatorAction {
    /// Install these packages in order on the appliance.
    Install {
        packages: Vec<String>,
        version: String,
    },
    /// Enable or disable a shared IP.
    SharedIp { address: String, enabled: bool },
    /// "Sync Now" on the primary.
    SyncNow,
    /// "Break Failover Relationship".
    BreakFailover,
    /// Confirm both appliances hold the same inter-appliance key.
    ConfirmKeys,
    /// Establish the relationship with this appliance as primary and `backup_address` as backup.
    EstablishFailover {
        backup_address: String,
        peer_port: u16,
    },
    /// Export certificate + key + chain into `directory` (the plan's backup directory), as a
    /// PEM or DER file (`.pem`, `.crt`, `.cer`, `.der`): the step then checks that the file's
    /// leaf certificate is the one the appliance serves.
    ExportCertificate { directory: PathBuf },
    /// Import the exported certificate.
    ImportCertificate { from_appliance: String },
    /// Choose the imported certificate as default.
    DefaultCertificate,
    /// Back up the Vault encryption key.
    VaultKey,
    /// Set the Jump Client upgrade throttle.
    ClientThrottle { max_concurrent_upgrades: u32 },
    /// Client follow-up work (integration clients, installers).
    ClientFollowup,
    /// Restore a configuration backup.
    RestoreBackup { backup_path: PathBuf },
    /// Factory reset and shut down.
    FactoryReset,
}

/// One operator step handed to the bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorTask {
    /// Step id from `procedures.md`.
    pub step_id: String,
    /// The appliance (plan name) the action is performed on.
    pub appliance: String,
    pub action: OperatorAction,
    /// Exact instructions for a person (vendor UI path and labels).
    pub instructions: Vec<String>,
}

/// Carries out operator steps without a person (`operator: sim`, `operator: exec`).
/// `operator: prompt` has no bridge: the engine pauses and a person confirms.
#[async_trait]
pub trait OperatorBridge: Send + Sync {
    async fn perform(&self, task: &OperatorTask) -> ProviderResult<()>;
    /// After the engine died while `perform` was under way: whether the task reached the
    /// appliance (`Some(true)`), surely did not (`Some(false)`: performing it is safe), or
    /// `None` when the bridge cannot tell (then the engine only observes, never re-sends).
    async fn reached(&self, task: &OperatorTask) -> ProviderResult<Option<bool>> {
        let _ = task;
        Ok(None)
    }
}

/// A DNS record as the authoritative server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsObservation {
    pub record: String,
    pub addresses: Vec<IpAddr>,
    pub ttl: u32,
}

/// A DNS provider (RFC 2136 or exec).
#[async_trait]
pub trait DnsProvider: Send + Sync {
    async fn observe(&self, record: &str) -> ProviderResult<DnsObservation>;
    /// Rewrite the record's rrset with the same addresses and a new TTL (compare-and-swap).
    async fn set_ttl(&self, record: &str, expect: &DnsObservation, ttl: u32) -> ProviderResult<()>;
    /// Atomically replace `from` with `to`; fails with `Conflict` if the record is not `from`.
    async fn swing(&self, record: &str, from: IpAddr, to: IpAddr, ttl: u32) -> ProviderResult<()>;
    /// Readiness (`swing doctor`): prove the server would accept this provider's updates of
    /// `record` without changing anything — e.g. a signed UPDATE made only of prerequisites
    /// (`expect`'s rrset exists as observed), which the server authenticates and then applies
    /// as nothing. `Auth`/`Refused` name why an update would be refused.
    async fn check_update(&self, record: &str, expect: &DnsObservation) -> ProviderResult<()> {
        let _ = (record, expect);
        Err(ProviderError::new(
            ErrorKind::NotFound,
            "this provider cannot check an update without making one",
        ))
    }
}

/// A DNAT rule as the NAT gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatObservation {
    pub public: SocketAddr,
    /// Where the rule sends traffic; `None` when no rule matches `public`.
    pub target: Option<SocketAddr>,
    /// Comment of the rule (`swing:<plan>` once swing wrote it).
    pub comment: Option<String>,
}

/// A NAT provider (nftables, iptables or exec).
#[async_trait]
pub trait NatProvider: Send + Sync {
    async fn observe(&self, public: SocketAddr) -> ProviderResult<NatObservation>;
    /// Point the rule matching `public` at `to`, in one transaction; `Conflict` if it is not at `from`.
    async fn swing(
        &self,
        public: SocketAddr,
        from: SocketAddr,
        to: SocketAddr,
    ) -> ProviderResult<()>;
    /// Readiness (`swing doctor`): prove the swing of the rule matching `public` to `to` would
    /// be accepted — found, writable by this provider (e.g. a dry-run transaction the kernel
    /// checks but does not commit), and not owned by another tool — without changing anything.
    async fn check_swing(&self, public: SocketAddr, to: SocketAddr) -> ProviderResult<()> {
        let _ = (public, to);
        Err(ProviderError::new(
            ErrorKind::NotFound,
            "this provider cannot check a swing without making one",
        ))
    }
}

/// What a client probing the site saw while it watched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientDowntime {
    /// The longest run of failed probes: the measured downtime, milliseconds.
    pub longest_outage_ms: u64,
    /// Runs of failed probes.
    pub outages: usize,
    /// All outages together, milliseconds.
    pub total_outage_ms: u64,
    pub probes: u64,
    /// Milliseconds between probes (the measurement's resolution).
    pub interval_ms: u64,
    /// The appliances that answered, in order.
    pub served_by: Vec<String>,
}

/// Watches the site as a client does (resolve it as a client would, connect over verified
/// TLS, ask its health) while a step that can take the site down runs. Measurement only: a
/// probe never changes anything and never fails an apply.
#[async_trait]
pub trait ClientProbe: Send + Sync {
    /// Starts watching. `labels` names the appliances (appliance id → the plan's name).
    async fn start(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> ProviderResult<Box<dyn ProbeSpan>>;
}

/// One running watch of the site.
#[async_trait]
pub trait ProbeSpan: Send {
    /// Stops watching and says what the client saw. With `settle` (the step succeeded) and
    /// the site still down when asked, it first waits (bounded) for the site to answer again,
    /// so an outage is measured to its end rather than cut at the step's verification; after
    /// a failed step it stops at once, so the halt is not delayed.
    async fn stop(self: Box<Self>, settle: bool) -> ClientDowntime;
}
