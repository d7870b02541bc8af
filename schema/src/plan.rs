//! The plan format v1 (`../shared/spec/plan-format.md`) as typed Rust.
//!
//! Owns the shape of a plan and its defaults. Must not hold semantic checks (cross-field
//! rules live in the engine's `validate`) and must not rename or remove anything of v1:
//! the format is a contract; only optional fields may be added.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::DurationSpec;
use crate::secret::SecretRef;

/// Pattern of `name` (the change name).
pub const PLAN_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9-]*$";
/// Pattern of appliance names (keys of `appliances`).
pub const APPLIANCE_NAME_PATTERN: &str = "^[a-z][a-z0-9-]*$";
/// Longest change, appliance or window name (bytes): they become parts of lock, journal and
/// backup file names, and every file system takes a name part of this length.
pub const MAX_NAME_LEN: u64 = 64;
/// Pattern of a window name: letters, digits, `.`, `_` and `-` (safe in file names and diagrams).
pub const WINDOW_NAME_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._-]*$";
/// Most maintenance windows a plan may have.
pub const MAX_WINDOWS: u64 = 32;
/// Most packages of a target.
pub const MAX_PACKAGES: u64 = 16;
/// Most manual checks after an upgrade.
pub const MAX_MANUAL_CHECKS: u64 = 64;
/// Most entries of `policy.estimates` (there are a few dozen step ids and actions).
pub const MAX_ESTIMATES: u64 = 128;
/// Largest `policy.parallelism`.
pub const MAX_PARALLELISM: u32 = 64;
/// Largest `policy.certificate_min_days` (ten years).
pub const MAX_CERTIFICATE_MIN_DAYS: u32 = 3_650;
/// Largest `policy.jump_clients.max_concurrent_upgrades`.
pub const MAX_CONCURRENT_CLIENT_UPGRADES: u32 = 100_000;
/// Most notification targets of a plan.
pub const MAX_NOTIFY: u64 = 16;
/// Largest DNS TTL used around a switch (one day, in seconds).
pub const MAX_SWITCH_TTL: u32 = 86_400;

/// Pattern of a dotted numeric version such as `25.1.3`.
pub const VERSION_PATTERN: &str = r"^[0-9]+(\.[0-9]+)+$";

/// Pattern of `host:port` (or `[v6]:port`): a host without whitespace, then a port in
/// 1..=65535 (an optional `+` and leading zeros allowed, as Rust's `u16` parser takes them).
/// The engine checks `providers.*.server` and `switch.public` itself; the editor schema states
/// the same rule with this pattern.
pub const ENDPOINT_PATTERN: &str = r"^\S+:\+?0*([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$";

/// Pattern of a hostname (RFC 1123 labels of letters, digits and `-`, joined by dots, no
/// trailing dot): what the `hostname` format of `site` checks, for validators that do not
/// check formats.
pub const HOSTNAME_PATTERN: &str = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$";

/// A swing plan, format version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "swing plan, format version 1")]
pub struct Plan {
    /// Format version; must be 1.
    pub version: FormatVersion,
    /// Change name; used in lock, journal and backup file names.
    #[schemars(extend("pattern" = PLAN_NAME_PATTERN, "maxLength" = MAX_NAME_LEN))]
    pub name: String,
    /// The public site name clients resolve (e.g. access.example.com).
    #[schemars(extend("format" = "hostname", "maxLength" = 253))]
    pub site: String,
    /// What to reach.
    pub target: Target,
    /// The appliances: one (single upgrade) or two (failover pair or migration).
    #[schemars(extend("minProperties" = 1, "maxProperties" = 2, "propertyNames" = {"pattern": APPLIANCE_NAME_PATTERN, "maxLength": MAX_NAME_LEN}))]
    pub appliances: BTreeMap<String, Appliance>,
    /// The failover pair and how to upgrade it (two appliances, unless `migration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// Hardware migration: old appliance → new appliance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migration>,
    /// Maintenance windows; apply refuses window-bound steps outside them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = MAX_WINDOWS))]
    pub windows: Vec<Window>,
    /// Guard rails, all with defaults.
    #[serde(default)]
    pub policy: Policy,
    /// Where and how the configuration backup is stored.
    pub backup: Backup,
    /// Extra checks after each upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    /// How each resource is reached.
    pub providers: BTreeMap<String, Provider>,
    /// Who hears about the apply pausing, failing and ending. A notification never blocks or
    /// fails an apply: it is retried briefly and its failure is reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = MAX_NOTIFY))]
    pub notify: Vec<Notify>,
    /// Where the lock, the journal, saved-plan records and confirmations live. Default:
    /// `local` (`.swing/` next to the plan, the site lock host-wide). `--state URL` on the
    /// command line overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateBackend>,
}

