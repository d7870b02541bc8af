//! Opening state files so that the state directory cannot be turned against its owner.
//!
//! Every directory swing keeps state or backups in (the journal directory, the host-wide lock
//! directory, the plan's backup directory) is made private (0700) when missing, and refused
//! when it is a symlink, not a directory, owned by another user, or writable by group or
//! others — someone else could then swap the files in it. Every state file (journal, lock) is
//! opened with `O_NOFOLLOW`, so a symlink planted in its place is refused instead of followed,
//! and must be a regular file owned by this user. Each refusal says what to do
//! (`chmod 700 …`, `remove the symlink …`).
//!
//! Owns: those checks and the open calls that apply them. Must not: know the layout of the
//! state directory (file names are [`super::lock`]'s and [`super::journal`]'s), decide exit
//! codes or print.

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a state directory or file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateFsError {
    #[error(
        "{path} is a symlink; swing does not follow symlinks for its state: remove the symlink (rm {path}) and run again"
    )]
    Symlink { path: PathBuf },
    #[error("{path} must be a {expected}; move it away and run again")]
    WrongType {
        path: PathBuf,
        expected: &'static str,
    },
    #[error(
        "{path} is owned by uid {owner}, not by this user (uid {me}); use a directory of your own (chown {me} {path})"
    )]
    Owner { path: PathBuf, owner: u32, me: u32 },
    #[error(
        "{path} is writable by other users (mode {mode:o}), so they could replace swing's files in it: chmod 700 {path}"
    )]
    Writable { path: PathBuf, mode: u32 },
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StateFsError {
    /// The refusal as an `io::Error` (for the journal's and the lock's error types).
    pub fn into_io(self) -> std::io::Error {
        match self {
            StateFsError::Io { source, .. } => source,
            other => std::io::Error::new(std::io::ErrorKind::PermissionDenied, other.to_string()),
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateFsError + '_ {
    move |source| StateFsError::Io {
        path: path.to_owned(),
        source,
    }
}

fn me() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Checks ownership and mode of something swing keeps state in.
fn check_owner_mode(path: &Path, meta: &Metadata) -> Result<(), StateFsError> {
    let me = me();
    if meta.uid() != me {
        return Err(StateFsError::Owner {
            path: path.to_owned(),
            owner: meta.uid(),
            me,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(StateFsError::Writable {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Checks an existing directory: not a symlink, a directory, owned by this user, not writable
/// by group or others.
pub fn check_dir(dir: &Path) -> Result<(), StateFsError> {
    let meta = std::fs::symlink_metadata(dir).map_err(io(dir))?;
    if meta.file_type().is_symlink() {
        return Err(StateFsError::Symlink {
            path: dir.to_owned(),
        });
    }
    if !meta.is_dir() {
        return Err(StateFsError::WrongType {
            path: dir.to_owned(),
            expected: "directory",
        });
    }
    check_owner_mode(dir, &meta)
}

/// Makes `dir` (and missing parents) with mode 0700 if it does not exist, then checks it
/// ([`check_dir`]).
pub fn ensure_dir(dir: &Path) -> Result<(), StateFsError> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    match std::fs::symlink_metadata(dir) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io(dir))?;
        }
        Err(e) => return Err(io(dir)(e)),
    }
    check_dir(dir)
}

/// Opens a state file with `opts` (plus `O_NOFOLLOW`) in a checked directory; the file must
/// be a regular file owned by this user. A symlink in its place is refused, never followed.
pub fn open(path: &Path, opts: &mut OpenOptions) -> Result<File, StateFsError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        check_dir(dir)?;
    }
    let nofollow = i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0);
    let file = match opts.custom_flags(nofollow).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Err(StateFsError::Symlink {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(io(path)(e)),
    };
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(StateFsError::WrongType {
            path: path.to_owned(),
            expected: "regular file",
        });
    }
    check_owner_mode(path, &meta)?;
    Ok(file)
}

/// Opens a state file for reading; `None` when it does not exist.
pub fn open_read(path: &Path) -> Result<Option<File>, StateFsError> {
    match open(path, OpenOptions::new().read(true)) {
        Ok(f) => Ok(Some(f)),
        Err(StateFsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_missing_directory_is_made_private_and_a_loose_one_refused() {
        let d = tempfile::tempdir().unwrap();
        let s = d.path().join("a/b");
        ensure_dir(&s).unwrap();
        let mode = std::fs::metadata(&s).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_dir(&s).unwrap_err();
        assert!(matches!(e, StateFsError::Writable { .. }), "{e}");
        assert!(e.to_string().contains("chmod 700"), "{e}");
    }

    #[test]
    fn symlinks_are_refused_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("victim");
        std::fs::write(&target, "keep me").unwrap();
        let link = d.path().join("state.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open(&link, OpenOptions::new().append(true).create(true)).unwrap_err();
        assert!(matches!(e, StateFsError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("remove the symlink"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");

        let dir_link = d.path().join("linked");
        std::os::unix::fs::symlink(d.path(), &dir_link).unwrap();
        assert!(matches!(
            ensure_dir(&dir_link),
            Err(StateFsError::Symlink { .. })
        ));
    }
}
