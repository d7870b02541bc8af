//! Conformance checks for [`NatProvider`]: the behaviour every NAT provider (nftables,
//! iptables, exec) must show against a real backend, written against the trait only.
//!
//! Owns: the NAT contract as executable checks — observe finds the rule by `public`; a swing
//! whose `from` is wrong is a `Conflict` and changes nothing; a swing moves the rule and a
//! later observe shows it (with the `swing:<plan>` comment where the backend keeps comments);
//! a repeated swing is a no-op; swinging back works; an unknown `public` observes as "no rule"
//! and swings as `NotFound`.
//!
//! Must not: know a concrete provider, create or tear down the backend (the caller's test
//! harness does), or panic — a failed check is a [`NatConformanceFailure`] naming the check.

use std::net::SocketAddr;

use swing_engine::provider::{ErrorKind, NatProvider};

/// What the backend looks like before the suite runs.
#[derive(Debug, Clone)]
pub struct NatFixture {
    /// The public address:port whose rule exists and points at `a`.
    pub public: SocketAddr,
    /// Where the rule points at the start.
    pub a: SocketAddr,
    /// The other appliance.
    pub b: SocketAddr,
    /// A public address:port no rule matches.
    pub unknown_public: SocketAddr,
    /// The comment a swing must leave (`swing:<plan>`), if the backend keeps comments.
    pub expect_comment: Option<String>,
}

/// A check of the suite that did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NAT conformance check `{check}` failed: {detail}")]
pub struct NatConformanceFailure {
    pub check: &'static str,
    pub detail: String,
}

fn fail(check: &'static str, detail: impl Into<String>) -> NatConformanceFailure {
    NatConformanceFailure {
        check,
        detail: detail.into(),
    }
}

async fn target_is(
    p: &dyn NatProvider,
    check: &'static str,
    public: SocketAddr,
    want: Option<SocketAddr>,
) -> Result<(), NatConformanceFailure> {
    let obs = p
        .observe(public)
        .await
        .map_err(|e| fail(check, format!("observe failed: {e} ({:?})", e.kind)))?;
    if obs.public != public {
        return Err(fail(
            check,
            format!("observe({public}) reported public {}", obs.public),
        ));
    }
    if obs.target != want {
        return Err(fail(
            check,
            format!(
                "observe({public}) shows target {:?}, expected {want:?}",
                obs.target
            ),
        ));
    }
    Ok(())
}

