//! Simulator configuration and fault knobs.
//!
//! Owns: [`SimConfig`] (everything a simulator is started with), [`Role`], the fault set
//! [`Faults`] and the textual fault syntax `NAME[=VALUE]` shared by the CLI (`--fault`) and
//! `POST /_sim/faults`.
//!
//! Must not: start anything, touch the network or the disk.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::SimError;

/// Failover role as the command API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    None,
    Primary,
    Backup,
}

impl Role {
    /// The wire spelling (`none`, `primary`, `backup`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::None => "none",
            Role::Primary => "primary",
            Role::Backup => "backup",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Role::None),
            "primary" => Ok(Role::Primary),
            "backup" => Ok(Role::Backup),
            other => Err(SimError::Invalid(format!(
                "unknown role {other:?} (expected none, primary or backup)"
            ))),
        }
    }
}

/// Everything a simulated appliance starts with. Build one with [`SimConfig::new`] and
/// adjust the public fields.
#[derive(Clone)]
pub struct SimConfig {
    /// Short name (`a`, `b`); appears in the ready line, state and action log.
    pub name: String,
    /// Where the appliance listens. Port 0 picks a free port; the handle reports the bound one.
    pub listen: SocketAddr,
    /// Public site hostname (leaf certificate SAN, `check_health` hostname).
    pub site: String,
    /// Installed version, e.g. `24.3.1`.
    pub version: String,
    /// Offer an update chain to this version: base package, then the site package it unlocks.
    pub update_to: Option<String>,
    /// Name of the base package the update chain starts with (default `base-7.2.1`).
    pub base_package: String,
    /// Directory holding `ca.pem` + `ca.key` (created when missing, shared between simulators).
    pub ca_dir: PathBuf,
    /// The API account's OAuth client id.
    pub client_id: String,
    /// The API account's OAuth client secret. Never logged or reported.
    pub client_secret: String,
    /// Failover role at start (with `peer`: already in a relationship).
    pub role: Role,
    /// The other appliance of the pair.
    pub peer: Option<SocketAddr>,
    /// Inter-appliance communication pre-shared key. Never logged or reported.
    pub key: Option<String>,
    /// Shared IP enabled at start (the simulator listens on it, same port).
    pub shared_ip: Option<IpAddr>,
    /// Real seconds per simulated second (0.001: a 45-minute install takes 2.7 s).
    pub time_scale: f64,
    /// Faults active from the start.
    pub faults: Faults,
    /// Jump Client population.
    pub jump_clients: u32,
    /// Initial "Maximum number of concurrent Jump Client upgrades".
    pub jump_client_throttle: u32,
    /// Simulated seconds one Jump Client needs to upgrade and reconnect.
    pub jump_client_upgrade_s: f64,
    /// Validity of the served leaf certificate, days from now.
    pub cert_valid_days: i64,
    /// Simulated duration of the site package install (seconds).
    pub install_s: f64,
    /// Simulated duration of the base package install (seconds).
    pub base_install_s: f64,
    /// Amount of data a sync transfers (MB); sync time is proportional to it.
    pub data_mb: f64,
    /// Simulated sync throughput (MB per simulated second).
    pub sync_mb_per_s: f64,
    /// Build number reported after the version in `check_health`.
    pub build: u32,
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("name", &self.name)
            .field("listen", &self.listen)
            .field("site", &self.site)
            .field("version", &self.version)
            .field("update_to", &self.update_to)
            .field("ca_dir", &self.ca_dir)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("role", &self.role)
            .field("peer", &self.peer)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("shared_ip", &self.shared_ip)
            .field("time_scale", &self.time_scale)
            .field("faults", &self.faults)
            .field("jump_clients", &self.jump_clients)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// Defaults: listen on 127.0.0.1 port 0, site `access.example.test`, version `24.3.1`,
    /// no update, client `swing-sim` / `sim-secret`, no failover, time scale 0.001,
    /// no faults, no Jump Clients, certificate valid 365 days.
    pub fn new(name: impl Into<String>, ca_dir: impl Into<PathBuf>) -> Self {
        SimConfig {
            name: name.into(),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            site: "access.example.test".into(),
            version: "24.3.1".into(),
            update_to: None,
            base_package: "base-7.2.1".into(),
            ca_dir: ca_dir.into(),
            client_id: "swing-sim".into(),
            client_secret: "sim-secret".into(),
            role: Role::None,
            peer: None,
            key: None,
            shared_ip: None,
            time_scale: 0.001,
            faults: Faults::default(),
            jump_clients: 0,
            jump_client_throttle: 100,
            jump_client_upgrade_s: 120.0,
            cert_valid_days: 365,
            install_s: 45.0 * 60.0,
            base_install_s: 15.0 * 60.0,
            data_mb: 500.0,
            sync_mb_per_s: 50.0,
            build: 4711,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        if !(self.time_scale.is_finite() && self.time_scale >= 0.0) {
            return Err(SimError::Invalid(
                "time_scale must be a finite number >= 0".into(),
            ));
        }
        if self.name.is_empty() {
            return Err(SimError::Invalid("name must not be empty".into()));
        }
        if self.role != Role::None && self.peer.is_none() {
            return Err(SimError::Invalid("a failover role needs a peer".into()));
        }
        if self.peer.is_some() && self.key.is_none() {
            return Err(SimError::Invalid(
                "a peer needs the inter-appliance key".into(),
            ));
        }
        self.faults.validate()
    }
}

/// The fault knobs. All off by default. Change them at run time with
/// [`crate::SimHandle::set_fault`] or `POST /_sim/faults`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// `install-fails`: installs run their time, then fail; the version stays, health reports the error.
    pub install_fails: bool,
    /// `install-hangs`: installs never finish (the appliance stays unreachable) while set.
    pub install_hangs: bool,
    /// `http-5xx=RATE`: fraction (0..=1) of vendor API requests answered with HTTP 500.
    pub http_5xx_rate: f64,
    /// `latency=MS`: added delay before every vendor API response, real milliseconds.
    pub latency_ms: u64,
    /// `reset=RATE`: fraction (0..=1) of vendor API requests whose connection is reset (TCP RST).
    pub reset_rate: f64,
    /// `token-down`: `/oauth2/token` answers 503.
    pub token_down: bool,
    /// `token-expiry=SECONDS`: tokens live this many real seconds instead of 3600.
    pub token_lifetime_s: Option<u64>,
    /// `clock-skew=SECONDS`: the appliance clock (HTTP `Date`, sync times) is off by this much.
    pub clock_skew_s: i64,
    /// `cert-expiring=DAYS`: the served leaf certificate expires in DAYS (negative: expired).
    pub cert_expiring_days: Option<i64>,
    /// `key-mismatch`: this appliance's inter-appliance key differs from its peer's.
    pub key_mismatch: bool,
    /// `slow-sync=FACTOR`: syncs take FACTOR times longer.
    pub slow_sync_factor: Option<f64>,
    /// `clients-never-return`: after an install, Jump Clients stay offline / needs_update.
    pub clients_never_return: bool,
}

