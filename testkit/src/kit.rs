//! The scenario kit: simulated appliances on loopback for every scenario of the guide, the
//! plan file that upgrades them (`operator: sim`), and the prober set-up that watches the
//! site. Shared by `swing demo`, the end-to-end, lifecycle and fault tests and the end-to-end
//! benchmark, so all of them run exactly the same labs.
//!
//! Owns: lab layout (a random loopback /24 per lab: `.10` shared IP, `.11` first and `.12`
//! second appliance, all on ONE port because a shared IP lives on the appliance's port),
//! simulator configuration, plan text, secret files (0600, referenced as `${file:...}`).
//! Must not: run the engine (callers do, through the same calls as `swing apply`), talk to
//! anything but loopback, or print.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use swing_providers::probe::{Credentials, ProbeConfig, Route};
use swing_schema::SecretValue;
use swing_sim::{Dialect, JumpClientGroup, JumpClientKind, Role, SimConfig, SimHandle, Simulator};

/// The site every lab serves (the simulators' certificates name it).
pub const SITE: &str = "access.example.test";
/// The DNS zone of the site.
pub const ZONE: &str = "example.test";
/// The simulators' API account.
pub const CLIENT_ID: &str = "swing-sim";
/// The simulators' API secret (tests search output for it as a canary).
pub const CLIENT_SECRET: &str = "sim-secret";
/// The API rate limits of the labs' simulators, and of their plans.
pub const LAB_RATE_PER_SECOND: u32 = 1_000;
pub const LAB_RATE_PER_HOUR: u32 = 1_000_000;
/// Version the labs start at, and the target.
pub const FROM_VERSION: &str = "24.3.1";
pub const TARGET_VERSION: &str = "25.1.3";
/// Real seconds per simulated second at which a 45-minute install takes 2 s.
pub const TIME_SCALE_45MIN_IN_2S: f64 = 2.0 / 2700.0;
/// The DNS TTL of the record before the change (seconds) and the TTL used around the swing.
pub const DNS_OLD_TTL: u32 = 3;
pub const DNS_SWITCH_TTL: u32 = 1;