/// Runs every check in order. The backend ends as it started (rule pointing at `a`).
pub async fn run_all(p: &dyn NatProvider, f: &NatFixture) -> Result<(), NatConformanceFailure> {
    target_is(p, "observe-finds-rule", f.public, Some(f.a)).await?;

    // Compare-and-swap: a wrong `from` is a Conflict and changes nothing. The wrong `from` is
    // a documentation address (RFC 5737); it is only compared, never contacted.
    let wrong_from = SocketAddr::new(std::net::Ipv4Addr::new(192, 0, 2, 1).into(), 9);
    match p.swing(f.public, wrong_from, f.b).await {
        Err(e) if e.kind == ErrorKind::Conflict => {}
        Err(e) => {
            return Err(fail(
                "swing-wrong-from-conflicts",
                format!("expected Conflict, got {:?}: {e}", e.kind),
            ));
        }
        Ok(()) => {
            return Err(fail(
                "swing-wrong-from-conflicts",
                "swing with a wrong `from` succeeded",
            ));
        }
    }
    target_is(p, "swing-wrong-from-changes-nothing", f.public, Some(f.a)).await?;

    p.swing(f.public, f.a, f.b)
        .await
        .map_err(|e| fail("swing-a-to-b", format!("{e} ({:?})", e.kind)))?;
    target_is(p, "swing-a-to-b-observed", f.public, Some(f.b)).await?;
    if let Some(want) = &f.expect_comment {
        let obs = p
            .observe(f.public)
            .await
            .map_err(|e| fail("swing-comment", e.to_string()))?;
        if obs.comment.as_deref() != Some(want.as_str()) {
            return Err(fail(
                "swing-comment",
                format!("comment is {:?}, expected {want:?}", obs.comment),
            ));
        }
    }

    p.swing(f.public, f.a, f.b).await.map_err(|e| {
        fail(
            "swing-repeated-is-noop",
            format!("a repeated swing failed: {e} ({:?})", e.kind),
        )
    })?;
    target_is(p, "swing-repeated-is-noop", f.public, Some(f.b)).await?;

    target_is(p, "observe-unknown-is-none", f.unknown_public, None).await?;
    match p.swing(f.unknown_public, f.a, f.b).await {
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(fail(
                "swing-unknown-not-found",
                format!("expected NotFound, got {:?}: {e}", e.kind),
            ));
        }
        Ok(()) => {
            return Err(fail(
                "swing-unknown-not-found",
                "swing of a public address without a rule succeeded",
            ));
        }
    }

    p.swing(f.public, f.b, f.a)
        .await
        .map_err(|e| fail("swing-back", format!("{e} ({:?})", e.kind)))?;
    target_is(p, "swing-back-observed", f.public, Some(f.a)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The suite must be able to fail: run it against a correct in-memory provider and
    //! against deliberately broken ones.
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use swing_engine::provider::{NatObservation, ProviderError, ProviderResult};

    use super::*;

    #[derive(Clone, Copy, PartialEq)]
    enum Bug {
        None,
        NoCasCheck,
        SwingDoesNothing,
        NoIdempotence,
    }

    struct Mem {
        rules: Mutex<HashMap<SocketAddr, (SocketAddr, Option<String>)>>,
        bug: Bug,
    }

    #[async_trait]
    impl NatProvider for Mem {
        async fn observe(&self, public: SocketAddr) -> ProviderResult<NatObservation> {
            let rules = self.rules.lock().unwrap();
            let r = rules.get(&public);
            Ok(NatObservation {
                public,
                target: r.map(|r| r.0),
                comment: r.and_then(|r| r.1.clone()),
            })
        }
        async fn swing(
            &self,
            public: SocketAddr,
            from: SocketAddr,
            to: SocketAddr,
        ) -> ProviderResult<()> {
            let mut rules = self.rules.lock().unwrap();
            let Some(rule) = rules.get_mut(&public) else {
                return Err(ProviderError::new(ErrorKind::NotFound, "no rule"));
            };
            if rule.0 == to && self.bug != Bug::NoIdempotence {
                return Ok(());
            }
            if rule.0 != from && self.bug != Bug::NoCasCheck {
                return Err(ProviderError::new(ErrorKind::Conflict, "not at from"));
            }
            if self.bug != Bug::SwingDoesNothing {
                *rule = (to, Some("swing:t".into()));
            }
            Ok(())
        }
    }

    fn fixture() -> NatFixture {
        NatFixture {
            public: "203.0.113.10:443".parse().unwrap(),
            a: "10.0.0.11:443".parse().unwrap(),
            b: "10.0.0.12:443".parse().unwrap(),
            unknown_public: "203.0.113.99:443".parse().unwrap(),
            expect_comment: Some("swing:t".into()),
        }
    }

    fn mem(bug: Bug) -> Mem {
        let f = fixture();
        Mem {
            rules: Mutex::new(HashMap::from([(f.public, (f.a, None))])),
            bug,
        }
    }

    fn run(p: &Mem) -> Result<(), NatConformanceFailure> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(run_all(p, &fixture()))
    }

    #[test]
    fn correct_provider_passes() {
        run(&mem(Bug::None)).unwrap();
    }

    #[test]
    fn broken_providers_fail_the_named_check() {
        assert_eq!(
            run(&mem(Bug::NoCasCheck)).unwrap_err().check,
            "swing-wrong-from-conflicts"
        );
        assert_eq!(
            run(&mem(Bug::SwingDoesNothing)).unwrap_err().check,
            "swing-a-to-b-observed"
        );
        assert_eq!(
            run(&mem(Bug::NoIdempotence)).unwrap_err().check,
            "swing-repeated-is-noop"
        );
    }
}