/// Where a change's state lives (`state`). A site's state is keyed by (namespace, site).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "backend", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StateBackend {
    /// Files: the journal in `.swing/` next to the plan, the site lock in the host-wide lock
    /// directory. Nothing to install; one machine.
    Local {
        /// The namespace the site's lock is keyed by (default `default`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("pattern" = PLAN_NAME_PATTERN, "maxLength" = MAX_NAME_LEN))]
        namespace: Option<String>,
    },
    /// A PostgreSQL database shared by every runner: schema created and migrated by swing, the
    /// site lock a session-level advisory lock plus a holder row, the journal append-only rows.
    Postgres {
        /// The connection URL (`postgres://user:password@host:port/db`): a secret reference,
        /// since it holds a password. Plain TCP only to a loopback address or a Unix socket;
        /// any other host is reached over verified TLS.
        url: SecretRef,
        /// The namespace the site's state is keyed by (default `default`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("pattern" = PLAN_NAME_PATTERN, "maxLength" = MAX_NAME_LEN))]
        namespace: Option<String>,
        /// CA bundle to trust for the server's certificate instead of the system roots
        /// (relative to the plan file).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<String>,
    },
}

impl StateBackend {
    /// The namespace the site's state is keyed by.
    pub fn namespace(&self) -> Option<&str> {
        match self {
            StateBackend::Local { namespace } | StateBackend::Postgres { namespace, .. } => {
                namespace.as_deref()
            }
        }
    }
}

/// The format version: the integer `1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatVersion;

impl Serialize for FormatVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(1)
    }
}

impl<'de> Deserialize<'de> for FormatVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if v == 1 {
            Ok(FormatVersion)
        } else {
            Err(serde::de::Error::custom(format!(
                "plan format version {v} is not supported; this swing reads version 1"
            )))
        }
    }
}

impl JsonSchema for FormatVersion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FormatVersion".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "const": 1, "description": "Plan format version; must be 1" })
    }
}

/// What to reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Target version, dotted numeric (e.g. "25.1.3"); quoted or not, it is a string.
    pub version: Version,
    /// automatic (the appliance's update server) or manual (offline, appliance download key).
    #[serde(default)]
    pub source: Source,
    /// Install order, base software first (a base package may unlock the site package).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("maxItems" = MAX_PACKAGES))]
    pub packages: Vec<String>,
}

/// A dotted numeric version such as `25.1.3`. Numbers in YAML (`25.1`) are accepted as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Version(pub String);

impl Version {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether the text is a dotted numeric version.
    pub fn is_dotted(s: &str) -> bool {
        let mut parts = 0;
        for p in s.split('.') {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            parts += 1;
        }
        parts >= 2
    }
    /// Numeric components, for ordering versions (`24.3.1 < 25.1.3`).
    pub fn components(&self) -> Vec<u64> {
        self.0.split('.').map(|p| p.parse().unwrap_or(0)).collect()
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            S(String),
            F(f64),
            I(u64),
        }
        Ok(Version(match Raw::deserialize(d)? {
            Raw::S(s) => s,
            Raw::F(f) => f.to_string(),
            Raw::I(i) => i.to_string(),
        }))
    }
}

impl JsonSchema for Version {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Version".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": VERSION_PATTERN,
            "description": "Dotted numeric version, e.g. \"25.1.3\"",
            "examples": ["25.1.3"]
        })
    }
}

/// Where the update comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The appliance downloads the update itself (/appliance > Updates).
    #[default]
    Automatic,
    /// Offline: appliance download key, update file carried on removable media.
    Manual,
}

