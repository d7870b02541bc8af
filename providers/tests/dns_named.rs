//! The `rfc2136` provider against a real BIND `named` (see `swing_testkit::named`): swing with TSIG
//! confirmed by a real `dig`, TTL lowered and restored, each refusal BIND produces with its own
//! wording (wrong secret: BADSIG; unknown key: BADKEY; key not granted: REFUSED; zone not
//! served: NOTAUTH), a concurrent change by `nsupdate`, the prerequisite-only `check_update`
//! (the zone's serial unchanged), and the DNS conformance suite.

use std::net::IpAddr;

use swing_engine::provider::{DnsObservation, DnsProvider, ErrorKind};
use swing_providers::conformance::dns::{self as conformance, DnsFixture};
use swing_providers::rfc2136::Rfc2136Provider;
use swing_testkit::dns::rfc2136_provider;
use swing_testkit::named::{
    KEY_NAME, KEY_SECRET, Named, UNGRANTED_KEY_NAME, UNGRANTED_KEY_SECRET, WRONG_SECRET,
};

const RECORD: &str = "access.example.test";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn start() -> Named {
    Named::start(&[("access", 300, "A", "10.0.0.11")])
}

fn provider_for(named: &Named, zone: &str, key_name: &str, secret: &str) -> Rfc2136Provider {
    rfc2136_provider(&named.server(), zone, key_name, secret)
}

fn provider(named: &Named) -> Rfc2136Provider {
    provider_for(named, "example.test", KEY_NAME, KEY_SECRET)
}

