//! End to end: hardware migration old → new with a DNS switch (real `named`). The new
//! appliance is upgraded, gets the certificate and the restored backup, takes the site over;
//! the old one is decommissioned last. Target: downtime ≤ lowered TTL + 1 s.

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
async fn migration_moves_the_site_to_the_new_appliance() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::Migration, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let old = lab.address("old").unwrap().to_string();
    let new = lab.address("new").unwrap().to_string();
    let named = support_named::Named::start(&[("access", DNS_OLD_TTL, "A", &old)]);
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
        "downtime {} ms\n{}",
        run.probe.longest_outage_ms,
        run.explain()
    );
    let answer = named.dig(SITE, "A");
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(
        answer[0].value, new,
        "the record points at the new appliance"
    );
    lab.shutdown().await;
}
