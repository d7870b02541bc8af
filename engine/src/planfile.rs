//! Saved plans (`swing plan --out change.plan`): what a reviewer approved, so that
//! `swing apply change.plan` runs exactly that — or refuses, naming what moved.
//!
//! A saved plan is versioned JSON: the plan itself (secret *references* only, never values),
//! its digest, where it came from, the steps still needed, whether it has changes, the
//! rendered plan view, and the observed fingerprint per resource it was made against.
//!
//! **Trusted only as a whole.** `digest` is the SHA-256 (lowercase hex) of the canonical
//! serialization of every other member — everything `apply` and `show` read: the plan,
//! `base_dir` (an absolute path: the directory the plan's relative paths resolve against),
//! `steps`, `drift`, `fingerprint`, `view`, `offline`, `has_changes`, `source`, `created`,
//! `swing_version` and `plan_digest`. Only `digest` itself and `signature` (which signs the
//! digest, see the `signing` module) are left out. The canonical serialization is the saved plan
//! as a JSON value with both of them removed, written compactly with every object's keys in
//! sorted (byte) order and no insignificant whitespace ([`canonical_json`]). Any member edited
//! without recomputing `digest` over all of them makes [`SavedPlan::is_intact`] false, and the
//! plan is refused before anything is contacted. The digest detects edits and corruption; it
//! cannot stop someone who recomputes it — a signature (`--sign` / `--require-signature`) does.
//!
//! Owns: the file format, the digest, atomic writing (temp file in the same directory,
//! fsync, rename, fsync the directory; mode 0600), reading with a clear error for other
//! versions and re-validating the embedded plan ([`SavedPlan::valid_plan`]). Must not: judge
//! staleness (`ops::assess` compares the stored [`Fingerprint`] with a fresh one), observe the
//! world, render (the view is stored as produced by `view`), or hold a resolved secret.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use swing_schema::Plan;

use crate::refresh::Fingerprint;
use crate::validate::{Checked, ValidPlan};

/// Version of the saved-plan format.
pub const PLANFILE_FORMAT_VERSION: u32 = 2;
/// The `kind` marker of a saved plan.
pub const PLANFILE_KIND: &str = "swing-saved-plan";

/// A saved plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPlan {
    /// Always [`PLANFILE_FORMAT_VERSION`].
    pub format_version: u32,
    /// Always [`PLANFILE_KIND`].
    pub kind: String,
    /// The swing version that wrote it (the crate version; covered by the digest).
    pub swing_version: String,
    /// RFC 3339 UTC.
    pub created: String,
    /// The plan file as named on the command line.
    pub source: String,
    /// Absolute directory the plan's relative paths (backups, CA files, `${file:…}`,
    /// exec commands) resolve against: the plan file's directory when it was planned. Covered
    /// by the digest, so moving it is detected.
    pub base_dir: PathBuf,
    /// SHA-256 of the plan's canonical JSON (what the journal records as the plan applied).
    pub plan_digest: String,
    /// The plan (secret references only).
    pub plan: Plan,
    /// Made without observing the world (`--offline`): reviewable, not appliable.
    pub offline: bool,
    /// Whether anything remains to be done.
    pub has_changes: bool,
    /// Ids of the steps still needed, in execution order.
    pub steps: Vec<String>,
    /// Drift the plan does not cover, at planning time (apply refuses while any remains).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<String>,
    /// What each resource looked like (empty when offline).
    pub fingerprint: Fingerprint,
    /// The rendered plan view (`swing plan --format json`), for `swing show`.
    pub view: serde_json::Value,
    /// SHA-256 of the canonical serialization of every other member but `signature`
    /// ([`SavedPlan::seal`]).
    pub digest: String,
    /// An Ed25519 signature over `digest` (`swing plan --sign`), not covered by the digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<PlanSignature>,
}

