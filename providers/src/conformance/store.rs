//! The state store contract (`swing_engine::apply::Store`), checked the same way against every
//! store: the local files and a real PostgreSQL. What an apply relies on — records come back
//! as written, a finished journal is kept and the next starts fresh, one holder per site, a
//! released lock is free again, a live holder is never force-unlocked, unfinished changes are
//! listed with their source.
//!
//! Must not: know a concrete store type.

use swing_engine::apply::history::History;
use swing_engine::apply::{Entry, LockError, LockOptions, SavedPlanRecord, Store};

fn started(source: &str) -> Entry {
    Entry::RunStarted {
        plan_digest: "digest-1".into(),
        resume: false,
        pid: std::process::id(),
        host: "conformance".into(),
        source: Some(source.into()),
        steps: vec!["a.health".into(), "a.install".into()],
    }
}

/// Runs every check on `store` for `site`; `keeps_saved_plans`: whether the store records
/// saved plans itself (the local store's record is the saved plan file).
pub fn check(store: &dyn Store, site: &str, keeps_saved_plans: bool) {
    let change = "conformance-change";
    assert!(
        store.records(site, change).unwrap().is_empty(),
        "a new change has no records"
    );
    assert!(store.holder(site).is_none(), "a new site has no holder");

    // One holder at a time, named to the second; released on drop.
    let guard = store.lock(site, change, LockOptions::default()).unwrap();
    assert_eq!(
        store.holder(site).map(|h| h.holder),
        Some(change.to_owned())
    );
    match store.lock(site, "another-change", LockOptions::default()) {
        Err(LockError::Held { holder, .. }) => assert_eq!(holder.holder, change),
        other => panic!(
            "a second holder must be refused, got {:?}",
            other.map(|_| ())
        ),
    }
    match store.force_unlock(site) {
        Err(LockError::Held { holder, .. }) => assert_eq!(holder.holder, change),
        other => panic!("a live holder must not be force-unlocked, got {other:?}"),
    }

    // Records come back in order, as written, from the journal and from the store.
    let journal = store.journal(site, change, false).unwrap();
    let written = vec![
        journal.append(started("plans/change.plan")).unwrap(),
        journal
            .append(Entry::StepStarted {
                step: "a.health".into(),
            })
            .unwrap(),
        journal
            .append(Entry::StepConfirmed {
                step: "a.install".into(),
                actor: Some("alice".into()),
                note: Some("checked the console \"twice\"".into()),
            })
            .unwrap(),
    ];
    assert_eq!(journal.records().unwrap(), written);
    assert_eq!(store.records(site, change).unwrap(), written);
    assert_eq!(
        store.unfinished().unwrap(),
        vec![(change.to_owned(), Some("plans/change.plan".to_owned()))]
    );
    // Reopened (a resume), appends go on after the last record.
    drop(journal);
    let journal = store.journal(site, change, false).unwrap();
    let done = journal
        .append(Entry::RunFinished {
            outcome: "done".into(),
        })
        .unwrap();
    let all = store.records(site, change).unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all[3], done);
    assert!(
        store.unfinished().unwrap().is_empty(),
        "a finished change is not unfinished"
    );
    drop(guard);
    assert!(
        store.holder(site).is_none(),
        "a released lock has no holder"
    );

    // A new apply after a finished one starts a fresh journal; the old one is kept.
    let guard = store.lock(site, "next", LockOptions::default()).unwrap();
    let fresh = store.journal(site, change, true).unwrap();
    assert!(
        fresh.records().unwrap().is_empty(),
        "a fresh journal starts empty"
    );
    let first = fresh.append(started("again.plan")).unwrap();
    assert_eq!(store.records(site, change).unwrap(), vec![first]);
    drop(fresh);

    // Abandoned: not unfinished any more, wherever the store keeps it.
    let journal = store.journal(site, change, false).unwrap();
    journal
        .append(Entry::Abandoned {
            reason: "conformance".into(),
            actor: "ops@host".into(),
        })
        .unwrap();
    drop(journal);
    let kept = store.retire_abandoned(site, change).unwrap();
    assert!(!kept.is_empty());
    assert!(!History::fold(&store.records(site, change).unwrap()).unfinished());
    assert!(store.unfinished().unwrap().is_empty());
    drop(guard);

    // Saved plans on record.
    let rec = SavedPlanRecord {
        change: change.into(),
        digest: "abc123".into(),
        signer: Some("SHA256:feed".into()),
    };
    store.record_saved_plan(site, &rec).unwrap();
    store.record_saved_plan(site, &rec).unwrap();
    let kept = store.saved_plans(site, change).unwrap();
    if keeps_saved_plans {
        assert_eq!(kept, vec![rec], "recorded once, as given");
    } else {
        assert!(kept.is_empty());
    }
    // With nobody holding it, force-unlock has nothing to refuse.
    assert!(store.force_unlock(site).is_ok());
}