/// One appliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Appliance {
    /// Unique IP or hostname of this appliance.
    pub address: String,
    /// HTTPS port of the appliance.
    #[serde(default = "default_https_port")]
    pub port: u16,
    /// What `plan --offline` assumes the appliance runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<Version>,
    /// Name of the provider that reaches it.
    #[serde(default = "default_appliance_provider")]
    pub provider: String,
}

fn default_https_port() -> u16 {
    443
}
fn default_appliance_provider() -> String {
    "appliance".to_owned()
}

/// The failover pair and how to upgrade it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    /// The current primary; must name an appliance.
    pub primary: String,
    /// The current backup; must name the other appliance.
    pub backup: String,
    /// synchronous (primary keeps its role, downtime while it upgrades) or asynchronous
    /// (backup upgraded first and takes over; minimal downtime).
    pub strategy: Strategy,
    /// How the site moves between appliances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<Switch>,
    /// asynchronous only; default: the backup. Naming the old primary adds a switch back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_primary: Option<String>,
    /// TLS port used when re-establishing the relationship.
    #[serde(default = "default_https_port")]
    pub peer_port: u16,
}

/// Failover upgrade strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Synchronous,
    Asynchronous,
}

/// How the site moves between appliances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Switch {
    /// A shared IP moves from one appliance to the other.
    SharedIp {
        /// The shared IP.
        address: String,
    },
    /// The site's DNS record is updated (RFC 2136).
    Dns {
        /// Name of an `rfc2136` provider.
        provider: String,
        /// The record to swing (usually the site name).
        record: String,
        /// TTL used around the change, in seconds.
        #[serde(default = "default_switch_ttl")]
        #[schemars(range(max = MAX_SWITCH_TTL))]
        ttl: u32,
    },
    /// A NAT gateway's DNAT rule is pointed at the other appliance.
    Nat {
        /// Name of an `nftables`, `iptables` or `exec` provider.
        provider: String,
        /// The public address:port the DNAT rule matches.
        public: String,
    },
}

fn default_switch_ttl() -> u32 {
    60
}

impl Switch {
    /// `shared-ip`, `dns` or `nat`.
    pub fn method(&self) -> &'static str {
        match self {
            Switch::SharedIp { .. } => "shared-ip",
            Switch::Dns { .. } => "dns",
            Switch::Nat { .. } => "nat",
        }
    }
    /// The provider the switch goes through, if any (shared-ip has none: it is an operator step).
    pub fn provider(&self) -> Option<&str> {
        match self {
            Switch::SharedIp { .. } => None,
            Switch::Dns { provider, .. } | Switch::Nat { provider, .. } => Some(provider),
        }
    }
}

/// Hardware migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// The appliance being replaced.
    pub from: String,
    /// The freshly installed appliance.
    pub to: String,
    /// How the site moves to the new appliance.
    pub switch: Switch,
}

/// A maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Letters, digits, `.`, `_`, `-`; at most 64 bytes. Optional: a window without one is
    /// `window-1`, `window-2`, … by its place in the plan (filled in by validation).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(extend("pattern" = WINDOW_NAME_PATTERN, "maxLength" = MAX_NAME_LEN))]
    pub name: String,
    /// RFC 3339 with offset.
    pub start: DateTime<FixedOffset>,
    /// RFC 3339 with offset; after `start`.
    pub end: DateTime<FixedOffset>,
}

/// Guard rails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Longest the pair may run without a failover relationship.
    pub max_unprotected: DurationSpec,
    /// Served TLS certificate must stay valid this many days after the last window.
    #[schemars(range(max = MAX_CERTIFICATE_MIN_DAYS))]
    pub certificate_min_days: u32,
    /// Appliance clock vs. engine clock.
    pub clock_skew_max: DurationSpec,
    /// Concurrent automated steps.
    #[schemars(range(min = 1, max = MAX_PARALLELISM))]
    pub parallelism: u32,
    /// Jump Client upgrade pacing.
    pub jump_clients: JumpClientPolicy,
    /// Estimated durations overriding the guide's defaults, keyed by step id (`a.install`)
    /// or by action (`install`, `online`, `sync`, …). Used for plan estimates only.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = MAX_ESTIMATES))]
    pub estimates: BTreeMap<String, DurationSpec>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_unprotected: DurationSpec::from_secs(8 * 86_400),
            certificate_min_days: 30,
            clock_skew_max: DurationSpec::from_secs(60),
            parallelism: 4,
            jump_clients: JumpClientPolicy::default(),
            estimates: BTreeMap::new(),
        }
    }
}