fn a_records(named: &Named) -> Vec<(String, u32)> {
    named
        .dig(RECORD, "A")
        .into_iter()
        .map(|a| (a.value, a.ttl))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swing_with_tsig_is_confirmed_by_dig() {
    let named = start();
    let p = provider(&named);
    let before = p.observe(RECORD).await.expect("observe");
    assert_eq!(before.addresses, vec![ip("10.0.0.11")]);
    assert_eq!(before.ttl, 300);
    assert_eq!(before.record, RECORD);

    p.swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect("swing");
    assert_eq!(a_records(&named), vec![("10.0.0.12".to_owned(), 300)]);
    assert_eq!(
        p.observe(RECORD).await.expect("observe").addresses,
        vec![ip("10.0.0.12")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_is_lowered_and_restored() {
    let named = start();
    let p = provider(&named);
    let before = p.observe(RECORD).await.expect("observe");
    p.set_ttl(RECORD, &before, 60).await.expect("lower ttl");
    assert_eq!(a_records(&named), vec![("10.0.0.11".to_owned(), 60)]);
    let lowered = p.observe(RECORD).await.expect("observe");
    assert_eq!(lowered.ttl, 60);
    p.set_ttl(RECORD, &lowered, 300).await.expect("restore ttl");
    assert_eq!(a_records(&named), vec![("10.0.0.11".to_owned(), 300)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_badsig_and_names_the_secret() {
    let named = start();
    let p = provider_for(&named, "example.test", KEY_NAME, WRONG_SECRET);
    let err = p
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("wrong secret must fail");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("(BADSIG)"), "{err}");
    assert!(err.message.contains("check tsig.secret"), "{err}");
    assert!(!err.message.contains("BADKEY"), "{err}");
    assert!(
        !err.message.contains(WRONG_SECRET) && !err.message.contains(KEY_SECRET),
        "{err}"
    );
    assert!(!format!("{err:?}").contains(WRONG_SECRET));
    assert_eq!(
        a_records(&named),
        vec![("10.0.0.11".to_owned(), 300)],
        "record must be unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_is_badkey_and_names_the_key_and_policy() {
    let named = start();
    let p = provider_for(&named, "example.test", "no-such-key", KEY_SECRET);
    let before = p.observe(RECORD).await.expect("queries need no key");
    let err = p
        .set_ttl(RECORD, &before, 60)
        .await
        .expect_err("unknown key must fail");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("(BADKEY)"), "{err}");
    assert!(err.message.contains("`no-such-key` (hmac-sha256)"), "{err}");
    assert!(
        err.message.contains("tsig.name and tsig.algorithm"),
        "{err}"
    );
    assert!(err.message.contains("update-policy"), "{err}");
    assert!(!err.message.contains("BADSIG"), "{err}");
    assert_eq!(a_records(&named), vec![("10.0.0.11".to_owned(), 300)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_not_granted_by_the_update_policy_is_refused() {
    let named = start();
    let p = provider_for(
        &named,
        "example.test",
        UNGRANTED_KEY_NAME,
        UNGRANTED_KEY_SECRET,
    );
    let err = p
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("the policy grants this key nothing");
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(err.message.contains("(REFUSED)"), "{err}");
    assert!(err.message.contains(UNGRANTED_KEY_NAME), "{err}");
    assert!(
        err.message
            .contains("allow-update/update-policy/ACL on the server"),
        "{err}"
    );
    assert_eq!(a_records(&named), vec![("10.0.0.11".to_owned(), 300)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_update_authenticates_and_changes_nothing() {
    let named = start();
    let p = provider(&named);
    let seen = p.observe(RECORD).await.expect("observe");
    let serial = named.soa_serial("example.test").expect("serial");

    p.check_update(RECORD, &seen)
        .await
        .expect("the right key passes");
    assert_eq!(
        named.soa_serial("example.test"),
        Some(serial),
        "serial unchanged"
    );
    assert_eq!(a_records(&named), vec![("10.0.0.11".to_owned(), 300)]);

    // The record is not as expected: Conflict, still nothing changed.
    let stale = DnsObservation {
        addresses: vec![ip("10.0.0.99")],
        ..seen.clone()
    };
    let err = p.check_update(RECORD, &stale).await.expect_err("stale");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(err.message.contains("NXRRSET"), "{err}");
    assert!(err.message.contains("10.0.0.11"), "{err}");

    // A name without records, expected empty, passes (its rrsets must not exist).
    let absent = DnsObservation {
        record: "absent.example.test".into(),
        addresses: vec![],
        ttl: 0,
    };
    p.check_update("absent.example.test", &absent)
        .await
        .expect("absent as expected");

    let err = provider_for(&named, "example.test", KEY_NAME, WRONG_SECRET)
        .check_update(RECORD, &seen)
        .await
        .expect_err("wrong secret");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("(BADSIG)"), "{err}");
    assert!(err.message.contains("check tsig.secret"), "{err}");

    let err = provider_for(&named, "example.test", "no-such-key", KEY_SECRET)
        .check_update(RECORD, &seen)
        .await
        .expect_err("unknown key");
    assert!(err.message.contains("(BADKEY)"), "{err}");

    // `allow-update { none; }` is decided for the whole message: the check is refused too.
    let locked = provider_for(&named, "locked.test", KEY_NAME, KEY_SECRET);
    let seen_locked = locked.observe("access.locked.test").await.expect("observe");
    let err = locked
        .check_update("access.locked.test", &seen_locked)
        .await
        .expect_err("zone accepts no updates");
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(err.message.contains("(REFUSED)"), "{err}");

    assert_eq!(
        named.soa_serial("example.test"),
        Some(serial),
        "serial unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_update_cannot_see_what_bind_update_policy_grants() {
    // BIND checks `update-policy` per update RR; an UPDATE of prerequisites only has none, so
    // a key the policy grants nothing passes the check (authenticated), while its real update
    // is REFUSED. This is the check's documented limit on BIND.
    let named = start();
    let p = provider_for(
        &named,
        "example.test",
        UNGRANTED_KEY_NAME,
        UNGRANTED_KEY_SECRET,
    );
    let seen = p.observe(RECORD).await.expect("observe");
    let serial = named.soa_serial("example.test");
    p.check_update(RECORD, &seen)
        .await
        .expect("authenticated, and BIND has no update RR to apply its policy to");
    let err = p
        .set_ttl(RECORD, &seen, 60)
        .await
        .expect_err("the real update is refused");
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert_eq!(named.soa_serial("example.test"), serial, "serial unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_change_between_observe_and_swing_is_a_conflict() {
    let named = start();
    let p = provider(&named);
    let seen = p.observe(RECORD).await.expect("observe");
    assert_eq!(seen.addresses, vec![ip("10.0.0.11")]);
    // Someone else changes the record after we looked.
    assert!(named.nsupdate(&format!(
        "update delete {RECORD} A\nupdate add {RECORD} 300 A 10.0.0.99"
    )));
    assert_eq!(a_records(&named), vec![("10.0.0.99".to_owned(), 300)]);

    let err = p
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("must not overwrite");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(err.message.contains("10.0.0.99"), "{err}");
    assert_eq!(
        a_records(&named),
        vec![("10.0.0.99".to_owned(), 300)],
        "the other value stays"
    );

    // A stale set_ttl is refused as well.
    let err = p
        .set_ttl(RECORD, &seen, 60)
        .await
        .expect_err("stale expectation");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert_eq!(a_records(&named), vec![("10.0.0.99".to_owned(), 300)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_checks_the_prerequisite_atomically() {
    // The compare-and-swap itself (no read before it): the server refuses a stale prerequisite.
    let named = start();
    let p = provider(&named);
    assert!(named.nsupdate(&format!(
        "update delete {RECORD} A\nupdate add {RECORD} 300 A 10.0.0.99"
    )));
    let err = p
        .replace_rrset(RECORD, &[ip("10.0.0.11")], &[ip("10.0.0.12")], 300)
        .await
        .expect_err("prerequisite must fail");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(err.message.contains("NXRRSET"), "{err}");
    assert_eq!(a_records(&named), vec![("10.0.0.99".to_owned(), 300)]);

    p.replace_rrset(RECORD, &[ip("10.0.0.99")], &[ip("10.0.0.12")], 120)
        .await
        .expect("matching prerequisite");
    assert_eq!(a_records(&named), vec![("10.0.0.12".to_owned(), 120)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_notauth_are_reported_clearly() {
    let named = start();
    // locked.test exists but allows no updates: REFUSED.
    let p = provider_for(&named, "locked.test", KEY_NAME, KEY_SECRET);
    let err = p
        .swing("access.locked.test", ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("updates are refused");
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert!(err.message.contains("REFUSED"), "{err}");
    assert_eq!(named.dig("access.locked.test", "A")[0].value, "10.0.0.11");

    // A zone the server does not serve: NOTAUTH for the update.
    let p = provider_for(&named, "other.test", KEY_NAME, KEY_SECRET);
    let obs = DnsObservation {
        record: "access.other.test".into(),
        addresses: vec![ip("10.0.0.11")],
        ttl: 300,
    };
    let err = p
        .set_ttl("access.other.test", &obs, 60)
        .await
        .expect_err("not authoritative");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("NOTAUTH (no TSIG error)"), "{err}");
    assert!(
        err.message
            .contains("not authoritative for zone other.test."),
        "{err}"
    );

    // And its query is refused (recursion off, zone not served).
    let err = p
        .observe("access.other.test")
        .await
        .expect_err("query refused");
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_against_named() {
    let named = start();
    let p = provider(&named);
    let fx = DnsFixture {
        record: RECORD.into(),
        a: ip("10.0.0.11"),
        b: ip("10.0.0.12"),
        other: ip("10.0.0.13"),
        ttl: 300,
    };
    let passed = conformance::run_all(&p, &fx)
        .await
        .unwrap_or_else(|f| panic!("{f}\nnamed log:\n{}", named.log()));
    assert_eq!(passed, conformance::CHECKS);
    assert_eq!(
        a_records(&named),
        vec![("10.0.0.11".to_owned(), 300)],
        "suite restores the record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aaaa_records_swing_too() {
    let named = Named::start(&[
        ("access", 300, "A", "10.0.0.11"),
        ("v6", 300, "AAAA", "2001:db8::11"),
    ]);
    let p = provider(&named);
    p.swing(
        "v6.example.test",
        ip("2001:db8::11"),
        ip("2001:db8::12"),
        300,
    )
    .await
    .expect("swing v6");
    let answers = named.dig("v6.example.test", "AAAA");
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].value, "2001:db8::12");
}
