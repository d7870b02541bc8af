//! `swing apply`: re-observe under the site lock, refuse a stale saved plan or uncovered
//! drift, then run (or resume) exactly the planned steps.
//!
//! Owns: the refusals before anything changes and the hand-over to [`crate::apply`]. Must
//! not: perform a step (the executor does) or decide their order (the walker does).

use std::path::PathBuf;
use std::sync::Arc;

use super::SiteError;
use crate::apply::site::{SiteExecutor, step_specs};
use crate::apply::{self as run, LockOptions, WalkOptions, WalkResult};
use crate::refresh::Providers;

/// What `swing apply` runs.
pub struct SiteApply {
    pub plan: crate::validate::ValidPlan,
    /// The saved plan being applied (`None`: a plan file applied directly).
    pub saved: Option<crate::planfile::SavedPlan>,
    pub source: String,
    pub base_dir: PathBuf,
    /// Where the journal, the site lock and the saved-plan records live.
    pub store: Arc<dyn run::Store>,
    pub resume: bool,
    /// Let the journal decide (`swing fleet`): a change it records as done or failed is not
    /// run again ([`SiteOutcome::OnRecord`]), an unfinished one is resumed, and only one
    /// with no journal starts fresh — judged under the site lock, so a runner that took the
    /// site after another finished it does nothing.
    pub from_journal: bool,
    /// Apply a saved plan only when signed by this key (`--require-signature`).
    pub require_signature: Option<crate::signing::PublicKey>,
    pub walk: WalkOptions,
}

/// What came of `swing apply`.
#[derive(Debug)]
pub enum SiteOutcome {
    /// Nothing to do: "No changes. The site matches the plan."
    NoChanges,
    Ran(Box<WalkResult>),
    /// With [`SiteApply::from_journal`]: the journal says the change is done or failed;
    /// nothing was run.
    OnRecord(crate::fleet::SiteState),
}

/// Appliance id → the plan's name, for the prober's "served by".
fn appliance_labels(
    observed: &crate::refresh::Observed,
) -> std::collections::BTreeMap<String, String> {
    observed
        .appliances
        .iter()
        .filter_map(|(name, o)| {
            let id = o.as_ref().ok()?.appliance_id.clone()?;
            Some((id, name.clone()))
        })
        .collect()
}

/// `swing apply`: re-observe, refuse a stale saved plan or uncovered drift, then run (or
/// resume) exactly the planned steps.
pub async fn apply(req: SiteApply, providers: Providers) -> Result<SiteOutcome, SiteError> {
    // Trust first, from the file alone: an edited saved plan must not reach any provider.
    if let Some(saved) = &req.saved {
        let refused = super::trust(saved, req.require_signature.as_ref());
        if !refused.is_empty() {
            return Err(SiteError::Untrusted(refused));
        }
    } else if req.require_signature.is_some() {
        return Err(SiteError::Untrusted(vec![super::StaleReason::Unsigned]));
    }
    let compiled = Arc::new(crate::compile::compile(
        &req.plan,
        &crate::compile::CompileOptions {
            offline: false,
            file: Some(req.source.clone()),
        },
    )?);
    // One apply per site: hold the lock while observing, so a second apply is refused
    // (exit 4) instead of seeing the first one's changes as drift.
    let store = req.store.clone();
    let (site, change) = (req.plan.site.as_str(), req.plan.name.as_str());
    let guard = store
        .lock(site, change, LockOptions::default())
        .map_err(run::ApplyError::from)?;
    let mut walk = req.walk;
    let mut req_resume = req.resume;
    if req.from_journal {
        use crate::fleet::SiteState;
        match SiteState::of(&store.records(site, change)?, false) {
            s @ (SiteState::Done | SiteState::Failed) => return Ok(SiteOutcome::OnRecord(s)),
            SiteState::NotStarted => req_resume = false,
            SiteState::Paused | SiteState::Interrupted | SiteState::Running => req_resume = true,
        }
    }
    let resume = req_resume;
    let steps: Vec<String> = if resume {
        if walk.probe.is_some() {
            let observed = crate::refresh::refresh(&req.plan, &providers).await;
            walk.probe_labels = appliance_labels(&observed);
        }
        // The world moved because of this apply: the journal, not the fingerprint, decides.
        run::journal_steps(store.as_ref(), site, change)?
    } else {
        let observed = crate::refresh::refresh(&req.plan, &providers).await;
        walk.probe_labels = appliance_labels(&observed);
        let d = crate::diff::diff(&compiled, &observed);
        if !d.unobserved.is_empty() {
            return Err(SiteError::Unobserved(d.unobserved));
        }
        match &req.saved {
            Some(saved) => {
                let stale =
                    super::stale_reasons(saved, &crate::refresh::Fingerprint::of(&observed));
                if !stale.is_empty() {
                    return Err(SiteError::Stale(stale));
                }
                if !saved.drift.is_empty() {
                    return Err(SiteError::Drift(saved.drift.clone()));
                }
                saved.steps.clone()
            }
            None => {
                if !d.drift.is_empty() {
                    return Err(SiteError::Drift(d.drift));
                }
                d.needed
            }
        }
    };
    if steps.is_empty() && !resume {
        return Ok(SiteOutcome::NoChanges);
    }
    let specs = step_specs(&compiled, &steps, &providers);
    let records = if resume {
        store.records(site, change)?
    } else {
        Vec::new()
    };
    if let Some(saved) = &req.saved {
        // Under the lock: the store keeps which saved plan (and whose signature) was applied.
        store.record_saved_plan(
            site,
            &run::SavedPlanRecord {
                change: change.to_owned(),
                digest: saved.digest.clone(),
                signer: saved.signature.as_ref().map(|s| s.fingerprint.clone()),
            },
        )?;
    }
    let exec = Arc::new(SiteExecutor::new(
        compiled.clone(),
        providers,
        req.base_dir.clone(),
        walk.clock.clone(),
        &records,
    ));
    let apply_req = run::ApplyRequest {
        store: store.clone(),
        change: req.plan.name.clone(),
        site: req.plan.site.clone(),
        plan_digest: crate::planfile::plan_digest(&req.plan),
        source: Some(req.source.clone()),
        resume,
        lock: LockOptions::default(),
        walk,
    };
    let result = run::run_locked(&apply_req, &specs, exec, guard).await?;
    Ok(SiteOutcome::Ran(Box::new(result)))
}
