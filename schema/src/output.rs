//! The plan view: the JSON output model of `swing plan --format json` and of saved plan files.
//!
//! Owns the serde + schemars types every renderer reads (text, markdown, json, dot, mermaid),
//! so human and machine output cannot disagree. The JSON schema generated from [`PlanOutput`]
//! is committed as `schema/plan-output.schema.json` and guarded by a drift test; the format is
//! documented in `docs/plan-json.md`.
//!
//! Must not: compute anything (the engine's `compile`, `estimate` and `view` fill these types),
//! hold a resolved secret, or change shape without bumping [`OUTPUT_FORMAT_VERSION`]
//! (optional fields may be added).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the plan view format (`format_version` in the JSON).
pub const OUTPUT_FORMAT_VERSION: u32 = 1;

/// What `swing plan --format json` prints: one plan, or a set when several files were given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(title = "swing plan output, format version 1")]
pub enum PlanOutput {
    /// One plan file.
    Plan(Box<PlanView>),
    /// Several plan files (a fleet of sites), in the order given.
    Set(PlanSetView),
}

/// Several plans, rendered together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanSetView {
    /// Always [`OUTPUT_FORMAT_VERSION`].
    pub format_version: u32,
    /// One view per plan file.
    pub plans: Vec<PlanView>,
}

/// Everything a reviewer needs to know about one compiled plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanView {
    /// Always [`OUTPUT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The swing that compiled this view (its `--version`). Absent in views recorded before
    /// swing wrote it; such views still load.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub swing_version: String,
    /// What the plan is about.
    pub plan: PlanInfo,
    /// The appliances, before and after.
    pub appliances: Vec<ApplianceView>,
    /// The maintenance windows and how much of each the schedule uses.
    pub windows: Vec<WindowView>,
    /// Every step, in a valid execution order (each step after all of its `depends_on`).
    pub steps: Vec<StepView>,
    /// The phases in order, each with its steps and its abort path.
    pub phases: Vec<PhaseView>,
    /// Resource changes the plan makes.
    pub changes: Vec<ChangeView>,
    /// Totals and the one-line summary.
    pub summary: SummaryView,
    /// Warnings and errors about estimates, windows and protection.
    pub findings: Vec<Finding>,
    /// What a live `swing plan` observed and what is left (absent with `--offline`). When
    /// present, `steps` and `phases` hold only the steps still needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshView>,
}

/// The refresh of a live plan: what each resource looked like and the diff against the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshView {
    /// One line per observed resource, e.g. `appliance a: 24.3.1, primary, healthy`.
    pub observed: Vec<String>,
    /// Steps already done (their lasting result was observed), in compiled order.
    pub done: Vec<String>,
    /// Steps still needed, in compiled order.
    pub needed: Vec<String>,
    /// Differences from what the plan expects that it does not cover; apply is blocked while
    /// any is listed.
    pub drift: Vec<String>,
    /// Resources that could not be observed, with the cause; apply is blocked while any is
    /// listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unobserved: Vec<String>,
    /// Whether applying would change anything (`needed` is not empty).
    pub has_changes: bool,
}

/// The upgrade scenario a plan compiles to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// One appliance.
    Single,
    /// Failover pair, primary keeps its role (downtime while it upgrades).
    FailoverSynchronous,
    /// Failover pair, backup upgraded first and takes over (minimal downtime).
    FailoverAsynchronous,
    /// Hardware migration, old appliance → new appliance.
    Migration,
}

impl Scenario {
    /// Human name, e.g. `failover (asynchronous)`.
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Single => "single appliance",
            Scenario::FailoverSynchronous => "failover pair (synchronous)",
            Scenario::FailoverAsynchronous => "failover pair (asynchronous)",
            Scenario::Migration => "hardware migration",
        }
    }
}

