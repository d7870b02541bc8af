//! End to end: asynchronous failover with a NAT switch — real nftables in network namespaces
//! this test creates, two simulators behind the gateway's DNAT, the real `swing apply` binary
//! with `operator: sim` and the `nftables` provider, and the prober as the client reaching the
//! site through the virtual IP. Target (issue 7): client-visible downtime ≤ 1 s.
//!
//! Topology (namespaces `swt-<pid>-<n>-{cl,gw,ap}`, addresses that exist only inside them):
//!
//! ```text
//!  cl 10.213.1.2 ── 10.213.1.1 gw 10.213.2.1 ── ap 10.213.2.2 (a), 10.213.2.3 (b)
//!  prober, swing      DNAT 10.213.0.10:443 → a         both simulators, one port
//! ```
//!
//! The prober and `swing apply` run in `cl` (a tokio runtime whose threads entered `cl`; the
//! binary through `ip netns exec`), the simulators in `ap`. swing reaches the gateway's
//! nftables through the plan's `netns`. Needs root, `ip`, `nft` and `conntrack`: without them
//! the test fails saying so (scripts/test installs them and runs as root).
//!
//! Must not: send traffic outside its namespaces, touch the root namespace's network
//! configuration, or leave a namespace, runtime thread or process behind (Drop guards, also
//! when an assertion fails).

#[path = "../src/commands/demo/kit.rs"]
mod kit;
#[path = "../providers/tests/nat_support/mod.rs"]
mod nat_support;
mod support;

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd as _;
use std::time::Duration;

use kit::{Lab, LabOptions, NatSetup, Scenario};
use nat_support::{Namespaces, in_ns, require_root_and_tools, sh};
use swing_providers::probe::{Prober, Route};

const VIP: &str = "10.213.0.10";
const VIP_PORT: u16 = 443;
const A: &str = "10.213.2.2";
const B: &str = "10.213.2.3";

/// A multi-thread tokio runtime built on a thread that entered network namespace `ns`: its
/// workers (and every thread they spawn) inherit it, so sockets its tasks open live there.
/// Shut down in the background on drop (a test may drop it from async code).
struct NsRuntime(Option<tokio::runtime::Runtime>);

impl NsRuntime {
    fn new(ns: &str) -> NsRuntime {
        let path = format!("/run/netns/{ns}");
        let rt = std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            // SAFETY: setns on a valid namespace fd changes only this thread's network namespace.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(
                rc,
                0,
                "setns into {path}: {}",
                std::io::Error::last_os_error()
            );
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
        })
        .join()
        .expect("runtime thread");
        NsRuntime(Some(rt))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("runtime").handle()
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Everything the test creates outside its own process memory. Field order = drop order:
/// the runtimes (simulators, prober) stop before their namespaces are deleted.
struct NatNet {
    ap_rt: NsRuntime,
    cl_rt: NsRuntime,
    ns: Namespaces,
    cl: String,
    gw: String,
}

