//! Assessing a saved plan: what keeps it from being applied as it is, as typed reasons.
//!
//! Owns: the staleness rules a saved plan is held to (made offline, changed after it was
//! written, its source file changed, the site moved since it was observed). Must not: word
//! the marks `swing show` prints (the view does, by matching [`StaleReason`]) or refuse
//! anything itself (`apply` refuses on [`stale_reasons`]).

use std::path::PathBuf;

use crate::planfile::{SavedPlan, plan_digest};
use crate::refresh::{Fingerprint, FingerprintChange, Providers};

/// One reason a saved plan must not be applied as it is. `Display` gives the text a
/// refused apply prints.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleReason {
    /// Made with `--offline`: nothing was observed, so nothing can be checked.
    Offline,
    /// The embedded plan no longer matches its recorded digest.
    Modified,
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
            StaleReason::SourceChanged { path } => write!(
                f,
                "{} changed since this plan was made; plan again.",
                path.display()
            ),
            StaleReason::Moved(c) => write!(f, "stale: {c}"),
        }
    }
}

/// Why `saved` must not be applied against the world as it is `now` (empty: still
/// current). Offline and modified plans stop at that one reason.
pub fn stale_reasons(saved: &SavedPlan, now: &Fingerprint) -> Vec<StaleReason> {
    if saved.offline {
        return vec![StaleReason::Offline];
    }
    if plan_digest(&saved.plan) != saved.plan_digest {
        return vec![StaleReason::Modified];
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

/// Assesses a saved plan: offline, modified, whether its source file changed, and — when
/// `providers` is given and the plan is not offline — whether the site moved since.
pub async fn assess(saved: &SavedPlan, providers: Option<&Providers>) -> Assessment {
    let modified = plan_digest(&saved.plan) != saved.plan_digest;
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
        Some(p) if !saved.offline => {
            let observed = crate::refresh::refresh(&saved.plan, p).await;
            Some(stale_reasons(saved, &Fingerprint::of(&observed)))
        }
        _ => None,
    };
    Assessment {
        offline: saved.offline,
        modified,
        source_changed,
        refreshed,
    }
}