/// The plan's identity and the choices that shaped it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanInfo {
    /// Change name (`name`).
    pub name: String,
    /// Public site name (`site`).
    pub site: String,
    /// The plan file as given on the command line, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    pub scenario: Scenario,
    /// Target version.
    pub target_version: String,
    /// `automatic` or `manual`.
    pub source: String,
    /// Packages in install order (empty: the update the appliance offers).
    pub packages: Vec<String>,
    /// `shared-ip`, `dns` or `nat` when the site moves between appliances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<SwitchInfo>,
    /// Whether the plan was made without observing live state (`--offline`).
    pub offline: bool,
    /// Start of the schedule (first window's start, RFC 3339); absent without windows, when
    /// `start_s` values are relative to the start of the apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_origin: Option<String>,
}

/// How the site moves between appliances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchInfo {
    /// `shared-ip`, `dns` or `nat`.
    pub method: String,
    /// The shared IP, the DNS record, or the public NAT address.
    pub subject: String,
    /// dns: the lowered TTL (seconds) used around the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u32>,
    /// dns: the record's current TTL the engine waits out before the swing. Offline this is
    /// an assumption (see `old_ttl_assumed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_ttl_s: Option<u64>,
    /// Whether `old_ttl_s` is assumed rather than observed.
    #[serde(default)]
    pub old_ttl_assumed: bool,
}

/// One appliance before and after the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplianceView {
    pub name: String,
    pub address: String,
    /// Version now; absent = known after refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_before: Option<String>,
    /// Version when the plan is done (absent for an appliance that is decommissioned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_after: Option<String>,
    /// Role now: `primary`, `backup`, `none` (single), `old`/`new` (migration).
    pub role_before: String,
    /// Role when the plan is done (`decommissioned` for a migrated-away appliance).
    pub role_after: String,
    /// Whether the plan installs the target on it.
    pub upgraded: bool,
}

/// A maintenance window and its use by the schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowView {
    pub name: String,
    /// RFC 3339.
    pub start: String,
    /// RFC 3339.
    pub end: String,
    /// Offset of `start` from the schedule origin, seconds.
    pub start_s: u64,
    /// Length, seconds.
    pub duration_s: u64,
    /// Ids of the steps assigned to this window.
    pub steps: Vec<String>,
    /// Estimated time from the window's start until its last step ends, seconds.
    pub used_s: u64,
    /// Whether the steps assigned to it end before the window does.
    pub fits: bool,
}

/// Who or what carries a step out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// The engine performs and verifies it through a provider.
    Auto,
    /// A person performs it at the vendor UI path given; the engine verifies the outcome.
    Operator,
    /// The engine polls until a condition holds or a timeout passes.
    Wait,
    /// An explicit approval.
    Gate,
}

impl StepKind {
    /// The marker the text renderer puts in front of a step.
    pub fn marker(self) -> char {
        match self {
            StepKind::Auto | StepKind::Wait => '+',
            StepKind::Operator => '!',
            StepKind::Gate => '?',
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Auto => "auto",
            StepKind::Operator => "operator",
            StepKind::Wait => "wait",
            StepKind::Gate => "gate",
        }
    }
}

/// The phases of an upgrade, in the order they run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Checks; nothing changes.
    Preflight,
    /// Configuration, certificate and key backups; client throttle.
    Backup,
    /// Certificates moved to the new appliance (migration).
    Certificates,
    /// Sync and break the failover relationship.
    Break,
    /// The first appliance is upgraded (the primary in synchronous, the backup in asynchronous,
    /// the new appliance in a migration, the only one in single).
    UpgradeFirst,
    /// The site moves to the upgraded appliance.
    Switch,
    /// The second appliance is upgraded.
    UpgradeSecond,
    /// The failover relationship is established again.
    Reestablish,
    /// `final_primary` = old primary: promote it and move the site back.
    SwitchBack,
    /// DNS TTL restored.
    Restore,
    /// Jump Clients and client follow-up.
    Clients,
    /// The old appliance is factory reset and shut down (migration).
    Decommission,
}

