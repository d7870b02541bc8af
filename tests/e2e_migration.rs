//! End to end: hardware migration old → new with a DNS switch (real `named`). The new
//! appliance is upgraded, gets old's certificate and the restored backup, takes the site over;
//! the decommission gate of old comes last. Target: downtime ≤ lowered TTL + 1 s.

#[path = "../src/commands/demo/kit.rs"]
mod kit;
mod support;
#[path = "../providers/tests/support_named/mod.rs"]
mod support_named;

use std::time::Duration;

use kit::{DNS_OLD_TTL, DNS_SWITCH_TTL, DnsSetup, Lab, LabOptions, SITE, Scenario, TARGET_VERSION};
use swing_providers::probe::Route;
use swing_schema::SecretValue;

/// SHA-256 of the leaf an appliance serves by default (the simulator's own record).
fn default_leaf(lab: &Lab, name: &str) -> String {
    let st = lab.sim(name).expect("appliance").state();
    let defaults: Vec<_> = st.certificates.iter().filter(|c| c.default).collect();
    assert_eq!(defaults.len(), 1, "{name}: {:?}", st.certificates);
    defaults[0].leaf_sha256.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_moves_the_site_to_the_new_appliance() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::Migration, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let old = lab.address("old").unwrap().to_string();
    let new = lab.address("new").unwrap().to_string();
    let old_leaf = default_leaf(&lab, "old");
    assert_ne!(
        default_leaf(&lab, "new"),
        old_leaf,
        "new starts with its own certificate"
    );
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
    // Exit 0, every step succeeded, new on the target version and healthy, old untouched,
    // the site served old → new, backups byte-identical to what old served, no secret leaked.
    support::assert_change_complete(&lab, &run);
    support::report_measurement(&lab, &run);

    // new serves old's leaf certificate (imported, made default), not its own.
    assert_eq!(default_leaf(&lab, "new"), old_leaf, "{}", run.explain());
    let new_state = lab.sim("new").unwrap().state();
    assert_eq!(new_state.version, TARGET_VERSION);
    assert!(
        new_state
            .certificates
            .iter()
            .any(|c| c.name == "from-old" && c.leaf_sha256 == old_leaf),
        "{:?}",
        new_state.certificates
    );
    // The backup was restored on new (the engine verified old's API account there).
    assert!(
        new_state
            .actions
            .iter()
            .any(|a| a.action == "backup.restore" && a.ok),
        "no successful restore on new"
    );
    // The apply's report lists the backup with the checksum of the file on disk.
    let backups = run.report.as_ref().unwrap()["backups"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let path = backups[0]["path"].as_str().unwrap();
    let sha = support::sha256_file(std::path::Path::new(path));
    assert_eq!(backups[0]["sha256"].as_str(), Some(sha.as_str()));

    // Downtime: the client follows the DNS swing within the lowered TTL.
    let limit = Duration::from_secs(u64::from(DNS_SWITCH_TTL) + 1);
    assert!(
        run.probe.longest_outage() <= limit,
        "downtime {} ms > {limit:?}\n{}",
        run.probe.longest_outage_ms,
        run.explain()
    );
    let answer = named.dig(SITE, "A");
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(
        answer[0].value, new,
        "the record points at the new appliance"
    );
    assert_eq!(answer[0].ttl, DNS_OLD_TTL, "the TTL is restored");
    lab.shutdown().await;
}
