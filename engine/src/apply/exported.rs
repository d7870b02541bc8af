//! The exported-certificate check: finds the certificate file a person (or the rehearsal
//! operator) exported into the backup directory and tells whether its leaf certificate is the
//! one the appliance serves.
//!
//! Owns: which files count as an export ([`EXPORT_EXTENSIONS`]: PEM or DER certificates —
//! `.pem`, `.crt`, `.cer`, `.der`; a PEM file's first `CERTIFICATE` block is its leaf, a DER
//! file is one certificate), how they are read (regular files only, not followed through
//! symlinks, at most [`MAX_EXPORT_BYTES`]), the leaf's SHA-256 fingerprint (of its DER bytes,
//! as the TLS inspection computes it) and the words of every way the check fails: no file,
//! which files were looked at, and a mismatch naming both fingerprints.
//!
//! Must not: observe the appliance (the caller hands in the served fingerprint), decrypt a
//! private key, or read outside the one directory it is given. PKCS#12 (`.p12`, `.pfx`) is not
//! read: it is passphrase-protected; such a file is named in the failure with the fix.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

/// File extensions (lowercase) the check reads as an exported certificate.
pub const EXPORT_EXTENSIONS: [&str; 4] = ["pem", "crt", "cer", "der"];
/// Extensions of exports the check recognises but cannot read (passphrase-protected).
const PKCS12_EXTENSIONS: [&str; 2] = ["p12", "pfx"];
/// Largest export read (a certificate with its chain and key is a few KiB).
pub const MAX_EXPORT_BYTES: u64 = 256 * 1024;

/// The export whose leaf is the served certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub leaf_sha256: String,
}

/// Why no export matches. Every variant is a halt: the person confirmed an export that is not
/// there or is not the served certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportProblem {
    #[error("cannot list the backup directory {dir}: {why}")]
    Unlistable { dir: PathBuf, why: String },
    #[error(
        "no exported certificate file in {dir} (looked for *.pem, *.crt, *.cer, *.der{}): export the certificate of {appliance} as PEM or DER into that directory, then confirm again",
        others_note(.others)
    )]
    NoFile {
        dir: PathBuf,
        appliance: String,
        /// Other files seen there (names only).
        others: Vec<String>,
    },
    #[error(
        "no exported certificate file in {dir} is the certificate {appliance} serves (sha256 {served}): {}",
        .looked.join("; ")
    )]
    Mismatch {
        dir: PathBuf,
        appliance: String,
        served: String,
        /// Per file looked at: its name and what it holds (its leaf fingerprint or why not).
        looked: Vec<String>,
    },
}

fn others_note(others: &[String]) -> String {
    if others.is_empty() {
        "; the directory holds no other file".to_owned()
    } else {
        format!("; found only {}", others.join(", "))
    }
}

/// Lowercase hex SHA-256 of the leaf certificate in `bytes` (PEM: its first `CERTIFICATE`
/// block; otherwise DER), which must parse as an X.509 certificate.
pub fn leaf_sha256(bytes: &[u8]) -> Result<String, String> {
    let der = if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        let mut leaf = None;
        for pem in x509_parser::pem::Pem::iter_from_buffer(bytes) {
            let pem = pem.map_err(|e| format!("unreadable PEM: {e}"))?;
            if pem.label == "CERTIFICATE" {
                leaf = Some(pem.contents);
                break;
            }
        }
        leaf.ok_or("a PEM file without a CERTIFICATE block")?
    } else {
        bytes.to_vec()
    };
    X509Certificate::from_der(&der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    Ok(hex::encode(Sha256::digest(&der)))
}

/// Looks in `dir` for an export of `appliance`'s certificate whose leaf fingerprint is
/// `served` (lowercase hex SHA-256).
pub fn find(dir: &Path, appliance: &str, served: &str) -> Result<Found, ExportProblem> {
    let entries = std::fs::read_dir(dir).map_err(|e| ExportProblem::Unlistable {
        dir: dir.to_owned(),
        why: e.to_string(),
    })?;
    let mut names: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    let mut looked = Vec::new();
    let mut others = Vec::new();
    for (name, path) in names {
        let ext = Path::new(&name)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if PKCS12_EXTENSIONS.contains(&ext.as_str()) {
            looked.push(format!(
                "{name}: PKCS#12 is passphrase-protected and not read (export as PEM or DER)"
            ));
            continue;
        }
        if !EXPORT_EXTENSIONS.contains(&ext.as_str()) {
            others.push(name);
            continue;
        }
        match read_export(&path).and_then(|b| leaf_sha256(&b)) {
            Ok(fp) if fp.eq_ignore_ascii_case(served) => {
                return Ok(Found {
                    path,
                    leaf_sha256: fp,
                });
            }
            Ok(fp) => looked.push(format!("{name}: leaf sha256 {fp}")),
            Err(why) => looked.push(format!("{name}: {why}")),
        }
    }
    if looked.is_empty() {
        return Err(ExportProblem::NoFile {
            dir: dir.to_owned(),
            appliance: appliance.to_owned(),
            others,
        });
    }
    Err(ExportProblem::Mismatch {
        dir: dir.to_owned(),
        appliance: appliance.to_owned(),
        served: served.to_owned(),
        looked,
    })
}

