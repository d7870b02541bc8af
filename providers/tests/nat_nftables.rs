//! The nftables NAT provider against real nftables in network namespaces this test creates,
//! with real TCP traffic: `curl` to the virtual IP reaches appliance A, after the swing B; the
//! swing is one nft transaction; the conformance suite; clear errors. Needs root.
//!
//! Must not: send traffic outside the test's own namespaces or leave namespaces behind.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use swing_engine::provider::{ErrorKind, NatProvider};
use swing_providers::conformance::nat::{NatFixture, run_all};
use swing_providers::nftables::{ConntrackFlush, NftablesNat};
use swing_schema::plan::NftablesProvider;
use swing_testkit::netns::{A, B, Lab, Monitor, VIP, require_root_and_tools, wait_for};

fn provider(lab: &Lab, plan: &str) -> NftablesNat {
    let cfg = NftablesProvider {
        table: "swing".into(),
        chain: "prerouting".into(),
        family: "ip".into(),
        netns: Some(lab.gw.clone()),
    };
    NftablesNat::new(&cfg, plan).expect("provider")
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// The rules other than the one for the VIP:443, without their counters.
fn neighbours(rules: &[Value]) -> Vec<Value> {
    rules
        .iter()
        .filter(|r| {
            let e = r["expr"].to_string();
            !(e.contains("\"10.213.0.10\"") && e.contains("\"right\":443"))
        })
        .map(|r| {
            let mut r = r.clone();
            if let Some(expr) = r["expr"].as_array_mut() {
                expr.retain(|e| e.get("counter").is_none());
            }
            r
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_follows_the_swing_made_in_one_transaction() {
    require_root_and_tools(&["ip", "nft", "curl", "conntrack"]);
    let lab = Lab::new(true);
    let nat = provider(&lab, "nat-test");
    let public = addr(VIP);

    // Before: the site's rule (no comment) sends the VIP to A, and real traffic gets there.
    assert_eq!(lab.curl_vip(), "appliance-a");
    let obs = nat.observe(public).await.expect("observe");
    assert_eq!(obs.target, Some(addr(A)));
    assert_eq!(obs.comment, None);
    let before = lab.rules();
    let old_handle = nat.find_rules(public).await.expect("find")[0].handle;

    // A long-lived connection to A through the NAT (like a Jump Client's).
    let mut held = lab.connect_vip();
    wait_for("a conntrack entry to A", Duration::from_secs(5), || {
        (lab.conntrack_count_from(A) > 0).then_some(())
    });

    let monitor = Monitor::start(&lab.gw);
    let start = monitor
        .position_after("delete table ip swt_probe")
        .expect("probe seen");
    nat.swing(public, addr(A), addr(B)).await.expect("swing");
    monitor.marker("swt_end");
    wait_for("the end marker", Duration::from_secs(10), || {
        monitor.position_after("delete table ip swt_end")
    });

    // One transaction: between the probe and the end marker exactly one new generation, made of
    // exactly one `add rule` (the rewritten rule) and one `delete rule` (the old handle).
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
    let adds: Vec<&String> = swing_events
        .iter()
        .filter(|l| l.starts_with("add rule"))
        .collect();
    let deletes: Vec<&String> = swing_events
        .iter()
        .filter(|l| l.starts_with("delete rule"))
        .collect();
    assert_eq!(
        generations, 1,
        "the swing must be one nft transaction; monitor saw: {swing_events:#?}"
    );
    assert_eq!(adds.len(), 1, "{swing_events:#?}");
    assert_eq!(deletes.len(), 1, "{swing_events:#?}");
    assert!(
        adds[0].contains("dnat to 10.213.3.2:8080")
            && adds[0].contains("comment \"swing:nat-test\""),
        "{adds:?}"
    );
    assert!(
        deletes[0].ends_with(&format!("handle {old_handle}")),
        "{deletes:?}"
    );

    // After: new connections reach B; the rule carries swing's comment; neighbours untouched
    // and the rule kept its place (second in the chain).
    assert_eq!(lab.curl_vip(), "appliance-b");
    let obs = nat.observe(public).await.expect("observe");
    assert_eq!(obs.target, Some(addr(B)));
    assert_eq!(obs.comment.as_deref(), Some("swing:nat-test"));
    let after = lab.rules();
    assert_eq!(neighbours(&after), neighbours(&before));
    assert_eq!(after.len(), before.len());
    assert_eq!(
        after[1]["comment"], "swing:nat-test",
        "the swung rule must stay in its position: {after:#?}"
    );

    // The old target's conntrack entries are gone, so the held connection no longer reaches A:
    // its next packet is NATed afresh to B, which knows no such connection.
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
async fn conformance_suite_passes_against_real_nftables() {
    require_root_and_tools(&["ip", "nft"]);
    let lab = Lab::new(false);
    let nat = provider(&lab, "nat-conf").with_conntrack_flush(false);
    let fixture = NatFixture {
        public: addr(VIP),
        a: addr(A),
        b: addr(B),
        unknown_public: addr("10.213.0.99:443"),
        expect_comment: Some("swing:nat-conf".into()),
    };
    if let Err(e) = run_all(&nat, &fixture).await {
        panic!("{e}");
    }
    assert_eq!(nat.last_conntrack_flush(), Some(ConntrackFlush::Disabled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_missing_table_chain_netns_and_ambiguous_rules() {
    require_root_and_tools(&["ip", "nft"]);
    let lab = Lab::new(false);
    let public = addr(VIP);
    let mk = |table: &str, chain: &str, netns: &str| {
        let cfg = NftablesProvider {
            table: table.into(),
            chain: chain.into(),
            family: "ip".into(),
            netns: Some(netns.into()),
        };
        NftablesNat::new(&cfg, "errs").expect("provider")
    };

    let e = mk("nosuch", "prerouting", &lab.gw)
        .observe(public)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("ip nosuch prerouting"), "{e}");
    let e = mk("swing", "nosuch", &lab.gw)
        .swing(public, addr(A), addr(B))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let missing_ns = format!("{}-missing", lab.gw);
    let e = mk("swing", "prerouting", &missing_ns)
        .observe(public)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains(&missing_ns), "{e}");

    // A second rule for the same VIP:port makes the match ambiguous: refuse, change nothing.
    lab.nft_script(
        "add rule ip swing prerouting ip daddr 10.213.0.10 tcp dport 443 dnat to 10.213.3.2:8080\n",
    );
    let before = lab.rules();
    let e = mk("swing", "prerouting", &lab.gw)
        .swing(public, addr(A), addr(B))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert!(e.message.contains("2 DNAT rules"), "{e}");
    assert_eq!(lab.rules(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_for_an_inet_table_with_ipv4_and_ipv6() {
    require_root_and_tools(&["ip", "nft"]);
    let mut ns = swing_testkit::netns::Namespaces::new();
    let gw = ns.add("inet");
    let (ok, _, err) = swing_testkit::netns::in_ns(
        &gw,
        &[
            "nft",
            "add table inet edge
             add chain inet edge pre { type nat hook prerouting priority dstnat; policy accept; }
             add rule inet edge pre ip daddr 10.213.0.10 tcp dport 443 dnat ip to 10.213.2.2:8080
             add rule inet edge pre ip6 daddr fd00:213::10 tcp dport 443 dnat ip6 to [fd00:213:2::2]:8080",
        ],
    );
    assert!(ok, "nft setup: {err}");
    let cfg = NftablesProvider {
        table: "edge".into(),
        chain: "pre".into(),
        family: "inet".into(),
        netns: Some(gw.clone()),
    };
    let nat = NftablesNat::new(&cfg, "inet-conf")
        .expect("provider")
        .with_conntrack_flush(false);
    let v4 = NatFixture {
        public: addr("10.213.0.10:443"),
        a: addr("10.213.2.2:8080"),
        b: addr("10.213.3.2:8080"),
        unknown_public: addr("10.213.0.10:80"),
        expect_comment: Some("swing:inet-conf".into()),
    };
    let v6 = NatFixture {
        public: addr("[fd00:213::10]:443"),
        a: addr("[fd00:213:2::2]:8080"),
        b: addr("[fd00:213:3::2]:8080"),
        unknown_public: addr("[fd00:213::11]:443"),
        expect_comment: Some("swing:inet-conf".into()),
    };
    for f in [v4, v6] {
        if let Err(e) = run_all(&nat, &f).await {
            panic!("{}: {e}", f.public);
        }
    }
    // The IPv6 rule stayed an IPv6 DNAT (`dnat ip6 to`) after being rewritten twice.
    let (ok, listing, err) =
        swing_testkit::netns::in_ns(&gw, &["nft", "list", "chain", "inet", "edge", "pre"]);
    assert!(ok, "{err}");
    assert!(
        listing.contains("dnat ip6 to [fd00:213:2::2]:8080"),
        "{listing}"
    );
    assert!(listing.contains("dnat ip to 10.213.2.2:8080"), "{listing}");
}

/// A rule written by iptables (iptables-nft: an `xt` DNAT target nft shows without its
/// address) is recognised, and refused before anything is touched, naming where it is: nft
/// rewriting it would leave iptables unable to list the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_written_by_iptables_is_refused_naming_table_and_chain_and_left_alone() {
    require_root_and_tools(&["ip", "nft", "iptables-save", "iptables-restore"]);
    let lab = Lab::with_iptables(false);
    let public = addr(VIP);
    let cfg = NftablesProvider {
        table: "nat".into(),
        chain: "PREROUTING".into(),
        family: "ip".into(),
        netns: Some(lab.gw.clone()),
    };
    let nat = NftablesNat::new(&cfg, "xt").expect("provider");
    let before = lab.iptables_rules();
    let refused = |what: &str, e: swing_engine::provider::ProviderError| {
        assert_eq!(e.kind, ErrorKind::Invalid, "{what}: {e}");
        for part in [
            "chain `ip nat PREROUTING`",
            "(handle ",
            "written by iptables",
            "`type: iptables`",
        ] {
            assert!(e.message.contains(part), "{what}: `{part}` missing in: {e}");
        }
    };
    refused("observe", nat.observe(public).await.unwrap_err());
    refused(
        "swing",
        nat.swing(public, addr(A), addr(B)).await.unwrap_err(),
    );
    refused(
        "check_swing",
        nat.check_swing(public, addr(B)).await.unwrap_err(),
    );
    // Nothing changed, and iptables can still list the chain (iptables_rules asserts it).
    assert_eq!(lab.iptables_rules(), before);
    // A public address no rule matches is still "no rule", not an error.
    let obs = nat.observe(addr("10.213.0.99:443")).await.expect("observe");
    assert_eq!(obs.target, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_swing_runs_the_transaction_through_nft_check_without_committing() {
    require_root_and_tools(&["ip", "nft"]);
    let lab = Lab::new(false);
    let public = addr(VIP);
    let before = lab.rules();
    provider(&lab, "check")
        .check_swing(public, addr(B))
        .await
        .expect("the swing would be accepted");
    assert_eq!(lab.rules(), before, "check_swing changed the chain");

    let cfg = NftablesProvider {
        table: "swing".into(),
        chain: "nosuch".into(),
        family: "ip".into(),
        netns: Some(lab.gw.clone()),
    };
    let e = NftablesNat::new(&cfg, "check")
        .expect("provider")
        .check_swing(public, addr(B))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("ip swing nosuch"), "{e}");
    let e = provider(&lab, "check")
        .check_swing(addr("10.213.0.99:443"), addr(B))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(lab.rules(), before);
}

/// How many `nft` processes a swing and an observe start, counted by a wrapper that logs each
/// run and then executes the real nft: a swing reads once and writes once (`--echo` reports
/// the committed rule), and the one read-back is the engine's observe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swing_runs_nft_twice_and_an_observe_once() {
    use std::os::unix::fs::PermissionsExt;
    require_root_and_tools(&["ip", "nft"]);
    let lab = Lab::new(false);
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("nft.log");
    let wrapper = dir.path().join("nft-counting");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec nft \"$@\"\n",
            log.display()
        ),
    )
    .expect("write wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let nat = provider(&lab, "count")
        .with_conntrack_flush(false)
        .with_nft(wrapper.display().to_string());
    let runs = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    nat.swing(addr(VIP), addr(A), addr(B)).await.expect("swing");
    let swing_runs = runs();
    assert_eq!(swing_runs.len(), 2, "{swing_runs:#?}");
    assert!(swing_runs[0].starts_with("-j list chain"), "{swing_runs:?}");
    assert_eq!(swing_runs[1], "-e -j -f -");
    let obs = nat.observe(addr(VIP)).await.expect("observe");
    assert_eq!(obs.target, Some(addr(B)));
    assert_eq!(obs.comment.as_deref(), Some("swing:count"));
    assert_eq!(runs().len(), 3);
}