impl Phase {
    pub fn title(self) -> &'static str {
        match self {
            Phase::Preflight => "Preflight checks",
            Phase::Backup => "Backups",
            Phase::Certificates => "Certificates to the new appliance",
            Phase::Break => "Break the failover relationship",
            Phase::UpgradeFirst => "Upgrade (first appliance)",
            Phase::Switch => "Switch the site",
            Phase::UpgradeSecond => "Upgrade (second appliance)",
            Phase::Reestablish => "Re-establish failover",
            Phase::SwitchBack => "Switch back to the final primary",
            Phase::Restore => "Restore DNS TTL",
            Phase::Clients => "Clients",
            Phase::Decommission => "Decommission the old appliance",
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Backup => "backup",
            Phase::Certificates => "certificates",
            Phase::Break => "break",
            Phase::UpgradeFirst => "upgrade-first",
            Phase::Switch => "switch",
            Phase::UpgradeSecond => "upgrade-second",
            Phase::Reestablish => "reestablish",
            Phase::SwitchBack => "switch-back",
            Phase::Restore => "restore",
            Phase::Clients => "clients",
            Phase::Decommission => "decommission",
        }
    }
}

/// A machine-checkable condition: a step's postcondition (what the engine verifies after it)
/// or a precondition (what must hold before it starts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Condition {
    /// The appliance answers over TLS and `check_health` reports success.
    Healthy { appliance: String },
    /// The appliance runs this version.
    Version { appliance: String, version: String },
    /// The appliance reports this failover role (`primary`, `backup`, `none`).
    Role { appliance: String, role: String },
    /// Appliance clock within this many seconds of the engine's.
    ClockSkew { appliance: String, max_s: u64 },
    /// The served certificate is valid for the site, trusted and valid this many more days.
    Certificate {
        appliance: String,
        site: String,
        min_days: u32,
    },
    /// The current time lies inside a maintenance window (always true without windows).
    InWindow,
    /// A configuration backup of the appliance exists with a matching SHA-256.
    BackupExists { appliance: String },
    /// An exported certificate file whose leaf fingerprint equals the served certificate.
    CertificateExported { appliance: String },
    /// The appliance serves the same leaf certificate as another one.
    SameCertificate {
        appliance: String,
        as_appliance: String,
    },
    /// A person confirmed the step (nothing any API can observe).
    Confirmed,
    /// `last_data_sync_time` on the appliance is later than the start of a step.
    SyncAfter {
        appliance: String,
        after_step: String,
    },
    /// The site endpoint answers as this appliance.
    SiteServedBy { appliance: String },
    /// The DNS record has this TTL.
    DnsTtl { record: String, ttl_s: u64 },
    /// Jump Clients online and upgraded at or above this ratio.
    JumpClientsRatio { ratio: f64 },
    /// The restored API account authenticates on the appliance.
    ApiAccount { appliance: String },
    /// The API account holds every permission the plan will use on the appliance
    /// (`get_api_info`; the Configuration API by answering).
    ApiPermissions {
        appliance: String,
        needs: Vec<ApiNeed>,
    },
    /// At least this many seconds passed since a step finished.
    Elapsed { after_step: String, seconds: u64 },
    /// Every one of these holds.
    All { all: Vec<Condition> },
}

