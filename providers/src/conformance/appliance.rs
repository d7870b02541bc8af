//! Conformance checks for the appliance provider trait: generic async checks every
//! [`ApplianceProvider`] must pass against a live backend (the simulator in tests, a lab
//! appliance by hand).
//!
//! Owns: what the engine relies on from any appliance provider — observations that are
//! internally consistent and stable between calls, backups written atomically with mode 0600
//! and a correct SHA-256 that never overwrite an earlier backup, `set_failover_role` refusing
//! `none`, and no secret in anything a provider returns.
//!
//! Must not: know a concrete provider type, change failover roles (the checks are safe to run
//! against a pair in service), or panic — every check returns its failures as text.

use std::path::Path;

use swing_engine::provider::{ApplianceObservation, ApplianceProvider, ErrorKind, FailoverRole};

/// What the backend under test is known to be (anything `None` is not checked).
#[derive(Debug, Clone, Default)]
pub struct ApplianceExpectations {
    pub version: Option<String>,
    pub role: Option<FailoverRole>,
    pub appliance_id: Option<String>,
    /// Secret values that must never appear in observations or errors.
    pub secrets: Vec<String>,
}

/// Runs every check; returns the list of failures (empty = conformant).
/// `scratch` must be an empty, writable directory.
pub async fn run_all(
    p: &dyn ApplianceProvider,
    scratch: &Path,
    expect: &ApplianceExpectations,
) -> Vec<String> {
    let mut failures = Vec::new();
    failures.extend(check_observe(p, expect).await);
    failures.extend(check_backup(p, scratch, expect).await);
    failures.extend(check_role_none_refused(p, expect).await);
    failures
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn leaks(text: &str, expect: &ApplianceExpectations) -> bool {
    expect
        .secrets
        .iter()
        .any(|s| !s.is_empty() && text.contains(s.as_str()))
}

fn check_consistent(o: &ApplianceObservation, failures: &mut Vec<String>) {
    if !o.reachable {
        failures.push("observe: appliance not reachable".into());
        return;
    }
    if o.appliance_id.as_deref().is_none_or(str::is_empty) {
        failures.push("observe: no appliance id".into());
    }
    match o.version.as_deref() {
        Some(v)
            if !v.is_empty()
                && v.split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) => {}
        other => failures.push(format!("observe: version is not dotted numeric: {other:?}")),
    }
    if o.healthy && o.error_message.is_some() {
        failures.push("observe: healthy but with an error message".into());
    }
    if o.clock_skew_s.is_none() {
        failures.push("observe: no clock skew reading".into());
    }
    if let Some(c) = &o.certificate {
        if c.leaf_sha256.len() != 64
            || !c
                .leaf_sha256
                .chars()
                .all(|ch| ch.is_ascii_hexdigit() && !ch.is_ascii_uppercase())
        {
            failures.push(format!(
                "observe: leaf fingerprint is not lowercase hex SHA-256: {}",
                c.leaf_sha256
            ));
        }
        if chrono::DateTime::parse_from_rfc3339(&c.not_after).is_err() {
            failures.push(format!(
                "observe: notAfter is not RFC 3339: {}",
                c.not_after
            ));
        }
        if c.sans.is_empty() {
            failures.push("observe: certificate without SANs".into());
        }
    }
    if let Some(j) = &o.jump_clients {
        if j.upgraded_online + j.needs_update > j.total {
            failures.push(format!(
                "observe: Jump Client counts exceed the total: {j:?}"
            ));
        }
        if !(0.0..=1.0).contains(&j.ratio()) {
            failures.push(format!(
                "observe: Jump Client ratio out of range: {}",
                j.ratio()
            ));
        }
    }
    if o.role == FailoverRole::None && (o.last_sync_unix.is_some() != o.last_sync_status.is_some())
    {
        // Without failover both sync fields are absent; with it both are normally present.
        failures.push("observe: only one of last_sync time/status present without failover".into());
    }
}

