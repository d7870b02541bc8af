//! The engine's front door: one call per thing a person asks of swing.
//!
//! - [`plan()`]: compile a validated plan, observe the site (or not, offline), diff, and the
//!   saved plan `--out` writes.
//! - [`apply()`]: re-observe, refuse a stale saved plan or uncovered drift, then run (or
//!   resume) exactly the planned steps.
//! - [`assess()`]: what keeps a saved plan from being applied as it is (offline, modified,
//!   its source changed, the site moved), as typed [`StaleReason`]s; [`trust()`]: whether a
//!   saved plan may be acted on at all (intact, signed as required), from the file alone.
//!
//! - [`doctor()`]: whether the site is ready for the change — everything observed and
//!   probed read-only, judged into a report of checks with their fixes.
//!
//! - [`status()`]: where a change stands, from its journal and the site's lock alone;
//!   [`report()`]: the change record for the ticket, from the journal and the saved plan.
//!
//! A rehearsal (`swing rehearse`: an apply against a simulated copy of the site) is built on
//! these same calls — [`plan()`] and [`apply()`] against the twin's providers — by the
//! testkit, which alone may know the simulator.
//!
//! Owns: the order of the steps of each use case and the typed outcome it returns. Must
//! not: parse arguments, print, pick colours or exit codes, build providers or resolve
//! secrets (the caller hands in [`Providers`](crate::refresh::Providers)), or know how a
//! step is performed (the executor in [`apply::site`](crate::apply::site) does).

mod apply;
mod assess;
mod doctor;
mod plan;
mod report;
mod status;

pub use apply::{SiteApply, SiteOutcome, apply};
pub use assess::{Assessment, StaleReason, assess, stale_reasons, trust, view_to_run};
pub use doctor::{DoctorSite, doctor};
pub use plan::{PlannedSite, plan};
pub use report::report;
pub use status::{fleet_site, status};

/// Why a site plan or apply did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    #[error(transparent)]
    Compile(#[from] crate::compile::CompileError),
    /// The saved plan cannot be trusted as it is (edited, or not signed as required); refused
    /// before anything was contacted.
    #[error("the saved plan is refused, nothing was contacted:\n  {}", join(.0))]
    Untrusted(Vec<StaleReason>),
    /// The saved plan no longer matches the world; each reason names what moved.
    #[error("the saved plan is stale:\n  {}", join(.0))]
    Stale(Vec<StaleReason>),
    /// The world differs from what the plan expects, in a way the plan does not cover.
    #[error("drift the plan does not cover:\n  {}", .0.join("\n  "))]
    Drift(Vec<String>),
    /// Something the plan starts from could not be observed (each entry names it and why);
    /// nothing was changed.
    #[error(
        "cannot observe what the plan starts from:\n  {}\nNothing was changed. Make sure each is up and reachable, then run again.",
        .0.join("\n  ")
    )]
    Unobserved(Vec<String>),
    #[error(transparent)]
    Apply(#[from] crate::apply::ApplyError),
    #[error(transparent)]
    Journal(#[from] crate::apply::JournalError),
}

fn join(reasons: &[StaleReason]) -> String {
    reasons
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

#[cfg(test)]
mod tests;
