//! End-to-end benchmark (not a timed test): every scenario that needs no root, applied by the
//! real `swing apply` binary against simulators at the time scale where a 45-minute install
//! takes 2 s, with the prober as the client. Prints one Markdown table row per scenario:
//! measured downtime, time without failover protection, apply makespan, the critical path
//! of simulated work and engine overhead = makespan ÷ critical path.
//!
//! Run: `cargo bench --bench e2e` (optionally `-- SCENARIO...`). The dns scenarios use the
//! embedded DNS server (no BIND needed); the nat scenario runs only as root: it builds the
//! end-to-end test's network namespaces with real nftables (`swing_testkit::nat_net`) and is
//! skipped with a note otherwise.
//!
//! Critical path: the longest path through the compiled step graph where each step weighs
//! what the simulated world needs, at the time scale: `X.install` = the simulator's
//! install time (base + site package), `failover.sync` / `failover.resync` /
//! `failover.promote-*` = the data syncs the simulators logged (in order; the first sync
//! after establishing also its one-minute start delay), `switch.prepare`
//! = the old DNS TTL the engine must wait out, `switch.verify-X` = the lowered TTL when
//! the appliance the site left goes down afterwards (clients' caches must expire first),
//! `clients.wait` ends no earlier than 95 % of the Jump Clients are back after the last
//! install (one returns every `upgrade_s / throttle`); every other step (API calls, checks)
//! weighs 0 — all its time is engine overhead.
//!
//! The lab plan states the fast time scale's durations in `policy.estimates`
//! (`LabOptions::state_estimates`), as a rehearsal plan does. `E2E_TIMELINE=1` also prints
//! each scenario's step timeline from the journal (stderr), with the idle gaps between steps.

use std::collections::HashMap;

/// The simulator starts the first sync this many simulated seconds after establishing.
const FIRST_SYNC_DELAY_S: f64 = 60.0;
/// `policy.jump_clients.online_ratio` of the lab plans.
const JC_ONLINE_RATIO: f64 = 0.95;
use std::time::Duration;

use swing_providers::probe::Route;
use swing_testkit::e2e::{self, E2eRun};
use swing_testkit::kit::{
    self, DNS_OLD_TTL, DNS_SWITCH_TTL, DnsSetup, Lab, LabOptions, SITE, Scenario, ZONE,
};
use swing_testkit::nat_net;

struct Row {
    scenario: &'static str,
    downtime_ms: u64,
    unprotected_ms: u64,
    makespan_ms: u64,
    critical_ms: u64,
    ok: bool,
    note: String,
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    for s in Scenario::ALL {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == s.name()) {
            continue;
        }
        eprintln!("bench: {} …", s.name());
        if s == Scenario::AsyncNat {
            // SAFETY: geteuid has no preconditions and touches no memory.
            if unsafe { libc::geteuid() } != 0 {
                eprintln!("bench: async-nat skipped: needs root (network namespaces, nftables)");
                continue;
            }
            rows.push(rt.block_on(bench_nat()));
        } else {
            rows.push(rt.block_on(bench(s)));
        }
    }
    println!(
        "| scenario | measured downtime | unprotected | makespan | critical path (simulated work) | engine overhead | result |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for r in &rows {
        let overhead = if r.critical_ms > 0 {
            r.makespan_ms as f64 / r.critical_ms as f64
        } else {
            f64::NAN
        };
        println!(
            "| {} | {:.3} s | {:.2} s | {:.2} s | {:.2} s | {:.3} (+{:.1} %) | {}{} |",
            r.scenario,
            r.downtime_ms as f64 / 1000.0,
            r.unprotected_ms as f64 / 1000.0,
            r.makespan_ms as f64 / 1000.0,
            r.critical_ms as f64 / 1000.0,
            overhead,
            (overhead - 1.0) * 100.0,
            if r.ok { "ok" } else { "FAILED" },
            if r.note.is_empty() {
                String::new()
            } else {
                format!(": {}", r.note)
            },
        );
    }
}

async fn bench(s: Scenario) -> Row {
    let dir = tempfile::tempdir().expect("temp dir");
    // The plan states the fast time scale's durations, as a rehearsal plan does.
    let options = LabOptions {
        state_estimates: true,
        ..LabOptions::default()
    };
    let lab = Lab::start(s, dir.path(), options)
        .await
        .expect("simulators start");
    let mut server = None;
    let dns = if s.uses_dns() {
        let secret = swing_providers::dns_server::generate_tsig_secret().expect("tsig secret");
        let key = swing_providers::rfc2136::TsigKey {
            name: "swing-bench".into(),
            algorithm: swing_schema::TsigAlgorithm::HmacSha256,
            secret: secret.clone(),
        };
        let first = lab.first_address().expect("first appliance");
        let record = swing_providers::dns_server::EmbeddedRecord::new(SITE, first, DNS_OLD_TTL);
        let srv = swing_providers::dns_server::start_embedded(ZONE, &[record], key)
            .await
            .expect("embedded DNS");
        let setup = DnsSetup {
            server: srv.addr,
            key_name: "swing-bench".into(),
            secret,
        };
        server = Some(srv);
        Some(setup)
    } else {
        None
    };
    let plan_path = lab.write_plan(dns.as_ref(), None).expect("plan written");
    let route = match &dns {
        Some(d) => Route::Dns { server: d.server },
        None => lab.direct_route().expect("route"),
    };
    let run =
        e2e::apply_with_probe(swing(), &lab, &plan_path, route, Duration::from_secs(300)).await;
    let row = row_of(&lab, &plan_path, &run);
    if let Some(d) = server {
        d.shutdown().await;
    }
    lab.shutdown().await;
    row
}