/// Two observations: each consistent, identity/version/role stable, as expected, no secret.
pub async fn check_observe(
    p: &dyn ApplianceProvider,
    expect: &ApplianceExpectations,
) -> Vec<String> {
    let mut failures = Vec::new();
    let (a, b) = match (p.observe().await, p.observe().await) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            failures.push(format!("observe failed: {e}"));
            return failures;
        }
    };
    check_consistent(&a, &mut failures);
    check_consistent(&b, &mut failures);
    if a.appliance_id != b.appliance_id || a.version != b.version || a.role != b.role {
        failures.push("observe: identity, version or role changed between two calls".into());
    }
    if a.certificate.as_ref().map(|c| &c.leaf_sha256)
        != b.certificate.as_ref().map(|c| &c.leaf_sha256)
    {
        failures.push("observe: certificate fingerprint changed between two calls".into());
    }
    if let Some(v) = &expect.version
        && a.version.as_ref() != Some(v)
    {
        failures.push(format!("observe: version {:?}, expected {v}", a.version));
    }
    if let Some(r) = expect.role
        && a.role != r
    {
        failures.push(format!("observe: role {:?}, expected {r:?}", a.role));
    }
    if let Some(id) = &expect.appliance_id
        && a.appliance_id.as_ref() != Some(id)
    {
        failures.push(format!(
            "observe: appliance id {:?}, expected {id}",
            a.appliance_id
        ));
    }
    let text = serde_json::to_string(&a).unwrap_or_default();
    if leaks(&text, expect) {
        failures.push("observe: a secret appears in the observation".into());
    }
    failures
}

/// A backup lands atomically, private, with a matching checksum; a second one under the same
/// name is refused and leaves the first untouched; a bad name is refused.
pub async fn check_backup(
    p: &dyn ApplianceProvider,
    scratch: &Path,
    expect: &ApplianceExpectations,
) -> Vec<String> {
    let mut failures = Vec::new();
    let info = match p.backup(scratch, "conformance").await {
        Ok(i) => i,
        Err(e) => {
            failures.push(format!("backup failed: {e}"));
            return failures;
        }
    };
    if info.path != scratch.join("conformance.nsb") {
        failures.push(format!("backup: unexpected path {}", info.path.display()));
    }
    match std::fs::read(&info.path) {
        Ok(bytes) => {
            if bytes.len() as u64 != info.bytes {
                failures.push(format!(
                    "backup: {} bytes on disk, {} reported",
                    bytes.len(),
                    info.bytes
                ));
            }
            if sha256_hex(&bytes) != info.sha256 {
                failures.push("backup: reported SHA-256 does not match the file".into());
            }
            if bytes.is_empty() {
                failures.push("backup: empty file".into());
            }
        }
        Err(e) => failures.push(format!("backup: cannot read {}: {e}", info.path.display())),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(&info.path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                failures.push(format!(
                    "backup: mode {:o} is readable by others",
                    m.permissions().mode() & 0o777
                ));
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("backup: no metadata: {e}")),
        }
    }
    let entries = std::fs::read_dir(scratch).map(|d| d.count()).unwrap_or(0);
    if entries != 1 {
        failures.push(format!(
            "backup: {entries} entries in the directory, expected only the backup"
        ));
    }
    match p.backup(scratch, "conformance").await {
        Ok(_) => failures.push("backup: overwrote an existing backup".into()),
        Err(e) if e.kind != ErrorKind::Conflict => {
            failures.push(format!(
                "backup: second backup under the same name gave {:?}, expected conflict",
                e.kind
            ));
        }
        Err(e) if leaks(&e.message, expect) => {
            failures.push("backup: a secret appears in an error".into())
        }
        Err(_) => {}
    }
    if std::fs::read(&info.path)
        .map(|b| sha256_hex(&b))
        .ok()
        .as_ref()
        != Some(&info.sha256)
    {
        failures.push("backup: the first backup changed after a refused second one".into());
    }
    match p.backup(scratch, "../escape").await {
        Ok(_) => failures.push("backup: accepted a file name with a path".into()),
        Err(e) if e.kind != ErrorKind::Invalid => {
            failures.push(format!(
                "backup: a file name with a path gave {:?}, expected invalid",
                e.kind
            ));
        }
        Err(_) => {}
    }
    failures
}

/// `set_failover_role(None)` is refused as invalid and changes nothing.
pub async fn check_role_none_refused(
    p: &dyn ApplianceProvider,
    expect: &ApplianceExpectations,
) -> Vec<String> {
    let mut failures = Vec::new();
    let before = p.observe().await.ok().map(|o| o.role);
    match p.set_failover_role(FailoverRole::None, false).await {
        Ok(()) => failures.push("set_failover_role(none) succeeded".into()),
        Err(e) if e.kind != ErrorKind::Invalid => {
            failures.push(format!(
                "set_failover_role(none) gave {:?}, expected invalid",
                e.kind
            ));
        }
        Err(e) if leaks(&e.message, expect) => {
            failures.push("set_failover_role: a secret appears in an error".into())
        }
        Err(_) => {}
    }
    let after = p.observe().await.ok().map(|o| o.role);
    if before != after {
        failures.push(format!(
            "set_failover_role(none) changed the role: {before:?} → {after:?}"
        ));
    }
    failures
}