impl Condition {
    /// One line for a person.
    pub fn describe(&self) -> String {
        match self {
            Condition::Healthy { appliance } => {
                format!("appliance {appliance} healthy (check_health success=1)")
            }
            Condition::Version { appliance, version } => {
                format!("appliance {appliance} runs {version}")
            }
            Condition::Role { appliance, role } => {
                format!("appliance {appliance} has failover role {role}")
            }
            Condition::ClockSkew { appliance, max_s } => {
                format!("appliance {appliance} clock within {max_s}s of ours")
            }
            Condition::Certificate {
                appliance,
                site,
                min_days,
            } => format!(
                "appliance {appliance} serves a trusted certificate for {site}, valid ≥ {min_days} more days"
            ),
            Condition::InWindow => "now is inside a maintenance window".to_owned(),
            Condition::BackupExists { appliance } => {
                format!("configuration backup of {appliance} saved (SHA-256 recorded)")
            }
            Condition::CertificateExported { appliance } => format!(
                "exported certificate file's leaf fingerprint = certificate served by {appliance}"
            ),
            Condition::SameCertificate {
                appliance,
                as_appliance,
            } => {
                format!("appliance {appliance} serves the same leaf certificate as {as_appliance}")
            }
            Condition::Confirmed => "confirmed by a person".to_owned(),
            Condition::SyncAfter {
                appliance,
                after_step,
            } => {
                format!("last data sync on {appliance} later than the start of {after_step}")
            }
            Condition::SiteServedBy { appliance } => {
                format!("the site answers as appliance {appliance}")
            }
            Condition::DnsTtl { record, ttl_s } => format!("dns {record} has TTL {ttl_s}s"),
            Condition::JumpClientsRatio { ratio } => {
                format!(
                    "≥ {:.0}% of Jump Clients online and upgraded",
                    ratio * 100.0
                )
            }
            Condition::ApiAccount { appliance } => {
                format!("the restored API account authenticates on {appliance}")
            }
            Condition::ApiPermissions { appliance, needs } => format!(
                "the API account on {appliance} holds {}",
                needs
                    .iter()
                    .map(|n| n.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Condition::Elapsed {
                after_step,
                seconds,
            } => {
                format!("{seconds}s passed since {after_step} finished")
            }
            Condition::All { all } => all
                .iter()
                .map(Condition::describe)
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// A permission of the appliance's API account that a plan uses.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ApiNeed {
    /// `perm_command` = `full_access`: `set_failover_role`.
    CommandFullAccess,
    /// `perm_backup` = `1`: `/api/backup`.
    Backup,
    /// Read access to the Configuration API: the Jump Client list.
    ConfigurationRead,
}

impl ApiNeed {
    /// The `get_api_info` permission and the value it must have (none for the Configuration
    /// API, whose access `get_api_info` does not list: it shows by answering).
    pub fn permission(self) -> Option<(&'static str, &'static str)> {
        match self {
            ApiNeed::CommandFullAccess => Some(("perm_command", "full_access")),
            ApiNeed::Backup => Some(("perm_backup", "1")),
            ApiNeed::ConfigurationRead => None,
        }
    }

    /// What it is for, in a few words.
    pub fn describe(self) -> String {
        match self {
            ApiNeed::CommandFullAccess => "perm_command = full_access (set_failover_role)".into(),
            ApiNeed::Backup => "perm_backup = 1 (configuration backup)".into(),
            ApiNeed::ConfigurationRead => "Configuration API read access (Jump Clients)".into(),
        }
    }
}

/// One step of the compiled plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepView {
    /// Step id as in the procedure catalogue (`b.install`, `switch.to-b`, …).
    pub id: String,
    /// What happens, in a few words.
    pub title: String,
    pub kind: StepKind,
    pub phase: Phase,
    /// The action name `policy.estimates` may override (`install`, `sync`, …).
    pub action: String,
    /// The resource it touches, e.g. `appliance b`, `dns access.example.com`, `failover east+west`.
    pub resource: String,
    /// The appliance it acts on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliance: Option<String>,
    /// Ids of the steps that must finish before it starts.
    pub depends_on: Vec<String>,
    /// What must hold before it starts.
    pub preconditions: Vec<Condition>,
    /// What the engine verifies after it.
    pub postcondition: Condition,
    /// Exact instructions for a person (operator steps and gates): vendor UI path and labels.
    pub instructions: Vec<String>,
    /// What to do if it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<String>,
    /// Estimated duration, seconds.
    pub estimate_s: u64,
    /// Estimated start, seconds after the schedule origin.
    pub start_s: u64,
    /// Whether the site is unavailable (or users disconnected) during it.
    pub downtime: bool,
    /// Estimated downtime it causes, seconds.
    pub downtime_s: u64,
    /// Whether the pair runs without a failover relationship during it.
    pub unprotected: bool,
    /// The maintenance window it is scheduled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Whether apply refuses to start it outside its window.
    pub window_bound: bool,
}

/// A phase, with the way back if something goes wrong in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseView {
    pub phase: Phase,
    pub title: String,
    pub steps: Vec<String>,
    pub start_s: u64,
    pub end_s: u64,
    /// Windows its steps are scheduled in.
    pub windows: Vec<String>,
    /// What to do if the plan must stop during this phase.
    pub abort: String,
}

/// How a resource changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    /// An attribute changes value.
    Update,
    /// The resource is removed from service.
    Delete,
}

/// One resource change, e.g. `appliance b: version 24.3.1 → 25.1.3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeView {
    pub action: ChangeAction,
    /// `appliance b`, `dns access.example.com A`, `nat 203.0.113.10:443`, `shared ip 10.0.0.10`,
    /// `failover east+west`, `jump clients`.
    pub resource: String,
    /// The attribute that changes (`version`, `address`, `ttl`, `roles`, `served by`, …).
    pub attribute: String,
    /// Value now; absent = known after refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Value when the plan is done.
    pub after: String,
    /// Steps that make the change.
    pub steps: Vec<String>,
}