/// The scenarios of `plans/examples/`, one lab each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    SingleAutomatic,
    SingleManual,
    Sync,
    AsyncSharedIp,
    AsyncDns,
    AsyncDnsFinalPrimary,
    AsyncNat,
    Migration,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::AsyncSharedIp,
        Scenario::AsyncDns,
        Scenario::AsyncDnsFinalPrimary,
        Scenario::AsyncNat,
        Scenario::Sync,
        Scenario::SingleAutomatic,
        Scenario::SingleManual,
        Scenario::Migration,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::SingleAutomatic => "single",
            Scenario::SingleManual => "single-manual",
            Scenario::Sync => "sync",
            Scenario::AsyncSharedIp => "async-shared-ip",
            Scenario::AsyncDns => "async-dns",
            Scenario::AsyncDnsFinalPrimary => "async-dns-final-primary",
            Scenario::AsyncNat => "async-nat",
            Scenario::Migration => "migration",
        }
    }

    /// Appliance names, the one serving the site first.
    pub fn appliances(self) -> &'static [&'static str] {
        match self {
            Scenario::SingleAutomatic | Scenario::SingleManual => &["main"],
            Scenario::Migration => &["old", "new"],
            _ => &["a", "b"],
        }
    }

    pub fn is_pair(self) -> bool {
        matches!(
            self,
            Scenario::Sync
                | Scenario::AsyncSharedIp
                | Scenario::AsyncDns
                | Scenario::AsyncDnsFinalPrimary
                | Scenario::AsyncNat
        )
    }

    pub fn uses_dns(self) -> bool {
        matches!(
            self,
            Scenario::AsyncDns | Scenario::AsyncDnsFinalPrimary | Scenario::Migration
        )
    }

    pub fn uses_shared_ip(self) -> bool {
        matches!(self, Scenario::Sync | Scenario::AsyncSharedIp)
    }

    /// Who serves the site, in order, from start to end of the change.
    pub fn expected_sequence(self) -> &'static [&'static str] {
        match self {
            Scenario::SingleAutomatic | Scenario::SingleManual => &["main"],
            Scenario::Sync => &["a"],
            Scenario::AsyncSharedIp | Scenario::AsyncDns | Scenario::AsyncNat => &["a", "b"],
            Scenario::AsyncDnsFinalPrimary => &["a", "b", "a"],
            Scenario::Migration => &["old", "new"],
        }
    }

    /// The example plan of `plans/examples/` for this scenario: (file name, text), built in.
    pub fn example_plan(self) -> (&'static str, &'static str) {
        macro_rules! example {
            ($f:literal) => {
                ($f, include_str!(concat!("../../plans/examples/", $f)))
            };
        }
        match self {
            Scenario::SingleAutomatic => example!("single-automatic.yaml"),
            Scenario::SingleManual => example!("single-manual.yaml"),
            Scenario::Sync => example!("failover-sync-shared-ip.yaml"),
            Scenario::AsyncSharedIp => example!("failover-async-shared-ip.yaml"),
            Scenario::AsyncDns => example!("failover-async-dns.yaml"),
            Scenario::AsyncDnsFinalPrimary => example!("failover-async-dns-final-a.yaml"),
            Scenario::AsyncNat => example!("failover-async-nat.yaml"),
            Scenario::Migration => example!("hardware-migration.yaml"),
        }
    }

    /// Gates the lab confirms up front (`--confirm STEP`): the destructive decommission of a
    /// migration. Manual verification gates are off in lab plans (`verify.manual: []`).
    pub fn confirmations(self) -> &'static [&'static str] {
        match self {
            Scenario::Migration => &["old.decommission"],
            _ => &[],
        }
    }

    /// Final failover roles (pairs only): (appliance, role).
    pub fn expected_roles(self) -> &'static [(&'static str, Role)] {
        match self {
            Scenario::Sync | Scenario::AsyncDnsFinalPrimary => {
                &[("a", Role::Primary), ("b", Role::Backup)]
            }
            Scenario::AsyncSharedIp | Scenario::AsyncDns | Scenario::AsyncNat => {
                &[("a", Role::Backup), ("b", Role::Primary)]
            }
            _ => &[],
        }
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|x| x.name()).collect();
                format!("unknown scenario {s:?}; known: {}", names.join(", "))
            })
    }
}

/// How the plan reaches the DNS server (dns scenarios).
#[derive(Debug, Clone)]
pub struct DnsSetup {
    pub server: SocketAddr,
    pub key_name: String,
    /// The TSIG secret (base64); written to a 0600 file the plan references.
    pub secret: SecretValue,
}

/// How the plan reaches the NAT gateway (nat scenario).
#[derive(Debug, Clone)]
pub struct NatSetup {
    pub public: SocketAddr,
    pub table: String,
    pub chain: String,
    pub netns: Option<String>,
}

/// Which tool the nat scenario's plan names for the gateway (`providers.lab-nat.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatTool {
    /// `type: nftables` (with `NatSetup::table`, `chain`).
    #[default]
    Nftables,
    /// `type: iptables`, for a gateway whose rule iptables wrote.
    Iptables,
}

impl NatTool {
    /// The provider `type` as the plan spells it.
    pub fn type_name(self) -> &'static str {
        match self {
            NatTool::Nftables => "nftables",
            NatTool::Iptables => "iptables",
        }
    }
}

/// Lab knobs.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub time_scale: f64,
    pub jump_clients: u32,
    /// Listen on these addresses instead of a random loopback /24 (`[first, second]`; the
    /// shared IP, if any, is `shared_ip`). Used by the NAT lab, whose appliances live in a
    /// network namespace.
    pub addresses: Option<(IpAddr, IpAddr, Option<IpAddr>)>,
    /// State the durations of the fast time scale in the plan's `policy.estimates` (install,
    /// restart, syncs, Jump Client wave), as a rehearsal plan does: the engine then polls
    /// each step at intervals relative to what it really takes, and times a step out in
    /// seconds. Off by default (the plan keeps the guide's estimates).
    pub state_estimates: bool,
    /// Command API dialect of every simulator (default: `SWING_SIM_DIALECT` if set, else the
    /// recorded `bomgar`).
    pub dialect: Dialect,
    /// Jump Clients of other kinds besides the active ones (default: 2 passive, 1
    /// uninstalled, 1 lost — shown apart, never counted by default).
    pub jump_client_groups: Vec<JumpClientGroup>,
    /// Permission changes for the API account (`perm_backup=0`, …), on top of the full set.
    pub permissions: Option<String>,
    /// The NAT provider type the nat scenario's plan uses (default nftables).
    pub nat_tool: NatTool,
    /// The site's name (default [`SITE`]): labs of one fleet each have their own.
    pub site: String,
}