/// The asynchronous NAT scenario in the end-to-end test's namespaces: simulators in `ap`,
/// the DNAT rule in `gw`, the prober and `swing apply` in `cl`, reaching the site by the VIP.
async fn bench_nat() -> Row {
    use nat_net::{A, B, VIP, VIP_PORT};
    let net = nat_net::NatNet::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let options = LabOptions {
        addresses: Some((A.parse().expect("a"), B.parse().expect("b"), None)),
        state_estimates: true,
        ..LabOptions::default()
    };
    let path = dir.path().to_path_buf();
    let lab = net
        .ap_rt
        .handle()
        .spawn(async move { Lab::start(Scenario::AsyncNat, &path, options).await })
        .await
        .expect("lab task")
        .expect("simulators start in the appliance namespace");
    net.load_ruleset(lab.port);
    let setup = kit::NatSetup {
        public: std::net::SocketAddr::new(VIP.parse().expect("vip"), VIP_PORT),
        table: "swing".into(),
        chain: "prerouting".into(),
        netns: Some(net.gw.clone()),
    };
    let plan_path = lab.write_plan(None, Some(&setup)).expect("plan written");
    let mut cfg = lab.probe_config(Route::Address(VIP.parse().expect("vip")));
    cfg.port = VIP_PORT;
    cfg.timeout = Duration::from_secs(1);
    let probe = {
        let _in_cl = net.cl_rt.handle().enter();
        swing_providers::probe::Prober::start(cfg).expect("prober starts")
    };
    kit::wait_until(Duration::from_secs(10), || probe.finished() >= 3).await;
    let cmd = e2e::swing_apply_command(swing(), &lab, &plan_path, Some(&net.cl));
    let run = e2e::run_apply(&lab, probe, cmd, Duration::from_secs(300)).await;
    let row = row_of(&lab, &plan_path, &run);
    net.ap_rt
        .handle()
        .spawn(lab.shutdown())
        .await
        .expect("simulators stop");
    drop(net);
    row
}

/// One table row from a finished run.
/// The binary under measurement.
fn swing() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_swing"))
}

fn row_of(lab: &Lab, plan_path: &std::path::Path, run: &E2eRun) -> Row {
    let s = lab.scenario;
    let problems = lab.check_final_state();
    let ok = run.exit_code == Some(0) && run.all_steps_succeeded().is_ok() && problems.is_empty();
    let critical_ms = critical_path_ms(lab, plan_path);
    if std::env::var_os("E2E_TIMELINE").is_some() {
        print_timeline(lab, s);
    }
    let row = Row {
        scenario: s.name(),
        downtime_ms: run.probe.longest_outage_ms,
        unprotected_ms: run
            .report
            .as_ref()
            .and_then(|r| r["unprotected_ms"].as_u64())
            .unwrap_or(0),
        makespan_ms: u64::try_from(run.makespan.as_millis()).unwrap_or(u64::MAX),
        critical_ms,
        ok,
        note: if ok {
            String::new()
        } else {
            format!("{:?} {}", run.exit_code, problems.join("; "))
        },
    };
    if !ok {
        eprintln!("{}", run.explain());
    }
    row
}

