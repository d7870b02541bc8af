//! `swing report`: the change record — the plan compiled offline, the change's journal read,
//! and the saved plan (for its digest and signer) when one is given, else the signer the
//! state store recorded with the change's latest saved plan — built by
//! [`crate::report::report`].
//!
//! Owns: which files are read. Must not: write anything, take the lock, contact the site,
//! or print.

use swing_schema::report::ChangeReport;

use super::SiteError;
use crate::planfile::SavedPlan;

/// The record of `plan`'s change, with its journal in `store`.
pub fn report(
    plan: &crate::validate::ValidPlan,
    source: &str,
    saved: Option<&SavedPlan>,
    store: &dyn crate::apply::Store,
    now_ms: i64,
) -> Result<ChangeReport, SiteError> {
    let (compiled, records) = super::status::on_record(plan, source, store)?;
    let mut r = crate::report::report(&compiled, &records, saved, now_ms);
    if saved.is_none() {
        r.signed_by = store
            .saved_plans(&plan.site, &plan.name)?
            .into_iter()
            .next_back()
            .and_then(|s| s.signer);
    }
    Ok(r)
}