/// Jump Client upgrade pacing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct JumpClientPolicy {
    /// "Maximum number of concurrent Jump Client upgrades".
    #[schemars(range(max = MAX_CONCURRENT_CLIENT_UPGRADES))]
    pub max_concurrent_upgrades: u32,
    /// Fraction of Jump Clients back online and upgraded before going on.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub online_ratio: f64,
    /// Longest wait for them.
    pub wait_timeout: DurationSpec,
    /// Count passive Jump Clients towards `online_ratio` too. They check in only at start,
    /// after a console connection, on demand and at least every 24 h, so by default they
    /// are counted apart (as uninstalled and lost clients always are).
    pub include_passive: bool,
}

impl Default for JumpClientPolicy {
    fn default() -> Self {
        JumpClientPolicy {
            max_concurrent_upgrades: 100,
            online_ratio: 0.95,
            wait_timeout: DurationSpec::from_secs(4 * 3_600),
            include_passive: false,
        }
    }
}

/// Where and how the configuration backup is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// Directory, relative to the plan file.
    pub directory: String,
    /// Backup password (secret reference).
    pub password: SecretRef,
    /// Include reporting data in the backup.
    #[serde(default = "default_true")]
    pub include_reporting_data: bool,
}

fn default_true() -> bool {
    true
}

/// Extra checks after each upgrade.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// Steps a person confirms after each upgrade. Absent: the guide's two checks; `[]`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxItems" = MAX_MANUAL_CHECKS))]
    pub manual: Option<Vec<String>>,
}

/// The guide's default manual checks after an upgrade.
pub const DEFAULT_MANUAL_CHECKS: [&str; 2] = [
    "Access console on two workstations (hosts file → upgraded appliance): Help > About shows the target build",
    "Start an access session to a remote computer",
];

