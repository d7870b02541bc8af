//! The plan files of one `swing plan`, read one at a time: first each validated (its
//! diagnostics shown, nothing kept), then each read again and planned — a chunk of files at a
//! time on all cores (`crate::fleet`), results handed on in file order — so a fleet of plans
//! is never in memory at once.
//!
//! Owns: the two passes over the files and the planning of one file. Must not: render or
//! word the plans (the caller's view does).

use std::path::PathBuf;

use swing_engine::ops::{self, PlannedSite};
use swing_engine::validate::{Checked, check_file};

/// Validates every file, printing each one's diagnostics in file order; returns how many
/// have errors.
pub fn count_invalid(files: &[PathBuf]) -> usize {
    let mut invalid = 0;
    let _ = crate::fleet::for_each_ordered(
        files,
        |f| check_file(f),
        |c| {
            crate::views::out::print_diagnostics(&c);
            invalid += usize::from(c.has_errors());
            Ok::<(), ()>(())
        },
    );
    invalid
}

/// Plans every file and hands each result to `then`, in file order; stops at its first
/// error. A file changed since it was validated is validated again and planned only if it
/// still is valid.
pub fn plan_each<E>(
    files: &[PathBuf],
    offline: bool,
    save: bool,
    rt: &tokio::runtime::Runtime,
    then: impl FnMut(Result<PlannedSite, String>) -> Result<(), E>,
) -> Result<(), E> {
    let plan_file = |f: &PathBuf| {
        let c = check_file(f);
        match &c.plan {
            Some(plan) => rt
                .block_on(plan_one(&c, plan, offline, save))
                .map_err(|e| format!("{}: {e}", c.origin)),
            None => {
                crate::views::out::print_diagnostics(&c);
                Err(format!(
                    "{}: the file changed while planning and is no longer valid",
                    c.origin
                ))
            }
        }
    };
    crate::fleet::for_each_ordered(files, plan_file, then)
}

/// Compiles one plan and, unless offline, observes its site and diffs; with `save`, makes
/// its saved plan.
async fn plan_one(
    c: &Checked,
    plan: &swing_engine::validate::ValidPlan,
    offline: bool,
    save: bool,
) -> Result<PlannedSite, String> {
    let base = crate::target::base_dir(&c.origin)?;
    let providers = if offline {
        None
    } else {
        Some(crate::wiring::build(plan, &base).map_err(|e| {
            format!("{e}\n  (planning against live state needs the providers' credentials; `swing plan --offline` needs none)")
        })?)
    };
    ops::plan(plan, &c.origin, &base, providers.as_ref(), save)
        .await
        .map_err(|e| e.to_string())
}
