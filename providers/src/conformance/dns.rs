//! Conformance checks for [`DnsProvider`]: the behaviour the engine relies on, written once
//! against the trait and run by every DNS provider's integration tests against a real backend
//! (rfc2136 against BIND `named`, Knot DNS `knotd` and the embedded server; exec against its
//! script).
//!
//! The contract checked here:
//! - `observe` reports the record's addresses and TTL; a missing record is no addresses, TTL 0.
//! - `set_ttl` keeps the addresses, changes the TTL; with a stale expectation it fails with
//!   `Conflict` and changes nothing.
//! - `swing` moves the record from `from` to `to` (the postcondition is observable right
//!   after); a record that is not at `from` fails with `Conflict` and is left as it is; a record
//!   already exactly at `to` is success (a resumed apply).
//!
//! Must not: know a concrete provider type, or leave the record changed (every check restores
//! what it changed, as far as the provider lets it).

use std::net::IpAddr;

use swing_engine::provider::{DnsObservation, DnsProvider, ErrorKind};

/// The record the suite may change, as it is when the suite starts.
#[derive(Debug, Clone)]
pub struct DnsFixture {
    /// Absolute record name, e.g. `access.example.test`.
    pub record: String,
    /// The record's only address at the start (A's address).
    pub a: IpAddr,
    /// Another address of the same family (B's address).
    pub b: IpAddr,
    /// A third address of the same family that the record never holds.
    pub other: IpAddr,
    /// The record's TTL at the start.
    pub ttl: u32,
}

/// A failed conformance check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dns conformance `{check}` failed: {message}")]
pub struct DnsConformanceFailure {
    pub check: &'static str,
    pub message: String,
}

fn fail(check: &'static str, message: impl Into<String>) -> DnsConformanceFailure {
    DnsConformanceFailure {
        check,
        message: message.into(),
    }
}

fn sorted(mut v: Vec<IpAddr>) -> Vec<IpAddr> {
    v.sort();
    v
}

async fn expect_state(
    p: &dyn DnsProvider,
    check: &'static str,
    record: &str,
    addrs: &[IpAddr],
    ttl: u32,
) -> Result<DnsObservation, DnsConformanceFailure> {
    let obs = p
        .observe(record)
        .await
        .map_err(|e| fail(check, format!("observe: {e}")))?;
    if sorted(obs.addresses.clone()) != sorted(addrs.to_vec()) || obs.ttl != ttl {
        return Err(fail(
            check,
            format!(
                "expected {addrs:?} TTL {ttl}, observed {:?} TTL {}",
                obs.addresses, obs.ttl
            ),
        ));
    }
    Ok(obs)
}

/// The names of all checks, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "observe-current",
    "observe-missing",
    "set-ttl-lower-restore",
    "set-ttl-stale-conflict",
    "swing-wrong-from-conflict",
    "swing-there-and-back",
];

/// Runs every check; returns the names of the checks that passed (all of [`CHECKS`]).
pub async fn run_all(
    p: &dyn DnsProvider,
    fx: &DnsFixture,
) -> Result<Vec<&'static str>, DnsConformanceFailure> {
    observe_current(p, fx).await?;
    observe_missing(p, fx).await?;
    set_ttl_lower_restore(p, fx).await?;
    set_ttl_stale_conflict(p, fx).await?;
    swing_wrong_from_conflict(p, fx).await?;
    swing_there_and_back(p, fx).await?;
    Ok(CHECKS.to_vec())
}

/// `observe` reports exactly the fixture's address and TTL.
pub async fn observe_current(
    p: &dyn DnsProvider,
    fx: &DnsFixture,
) -> Result<(), DnsConformanceFailure> {
    expect_state(p, "observe-current", &fx.record, &[fx.a], fx.ttl)
        .await
        .map(|_| ())
}

