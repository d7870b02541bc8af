//! Simulator configuration and fault knobs.
//!
//! Owns: [`SimConfig`] (everything a simulator is started with), [`Role`], the command API
//! [`Dialect`], the API account's [`Permissions`], the extra Jump Client groups
//! ([`JumpClientGroup`]), the [`RateLimit`], the fault set [`Faults`] and the textual fault
//! syntax `NAME[=VALUE]` shared by the CLI (`--fault`) and `POST /_sim/faults`.
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

/// Which release family's command API XML the simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// As recorded from a 19.1 appliance: root `<health_check>`, namespace
    /// `http://www.bomgar.com/namespaces/API/command`, `last_data_sync_time` without `ts` and
    /// with a `+0000` offset, `api_version` 1.19.0.
    #[default]
    Bomgar,
    /// Newer releases: root `<check_health>`, namespace
    /// `https://www.beyondtrust.com/namespaces/API/command`, `last_data_sync_time` with `ts`
    /// and `+00:00`, `api_version` 1.32.0.
    Beyondtrust,
}

impl Dialect {
    /// Both dialects, the recorded (default) one first.
    pub const ALL: [Dialect; 2] = [Dialect::Bomgar, Dialect::Beyondtrust];

    /// The wire spelling (`bomgar`, `beyondtrust`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Bomgar => "bomgar",
            Dialect::Beyondtrust => "beyondtrust",
        }
    }

    /// The command API namespace of this dialect.
    pub fn namespace(self) -> &'static str {
        match self {
            Dialect::Bomgar => "http://www.bomgar.com/namespaces/API/command",
            Dialect::Beyondtrust => "https://www.beyondtrust.com/namespaces/API/command",
        }
    }

    /// The root element of the `check_health` answer.
    pub fn health_root(self) -> &'static str {
        match self {
            Dialect::Bomgar => "health_check",
            Dialect::Beyondtrust => "check_health",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "bomgar" => Ok(Dialect::Bomgar),
            "beyondtrust" => Ok(Dialect::Beyondtrust),
            other => Err(SimError::Invalid(format!(
                "unknown dialect {other:?} (expected bomgar or beyondtrust)"
            ))),
        }
    }
}

/// The API account's permissions as `get_api_info` lists them (name → value), in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions(pub std::collections::BTreeMap<String, String>);

impl Default for Permissions {
    /// The full set as recorded: `perm_command` `full_access`, `perm_backup` 1, the reporting
    /// permissions, `perm_real_time_state`, `perm_ecm`, `perm_scim` all 1.
    fn default() -> Self {
        let mut m = std::collections::BTreeMap::new();
        m.insert("perm_command".to_owned(), "full_access".to_owned());
        for name in [
            "perm_backup",
            "perm_ecm",
            "perm_real_time_state",
            "perm_reporting_license",
            "perm_reporting_session",
            "perm_reporting_support_team",
            "perm_reporting_archive",
            "perm_reporting_vault",
            "perm_scim",
        ] {
            m.insert(name.to_owned(), "1".to_owned());
        }
        Permissions(m)
    }
}

impl Permissions {
    /// The value of one permission (`None`: not granted at all).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Whether `set_failover_role` is allowed (`perm_command` = `full_access`).
    pub fn command_full_access(&self) -> bool {
        self.get("perm_command") == Some("full_access")
    }

    /// Whether `/api/backup` is allowed (`perm_backup` = `1`).
    pub fn backup(&self) -> bool {
        self.get("perm_backup") == Some("1")
    }

    /// Apply `name=value,name=value` on top of this set (`--permissions`); an empty value
    /// removes the permission from the list.
    pub fn apply_spec(&mut self, spec: &str) -> Result<(), SimError> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| {
                SimError::Invalid(format!("permission {part:?}: expected NAME=VALUE"))
            })?;
            let name = name.trim();
            if !name.starts_with("perm_") || name.len() > 64 {
                return Err(SimError::Invalid(format!(
                    "permission {name:?}: names start with perm_"
                )));
            }
            let value = value.trim();
            if value.is_empty() {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_owned(), value.to_owned());
            }
        }
        Ok(())
    }
}

/// Kinds of Jump Clients beyond the active ones that go through the upgrade wave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JumpClientKind {
    /// Active, disconnected an hour ago (not lost): counted, not online, never upgrades.
    ActiveOffline,
    /// Passive: checks in after the active ones have upgraded (the wave continues with them).
    Passive,
    /// `connection_type: uninstalled`: never comes back.
    Uninstalled,
    /// Active with `is_lost: true` (disconnected for 30 days): never comes back.
    Lost,
}

impl JumpClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            JumpClientKind::ActiveOffline => "active-offline",
            JumpClientKind::Passive => "passive",
            JumpClientKind::Uninstalled => "uninstalled",
            JumpClientKind::Lost => "lost",
        }
    }
}