impl NatNet {
    fn new() -> NatNet {
        let mut ns = Namespaces::new();
        let cl = ns.add("cl");
        let gw = ns.add("gw");
        let ap = ns.add("ap");
        for (peer, gw_if, peer_if, net) in [(&cl, "gc", "c0", "1"), (&ap, "ga", "a0", "2")] {
            sh(&[
                "ip", "-n", &gw, "link", "add", gw_if, "type", "veth", "peer", "name", peer_if,
                "netns", peer,
            ]);
            let gw_addr = format!("10.213.{net}.1/24");
            sh(&["ip", "-n", &gw, "addr", "add", &gw_addr, "dev", gw_if]);
            sh(&["ip", "-n", &gw, "link", "set", gw_if, "up"]);
            let addrs: &[&str] = if peer_if == "a0" {
                &["10.213.2.2/24", "10.213.2.3/24"]
            } else {
                &["10.213.1.2/24"]
            };
            for a in addrs {
                sh(&["ip", "-n", peer, "addr", "add", a, "dev", peer_if]);
            }
            sh(&["ip", "-n", peer, "link", "set", peer_if, "up"]);
            let via = format!("10.213.{net}.1");
            sh(&["ip", "-n", peer, "route", "add", "default", "via", &via]);
        }
        let (ok, _, err) = in_ns(&gw, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        assert!(ok, "enable forwarding in {gw}: {err}");
        let ap_rt = NsRuntime::new(&ap);
        let cl_rt = NsRuntime::new(&cl);
        NatNet {
            ap_rt,
            cl_rt,
            ns,
            cl,
            gw,
        }
    }

    /// Loads the gateway's ruleset: the site's DNAT rule for the VIP (no comment, predating
    /// swing) after a neighbour swing must leave alone.
    fn load_ruleset(&self, port: u16) {
        let script = format!(
            "table ip swing {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {VIP} tcp dport 22 counter dnat to {B}:22
    ip daddr {VIP} tcp dport {VIP_PORT} counter dnat to {A}:{port}
  }}
}}
"
        );
        let mut child = std::process::Command::new("ip")
            .args(["netns", "exec", &self.gw, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run nft");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(script.as_bytes())
            .expect("write nft script");
        let out = child.wait_with_output().expect("nft");
        assert!(
            out.status.success(),
            "nft -f failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The DNAT targets (`ip:port`) of the rules matching the VIP and `dport`, with comments.
    fn vip_rules(&self, dport: u16) -> Vec<(String, Option<String>)> {
        let (ok, out, err) = in_ns(
            &self.gw,
            &["nft", "-j", "list", "chain", "ip", "swing", "prerouting"],
        );
        assert!(ok, "nft list: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("nft JSON");
        let mut found = Vec::new();
        for rule in v["nftables"]
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|i| i.get("rule"))
        {
            let expr = rule["expr"].as_array().cloned().unwrap_or_default();
            let matches = |field: &str, want: serde_json::Value| {
                expr.iter().any(|e| {
                    e["match"]["left"]["payload"]["field"] == field && e["match"]["right"] == want
                })
            };
            if !(matches("daddr", VIP.into()) && matches("dport", dport.into())) {
                continue;
            }
            let target = expr
                .iter()
                .find_map(|e| e.get("dnat"))
                .map(|d| format!("{}:{}", d["addr"].as_str().unwrap_or("?"), d["port"]))
                .unwrap_or_default();
            found.push((target, rule["comment"].as_str().map(str::to_owned)));
        }
        found
    }

    /// Conntrack entries in the gateway of connections to the VIP that were sent to `ip`.
    fn conntrack_vip_to(&self, ip: &str, port: u16) -> u64 {
        let (_, _, err) = in_ns(
            &self.gw,
            &[
                "conntrack",
                "-L",
                "-p",
                "tcp",
                "--orig-dst",
                VIP,
                "--orig-port-dst",
                &VIP_PORT.to_string(),
                "--reply-src",
                ip,
                "--reply-port-src",
                &port.to_string(),
            ],
        );
        let idx = err
            .find(" flow entries have been shown")
            .unwrap_or_else(|| panic!("conntrack -L said: {err}"));
        err[..idx]
            .rsplit(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .expect("count")
    }
}

fn namespaces_listed() -> String {
    sh(&["ip", "netns", "list"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_nat_swings_the_vip_to_b_with_at_most_one_second_of_downtime() {
    require_root_and_tools(&["ip", "nft", "conntrack"]);
    let net = NatNet::new();
    let names = net.ns.names.clone();
    let dir = tempfile::tempdir().unwrap();

    // The simulators start on the runtime living in `ap`, on a and b's addresses.
    let options = LabOptions {
        addresses: Some((A.parse().unwrap(), B.parse().unwrap(), None)),
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
    let port = lab.port;
    net.load_ruleset(port);
    let a_target = format!("{A}:{port}");
    let b_target = format!("{B}:{port}");
    assert_eq!(net.vip_rules(VIP_PORT), vec![(a_target.clone(), None)]);

    let nat = NatSetup {
        public: SocketAddr::new(VIP.parse().unwrap(), VIP_PORT),
        table: "swing".into(),
        chain: "prerouting".into(),
        netns: Some(net.gw.clone()),
    };
    let plan = lab.write_plan(None, Some(&nat)).unwrap();

    // The client: the prober in `cl`, reaching the site through the VIP only.
    let mut cfg = lab.probe_config(Route::Address(VIP.parse::<IpAddr>().unwrap()));
    cfg.port = VIP_PORT;
    cfg.timeout = Duration::from_secs(1);
    let probe = {
        let _in_cl = net.cl_rt.handle().enter();
        Prober::start(cfg).expect("prober starts")
    };
    // Before the change, the client's connections through the VIP went to a.
    assert!(
        kit::wait_until(Duration::from_secs(10), || probe.finished() >= 3).await,
        "no probe finished: {}",
        probe.report().summary()
    );
    assert!(
        net.conntrack_vip_to(A, port) > 0,
        "the client's connections through the VIP must be tracked to a before the swing"
    );

    let cmd = support::swing_apply_command(&lab, &plan, Some(&net.cl));
    let run = support::run_apply(&lab, probe, cmd, Duration::from_secs(120)).await;
    // Exit 0, every step, both on the target version, b primary and a backup, backups with
    // the served checksum, the site served a → b, no secret in any output.
    support::assert_change_complete(&lab, &run);
    support::report_measurement(&lab, &run);
    assert!(
        run.probe.longest_outage() <= Duration::from_secs(1),
        "downtime {} ms > 1 s\n{}",
        run.probe.longest_outage_ms,
        run.explain()
    );

    // Exactly one rule for the VIP, pointing at b, marked by swing; the neighbour untouched.
    let plan_name = format!("lab-{}", Scenario::AsyncNat.name());
    assert_eq!(
        net.vip_rules(VIP_PORT),
        vec![(b_target, Some(format!("swing:{plan_name}")))],
        "{}",
        run.explain()
    );
    assert_eq!(net.vip_rules(22), vec![(format!("{B}:22"), None)]);
    // The old target's connections were flushed: nothing through the VIP is tracked to a
    // (the client's earlier connections to a would linger in TIME_WAIT otherwise).
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

    net.ap_rt
        .handle()
        .spawn(lab.shutdown())
        .await
        .expect("simulators stop");
    drop(net);
    let left = namespaces_listed();
    for n in &names {
        assert!(!left.contains(n.as_str()), "namespace {n} left behind");
    }
}
