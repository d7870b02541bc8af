//! The iptables NAT provider against real iptables (1.8, nf_tables backend) in network
//! namespaces this test creates, with real TCP traffic: `curl` to the virtual IP reaches
//! appliance A, after the swing B; the swing is one `iptables-restore` transaction; the NAT
//! conformance suite; `check_swing` without changing anything; clear errors. Needs root.
//!
//! Must not: send traffic outside the test's own namespaces or leave namespaces behind.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use swing_engine::provider::{ErrorKind, NatProvider};
use swing_providers::conformance::nat::{NatFixture, run_all};
use swing_providers::iptables::{ConntrackFlush, IptablesNat};
use swing_schema::plan::IptablesProvider;
use swing_testkit::netns::{A, B, Lab, Monitor, VIP, require_root_and_tools, wait_for};

const TOOLS: &[&str] = &["ip", "iptables-save", "iptables-restore", "nft"];

fn provider(lab: &Lab, chain: &str, plan: &str) -> IptablesNat {
    let cfg = IptablesProvider {
        table: "nat".into(),
        chain: chain.into(),
        netns: Some(lab.gw.clone()),
    };
    IptablesNat::new(&cfg, plan).expect("provider")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// The saved rules other than the site's (VIP:443).
fn neighbours(rules: &[String]) -> Vec<String> {
    rules
        .iter()
        .filter(|r| !(r.contains("-d 10.213.0.10/32") && r.contains("--dport 443 ")))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_follows_the_swing_made_in_one_iptables_restore_transaction() {
    let mut tools = TOOLS.to_vec();
    tools.extend(["curl", "conntrack"]);
    require_root_and_tools(&tools);
    let lab = Lab::with_iptables(true);
    let nat = provider(&lab, "PREROUTING", "ipt-test");
    let public = addr(VIP);

    assert_eq!(lab.curl_vip(), "appliance-a");
    let obs = nat.observe(public).await.expect("observe");
    assert_eq!(obs.target, Some(addr(A)));
    assert_eq!(obs.comment, None);
    let before = lab.iptables_rules();

    let mut held = lab.connect_vip();
    wait_for("a conntrack entry to A", Duration::from_secs(5), || {
        (lab.conntrack_count_from(A) > 0).then_some(())
    });

    // iptables-nft commits through nf_tables: `nft monitor` sees its transactions.
    let monitor = Monitor::start(&lab.gw);
    let start = monitor
        .position_after("delete table ip swt_probe")
        .expect("probe seen");
    nat.swing(public, addr(A), addr(B)).await.expect("swing");
    monitor.marker("swt_end");
    wait_for("the end marker", Duration::from_secs(10), || {
        monitor.position_after("delete table ip swt_end")
    });
    let lines = monitor.snapshot();
    let end = lines
        .iter()
        .position(|l| l.contains("add table ip swt_end"))
        .expect("end marker");
    let swing_events = &lines[start..end];
    let generations = swing_events
        .iter()
        .filter(|l| l.starts_with("# new generation"))
        .count();
    assert_eq!(
        generations, 1,
        "the swing must be one transaction; monitor saw: {swing_events:#?}"
    );
    let adds = swing_events
        .iter()
        .filter(|l| l.starts_with("add rule") || l.starts_with("insert rule"))
        .count();
    let deletes = swing_events
        .iter()
        .filter(|l| l.starts_with("delete rule"))
        .count();
    assert_eq!((adds, deletes), (1, 1), "{swing_events:#?}");

    // After: new connections reach B; the rule carries swing's comment, kept its place
    // (second), and its neighbours are untouched; iptables still lists the chain.
    assert_eq!(lab.curl_vip(), "appliance-b");
    let obs = nat.observe(public).await.expect("observe");
    assert_eq!(obs.target, Some(addr(B)));
    assert_eq!(obs.comment.as_deref(), Some("swing:ipt-test"));
    let after = lab.iptables_rules();
    assert_eq!(neighbours(&after), neighbours(&before));
    assert_eq!(after.len(), before.len());
    assert_eq!(
        after[1],
        "-A PREROUTING -d 10.213.0.10/32 -p tcp -m tcp --dport 443 -m comment --comment \
         \"swing:ipt-test\" -j DNAT --to-destination 10.213.3.2:8080",
        "{after:#?}"
    );

    // The old target's conntrack entries are gone, so the held connection no longer reaches A.
    match nat.last_conntrack_flush() {
        Some(ConntrackFlush::Deleted(n)) => assert!(n >= 1, "expected entries of A to be deleted"),
        other => panic!("conntrack flush: {other:?}"),
    }
    assert_eq!(lab.conntrack_count_from(A), 0);
    held.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let _ = held.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n");
    let mut got = String::new();
    let _ = held.read_to_string(&mut got);
    assert!(
        !got.contains("appliance-a"),
        "the held connection still reached A after the flush: {got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_against_real_iptables() {
    require_root_and_tools(TOOLS);
    let lab = Lab::with_iptables(false);
    let nat = provider(&lab, "PREROUTING", "ipt-conf").with_conntrack_flush(false);
    let fixture = NatFixture {
        public: addr(VIP),
        a: addr(A),
        b: addr(B),
        unknown_public: addr("10.213.0.99:443"),
        expect_comment: Some("swing:ipt-conf".into()),
    };
    if let Err(e) = run_all(&nat, &fixture).await {
        panic!("{e}");
    }
    assert_eq!(nat.last_conntrack_flush(), Some(ConntrackFlush::Disabled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_swing_proves_the_swing_without_making_it() {
    require_root_and_tools(TOOLS);
    let lab = Lab::with_iptables(false);
    let public = addr(VIP);
    let before = lab.iptables_rules();

    provider(&lab, "PREROUTING", "ipt-check")
        .check_swing(public, addr(B))
        .await
        .expect("the swing would be accepted");
    assert_eq!(
        lab.iptables_rules(),
        before,
        "check_swing changed the table"
    );

    let e = provider(&lab, "NOSUCH", "ipt-check")
        .check_swing(public, addr(B))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(
        e.message.contains("`NOSUCH`") && e.message.contains("`nat`"),
        "{e}"
    );
    let e = provider(&lab, "PREROUTING", "ipt-check")
        .check_swing(addr("10.213.0.99:443"), addr(B))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(lab.iptables_rules(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_missing_chain_netns_and_ambiguous_rules() {
    require_root_and_tools(TOOLS);
    let lab = Lab::with_iptables(false);
    let public = addr(VIP);

    let e = provider(&lab, "NOSUCH", "errs")
        .observe(public)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let cfg = IptablesProvider {
        table: "nat".into(),
        chain: "PREROUTING".into(),
        netns: Some(format!("{}-missing", lab.gw)),
    };
    let e = IptablesNat::new(&cfg, "errs")
        .expect("provider")
        .observe(public)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("-missing"), "{e}");

    // A second rule for the same VIP:port makes the match ambiguous: refuse, change nothing.
    swing_testkit::netns::iptables_load(
        &lab.gw,
        "*nat\n-A PREROUTING -d 10.213.0.10/32 -p tcp --dport 443 -j DNAT --to-destination 10.213.3.2:8080\nCOMMIT\n",
    );
    let before = lab.iptables_rules();
    let e = provider(&lab, "PREROUTING", "errs")
        .swing(public, addr(A), addr(B))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert!(e.message.contains("2 DNAT rules"), "{e}");
    assert_eq!(lab.iptables_rules(), before);
}

/// The reverse mix-up: a native nft rule in iptables' chain makes iptables unable to read the
/// table; the provider says so (and which provider type reads it) instead of "no rule".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_iptables_cannot_read_is_an_error_naming_nftables() {
    require_root_and_tools(TOOLS);
    let lab = Lab::with_iptables(false);
    lab.nft_script(
        "add rule ip nat PREROUTING ip daddr 10.213.0.12 tcp dport 443 dnat to 10.213.3.2:8080\n",
    );
    let nat = provider(&lab, "PREROUTING", "mixed");
    let e = nat.observe(addr(VIP)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
    assert!(
        e.message.contains("table `nat`") && e.message.contains("`type: nftables`"),
        "{e}"
    );
    let e = nat.swing(addr(VIP), addr(A), addr(B)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid, "{e}");
}

/// IPv6: an IPv6 `public` is read with `ip6tables-save` and swung with `ip6tables-restore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_for_ipv6_through_ip6tables() {
    require_root_and_tools(&["ip", "ip6tables", "ip6tables-save", "ip6tables-restore"]);
    let mut ns = swing_testkit::netns::Namespaces::new();
    let gw = ns.add("ip6t");
    for rule in [
        ["fd00:213::10/128", "443", "[fd00:213:2::2]:8080"],
        ["fd00:213::10/128", "22", "[fd00:213:3::2]:22"],
    ] {
        let (ok, _, err) = swing_testkit::netns::in_ns(
            &gw,
            &[
                "ip6tables",
                "-t",
                "nat",
                "-A",
                "PREROUTING",
                "-d",
                rule[0],
                "-p",
                "tcp",
                "--dport",
                rule[1],
                "-j",
                "DNAT",
                "--to-destination",
                rule[2],
            ],
        );
        assert!(ok, "ip6tables: {err}");
    }
    let cfg = IptablesProvider {
        table: "nat".into(),
        chain: "PREROUTING".into(),
        netns: Some(gw.clone()),
    };
    let nat = IptablesNat::new(&cfg, "ip6t-conf")
        .expect("provider")
        .with_conntrack_flush(false);
    let fixture = NatFixture {
        public: addr("[fd00:213::10]:443"),
        a: addr("[fd00:213:2::2]:8080"),
        b: addr("[fd00:213:3::2]:8080"),
        unknown_public: addr("[fd00:213::11]:443"),
        expect_comment: Some("swing:ip6t-conf".into()),
    };
    if let Err(e) = run_all(&nat, &fixture).await {
        panic!("{e}");
    }
    // The neighbour (port 22) is untouched.
    let (ok, saved, err) = swing_testkit::netns::in_ns(&gw, &["ip6tables-save", "-t", "nat"]);
    assert!(ok, "{err}");
    assert!(
        saved.contains("--dport 22 -j DNAT --to-destination [fd00:213:3::2]:22"),
        "{saved}"
    );
}
