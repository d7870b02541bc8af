//! The state store contract (`conformance::store`) against the local files and a real
//! PostgreSQL cluster the test starts itself (`swing_testkit::postgres`), plus what only a
//! database session gives: a second runner is refused while the first holds the site, the
//! first runner's session ending frees it (and that runner writes nothing more), and a server
//! turned read-only refuses the next record with a message saying how to go on, while the state
//! can still be read.

use swing_engine::apply::{LocalStore, LockError, LockOptions, Store};
use swing_providers::conformance;
use swing_providers::pg_state::PgStore;
use swing_schema::SecretValue;
use swing_testkit::postgres::Postgres;

#[test]
fn the_local_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(&dir.path().join(".swing"), &dir.path().join("locks"));
    conformance::store::check(&store, "access.example.com", false);
}

#[test]
fn the_postgres_store_keeps_the_contract_and_frees_a_lock_when_its_session_ends() {
    let pg = Postgres::start().expect("a PostgreSQL cluster starts");
    let url = SecretValue::new(pg.url("secret-canary"));
    let store = PgStore::connect(&url, "prod", None).unwrap();
    assert!(
        !store.describe().contains("secret-canary"),
        "{}",
        store.describe()
    );
    conformance::store::check(&store, "access.example.com", true);

    // Namespaces are apart: the same site in another namespace is another lock.
    let other_ns = PgStore::connect(&url, "staging", None).unwrap();
    let a = store
        .lock("access.example.com", "chg", LockOptions::default())
        .unwrap();
    let b = other_ns
        .lock("access.example.com", "chg", LockOptions::default())
        .unwrap();
    drop((a, b));

    // A second runner (its own connection) is refused while the first holds the site…
    let runner_1 = PgStore::connect(&url, "prod", None).unwrap();
    let runner_2 = PgStore::connect(&url, "prod", None).unwrap();
    let held = runner_1
        .lock("eu.example.com", "chg-eu", LockOptions::default())
        .unwrap();
    match runner_2.lock("eu.example.com", "chg-eu", LockOptions::default()) {
        Err(LockError::Held { holder, .. }) => {
            assert_eq!(holder.holder, "chg-eu");
            assert_eq!(holder.pid, std::process::id());
        }
        other => panic!("expected Held, got {:?}", other.map(|_| ())),
    }
    // …and takes it once the first runner's session is gone, without any release (the guard
    // is forgotten, and the server ends the session holding the advisory lock, as it does when
    // a killed runner's connection closes).
    std::mem::forget(held);
    let ended: i64 = pg
        .with_client(|c| {
            c.query(
                "SELECT pg_terminate_backend(pid) FROM pg_locks
                 WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()",
                &[],
            )
            .unwrap()
            .len() as i64
        })
        .unwrap();
    assert_eq!(ended, 1, "exactly one session holds an advisory lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let taken = loop {
        match runner_2.lock("eu.example.com", "chg-eu", LockOptions::default()) {
            Ok(g) => break g,
            Err(LockError::Held { .. }) if std::time::Instant::now() < deadline => {
                // Poll until the server has ended the session.
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => panic!("the lock was never freed: {e}"),
        }
    };
    assert!(taken.took_over.is_some(), "the dead holder's row is named");
    // The first runner knows its session is gone: it writes nothing more.
    let j = runner_1.journal("eu.example.com", "chg-eu", false);
    assert!(j.is_err(), "a runner whose session ended must not write");
    drop(taken);

    // A server turned read-only refuses the next record, saying why; reading still works.
    let journal = runner_2.journal("eu.example.com", "chg-eu", false).unwrap();
    pg.with_client(|c| {
        c.execute("ALTER SYSTEM SET default_transaction_read_only = on", &[])
            .unwrap();
        c.execute("SELECT pg_reload_conf()", &[]).unwrap()
    })
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let refused = loop {
        match journal.append(swing_engine::apply::Entry::StepStarted {
            step: "a.health".into(),
        }) {
            Err(e) => break e.to_string(),
            // The reload reaches the session a moment later; the test's own write is harmless.
            Ok(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Ok(_) => panic!("the read-only server kept taking records"),
        }
    };
    assert!(
        refused.contains("read-only") && refused.contains("swing apply --resume"),
        "{refused}"
    );
    assert!(runner_2.records("eu.example.com", "chg-eu").is_ok());
    // A new runner against the read-only server can still read the state.
    let reader = PgStore::connect(&url, "prod", None).unwrap();
    assert!(reader.records("eu.example.com", "chg-eu").is_ok());
}
