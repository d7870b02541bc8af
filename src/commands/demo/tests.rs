//! Tests of `swing demo`: the apply report text, and one whole rehearsal of an example plan
//! with the binary's wiring, whose report carries the downtime the client measured.

use std::sync::Arc;
use std::time::Duration;

use swing_engine::apply::{ApplyReport, ClientDowntime, StepDowntime};
use swing_testkit::demo::Quiet;
use swing_testkit::kit::Scenario;

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
async fn the_demo_rehearses_the_example_plan_and_measures_the_clients_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let r = super::rehearse_example(
        Scenario::SingleAutomatic,
        dir.path(),
        swing_testkit::kit::TIME_SCALE_45MIN_IN_2S,
        Duration::from_millis(50),
        Arc::new(Quiet),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, "done");
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // The single appliance is down while it installs: the client saw that outage, during the
    // install, and the report says so in real units.
    assert!(r.longest_outage_s > 0.0);
    assert!(
        r.outages
            .iter()
            .any(|o| o.during.contains(&"main.install".to_string())),
        "{:?}",
        r.outages
    );
    assert_eq!(r.served_by, vec!["main".to_owned()]);
}
