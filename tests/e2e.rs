//! End to end, one `#[test]` per scenario of `plans/examples/`, driven by the table [`CASES`]:
//! the real `swing apply` binary (`operator: sim`) against simulated appliances, with real
//! BIND `named` for the dns scenarios and real nftables in network namespaces for nat, and the
//! prober as the client reaching the site the way a client does (the appliance's or the shared
//! address, DNS with a TTL cache, the NAT VIP). Every case asserts the whole change (exit 0,
//! every step succeeded, versions, roles, shared IP, backups with the served checksum, who
//! served the site in order, no secret in any output), its scenario's extra final state, and
//! its downtime target from issue 7. Beyond the table, async-nat also runs against a gateway
//! whose rule iptables wrote: through `type: iptables`, and refused through `type: nftables`.
//!
//! One binary instead of one per scenario: one link instead of eight. The cases run one at a
//! time ([`SERIAL`]) so that measured downtimes are not distorted by each other on 2 cores.
//!
//! Must not: talk to anything but loopback, `named` on loopback and namespaces it creates; leave
//! a process or namespace behind (Drop guards).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use swing_providers::probe::{Prober, Route};
use swing_schema::SecretValue;
use swing_testkit::e2e::{self, E2eRun};
use swing_testkit::kit::{
    self, DNS_OLD_TTL, DNS_SWITCH_TTL, DnsSetup, Lab, LabOptions, NatSetup, NatTool, SITE,
    Scenario, TARGET_VERSION,
};
use swing_testkit::{named, nat_net, netns};

/// How the client reaches the site.
#[derive(Debug, Clone, Copy)]
enum Client {
    /// The shared IP, or the single appliance's own address.
    Direct,
    /// Through a real `named` (the record starts at the first appliance).
    Dns,
    /// Through the gateway's DNAT of the VIP, from a client namespace.
    Nat,
}