/// The dialect labs use unless told: `SWING_SIM_DIALECT` (`bomgar` or `beyondtrust`), else
/// the recorded one.
pub fn default_dialect() -> Dialect {
    std::env::var("SWING_SIM_DIALECT")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or_default()
}

impl Default for LabOptions {
    fn default() -> Self {
        let group = |kind, count| JumpClientGroup {
            kind,
            count,
            needs_update: false,
        };
        LabOptions {
            time_scale: TIME_SCALE_45MIN_IN_2S,
            jump_clients: 20,
            addresses: None,
            state_estimates: false,
            dialect: default_dialect(),
            jump_client_groups: vec![
                group(JumpClientKind::Passive, 2),
                group(JumpClientKind::Uninstalled, 1),
                group(JumpClientKind::Lost, 1),
            ],
            permissions: None,
            nat_tool: NatTool::default(),
            site: SITE.to_owned(),
        }
    }
}

/// The state home (`XDG_STATE_HOME`) a test gives the `swing` processes it starts in `dir`:
/// `dir/.xdg-state`, made (mode 0700) if missing. Site locks are host-wide under the state
/// home, so tests running at once with the same site name would otherwise wait for each other.
pub fn state_home(dir: &Path) -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let home = dir.join(".xdg-state");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&home)
        .expect("the test's state home can be made");
    home
}

/// The lock file of `site` that a `swing` started with [`state_home`]`(dir)` takes.
pub fn site_lock(dir: &Path, site: &str) -> PathBuf {
    swing_engine::apply::lock_path(
        &state_home(dir).join("swing").join("locks"),
        &swing_engine::apply::LockKey::site(site),
    )
}

/// Running simulators for one scenario plus the directory holding plan, secrets, backups.
pub struct Lab {
    pub scenario: Scenario,
    pub dir: PathBuf,
    pub port: u16,
    pub sims: Vec<(String, SimHandle)>,
    pub shared_ip: Option<IpAddr>,
    pub ca_file: PathBuf,
    pub options: LabOptions,
}

fn loopback_base() -> [u8; 3] {
    [127, fastrand::u8(64..250), fastrand::u8(1..250)]
}

fn free_port(ip: IpAddr) -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(SocketAddr::new(ip, 0))?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn write_secret(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(value.as_bytes())
}

