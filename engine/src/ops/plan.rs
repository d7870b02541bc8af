//! `swing plan`: compile, observe, diff, and the saved plan `--out` writes.
//!
//! Owns: the order compile → refresh → diff → view → saved plan. Must not: write the saved
//! plan (the caller decides where), print, or change the world.

use super::SiteError;
use crate::compile::CompiledPlan;
use crate::refresh::Providers;

/// What `swing plan` made of one plan: the compiled plan, the diff against what was
/// observed, the view every renderer reads, and (when asked for) the saved plan `--out`
/// writes.
#[derive(Debug)]
pub struct PlannedSite {
    /// The plan file as named (what messages call it).
    pub source: String,
    pub compiled: CompiledPlan,
    pub diff: crate::diff::Diff,
    pub view: swing_schema::output::PlanView,
    /// With `save`: the saved plan, its digest over everything an apply reads.
    pub saved: Option<crate::planfile::SavedPlan>,
}

/// `swing plan` with refresh (or `--offline` when `providers` is `None`): compile, observe,
/// diff, and with `save` the saved plan that `--out` writes (its digest covers the whole plan
/// view, so it is made only when wanted).
pub async fn plan(
    plan: &crate::validate::ValidPlan,
    source: &str,
    base_dir: &std::path::Path,
    providers: Option<&Providers>,
    save: bool,
) -> Result<PlannedSite, SiteError> {
    let offline = providers.is_none();
    let compiled = crate::compile::compile(
        plan,
        &crate::compile::CompileOptions {
            offline,
            file: Some(source.to_owned()),
        },
    )?;
    let (d, fingerprint, view) = match providers {
        Some(p) => {
            let observed = crate::refresh::refresh(plan, p).await;
            let d = crate::diff::diff(&compiled, &observed);
            let view = crate::view::refreshed(&compiled, &observed, &d);
            (d, crate::refresh::Fingerprint::of(&observed), view)
        }
        None => (
            crate::diff::Diff {
                needed: compiled.steps.iter().map(|s| s.id.clone()).collect(),
                ..crate::diff::Diff::default()
            },
            crate::refresh::Fingerprint::default(),
            crate::view::build(&compiled),
        ),
    };
    let saved = save.then(|| {
        crate::planfile::SavedPlan::new(
            plan,
            source,
            base_dir,
            offline,
            d.needed.clone(),
            d.drift.clone(),
            fingerprint,
            serde_json::to_value(&view).unwrap_or(serde_json::Value::Null),
        )
    });
    Ok(PlannedSite {
        source: source.to_owned(),
        compiled,
        diff: d,
        view,
        saved,
    })
}
