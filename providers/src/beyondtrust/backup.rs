//! Writing a configuration backup to disk: streamed, hashed, private and atomic.
//!
//! Owns: [`BackupSink`], which makes the backup directory if missing (mode 0700), writes chunks
//! into a hidden temporary file created with mode 0600 next to the destination, hashes them with SHA-256 as they pass, and on `finish`
//! fsyncs the file, renames it into place (never over an existing backup) and fsyncs the
//! directory. Dropping an unfinished sink removes the temporary file.
//!
//! Also owns [`check_backup_body`]: whether what `/api/backup` sent can be a backup at all
//! (not empty, not an HTML, XML or JSON document, a plausible `Content-Disposition`), judged
//! before the file is renamed into place, so nothing else is ever stored as a backup.
//!
//! Must not: hold the whole backup in memory, leave partial files behind, overwrite a
//! previous backup, or know HTTP.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use swing_engine::provider::{BackupInfo, ErrorKind, ProviderError, ProviderResult};
use tokio::io::AsyncWriteExt;

use super::tls::hex_lower;

/// How many leading bytes of a backup body [`check_backup_body`] looks at.
pub const BACKUP_HEAD_BYTES: usize = 512;

/// Whether a body `/api/backup` answered with can be a backup file: `head` is its first
/// [`BACKUP_HEAD_BYTES`] (or all of it), `bytes` its length, the headers as sent. The vendor
/// does not document the content type; a backup is a binary file, so a body that is empty or
/// starts like an HTML, XML or JSON document (an error page behind a proxy, an API error) is
/// not one, and neither is an answer that says it is to be shown inline.
pub fn check_backup_body(
    content_type: Option<&str>,
    content_disposition: Option<&str>,
    head: &[u8],
    bytes: u64,
) -> Result<(), String> {
    if bytes == 0 {
        return Err("the appliance sent an empty body instead of a backup file".into());
    }
    let ct = content_type.unwrap_or_default().to_ascii_lowercase();
    for (marker, what) in [
        ("html", "an HTML page"),
        ("xml", "an XML document"),
        ("json", "a JSON document"),
    ] {
        if ct.contains(marker) {
            return Err(format!(
                "the appliance sent {what} (Content-Type: {ct}) instead of a backup file"
            ));
        }
    }
    let start: Vec<u8> = head
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == 0xEF || **b == 0xBB || **b == 0xBF)
        .take(16)
        .map(u8::to_ascii_lowercase)
        .collect();
    let looks = |p: &[u8]| start.starts_with(p);
    let document =
        if looks(b"<!doctype html") || looks(b"<html") || looks(b"<head") || looks(b"<body") {
            Some("an HTML page")
        } else if looks(b"<?xml") || looks(b"<error") || looks(b"<") {
            Some("an XML document")
        } else if looks(b"{") || looks(b"[") {
            Some("a JSON document")
        } else {
            None
        };
    if let Some(what) = document {
        return Err(format!(
            "the appliance sent {what} instead of a backup file"
        ));
    }
    if let Some(cd) = content_disposition {
        let cd = cd.trim().to_ascii_lowercase();
        if !cd.starts_with("attachment") {
            return Err(format!(
                "the appliance's answer is not a file download (Content-Disposition: {cd})"
            ));
        }
    }
    Ok(())
}

/// A backup being written.
pub struct BackupSink {
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
    dest: PathBuf,
    hasher: Sha256,
    bytes: u64,
    done: bool,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> ProviderError {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::AlreadyExists => ErrorKind::Conflict,
        _ => ErrorKind::Failed,
    };
    ProviderError::new(kind, format!("{what} {}: {e}", path.display()))
}

