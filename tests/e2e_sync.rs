//! End to end: synchronous failover (shared IP). a keeps its role and the shared IP, so the
//! site is down while a installs and restarts — and no longer.
//! Target (issue 7): downtime ≈ a.install + a.online (measured by the prober).

#[path = "../src/commands/demo/kit.rs"]
mod kit;
mod support;

use std::time::Duration;

use kit::{Lab, LabOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_downtime_is_the_primary_install_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::Sync, dir.path(), LabOptions::default())
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
    let install = run.step_ms("a.install").expect("a.install ran");
    let online = run.step_ms("a.online").unwrap_or(0);
    let down = run.probe.longest_outage_ms;
    // At least most of the install (the appliance is unreachable while installing) …
    assert!(
        down * 10 >= install * 8,
        "downtime {down} ms is far below a.install {install} ms\n{}",
        run.explain()
    );
    // … and no more than install + restart, plus one probe interval and scheduling slack.
    assert!(
        down <= install + online + 500,
        "downtime {down} ms > a.install {install} + a.online {online} ms\n{}",
        run.explain()
    );
    assert_eq!(
        run.probe.outages.len(),
        1,
        "one outage only\n{}",
        run.explain()
    );
    lab.shutdown().await;
}