/// Severity of a finding.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// Something the reviewer should know about the estimates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    pub level: Level,
    /// Stable code, e.g. `unprotected-too-long`, `window-overrun`, `one-window`.
    pub code: String,
    pub message: String,
}

/// Totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryView {
    pub steps: u32,
    pub auto: u32,
    pub operator: u32,
    pub waits: u32,
    pub gates: u32,
    pub appliances_to_upgrade: u32,
    /// Estimated working time (critical path, without waiting for windows), seconds.
    pub estimate_s: u64,
    /// From the first step's start to the last step's end including gaps between windows.
    pub elapsed_s: u64,
    /// Expected downtime of the site, seconds.
    pub downtime_s: u64,
    /// Time the pair runs without a failover relationship, seconds (0 without a pair).
    pub unprotected_s: u64,
    /// `policy.max_unprotected`, seconds.
    pub max_unprotected_s: u64,
    /// Whether the steps fit the windows (absent without windows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fits_windows: Option<bool>,
    /// Number of findings at level error.
    pub errors: u32,
    /// Number of findings at level warning.
    pub warnings: u32,
    /// `Plan: N steps (K operator, G gates) · …`
    pub line: String,
}

/// Short human duration: `2h10m`, `45s`, `~0s` is written by callers.
pub fn human_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let d = secs / 86_400;
    let h = (secs % 86_400) / 3_600;
    let m = (secs % 3_600) / 60;
    let s = secs % 60;
    let mut out = String::new();
    if d > 0 {
        out.push_str(&format!("{d}d"));
    }
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    // Seconds only matter for short durations.
    if s > 0 && d == 0 && h == 0 {
        out.push_str(&format!("{s}s"));
    }
    if out.is_empty() {
        // Only seconds dropped (e.g. 1h00m30s → 1h).
        out.push_str(&format!("{}m", secs / 60));
    }
    out
}

/// The JSON schema of the plan view, as committed in `schema/plan-output.schema.json`.
pub fn output_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(PlanOutput);
    serde_json::to_value(schema).unwrap_or(serde_json::Value::Null)
}

/// The output schema pretty-printed exactly as committed (trailing newline included).
pub fn output_schema_pretty() -> String {
    let mut s = serde_json::to_string_pretty(&output_schema()).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(7_800), "2h10m");
        assert_eq!(human_duration(3_630), "1h");
        assert_eq!(human_duration(90), "1m30s");
        assert_eq!(human_duration(8 * 86_400 + 3_600), "8d1h");
    }

    #[test]
    fn committed_output_schema_has_not_drifted() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plan-output.schema.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        if std::env::var_os("SWING_UPDATE_SCHEMA").is_some() {
            std::fs::write(path, output_schema_pretty()).unwrap();
            return;
        }
        assert!(
            committed == output_schema_pretty(),
            "schema/plan-output.schema.json is out of date; regenerate with \
             SWING_UPDATE_SCHEMA=1 cargo test -p swing-schema output"
        );
    }
}