/// A name without records is observed as no addresses and TTL 0 (not an error).
pub async fn observe_missing(
    p: &dyn DnsProvider,
    fx: &DnsFixture,
) -> Result<(), DnsConformanceFailure> {
    let check = "observe-missing";
    let missing = format!(
        "swing-conformance-absent.{}",
        fx.record.split_once('.').map_or("", |(_, zone)| zone)
    );
    let obs = p
        .observe(&missing)
        .await
        .map_err(|e| fail(check, format!("observe {missing}: {e}")))?;
    if !obs.addresses.is_empty() || obs.ttl != 0 {
        return Err(fail(
            check,
            format!("{missing}: expected nothing, observed {obs:?}"),
        ));
    }
    Ok(())
}

/// `set_ttl` lowers the TTL keeping the addresses, and restores it.
pub async fn set_ttl_lower_restore(
    p: &dyn DnsProvider,
    fx: &DnsFixture,
) -> Result<(), DnsConformanceFailure> {
    let check = "set-ttl-lower-restore";
    let before = expect_state(p, check, &fx.record, &[fx.a], fx.ttl).await?;
    let low = if fx.ttl > 30 { 30 } else { fx.ttl + 30 };
    p.set_ttl(&fx.record, &before, low)
        .await
        .map_err(|e| fail(check, format!("set_ttl {low}: {e}")))?;
    let lowered = expect_state(p, check, &fx.record, &[fx.a], low).await?;
    p.set_ttl(&fx.record, &lowered, fx.ttl)
        .await
        .map_err(|e| fail(check, format!("set_ttl back to {}: {e}", fx.ttl)))?;
    expect_state(p, check, &fx.record, &[fx.a], fx.ttl)
        .await
        .map(|_| ())
}

/// `set_ttl` with an expectation that no longer holds is a `Conflict` and changes nothing.
pub async fn set_ttl_stale_conflict(
    p: &dyn DnsProvider,
    fx: &DnsFixture,
) -> Result<(), DnsConformanceFailure> {
    let check = "set-ttl-stale-conflict";
    let stale = DnsObservation {
        record: fx.record.clone(),
        addresses: vec![fx.other],
        ttl: fx.ttl,
    };
    match p.set_ttl(&fx.record, &stale, 5).await {
        Err(e) if e.kind == ErrorKind::Conflict => {}
        Err(e) => {
            return Err(fail(
                check,
                format!("expected Conflict, got {:?}: {e}", e.kind),
            ));
        }
        Ok(()) => return Err(fail(check, "expected Conflict, the call succeeded")),
    }
    expect_state(p, check, &fx.record, &[fx.a], fx.ttl)
        .await
        .map(|_| ())
}

/// `swing` from an address the record does not hold is a `Conflict`; the record is unchanged.
pub async fn swing_wrong_from_conflict(
    p: &dyn DnsProvider,
    fx: &DnsFixture,
) -> Result<(), DnsConformanceFailure> {
    let check = "swing-wrong-from-conflict";
    match p.swing(&fx.record, fx.other, fx.b, fx.ttl).await {
        Err(e) if e.kind == ErrorKind::Conflict => {}
        Err(e) => {
            return Err(fail(
                check,
                format!("expected Conflict, got {:?}: {e}", e.kind),
            ));
        }
        Ok(()) => return Err(fail(check, "expected Conflict, the swing succeeded")),
    }
    expect_state(p, check, &fx.record, &[fx.a], fx.ttl)
        .await
        .map(|_| ())
}

/// `swing` a → b is observable at once, repeating it is success, and b → a brings it back.
pub async fn swing_there_and_back(
    p: &dyn DnsProvider,
    fx: &DnsFixture,
) -> Result<(), DnsConformanceFailure> {
    let check = "swing-there-and-back";
    p.swing(&fx.record, fx.a, fx.b, fx.ttl)
        .await
        .map_err(|e| fail(check, format!("swing a→b: {e}")))?;
    expect_state(p, check, &fx.record, &[fx.b], fx.ttl).await?;
    p.swing(&fx.record, fx.a, fx.b, fx.ttl).await.map_err(|e| {
        fail(
            check,
            format!("repeated swing a→b (already done) must succeed: {e}"),
        )
    })?;
    p.swing(&fx.record, fx.b, fx.a, fx.ttl)
        .await
        .map_err(|e| fail(check, format!("swing b→a: {e}")))?;
    expect_state(p, check, &fx.record, &[fx.a], fx.ttl)
        .await
        .map(|_| ())
}
