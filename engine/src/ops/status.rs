//! `swing status`: where a change stands — the plan compiled offline (its steps, phases and
//! windows), the change's journal and the site's lock holder read, judged by
//! [`crate::status::status`].
//!
//! Owns: which files are read. Must not: write anything, take the lock (an apply may hold
//! it), contact the site, or print.

use swing_schema::status::StatusView;

use super::SiteError;
use crate::apply::Store;

/// What is on record of `plan`'s change: the plan compiled offline (its steps, phases and
/// windows) and the change's journal in `store` — what status and report read.
pub(super) fn on_record(
    plan: &crate::validate::ValidPlan,
    source: &str,
    store: &dyn Store,
) -> Result<(crate::compile::CompiledPlan, Vec<crate::apply::Record>), SiteError> {
    let compiled = crate::compile::compile(
        plan,
        &crate::compile::CompileOptions {
            offline: true,
            file: Some(source.to_owned()),
        },
    )?;
    let records = store.records(&plan.site, &plan.name)?;
    Ok((compiled, records))
}

/// The status of `plan`'s change, with its journal and the site's lock in `store`.
/// `now_ms`: the engine clock.
pub fn status(
    plan: &crate::validate::ValidPlan,
    source: &str,
    store: &dyn Store,
    now_ms: i64,
) -> Result<StatusView, SiteError> {
    let (compiled, records) = on_record(plan, source, store)?;
    let lock = store.holder(&plan.site);
    Ok(crate::status::status(
        &compiled,
        &records,
        lock.as_ref(),
        now_ms,
    ))
}

/// What is on record of one site of a fleet: its status, state and measured downtime, from
/// one offline compile, one read of its journal and one of its lock.
pub fn fleet_site(
    plan: &crate::validate::ValidPlan,
    source: &str,
    store: &dyn Store,
    now_ms: i64,
) -> Result<crate::fleet::SiteFacts, SiteError> {
    let (compiled, records) = on_record(plan, source, store)?;
    let lock = store.holder(&plan.site);
    Ok(crate::fleet::SiteFacts::of(
        &compiled,
        &records,
        lock.as_ref(),
        source,
        now_ms,
    ))
}