/// A regular file (not a symlink, FIFO or device), at most [`MAX_EXPORT_BYTES`].
fn read_export(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut bytes = Vec::new();
    file.take(MAX_EXPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_EXPORT_BYTES {
        return Err(format!("larger than {MAX_EXPORT_BYTES} bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate for access.example.com, as PEM and as DER, and another one.
    pub(crate) const SERVED_PEM: &str = include_str!("testdata/served.pem");
    const SERVED_DER: &[u8] = include_bytes!("testdata/served.der");
    const OTHER_PEM: &str = include_str!("testdata/other.pem");
    /// `openssl x509 -in served.pem -noout -fingerprint -sha256`, lowercased.
    pub(crate) const SERVED_SHA256: &str =
        "0e38edeedffab46492611e9c48e57f6f434aa27d2dd4794ceba4c268b4a7f371";

    #[test]
    fn the_leaf_fingerprint_of_pem_and_der_is_the_der_sha256() {
        assert_eq!(leaf_sha256(SERVED_PEM.as_bytes()).unwrap(), SERVED_SHA256);
        assert_eq!(leaf_sha256(SERVED_DER).unwrap(), SERVED_SHA256);
        // A bundle: the first certificate is the leaf, a key block before it is skipped.
        let bundle = format!(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{SERVED_PEM}{OTHER_PEM}"
        );
        assert_eq!(leaf_sha256(bundle.as_bytes()).unwrap(), SERVED_SHA256);
        assert!(leaf_sha256(b"not a certificate").is_err());
    }

    #[test]
    fn a_missing_export_halts_naming_the_directory_and_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site-a-1.nsb"), b"backup").unwrap();
        let e = find(dir.path(), "a", SERVED_SHA256).unwrap_err();
        assert!(matches!(e, ExportProblem::NoFile { .. }), "{e}");
        let m = e.to_string();
        assert!(m.contains("no exported certificate file"), "{m}");
        assert!(m.contains("*.pem, *.crt, *.cer, *.der"), "{m}");
        assert!(m.contains("site-a-1.nsb"), "{m}");
    }

    #[test]
    fn a_wrong_certificate_halts_naming_both_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a-certificate.pem"), OTHER_PEM).unwrap();
        std::fs::write(dir.path().join("garbage.crt"), b"junk").unwrap();
        std::fs::write(dir.path().join("a.p12"), b"pkcs12").unwrap();
        let e = find(dir.path(), "a", SERVED_SHA256).unwrap_err();
        let m = e.to_string();
        let other = leaf_sha256(OTHER_PEM.as_bytes()).unwrap();
        assert!(m.contains(SERVED_SHA256), "served fingerprint named: {m}");
        assert!(
            m.contains(&format!("a-certificate.pem: leaf sha256 {other}")),
            "{m}"
        );
        assert!(m.contains("garbage.crt: not an X.509 certificate"), "{m}");
        assert!(m.contains("a.p12: PKCS#12"), "{m}");
    }

    #[test]
    fn the_served_certificate_passes_as_pem_or_der() {
        for (name, bytes) in [
            ("a-certificate.pem", SERVED_PEM.as_bytes()),
            ("a.DER", SERVED_DER),
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("other.pem"), OTHER_PEM).unwrap();
            std::fs::write(dir.path().join(name), bytes).unwrap();
            let found = find(dir.path(), "a", SERVED_SHA256).unwrap();
            assert_eq!(found.path, dir.path().join(name));
            assert_eq!(found.leaf_sha256, SERVED_SHA256);
        }
    }

    #[test]
    fn a_symlink_or_fifo_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("x.bin"), SERVED_PEM).unwrap();
        std::os::unix::fs::symlink(real.join("x.bin"), dir.path().join("link.pem")).unwrap();
        assert!(
            std::process::Command::new("mkfifo")
                .arg(dir.path().join("pipe.pem"))
                .status()
                .unwrap()
                .success()
        );
        let m = find(dir.path(), "a", SERVED_SHA256)
            .unwrap_err()
            .to_string();
        assert!(m.contains("link.pem: not a regular file"), "{m}");
        assert!(m.contains("pipe.pem: not a regular file"), "{m}");
    }
}