/// `count` Jump Clients of one kind, served after the `jump_clients` active ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JumpClientGroup {
    pub kind: JumpClientKind,
    pub count: u32,
    /// Report `needs_update: true` already before any install.
    pub needs_update: bool,
}

impl FromStr for JumpClientGroup {
    type Err = SimError;
    /// `KIND=COUNT[:needs-update]`, e.g. `passive=5`, `lost=2:needs-update`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            SimError::Invalid(format!(
                "Jump Client group {s:?}: expected KIND=COUNT[:needs-update] with KIND one of \
                 active-offline, passive, uninstalled, lost"
            ))
        };
        let (kind, rest) = s.trim().split_once('=').ok_or_else(bad)?;
        let kind = match kind.trim() {
            "active-offline" => JumpClientKind::ActiveOffline,
            "passive" => JumpClientKind::Passive,
            "uninstalled" => JumpClientKind::Uninstalled,
            "lost" => JumpClientKind::Lost,
            _ => return Err(bad()),
        };
        let (count, flag) = match rest.split_once(':') {
            Some((c, "needs-update")) => (c, true),
            Some(_) => return Err(bad()),
            None => (rest, false),
        };
        let count = count.trim().parse().map_err(|_| bad())?;
        Ok(JumpClientGroup {
            kind,
            count,
            needs_update: flag,
        })
    }
}

/// Requests allowed per API account (vendor: 20 per second and 15,000 per hour, every
/// endpoint). `None` in [`SimConfig::rate_limit`] turns limiting off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub per_second: u32,
    pub per_hour: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 20,
            per_hour: 15_000,
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
    /// Public site hostname (leaf certificate SAN).
    pub site: String,
    /// The appliance's own host name, the text of `check_health`'s `<appliance>`. `None`:
    /// derived from the listen address as recorded (`ip-127-0-0-11`).
    pub hostname: Option<String>,
    /// Command API dialect (default: the recorded, older one).
    pub dialect: Dialect,
    /// The API account's permissions (default: the full recorded set).
    pub permissions: Permissions,
    /// Requests per API account before a 429 (default: the vendor's); `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
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
    /// Active Jump Clients, online at start; after an install they upgrade in waves.
    pub jump_clients: u32,
    /// Further Jump Clients by kind (passive, offline, uninstalled, lost), served after the
    /// active ones.
    pub jump_client_groups: Vec<JumpClientGroup>,
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
            .field("jump_client_groups", &self.jump_client_groups)
            .field("dialect", &self.dialect)
            .field("permissions", &self.permissions)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl SimConfig {
    /// Defaults: listen on 127.0.0.1 port 0, site `access.example.test`, version `24.3.1`,
    /// no update, client `swing-sim` / `sim-secret`, no failover, time scale 0.001,
    /// no faults, no Jump Clients, certificate valid 365 days, the recorded dialect, the full
    /// permission set, the vendor's rate limit.
    pub fn new(name: impl Into<String>, ca_dir: impl Into<PathBuf>) -> Self {
        SimConfig {
            name: name.into(),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            site: "access.example.test".into(),
            hostname: None,
            dialect: Dialect::default(),
            permissions: Permissions::default(),
            rate_limit: Some(RateLimit::default()),
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
            jump_client_groups: Vec::new(),
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
        if let Some(r) = self.rate_limit
            && (r.per_second == 0 || r.per_hour == 0)
        {
            return Err(SimError::Invalid(
                "rate limits must be above zero (use no limit instead)".into(),
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

    #[test]
    fn parses_dialects_permissions_and_groups() {
        assert_eq!("bomgar".parse::<Dialect>().unwrap(), Dialect::Bomgar);
        assert_eq!(
            "beyondtrust".parse::<Dialect>().unwrap(),
            Dialect::Beyondtrust
        );
        assert!("bt".parse::<Dialect>().is_err());
        assert_eq!(Dialect::default(), Dialect::Bomgar);
        let mut p = Permissions::default();
        assert!(p.command_full_access() && p.backup());
        p.apply_spec("perm_command=read_only, perm_backup=0")
            .unwrap();
        assert!(!p.command_full_access() && !p.backup());
        p.apply_spec("perm_scim=").unwrap();
        assert_eq!(p.get("perm_scim"), None);
        assert!(p.apply_spec("backup").is_err());
        assert!(p.apply_spec("command=1").is_err());
        let g: JumpClientGroup = "lost=2:needs-update".parse().unwrap();
        assert_eq!(
            g,
            JumpClientGroup {
                kind: JumpClientKind::Lost,
                count: 2,
                needs_update: true
            }
        );
        assert_eq!(
            "passive=5".parse::<JumpClientGroup>().unwrap().kind,
            JumpClientKind::Passive
        );
        assert!("ghost=1".parse::<JumpClientGroup>().is_err());
        assert!("passive=x".parse::<JumpClientGroup>().is_err());
    }
}
