//! A rehearsal: start the twin a [`TwinDescription`] describes — one simulator per appliance,
//! the embedded DNS server holding the observed record, or a private network namespace with
//! real nftables for a NAT site — write its plan ([`twin_plan`]), validate and compile it like
//! any plan, and apply it with the prober watching (the calls of `demo`: [`start_prober`],
//! [`apply_request`], `ops::apply`), switching each `--fault` on when its step starts and
//! resuming when a later window opens. The result is a [`Rehearsal`] in real units.
//!
//! Owns: the twin's processes and their lifetime, the fault hook, the resume loop and the
//! report model. Must not: print (the binary renders the report), contact anything but
//! loopback and its own namespaces, read or copy a secret of the real plan (the twin has its
//! own generated ones), or implement any engine step.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use swing_engine::apply::{ApplyEvent, EventSink, Outcome, WaitReason};
use swing_engine::compile::{CompiledPlan, StepOp};
use swing_engine::ops::{self, SiteOutcome};
use swing_providers::probe::{Credentials, ProbeConfig, ProbeReport, Route};
use swing_schema::SecretValue;
use swing_schema::output::StepKind;
use swing_sim::{Fault, JumpClientGroup, JumpClientKind, Role, SimConfig, SimHandle, Simulator};

use crate::demo::{Wiring, apply_request, client_downtime, start_prober};
use crate::kit::{LAB_RATE_PER_HOUR, LAB_RATE_PER_SECOND, wait_until};
use crate::twin::{TwinDescription, TwinLayout, TwinNat, TwinSwitch, scaled_s, twin_plan};

/// The exec provider example (`plans/providers/state-file-provider.py`): the NAT stand-in's
/// provider when no namespace with nftables can be made.
const NAT_STAND_IN: &str = include_str!("../../plans/providers/state-file-provider.py");

fn free_port(ip: IpAddr) -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(SocketAddr::new(ip, 0))?
        .local_addr()?
        .port())
}

/// The NAT stand-in's data path: accepts on `public` and sends each connection to the
/// target the state file holds for it at that moment (as a DNAT rule does for new flows).
async fn start_forwarder(
    public: SocketAddr,
    state: std::path::PathBuf,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(public)
        .await
        .with_context(|| format!("the NAT stand-in cannot listen on {public}"))?;
    let key = public.to_string();
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            let target = std::fs::read_to_string(&state)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["nat"][&key]["target"].as_str().map(str::to_owned))
                .and_then(|t| t.parse::<SocketAddr>().ok());
            tokio::spawn(async move {
                let Some(target) = target else { return };
                if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    }))
}

/// What a `--fault` switches on.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// A simulator fault (`docs/simulator.md`), on the appliance the step acts on (every
    /// appliance for a step that acts on none).
    Sim(Fault),
    /// The embedded DNS server answers every request SERVFAIL.
    DnsDown,
}

/// `--fault NAME[=VALUE]@STEP`.
#[derive(Debug, Clone)]
pub struct FaultAt {
    pub spec: String,
    pub step: String,
    pub kind: FaultKind,
}

/// Parses `NAME[=VALUE]@STEP` against the compiled plan: the step must exist, the name must be
/// a simulator fault or `dns-down` (a dns switch only). The error names the valid ones.
pub fn parse_fault(arg: &str, compiled: &CompiledPlan) -> Result<FaultAt, String> {
    let Some((spec, step)) = arg.rsplit_once('@') else {
        return Err(format!(
            "--fault {arg}: write NAME[=VALUE]@STEP, e.g. install-fails@b.install"
        ));
    };
    if compiled.step(step).is_none() {
        let ids: Vec<&str> = compiled.steps.iter().map(|s| s.id.as_str()).collect();
        return Err(format!(
            "--fault {arg}: the plan has no step {step}; its steps: {}",
            ids.join(", ")
        ));
    }
    let kind = if spec == "dns-down" {
        if !matches!(
            swing_engine::refresh::plan_switch(&compiled.plan),
            Some(swing_schema::Switch::Dns { .. })
        ) {
            return Err(format!(
                "--fault {arg}: dns-down needs a plan whose switch is dns"
            ));
        }
        FaultKind::DnsDown
    } else {
        FaultKind::Sim(spec.parse::<Fault>().map_err(|_| {
            format!(
                "--fault {arg}: unknown fault {spec:?}; valid: dns-down, {}",
                swing_sim::FAULT_NAMES.join(", ")
            )
        })?)
    };
    Ok(FaultAt {
        spec: spec.to_owned(),
        step: step.to_owned(),
        kind,
    })
}

