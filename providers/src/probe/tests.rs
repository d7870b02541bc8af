//! Prober against two in-process simulators sharing an IP on loopback: the shared IP moves
//! from A to B through the simulator's `/_sim/shared-ip` automation, and the prober must
//! see A, then B, with a bounded gap.

use super::*;

use std::net::Ipv4Addr;

use swing_sim::{SimConfig, SimHandle, Simulator};

/// A loopback /24 unlikely to be used by another test running at the same time.
fn loopback_base() -> [u8; 3] {
    [127, fastrand::u8(64..250), fastrand::u8(1..250)]
}

fn ip(base: [u8; 3], last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(base[0], base[1], base[2], last))
}

/// Two simulators on `.11` and `.12` of `base` with the SAME port (a shared IP lives on the
/// appliance's port), A holding the shared IP `.10`.
async fn pair(dir: &std::path::Path) -> (SimHandle, SimHandle, IpAddr) {
    for _ in 0..20 {
        let base = loopback_base();
        let shared = ip(base, 10);
        let mut a = SimConfig::new("a", dir);
        a.listen = SocketAddr::new(ip(base, 11), 0);
        a.shared_ip = Some(shared);
        let Ok(sa) = Simulator::start(a).await else {
            continue;
        };
        let mut b = SimConfig::new("b", dir);
        b.listen = SocketAddr::new(ip(base, 12), sa.addr().port());
        match Simulator::start(b).await {
            Ok(sb) => return (sa, sb, shared),
            Err(_) => sa.shutdown().await,
        }
    }
    panic!("could not start two simulators on one port");
}

async fn sim_post(ca: &std::path::Path, url: &str, body: serde_json::Value) {
    let pem = std::fs::read(ca).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .no_proxy()
        .build()
        .unwrap();
    let resp = http.post(url).json(&body).send().await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
}

async fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sees_a_then_b_with_a_bounded_gap_when_the_shared_ip_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, shared) = pair(dir.path()).await;
    let mut cfg = ProbeConfig::new(
        "access.example.test",
        a.addr().port(),
        Route::Address(shared),
    );
    cfg.ca_file = Some(a.ca_pem_path());
    cfg.credentials = Some(Credentials {
        client_id: "swing-sim".into(),
        client_secret: SecretValue::new("sim-secret"),
    });
    cfg.labels.insert(a.appliance_id().to_string(), "a".into());
    cfg.labels.insert(b.appliance_id().to_string(), "b".into());
    let probe = Prober::start(cfg).unwrap();

    // A serves the site.
    wait_until("A to answer", Duration::from_secs(10), || {
        probe
            .last()
            .is_some_and(|r| r.appliance.as_deref() == Some(a.appliance_id()))
    })
    .await;
    let before = probe.finished();
    wait_until("more probes", Duration::from_secs(10), || {
        probe.finished() >= before + 5
    })
    .await;

    // The swing, as an operator would click it: off on A, on at B.
    let body_off = serde_json::json!({ "address": shared, "enabled": false });
    let body_on = serde_json::json!({ "address": shared, "enabled": true });
    sim_post(
        &a.ca_pem_path(),
        &format!("{}/_sim/shared-ip", a.url()),
        body_off,
    )
    .await;
    wait_until("a failed probe", Duration::from_secs(10), || {
        probe.last().is_some_and(|r| !r.ok)
    })
    .await;
    sim_post(
        &b.ca_pem_path(),
        &format!("{}/_sim/shared-ip", b.url()),
        body_on,
    )
    .await;

    wait_until("B to answer", Duration::from_secs(10), || {
        probe
            .last()
            .is_some_and(|r| r.appliance.as_deref() == Some(b.appliance_id()))
    })
    .await;
    let n = probe.finished();
    wait_until("more probes", Duration::from_secs(10), || {
        probe.finished() >= n + 5
    })
    .await;
    let report = probe.stop().await;

    report.check_served_by(&["a", "b"]).unwrap();
    assert!(
        report.failures >= 1,
        "the gap between off and on must be seen: {report:?}"
    );
    assert_eq!(report.outages.len(), 1, "{}", report.summary());
    assert!(report.longest_outage() > Duration::ZERO);
    assert!(
        report.longest_outage() < Duration::from_secs(3),
        "{}",
        report.summary()
    );
    // One token from A, one from B after A's token got a 401 at B.
    assert_eq!(report.tokens_fetched, 2, "{}", report.summary());
    assert_eq!(b.state().tokens_issued, 1);
    assert!(report.summary().contains("a → b"));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn refuses_an_ip_as_site_and_a_missing_ca_file() {
    let cfg = ProbeConfig::new("127.0.0.1", 443, Route::Address(ip([127, 0, 0], 1)));
    assert!(matches!(Prober::start(cfg), Err(ProbeError::Invalid(_))));
    let mut cfg = ProbeConfig::new("site.test", 443, Route::Address(ip([127, 0, 0], 1)));
    cfg.ca_file = Some("/nonexistent/ca.pem".into());
    assert!(matches!(Prober::start(cfg), Err(ProbeError::CaFile { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_a_failed_probe() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let a = Simulator::start(SimConfig::new("a", dir.path()))
        .await
        .unwrap();
    // A CA that did not sign A's certificate.
    let foreign = Simulator::start(SimConfig::new("x", other.path()))
        .await
        .unwrap();
    let mut cfg = ProbeConfig::new(
        "access.example.test",
        a.addr().port(),
        Route::Address(a.addr().ip()),
    );
    cfg.ca_file = Some(foreign.ca_pem_path());
    let probe = Prober::start(cfg).unwrap();
    wait_until("three probes", Duration::from_secs(10), || {
        probe.finished() >= 3
    })
    .await;
    let report = probe.stop().await;
    assert_eq!(report.failures, report.probes, "{}", report.summary());
    assert!(
        report.failure_list[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("connect"),
        "{:?}",
        report.failure_list[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_dns_the_client_follows_the_record_within_its_ttl() {
    use crate::dns_server::{EmbeddedRecord, generate_tsig_secret, start_embedded};
    use crate::rfc2136::{Rfc2136Config, Rfc2136Provider, TsigKey};
    use swing_engine::provider::DnsProvider;

    let dir = tempfile::tempdir().unwrap();
    let (a, b, _) = pair(dir.path()).await;
    let key = TsigKey {
        name: "probe-test".into(),
        algorithm: swing_schema::TsigAlgorithm::HmacSha256,
        secret: generate_tsig_secret().unwrap(),
    };
    let site = "access.example.test";
    let ttl = 1;
    let dns = start_embedded(
        "example.test",
        &[EmbeddedRecord::new(site, a.addr().ip(), ttl)],
        key.clone(),
    )
    .await
    .unwrap();
    let mut cfg = ProbeConfig::new(site, a.addr().port(), Route::Dns { server: dns.addr });
    cfg.ca_file = Some(a.ca_pem_path());
    cfg.credentials = Some(Credentials {
        client_id: "swing-sim".into(),
        client_secret: SecretValue::new("sim-secret"),
    });
    cfg.labels.insert(a.appliance_id().to_string(), "a".into());
    cfg.labels.insert(b.appliance_id().to_string(), "b".into());
    let probe = Prober::start(cfg).unwrap();
    wait_until("A to answer through DNS", Duration::from_secs(10), || {
        probe
            .last()
            .is_some_and(|r| r.appliance.as_deref() == Some(a.appliance_id()))
    })
    .await;

    let provider = Rfc2136Provider::new(Rfc2136Config {
        server: dns.addr.to_string(),
        zone: "example.test".into(),
        tsig: Some(key),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let swung = Instant::now();
    provider
        .swing(site, a.addr().ip(), b.addr().ip(), ttl)
        .await
        .unwrap();
    wait_until("B to answer through DNS", Duration::from_secs(10), || {
        probe
            .last()
            .is_some_and(|r| r.appliance.as_deref() == Some(b.appliance_id()))
    })
    .await;
    // The client's cache held A for at most the TTL (plus one probe interval and slack).
    assert!(
        swung.elapsed() < Duration::from_millis(u64::from(ttl) * 1000 + 800),
        "{:?}",
        swung.elapsed()
    );
    let report = probe.stop().await;
    // Both appliances serve throughout: no outage, a then b.
    assert_eq!(report.failures, 0, "{}", report.summary());
    report.check_served_by(&["a", "b"]).unwrap();
    dns.shutdown().await;
}
