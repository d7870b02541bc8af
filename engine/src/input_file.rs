//! Reading the files a user points swing at — plan and saved-plan files, `${file:PATH}`
//! secrets and every `ca_file` — the one way swing reads them.
//!
//! Owns: refusing anything but a regular file (checked on the path before opening, and again
//! with `fstat` on the opened descriptor, which is opened with `O_NONBLOCK` so a FIFO swapped in
//! between cannot block), the size cap ([`MAX_INPUT_FILE_BYTES`] for secrets and CA files, the caller's for plans; read with `take(cap + 1)` so a
//! device or a growing file cannot fill memory), and telling whether a file is readable by
//! group or others (for the secret-file warning).
//!
//! Must not: interpret the bytes (PEM, secret text), print, or name a secret's value in an
//! error (errors name the path and the fix only).

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Largest secret or CA file swing reads (64 KiB). A token or a CA bundle is a few KiB.
pub const MAX_INPUT_FILE_BYTES: u64 = 64 * 1024;

/// Why a secret or CA file could not be read. Names the path, never the content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputFileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {kind}, not a regular file: point it at a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path} is larger than {limit} bytes: {expected} — is this the right file?")]
    TooLarge {
        path: PathBuf,
        limit: u64,
        /// What such a file usually holds, for the message.
        expected: &'static str,
    },
}

/// A file read by [`read`].
#[derive(Debug)]
pub struct InputFile {
    /// The content (at most the cap it was read with).
    pub bytes: Vec<u8>,
    /// The permission bits (`st_mode & 0o777`) of the file that was read.
    pub mode: u32,
}

impl InputFile {
    /// Readable by the group or by others (`mode & 0o044`): a secret file should be 0600.
    pub fn readable_by_others(&self) -> bool {
        self.mode & 0o044 != 0
    }
}

fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads a secret or CA file: a regular file of at most [`MAX_INPUT_FILE_BYTES`], without ever
/// blocking on a FIFO or streaming a device.
pub fn read(path: &Path) -> Result<InputFile, InputFileError> {
    read_limited(
        path,
        MAX_INPUT_FILE_BYTES,
        "a secret or CA file is a few KiB",
    )
}

/// [`read`] with another cap; `expected` says in the too-large error what such a file holds.
pub fn read_limited(
    path: &Path,
    limit: u64,
    expected: &'static str,
) -> Result<InputFile, InputFileError> {
    let io = |source| InputFileError::Io {
        path: path.to_owned(),
        source,
    };
    let check = |meta: &Metadata| {
        if meta.is_file() {
            Ok(())
        } else {
            Err(InputFileError::NotRegular {
                path: path.to_owned(),
                kind: kind_of(meta),
            })
        }
    };
    // Look before opening: opening a FIFO for reading would otherwise wait for a writer.
    check(&std::fs::metadata(path).map_err(io)?)?;
    // The path may have been swapped between the look and the open: O_NONBLOCK keeps that open
    // from blocking, and the descriptor's own metadata decides.
    let file = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    check(&meta)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(InputFileError::TooLarge {
            path: path.to_owned(),
            limit,
            expected,
        });
    }
    Ok(InputFile {
        bytes,
        mode: meta.mode() & 0o777,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_devices_fifos_directories_and_big_files() {
        let e = read(Path::new("/dev/zero")).unwrap_err();
        assert!(
            matches!(e, InputFileError::NotRegular { kind, .. } if kind == "a character device"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = read(&fifo).unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; (MAX_INPUT_FILE_BYTES + 1) as usize]).unwrap();
        let e = read(&big).unwrap_err();
        assert!(matches!(e, InputFileError::TooLarge { .. }), "{e}");
        // Exactly the cap is fine.
        let edge = dir.path().join("edge");
        std::fs::write(&edge, vec![b'x'; MAX_INPUT_FILE_BYTES as usize]).unwrap();
        assert_eq!(
            read(&edge).unwrap().bytes.len() as u64,
            MAX_INPUT_FILE_BYTES
        );
    }

    #[test]
    fn reports_who_may_read_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "s").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = read(&f).unwrap();
        assert_eq!((r.mode, r.readable_by_others()), (0o600, false));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(read(&f).unwrap().readable_by_others());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o604)).unwrap();
        assert!(read(&f).unwrap().readable_by_others());
    }
}