/// How to run the rehearsal.
#[derive(Clone)]
pub struct RehearseOptions {
    /// Real seconds of the twin per second of the plan.
    pub scale: f64,
    pub faults: Vec<FaultAt>,
    pub probe_interval: Duration,
    /// Shown every apply event as it happens (`swing demo`); [`Quiet`](crate::demo::Quiet)
    /// shows nothing.
    pub narrator: Arc<dyn crate::demo::Narrator>,
}

/// The rehearsal's report, in real units (as the plan would take) unless named `twin_`.
#[derive(Debug, Clone, Serialize)]
pub struct Rehearsal {
    pub plan: String,
    pub site: String,
    pub twin: TwinDescription,
    pub time_scale: f64,
    /// `done`, `failed`, `paused` or `refused` (the apply would not start).
    pub outcome: String,
    /// Differences between the twin (a copy of the site) and what the plan expects, as
    /// `swing plan` lists them.
    pub drift: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halt: Option<Halt>,
    pub faults: Vec<String>,
    /// Client downtime the prober measured, per outage, with the step(s) running.
    pub outages: Vec<OutageAt>,
    pub longest_outage_s: f64,
    pub probe_resolution_s: f64,
    pub served_by: Vec<String>,
    pub unprotected_s: f64,
    pub planned_unprotected_s: u64,
    pub windows: Vec<WindowFit>,
    pub steps: Vec<StepRun>,
    /// The apply's running time, the waits for a later window not counted.
    pub makespan_s: f64,
    pub state_after: Vec<ApplianceAfter>,
    /// What differs from where the plan ends (empty: the change reached its goal on the
    /// twin — versions, health, roles, and the appliance the client ends on).
    pub problems: Vec<String>,
}

