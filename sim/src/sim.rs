//! The running simulator: shared state, clock, action log and the long-running operations
//! (install, sync, role changes, peer calls).
//!
//! Owns: [`Sim`] — configuration, CA, certificate resolver, the state mutex, listeners (via
//! `server`), and the operations the HTTP handlers trigger. Every state change that a person
//! or the engine caused is appended to the action log.
//!
//! Must not: hold the state mutex across an `.await`; sleep except to simulate the duration
//! of an operation (scaled by `time_scale`); log secrets.

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::SimError;
use crate::ca::{Ca, Leaf};
use crate::config::{Faults, JumpClientKind, Role, SimConfig};
use crate::server::{self, CertResolver, Net};
use crate::state::{
    Account, ActionRecord, ApplianceStatus, CertificateState, JumpClientState, PackageState,
    SimState, State, StoredCert, Wave,
};

/// One Jump Client as the configuration API reports it (see [`Sim::jump_client`]).
pub(crate) struct JumpClient {
    /// `None`: one of the active clients of `SimConfig::jump_clients`.
    pub kind: Option<JumpClientKind>,
    pub needs_update: bool,
    pub last_connect: i64,
    pub last_disconnect: Option<i64>,
}

/// Token lifetime without the `token-expiry` fault (vendor: 1 hour).
pub(crate) const TOKEN_LIFETIME_S: u64 = 3600;
/// Live tokens per API account (vendor: 30; the 31st evicts the oldest).
pub(crate) const MAX_TOKENS: usize = 30;
/// Largest clock skew honoured (ten years); larger values are clamped, never overflow.
pub(crate) const MAX_SKEW_S: i64 = 10 * 365 * 86400;
/// Longest token lifetime honoured (ten years).
pub(crate) const MAX_TOKEN_LIFETIME_S: u64 = 10 * 365 * 86400;
/// Simulated delay before the first sync after establishing (vendor: "about 60 s").
const FIRST_SYNC_DELAY_S: f64 = 60.0;

pub(crate) struct Sim {
    pub cfg: SimConfig,
    pub addr: SocketAddr,
    pub ca: Ca,
    pub appliance_id: String,
    /// The appliance's own host name (`<appliance>` text of `check_health`).
    pub hostname: String,
    pub st: Mutex<State>,
    pub resolver: Arc<CertResolver>,
    pub tls: tokio_rustls::TlsAcceptor,
    pub net: tokio::sync::Mutex<Net>,
    pub root: CancellationToken,
    pub tracker: TaskTracker,
    pub fault_changed: Notify,
    pub peer_http: reqwest::Client,
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// 32 lower-case hex digits, as recorded, stable per simulator name.
fn appliance_id(name: &str) -> String {
    crate::ca::hex(&sha256(format!("swing-sim appliance {name}").as_bytes())[..16])
}

/// The host name a cloud image gives itself (`ip-10-156-64-136`, as recorded), from the
/// listen address; the name for a non-IPv4 address.
fn default_hostname(addr: SocketAddr, name: &str) -> String {
    match addr.ip() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("ip-{}-{}-{}-{}", o[0], o[1], o[2], o[3])
        }
        IpAddr::V6(_) => format!("appliance-{name}"),
    }
}

/// The commit hash after the build number of `<version>` (40 hex digits, stable).
pub(crate) fn build_commit(version: &str, build: u32) -> String {
    crate::ca::hex(&sha256(format!("swing-sim build {version} {build}").as_bytes())[..20])
}

fn catalogue(cfg: &SimConfig) -> Vec<PackageState> {
    let Some(to) = cfg.update_to.as_ref() else {
        return Vec::new();
    };
    vec![
        PackageState {
            name: cfg.base_package.clone(),
            version: None,
            requires: None,
            installed: false,
            install_s: cfg.base_install_s,
        },
        PackageState {
            name: format!("pra-{to}"),
            version: Some(to.clone()),
            requires: Some(cfg.base_package.clone()),
            installed: false,
            install_s: cfg.install_s,
        },
    ]
}

