//! `swing unlock PLAN [--force]`: show a site's apply lock, or remove one left behind.
//!
//! The lock is host-wide (`$XDG_STATE_HOME/swing/locks`, see `crate::target::lock_dir`).
//! Without `--force` it only shows the holder. With it, it removes the lock only when nobody
//! holds it any more; a holder that is alive on this host still holds the OS lock, and then
//! it refuses (exit 4), naming the holder, its pid, host and start. Must not: touch the
//! journal (a later `swing apply --resume` continues from it).

use std::path::PathBuf;

use swing_engine::apply::lock::{LockError, LockKey, force_unlock, lock_path, read_lock};
use swing_engine::planfile::SavedPlan;

use crate::exit::{CliError, CliResult, Exit};

/// Arguments of `swing unlock`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnlockArgs {
    /// The saved plan or plan file whose site to unlock.
    pub file: PathBuf,
    /// Remove the lock its holder left behind (refused while the holder is alive).
    #[arg(long)]
    pub force: bool,
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
    let lock_dir = crate::target::lock_dir().map_err(CliError::msg)?;
    let path = lock_path(&lock_dir, &LockKey::site(&site));
    let holder = read_lock(&path);
    if !args.force {
        match holder {
            Some(h) => println!("{site} is locked by {} ({}).", shown(&h), path.display()),
            None if path.exists() => println!("{site} has an unreadable lock {}.", path.display()),
            None => {
                println!("{site} is not locked.");
                return Ok(Exit::Ok);
            }
        }
        println!(
            "If that apply is dead, run `swing unlock --force {}`.",
            args.file.display()
        );
        return Ok(Exit::Error);
    }
    match force_unlock(&path) {
        Ok(None) => println!("{site} is not locked."),
        Ok(Some(h)) => println!(
            "Unlocked {site} (the lock of {}, whose apply is gone). Continue it with `swing apply --resume`.",
            shown(&h)
        ),
        Err(LockError::Held { holder, .. }) => {
            eprintln!(
                "error: refusing to unlock {site}: the apply holding it is alive: {}. Wait for it to finish, or stop that process first.",
                shown(&holder)
            );
            return Ok(Exit::Locked);
        }
        Err(LockError::HeldUnknown { .. }) => {
            eprintln!(
                "error: refusing to unlock {site}: a running process holds {} (holder unreadable).",
                path.display()
            );
            return Ok(Exit::Locked);
        }
        Err(e) => return Err(CliError::new(e)),
    }
    Ok(Exit::Ok)
}

/// A holder as read from the lock file, on one line and without control characters: the file
/// is data, whoever wrote it.
fn shown(holder: &impl std::fmt::Display) -> String {
    swing_engine::render::escape::terminal_line(&holder.to_string())
}