/// Where and why the rehearsal stopped.
#[derive(Debug, Clone, Serialize)]
pub struct Halt {
    /// The step (absent: refused before any step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub cause: String,
    pub advice: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The abort path of the step's phase, as the plan view words it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_path: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutageAt {
    /// The steps running when the outage began.
    pub during: Vec<String>,
    pub downtime_s: f64,
    pub twin_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowFit {
    pub name: String,
    pub length_s: u64,
    pub planned_used_s: u64,
    pub planned_fits: bool,
    /// From the window's start to its last step's end in the twin (`None`: none of its steps ran).
    pub rehearsed_used_s: Option<f64>,
    pub rehearsed_fits: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    pub id: String,
    pub status: String,
    pub planned_s: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehearsed_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplianceAfter {
    pub name: String,
    pub version: String,
    pub role: String,
    pub shared_ips: Vec<String>,
    pub healthy: bool,
}

/// The NAT twin's network: as root, namespaces with real nftables.
pub fn nat_twin_available() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success())
        && std::process::Command::new("nft")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn random_secret(prefix: &str) -> String {
    format!(
        "{prefix}-{:016x}{:016x}",
        fastrand::u64(..),
        fastrand::u64(..)
    )
}

/// Runs `fut` on `rt` (a namespace's runtime) when given, else here.
async fn on<T: Send + 'static>(
    rt: Option<&tokio::runtime::Handle>,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> anyhow::Result<T> {
    match rt {
        Some(h) => h.spawn(fut).await.context("a task in the twin's namespace"),
        None => Ok(fut.await),
    }
}

/// Rehearses `compiled` (the user's plan, compiled) on the twin `twin` in `dir`.
pub async fn rehearse(
    compiled: &CompiledPlan,
    twin: &TwinDescription,
    options: &RehearseOptions,
    dir: &Path,
    wiring: Wiring<'_>,
) -> anyhow::Result<Rehearsal> {
    let plan = &compiled.plan;
    let scale = options.scale;
    let nat = matches!(twin.switch, Some(TwinSwitch::Nat { .. }));
    let stand_in = std::env::var("SWING_TWIN_NAT").is_ok_and(|v| v == "exec");
    let net = if nat && (stand_in || !nat_twin_available()) {
        let python = std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !python {
            anyhow::bail!(
                "the twin of a NAT site needs root, `ip netns` and nft (a private network namespace with real nftables), or python3 for the local stand-in (the exec provider example)"
            );
        }
        None
    } else if nat {
        if twin.appliances.len() != 2 {
            anyhow::bail!("the NAT twin holds two appliances");
        }
        Some(crate::nat_net::NatNet::new())
    } else {
        None
    };
    let ap_rt = net.as_ref().map(|n| n.ap_rt.handle().clone());
    let cl_rt = net.as_ref().map(|n| n.cl_rt.handle().clone());

    // Addresses: a random loopback /24 (.10 the shared IP, .11… the appliances), or the NAT
    // network's two appliance addresses (the rule's target first).
    let base = [127u8, fastrand::u8(64..250), fastrand::u8(1..250)];
    let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(base[0], base[1], base[2], n));
    let mut order: Vec<&str> = twin.appliances.iter().map(|a| a.name.as_str()).collect();
    if let Some(TwinSwitch::Nat {
        target: Some(t), ..
    }) = &twin.switch
    {
        order.sort_by_key(|n| *n != t.as_str());
    }
    let addr_of = |i: usize| -> IpAddr {
        match &net {
            Some(_) => [crate::nat_net::A, crate::nat_net::B][i.min(1)]
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            None => ip(11 + i as u8),
        }
    };
    let port = if net.is_some() {
        8443
    } else {
        free_port(addr_of(0))?
    };
    let addresses: BTreeMap<String, SocketAddr> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), SocketAddr::new(addr_of(i), port)))
        .collect();
    let shared_ip = matches!(twin.switch, Some(TwinSwitch::SharedIp { .. })).then(|| ip(10));

    // The twin's own secrets.
    let client_id = "swing-twin".to_string();
    let client_secret = random_secret("twin");
    crate::kit::write_secret(&dir.join("client-secret"), &client_secret)?;
    crate::kit::write_secret(&dir.join("backup-password"), &random_secret("backup"))?;
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(dir.join("backups"))?;
    }
    let ca_dir = dir.join("ca");
    let pair_key = random_secret("pair");

    // One simulator per appliance, as observed.
    let mut sims: Vec<(String, Arc<SimHandle>)> = Vec::new();
    for a in &twin.appliances {
        let listen = addresses[&a.name];
        let mut cfg = SimConfig::new(&a.name, &ca_dir);
        cfg.listen = listen;
        cfg.site = twin.site.clone();
        cfg.version = a.version.clone();
        cfg.update_to = (!a.catalogue.is_empty()).then(|| twin.target_version.clone());
        if a.catalogue.len() >= 2 {
            cfg.base_package = a.catalogue[0].clone();
        }
        cfg.time_scale = scale;
        cfg.client_id = client_id.clone();
        cfg.client_secret = client_secret.clone();
        cfg.rate_limit = Some(swing_sim::RateLimit {
            per_second: LAB_RATE_PER_SECOND,
            per_hour: LAB_RATE_PER_HOUR,
        });
        cfg.jump_clients = u32::try_from(a.jump_clients.active).unwrap_or(u32::MAX);
        let group = |kind, count: u64| JumpClientGroup {
            kind,
            count: u32::try_from(count).unwrap_or(u32::MAX),
            needs_update: false,
        };
        cfg.jump_client_groups = [
            (JumpClientKind::ActiveOffline, a.jump_clients.active_offline),
            (JumpClientKind::Passive, a.jump_clients.passive),
            (JumpClientKind::Uninstalled, a.jump_clients.uninstalled),
            (JumpClientKind::Lost, a.jump_clients.lost),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| group(k, n))
        .collect();
        cfg.cert_valid_days = a.certificate_valid_days;
        // The plan's own estimates are what the twin's appliances take: the install (one
        // duration for all packages) and a data sync (the data size is not observable).
        if let Some(s) = compiled.step_by_op(&StepOp::Install(a.name.clone())) {
            cfg.base_install_s = 0.0;
            cfg.install_s = s.estimate_s as f64;
        }
        if let Some(s) = compiled.steps.iter().find(|s| s.op == StepOp::Sync) {
            cfg.data_mb = s.estimate_s as f64 * cfg.sync_mb_per_s;
        }
        if let Some(peer) = &a.peer
            && a.role != "none"
        {
            cfg.peer = addresses.get(peer).copied();
            cfg.key = Some(pair_key.clone());
            cfg.role = if a.role == "primary" {
                Role::Primary
            } else {
                Role::Backup
            };
            if a.holds_shared_ip {
                cfg.shared_ip = shared_ip;
            }
        }
        let sim = on(ap_rt.as_ref(), async move { Simulator::start(cfg).await })
            .await?
            .with_context(|| format!("starting the twin of appliance {}", a.name))?;
        sims.push((a.name.clone(), Arc::new(sim)));
    }
    let ca_file = ca_dir.join("ca.pem");

    // The switch's twin: the DNS server or the NAT gateway.
    let mut dns_server = None;
    let mut dns_addr = None;
    let mut nat_layout: Option<TwinNat> = None;
    let mut forwarder: Option<tokio::task::JoinHandle<()>> = None;
    let route;
    match &twin.switch {
        Some(TwinSwitch::Dns {
            record,
            points_at,
            ttl_s,
            ..
        }) => {
            let secret = swing_providers::dns_server::generate_tsig_secret()?;
            crate::kit::write_secret(&dir.join("tsig.key"), secret.expose())?;
            let key = swing_providers::rfc2136::TsigKey {
                name: "swing-twin".into(),
                algorithm: swing_schema::TsigAlgorithm::HmacSha256,
                secret,
            };
            let at = points_at
                .as_ref()
                .and_then(|p| addresses.get(p))
                .map(|a| a.ip())
                .unwrap_or(ip(99));
            let ttl = u32::try_from(scaled_s(*ttl_s, scale)).unwrap_or(u32::MAX);
            let zone = match swing_engine::refresh::plan_switch(plan)
                .and_then(|s| s.provider())
                .and_then(|p| plan.providers.get(p))
            {
                Some(swing_schema::Provider::Rfc2136(r)) => r.zone.clone(),
                _ => crate::twin::zone_of(record),
            };
            let rec = swing_providers::dns_server::EmbeddedRecord::new(record.clone(), at, ttl);
            let server = swing_providers::dns_server::start_embedded(&zone, &[rec], key)
                .await
                .context("starting the twin's DNS server")?;
            dns_addr = Some((server.addr, "swing-twin".to_string()));
            route = Some(Route::Dns {
                server: server.addr,
            });
            dns_server = Some(server);
        }
        Some(TwinSwitch::Nat { target, .. }) => {
            if let Some(n) = &net {
                n.load_ruleset(port);
                let public: SocketAddr =
                    SocketAddr::new(crate::nat_net::VIP.parse()?, crate::nat_net::VIP_PORT);
                nat_layout = Some(TwinNat::Nftables {
                    public,
                    table: "swing".into(),
                    chain: "prerouting".into(),
                    netns: Some(n.gw.clone()),
                });
                route = Some(Route::Address(public.ip()));
            } else {
                // The stand-in: the exec provider example keeps the rule in a state file, a
                // forwarder on the public address sends each connection where it points.
                let public = SocketAddr::new(ip(20), free_port(ip(20))?);
                let to = target
                    .as_ref()
                    .and_then(|t| addresses.get(t))
                    .or_else(|| addresses.values().next())
                    .copied()
                    .context("the NAT twin has no appliance")?;
                let state = dir.join("nat-state.json");
                std::fs::write(
                    &state,
                    serde_json::json!({ "nat": { public.to_string(): { "target": to.to_string(), "comment": null } } })
                        .to_string(),
                )?;
                std::fs::write(dir.join("nat-stand-in.py"), NAT_STAND_IN)?;
                forwarder = Some(start_forwarder(public, state).await?);
                nat_layout = Some(TwinNat::Exec {
                    public,
                    command: "python3".into(),
                    args: vec![
                        "./nat-stand-in.py".into(),
                        "--state".into(),
                        "./nat-state.json".into(),
                    ],
                });
                route = Some(Route::Address(public.ip()));
            }
        }
        Some(TwinSwitch::SharedIp { .. }) => route = shared_ip.map(Route::Address),
        None => route = addresses.values().next().map(|a| Route::Address(a.ip())),
    }
    let route = route.context("the twin has no way for a client to reach the site")?;
    let layout = TwinLayout {
        appliances: addresses.clone(),
        shared_ip,
        dns: dns_addr,
        nat: nat_layout.clone(),
        client_id: client_id.clone(),
        rate_limit: (LAB_RATE_PER_SECOND, LAB_RATE_PER_HOUR),
    };

    // The twin's plan, validated and compiled like any plan.
    let now_ms = swing_engine::time::now_ms();
    let value = twin_plan(compiled, &layout, scale, now_ms).map_err(anyhow::Error::msg)?;
    let plan_path = dir.join("twin-plan.yaml");
    std::fs::write(&plan_path, serde_json::to_string_pretty(&value)?)?;
    let checked = swing_engine::validate::check_file(&plan_path);
    let twin_valid = checked.plan.ok_or_else(|| {
        let msgs: Vec<String> = checked.diagnostics.iter().map(|d| d.to_string()).collect();
        anyhow::anyhow!("the twin's plan is not valid:\n  {}", msgs.join("\n  "))
    })?;
    let twin_compiled = swing_engine::compile::compile(&twin_valid, &Default::default())?;
    let windows_at: Vec<(String, i64)> = twin_valid
        .windows
        .iter()
        .map(|w| (w.name.clone(), w.start.timestamp_millis()))
        .collect();

    // The client.
    let mut probe_cfg = ProbeConfig::new(&twin.site, port, route);
    if let Some(n) = &nat_layout {
        probe_cfg.port = n.public().port();
    }
    probe_cfg.ca_file = Some(ca_file.clone());
    probe_cfg.credentials = Some(Credentials {
        client_id: client_id.clone(),
        client_secret: SecretValue::new(client_secret.clone()),
    });
    for (name, sim) in &sims {
        probe_cfg
            .labels
            .insert(sim.appliance_id().to_string(), name.clone());
    }
    let probe = {
        let _inside = cl_rt.as_ref().map(|h| h.enter());
        start_prober(probe_cfg, options.probe_interval).await?
    };

    // The fault hook and the event log.
    let log: Arc<Mutex<Vec<(i64, ApplyEvent)>>> = Arc::default();
    let dns_down: Option<Arc<AtomicBool>> = dns_server.as_ref().map(|d| d.down_switch());
    let hook_sims: Vec<(String, Arc<SimHandle>)> = sims.clone();
    let faults: Vec<(FaultAt, Option<String>)> = options
        .faults
        .iter()
        .map(|f| {
            let on = compiled.step(&f.step).and_then(|s| s.appliance.clone());
            (f.clone(), on)
        })
        .collect();
    let log_in = Arc::clone(&log);
    let narrator = Arc::clone(&options.narrator);
    let started_at = std::time::Instant::now();
    let events: EventSink = Arc::new(move |e: &ApplyEvent| {
        narrator.event(started_at.elapsed(), e);
        if let ApplyEvent::StepStarted { step, .. } = e {
            for (f, on) in faults.iter().filter(|(f, _)| f.step == *step) {
                match &f.kind {
                    FaultKind::DnsDown => {
                        if let Some(d) = &dns_down {
                            d.store(true, Ordering::SeqCst);
                        }
                    }
                    FaultKind::Sim(fault) => {
                        for (name, sim) in &hook_sims {
                            if on.as_deref().is_none_or(|o| o == name) {
                                sim.set_fault(fault.clone());
                            }
                        }
                    }
                }
            }
        }
        if let Ok(mut l) = log_in.lock() {
            l.push((swing_engine::time::now_ms(), e.clone()));
        }
    });

    // Apply, resuming when a later window opens (the days between windows are not rehearsed).
    let confirmed: BTreeSet<String> = twin_compiled
        .steps
        .iter()
        .filter(|s| s.kind == StepKind::Gate)
        .map(|s| s.id.clone())
        .collect();
    let source = plan_path.display().to_string();
    let plan_view = swing_engine::view::build(compiled);
    // What `swing plan` would say of the twin: the drift from what the plan expects.
    let drift = {
        let providers = wiring(&twin_valid, dir)?;
        let planned = on(cl_rt.as_ref(), {
            let (p, src, d) = (twin_valid.clone(), source.clone(), dir.to_path_buf());
            async move { ops::plan(&p, &src, &d, Some(&providers), false).await }
        })
        .await?;
        planned.map(|p| p.diff.drift).unwrap_or_default()
    };
    // Time the apply ran, not counting the waits for a later window to open.
    let mut busy_ms = 0;
    let mut waited_ms: u64 = 0;
    let mut resume = false;
    let mut unprotected_ms = 0;
    let (outcome, halt) = loop {
        let providers = wiring(&twin_valid, dir)?;
        let req = apply_request(
            &twin_valid,
            &source,
            dir,
            confirmed.clone(),
            resume,
            events.clone(),
        );
        let run_start = swing_engine::time::now_ms();
        let result = on(cl_rt.as_ref(), ops::apply(req, providers)).await;
        busy_ms += swing_engine::time::now_ms() - run_start;
        let result = result?;
        match result {
            Ok(SiteOutcome::NoChanges) => break ("done".to_string(), None),
            Ok(SiteOutcome::OnRecord(s)) => {
                anyhow::bail!("the twin's journal already says {}", s.name())
            }
            Ok(SiteOutcome::Ran(r)) => {
                // By the wall clock, the waits for a later window included: not counted.
                unprotected_ms = r.report.unprotected_ms.saturating_sub(waited_ms);
                match r.outcome {
                    Outcome::Done => break ("done".to_string(), None),
                    Outcome::Failed { root_cause, .. } => {
                        // The phase's abort path as the plan view words it.
                        let phase = plan_view
                            .phases
                            .iter()
                            .find(|p| p.steps.contains(&root_cause.step));
                        break (
                            "failed".to_string(),
                            Some(Halt {
                                step: Some(root_cause.step.clone()),
                                cause: root_cause.message,
                                advice: root_cause.advice,
                                phase: phase.map(|p| p.title.clone()),
                                abort_path: phase.map(|p| p.abort.clone()),
                            }),
                        );
                    }
                    Outcome::Paused { waiting } => {
                        let next = waiting.iter().find_map(|w| match &w.reason {
                            WaitReason::Window { window, .. } => windows_at
                                .iter()
                                .find(|(n, _)| n == window)
                                .map(|(_, at)| *at),
                            WaitReason::Confirmation { .. } => None,
                        });
                        let Some(at) = next else {
                            let what: Vec<String> = waiting.iter().map(|w| w.describe()).collect();
                            break (
                                "paused".to_string(),
                                Some(Halt {
                                    step: waiting.first().map(|w| w.step.clone()),
                                    cause: what.join("; "),
                                    advice: Vec::new(),
                                    phase: None,
                                    abort_path: None,
                                }),
                            );
                        };
                        let wait_ms = (at - swing_engine::time::now_ms()).max(0) as u64 + 50;
                        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
                        waited_ms += wait_ms;
                        resume = true;
                    }
                }
            }
            Err(e) => {
                break (
                    "refused".to_string(),
                    Some(Halt {
                        step: None,
                        cause: e.to_string(),
                        advice: Vec::new(),
                        phase: None,
                        abort_path: None,
                    }),
                );
            }
        }
    };
    let makespan_ms = busy_ms;
    // Let the client see the end state: a few probes more, bounded.
    let n = probe.finished() + 5;
    wait_until(Duration::from_secs(5), || probe.finished() >= n).await;
    let report = probe.stop().await;
    if let Some(d) = dns_server {
        d.shutdown().await;
    }
    if let Some(f) = forwarder {
        f.abort();
    }
    let state_after = sims
        .iter()
        .map(|(name, s)| {
            let st = s.state();
            ApplianceAfter {
                name: name.clone(),
                version: st.version,
                role: st.role.to_string(),
                shared_ips: st.shared_ips.iter().map(|i| i.to_string()).collect(),
                healthy: st.healthy,
            }
        })
        .collect();
    for (_, s) in sims {
        if let Ok(s) = Arc::try_unwrap(s) {
            let _ = on(ap_rt.as_ref(), s.shutdown()).await;
        }
    }
    drop(net);
    let events = log.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(build_report(
        compiled,
        twin,
        options,
        &twin_valid,
        &events,
        &report,
        outcome,
        drift,
        halt,
        unprotected_ms,
        makespan_ms,
        state_after,
    ))
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site: the rehearsal's end"
)]
fn build_report(
    compiled: &CompiledPlan,
    twin: &TwinDescription,
    options: &RehearseOptions,
    twin_plan: &swing_schema::Plan,
    events: &[(i64, ApplyEvent)],
    probe: &ProbeReport,
    outcome: String,
    drift: Vec<String>,
    halt: Option<Halt>,
    unprotected_ms: u64,
    makespan_ms: i64,
    state_after: Vec<ApplianceAfter>,
) -> Rehearsal {
    let scale = options.scale;
    let real = |ms: f64| ms / 1000.0 / scale;
    // Each step's first start and last end in the twin (UNIX ms).
    let mut started: BTreeMap<&str, i64> = BTreeMap::new();
    let mut ended: BTreeMap<&str, i64> = BTreeMap::new();
    for (at, e) in events {
        match e {
            ApplyEvent::StepStarted { step, .. } => {
                started.entry(step.as_str()).or_insert(*at);
            }
            ApplyEvent::StepSucceeded { step, .. } | ApplyEvent::StepFailed { step, .. } => {
                ended.insert(step.as_str(), *at);
            }
            _ => {}
        }
    }
    let status_of = |id: &str| -> String {
        let mut s = "not-started";
        for (_, e) in events {
            match e {
                ApplyEvent::StepStarted { step, .. } if step == id => s = "started",
                ApplyEvent::StepSucceeded { step, .. } if step == id => s = "succeeded",
                ApplyEvent::StepFailed { step, .. } if step == id => s = "failed",
                ApplyEvent::StepSkipped { step, .. } if step == id => s = "skipped",
                _ => {}
            }
        }
        s.to_string()
    };
    let steps = compiled
        .steps
        .iter()
        .map(|s| StepRun {
            id: s.id.clone(),
            status: status_of(&s.id),
            planned_s: s.estimate_s,
            rehearsed_s: match (started.get(s.id.as_str()), ended.get(s.id.as_str())) {
                (Some(a), Some(b)) => Some(real((b - a) as f64)),
                _ => None,
            },
        })
        .collect();
    let outages = probe
        .outages
        .iter()
        .map(|o| {
            let at = probe.started_unix_ms + o.start_ms as i64;
            let during = started
                .iter()
                .filter(|(id, s)| **s <= at && ended.get(*id).is_none_or(|e| *e >= at))
                .map(|(id, _)| id.to_string())
                .collect();
            OutageAt {
                during,
                downtime_s: real(o.duration_ms as f64),
                twin_ms: o.duration_ms,
            }
        })
        .collect();
    let view = swing_engine::view::build(compiled);
    let windows = view
        .windows
        .iter()
        .map(|w| {
            let twin_start = twin_plan
                .windows
                .iter()
                .find(|t| t.name == w.name)
                .map(|t| t.start.timestamp_millis());
            let last_end = w
                .steps
                .iter()
                .filter_map(|s| ended.get(s.as_str()))
                .max()
                .copied();
            let used = match (twin_start, last_end) {
                (Some(a), Some(b)) => Some(real((b - a).max(0) as f64)),
                _ => None,
            };
            WindowFit {
                name: w.name.clone(),
                length_s: w.duration_s,
                planned_used_s: w.used_s,
                planned_fits: w.fits,
                rehearsed_used_s: used,
                rehearsed_fits: used.map(|u| u <= w.duration_s as f64),
            }
        })
        .collect();
    let served_by = client_downtime(probe).served_by;
    let problems = if outcome == "done" {
        end_state_problems(compiled, &state_after, &served_by)
    } else {
        vec![format!("the change did not complete: {outcome}")]
    };
    Rehearsal {
        plan: compiled.plan.name.clone(),
        site: compiled.plan.site.clone(),
        twin: twin.clone(),
        time_scale: scale,
        outcome,
        drift,
        halt,
        faults: options
            .faults
            .iter()
            .map(|f| format!("{}@{}", f.spec, f.step))
            .collect(),
        outages,
        longest_outage_s: real(probe.longest_outage_ms as f64),
        probe_resolution_s: real(probe.interval_ms as f64),
        served_by,
        unprotected_s: real(unprotected_ms as f64),
        planned_unprotected_s: view.summary.unprotected_s,
        windows,
        steps,
        makespan_s: real(makespan_ms as f64),
        state_after,
        problems,
    }
}

