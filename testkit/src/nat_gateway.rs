//! Test support for the NAT cells of the fault matrix: one network namespace this test
//! creates as the NAT gateway, holding a real nftables DNAT rule for the site's public
//! address (`10.213.0.10:443`, which exists only inside the namespace) pointing at the first
//! appliance. The appliances stay on loopback: the NAT steps only read and rewrite the rule
//! (and flush conntrack) inside the namespace, so no traffic goes through it. Faults: the
//! table deleted (missing table), and the namespace gone (every `nft` call fails).
//!
//! Owns: the namespace and its ruleset (deleted on Drop, also when the test panics, through
//! [`crate::netns::Namespaces`]). Must not: touch the root namespace's network configuration.

use crate::netns::{Namespaces, dnat_target, in_ns, nft_load, prerouting_rules, sh};

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
        crate::netns::require_root_and_tools(&["ip", "nft", "conntrack"]);
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
        nft_load(&self.gw, &script);
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
        let Ok(rules) = prerouting_rules(&self.gw) else {
            return Vec::new();
        };
        rules
            .iter()
            .filter(|rule| {
                rule["expr"]
                    .as_array()
                    .is_some_and(|expr| expr.iter().any(|e| e["match"]["right"] == VIP_PORT))
            })
            .filter_map(dnat_target)
            .collect()
    }
}
