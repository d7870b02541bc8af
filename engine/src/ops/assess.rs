//! Assessing a saved plan: what keeps it from being applied as it is, as typed reasons.
//!
//! Owns: the trust and staleness rules a saved plan is held to (changed after it was written
//! — any member, see `planfile` — signed by the required key, made offline, its source file
//! changed, the site moved since it was observed). [`trust`] is judged from the file alone,
//! before anything is contacted. Must not: word the marks `swing show` prints (the view does,
//! by matching [`StaleReason`]) or refuse anything itself (`apply` refuses on [`trust`] and
//! [`stale_reasons`]).

use std::path::PathBuf;

use crate::planfile::{SavedPlan, plan_digest};
use crate::refresh::{Fingerprint, FingerprintChange, Providers};
use crate::signing::{PublicKey, SignatureCheck};

/// One reason a saved plan must not be applied as it is. `Display` gives the text a
/// refused apply prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleReason {
    /// Made with `--offline`: nothing was observed, so nothing can be checked.
    Offline,
    /// A member of the saved plan no longer matches its recorded digest.
    Modified,
    /// A signature was required and the saved plan has none.
    Unsigned,
    /// The signature does not verify over the saved plan's digest.
    BadSignature { signer: String },
    /// Signed, but not by the key that was required.
    SignedByAnother { signer: String, required: String },
    /// The plan file it was made from now holds a different plan.
    SourceChanged { path: PathBuf },
    /// A fact the plan pinned has moved (`appliance b is now 25.1.3, ...`).
    Moved(FingerprintChange),
}

impl StaleReason {
    /// The version of `appliance` moved from `planned` to `now`.
    pub fn version_moved(&self) -> Option<(&str, &str, &str)> {
        match self {
            StaleReason::Moved(FingerprintChange::Moved {
                resource,
                fact,
                now,
                planned,
            }) if fact == "version" => Some((
                resource.strip_prefix("appliance ").unwrap_or(resource),
                now,
                planned,
            )),
            _ => None,
        }
    }
}

impl std::fmt::Display for StaleReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaleReason::Offline => f.write_str(
                "the plan was made with --offline (nothing was observed); make it again without --offline to apply it",
            ),
            StaleReason::Modified => {
                f.write_str("the saved plan was modified after it was written (digest mismatch)")
            }
            StaleReason::Unsigned => f.write_str(
                "the saved plan is not signed, and a signature is required (make it with `swing plan --out FILE --sign KEYREF`)",
            ),
            StaleReason::BadSignature { signer } => write!(
                f,
                "the signature by {signer} does not verify: the saved plan was changed after it was signed"
            ),
            StaleReason::SignedByAnother { signer, required } => write!(
                f,
                "the saved plan is signed by {signer}, not by the required key {required}"
            ),
            StaleReason::SourceChanged { path } => write!(
                f,
                "{} changed since this plan was made; plan again.",
                path.display()
            ),
            StaleReason::Moved(c) => write!(f, "stale: {c}"),
        }
    }
}

/// Whether the saved plan may be acted on at all, judged from the file alone, before any
/// provider is contacted: every member is covered by its digest, a signature present
/// verifies, and — when `required` is given — it is signed by that key. Empty: trusted.
pub fn trust(saved: &SavedPlan, required: Option<&PublicKey>) -> Vec<StaleReason> {
    if !saved.is_intact() {
        return vec![StaleReason::Modified];
    }
    match (crate::signing::check(saved), required) {
        (SignatureCheck::Invalid { signer }, _) => vec![StaleReason::BadSignature { signer }],
        (SignatureCheck::Unsigned, Some(_)) => vec![StaleReason::Unsigned],
        (SignatureCheck::Valid { signer }, Some(key)) if signer != key.fingerprint() => {
            vec![StaleReason::SignedByAnother {
                signer,
                required: key.fingerprint(),
            }]
        }
        _ => Vec::new(),
    }
}

/// Why `saved` must not be applied against the world as it is `now` (empty: still
/// current). Modified and offline plans stop at that one reason; a modified plan first,
/// since none of its members (its `offline` flag included) can be believed.
pub fn stale_reasons(saved: &SavedPlan, now: &Fingerprint) -> Vec<StaleReason> {
    if !saved.is_intact() {
        return vec![StaleReason::Modified];
    }
    if saved.offline {
        return vec![StaleReason::Offline];
    }
    saved
        .fingerprint
        .changes(now)
        .into_iter()
        .map(StaleReason::Moved)
        .collect()
}

/// What an assessment of a saved plan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// Made with `--offline`.
    pub offline: bool,
    /// Changed after it was written (digest mismatch).
    pub modified: bool,
    /// Who signed it, and whether the signature verifies.
    pub signature: SignatureCheck,
    /// The plan file it was made from (when it can still be found) holds another plan now.
    pub source_changed: Option<PathBuf>,
    /// What observing the site found ([`stale_reasons`]); `None` when the site was not
    /// observed (no providers given, or an offline plan).
    pub refreshed: Option<Vec<StaleReason>>,
}

impl Assessment {
    /// True when nothing was found that keeps the plan from being applied (as far as was
    /// looked: an unobserved site is not a reason).
    pub fn appliable(&self) -> bool {
        !self.offline
            && !self.modified
            && self.source_changed.is_none()
            && self.refreshed.as_ref().is_none_or(Vec::is_empty)
    }
}

/// Assesses a saved plan: offline, modified, signed, whether its source file changed, and —
/// when `providers` is given and the plan is neither offline nor modified — whether the site
/// moved since. `plan` is the saved plan's embedded plan, validated (`SavedPlan::valid_plan`).
pub async fn assess(
    saved: &SavedPlan,
    plan: &crate::validate::ValidPlan,
    providers: Option<&Providers>,
) -> Assessment {
    let modified = !saved.is_intact();
    let source = std::path::Path::new(&saved.source);
    let source = if source.is_absolute() || source.exists() {
        source.to_path_buf()
    } else {
        saved.base_dir.join(source.file_name().unwrap_or_default())
    };
    let source_changed = source
        .is_file()
        .then(|| {
            let now = crate::validate::check_file(&source).plan;
            let same = now
                .as_ref()
                .is_some_and(|p| plan_digest(p) == saved.plan_digest);
            (!same).then_some(source)
        })
        .flatten();
    let refreshed = match providers {
        Some(p) if !saved.offline && !modified => {
            let observed = crate::refresh::refresh(plan, p).await;
            Some(stale_reasons(saved, &Fingerprint::of(&observed)))
        }
        _ => None,
    };
    Assessment {
        offline: saved.offline,
        modified,
        signature: crate::signing::check(saved),
        source_changed,
        refreshed,
    }
}

/// The view of what applying `saved` would run: its embedded plan compiled again and narrowed
/// to the saved steps and drift. `swing show` renders this when the saved plan is modified, so
/// a stored view can never show anything but what runs.
pub fn view_to_run(
    saved: &SavedPlan,
    plan: &crate::validate::ValidPlan,
) -> Result<swing_schema::output::PlanView, crate::compile::CompileError> {
    let compiled = crate::compile::compile(
        plan,
        &crate::compile::CompileOptions {
            offline: saved.offline,
            file: Some(saved.source.clone()),
        },
    )?;
    let diff = crate::diff::Diff {
        needed: saved.steps.clone(),
        drift: saved.drift.clone(),
        ..crate::diff::Diff::default()
    };
    Ok(crate::view::refreshed(
        &compiled,
        &crate::refresh::Observed::default(),
        &diff,
    ))
}
