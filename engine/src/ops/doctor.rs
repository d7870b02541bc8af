//! `swing doctor`: compile, observe everything the plan names, make the read-only probes
//! (the DNS provider's `check_update`, the NAT provider's `check_swing` of the first swing,
//! the backup directory), and judge readiness ([`crate::doctor::judge`]); with `capture`,
//! also the appliances' raw answers.
//!
//! Owns: the order of those calls. Must not: change anything anywhere — no backup, no role,
//! no record, no rule; the only file it touches is a probe file it creates and removes again
//! in the backup directory — print, or write the captured answers (the caller does).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use swing_schema::Switch;

use super::SiteError;
use crate::compile::{CompiledPlan, StepOp};
use crate::doctor::{BackupDirProbe, DoctorReport, Probes};
use crate::provider::{ErrorKind, ProviderError, RawAnswer};
use crate::refresh::{Observed, Providers, plan_switch};

/// What `swing doctor` made of one plan.
#[derive(Debug)]
pub struct DoctorSite {
    pub report: DoctorReport,
    /// Per appliance, its raw answers (only when asked to capture).
    pub captured: Vec<(String, Result<Vec<RawAnswer>, ProviderError>)>,
    /// The names a capture hides on request: the site, each appliance's address and the host
    /// name each reported about itself.
    pub hostnames: Vec<String>,
}

/// Runs the doctor on one plan. `now_unix`: the engine clock.
pub async fn doctor(
    plan: &crate::validate::ValidPlan,
    source: &str,
    base_dir: &Path,
    providers: &Providers,
    capture: bool,
    now_unix: i64,
) -> Result<DoctorSite, SiteError> {
    let compiled = crate::compile::compile(
        plan,
        &crate::compile::CompileOptions {
            offline: false,
            file: Some(source.to_owned()),
        },
    )?;
    let observed = crate::refresh::refresh(plan, providers).await;
    let d = crate::diff::diff(&compiled, &observed);
    let view = crate::view::refreshed(&compiled, &observed, &d);
    let dir: std::path::PathBuf = base_dir
        .join(&plan.backup.directory)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let (dns_update, nat_swing, backup_dir) = tokio::join!(
        dns_probe(&compiled, &observed, providers),
        nat_probe(&compiled, &observed, providers),
        backup_dir_probe(&dir),
    );
    let probes = Probes {
        dns_update,
        nat_swing,
        backup_dir,
    };
    let report = crate::doctor::judge(&compiled, &view, &observed, &d, &probes, source, now_unix);
    let mut captured = Vec::new();
    if capture {
        for (name, p) in &providers.appliances {
            captured.push((name.clone(), p.capture().await));
        }
    }
    let mut hostnames = vec![plan.site.clone()];
    hostnames.extend(plan.appliances.values().map(|a| a.address.clone()));
    hostnames.extend(
        plan.appliances
            .keys()
            .filter_map(|n| observed.appliance(n)?.hostname.clone()),
    );
    Ok(DoctorSite {
        report,
        captured,
        hostnames,
    })
}

async fn dns_probe(
    c: &CompiledPlan,
    o: &Observed,
    providers: &Providers,
) -> Option<Result<(), ProviderError>> {
    let (Some(Switch::Dns { record, .. }), Some(dns)) = (plan_switch(&c.plan), &providers.dns)
    else {
        return None;
    };
    let Some((_, Ok(seen))) = &o.dns else {
        return None;
    };
    Some(dns.check_update(record, seen).await)
}

/// The first swing of the plan (`switch.to-X`) checked, not made.
async fn nat_probe(
    c: &CompiledPlan,
    o: &Observed,
    providers: &Providers,
) -> Option<Result<(), ProviderError>> {
    let (Some(Switch::Nat { public, .. }), Some(nat)) = (plan_switch(&c.plan), &providers.nat)
    else {
        return None;
    };
    let Some((_, Ok(_))) = &o.nat else {
        return None;
    };
    let to = c.steps.iter().find_map(|s| match &s.op {
        StepOp::SwitchTo(x) => Some(x.clone()),
        _ => None,
    })?;
    let target = c
        .plan
        .appliances
        .get(&to)
        .and_then(|a| Some(SocketAddr::new(a.address.parse::<IpAddr>().ok()?, a.port)));
    let (Ok(public), Some(target)) = (public.parse::<SocketAddr>(), target) else {
        return Some(Err(ProviderError::new(
            ErrorKind::Invalid,
            format!("switch.public `{public}` or appliance {to}'s address is not an IP address"),
        )));
    };
    Some(nat.check_swing(public, target).await)
}

/// Whether a backup can be written into `dir`: a probe file created there (or in the nearest
/// existing parent, when `dir` is still to be made) and removed again, and the free space.
async fn backup_dir_probe(dir: &Path) -> BackupDirProbe {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || probe_dir(&dir))
        .await
        .unwrap_or_else(|e| BackupDirProbe::Unwritable {
            path: String::new(),
            why: format!("the probe ended abnormally: {e}"),
        })
}

fn probe_dir(dir: &Path) -> BackupDirProbe {
    let shown: String = crate::render::escape::terminal_line(&dir.display().to_string());
    let unwritable = |why: String| BackupDirProbe::Unwritable {
        path: shown.clone(),
        why,
    };
    // The directory itself, or the nearest parent that exists (the backup makes the rest).
    let mut at: PathBuf = dir.to_owned();
    let mut created = false;
    loop {
        match std::fs::metadata(&at) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return unwritable(format!("{} is not a directory", at.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                created = true;
                match at.parent() {
                    Some(p) if !p.as_os_str().is_empty() => at = p.to_owned(),
                    _ => at = PathBuf::from("."),
                }
            }
            Err(e) => return unwritable(format!("{}: {e}", at.display())),
        }
    }
    // What the apply demands of an existing backup directory (private to this user): refused
    // there means refused now.
    if !created && let Err(e) = crate::apply::statefs::check_dir(&at) {
        return unwritable(e.to_string());
    }
    let probe = at.join(format!(
        ".swing-doctor-{}-{:08x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    ));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
        }
        Err(e) => return unwritable(format!("cannot create a file in {}: {e}", at.display())),
    }
    let free_bytes = rustix::fs::statvfs(&at)
        .ok()
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize));
    BackupDirProbe::Writable {
        path: shown,
        free_bytes,
        created,
    }
}
