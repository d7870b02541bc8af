//! `swing status`: where a change stands — the plan compiled offline (its steps, phases and
//! windows), the change's journal and the site's lock holder read, judged by
//! [`crate::status::status`].
//!
//! Owns: which files are read. Must not: write anything, take the lock (an apply may hold
//! it), contact the site, or print.

use std::path::Path;

use swing_schema::status::StatusView;

use super::SiteError;
use crate::apply::lock::read_lock;
use crate::apply::{Journal, LockKey, lock_path};

/// What is on record of `plan`'s change: the plan compiled offline (its steps, phases and
/// windows) and the change's journal in `state_dir` — what status and report read.
pub(super) fn on_record(
    plan: &crate::validate::ValidPlan,
    source: &str,
    state_dir: &Path,
) -> Result<(crate::compile::CompiledPlan, Vec<crate::apply::Record>), SiteError> {
    let compiled = crate::compile::compile(
        plan,
        &crate::compile::CompileOptions {
            offline: true,
            file: Some(source.to_owned()),
        },
    )?;
    let records = Journal::read(&Journal::path_for(state_dir, &plan.name))?;
    Ok((compiled, records))
}

/// The status of `plan`'s change, with its journal in `state_dir` and the site's lock in
/// `lock_dir`. `now_ms`: the engine clock.
pub fn status(
    plan: &crate::validate::ValidPlan,
    source: &str,
    state_dir: &Path,
    lock_dir: &Path,
    now_ms: i64,
) -> Result<StatusView, SiteError> {
    let (compiled, records) = on_record(plan, source, state_dir)?;
    let lock = read_lock(&lock_path(lock_dir, &LockKey::site(&plan.site)));
    Ok(crate::status::status(
        &compiled,
        &records,
        lock.as_ref(),
        now_ms,
    ))
}
