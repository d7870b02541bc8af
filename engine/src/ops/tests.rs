//! The front door's typed outcomes keep the texts people and scripts already read.

use super::*;
use crate::planfile::SavedPlan;
use crate::provider::{ApplianceObservation, FailoverRole};
use crate::refresh::{Fingerprint, FingerprintChange, Observed};

fn plan() -> swing_schema::Plan {
    serde_json::from_value(serde_json::json!({
        "version": 1, "name": "assess", "site": "access.example.com",
        "target": {"version": "25.1.3", "packages": ["pra-25.1.3"]},
        "appliances": {"b": {"address": "10.0.0.12"}},
        "backup": {"directory": "./backups", "password": "${env:P}"},
        "providers": {"appliance": {"type": "beyondtrust", "client_id": "x",
                      "client_secret": "${env:S}", "operator": "sim"}}
    }))
    .unwrap()
}

fn observed(version: &str) -> Observed {
    let mut o = ApplianceObservation::unreachable();
    o.reachable = true;
    o.healthy = true;
    o.version = Some(version.into());
    o.role = FailoverRole::None;
    let mut obs = Observed::default();
    obs.appliances.insert("b".into(), Ok(o));
    obs
}

fn saved(offline: bool, fp: Fingerprint) -> SavedPlan {
    SavedPlan::new(
        &plan(),
        "plan.yaml",
        std::path::Path::new("/nonexistent"),
        offline,
        vec!["b.install".into()],
        Vec::new(),
        fp,
        serde_json::Value::Null,
    )
}

#[test]
fn typed_stale_reasons_read_as_the_saved_plans_own_reasons() {
    let then = Fingerprint::of(&observed("24.3.1"));
    let now = Fingerprint::of(&observed("25.1.3"));
    let s = saved(false, then.clone());
    let typed = stale_reasons(&s, &now);
    assert_eq!(
        typed,
        vec![StaleReason::Moved(FingerprintChange::Moved {
            resource: "appliance b".into(),
            fact: "version".into(),
            now: "25.1.3".into(),
            planned: "24.3.1".into(),
        })]
    );
    assert_eq!(typed[0].version_moved(), Some(("b", "25.1.3", "24.3.1")));
    let texts: Vec<String> = typed.iter().map(ToString::to_string).collect();
    assert_eq!(texts, s.stale_reasons(&now));
    assert!(stale_reasons(&s, &then).is_empty());

    let off = saved(true, Fingerprint::default());
    assert_eq!(stale_reasons(&off, &now), vec![StaleReason::Offline]);
    assert_eq!(StaleReason::Offline.to_string(), off.stale_reasons(&now)[0]);

    let mut tampered = saved(false, then);
    tampered.plan.target.version = swing_schema::Version("26.1".into());
    assert_eq!(stale_reasons(&tampered, &now), vec![StaleReason::Modified]);
    assert_eq!(
        StaleReason::Modified.to_string(),
        tampered.stale_reasons(&now)[0]
    );
}

#[tokio::test]
async fn assessing_without_providers_looks_only_at_the_file() {
    let s = saved(false, Fingerprint::of(&observed("24.3.1")));
    let a = assess(&s, None).await;
    assert_eq!(
        a,
        Assessment {
            offline: false,
            modified: false,
            source_changed: None,
            refreshed: None,
        }
    );
    assert!(a.appliable());
    assert!(
        !assess(&saved(true, Fingerprint::default()), None)
            .await
            .appliable()
    );
}
