//! End to end: asynchronous failover with a shared IP. Two simulators on loopback sharing
//! an IP, the real `swing apply` binary with `operator: sim`, and a prober as the client.
//! Target (issue 7): client-visible downtime ≤ 1 s.

#[path = "../src/commands/demo/kit.rs"]
mod kit;
mod support;

use std::time::Duration;

use kit::{Lab, LabOptions, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_shared_ip_swings_to_b_with_at_most_one_second_of_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::start(Scenario::AsyncSharedIp, dir.path(), LabOptions::default())
        .await
        .unwrap();
    let plan = lab.write_plan(None, None).unwrap();
    let route = lab.direct_route().unwrap();
    let run = support::apply_with_probe(&lab, &plan, route, Duration::from_secs(120)).await;
    support::assert_change_complete(&lab, &run);
    assert!(
        run.probe.longest_outage() <= Duration::from_secs(1),
        "downtime {} ms > 1 s\n{}",
        run.probe.longest_outage_ms,
        run.explain()
    );
    lab.shutdown().await;
}
