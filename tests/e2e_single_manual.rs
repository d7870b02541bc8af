//! End to end: a single appliance, `source: manual`. The site is down while the appliance
//! installs and restarts; afterwards it runs the target version, healthy, with a verified
//! backup.

#[path = "../src/commands/demo/kit.rs"]
mod kit;
mod support;

use std::time::Duration;

use kit::{Lab, LabOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_manual_upgrades_the_appliance() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::SingleManual, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan = lab.write_plan(None, None).unwrap();
    let run = support::apply_with_probe(
        &lab,
        &plan,
        lab.direct_route().unwrap(),
        Duration::from_secs(120),
    )
    .await;
    support::assert_change_complete(&lab, &run);
    let install = run.step_ms("main.install").expect("main.install ran");
    let online = run.step_ms("main.online").unwrap_or(0);
    let down = run.probe.longest_outage_ms;
    assert!(
        down > 0,
        "a single appliance cannot install without downtime\n{}",
        run.explain()
    );
    assert!(
        down <= install + online + 500,
        "downtime {down} ms > install {install} + online {online} ms\n{}",
        run.explain()
    );
    lab.shutdown().await;
}