impl Sim {
    pub(crate) async fn start(mut cfg: SimConfig) -> Result<Arc<Sim>, SimError> {
        cfg.validate()?;
        let ca_dir = cfg.ca_dir.clone();
        let ca = tokio::task::spawn_blocking(move || Ca::load_or_create(&ca_dir))
            .await
            .map_err(|e| SimError::Ca(format!("CA task failed: {e}")))??;
        let main = server::bind(cfg.listen)
            .await
            .map_err(|source| SimError::Listen {
                addr: cfg.listen,
                source,
            })?;
        let addr = main.local_addr().map_err(|source| SimError::Listen {
            addr: cfg.listen,
            source,
        })?;
        cfg.listen = addr;

        let mut st = State {
            status: ApplianceStatus::Running,
            version: cfg.version.clone(),
            build: cfg.build,
            installed: Vec::new(),
            catalogue: catalogue(&cfg),
            install_error: None,
            role: cfg.role,
            peer: cfg.peer,
            key: cfg.key.clone(),
            shared_ips: BTreeSet::new(),
            last_sync_unix: None,
            last_sync_status: None,
            sync_in_progress: false,
            account: Some(Account {
                client_id: cfg.client_id.clone(),
                secret_sha256: sha256(cfg.client_secret.as_bytes()),
            }),
            tokens: VecDeque::new(),
            tokens_issued: 0,
            backup_sha256: None,
            backups_served: 0,
            certs: Vec::new(),
            default_cert: 0,
            jump_clients: cfg.jump_clients,
            jump_client_groups: cfg.jump_client_groups.clone(),
            throttle: cfg.jump_client_throttle,
            wave: None,
            requests: VecDeque::new(),
            rate_limited: 0,
            vault_key_backed_up: false,
            data_mb: cfg.data_mb,
            faults: cfg.faults.clone(),
            actions: Vec::new(),
        };
        if cfg.role != Role::None {
            st.last_sync_unix = Some(
                Utc::now().timestamp() + cfg.faults.clock_skew_s.clamp(-MAX_SKEW_S, MAX_SKEW_S),
            );
            st.last_sync_status = Some("Success".into());
        }
        let leaf = Self::issue_leaf_for(&ca, &cfg, &st.faults)?;
        let resolver = Arc::new(CertResolver::new(leaf.certified_key()?));
        st.certs.push(StoredCert {
            name: "default".into(),
            leaf,
        });
        let tls = server::acceptor(resolver.clone())?;
        let peer_http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes())
                .map_err(|e| SimError::Tls(format!("CA for peer calls: {e}")))?])
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SimError::Tls(format!("peer client: {e}")))?;

        let sim = Arc::new(Sim {
            appliance_id: appliance_id(&cfg.name),
            hostname: cfg
                .hostname
                .clone()
                .unwrap_or_else(|| default_hostname(addr, &cfg.name)),
            addr,
            ca,
            st: Mutex::new(st),
            resolver,
            tls,
            net: tokio::sync::Mutex::new(Net::default()),
            root: CancellationToken::new(),
            tracker: TaskTracker::new(),
            fault_changed: Notify::new(),
            peer_http,
            cfg,
        });
        let router = crate::api::router(sim.clone());
        {
            let mut net = sim.net.lock().await;
            net.router = Some(router);
            net.main = Some(server::spawn_listener(&sim, main, net.router.clone()));
        }
        if let Some(ip) = sim.cfg.shared_ip {
            sim.enable_shared_ip(ip).await?;
        }
        sim.log(
            "start",
            true,
            json!({ "version": sim.cfg.version, "role": sim.cfg.role, "address": addr }),
        );
        Ok(sim)
    }

    fn issue_leaf_for(ca: &Ca, cfg: &SimConfig, faults: &Faults) -> Result<Leaf, SimError> {
        let mut ips = vec![cfg.listen.ip()];
        if cfg.listen.ip().is_unspecified() {
            ips.push(IpAddr::from([127, 0, 0, 1]));
        }
        ips.extend(cfg.shared_ip);
        ca.issue_leaf(
            &cfg.site,
            &ips,
            faults.cert_expiring_days.unwrap_or(cfg.cert_valid_days),
        )
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written in a way that
        // matters to a simulator; keep serving.
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulated clock: real clock plus the `clock-skew` fault.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        let skew = self.skew_s();
        Utc::now() + chrono::Duration::seconds(skew)
    }

    /// The `clock-skew` fault, clamped to ±ten years.
    fn skew_s(&self) -> i64 {
        self.lock()
            .faults
            .clock_skew_s
            .clamp(-MAX_SKEW_S, MAX_SKEW_S)
    }

    pub(crate) fn now_system(&self) -> SystemTime {
        let skew = self.skew_s();
        if skew >= 0 {
            SystemTime::now() + Duration::from_secs(skew.unsigned_abs())
        } else {
            SystemTime::now() - Duration::from_secs(skew.unsigned_abs())
        }
    }

    /// Real duration of `sim_s` simulated seconds.
    pub(crate) fn scaled(&self, sim_s: f64) -> Duration {
        Duration::try_from_secs_f64((sim_s * self.cfg.time_scale).max(0.0)).unwrap_or(Duration::MAX)
    }

    pub(crate) fn log(&self, action: &str, ok: bool, detail: Value) {
        let now = self.now();
        let mut st = self.lock();
        let seq = st.actions.len() as u64 + 1;
        st.actions.push(ActionRecord {
            seq,
            at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            at_unix_ms: now.timestamp_millis(),
            action: action.to_string(),
            ok,
            detail,
        });
    }

    pub(crate) fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    pub(crate) fn set_faults_with(&self, f: impl FnOnce(&mut Faults)) {
        let (before, after) = {
            let mut st = self.lock();
            let before = st.faults.clone();
            f(&mut st.faults);
            (before, st.faults.clone())
        };
        if before.cert_expiring_days != after.cert_expiring_days {
            // Re-issue the served certificate with the new validity.
            match Self::issue_leaf_for(&self.ca, &self.cfg, &after).and_then(|leaf| {
                let key = leaf.certified_key()?;
                Ok((leaf, key))
            }) {
                Ok((leaf, key)) => {
                    let mut st = self.lock();
                    let idx = st.default_cert;
                    if let Some(c) = st.certs.get_mut(idx) {
                        c.leaf = leaf;
                    }
                    self.resolver.set(key);
                }
                Err(e) => self.log(
                    "faults.certificate",
                    false,
                    json!({ "error": e.to_string() }),
                ),
            }
        }
        self.log(
            "faults.set",
            true,
            serde_json::to_value(&after).unwrap_or(Value::Null),
        );
        self.fault_changed.notify_waiters();
    }

    pub(crate) fn healthy(st: &State) -> bool {
        st.status == ApplianceStatus::Running && st.install_error.is_none()
    }

    pub(crate) fn jump_client_state(&self, st: &State) -> JumpClientState {
        let total = st.jump_clients;
        let returned = self.returned_clients(st);
        let active_back = returned.min(total);
        let needs_update = if st.wave.is_some() {
            total - active_back
        } else {
            0
        };
        let upgraded_online = if st.status == ApplianceStatus::Running {
            total - needs_update
        } else {
            0
        };
        let count = |k: JumpClientKind| -> u32 {
            st.jump_client_groups
                .iter()
                .filter(|g| g.kind == k)
                .map(|g| g.count)
                .sum()
        };
        let passive = count(JumpClientKind::Passive);
        let passive_upgraded = if st.wave.is_some() {
            returned.saturating_sub(total).min(passive)
        } else {
            st.jump_client_groups
                .iter()
                .filter(|g| g.kind == JumpClientKind::Passive && !g.needs_update)
                .map(|g| g.count)
                .sum()
        };
        JumpClientState {
            total,
            needs_update,
            upgraded_online,
            passive,
            passive_upgraded,
            active_offline: count(JumpClientKind::ActiveOffline),
            uninstalled: count(JumpClientKind::Uninstalled),
            lost: count(JumpClientKind::Lost),
            throttle: st.throttle,
        }
    }

    /// Clients of the upgrade wave: the active ones, then the passive ones.
    fn wave_size(st: &State) -> u32 {
        let passive: u32 = st
            .jump_client_groups
            .iter()
            .filter(|g| g.kind == JumpClientKind::Passive)
            .map(|g| g.count)
            .sum();
        st.jump_clients.saturating_add(passive)
    }

    /// Every Jump Client served: the active ones, then each group in order.
    pub(crate) fn jump_client_count(st: &State) -> u64 {
        u64::from(st.jump_clients)
            + st.jump_client_groups
                .iter()
                .map(|g| u64::from(g.count))
                .sum::<u64>()
    }

    /// How many clients of the wave (active first, then passive) have upgraded and
    /// reconnected since the last install (all of them without an install).
    pub(crate) fn returned_clients(&self, st: &State) -> u32 {
        let size = Self::wave_size(st);
        let Some(wave) = st.wave else {
            return size;
        };
        if st.faults.clients_never_return || st.status != ApplianceStatus::Running {
            return 0;
        }
        let elapsed_sim = if self.cfg.time_scale > 0.0 {
            wave.started_real.elapsed().as_secs_f64() / self.cfg.time_scale
        } else {
            f64::INFINITY
        };
        let per = self.cfg.jump_client_upgrade_s.max(1e-9);
        let n = (st.throttle as f64 * elapsed_sim / per).floor();
        if n >= size as f64 {
            size
        } else {
            n.max(0.0) as u32
        }
    }

    /// Simulated UNIX time at which wave position `i` returns in the current wave.
    pub(crate) fn client_return_unix(&self, st: &State, i: u32) -> Option<i64> {
        let wave = st.wave?;
        let per = self.cfg.jump_client_upgrade_s;
        let throttle = st.throttle.max(1) as f64;
        Some(wave.started_unix + (((i as f64 + 1.0) * per / throttle).ceil() as i64))
    }

    /// Jump Client number `i` (0-based over [`Self::jump_client_count`]) as the configuration
    /// API reports it at simulated time `now`.
    pub(crate) fn jump_client(&self, st: &State, i: u64, now: i64, returned: u32) -> JumpClient {
        const DAY: i64 = 86_400;
        let installed = st.wave.is_some();
        // Which group, and the position inside the wave for active and passive clients.
        let (kind, flag, wave_pos) = if i < u64::from(st.jump_clients) {
            (None, false, Some(i as u32))
        } else {
            let mut rest = i - u64::from(st.jump_clients);
            let mut passive_before: u32 = 0;
            let mut found = (Some(JumpClientKind::Lost), false, None);
            for g in &st.jump_client_groups {
                if rest < u64::from(g.count) {
                    let pos = (g.kind == JumpClientKind::Passive)
                        .then(|| st.jump_clients + passive_before + rest as u32);
                    found = (Some(g.kind), g.needs_update, pos);
                    break;
                }
                rest -= u64::from(g.count);
                if g.kind == JumpClientKind::Passive {
                    passive_before += g.count;
                }
            }
            found
        };
        let spread = (i % 60) as i64;
        let mut c = JumpClient {
            kind,
            needs_update: flag || installed,
            last_connect: now - spread,
            last_disconnect: None,
        };
        match kind {
            None | Some(JumpClientKind::Passive) => {
                let pos = wave_pos.unwrap_or(0);
                match st.wave {
                    Some(w) if pos < returned => {
                        c.needs_update = false;
                        let back = self
                            .client_return_unix(st, pos)
                            .unwrap_or(now)
                            .min(now)
                            .max(now - 30);
                        c.last_connect = back.max(w.started_unix + 1);
                        c.last_disconnect = Some(w.started_unix);
                    }
                    Some(w) => {
                        // Offline since the appliance went down for the install.
                        c.last_connect = w.started_unix - 1 - spread;
                        c.last_disconnect = Some(w.started_unix);
                    }
                    None if kind.is_some() => {
                        // A passive client checks in, then disconnects (at least daily).
                        c.last_connect = now - 3600 - (i % 20) as i64 * 3600;
                        c.last_disconnect = Some(c.last_connect + 5);
                    }
                    None => {
                        // Every other active client reconnected after an earlier outage.
                        if i % 2 == 1 {
                            c.last_disconnect = Some(now - DAY - spread);
                        }
                    }
                }
            }
            Some(JumpClientKind::ActiveOffline) => {
                c.last_connect = now - 7200 - spread;
                c.last_disconnect = Some(now - 3600 - spread);
            }
            Some(JumpClientKind::Uninstalled) => {
                c.last_connect = now - 10 * DAY - spread;
                c.last_disconnect = Some(now - 9 * DAY - spread);
            }
            Some(JumpClientKind::Lost) => {
                c.last_connect = now - 40 * DAY - spread;
                c.last_disconnect = Some(now - 30 * DAY - spread);
            }
        }
        c
    }

    pub(crate) fn snapshot(&self) -> SimState {
        let mut st = self.lock();
        let tokens_live = st.purge_tokens();
        let jc = self.jump_client_state(&st);
        let certs = st
            .certs
            .iter()
            .enumerate()
            .map(|(i, c)| CertificateState {
                name: c.name.clone(),
                leaf_sha256: c.leaf.leaf_sha256(),
                not_after_unix: c.leaf.not_after_unix,
                sans: c.leaf.sans.clone(),
                default: i == st.default_cert,
            })
            .collect();
        SimState {
            name: self.cfg.name.clone(),
            appliance_id: self.appliance_id.clone(),
            hostname: self.hostname.clone(),
            site: self.cfg.site.clone(),
            dialect: self.cfg.dialect,
            permissions: self.cfg.permissions.clone(),
            rate_limited: st.rate_limited,
            url: format!("https://{}", self.addr),
            address: self.addr,
            status: st.status,
            version: st.version.clone(),
            build: st.build,
            installed_packages: st.installed.clone(),
            available_updates: st.catalogue.clone(),
            healthy: Self::healthy(&st),
            error_message: st.install_error.clone(),
            role: st.role,
            peer: st.peer,
            key_set: st.key.is_some(),
            shared_ips: st.shared_ips.iter().copied().collect(),
            last_data_sync_unix: st.last_sync_unix,
            last_data_sync_status: st.last_sync_status.clone(),
            sync_in_progress: st.sync_in_progress,
            api_account: st.account.as_ref().map(|a| a.client_id.clone()),
            tokens_issued: st.tokens_issued,
            tokens_live,
            backup_sha256: st.backup_sha256.clone(),
            backups_served: st.backups_served,
            certificates: certs,
            jump_clients: jc,
            vault_key_backed_up: st.vault_key_backed_up,
            clock_skew_s: st.faults.clock_skew_s,
            time_scale: self.cfg.time_scale,
            faults: st.faults.clone(),
            actions: st.actions.clone(),
        }
    }

    pub(crate) async fn shutdown(&self) {
        self.root.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
    }

    // ---- listeners -------------------------------------------------------------------

    /// Enable a shared IP: listen on `ip` at this appliance's port.
    pub(crate) async fn enable_shared_ip(self: &Arc<Self>, ip: IpAddr) -> Result<(), SimError> {
        let mut net = self.net.lock().await;
        if !net.shared.contains_key(&ip) {
            let serving = self.lock().status == ApplianceStatus::Running;
            if serving {
                let addr = SocketAddr::new(ip, self.addr.port());
                let l = server::bind(addr)
                    .await
                    .map_err(|source| SimError::Listen { addr, source })?;
                let router = net.router.clone();
                net.shared
                    .insert(ip, server::spawn_listener(self, l, router));
            }
        }
        drop(net);
        let added = self.lock().shared_ips.insert(ip);
        if added {
            self.log("shared-ip.enabled", true, json!({ "address": ip }));
        }
        Ok(())
    }

    /// Disable a shared IP: close its listener.
    pub(crate) async fn disable_shared_ip(&self, ip: IpAddr) {
        let l = self.net.lock().await.shared.remove(&ip);
        if let Some(l) = l {
            l.stop().await;
        }
        let removed = self.lock().shared_ips.remove(&ip);
        if removed {
            self.log("shared-ip.disabled", true, json!({ "address": ip }));
        }
    }

    /// Close every listener (the appliance refuses connections); in-flight responses finish.
    pub(crate) async fn stop_listeners(&self) {
        let mut net = self.net.lock().await;
        let mut all: Vec<server::Listener> = net.main.take().into_iter().collect();
        all.extend(std::mem::take(&mut net.shared).into_values());
        for l in all {
            l.stop().await;
        }
    }

    /// Listen again on the own address and every enabled shared IP.
    pub(crate) async fn start_listeners(self: &Arc<Self>) -> Result<(), SimError> {
        let ips: Vec<IpAddr> = self.lock().shared_ips.iter().copied().collect();
        let mut net = self.net.lock().await;
        let mut addrs = Vec::new();
        if net.main.is_none() {
            addrs.push((None, self.addr));
        }
        for ip in ips {
            if !net.shared.contains_key(&ip) {
                addrs.push((Some(ip), SocketAddr::new(ip, self.addr.port())));
            }
        }
        let mut first_err = None;
        for (ip, addr) in addrs {
            let deadline = Instant::now() + Duration::from_secs(10);
            let bound = loop {
                match server::bind(addr).await {
                    Ok(l) => break Ok(l),
                    Err(e) if Instant::now() < deadline && !self.root.is_cancelled() => {
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => break Err(e),
                }
            };
            match bound {
                Ok(l) => {
                    let router = net.router.clone();
                    let listener = server::spawn_listener(self, l, router);
                    match ip {
                        None => net.main = Some(listener),
                        Some(ip) => {
                            net.shared.insert(ip, listener);
                        }
                    }
                }
                Err(source) => {
                    self.log(
                        "listen",
                        false,
                        json!({ "address": addr, "error": source.to_string() }),
                    );
                    first_err.get_or_insert(SimError::Listen { addr, source });
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    // ---- install -----------------------------------------------------------------------

    /// Check an install request and return the packages in order with their total duration.
    pub(crate) fn plan_install(
        &self,
        packages: &[String],
    ) -> Result<(Vec<PackageState>, f64), String> {
        let st = self.lock();
        if st.status != ApplianceStatus::Running {
            return Err(format!("appliance is {:?}", st.status).to_lowercase());
        }
        if packages.is_empty() {
            return Err("no packages given".into());
        }
        let mut installed: Vec<String> = st.installed.clone();
        let mut plan = Vec::new();
        for name in packages {
            let Some(p) = st.catalogue.iter().find(|p| &p.name == name) else {
                let offered: Vec<&str> = st.catalogue.iter().map(|p| p.name.as_str()).collect();
                return Err(format!(
                    "package {name:?} is not offered (available: {offered:?})"
                ));
            };
            if installed.contains(name) {
                return Err(format!("package {name:?} is already installed"));
            }
            if let Some(req) = &p.requires
                && !installed.contains(req)
            {
                return Err(format!(
                    "package {name:?} requires {req:?} to be installed first"
                ));
            }
            installed.push(name.clone());
            plan.push(p.clone());
        }
        let total = plan.iter().map(|p| p.install_s).sum();
        Ok((plan, total))
    }

    /// Run an install: stop serving, wait the scaled duration, come back on the new version
    /// (or the old one with an error under `install-fails`; never under `install-hangs`).
    pub(crate) async fn run_install(self: Arc<Self>, plan: Vec<PackageState>, total_s: f64) {
        let started = Instant::now();
        let names: Vec<String> = plan.iter().map(|p| p.name.clone()).collect();
        let root = self.root.clone();
        let wait = async {
            tokio::time::sleep(self.scaled(total_s)).await;
            loop {
                let changed = self.fault_changed.notified();
                if !self.lock().faults.install_hangs {
                    break;
                }
                changed.await;
            }
        };
        tokio::select! {
            _ = root.cancelled() => return,
            _ = wait => {}
        }
        let failed = {
            let mut st = self.lock();
            st.tokens.clear();
            st.status = ApplianceStatus::Running;
            if st.faults.install_fails {
                let last = names.last().cloned().unwrap_or_default();
                st.install_error = Some(format!(
                    "Update failed while installing {last}; do not restart the appliance, contact support"
                ));
                true
            } else {
                for p in &plan {
                    st.installed.push(p.name.clone());
                    if let Some(c) = st.catalogue.iter_mut().find(|c| c.name == p.name) {
                        c.installed = true;
                    }
                    if let Some(v) = &p.version {
                        st.version = v.clone();
                        st.build += 1;
                    }
                }
                st.install_error = None;
                false
            }
        };
        if !failed {
            let now = self.now();
            self.lock().wave = Some(Wave {
                started_real: Instant::now(),
                started_unix: now.timestamp(),
            });
        }
        let listen = self.start_listeners().await;
        let version = self.lock().version.clone();
        self.log(
            if failed {
                "install.failed"
            } else {
                "install.finished"
            },
            !failed && listen.is_ok(),
            json!({
                "packages": names,
                "version": version,
                "sim_duration_s": total_s,
                "real_ms": started.elapsed().as_millis() as u64,
                "listen_error": listen.err().map(|e| e.to_string()),
            }),
        );
    }

    // ---- failover ----------------------------------------------------------------------

    /// The key this appliance presents to its peer (`key-mismatch` garbles it).
    pub(crate) fn effective_key(&self) -> Option<String> {
        let st = self.lock();
        let key = st.key.clone()?;
        Some(if st.faults.key_mismatch {
            format!("{key}\u{1}mismatch")
        } else {
            key
        })
    }

    /// Whether `presented` equals this appliance's effective key.
    pub(crate) fn key_matches(&self, presented: Option<&str>) -> bool {
        match (self.effective_key(), presented) {
            (Some(k), Some(p)) => sha256(k.as_bytes()) == sha256(p.as_bytes()),
            _ => false,
        }
    }

    /// POST a JSON body to the peer's `/_sim/peer/...` endpoint with the inter-appliance key.
    pub(crate) async fn peer_call(
        &self,
        peer: SocketAddr,
        path: &str,
        body: Value,
    ) -> Result<Value, String> {
        let key = self
            .effective_key()
            .ok_or("no inter-appliance key is set on this appliance")?;
        let url = format!("https://{peer}/_sim/peer/{path}");
        let resp = self
            .peer_http
            .post(&url)
            .header("X-Sim-Peer-Key", key)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("peer {peer} unreachable: {}", error_chain(&e)))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(v)
        } else {
            Err(v
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("peer {peer} answered HTTP {status}")))
        }
    }

    /// Simulated duration of one sync.
    pub(crate) fn sync_duration_s(&self) -> f64 {
        let st = self.lock();
        let factor = st.faults.slow_sync_factor.unwrap_or(1.0);
        st.data_mb / self.cfg.sync_mb_per_s.max(1e-9) * factor
    }

    /// "Sync Now" on the primary: transfer data to the backup (takes the scaled sync time).
    pub(crate) async fn run_sync(&self, reason: &str) -> Result<f64, String> {
        let peer = {
            let mut st = self.lock();
            if st.role != Role::Primary {
                return Err(format!(
                    "this appliance is {}, only the primary syncs",
                    st.role
                ));
            }
            let Some(peer) = st.peer else {
                return Err("no failover relationship".into());
            };
            if st.sync_in_progress {
                return Err("a sync is already in progress".into());
            }
            st.sync_in_progress = true;
            st.last_sync_status = Some("In progress".into());
            peer
        };
        let started = Instant::now();
        let dur = self.sync_duration_s();
        tokio::select! {
            _ = self.root.cancelled() => return Err("simulator stopped".into()),
            _ = tokio::time::sleep(self.scaled(dur)) => {}
        }
        let now = self.now().timestamp();
        let res = self
            .peer_call(
                peer,
                "sync",
                json!({ "completed_unix": now, "from": self.appliance_id }),
            )
            .await;
        let mut st = self.lock();
        st.sync_in_progress = false;
        match &res {
            Ok(_) => {
                st.last_sync_unix = Some(now);
                st.last_sync_status = Some("Success".into());
            }
            Err(e) => st.last_sync_status = Some(format!("Failed: {e}")),
        }
        drop(st);
        let detail = json!({
            "reason": reason,
            "peer": peer,
            "sim_duration_s": dur,
            "real_ms": started.elapsed().as_millis() as u64,
            "error": res.as_ref().err(),
        });
        self.log("failover.sync", res.is_ok(), detail);
        res.map(|_| dur)
    }

    /// Establish the relationship with this appliance as primary.
    pub(crate) async fn establish(self: &Arc<Self>, backup: SocketAddr) -> Result<Value, String> {
        let version = {
            let st = self.lock();
            if st.peer.is_some() && st.role != Role::None {
                return Err(format!(
                    "already in a failover relationship with {:?}",
                    st.peer
                ));
            }
            st.version.clone()
        };
        let res = self
            .peer_call(
                backup,
                "establish",
                json!({ "primary": self.addr, "version": version, "appliance_id": self.appliance_id }),
            )
            .await;
        match res {
            Ok(v) => {
                {
                    let mut st = self.lock();
                    st.role = Role::Primary;
                    st.peer = Some(backup);
                    st.last_sync_status = Some("Waiting for first sync".into());
                }
                self.log(
                    "failover.establish",
                    true,
                    json!({ "role": "primary", "peer": backup }),
                );
                // The first sync starts within about 60 s of establishing.
                let me = self.clone();
                let delay = self.scaled(FIRST_SYNC_DELAY_S);
                self.tracker.spawn(async move {
                    tokio::select! {
                        _ = me.root.cancelled() => {}
                        _ = tokio::time::sleep(delay) => {
                            let still = { let st = me.lock(); st.role == Role::Primary && st.peer == Some(backup) };
                            if still { let _ = me.run_sync("first sync after establish").await; }
                        }
                    }
                });
                Ok(
                    json!({ "role": "primary", "peer": backup, "peer_appliance_id": v.get("appliance_id") }),
                )
            }
            Err(e) => {
                self.log(
                    "failover.establish",
                    false,
                    json!({ "peer": backup, "error": e }),
                );
                Err(e)
            }
        }
    }

    /// Break the relationship (both sides when the peer answers).
    pub(crate) async fn break_relationship(&self) -> Value {
        let peer = self.lock().peer;
        let peer_result = match peer {
            Some(p) => self
                .peer_call(p, "break", json!({ "from": self.appliance_id }))
                .await
                .err(),
            None => None,
        };
        {
            let mut st = self.lock();
            st.role = Role::None;
            st.peer = None;
        }
        let detail = json!({ "peer": peer, "peer_error": peer_result });
        self.log("failover.break", true, detail.clone());
        detail
    }

    /// `set_failover_role`. Returns the vendor success text or an error text.
    pub(crate) async fn set_failover_role(
        self: &Arc<Self>,
        role: Role,
        data_sync_first: bool,
        force: bool,
    ) -> Result<&'static str, String> {
        let (current, peer) = {
            let st = self.lock();
            (st.role, st.peer)
        };
        let Some(peer) = peer.filter(|_| current != Role::None) else {
            return Err("This appliance is not in a failover relationship".into());
        };
        if role == Role::None {
            return Err("role must be primary or backup".into());
        }
        if role == current {
            return Ok("Successfully changed role.");
        }
        if data_sync_first {
            let me = self.clone();
            self.tracker.spawn(async move {
                let dur = me.sync_duration_s();
                tokio::select! {
                    _ = me.root.cancelled() => {}
                    _ = tokio::time::sleep(me.scaled(dur)) => {
                        let _ = me.change_role(role, peer, false, true).await;
                    }
                }
            });
            self.log(
                "failover.role.sync-first",
                true,
                json!({ "role": role, "peer": peer }),
            );
            return Ok(
                "Successfully started data sync. Role change will occur upon successful completion.",
            );
        }
        self.change_role(role, peer, force, false).await?;
        Ok("Successfully changed role.")
    }

    async fn change_role(
        &self,
        role: Role,
        peer: SocketAddr,
        force: bool,
        synced: bool,
    ) -> Result<(), String> {
        let other = if role == Role::Primary {
            Role::Backup
        } else {
            Role::Primary
        };
        let now = self.now().timestamp();
        let body = json!({ "role": other, "synced_unix": if synced { Some(now) } else { None } });
        let res = self.peer_call(peer, "role", body).await;
        let forced = match &res {
            Ok(_) => false,
            // Only the primary may be forced to backup while the peer is unreachable.
            Err(_) if force && role == Role::Backup => true,
            Err(e) => {
                self.log("failover.role", false, json!({ "role": role, "error": e }));
                return Err(format!("Unable to change role: {e}"));
            }
        };
        {
            let mut st = self.lock();
            st.role = role;
            if synced {
                st.last_sync_unix = Some(now);
                st.last_sync_status = Some("Success".into());
            }
        }
        self.log(
            "failover.role",
            true,
            json!({ "role": role, "peer": peer, "forced": forced, "synced": synced }),
        );
        Ok(())
    }
}

/// An error with its sources, for messages (reqwest hides the cause otherwise).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
