//! End to end: asynchronous failover with a DNS switch. Two simulators, a real BIND `named`
//! (the providers' test harness), the real `swing apply` binary with `operator: sim`, and a
//! prober resolving the site through named with a TTL-honouring cache, as a client does.
//! Target (issue 7): downtime ≤ lowered TTL + 1 s; the TTL is restored afterwards.

#[path = "../src/commands/demo/kit.rs"]
mod kit;
mod support;
#[path = "../providers/tests/support_named/mod.rs"]
mod support_named;

use std::time::Duration;

use kit::{DNS_OLD_TTL, DNS_SWITCH_TTL, DnsSetup, Lab, LabOptions, SITE, Scenario};
use swing_providers::probe::Route;
use swing_schema::SecretValue;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_dns_swings_to_b_within_the_lowered_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::AsyncDns, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let a = lab.address("a").unwrap().to_string();
    let b = lab.address("b").unwrap().to_string();
    let named = support_named::Named::start(&[("access", DNS_OLD_TTL, "A", &a)]);
    let dns = DnsSetup {
        server: named.addr,
        key_name: support_named::KEY_NAME.into(),
        secret: SecretValue::new(support_named::KEY_SECRET),
    };
    let plan = lab.write_plan(Some(&dns), None).unwrap();
    let run = support::apply_with_probe(
        &lab,
        &plan,
        Route::Dns { server: named.addr },
        Duration::from_secs(180),
    )
    .await;
    support::assert_change_complete(&lab, &run);
    let limit = Duration::from_secs(u64::from(DNS_SWITCH_TTL) + 1);
    assert!(
        run.probe.longest_outage() <= limit,
        "downtime {} ms > {limit:?}\n{}",
        run.probe.longest_outage_ms,
        run.explain()
    );
    let answer = named.dig(SITE, "A");
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(answer[0].value, b, "the record points at b");
    assert_eq!(answer[0].ttl, DNS_OLD_TTL, "the TTL is restored");
    lab.shutdown().await;
}