impl Plan {
    /// The manual checks that apply: `verify.manual`, or the guide's defaults when absent.
    pub fn manual_checks(&self) -> Vec<String> {
        match self.verify.as_ref().and_then(|v| v.manual.clone()) {
            Some(list) => list,
            None => DEFAULT_MANUAL_CHECKS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

/// How a resource is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Provider {
    /// A BeyondTrust appliance through its vendor APIs.
    Beyondtrust(BeyondtrustProvider),
    /// A DNS server accepting RFC 2136 dynamic updates.
    Rfc2136(Rfc2136Provider),
    /// An nftables NAT gateway (DNAT rule).
    Nftables(NftablesProvider),
    /// A NAT gateway whose DNAT rule is written with iptables (legacy or iptables-nft).
    Iptables(IptablesProvider),
    /// A site's own command speaking swing's JSON protocol over stdin/stdout.
    Exec(ExecProvider),
}

impl Provider {
    /// The `type` as written in the plan.
    pub fn type_name(&self) -> &'static str {
        match self {
            Provider::Beyondtrust(_) => "beyondtrust",
            Provider::Rfc2136(_) => "rfc2136",
            Provider::Nftables(_) => "nftables",
            Provider::Iptables(_) => "iptables",
            Provider::Exec(_) => "exec",
        }
    }
}

/// A value that is either written inline or a secret-style reference (e.g. `client_id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ValueOrRef {
    Ref(SecretRef),
    Literal(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BeyondtrustProvider {
    /// API account client id (inline or a reference).
    pub client_id: ValueOrRef,
    /// API account client secret (secret reference).
    pub client_secret: SecretRef,
    /// CA bundle to trust instead of the system roots (relative to the plan file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// How operator steps are carried out.
    #[serde(default)]
    pub operator: OperatorMode,
    /// The site's automation command, with `operator: exec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_command: Option<String>,
    /// The API account's request limits, when they differ from the vendor's (20 a second,
    /// 15,000 an hour); swing keeps under them and still honours a 429.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<ApiRateLimit>,
}

/// Requests one API account may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiRateLimit {
    /// Requests a second (1–1000).
    #[schemars(range(min = 1, max = 1000))]
    pub per_second: u32,
    /// Requests an hour (1–1,000,000).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub per_hour: u32,
}

/// How operator steps are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OperatorMode {
    /// A person performs the step; swing prints instructions and waits.
    #[default]
    Prompt,
    /// The site's command performs it (JSON description of the step on stdin).
    Exec,
    /// The simulator's `/_sim` automation performs it (rehearsals, tests, demo).
    Sim,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rfc2136Provider {
    /// Authoritative server, `host:port`.
    pub server: String,
    /// The zone the record lives in.
    pub zone: String,
    /// TSIG key for signed updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig: Option<Tsig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tsig {
    /// Key name.
    pub name: String,
    /// HMAC algorithm.
    #[serde(default)]
    pub algorithm: TsigAlgorithm,
    /// Base64 key (secret reference).
    pub secret: SecretRef,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TsigAlgorithm {
    #[default]
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NftablesProvider {
    /// Table holding the DNAT rule.
    pub table: String,
    /// Chain holding the DNAT rule.
    pub chain: String,
    /// Table family.
    #[serde(default = "default_nft_family")]
    pub family: String,
    /// Run nft inside this network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

fn default_nft_family() -> String {
    "ip".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IptablesProvider {
    /// Table holding the DNAT rule.
    #[serde(default = "default_iptables_table")]
    pub table: String,
    /// Chain holding the DNAT rule (e.g. `PREROUTING`).
    pub chain: String,
    /// Run the iptables tools inside this network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

fn default_iptables_table() -> String {
    "nat".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecProvider {
    /// Command (relative to the plan file) speaking the JSON protocol over stdin/stdout.
    pub command: String,
    /// Extra arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// One notification target (`notify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Notify {
    /// An HTTP POST of the event: `https` (verified), or plain `http` to a loopback address.
    Webhook {
        /// The URL, or a secret reference to it (chat hook URLs embed a token).
        url: ValueOrRef,
        /// HMAC-SHA256 key (secret reference): the body's signature goes in
        /// `X-Swing-Signature: sha256=<hex>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<SecretRef>,
        /// Which events are sent. Default: all four.
        #[serde(default = "NotifyEvent::all")]
        events: Vec<NotifyEvent>,
        /// `json` (the event itself) or `text` (a `{"text": …}` body chat tools accept).
        #[serde(default)]
        format: NotifyFormat,
        /// CA bundle to trust instead of the system roots (relative to the plan file).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ca_file: Option<String>,
    },
    /// A command (relative to the plan file) given the event as JSON on stdin.
    Exec {
        /// The command.
        command: String,
        /// Extra arguments.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
        /// Which events are sent. Default: all four.
        #[serde(default = "NotifyEvent::all")]
        events: Vec<NotifyEvent>,
    },
}

impl Notify {
    /// `webhook` or `exec`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Notify::Webhook { .. } => "webhook",
            Notify::Exec { .. } => "exec",
        }
    }
    /// The events this target hears about.
    pub fn events(&self) -> &[NotifyEvent] {
        match self {
            Notify::Webhook { events, .. } | Notify::Exec { events, .. } => events,
        }
    }
}

/// What a notification is about.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// The apply paused for a person (`--confirm STEP`).
    Paused,
    /// The apply paused until a maintenance window starts.
    WaitingForWindow,
    /// A step failed.
    Failed,
    /// The change is done.
    Done,
}

impl NotifyEvent {
    /// All four, the default of `events`.
    pub fn all() -> Vec<NotifyEvent> {
        vec![
            NotifyEvent::Paused,
            NotifyEvent::WaitingForWindow,
            NotifyEvent::Failed,
            NotifyEvent::Done,
        ]
    }
    /// The name as written in a plan.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Paused => "paused",
            NotifyEvent::WaitingForWindow => "waiting-for-window",
            NotifyEvent::Failed => "failed",
            NotifyEvent::Done => "done",
        }
    }
}

/// The body of a webhook notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyFormat {
    /// The event itself as JSON.
    #[default]
    Json,
    /// `{"text": "<one readable line>"}`, as chat tools accept.
    Text,
}
