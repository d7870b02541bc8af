//! The `rfc2136` provider against a real Knot DNS `knotd` (see `swing_testkit::knot`): the DNS
//! conformance suite, a swing confirmed by a real `dig` (the zone's serial moves), each refusal
//! Knot produces with its own wording (wrong secret: BADSIG; a key its ACL does not allow, an
//! unknown key, a zone without update ACL: NOTAUTH + BADKEY; a zone it does not serve and an
//! unsigned update: NOTAUTH without TSIG error; a server whose clock is two hours ahead:
//! BADTIME with the skew), and the prerequisite-only `check_update` (the zone's serial
//! unchanged).

use std::net::IpAddr;

use swing_engine::provider::{DnsObservation, DnsProvider, ErrorKind};
use swing_providers::conformance::dns::{self as conformance, DnsFixture};
use swing_providers::rfc2136::{Rfc2136Config, Rfc2136Provider};
use swing_testkit::dns::{KEY_NAME, KEY_SECRET, WRONG_SECRET, rfc2136_provider};
use swing_testkit::knot::{Knot, OTHER_KEY_NAME, OTHER_KEY_SECRET};

const RECORD: &str = "access.example.test";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn start() -> Knot {
    Knot::start(&[("access", 300, "A", "10.0.0.11")])
}

fn provider_for(knot: &Knot, zone: &str, key_name: &str, secret: &str) -> Rfc2136Provider {
    rfc2136_provider(&knot.server(), zone, key_name, secret)
}

fn provider(knot: &Knot) -> Rfc2136Provider {
    provider_for(knot, "example.test", KEY_NAME, KEY_SECRET)
}

fn a_records(knot: &Knot) -> Vec<(String, u32)> {
    knot.dig(RECORD, "A")
        .into_iter()
        .map(|a| (a.value, a.ttl))
        .collect()
}

