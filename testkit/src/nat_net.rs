//! The NAT scenario's network for the end-to-end tests and benchmark: namespaces this test process creates, real
//! nftables in the gateway, and tokio runtimes whose threads live inside the namespaces.
//!
//! Topology (namespaces `swt-<pid>-<n>-{cl,gw,ap}`, addresses that exist only inside them):
//!
//! ```text
//!  cl 10.213.1.2 ── 10.213.1.1 gw 10.213.2.1 ── ap 10.213.2.2 (a), 10.213.2.3 (b)
//!  prober, swing      DNAT 10.213.0.10:443 → a         both simulators, one port
//! ```
//!
//! The prober and `swing apply` run in `cl` (a runtime whose threads entered `cl`; the binary
//! through `ip netns exec`), the simulators in `ap`; swing reaches the gateway's nftables
//! through the plan's `netns`.
//!
//! Owns: namespace and runtime lifecycle (Drop guards, also when an assertion fails), the
//! gateway's ruleset (written with nft, or with iptables for the `type: iptables` variant),
//! reading rules and conntrack entries back. Must not: send traffic
//! outside its namespaces or touch the root namespace's network configuration.

use std::os::fd::AsRawFd as _;

use crate::netns::{
    Namespaces, conntrack_count, dnat_target, in_ns, iptables_load, iptables_rules, nft_load,
    prerouting_rules, sh,
};

pub const VIP: &str = "10.213.0.10";
pub const VIP_PORT: u16 = 443;
pub const A: &str = "10.213.2.2";
pub const B: &str = "10.213.2.3";

/// A multi-thread tokio runtime built on a thread that entered network namespace `ns`: its
/// workers (and every thread they spawn) inherit it, so sockets its tasks open live there.
/// Shut down in the background on drop (a test may drop it from async code).
pub struct NsRuntime(Option<tokio::runtime::Runtime>);

impl NsRuntime {
    pub fn new(ns: &str) -> NsRuntime {
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

    pub fn handle(&self) -> &tokio::runtime::Handle {
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
pub struct NatNet {
    pub ap_rt: NsRuntime,
    pub cl_rt: NsRuntime,
    pub ns: Namespaces,
    pub cl: String,
    pub gw: String,
}

impl NatNet {
    /// Creates the namespaces, the links and the runtimes.
    #[allow(
        clippy::new_without_default,
        reason = "building it creates namespaces: not a default value"
    )]
    pub fn new() -> NatNet {
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
    pub fn load_ruleset(&self, port: u16) {
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
        nft_load(&self.gw, &script);
    }

    /// The same two rules written by iptables, in its `nat PREROUTING` (iptables-nft: nft
    /// shows the DNAT as an `xt` target).
    pub fn load_iptables(&self, port: u16) {
        let batch = format!(
            "*nat
-A PREROUTING -d {VIP}/32 -p tcp -m tcp --dport 22 -j DNAT --to-destination {B}:22
-A PREROUTING -d {VIP}/32 -p tcp -m tcp --dport {VIP_PORT} -j DNAT --to-destination {A}:{port}
COMMIT
"
        );
        iptables_load(&self.gw, &batch);
    }

    /// `iptables-save -t nat` rules of the gateway (`-A …` lines).
    pub fn iptables_rules(&self) -> Vec<String> {
        iptables_rules(&self.gw, "nat")
    }

    /// Like [`Self::vip_rules`], read from `iptables-save`: the `--to-destination` and
    /// `--comment` of the rules matching the VIP and `dport`.
    pub fn vip_iptables_rules(&self, dport: u16) -> Vec<(String, Option<String>)> {
        let value_after = |words: &[&str], opt: &str| {
            let at = words.iter().position(|w| *w == opt)?;
            words.get(at + 1).map(|v| v.trim_matches('"').to_owned())
        };
        self.iptables_rules()
            .iter()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let vip = format!("{VIP}/32");
                let ours = value_after(&words, "-d").as_deref() == Some(vip.as_str())
                    && value_after(&words, "--dport") == Some(dport.to_string());
                ours.then(|| {
                    (
                        value_after(&words, "--to-destination").unwrap_or_default(),
                        value_after(&words, "--comment"),
                    )
                })
            })
            .collect()
    }

    /// The DNAT targets (`ip:port`) of the rules matching the VIP and `dport`, with comments.
    pub fn vip_rules(&self, dport: u16) -> Vec<(String, Option<String>)> {
        let rules = prerouting_rules(&self.gw).unwrap_or_else(|e| panic!("nft list: {e}"));
        let mut found = Vec::new();
        for rule in &rules {
            let expr = rule["expr"].as_array().cloned().unwrap_or_default();
            let matches = |field: &str, want: serde_json::Value| {
                expr.iter().any(|e| {
                    e["match"]["left"]["payload"]["field"] == field && e["match"]["right"] == want
                })
            };
            if !(matches("daddr", VIP.into()) && matches("dport", dport.into())) {
                continue;
            }
            let target = dnat_target(rule).unwrap_or_default();
            found.push((target, rule["comment"].as_str().map(str::to_owned)));
        }
        found
    }

    /// Conntrack entries in the gateway of connections to the VIP that were sent to `ip`.
    pub fn conntrack_vip_to(&self, ip: &str, port: u16) -> u64 {
        conntrack_count(
            &self.gw,
            &[
                "--orig-dst",
                VIP,
                "--orig-port-dst",
                &VIP_PORT.to_string(),
                "--reply-src",
                ip,
                "--reply-port-src",
                &port.to_string(),
            ],
        )
    }
}

/// `ip netns list`: for checking that no namespace was left behind.
pub fn namespaces_listed() -> String {
    sh(&["ip", "netns", "list"])
}