/// A detached Ed25519 signature over a saved plan's [`digest`](SavedPlan::digest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanSignature {
    /// Always `ed25519`.
    pub algorithm: String,
    /// The signer's public key: 32 bytes, lowercase hex.
    pub public_key: String,
    /// `SHA256:` and the lowercase hex SHA-256 of the public key's 32 bytes: who signed.
    pub fingerprint: String,
    /// The signature: 64 bytes, lowercase hex.
    pub signature: String,
}

/// Errors reading or writing a saved plan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanFileError {
    #[error("cannot write the saved plan {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the saved plan {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a swing saved plan: {message}")]
    NotAPlanFile { path: PathBuf, message: String },
    #[error(
        "{path} is a saved plan of format version {found}; this swing reads version {expected}"
    )]
    Version {
        path: PathBuf,
        found: u64,
        expected: u32,
    },
}

/// SHA-256 (lowercase hex) of a plan's canonical JSON (struct order, sorted maps).
pub fn plan_digest(plan: &Plan) -> String {
    let bytes = serde_json::to_vec(plan).unwrap_or_default();
    hex::encode(Sha256::digest(&bytes))
}

/// The canonical serialization the digest is taken over: compact JSON, every object's keys
/// in sorted byte order (whatever order the map type kept), no insignificant whitespace.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    fn write(v: &serde_json::Value, out: &mut Vec<u8>) {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(&serde_json::Value::String(k.clone()), out);
                    out.push(b':');
                    write(&map[k], out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            scalar => out.extend(serde_json::to_vec(scalar).unwrap_or_default()),
        }
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