fn unchanged(knot: &Knot) {
    assert_eq!(
        a_records(knot),
        vec![("10.0.0.11".to_owned(), 300)],
        "record must be unchanged\n{}",
        knot.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_against_knot() {
    let knot = start();
    let p = provider(&knot);
    let fx = DnsFixture {
        record: RECORD.into(),
        a: ip("10.0.0.11"),
        b: ip("10.0.0.12"),
        other: ip("10.0.0.13"),
        ttl: 300,
    };
    let passed = conformance::run_all(&p, &fx)
        .await
        .unwrap_or_else(|f| panic!("{f}\nknotd log:\n{}", knot.log()));
    assert_eq!(passed, conformance::CHECKS);
    unchanged(&knot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swing_is_confirmed_by_dig_and_moves_the_serial() {
    let knot = start();
    let p = provider(&knot);
    let serial = knot.soa_serial("example.test").expect("serial");
    p.swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect("swing");
    assert_eq!(a_records(&knot), vec![("10.0.0.12".to_owned(), 300)]);
    assert!(knot.soa_serial("example.test").expect("serial") > serial);

    // A change by someone else (a real nsupdate) is then a conflict, never overwritten.
    assert!(knot.nsupdate(&format!(
        "update delete {RECORD} A\nupdate add {RECORD} 300 A 10.0.0.99"
    )));
    let err = p
        .swing(RECORD, ip("10.0.0.12"), ip("10.0.0.11"), 300)
        .await
        .expect_err("stale from");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    let err = p
        .replace_rrset(RECORD, &[ip("10.0.0.12")], &[ip("10.0.0.11")], 300)
        .await
        .expect_err("the server checks the prerequisite");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(err.message.contains("NXRRSET"), "{err}");
    assert!(err.message.contains("10.0.0.99"), "{err}");
    assert_eq!(a_records(&knot), vec![("10.0.0.99".to_owned(), 300)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_badsig_and_names_the_secret() {
    let knot = start();
    let err = provider_for(&knot, "example.test", KEY_NAME, WRONG_SECRET)
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("wrong secret");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("(BADSIG)"), "{err}");
    assert!(err.message.contains("TSIG error BADSIG"), "{err}");
    assert!(err.message.contains("check tsig.secret"), "{err}");
    assert!(!err.message.contains("BADKEY"), "{err}");
    assert!(!format!("{err:?}").contains(WRONG_SECRET), "{err}");
    unchanged(&knot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_the_acl_does_not_allow_are_badkey_and_name_the_key_and_acl() {
    let knot = start();
    // A key Knot knows but no ACL of the zone allows, a key Knot does not know, and the right
    // key on a zone that has no update ACL: all NOTAUTH + BADKEY.
    let cases = [
        ("example.test", RECORD, OTHER_KEY_NAME, OTHER_KEY_SECRET),
        ("example.test", RECORD, "no-such-key", KEY_SECRET),
        ("locked.test", "access.locked.test", KEY_NAME, KEY_SECRET),
    ];
    for (zone, record, key, secret) in cases {
        let err = provider_for(&knot, zone, key, secret)
            .swing(record, ip("10.0.0.11"), ip("10.0.0.12"), 300)
            .await
            .expect_err("key not allowed");
        assert_eq!(err.kind, ErrorKind::Auth, "{key} {zone}: {err}");
        assert!(err.message.contains("(BADKEY)"), "{err}");
        assert!(
            err.message.contains("NOTAUTH with TSIG error BADKEY"),
            "{err}"
        );
        assert!(
            err.message.contains(&format!("`{key}` (hmac-sha256)")),
            "{err}"
        );
        assert!(
            err.message.contains("tsig.name and tsig.algorithm"),
            "{err}"
        );
        assert!(err.message.contains("ACL"), "{err}");
        assert!(!err.message.contains("BADSIG"), "{err}");
        assert!(!err.message.contains(secret), "{err}");
    }
    unchanged(&knot);
    assert_eq!(knot.dig("access.locked.test", "A")[0].value, "10.0.0.11");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_not_served_and_an_unsigned_update_are_plain_notauth() {
    let knot = start();
    let obs = DnsObservation {
        record: "access.other.test".into(),
        addresses: vec![ip("10.0.0.11")],
        ttl: 300,
    };
    let err = provider_for(&knot, "other.test", KEY_NAME, KEY_SECRET)
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
    assert!(!err.message.contains("BADKEY"), "{err}");

    let unsigned = Rfc2136Provider::new(Rfc2136Config {
        server: knot.server(),
        zone: "example.test".into(),
        tsig: None,
        timeout: std::time::Duration::from_secs(5),
    })
    .expect("config");
    let err = unsigned
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("unsigned update");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("NOTAUTH (no TSIG error)"), "{err}");
    assert!(err.message.contains("configure `tsig`"), "{err}");
    unchanged(&knot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_update_authenticates_and_changes_nothing() {
    let knot = start();
    let p = provider(&knot);
    let seen = p.observe(RECORD).await.expect("observe");
    let serial = knot.soa_serial("example.test").expect("serial");

    p.check_update(RECORD, &seen)
        .await
        .unwrap_or_else(|e| panic!("the right key passes: {e}\n{}", knot.log()));
    assert_eq!(
        knot.soa_serial("example.test"),
        Some(serial),
        "serial unchanged"
    );

    let stale = DnsObservation {
        addresses: vec![ip("10.0.0.99")],
        ..seen.clone()
    };
    let err = p.check_update(RECORD, &stale).await.expect_err("stale");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert!(err.message.contains("10.0.0.11"), "{err}");

    let err = provider_for(&knot, "example.test", KEY_NAME, WRONG_SECRET)
        .check_update(RECORD, &seen)
        .await
        .expect_err("wrong secret");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("(BADSIG)"), "{err}");
    assert!(err.message.contains("check tsig.secret"), "{err}");

    let err = provider_for(&knot, "example.test", OTHER_KEY_NAME, OTHER_KEY_SECRET)
        .check_update(RECORD, &seen)
        .await
        .expect_err("key not allowed by the ACL");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("(BADKEY)"), "{err}");
    assert!(err.message.contains("ACL"), "{err}");

    assert_eq!(
        knot.soa_serial("example.test"),
        Some(serial),
        "serial unchanged"
    );
    unchanged(&knot);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_clock_off_by_two_hours_is_badtime_and_names_the_clock() {
    let knot = Knot::start_skewed(&[("access", 300, "A", "10.0.0.11")], 7200);
    let p = provider(&knot);
    let err = p
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("clocks differ beyond the fudge");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("(BADTIME)"), "{err}");
    assert!(err.message.contains("TSIG error BADTIME"), "{err}");
    assert!(err.message.contains("check NTP"), "{err}");
    // Knot sends its time in the BADTIME answer: the skew is shown (±a second of the run).
    assert!(
        ["+7199s", "+7200s", "+7201s"]
            .iter()
            .any(|s| err.message.contains(&format!("the server's clock is {s}"))),
        "{err}"
    );
    assert!(
        !err.message.contains("BADSIG") && !err.message.contains("BADKEY"),
        "{err}"
    );

    let seen = p.observe(RECORD).await.expect("queries are not signed");
    let err = p.check_update(RECORD, &seen).await.expect_err("check too");
    assert!(err.message.contains("(BADTIME)"), "{err}");
    unchanged(&knot);
}