impl Lab {
    /// Start the scenario's simulators (pairs already in a failover relationship, the first
    /// appliance primary and holding the shared IP where the scenario has one).
    pub async fn start(scenario: Scenario, dir: &Path, options: LabOptions) -> anyhow::Result<Lab> {
        let mut last_err = None;
        for _ in 0..10 {
            let (first, second, shared) = match options.addresses {
                Some(a) => a,
                None => {
                    let b = loopback_base();
                    let ip = |n| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], n));
                    (ip(11), ip(12), scenario.uses_shared_ip().then(|| ip(10)))
                }
            };
            match Self::try_start(scenario, dir, &options, first, second, shared).await {
                Ok(lab) => return Ok(lab),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("could not start the simulators")))
    }

    async fn try_start(
        scenario: Scenario,
        dir: &Path,
        options: &LabOptions,
        first: IpAddr,
        second: IpAddr,
        shared: Option<IpAddr>,
    ) -> anyhow::Result<Lab> {
        let port = free_port(first)?;
        let names = scenario.appliances();
        let key = format!("lab-key-{}", fastrand::u64(..));
        let ca_dir = dir.join("ca");
        let mut sims = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let ip = if i == 0 { first } else { second };
            let mut cfg = SimConfig::new(*name, &ca_dir);
            cfg.listen = SocketAddr::new(ip, port);
            cfg.site = options.site.clone();
            cfg.version = FROM_VERSION.into();
            cfg.update_to = Some(TARGET_VERSION.into());
            cfg.time_scale = options.time_scale;
            cfg.jump_clients = options.jump_clients;
            cfg.jump_client_groups = options.jump_client_groups.clone();
            cfg.dialect = options.dialect;
            if let Some(p) = &options.permissions {
                cfg.permissions.apply_spec(p)?;
            }
            // The prober identifies the serving appliance 20 times a second with the same
            // API account (a real site's monitoring would have its own account), and the fast
            // time scale makes swing poll far more often than a real change does: the labs'
            // simulators allow more than the vendor's 20 a second, and the lab plan states
            // that limit (`rate_limit`), as a rehearsal against its twin would.
            cfg.rate_limit = Some(swing_sim::RateLimit {
                per_second: LAB_RATE_PER_SECOND,
                per_hour: LAB_RATE_PER_HOUR,
            });
            cfg.client_id = CLIENT_ID.into();
            cfg.client_secret = CLIENT_SECRET.into();
            if scenario == Scenario::Migration && i == 0 {
                // The old appliance already runs the target version (hardware refresh).
                cfg.version = TARGET_VERSION.into();
                cfg.update_to = None;
            }
            if scenario.is_pair() {
                let peer = if i == 0 { second } else { first };
                cfg.peer = Some(SocketAddr::new(peer, port));
                cfg.key = Some(key.clone());
                cfg.role = if i == 0 { Role::Primary } else { Role::Backup };
                if i == 0 {
                    cfg.shared_ip = shared;
                }
            }
            sims.push((name.to_string(), Simulator::start(cfg).await?));
        }
        let ca_file = dir.join("ca").join("ca.pem");
        {
            use std::os::unix::fs::DirBuilderExt as _;
            // swing writes backups into an existing directory; the lab provides it.
            std::fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(dir.join("backups"))?;
        }
        write_secret(&dir.join("client-secret"), CLIENT_SECRET)?;
        write_secret(
            &dir.join("backup-password"),
            &format!("backup-{}", fastrand::u64(..)),
        )?;
        Ok(Lab {
            scenario,
            dir: dir.to_path_buf(),
            port,
            sims,
            shared_ip: shared,
            ca_file,
            options: options.clone(),
        })
    }

    /// Every action swing asked the simulators for, `(appliance, action)` — not what a
    /// simulator records of itself (its start, an install finishing) or a test's fault
    /// switches.
    pub fn actions(&self) -> Vec<(String, String)> {
        self.sims
            .iter()
            .flat_map(|(name, s)| {
                s.state()
                    .actions
                    .into_iter()
                    .filter(|a| {
                        !matches!(
                            a.action.as_str(),
                            "start" | "faults.set" | "install.finished"
                        )
                    })
                    .map(|a| (name.clone(), a.action))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn sim(&self, name: &str) -> Option<&SimHandle> {
        self.sims.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// Address of an appliance (its own, not the shared IP).
    pub fn address(&self, name: &str) -> Option<IpAddr> {
        self.sim(name).map(|s| s.addr().ip())
    }

    /// The address the site resolves to before the change (DNS record / NAT target).
    pub fn first_address(&self) -> Option<IpAddr> {
        self.address(self.scenario.appliances()[0])
    }

    /// The plan file text for this lab (`operator: sim`, no manual verification gates).
    pub fn plan_yaml(
        &self,
        dns: Option<&DnsSetup>,
        nat: Option<&NatSetup>,
    ) -> anyhow::Result<String> {
        let s = self.scenario;
        let mut y = String::new();
        writeln!(
            y,
            "# Written by the swing scenario kit for scenario {}.",
            s.name()
        )?;
        writeln!(y, "version: 1")?;
        writeln!(y, "name: lab-{}", s.name())?;
        let site = &self.options.site;
        writeln!(y, "site: {site}")?;
        writeln!(y, "target:")?;
        writeln!(y, "  version: \"{TARGET_VERSION}\"")?;
        let source = if s == Scenario::SingleManual {
            "manual"
        } else {
            "automatic"
        };
        writeln!(y, "  source: {source}")?;
        writeln!(y, "  packages: [base-7.2.1, pra-{TARGET_VERSION}]")?;
        writeln!(y, "appliances:")?;
        for (name, sim) in &self.sims {
            writeln!(
                y,
                "  {name}: {{ address: {}, port: {} }}",
                sim.addr().ip(),
                sim.addr().port()
            )?;
        }
        let switch = match s {
            Scenario::Sync | Scenario::AsyncSharedIp => {
                let ip = self
                    .shared_ip
                    .ok_or_else(|| anyhow::anyhow!("no shared IP in this lab"))?;
                Some(format!("{{ method: shared-ip, address: {ip} }}"))
            }
            Scenario::AsyncDns | Scenario::AsyncDnsFinalPrimary | Scenario::Migration => {
                Some(format!(
                    "{{ method: dns, provider: lab-dns, record: {site}, ttl: {DNS_SWITCH_TTL} }}"
                ))
            }
            Scenario::AsyncNat => {
                let n =
                    nat.ok_or_else(|| anyhow::anyhow!("the nat scenario needs a NAT set-up"))?;
                Some(format!(
                    "{{ method: nat, provider: lab-nat, public: \"{}\" }}",
                    n.public
                ))
            }
            Scenario::SingleAutomatic | Scenario::SingleManual => None,
        };
        if s.is_pair() {
            writeln!(y, "failover:")?;
            writeln!(y, "  primary: a")?;
            writeln!(y, "  backup: b")?;
            let strategy = if s == Scenario::Sync {
                "synchronous"
            } else {
                "asynchronous"
            };
            writeln!(y, "  strategy: {strategy}")?;
            if let Some(sw) = &switch {
                writeln!(y, "  switch: {sw}")?;
            }
            if s == Scenario::AsyncDnsFinalPrimary {
                writeln!(y, "  final_primary: a")?;
            }
            writeln!(y, "  peer_port: {}", self.port)?;
        }
        if s == Scenario::Migration {
            writeln!(y, "migration:")?;
            writeln!(y, "  from: old")?;
            writeln!(y, "  to: new")?;
            if let Some(sw) = &switch {
                writeln!(y, "  switch: {sw}")?;
            }
        }
        writeln!(y, "policy:")?;
        writeln!(
            y,
            "  jump_clients: {{ online_ratio: 0.95, wait_timeout: 4h }}"
        )?;
        let mut estimates = Vec::new();
        if s.uses_dns() {
            estimates.push(format!("switch.prepare: {DNS_OLD_TTL}s"));
        }
        if self.options.state_estimates {
            estimates.extend(self.scaled_estimates());
        }
        if !estimates.is_empty() {
            writeln!(y, "  estimates: {{ {} }}", estimates.join(", "))?;
        }
        writeln!(y, "backup:")?;
        writeln!(y, "  directory: ./backups")?;
        writeln!(y, "  password: ${{file:./backup-password}}")?;
        writeln!(y, "  include_reporting_data: true")?;
        writeln!(y, "verify:")?;
        writeln!(y, "  manual: []")?;
        writeln!(y, "providers:")?;
        writeln!(y, "  appliance:")?;
        writeln!(y, "    type: beyondtrust")?;
        writeln!(y, "    client_id: {CLIENT_ID}")?;
        writeln!(y, "    client_secret: ${{file:./client-secret}}")?;
        writeln!(y, "    ca_file: ./ca/ca.pem")?;
        writeln!(y, "    operator: sim")?;
        // The simulators allow the prober's traffic on the same account (see `try_start`):
        // the plan says so, as a rehearsal plan states what its twin allows.
        writeln!(
            y,
            "    rate_limit: {{ per_second: {LAB_RATE_PER_SECOND}, per_hour: {LAB_RATE_PER_HOUR} }}"
        )?;
        if s.uses_dns() {
            let d =
                dns.ok_or_else(|| anyhow::anyhow!("the {} scenario needs a DNS server", s.name()))?;
            write_secret(&self.dir.join("tsig.key"), d.secret.expose())?;
            writeln!(y, "  lab-dns:")?;
            writeln!(y, "    type: rfc2136")?;
            writeln!(y, "    server: \"{}\"", d.server)?;
            writeln!(y, "    zone: {ZONE}")?;
            writeln!(
                y,
                "    tsig: {{ name: {}, algorithm: hmac-sha256, secret: \"${{file:./tsig.key}}\" }}",
                d.key_name
            )?;
        }
        if let (Scenario::AsyncNat, Some(n)) = (s, nat) {
            writeln!(y, "  lab-nat:")?;
            writeln!(y, "    type: {}", self.options.nat_tool.type_name())?;
            writeln!(y, "    table: {}", n.table)?;
            writeln!(y, "    chain: {}", n.chain)?;
            if let Some(ns) = &n.netns {
                writeln!(y, "    netns: {ns}")?;
            }
        }
        Ok(y)
    }

    /// `policy.estimates` of what the simulators really take at the lab's time scale, whole
    /// seconds rounded up (at least 1 s): the install (base + site package), the restart
    /// after it, data syncs, the switch back, one Jump Client upgrade wave, the check that
    /// the site answers as the appliance it moved to.
    fn scaled_estimates(&self) -> Vec<String> {
        let d = SimConfig::new("estimates", Path::new("."));
        let scaled = |sim_s: f64| ((sim_s * self.options.time_scale).ceil() as u64).max(1);
        let sync_s = d.data_mb / d.sync_mb_per_s;
        vec![
            format!("install: {}s", scaled(d.base_install_s + d.install_s)),
            format!("online: {}s", scaled(60.0)),
            format!("sync: {}s", scaled(sync_s)),
            // The first sync after establishing starts within about 60 s.
            format!("resync: {}s", scaled(60.0 + sync_s)),
            format!("promote: {}s", scaled(sync_s)),
            format!("clients-wait: {}s", scaled(d.jump_client_upgrade_s)),
            // Checks through the site address answer at once (a dns swing adds its TTL).
            format!("switch-verify: {}s", scaled(1.0)),
        ]
    }

    /// Write the plan into the lab directory; returns its path.
    pub fn write_plan(
        &self,
        dns: Option<&DnsSetup>,
        nat: Option<&NatSetup>,
    ) -> anyhow::Result<PathBuf> {
        let path = self.dir.join("plan.yaml");
        std::fs::write(&path, self.plan_yaml(dns, nat)?)?;
        Ok(path)
    }

    /// A prober watching the site the way a client reaches it in this scenario.
    pub fn probe_config(&self, route: Route) -> ProbeConfig {
        let mut cfg = ProbeConfig::new(&self.options.site, self.port, route);
        cfg.ca_file = Some(self.ca_file.clone());
        cfg.credentials = Some(Credentials {
            client_id: CLIENT_ID.into(),
            client_secret: SecretValue::new(CLIENT_SECRET),
        });
        for (name, sim) in &self.sims {
            cfg.labels
                .insert(sim.appliance_id().to_string(), name.clone());
        }
        cfg
    }

    /// The client route of the scenario when it needs no outside service (shared IP or the
    /// single appliance's own address); dns and nat callers build theirs.
    pub fn direct_route(&self) -> Option<Route> {
        match self.scenario {
            Scenario::Sync | Scenario::AsyncSharedIp => self.shared_ip.map(Route::Address),
            Scenario::SingleAutomatic | Scenario::SingleManual => {
                self.first_address().map(Route::Address)
            }
            _ => None,
        }
    }

    /// Versions, roles and shared IPs of every appliance, for reports and assertions.
    pub fn final_states(&self) -> BTreeMap<String, swing_sim::SimState> {
        self.sims
            .iter()
            .map(|(n, s)| (n.clone(), s.state()))
            .collect()
    }

    /// What is wrong with the final state (empty: the change reached its goal):
    /// every upgraded appliance on the target version and healthy, roles as planned, the
    /// shared IP on the right appliance only, a backup written with a valid SHA-256.
    pub fn check_final_state(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let states = self.final_states();
        for (name, st) in &states {
            if self.scenario == Scenario::Migration && name == "old" {
                // `old.decommission` is a gate: swing records the approval, the factory reset
                // and shutdown are the person's act after it. Until then old stays untouched
                // (the migration's abort path relies on it): running, on its version.
                if st.status != swing_sim::ApplianceStatus::Running || st.version != TARGET_VERSION
                {
                    problems.push(format!(
                        "old was touched: {:?} on {} (expected running on {TARGET_VERSION})",
                        st.status, st.version
                    ));
                }
                continue;
            }
            if st.version != TARGET_VERSION {
                problems.push(format!(
                    "{name} runs {} instead of {TARGET_VERSION}",
                    st.version
                ));
            }
            if !st.healthy {
                problems.push(format!("{name} is not healthy: {:?}", st.error_message));
            }
        }
        for (name, role) in self.scenario.expected_roles() {
            match states.get(*name) {
                Some(st) if st.role == *role => {}
                Some(st) => problems.push(format!("{name} has role {} instead of {role}", st.role)),
                None => problems.push(format!("{name} is missing")),
            }
        }
        if let Some(ip) = self.shared_ip {
            let serving = self
                .scenario
                .expected_sequence()
                .last()
                .copied()
                .unwrap_or_default();
            for (name, st) in &states {
                let holds = st.shared_ips.contains(&ip);
                if holds != (name == serving) {
                    problems.push(format!(
                        "{name} {} the shared IP {ip}",
                        if holds { "holds" } else { "lacks" }
                    ));
                }
            }
        }
        // Every backup any simulator served since it started (a resume after a crash may
        // download a second one; both are real backups). A factory reset forgets its own.
        let served: Vec<String> = states
            .values()
            .filter(|s| s.backup_sha256.is_some())
            .flat_map(|s| {
                s.actions
                    .iter()
                    .filter(|a| a.ok && a.action == "backup.download")
                    .filter_map(|a| a.detail["sha256"].as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .collect();
        problems.extend(check_backups(&self.dir.join("backups"), &served));
        problems
    }

    pub async fn shutdown(self) {
        for (_, s) in self.sims {
            s.shutdown().await;
        }
    }
}

/// At least one backup file (`*.nsb`) in `dir`, mode 0600, not empty, each byte-identical to
/// a backup an appliance served (its SHA-256 is one a simulator logged serving; skipped when
/// no simulator remembers one, e.g. after a factory reset).
pub fn check_backups(dir: &Path, served: &[String]) -> Vec<String> {
    use sha2::Digest as _;
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![format!("no backup directory {}", dir.display())];
    };
    let mut found = 0;
    let mut problems = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("nsb") {
            continue;
        }
        found += 1;
        match std::fs::metadata(&path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                problems.push(format!("{} is readable by others", path.display()))
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
        let Ok(bytes) = std::fs::read(&path) else {
            problems.push(format!("cannot read {}", path.display()));
            continue;
        };
        let sum = hex_lower(&sha2::Sha256::digest(&bytes));
        // A factory reset (migration: the old appliance) forgets what it served.
        let unknown = !served.is_empty() && !served.iter().any(|s| s.eq_ignore_ascii_case(&sum));
        if bytes.is_empty() || unknown {
            problems.push(format!(
                "{} (SHA-256 {sum}) is not a backup an appliance served",
                path.display()
            ));
        }
    }
    if found == 0 {
        problems.push(format!("no backup (*.nsb) in {}", dir.display()));
    }
    problems
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// After the apply: wait until the client sees the appliance that should serve the site at
/// the end (a client's DNS cache may hold the previous answer for up to the lowered TTL),
/// and a few probes more, bounded by the TTL plus 2 s.
pub async fn settle(lab: &Lab, probe: &swing_providers::probe::ProbeHandle) {
    let last = lab
        .scenario
        .expected_sequence()
        .last()
        .copied()
        .unwrap_or_default();
    let id = lab.sim(last).map(|s| s.appliance_id().to_string());
    let limit = Duration::from_secs(u64::from(DNS_SWITCH_TTL) + 2);
    wait_until(limit, || {
        probe.last().is_some_and(|r| r.ok && r.appliance == id)
    })
    .await;
    let n = probe.finished() + 5;
    wait_until(Duration::from_secs(5), || probe.finished() >= n).await;
}

/// Poll `cond` every 20 ms until it holds or `limit` passes.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