impl SavedPlan {
    /// Assembles a saved plan, sealed ([`SavedPlan::seal`]).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        plan: &Plan,
        source: &str,
        base_dir: &Path,
        offline: bool,
        steps: Vec<String>,
        drift: Vec<String>,
        fingerprint: Fingerprint,
        view: serde_json::Value,
    ) -> SavedPlan {
        let now = crate::time::now_ms();
        let mut saved = SavedPlan {
            format_version: PLANFILE_FORMAT_VERSION,
            kind: PLANFILE_KIND.to_owned(),
            swing_version: env!("CARGO_PKG_VERSION").to_owned(),
            created: crate::time::rfc3339_ms(now),
            source: source.to_owned(),
            base_dir: base_dir.to_owned(),
            plan_digest: plan_digest(plan),
            plan: plan.clone(),
            offline,
            has_changes: !steps.is_empty(),
            steps,
            drift,
            fingerprint,
            view,
            digest: String::new(),
            signature: None,
        };
        saved.seal();
        saved
    }

    /// The digest over every member but `digest` and `signature` (see the module doc).
    pub fn compute_digest(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.remove("digest");
            map.remove("signature");
        }
        hex::encode(Sha256::digest(canonical_json(&value)))
    }

    /// Records the digest of what the saved plan holds now. A signature made before is
    /// dropped: it signed another digest.
    pub fn seal(&mut self) {
        self.digest = self.compute_digest();
        self.signature = None;
    }

    /// Whether nothing was edited since the plan was sealed: the digest covers every member
    /// as it is, and `plan_digest` is the embedded plan's.
    pub fn is_intact(&self) -> bool {
        self.digest == self.compute_digest() && self.plan_digest == plan_digest(&self.plan)
    }

    /// Writes atomically with mode 0600: readers see the old file or the new one, never half.
    pub fn write(&self, path: &Path) -> Result<(), PlanFileError> {
        let err = |source| PlanFileError::Write {
            path: path.to_owned(),
            source,
        };
        let mut text =
            serde_json::to_vec_pretty(self).map_err(|e| err(std::io::Error::other(e)))?;
        text.push(b'\n');
        write_atomically(path, &text).map_err(err)
    }

    /// Reads a saved plan, checking its kind and version.
    pub fn read(path: &Path) -> Result<SavedPlan, PlanFileError> {
        // Capped and regular files only (a FIFO or a huge file must not hang or exhaust memory).
        let text = crate::load::read_capped(path).map_err(|e| PlanFileError::Read {
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| PlanFileError::NotAPlanFile {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        if value.get("kind").and_then(|k| k.as_str()) != Some(PLANFILE_KIND) {
            return Err(PlanFileError::NotAPlanFile {
                path: path.to_owned(),
                message: format!("`kind` is not `{PLANFILE_KIND}`"),
            });
        }
        let found = value
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if found != u64::from(PLANFILE_FORMAT_VERSION) {
            return Err(PlanFileError::Version {
                path: path.to_owned(),
                found,
                expected: PLANFILE_FORMAT_VERSION,
            });
        }
        serde_json::from_value(value).map_err(|e| PlanFileError::NotAPlanFile {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Whether the file is probably a saved plan (by content), for commands that take either.
    pub fn sniff(path: &Path) -> bool {
        crate::load::read_capped(path)
            .ok()
            .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok())
            .is_some_and(|v| v.get("kind").and_then(|k| k.as_str()) == Some(PLANFILE_KIND))
    }

    /// The embedded plan as a [`ValidPlan`], checked exactly like a plan file (the plan's JSON
    /// is that file), so a saved plan whose plan was edited into an invalid one is refused
    /// with the diagnostics instead of reaching compile. The origin names the saved plan.
    pub fn valid_plan(&self) -> Result<ValidPlan, Box<Checked>> {
        let origin = format!("{} (plan embedded in the saved plan)", self.source);
        let mut checked = crate::validate::check_plan(&origin, &self.plan);
        match checked.plan.take() {
            Some(plan) => Ok(plan),
            None => Err(Box::new(checked)),
        }
    }
}

/// Writes `bytes` to `path` atomically with mode 0600 (a temp file beside it, synced, renamed
/// into place, the directory synced): readers see the old file or the new one, never half.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    // tempfile creates the file with mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".swing-write")
        .tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{ApplianceObservation, FailoverRole};
    use crate::refresh::Observed;
    use std::os::unix::fs::PermissionsExt;

    /// The stale reasons `swing apply` refuses a saved plan with, as it prints them.
    fn reasons(saved: &SavedPlan, now: &Fingerprint) -> Vec<String> {
        crate::ops::stale_reasons(saved, now)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "version": 1, "name": "chg", "site": "access.example.com",
            "target": {"version": "25.1.3"},
            "appliances": {"b": {"address": "10.0.0.12"}},
            "backup": {"directory": "./backups", "password": "${env:SWING_BACKUP_PASSWORD}"},
            "providers": {"appliance": {"type": "beyondtrust", "client_id": "x", "client_secret": "${env:S}"}}
        }))
        .unwrap()
    }

    fn observed(version: &str) -> Observed {
        let mut o = Observed::default();
        o.appliances.insert(
            "b".into(),
            Ok(ApplianceObservation {
                reachable: true,
                version: Some(version.into()),
                healthy: true,
                role: FailoverRole::None,
                ..ApplianceObservation::unreachable()
            }),
        );
        o
    }

    #[test]
    fn round_trips_atomically_with_0600_and_detects_staleness() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("change.plan");
        let fp = Fingerprint::of(&observed("24.3.1"));
        let saved = SavedPlan::new(
            &plan(),
            "plan.yaml",
            dir.path(),
            false,
            vec!["b.install".into()],
            Vec::new(),
            fp.clone(),
            serde_json::json!({"format_version": 1}),
        );
        assert!(saved.has_changes);
        saved.write(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("${env:SWING_BACKUP_PASSWORD}"));
        assert!(SavedPlan::sniff(&path));
        let back = SavedPlan::read(&path).unwrap();
        assert_eq!(back, saved);
        assert!(reasons(&back, &fp).is_empty());
        assert_eq!(
            reasons(&back, &Fingerprint::of(&observed("25.1.3"))),
            vec!["stale: appliance b is now 25.1.3, the plan was made against 24.3.1".to_owned()]
        );
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn refuses_other_versions_kinds_offline_and_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.plan");
        std::fs::write(&path, r#"{"kind":"swing-saved-plan","format_version":9}"#).unwrap();
        assert!(matches!(
            SavedPlan::read(&path),
            Err(PlanFileError::Version { found: 9, .. })
        ));
        std::fs::write(&path, "version: 1\n").unwrap();
        assert!(matches!(
            SavedPlan::read(&path),
            Err(PlanFileError::NotAPlanFile { .. })
        ));
        assert!(!SavedPlan::sniff(&path));

        let fp = Fingerprint::default();
        let offline = SavedPlan::new(
            &plan(),
            "p",
            dir.path(),
            true,
            vec![],
            vec![],
            fp.clone(),
            serde_json::Value::Null,
        );
        assert!(!offline.has_changes);
        assert!(reasons(&offline, &fp)[0].contains("--offline"));
        let mut tampered = SavedPlan::new(
            &plan(),
            "p",
            dir.path(),
            false,
            vec![],
            vec![],
            fp.clone(),
            serde_json::Value::Null,
        );
        tampered.plan.target.version = swing_schema::Version("26.1".into());
        assert!(reasons(&tampered, &fp)[0].contains("digest mismatch"));
    }

    #[test]
    fn every_member_is_covered_by_the_digest_even_when_the_plan_digest_is_recomputed() {
        let fp = Fingerprint::of(&observed("24.3.1"));
        let saved = SavedPlan::new(
            &plan(),
            "plan.yaml",
            Path::new("/srv/plans"),
            false,
            vec!["b.install".into()],
            Vec::new(),
            fp,
            serde_json::json!({"summary": {"line": "1 step"}}),
        );
        assert!(saved.is_intact());
        type Edit = fn(&mut SavedPlan);
        let edits: [(&str, Edit); 9] = [
            ("plan", |s| {
                s.plan.appliances.get_mut("b").unwrap().address = "127.0.0.1:9".into()
            }),
            ("base_dir", |s| s.base_dir = PathBuf::from("/tmp/elsewhere")),
            ("drift", |s| s.drift.clear()),
            ("steps", |s| s.steps.clear()),
            ("fingerprint", |s| {
                s.fingerprint.resources.clear();
            }),
            ("view", |s| {
                s.view = serde_json::json!({"summary": {"line": "none"}})
            }),
            ("offline", |s| s.offline = true),
            ("source", |s| s.source = "other.yaml".into()),
            ("swing_version", |s| s.swing_version = "0.0.0".into()),
        ];
        for (member, edit) in edits {
            let mut edited = saved.clone();
            if member == "drift" {
                // Drift recorded at planning time, then deleted by the edit.
                edited.drift = vec!["appliance b is unhealthy".into()];
                edited.seal();
                assert!(edited.is_intact());
            }
            edit(&mut edited);
            // What an attacker who knows only the old format recomputes.
            edited.plan_digest = plan_digest(&edited.plan);
            assert!(!edited.is_intact(), "an edited `{member}` is detected");
            assert_eq!(
                reasons(&edited, &saved.fingerprint),
                vec![
                    "the saved plan was modified after it was written (digest mismatch)".to_owned()
                ],
                "{member}"
            );
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_has_no_whitespace() {
        let v = serde_json::json!({"b": [1, {"z": null, "a": "x"}], "a": true});
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":true,"b":[1,{"a":"x","z":null}]}"#
        );
    }

    #[test]
    fn the_embedded_plan_is_validated_like_a_plan_file() {
        let saved = SavedPlan::new(
            &plan(),
            "plan.yaml",
            Path::new("/tmp"),
            true,
            vec![],
            vec![],
            Fingerprint::default(),
            serde_json::Value::Null,
        );
        let valid = saved.valid_plan().expect("the embedded plan is valid");
        assert_eq!(*valid, plan());

        let mut broken = saved.clone();
        broken.plan.migration = Some(swing_schema::Migration {
            from: "b".into(),
            to: "nowhere".into(),
            switch: swing_schema::Switch::SharedIp {
                address: "10.0.0.10".into(),
            },
        });
        let checked = broken
            .valid_plan()
            .expect_err("an unknown appliance is an error");
        assert!(checked.has_errors());
        assert!(
            checked.origin.starts_with("plan.yaml"),
            "names the saved plan's source: {}",
            checked.origin
        );
    }
}
