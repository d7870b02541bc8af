//! `swing unlock PLAN [--force] [--state URL]`: show a site's apply lock, or remove one left
//! behind.
//!
//! The lock lives in the state store: locally host-wide (`$XDG_STATE_HOME/swing/locks`, see
//! `crate::target::lock_dir`), or in PostgreSQL. Without `--force` it only shows the holder.
//! With it, it removes the lock only when nobody holds it any more; a holder that is alive
//! still holds the OS lock (or its database session), and then it refuses (exit 4), naming
//! the holder, its pid, host and start. Must not: touch the journal (a later
//! `swing apply --resume` continues from it).

use std::path::PathBuf;

use swing_engine::apply::LockError;

use crate::exit::{CliError, CliResult, Exit};

/// Arguments of `swing unlock`.
#[derive(Debug, Clone, clap::Args)]
pub struct UnlockArgs {
    /// The saved plan or plan file whose site to unlock.
    pub file: PathBuf,
    /// Remove the lock its holder left behind (refused while the holder is alive).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub state: crate::target::StateArgs,
}

/// Runs `swing unlock`.
pub fn run(args: &UnlockArgs) -> CliResult {
    let t = crate::target::locate_file(&args.file, args.state.state_dir.as_deref())
        .map_err(CliError::msg)?;
    let site = t.plan.site.clone();
    let store = crate::wiring::store(Some(&t.plan), &t.base_dir, &args.state, &t.state_dir)?;
    let holder = store.holder(&site);
    if !args.force {
        match holder {
            Some(h) => println!("{site} is locked by {} ({}).", shown(&h), store.describe()),
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
    match store.force_unlock(&site) {
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
        Err(LockError::HeldUnknown { at }) => {
            eprintln!(
                "error: refusing to unlock {site}: a running process holds {} (holder unreadable).",
                shown(&at)
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