/// The downtime target of a scenario.
#[derive(Debug, Clone, Copy)]
enum Downtime {
    /// At most this many milliseconds (asynchronous: the swing only).
    AtMostMs(u64),
    /// The serving appliance installs and restarts: `0 <` downtime `≤ install + online +
    /// 500 ms` (one probe interval and scheduling slack), measured against the report's
    /// durations of `<X>.install` and `<X>.online`.
    InstallAndRestart {
        appliance: &'static str,
        /// Also at least 80 % of the install and exactly one outage (synchronous).
        whole_install: bool,
    },
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct Case {
    scenario: Scenario,
    client: Client,
    downtime: Downtime,
    /// How long the apply may take.
    limit_s: u64,
}

const DNS_TARGET_MS: u64 = (DNS_SWITCH_TTL as u64 + 1) * 1000;

const CASES: &[Case] = &[
    Case {
        scenario: Scenario::SingleAutomatic,
        client: Client::Direct,
        downtime: Downtime::InstallAndRestart {
            appliance: "main",
            whole_install: false,
        },
        limit_s: 120,
    },
    Case {
        scenario: Scenario::SingleManual,
        client: Client::Direct,
        downtime: Downtime::InstallAndRestart {
            appliance: "main",
            whole_install: false,
        },
        limit_s: 120,
    },
    Case {
        scenario: Scenario::Sync,
        client: Client::Direct,
        downtime: Downtime::InstallAndRestart {
            appliance: "a",
            whole_install: true,
        },
        limit_s: 120,
    },
    Case {
        scenario: Scenario::AsyncSharedIp,
        client: Client::Direct,
        downtime: Downtime::AtMostMs(1000),
        limit_s: 120,
    },
    Case {
        scenario: Scenario::AsyncDns,
        client: Client::Dns,
        downtime: Downtime::AtMostMs(DNS_TARGET_MS),
        limit_s: 180,
    },
    Case {
        scenario: Scenario::AsyncDnsFinalPrimary,
        client: Client::Dns,
        downtime: Downtime::AtMostMs(DNS_TARGET_MS),
        limit_s: 180,
    },
    Case {
        scenario: Scenario::AsyncNat,
        client: Client::Nat,
        downtime: Downtime::AtMostMs(1000),
        limit_s: 120,
    },
    Case {
        scenario: Scenario::Migration,
        client: Client::Dns,
        downtime: Downtime::AtMostMs(DNS_TARGET_MS),
        limit_s: 180,
    },
];

/// One case at a time (each test has its own runtime; a tokio mutex works across them).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The labs' options: the fast time scale, and its real durations stated in the plan's
/// `policy.estimates` as a rehearsal plan does, so the engine observes each step at
/// intervals relative to what it really takes (the downtime bounds compare with step
/// durations) and a hanging step halts in seconds.
///
/// Dialects: unless `SWING_SIM_DIALECT` fixes one, the scenarios alternate between the
/// recorded (`bomgar`) and the newer (`beyondtrust`) command API dialect in the order of
/// [`Scenario::ALL`], so both dialects run complete changes in every test run without running
/// each scenario twice.
fn lab_options(s: Scenario) -> LabOptions {
    let position = Scenario::ALL.iter().position(|x| *x == s).unwrap_or(0);
    let dialect = match std::env::var("SWING_SIM_DIALECT") {
        Ok(_) => kit::default_dialect(),
        Err(_) => swing_sim::Dialect::ALL[position % 2],
    };
    LabOptions {
        state_estimates: true,
        dialect,
        ..LabOptions::default()
    }
}

fn case(s: Scenario) -> Case {
    *CASES
        .iter()
        .find(|c| c.scenario == s)
        .unwrap_or_else(|| panic!("no case for {}", s.name()))
}

#[test]
fn every_scenario_has_exactly_one_case() {
    for s in Scenario::ALL {
        let n = CASES.iter().filter(|c| c.scenario == s).count();
        assert_eq!(n, 1, "{} has {n} cases", s.name());
    }
    assert_eq!(CASES.len(), Scenario::ALL.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_automatic() {
    run(case(Scenario::SingleAutomatic)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_manual() {
    run(case(Scenario::SingleManual)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync() {
    run(case(Scenario::Sync)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_shared_ip() {
    run(case(Scenario::AsyncSharedIp)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_dns() {
    run(case(Scenario::AsyncDns)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_dns_final_primary() {
    run(case(Scenario::AsyncDnsFinalPrimary)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_nat() {
    run(case(Scenario::AsyncNat)).await;
}

/// The async-nat case against a gateway whose rule iptables wrote, through `type: iptables`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_nat_through_iptables() {
    let _one_at_a_time = SERIAL.lock().await;
    run_nat_with(case(Scenario::AsyncNat), NatTool::Iptables).await;
}

/// The same gateway with `type: nftables` on iptables' `nat PREROUTING`: apply refuses before
/// any step runs, naming table and chain; the rule and the appliances are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_nat_with_nftables_on_an_iptables_gateway_is_refused_before_any_change() {
    let _one_at_a_time = SERIAL.lock().await;
    let c = case(Scenario::AsyncNat);
    let (net, lab, _dir) = nat_lab(c, NatTool::Nftables).await;
    let port = lab.port;
    net.load_iptables(port);
    let before = net.iptables_rules();
    let setup = nat_setup(&net, NatTool::Iptables);
    let setup = NatSetup {
        table: "nat".into(),
        chain: "PREROUTING".into(),
        ..setup
    };
    let plan = lab.write_plan(None, Some(&setup)).unwrap();
    assert!(
        std::fs::read_to_string(&plan)
            .unwrap()
            .contains("type: nftables"),
        "the plan names nftables"
    );
    // The doctor names it days before, with the fix.
    let (code, r) = doctor_from(&net.cl, &lab, &plan).await;
    assert_eq!(code, Some(1), "{r:#}");
    assert!(
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["subject"] == "nat lab-nat"
                && c["status"] == "blocker"
                && c["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("written by iptables")
                && c["fix"].is_string()),
        "{r:#}"
    );
    assert_eq!(
        net.iptables_rules(),
        before,
        "the doctor changed the gateway"
    );
    let probe = nat_probe(&net, &lab).await;
    let cmd = e2e::swing_apply_command(swing(), &lab, &plan, Some(&net.cl));
    let run = e2e::run_apply(&lab, probe, cmd, Duration::from_secs(c.limit_s)).await;
    assert_eq!(run.exit_code, Some(1), "{}", run.explain());
    let said = format!("{}{}", run.stdout, run.stderr);
    for part in [
        "chain `ip nat PREROUTING`",
        "written by iptables",
        "`type: iptables`",
    ] {
        assert!(said.contains(part), "`{part}` missing\n{}", run.explain());
    }
    assert!(run.report.is_none(), "no step may run\n{}", run.explain());
    assert_eq!(net.iptables_rules(), before, "the gateway was changed");
    for (name, st) in lab.final_states() {
        assert_ne!(st.version, TARGET_VERSION, "{name} was upgraded");
        // The simulator's own start is its only record: no backup, role change or install.
        assert!(
            st.actions.iter().all(|a| a.action == "start"),
            "{name} was acted on: {:?}",
            st.actions
        );
    }
    finish_nat(net, lab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration() {
    run(case(Scenario::Migration)).await;
}

/// Runs one case: the lab, the client, the apply, the common and the scenario's assertions.
async fn run(c: Case) {
    let _one_at_a_time = SERIAL.lock().await;
    match c.client {
        Client::Direct => run_direct(c).await,
        Client::Dns => run_dns(c).await,
        Client::Nat => run_nat(c).await,
    }
}

async fn run_direct(c: Case) {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(c.scenario, dir.path(), lab_options(c.scenario))
        .await
        .unwrap();
    let plan = lab.write_plan(None, None).unwrap();
    let route = lab.direct_route().expect("a direct route");
    let run =
        e2e::apply_with_probe(swing(), &lab, &plan, route, Duration::from_secs(c.limit_s)).await;
    check(&c, &lab, &plan, &run);
    lab.shutdown().await;
}

async fn run_dns(c: Case) {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(c.scenario, dir.path(), lab_options(c.scenario))
        .await
        .unwrap();
    let first = lab.first_address().unwrap().to_string();
    let old_leaf = default_leaf(&lab, lab.scenario.appliances()[0]);
    if c.scenario == Scenario::Migration {
        assert_ne!(
            default_leaf(&lab, "new"),
            old_leaf,
            "new starts with its own certificate"
        );
    }
    let named = named::Named::start(&[("access", DNS_OLD_TTL, "A", &first)]);
    let dns = DnsSetup {
        server: named.addr,
        key_name: named::KEY_NAME.into(),
        secret: SecretValue::new(named::KEY_SECRET),
    };
    let plan = lab.write_plan(Some(&dns), None).unwrap();
    let run = e2e::apply_with_probe(
        swing(),
        &lab,
        &plan,
        Route::Dns { server: named.addr },
        Duration::from_secs(c.limit_s),
    )
    .await;
    check(&c, &lab, &plan, &run);

    // The record points at the appliance serving the site at the end, with its old TTL.
    let last = *c.scenario.expected_sequence().last().unwrap();
    let answer = named.dig(SITE, "A");
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(
        answer[0].value,
        lab.address(last).unwrap().to_string(),
        "the record points at {last}"
    );
    assert_eq!(answer[0].ttl, DNS_OLD_TTL, "the TTL is restored");
    if c.scenario == Scenario::Migration {
        check_migration(&lab, &run, &old_leaf);
    }
    lab.shutdown().await;
}

/// Migration: new serves old's leaf (imported, made default), the backup was restored on it,
/// and the report's backup is the file on disk.
fn check_migration(lab: &Lab, run: &E2eRun, old_leaf: &str) {
    assert_eq!(default_leaf(lab, "new"), old_leaf, "{}", run.explain());
    let new = lab.sim("new").unwrap().state();
    assert_eq!(new.version, TARGET_VERSION);
    assert!(
        new.certificates
            .iter()
            .any(|c| c.name == "from-old" && c.leaf_sha256 == old_leaf),
        "{:?}",
        new.certificates
    );
    assert!(
        new.actions
            .iter()
            .any(|a| a.action == "backup.restore" && a.ok),
        "no successful restore on new"
    );
    let backups = run.report.as_ref().unwrap()["backups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let path = backups[0]["path"].as_str().unwrap();
    assert_eq!(
        backups[0]["sha256"].as_str(),
        Some(e2e::sha256_file(std::path::Path::new(path)).as_str())
    );
}

/// `swing doctor --format json PLAN` from the client namespace: (exit code, the report).
async fn doctor_from(
    ns: &str,
    lab: &Lab,
    plan: &std::path::Path,
) -> (Option<i32>, serde_json::Value) {
    let o = tokio::process::Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(swing())
        .args(["doctor", "--format", "json"])
        .arg(plan)
        .current_dir(&lab.dir)
        .env("XDG_STATE_HOME", kit::state_home(&lab.dir))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let o = tokio::time::timeout(Duration::from_secs(120), o)
        .await
        .expect("doctor ends")
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor JSON: {e}\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), v[0].clone())
}

async fn run_nat(c: Case) {
    run_nat_with(c, NatTool::Nftables).await;
}

/// The nat case's namespaces and the simulators started in `ap` (on a and b's addresses).
async fn nat_lab(c: Case, tool: NatTool) -> (nat_net::NatNet, Lab, tempfile::TempDir) {
    use nat_net::{A, B};
    let mut tools = vec!["ip", "nft", "conntrack"];
    if tool == NatTool::Iptables {
        tools.extend(["iptables-save", "iptables-restore"]);
    }
    netns::require_root_and_tools(&tools);
    let net = nat_net::NatNet::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let options = LabOptions {
        addresses: Some((A.parse().unwrap(), B.parse().unwrap(), None)),
        nat_tool: tool,
        ..lab_options(c.scenario)
    };
    let scenario = c.scenario;
    let lab = net
        .ap_rt
        .handle()
        .spawn(async move { Lab::start(scenario, &path, options).await })
        .await
        .expect("lab task")
        .expect("simulators start in the appliance namespace");
    (net, lab, dir)
}

/// Where the plan finds the gateway's rule for each tool.
fn nat_setup(net: &nat_net::NatNet, tool: NatTool) -> NatSetup {
    use nat_net::{VIP, VIP_PORT};
    let (table, chain) = match tool {
        NatTool::Nftables => ("swing", "prerouting"),
        NatTool::Iptables => ("nat", "PREROUTING"),
    };
    NatSetup {
        public: SocketAddr::new(VIP.parse().unwrap(), VIP_PORT),
        table: table.into(),
        chain: chain.into(),
        netns: Some(net.gw.clone()),
    }
}

/// The client: the prober in `cl`, reaching the site through the VIP only; started once its
/// first probes got through.
async fn nat_probe(net: &nat_net::NatNet, lab: &Lab) -> swing_providers::probe::ProbeHandle {
    use nat_net::{VIP, VIP_PORT};
    let mut cfg = lab.probe_config(Route::Address(VIP.parse::<IpAddr>().unwrap()));
    cfg.port = VIP_PORT;
    cfg.timeout = Duration::from_secs(1);
    let probe = {
        let _in_cl = net.cl_rt.handle().enter();
        Prober::start(cfg).expect("prober starts")
    };
    assert!(
        kit::wait_until(Duration::from_secs(10), || probe.finished() >= 3).await,
        "no probe finished: {}",
        probe.report().summary()
    );
    probe
}

/// Stops the simulators, deletes the namespaces and checks none was left behind.
async fn finish_nat(net: nat_net::NatNet, lab: Lab) {
    let names = net.ns.names.clone();
    net.ap_rt
        .handle()
        .spawn(lab.shutdown())
        .await
        .expect("simulators stop");
    drop(net);
    let left = nat_net::namespaces_listed();
    for n in &names {
        assert!(!left.contains(n.as_str()), "namespace {n} left behind");
    }
}

async fn run_nat_with(c: Case, tool: NatTool) {
    use nat_net::{A, B, VIP_PORT};
    let (net, lab, _dir) = nat_lab(c, tool).await;
    let port = lab.port;
    let vip_rules = |dport: u16| match tool {
        NatTool::Nftables => net.vip_rules(dport),
        NatTool::Iptables => net.vip_iptables_rules(dport),
    };
    match tool {
        NatTool::Nftables => net.load_ruleset(port),
        NatTool::Iptables => net.load_iptables(port),
    }
    let a_target = format!("{A}:{port}");
    let b_target = format!("{B}:{port}");
    assert_eq!(vip_rules(VIP_PORT), vec![(a_target, None)]);

    let plan = lab.write_plan(None, Some(&nat_setup(&net, tool))).unwrap();
    // Days before: the doctor finds the gateway ready — the rule found and the swing's
    // transaction accepted without committing it.
    let (code, ready) = doctor_from(&net.cl, &lab, &plan).await;
    assert_eq!(code, Some(0), "{ready:#}");
    assert!(
        ready["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["subject"] == "nat lab-nat"
                && c["check"] == "writable"
                && c["status"] == "ok"),
        "{ready:#}"
    );
    assert_eq!(
        vip_rules(VIP_PORT),
        vec![(format!("{A}:{port}"), None)],
        "the doctor changed the rule"
    );
    let probe = nat_probe(&net, &lab).await;
    // Before the change the client's connections through the VIP went to a.
    assert!(
        net.conntrack_vip_to(A, port) > 0,
        "the client's connections through the VIP must be tracked to a before the swing"
    );

    let cmd = e2e::swing_apply_command(swing(), &lab, &plan, Some(&net.cl));
    let run = e2e::run_apply(&lab, probe, cmd, Duration::from_secs(c.limit_s)).await;
    check(&c, &lab, &plan, &run);

    // Exactly one rule for the VIP, pointing at b, marked by swing; the neighbour untouched.
    let plan_name = format!("lab-{}", c.scenario.name());
    assert_eq!(
        vip_rules(VIP_PORT),
        vec![(b_target, Some(format!("swing:{plan_name}")))],
        "{}",
        run.explain()
    );
    assert_eq!(vip_rules(22), vec![(format!("{B}:22"), None)]);
    if tool == NatTool::Iptables {
        // iptables can still list its chain: nothing native was written into it.
        assert_eq!(net.iptables_rules().len(), 2);
    }
    // The old target's connections were flushed: nothing through the VIP is tracked to a
    // (the client's earlier connections would linger in TIME_WAIT otherwise).
    assert_eq!(
        net.conntrack_vip_to(A, port),
        0,
        "conntrack entries to a survived the swing\n{}",
        run.explain()
    );
    assert!(
        net.conntrack_vip_to(B, port) > 0,
        "the client's connections went to b"
    );
    finish_nat(net, lab).await;
}

/// The common assertions and the case's downtime target.
/// The binary under test.
fn swing() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_BIN_EXE_swing"))
}

fn check(c: &Case, lab: &Lab, plan: &std::path::Path, run: &E2eRun) {
    e2e::assert_change_complete(lab, run);
    e2e::report_measurement(lab, run);
    check_measured_by_the_apply(c, plan, run);
    let down = run.probe.longest_outage_ms;
    match c.downtime {
        Downtime::AtMostMs(max) => assert!(
            down <= max,
            "downtime {down} ms > {max} ms\n{}",
            run.explain()
        ),
        Downtime::InstallAndRestart {
            appliance,
            whole_install,
        } => {
            let install = run
                .step_ms(&format!("{appliance}.install"))
                .unwrap_or_else(|| panic!("{appliance}.install ran\n{}", run.explain()));
            let online = run.step_ms(&format!("{appliance}.online")).unwrap_or(0);
            assert!(
                down > 0,
                "{appliance} cannot install without downtime\n{}",
                run.explain()
            );
            assert!(
                down <= install + online + 500,
                "downtime {down} ms > {appliance}.install {install} + .online {online} ms\n{}",
                run.explain()
            );
            if whole_install {
                // At least most of the install: the appliance is unreachable while installing.
                assert!(
                    down * 10 >= install * 8,
                    "downtime {down} ms is far below {appliance}.install {install} ms\n{}",
                    run.explain()
                );
                assert_eq!(
                    run.probe.outages.len(),
                    1,
                    "one outage only\n{}",
                    run.explain()
                );
            }
        }
    }
}

/// The apply's own prober: the report names what a client saw during every step that can take
/// the site down (the compiled plan's downtime steps), each within the scenario's target, and
/// never more than the test's own client saw over the whole change (both probe every 50 ms;
/// the slack is two probe intervals of phase difference).
fn check_measured_by_the_apply(c: &Case, plan: &std::path::Path, run: &E2eRun) {
    let valid = swing_engine::validate::check_file(plan)
        .plan
        .expect("the lab plan is valid");
    let compiled =
        swing_engine::compile::compile(&valid, &swing_engine::compile::CompileOptions::default())
            .unwrap();
    let expected: Vec<&str> = compiled
        .steps
        .iter()
        .filter(|s| s.downtime)
        .map(|s| s.id.as_str())
        .collect();
    assert!(
        !expected.is_empty(),
        "{} has no downtime step",
        c.scenario.name()
    );
    let report = run.report.as_ref().expect("a report");
    let by_step = report["downtime_by_step"]
        .as_array()
        .unwrap_or_else(|| panic!("no measured downtime per step\n{}", run.explain()));
    let probed: Vec<&str> = by_step
        .iter()
        .map(|d| d["step"].as_str().unwrap())
        .collect();
    assert_eq!(probed, expected, "{}", run.explain());
    for d in by_step {
        assert!(
            d["probes"].as_u64().unwrap() >= 1,
            "{} watched without a probe\n{}",
            d["step"],
            run.explain()
        );
    }
    let longest = report["client_downtime"]["longest_outage_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("no measured client downtime\n{}", run.explain()));
    let max_of_steps = by_step
        .iter()
        .filter_map(|d| d["longest_outage_ms"].as_u64())
        .max()
        .unwrap();
    assert_eq!(longest, max_of_steps);
    assert!(
        longest <= run.probe.longest_outage_ms + 2 * run.probe.interval_ms,
        "the apply measured {longest} ms, the client over the whole change {} ms\n{}",
        run.probe.longest_outage_ms,
        run.explain()
    );
    match c.downtime {
        Downtime::AtMostMs(max) => assert!(
            longest <= max,
            "measured by the apply: {longest} ms > {max} ms\n{}",
            run.explain()
        ),
        Downtime::InstallAndRestart { .. } => assert!(
            longest > 0,
            "the apply saw no outage while the serving appliance restarted\n{}",
            run.explain()
        ),
    }
}

/// SHA-256 of the leaf an appliance serves by default (the simulator's own record).
fn default_leaf(lab: &Lab, name: &str) -> String {
    let st = lab.sim(name).expect("appliance").state();
    let defaults: Vec<_> = st.certificates.iter().filter(|c| c.default).collect();
    assert_eq!(defaults.len(), 1, "{name}: {:?}", st.certificates);
    defaults[0].leaf_sha256.clone()
}