/// Names accepted by [`Fault::from_str`], for help texts.
pub const FAULT_NAMES: &[&str] = &[
    "install-fails",
    "install-hangs",
    "http-5xx=RATE",
    "latency=MS",
    "reset=RATE",
    "token-down",
    "token-expiry=SECONDS",
    "clock-skew=SECONDS",
    "cert-expiring=DAYS",
    "key-mismatch",
    "slow-sync=FACTOR",
    "clients-never-return",
];

/// One fault setting, parsed from `NAME[=VALUE]`. Flags take an optional `=true|false`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    InstallFails(bool),
    InstallHangs(bool),
    Http5xxRate(f64),
    LatencyMs(u64),
    ResetRate(f64),
    TokenDown(bool),
    TokenLifetime(Option<u64>),
    ClockSkew(i64),
    CertExpiring(Option<i64>),
    KeyMismatch(bool),
    SlowSync(Option<f64>),
    ClientsNeverReturn(bool),
}

fn parse_flag(name: &str, value: Option<&str>) -> Result<bool, SimError> {
    match value {
        None | Some("true") | Some("1") | Some("on") => Ok(true),
        Some("false") | Some("0") | Some("off") => Ok(false),
        Some(v) => Err(SimError::Invalid(format!(
            "fault {name}: expected true or false, got {v:?}"
        ))),
    }
}

fn parse_num<T: FromStr>(name: &str, value: Option<&str>) -> Result<T, SimError> {
    let v =
        value.ok_or_else(|| SimError::Invalid(format!("fault {name} needs a value ({name}=N)")))?;
    v.trim()
        .parse()
        .map_err(|_| SimError::Invalid(format!("fault {name}: {v:?} is not a valid number")))
}

fn parse_rate(name: &str, value: Option<&str>) -> Result<f64, SimError> {
    let r: f64 = parse_num(name, value)?;
    if !(0.0..=1.0).contains(&r) {
        return Err(SimError::Invalid(format!(
            "fault {name}: rate must be within 0..=1"
        )));
    }
    Ok(r)
}

