//! Test support for the NAT cells of the fault matrix: one network namespace this test
//! creates as the NAT gateway, holding a real nftables DNAT rule for the site's public
//! address (`10.213.0.10:443`, which exists only inside the namespace) pointing at the first
//! appliance. The appliances stay on loopback: the NAT steps only read and rewrite the rule
//! (and flush conntrack) inside the namespace, so no traffic goes through it. Faults: the
//! table deleted (missing table), and the namespace gone (every `nft` call fails).
//!
//! Owns: the namespace and its ruleset (deleted on Drop, also when the test panics, through
//! `nat_support::Namespaces`). Must not: touch the root namespace's network configuration.

#![allow(dead_code)] // the fault matrix uses some of it per cell

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::nat_support::{Namespaces, in_ns, sh};

/// The site's public address as clients would use it (inside the gateway only).
pub const VIP: &str = "10.213.0.10";
pub const VIP_PORT: u16 = 443;

pub struct NatGateway {
    pub gw: String,
    /// `ip:port` the rule points at before the change.
    first: String,
    _ns: Namespaces,
}

impl NatGateway {
    /// A gateway namespace whose DNAT rule sends the VIP to `first` (`ip:port`).
    pub fn start(first: &str) -> NatGateway {
        crate::nat_support::require_root_and_tools(&["ip", "nft", "conntrack"]);
        let mut ns = Namespaces::new();
        let gw = ns.add("fgw");
        let g = NatGateway {
            gw,
            first: first.to_owned(),
            _ns: ns,
        };
        g.load_ruleset();
        g
    }

    /// (Re)loads the table with the site's rule pointing at the first appliance.
    pub fn load_ruleset(&self) {
        let script = format!(
            "table ip swing {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr {VIP} tcp dport {VIP_PORT} counter dnat to {}
  }}
}}
",
            self.first
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.gw, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft");
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

    /// Fault: the table is gone.
    pub fn delete_table(&self) {
        let (ok, _, err) = in_ns(&self.gw, &["nft", "delete", "table", "ip", "swing"]);
        assert!(ok, "nft delete table: {err}");
    }

    /// Fault: the namespace is gone, so every `ip netns exec … nft` fails.
    pub fn remove_namespace(&self) {
        sh(&["ip", "netns", "del", &self.gw]);
    }

    /// Clears [`Self::remove_namespace`]: the namespace again, with the site's rule.
    pub fn restore_namespace(&self) {
        sh(&["ip", "netns", "add", &self.gw]);
        sh(&["ip", "-n", &self.gw, "link", "set", "lo", "up"]);
        self.load_ruleset();
    }

    /// The DNAT targets (`ip:port`) of the rules for the VIP; empty when the table is gone.
    pub fn vip_targets(&self) -> Vec<String> {
        let (ok, out, _) = in_ns(
            &self.gw,
            &["nft", "-j", "list", "chain", "ip", "swing", "prerouting"],
        );
        if !ok {
            return Vec::new();
        }
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let mut targets = Vec::new();
        for item in v["nftables"].as_array().into_iter().flatten() {
            let rule = &item["rule"];
            let Some(expr) = rule["expr"].as_array() else {
                continue;
            };
            let dport = expr.iter().any(|e| e["match"]["right"] == VIP_PORT);
            let dnat = expr.iter().find_map(|e| {
                let d = &e["dnat"];
                (!d.is_null())
                    .then(|| format!("{}:{}", d["addr"].as_str().unwrap_or("?"), d["port"]))
            });
            if let (true, Some(t)) = (dport, dnat) {
                targets.push(t);
            }
        }
        targets
    }
}