/// Checks a file stem: no path separators, no leading dot, not empty.
pub fn valid_stem(stem: &str) -> bool {
    !stem.is_empty()
        && !stem.starts_with('.')
        && stem.len() <= 200
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl BackupSink {
    /// Starts `dir/<file_stem>.nsb`. Fails with `Conflict` if that backup already exists.
    pub async fn create(dir: &Path, file_stem: &str) -> ProviderResult<Self> {
        if !valid_stem(file_stem) {
            return Err(ProviderError::new(
                ErrorKind::Invalid,
                format!("backup file name {file_stem:?} must be letters, digits, '-', '_' or '.'"),
            ));
        }
        // A backup directory that does not exist yet is made, private to this user.
        let mut mk = tokio::fs::DirBuilder::new();
        mk.recursive(true);
        #[cfg(unix)]
        mk.mode(0o700);
        mk.create(dir)
            .await
            .map_err(|e| io_err("cannot create the backup directory", dir, e))?;
        let dest = dir.join(format!("{file_stem}.nsb"));
        if tokio::fs::try_exists(&dest)
            .await
            .map_err(|e| io_err("cannot check", &dest, e))?
        {
            return Err(ProviderError::new(
                ErrorKind::Conflict,
                format!(
                    "backup {} already exists; refusing to overwrite it",
                    dest.display()
                ),
            ));
        }
        let tmp = dir.join(format!(
            ".{file_stem}.nsb.partial-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        let mut opts = tokio::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        opts.mode(0o600);
        let file = opts
            .open(&tmp)
            .await
            .map_err(|e| io_err("cannot create", &tmp, e))?;
        Ok(BackupSink {
            file: Some(file),
            tmp,
            dest,
            hasher: Sha256::new(),
            bytes: 0,
            done: false,
        })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> ProviderResult<()> {
        let Some(file) = self.file.as_mut() else {
            return Err(ProviderError::new(
                ErrorKind::Failed,
                "backup file already closed",
            ));
        };
        file.write_all(chunk)
            .await
            .map_err(|e| io_err("cannot write", &self.tmp, e))?;
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        Ok(())
    }

    /// Flushes, fsyncs, renames into place and fsyncs the directory.
    pub async fn finish(mut self) -> ProviderResult<BackupInfo> {
        let Some(mut file) = self.file.take() else {
            return Err(ProviderError::new(
                ErrorKind::Failed,
                "backup file already closed",
            ));
        };
        if self.bytes == 0 {
            return Err(ProviderError::new(
                ErrorKind::Failed,
                "the appliance sent an empty backup",
            ));
        }
        file.flush()
            .await
            .map_err(|e| io_err("cannot flush", &self.tmp, e))?;
        file.sync_all()
            .await
            .map_err(|e| io_err("cannot fsync", &self.tmp, e))?;
        drop(file);
        if tokio::fs::try_exists(&self.dest)
            .await
            .map_err(|e| io_err("cannot check", &self.dest, e))?
        {
            return Err(ProviderError::new(
                ErrorKind::Conflict,
                format!(
                    "backup {} appeared meanwhile; refusing to overwrite it",
                    self.dest.display()
                ),
            ));
        }
        tokio::fs::rename(&self.tmp, &self.dest)
            .await
            .map_err(|e| io_err("cannot rename into", &self.dest, e))?;
        self.done = true;
        if let Some(dir) = self.dest.parent() {
            let dir = dir.to_owned();
            // Persist the rename; a failure here is reported, the file is complete anyway.
            tokio::task::spawn_blocking(move || {
                std::fs::File::open(&dir).and_then(|d| d.sync_all())
            })
            .await
            .map_err(|e| {
                ProviderError::new(
                    ErrorKind::Failed,
                    format!("directory fsync task failed: {e}"),
                )
            })?
            .map_err(|e| io_err("cannot fsync directory of", &self.dest, e))?;
        }
        let sha256 = hex_lower(&std::mem::take(&mut self.hasher).finalize());
        Ok(BackupInfo {
            path: self.dest.clone(),
            sha256,
            bytes: self.bytes,
        })
    }
}

impl Drop for BackupSink {
    fn drop(&mut self) {
        if !self.done {
            self.file.take();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_atomically_with_mode_0600_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = BackupSink::create(dir.path(), "change-1").await.unwrap();
        sink.write(b"hello ").await.unwrap();
        sink.write(b"world").await.unwrap();
        let info = sink.finish().await.unwrap();
        assert_eq!(info.path, dir.path().join("change-1.nsb"));
        assert_eq!(info.bytes, 11);
        assert_eq!(info.sha256, super::super::tls::sha256_hex(b"hello world"));
        assert_eq!(std::fs::read(&info.path).unwrap(), b"hello world");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&info.path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A second backup under the same name is refused, the first stays intact.
        let e = BackupSink::create(dir.path(), "change-1")
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(std::fs::read(&info.path).unwrap(), b"hello world");
    }

    #[tokio::test]
    async fn dropped_or_empty_backups_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = BackupSink::create(dir.path(), "x").await.unwrap();
        sink.write(b"partial").await.unwrap();
        drop(sink);
        let sink = BackupSink::create(dir.path(), "y").await.unwrap();
        assert_eq!(sink.finish().await.unwrap_err().kind, ErrorKind::Failed);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_missing_backup_directory_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("backups").join("2026");
        let sink = BackupSink::create(&nested, "change-1").await.unwrap();
        drop(sink);
        assert!(nested.is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        // A path that is a file cannot become the directory: a clear error, nothing written.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = BackupSink::create(&file, "change-1").await.err().unwrap();
        assert!(e.message.contains("backup directory"), "{}", e.message);
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }

    #[tokio::test]
    async fn rejects_path_like_stems() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "../x", "a/b", ".hidden"] {
            let e = BackupSink::create(dir.path(), bad).await.err().unwrap();
            assert_eq!(e.kind, ErrorKind::Invalid, "{bad}");
        }
    }

    #[test]
    fn only_a_binary_download_is_taken_for_a_backup() {
        let ok = |ct: Option<&str>, cd: Option<&str>, body: &[u8]| {
            check_backup_body(ct, cd, body, body.len() as u64)
        };
        let attachment = Some("attachment; filename=\"a-20261205.nsb\"");
        assert_eq!(
            ok(
                Some("application/octet-stream"),
                attachment,
                b"NSB\x00\x01binary"
            ),
            Ok(())
        );
        // Neither header is documented: a binary body without them is taken.
        assert_eq!(ok(None, None, b"\x1f\x8b\x08compressed"), Ok(()));
        for (ct, body, want) in [
            (None, &b""[..], "empty body"),
            (Some("text/html; charset=UTF-8"), b"\x00", "an HTML page"),
            (
                Some("application/octet-stream"),
                b"  <!DOCTYPE html><html>Login</html>",
                "an HTML page",
            ),
            (
                None,
                b"<html><body>502 Bad Gateway</body></html>",
                "an HTML page",
            ),
            (
                None,
                b"\xEF\xBB\xBF<?xml version=\"1.0\"?><error>denied</error>",
                "an XML document",
            ),
            (
                None,
                b"{\"error\":\"forbidden\",\"message\":\"no\"}",
                "a JSON document",
            ),
            (Some("application/problem+json"), b"\x00", "a JSON document"),
        ] {
            let e = ok(ct, attachment, body).unwrap_err();
            assert!(e.contains(want), "{ct:?} {body:?}: {e}");
        }
        let e = ok(None, Some("inline"), b"NSB\x00").unwrap_err();
        assert!(e.contains("not a file download"), "{e}");
    }
}
