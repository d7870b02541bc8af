//! The embedded DNS server (hickory-server, in-process on a loopback port) driven by the
//! `rfc2136` provider and by the real `dig`/`nsupdate` clients: conformance suite, swing
//! confirmed by `dig`, wrong key, unsigned updates refused, concurrent change.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use swing_engine::provider::{DnsProvider, ErrorKind};
use swing_providers::conformance::dns::{self as conformance, DnsFixture};
use swing_providers::dns_server::{EmbeddedDns, EmbeddedRecord, start_embedded};
use swing_providers::rfc2136::{Rfc2136Config, Rfc2136Provider, TsigKey};
use swing_schema::{SecretValue, TsigAlgorithm};
use swing_testkit::named::{DigAnswer, KEY_NAME, KEY_SECRET, WRONG_SECRET, dig_at, nsupdate_at};

const RECORD: &str = "access.example.test";

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn key(secret: &str) -> TsigKey {
    TsigKey {
        name: KEY_NAME.into(),
        algorithm: TsigAlgorithm::HmacSha256,
        secret: SecretValue::new(secret),
    }
}

async fn start() -> EmbeddedDns {
    start_embedded(
        "example.test",
        &[EmbeddedRecord::new(RECORD, ip("10.0.0.11"), 300)],
        key(KEY_SECRET),
    )
    .await
    .expect("embedded server starts")
}

fn provider(dns: &EmbeddedDns, tsig: Option<TsigKey>) -> Rfc2136Provider {
    Rfc2136Provider::new(Rfc2136Config {
        server: dns.addr.to_string(),
        zone: "example.test".into(),
        tsig,
        timeout: Duration::from_secs(5),
    })
    .expect("provider config")
}

/// A real `dig`, run off the runtime that serves the embedded server.
async fn dig(addr: SocketAddr, name: &str, rtype: &str) -> Vec<DigAnswer> {
    let (name, rtype) = (name.to_owned(), rtype.to_owned());
    tokio::task::spawn_blocking(move || dig_at(addr, &name, &rtype))
        .await
        .expect("dig task")
}

async fn a_records(addr: SocketAddr) -> Vec<(String, u32)> {
    dig(addr, RECORD, "A")
        .await
        .into_iter()
        .map(|a| (a.value, a.ttl))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_against_the_embedded_server() {
    let dns = start().await;
    let p = provider(&dns, Some(key(KEY_SECRET)));
    let fx = DnsFixture {
        record: RECORD.into(),
        a: ip("10.0.0.11"),
        b: ip("10.0.0.12"),
        other: ip("10.0.0.13"),
        ttl: 300,
    };
    let passed = conformance::run_all(&p, &fx)
        .await
        .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(passed, conformance::CHECKS);
    dns.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swing_is_visible_to_dig() {
    let dns = start().await;
    assert_eq!(
        a_records(dns.addr).await,
        vec![("10.0.0.11".to_owned(), 300)]
    );
    let p = provider(&dns, Some(key(KEY_SECRET)));
    let seen = p.observe(RECORD).await.expect("observe");
    p.set_ttl(RECORD, &seen, 60).await.expect("lower ttl");
    assert_eq!(
        a_records(dns.addr).await,
        vec![("10.0.0.11".to_owned(), 60)]
    );
    p.swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 60)
        .await
        .expect("swing");
    assert_eq!(
        a_records(dns.addr).await,
        vec![("10.0.0.12".to_owned(), 60)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_and_unsigned_updates_are_rejected() {
    let dns = start().await;
    let err = provider(&dns, Some(key(WRONG_SECRET)))
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("wrong key");
    assert_eq!(err.kind, ErrorKind::Auth, "{err}");
    assert!(err.message.contains("(BADSIG)"), "{err}");
    assert!(err.message.contains("check tsig.secret"), "{err}");
    assert!(!err.message.contains(WRONG_SECRET), "{err}");

    let err = provider(&dns, None)
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("unsigned update");
    assert_eq!(err.kind, ErrorKind::Refused, "{err}");
    assert_eq!(
        a_records(dns.addr).await,
        vec![("10.0.0.11".to_owned(), 300)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_change_by_nsupdate_is_a_conflict() {
    let dns = start().await;
    let p = provider(&dns, Some(key(KEY_SECRET)));
    let seen = p.observe(RECORD).await.expect("observe");
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("update.key");
    std::fs::write(
        &key_file,
        format!("key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{KEY_SECRET}\"; }};\n"),
    )
    .expect("key file");
    let addr = dns.addr;
    let ok = tokio::task::spawn_blocking(move || {
        nsupdate_at(
            addr,
            &key_file,
            "example.test",
            &format!("update delete {RECORD} A\nupdate add {RECORD} 300 A 10.0.0.99"),
        )
    })
    .await
    .expect("nsupdate task");
    assert!(ok, "nsupdate against the embedded server");
    assert_eq!(
        a_records(dns.addr).await,
        vec![("10.0.0.99".to_owned(), 300)]
    );

    let err = p
        .swing(RECORD, ip("10.0.0.11"), ip("10.0.0.12"), 300)
        .await
        .expect_err("conflict");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    let err = p
        .set_ttl(RECORD, &seen, 60)
        .await
        .expect_err("stale set_ttl");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    let err = p
        .replace_rrset(RECORD, &[ip("10.0.0.11")], &[ip("10.0.0.12")], 300)
        .await
        .expect_err("stale cas");
    assert_eq!(err.kind, ErrorKind::Conflict, "{err}");
    assert_eq!(
        a_records(dns.addr).await,
        vec![("10.0.0.99".to_owned(), 300)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_the_server() {
    let dns = start().await;
    let addr = dns.addr;
    let p = provider(&dns, Some(key(KEY_SECRET)));
    p.observe(RECORD).await.expect("serving");
    drop(dns);
    // Poll (with a deadline) until the port stops answering.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match p.observe(RECORD).await {
            Err(e) if e.kind == ErrorKind::Transient => break,
            _ if tokio::time::Instant::now() > deadline => {
                panic!("server {addr} still answers after drop")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_see_a_half_applied_swing() {
    // hickory applies an update record by record; without the server's zone lock these readers
    // observe the record with no address between the delete and the add (checked: it fails).
    let dns = start().await;
    let writer = provider(&dns, Some(key(KEY_SECRET)));
    let (a, b) = (ip("10.0.0.11"), ip("10.0.0.12"));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..6 {
        let reader = provider(&dns, Some(key(KEY_SECRET)));
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut reads = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let obs = reader.observe(RECORD).await.expect("observe");
                assert_eq!(obs.addresses.len(), 1, "half-applied update seen: {obs:?}");
                assert!(obs.addresses[0] == a || obs.addresses[0] == b, "{obs:?}");
                reads += 1;
            }
            reads
        }));
    }
    for i in 0..200 {
        let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
        writer.swing(RECORD, from, to, 300).await.expect("swing");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.expect("reader task");
    }
    assert!(reads > 0);
    assert_eq!(
        a_records(dns.addr).await,
        vec![("10.0.0.11".to_owned(), 300)]
    );
}
