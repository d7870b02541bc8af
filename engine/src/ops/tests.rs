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
fn stale_reasons_are_typed_and_read_as_apply_prints_them() {
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
    assert_eq!(
        texts,
        vec!["stale: appliance b is now 25.1.3, the plan was made against 24.3.1".to_owned()]
    );
    assert!(stale_reasons(&s, &then).is_empty());

    let off = saved(true, Fingerprint::default());
    assert_eq!(stale_reasons(&off, &now), vec![StaleReason::Offline]);
    assert!(StaleReason::Offline.to_string().contains("--offline"));

    let mut tampered = saved(false, then);
    tampered.plan.target.version = swing_schema::Version("26.1".into());
    assert_eq!(stale_reasons(&tampered, &now), vec![StaleReason::Modified]);
    assert!(
        StaleReason::Modified
            .to_string()
            .contains("digest mismatch")
    );
}

#[tokio::test]
async fn assessing_without_providers_looks_only_at_the_file() {
    let s = saved(false, Fingerprint::of(&observed("24.3.1")));
    let valid = s.valid_plan().unwrap();
    let a = assess(&s, &valid, None).await;
    assert_eq!(
        a,
        Assessment {
            offline: false,
            modified: false,
            signature: crate::signing::SignatureCheck::Unsigned,
            source_changed: None,
            refreshed: None,
        }
    );
    assert!(a.appliable());
    let off = saved(true, Fingerprint::default());
    assert!(!assess(&off, &valid, None).await.appliable());
}

/// What the live plan view and its text make of a diff (diff itself knows neither).
mod diff_views {
    use crate::compile::{CompileOptions, compile};
    use crate::diff::{NO_CHANGES, diff};
    use crate::provider::{ApplianceObservation, FailoverRole};
    use crate::refresh::Observed;

    fn plan() -> swing_schema::Plan {
        serde_json::from_value(serde_json::json!({
            "version": 1, "name": "access-25-1-async-ip", "site": "access.example.com",
            "target": {"version": "25.1.3", "packages": ["base-7.2.1", "pra-25.1.3"]},
            "appliances": {"a": {"address": "10.0.0.11"}, "b": {"address": "10.0.0.12"}},
            "failover": {"primary": "a", "backup": "b", "strategy": "asynchronous",
                          "switch": {"method": "shared-ip", "address": "10.0.0.10"}},
            "backup": {"directory": "./backups", "password": "${env:P}"},
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x", "client_secret": "${env:S}"}}
        }))
        .unwrap()
    }

    fn app(version: &str, role: FailoverRole, shared: bool) -> ApplianceObservation {
        ApplianceObservation {
            reachable: true,
            version: Some(version.into()),
            healthy: true,
            role,
            shared_ips: if shared {
                vec!["10.0.0.10".into()]
            } else {
                vec![]
            },
            ..ApplianceObservation::unreachable()
        }
    }

    fn world(a: ApplianceObservation, b: ApplianceObservation) -> Observed {
        let mut o = Observed::default();
        o.appliances.insert("a".into(), Ok(a));
        o.appliances.insert("b".into(), Ok(b));
        o
    }

    #[test]
    fn a_partial_apply_shows_only_what_is_left_and_what_was_observed() {
        let c = compile(
            &crate::validate::valid_plan(&plan()),
            &CompileOptions::default(),
        )
        .unwrap();
        let d = diff(
            &c,
            &world(
                app("24.3.2", FailoverRole::None, false),
                app("25.1.3", FailoverRole::None, true),
            ),
        );
        // The live view shows only what is left, b's observed version, and what is done.
        let o = world(
            app("24.3.2", FailoverRole::None, false),
            app("25.1.3", FailoverRole::None, true),
        );
        let v = crate::view::refreshed(&c, &o, &d);
        let ids: Vec<&str> = v.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, d.needed.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            v.phases
                .iter()
                .all(|p| p.steps.iter().all(|s| d.needed.contains(s)))
        );
        let b = v.appliances.iter().find(|a| a.name == "b").unwrap();
        assert_eq!(b.version_before.as_deref(), Some("25.1.3"));
        let a = v
            .changes
            .iter()
            .find(|c| c.resource == "appliance a" && c.attribute == "version")
            .unwrap();
        assert_eq!(a.before.as_deref(), Some("24.3.2"), "observed, not assumed");
        let r = v.refresh.as_ref().unwrap();
        assert!(r.has_changes && r.done.contains(&"b.install".to_owned()));
        assert!(
            r.observed
                .iter()
                .any(|l| l.starts_with("appliance b (10.0.0.12): 25.1.3"))
        );
        assert!(
            v.summary.line.ends_with("already done (observed)"),
            "{}",
            v.summary.line
        );
    }

    #[test]
    fn a_converged_site_renders_no_changes() {
        let c = compile(
            &crate::validate::valid_plan(&plan()),
            &CompileOptions::default(),
        )
        .unwrap();
        let d = diff(
            &c,
            &world(
                app("25.1.3", FailoverRole::Backup, false),
                app("25.1.3", FailoverRole::Primary, true),
            ),
        );
        let o = world(
            app("25.1.3", FailoverRole::Backup, false),
            app("25.1.3", FailoverRole::Primary, true),
        );
        let v = crate::view::refreshed(&c, &o, &d);
        assert!(v.steps.is_empty() && v.phases.is_empty());
        assert_eq!(v.summary.line, NO_CHANGES);
        let text = crate::render::text::render(&v, false);
        assert!(text.trim_end().ends_with(NO_CHANGES), "{text}");
        assert!(!text.contains("Steps"), "{text}");
    }
}