/// Longest path through the compiled graph with the simulated-work weights described above.
fn critical_path_ms(lab: &Lab, plan_path: &std::path::Path) -> u64 {
    let scale = lab.options.time_scale;
    let checked = swing_engine::validate::check_file(plan_path);
    let Some(plan) = checked.plan else { return 0 };
    let Ok(compiled) = swing_engine::compile::compile(
        &plan,
        &swing_engine::compile::CompileOptions {
            offline: false,
            file: None,
        },
    ) else {
        return 0;
    };
    let states = lab.final_states();
    let mut weight: HashMap<String, f64> = HashMap::new();
    let mut syncs: Vec<(i64, f64)> = Vec::new();
    let mut max_jc_upgrade = 0.0f64;
    for (name, st) in &states {
        let install_s: f64 = st
            .actions
            .iter()
            .filter(|a| a.action == "install.finished")
            .filter_map(|a| a.detail["sim_duration_s"].as_f64())
            .sum();
        weight.insert(format!("{name}.install"), install_s * scale);
        for a in st
            .actions
            .iter()
            .filter(|a| a.action == "failover.sync" && a.ok)
        {
            if let Some(d) = a.detail["sim_duration_s"].as_f64() {
                // The first sync after establishing starts a simulated minute later; the
                // engine waits for that too.
                let delay = if a.detail["reason"] == "first sync after establish" {
                    FIRST_SYNC_DELAY_S
                } else {
                    0.0
                };
                syncs.push((a.at_unix_ms, (delay + d) * scale));
            }
        }
        if st.jump_clients.total > 0 {
            // After an install, one Jump Client returns every upgrade_s / throttle simulated
            // seconds; clients.wait needs JC_ONLINE_RATIO of them back.
            let needed = (JC_ONLINE_RATIO * f64::from(st.jump_clients.total)).ceil();
            let per = swing_sim::SimConfig::new("bench", ".").jump_client_upgrade_s
                / f64::from(st.jump_clients.throttle.max(1));
            max_jc_upgrade = max_jc_upgrade.max(needed * per * scale);
        }
    }
    syncs.sort_by_key(|(t, _)| *t);
    let sync_steps: Vec<&str> = compiled
        .steps
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| {
            *id == "failover.sync"
                || *id == "failover.resync"
                || id.starts_with("failover.promote-")
        })
        .collect();
    for (id, (_, d)) in sync_steps.iter().zip(syncs.iter()) {
        weight.insert((*id).to_string(), *d);
    }
    if lab.scenario.uses_dns() {
        weight.insert("switch.prepare".into(), f64::from(DNS_OLD_TTL));
        // Before the appliance the site left goes down (its install or decommission), the
        // clients' caches of its address must expire: the lowered TTL after the swing.
        for step in &compiled.steps {
            let Some(to) = step.id.strip_prefix("switch.verify-") else {
                continue;
            };
            let after = downstream(&compiled, &step.id);
            let goes_down = lab.scenario.appliances().iter().any(|a| {
                *a != to
                    && (after.contains(&format!("{a}.install"))
                        || after.contains(&format!("{a}.decommission")))
            });
            if goes_down {
                weight.insert(step.id.clone(), f64::from(DNS_SWITCH_TTL));
            }
        }
    }
    let mut finish: HashMap<&str, f64> = HashMap::new();
    let mut longest = 0.0f64;
    for step in &compiled.steps {
        let start = step
            .depends_on
            .iter()
            .filter_map(|d| finish.get(d.as_str()))
            .fold(0.0f64, |m, v| m.max(*v));
        let mut end = start + weight.get(&step.id).copied().unwrap_or(0.0);
        if step.id == "clients.wait" {
            // The Jump Clients come back counting from the end of the last install.
            let installed = finish
                .iter()
                .filter(|(id, _)| id.ends_with(".install"))
                .fold(0.0f64, |m, (_, v)| m.max(*v));
            end = end.max(installed + max_jc_upgrade);
        }
        longest = longest.max(end);
        finish.insert(step.id.as_str(), end);
    }
    (longest * 1000.0).round() as u64
}

/// The steps that depend on `id`, directly or through others.
fn downstream(compiled: &swing_engine::compile::CompiledPlan, id: &str) -> Vec<String> {
    let mut after: Vec<String> = vec![id.to_owned()];
    let mut grew = true;
    while grew {
        grew = false;
        for s in &compiled.steps {
            if !after.contains(&s.id) && s.depends_on.iter().any(|d| after.contains(d)) {
                after.push(s.id.clone());
                grew = true;
            }
        }
    }
    after.remove(0);
    after
}

/// Prints (stderr) each step's start and end relative to the apply's first journal record,
/// and the idle gap before it (time no step ran): where the wall time beyond the critical
/// path goes. Enabled with `E2E_TIMELINE=1`.
fn print_timeline(lab: &Lab, s: Scenario) {
    let path = lab
        .dir
        .join(".swing")
        .join(format!("lab-{}.journal.jsonl", s.name()));
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("no journal at {}", path.display());
        return;
    };
    let recs: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let Some(t0) = recs.first().and_then(|r| r["ts_ms"].as_i64()) else {
        return;
    };
    let mut running = 0i32;
    let mut idle_since = Some(t0);
    let mut idle_total = 0i64;
    for r in &recs {
        let t = r["ts_ms"].as_i64().unwrap_or(t0);
        let ev = r["event"].as_str().unwrap_or("");
        let step = r["step"].as_str().unwrap_or("");
        match ev {
            "step-started" => {
                if running == 0 {
                    let gap = idle_since.map(|i| t - i).unwrap_or(0);
                    idle_total += gap;
                    eprintln!("{:>7} ms  start {step:<24} (idle {gap} ms)", t - t0);
                } else {
                    eprintln!("{:>7} ms  start {step:<24}", t - t0);
                }
                running += 1;
            }
            "step-succeeded" | "step-failed" => {
                running -= 1;
                if running == 0 {
                    idle_since = Some(t);
                }
                eprintln!("{:>7} ms  {ev:<5} {step}", t - t0);
            }
            "run-finished" => {
                let gap = idle_since.map(|i| t - i).unwrap_or(0);
                idle_total += gap;
                eprintln!(
                    "{:>7} ms  finished (idle {gap} ms; idle in total {idle_total} ms)",
                    t - t0
                );
            }
            _ => {}
        }
    }
}