/// Where the plan ends, against the twin's end state: every appliance kept in service on the
/// target and healthy, the pair's final primary primary, the client last served by the
/// appliance that should serve the site.
fn end_state_problems(
    compiled: &CompiledPlan,
    after: &[ApplianceAfter],
    served_by: &[String],
) -> Vec<String> {
    let target = &compiled.plan.target.version.0;
    let mut problems = Vec::new();
    for a in after {
        if compiled.is_decommissioned(&a.name) {
            continue;
        }
        if a.version != *target {
            problems.push(format!("{} runs {} instead of {target}", a.name, a.version));
        }
        if !a.healthy {
            problems.push(format!("{} is not healthy", a.name));
        }
    }
    let roles = &compiled.roles;
    if let Some(p) = &roles.final_primary
        && let Some(a) = after.iter().find(|a| a.name == *p)
        && a.role != "primary"
    {
        problems.push(format!("{p} has role {} instead of primary", a.role));
    }
    let last = match (&roles.final_primary, &compiled.plan.migration) {
        (Some(p), _) => p.clone(),
        (None, Some(m)) => m.to.clone(),
        (None, None) => roles.serving.clone(),
    };
    if served_by.last() != Some(&last) {
        problems.push(format!(
            "the client ended on {} instead of {last}",
            served_by.last().map(String::as_str).unwrap_or("nobody")
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(example: &str) -> CompiledPlan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../plans/examples")
            .join(example);
        let plan = swing_engine::validate::check_file(&path)
            .plan
            .expect("the example is valid");
        swing_engine::compile::compile(&plan, &Default::default()).expect("compiles")
    }

    #[test]
    fn faults_parse_against_the_compiled_plan() {
        let c = compiled("failover-async-dns-final-a.yaml");
        let f = parse_fault("install-fails@b.install", &c).unwrap();
        assert!(matches!(f.kind, FaultKind::Sim(Fault::InstallFails(true))));
        assert_eq!(f.step, "b.install");
        let f = parse_fault("latency=200@a.install", &c).unwrap();
        assert!(matches!(f.kind, FaultKind::Sim(Fault::LatencyMs(200))));
        assert!(matches!(
            parse_fault("dns-down@switch.to-b", &c).unwrap().kind,
            FaultKind::DnsDown
        ));
        let e = parse_fault("install-fails", &c).unwrap_err();
        assert!(e.contains("NAME[=VALUE]@STEP"), "{e}");
        let e = parse_fault("install-fails@c.install", &c).unwrap_err();
        assert!(
            e.contains("no step c.install") && e.contains("b.install"),
            "{e}"
        );
        let e = parse_fault("boom@b.install", &c).unwrap_err();
        assert!(e.contains("dns-down") && e.contains("install-fails"), "{e}");
        // dns-down needs a dns switch.
        let shared = compiled("failover-async-shared-ip.yaml");
        let e = parse_fault("dns-down@switch.to-b", &shared).unwrap_err();
        assert!(e.contains("switch is dns"), "{e}");
    }
}
