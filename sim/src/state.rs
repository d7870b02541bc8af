//! The simulator's mutable state and its public JSON snapshot.
//!
//! Owns: [`State`] (what a real appliance would hold: version, packages, failover, shared
//! IPs, API account and tokens, certificates, Jump Clients, action log) and the snapshot
//! types served by `GET /_sim/state` and [`crate::SimHandle::state`].
//!
//! Must not: do IO or wait; hold secrets in anything that is serialised (the API account
//! secret is kept only as a SHA-256 verifier; the inter-appliance key is never serialised).

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ca::Leaf;
use crate::config::{Dialect, Faults, JumpClientGroup, Permissions, Role};

/// Whether the appliance is serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApplianceStatus {
    Running,
    /// An install is running; the appliance refuses connections.
    Installing,
    /// Factory reset with power off: gone for good.
    PoweredOff,
}

/// One update package in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageState {
    pub name: String,
    /// The appliance version after installing it (site packages only).
    pub version: Option<String>,
    /// A package that must be installed first (the base package unlocks the site package).
    pub requires: Option<String>,
    pub installed: bool,
    /// Simulated install duration, seconds.
    pub install_s: f64,
}

/// A certificate in the appliance's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateState {
    pub name: String,
    /// SHA-256 of the leaf (DER), lowercase hex.
    pub leaf_sha256: String,
    /// notAfter, UNIX seconds.
    pub not_after_unix: i64,
    pub sans: Vec<String>,
    /// The certificate served by default.
    pub default: bool,
}

/// The Jump Client population. `total`, `needs_update` and `upgraded_online` count the
/// active clients that go through the upgrade wave (`SimConfig::jump_clients`); the groups
/// of other kinds are counted apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JumpClientState {
    pub total: u32,
    pub needs_update: u32,
    pub upgraded_online: u32,
    /// Passive clients, and how many of them report `needs_update: false`.
    pub passive: u32,
    pub passive_upgraded: u32,
    /// Active clients that are disconnected (not lost).
    pub active_offline: u32,
    pub uninstalled: u32,
    pub lost: u32,
    /// "Maximum number of concurrent Jump Client upgrades".
    pub throttle: u32,
}

/// One entry of the action log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Sequence number, from 1.
    pub seq: u64,
    /// Simulated clock, RFC 3339.
    pub at: String,
    /// Simulated clock, UNIX milliseconds.
    pub at_unix_ms: i64,
    /// e.g. `install.started`, `install.finished`, `shared-ip.enabled`, `failover.establish`.
    pub action: String,
    pub ok: bool,
    /// Action-specific details (never secrets).
    pub detail: serde_json::Value,
}

/// The simulator's state as JSON (`GET /_sim/state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    pub name: String,
    /// 32 lower-case hex digits, stable per simulator name.
    pub appliance_id: String,
    /// The appliance's own host name (`check_health`'s `<appliance>` text).
    pub hostname: String,
    /// The public site name.
    pub site: String,
    /// Command API dialect served.
    pub dialect: Dialect,
    /// The API account's permissions (as `get_api_info` lists them).
    pub permissions: Permissions,
    /// Requests answered 429 because the account's rate limit was reached.
    pub rate_limited: u64,
    pub url: String,
    pub address: SocketAddr,
    pub status: ApplianceStatus,
    pub version: String,
    pub build: u32,
    pub installed_packages: Vec<String>,
    pub available_updates: Vec<PackageState>,
    pub healthy: bool,
    pub error_message: Option<String>,
    pub role: Role,
    pub peer: Option<SocketAddr>,
    /// Whether an inter-appliance key is set (the key itself is never reported).
    pub key_set: bool,
    pub shared_ips: Vec<IpAddr>,
    pub last_data_sync_unix: Option<i64>,
    pub last_data_sync_status: Option<String>,
    pub sync_in_progress: bool,
    /// Whether the API account exists (gone after a factory reset until a restore).
    pub api_account: Option<String>,
    /// Tokens issued since start.
    pub tokens_issued: u64,
    /// Tokens currently valid (at most 30).
    pub tokens_live: u64,
    /// SHA-256 of the last backup served by `/api/backup`.
    pub backup_sha256: Option<String>,
    pub backups_served: u64,
    pub certificates: Vec<CertificateState>,
    pub jump_clients: JumpClientState,
    pub vault_key_backed_up: bool,
    pub clock_skew_s: i64,
    pub time_scale: f64,
    pub faults: Faults,
    pub actions: Vec<ActionRecord>,
}

pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

pub(crate) struct Account {
    pub client_id: String,
    pub secret_sha256: [u8; 32],
}

pub(crate) struct StoredCert {
    pub name: String,
    pub leaf: Leaf,
}

/// Jump Client upgrade wave: started when an install completed.
#[derive(Clone, Copy)]
pub(crate) struct Wave {
    pub started_real: Instant,
    pub started_unix: i64,
}

pub(crate) struct State {
    pub status: ApplianceStatus,
    pub version: String,
    pub build: u32,
    pub installed: Vec<String>,
    pub catalogue: Vec<PackageState>,
    pub install_error: Option<String>,
    pub role: Role,
    pub peer: Option<SocketAddr>,
    pub key: Option<String>,
    pub shared_ips: BTreeSet<IpAddr>,
    pub last_sync_unix: Option<i64>,
    pub last_sync_status: Option<String>,
    pub sync_in_progress: bool,
    pub account: Option<Account>,
    pub tokens: VecDeque<Token>,
    pub tokens_issued: u64,
    pub backup_sha256: Option<String>,
    pub backups_served: u64,
    pub certs: Vec<StoredCert>,
    pub default_cert: usize,
    pub jump_clients: u32,
    pub jump_client_groups: Vec<JumpClientGroup>,
    pub throttle: u32,
    pub wave: Option<Wave>,
    /// Arrival times of the account's recent requests (last hour), for the rate limit.
    pub requests: VecDeque<Instant>,
    pub rate_limited: u64,
    pub vault_key_backed_up: bool,
    pub data_mb: f64,
    pub faults: Faults,
    pub actions: Vec<ActionRecord>,
}

impl State {
    /// Drop expired tokens; returns how many are live.
    pub fn purge_tokens(&mut self) -> u64 {
        let now = Instant::now();
        self.tokens.retain(|t| t.expires > now);
        self.tokens.len() as u64
    }
}
