//! `swing unlock PLAN --force [--state-dir DIR]`: remove a site's apply lock left behind.
//!
//! Without `--force` it only shows the holder. With it, it warns and removes the lock file.
//! Must not: touch the journal (a later `swing apply --resume` continues from it).

use std::path::PathBuf;

use swing_engine::apply::lock::{force_unlock, lock_path, read_lock};
use swing_engine::planfile::SavedPlan;

use crate::exit::{CliError, CliResult, Exit};

/// Arguments of `swing unlock`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnlockArgs {
    /// The saved plan or plan file whose site to unlock.
    pub file: PathBuf,
    /// Remove the lock even though an apply may still hold it.
    #[arg(long)]
    pub force: bool,
    /// State directory. Default: `.swing/` next to the plan.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Runs `swing unlock`.
pub fn run(args: &UnlockArgs) -> CliResult {
    let site = if SavedPlan::sniff(&args.file) {
        SavedPlan::read(&args.file)?.plan.site
    } else {
        match swing_engine::validate::check_file(&args.file).plan {
            Some(p) => p.into_plan().site,
            None => {
                return Err(CliError::msg(format!(
                    "{} is not a valid plan; run `swing validate` on it",
                    args.file.display()
                )));
            }
        }
    };
    let state = args
        .state_dir
        .clone()
        .unwrap_or_else(|| swing_engine::apply::default_state_dir(&args.file));
    let path = lock_path(&state, &site);
    let Some(holder) = read_lock(&path) else {
        if path.exists() {
            eprintln!("warning: the lock file {} is unreadable", path.display());
        } else {
            println!("{site} is not locked.");
            return Ok(Exit::Ok);
        }
        if !args.force {
            eprintln!("Pass --force to remove it.");
            return Ok(Exit::Error);
        }
        force_unlock(&path)?;
        return Ok(Exit::Ok);
    };
    if !args.force {
        println!("{site} is locked by {holder}.");
        println!(
            "If that apply is dead, run `swing unlock --force {}`.",
            args.file.display()
        );
        return Ok(Exit::Error);
    }
    eprintln!(
        "warning: removing the lock of {site} held by {holder}. If that apply is still running, two applies may now change the site at once."
    );
    force_unlock(&path)?;
    println!("Unlocked {site}. Continue an interrupted apply with `swing apply --resume`.");
    Ok(Exit::Ok)
}