/// `off`/`none` clears an optional knob.
fn is_off(value: Option<&str>) -> bool {
    matches!(value, Some("off") | Some("none") | Some("false"))
}

impl FromStr for Fault {
    type Err = SimError;
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let (name, value) = match spec.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (spec.trim(), None),
        };
        Ok(match name {
            "install-fails" => Fault::InstallFails(parse_flag(name, value)?),
            "install-hangs" => Fault::InstallHangs(parse_flag(name, value)?),
            "http-5xx" => Fault::Http5xxRate(parse_rate(name, value)?),
            "latency" => Fault::LatencyMs(parse_num(name, value)?),
            "reset" => Fault::ResetRate(parse_rate(name, value)?),
            "token-down" => Fault::TokenDown(parse_flag(name, value)?),
            "token-expiry" if is_off(value) => Fault::TokenLifetime(None),
            "token-expiry" => Fault::TokenLifetime(Some(parse_num(name, value)?)),
            "clock-skew" => Fault::ClockSkew(parse_num(name, value)?),
            "cert-expiring" if is_off(value) => Fault::CertExpiring(None),
            "cert-expiring" => Fault::CertExpiring(Some(parse_num(name, value)?)),
            "key-mismatch" => Fault::KeyMismatch(parse_flag(name, value)?),
            "slow-sync" if is_off(value) => Fault::SlowSync(None),
            "slow-sync" => {
                let f: f64 = parse_num(name, value)?;
                if !(f.is_finite() && f > 0.0) {
                    return Err(SimError::Invalid(
                        "fault slow-sync: factor must be > 0".into(),
                    ));
                }
                Fault::SlowSync(Some(f))
            }
            "clients-never-return" => Fault::ClientsNeverReturn(parse_flag(name, value)?),
            other => {
                return Err(SimError::Invalid(format!(
                    "unknown fault {other:?}; known: {}",
                    FAULT_NAMES.join(", ")
                )));
            }
        })
    }
}

impl Faults {
    /// Apply one setting.
    pub fn apply(&mut self, fault: Fault) {
        match fault {
            Fault::InstallFails(v) => self.install_fails = v,
            Fault::InstallHangs(v) => self.install_hangs = v,
            Fault::Http5xxRate(v) => self.http_5xx_rate = v,
            Fault::LatencyMs(v) => self.latency_ms = v,
            Fault::ResetRate(v) => self.reset_rate = v,
            Fault::TokenDown(v) => self.token_down = v,
            Fault::TokenLifetime(v) => self.token_lifetime_s = v,
            Fault::ClockSkew(v) => self.clock_skew_s = v,
            Fault::CertExpiring(v) => self.cert_expiring_days = v,
            Fault::KeyMismatch(v) => self.key_mismatch = v,
            Fault::SlowSync(v) => self.slow_sync_factor = v,
            Fault::ClientsNeverReturn(v) => self.clients_never_return = v,
        }
    }

    /// Parse `NAME[=VALUE]` specs and apply them in order.
    pub fn parse_all<'a>(specs: impl IntoIterator<Item = &'a str>) -> Result<Faults, SimError> {
        let mut f = Faults::default();
        for s in specs {
            f.apply(s.parse()?);
        }
        Ok(f)
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        let rate_ok = |r: f64| (0.0..=1.0).contains(&r);
        if !rate_ok(self.http_5xx_rate) || !rate_ok(self.reset_rate) {
            return Err(SimError::Invalid("fault rates must be within 0..=1".into()));
        }
        if let Some(f) = self.slow_sync_factor
            && !(f.is_finite() && f > 0.0)
        {
            return Err(SimError::Invalid("slow-sync factor must be > 0".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fault_specs() {
        let f = Faults::parse_all([
            "install-fails",
            "http-5xx=0.5",
            "latency=20",
            "token-expiry=2",
        ])
        .unwrap();
        assert!(f.install_fails);
        assert_eq!(f.http_5xx_rate, 0.5);
        assert_eq!(f.latency_ms, 20);
        assert_eq!(f.token_lifetime_s, Some(2));
        assert!("http-5xx=2".parse::<Fault>().is_err());
        assert!("nonsense".parse::<Fault>().is_err());
        assert!("latency".parse::<Fault>().is_err());
        assert_eq!(
            "install-fails=false".parse::<Fault>().unwrap(),
            Fault::InstallFails(false)
        );
        assert_eq!(
            "cert-expiring=-1".parse::<Fault>().unwrap(),
            Fault::CertExpiring(Some(-1))
        );
    }
}
