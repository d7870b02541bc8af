//! Tests of `swing demo`: the report text it prints, and one whole run with the binary's
//! wiring whose apply report carries the downtime the client measured.

use std::sync::Arc;
use std::time::Duration;

use swing_engine::apply::{ApplyReport, ClientDowntime, StepDowntime};
use swing_testkit::demo::{Quiet, run_scenario};
use swing_testkit::kit::{LabOptions, Scenario};

use super::super::apply::report_text;

#[test]
fn the_report_text_leads_with_the_client_measured_downtime() {
    let report = ApplyReport {
        outcome: "done".into(),
        steps: Vec::new(),
        steps_run: 0,
        downtime_ms: 2_700,
        unprotected_ms: 5_500,
        backups: Vec::new(),
        root_cause: None,
        waiting: Vec::new(),
        skipped: Vec::new(),
        client_downtime: Some(ClientDowntime {
            longest_outage_ms: 850,
            outages: 1,
            total_outage_ms: 850,
            probes: 120,
            interval_ms: 50,
            served_by: vec!["a".into(), "b".into()],
        }),
        downtime_by_step: vec![StepDowntime {
            step: "switch.to-b".into(),
            seen: ClientDowntime {
                longest_outage_ms: 850,
                outages: 1,
                total_outage_ms: 850,
                probes: 40,
                interval_ms: 50,
                served_by: vec!["a".into(), "b".into()],
            },
        }],
        unprobed: Vec::new(),
    };
    let text = report_text(&report);
    assert!(
        text.contains("downtime (measured):         0.850 s"),
        "{text}"
    );
    assert!(text.contains("served by a → b"), "{text}");
    assert!(
        text.contains("switch.to-b                0.850 s  longest outage (40 probes"),
        "{text}"
    );
    assert!(
        text.contains("downtime steps (engine):     2.70 s"),
        "{text}"
    );
    let without = ApplyReport {
        client_downtime: None,
        downtime_by_step: Vec::new(),
        ..report
    };
    assert!(report_text(&without).contains("no client probe ran"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_apply_report_carries_the_downtime_the_client_measured() {
    let dir = tempfile::tempdir().unwrap();
    let options = LabOptions {
        state_estimates: true,
        jump_clients: 5,
        ..LabOptions::default()
    };
    let r = run_scenario(
        Scenario::SingleAutomatic,
        dir.path(),
        options,
        Duration::from_millis(50),
        &super::wiring,
        Arc::new(Quiet),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, "done");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    let report = r.report.expect("the apply ran");
    let c = report.client_downtime.as_ref().expect("measured downtime");
    // The single appliance is down while it installs: the client saw that outage.
    assert!(c.longest_outage_ms > 0);
    assert_eq!(c.longest_outage_ms, r.probe.longest_outage_ms);
    assert_eq!(c.served_by, vec!["main".to_owned()]);
    assert!(report_text(&report).contains(&format!(
        "downtime (measured):         {:.3} s",
        c.longest_outage_ms as f64 / 1000.0
    )));
}
