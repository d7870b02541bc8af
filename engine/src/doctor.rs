//! The doctor's judge: whether a site is ready for its change, days before the window, from
//! one observation of everything the plan names and the read-only probes `ops::doctor` made
//! (a DNS update made only of prerequisites, a NAT swing checked but not committed, the
//! backup directory).
//!
//! Every check names what it looked at, what it found and — when it blocks the change — the
//! fix. Reuses the judges the change itself uses (the `X.api` and clock steps'
//! postconditions, the diff's drift and unobservable resources, the plan view's findings), so
//! the doctor never disagrees with `swing plan` or `swing apply`.
//!
//! Owns: [`DoctorReport`], its checks, and [`judge`]. Must not: observe, act, read files or
//! clocks (the caller passes `now`), or render.

use serde::Serialize;
use swing_schema::output::{Level, PlanView};

use crate::compile::{CompiledPlan, StepOp};
use crate::condition::{Ctx, Verdict, judge as judge_condition};
use crate::diff::Diff;
use crate::provider::{ErrorKind, ProviderError};
use crate::refresh::{Observed, plan_switch};

/// Free space the backup directory must have: a configuration backup of a large site with
/// reporting data is a few hundred MiB.
pub const MIN_BACKUP_FREE_BYTES: u64 = 1 << 30;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    /// The change cannot run as planned until this is fixed.
    Blocker,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `appliance a`, `dns corp-dns`, `nat edge`, `backup`, `windows`,
    /// `site`, `plan`.
    pub subject: String,
    /// Which check, stable kebab-case: `api-token`, `tls`, `api-permissions`, …
    pub check: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, for a warning or a blocker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The doctor's verdict on one plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// `1`: the JSON shape of this report.
    pub format_version: u32,
    pub plan: String,
    pub site: String,
    /// No blocker.
    pub ready: bool,
    pub blockers: usize,
    pub warnings: usize,
    pub checks: Vec<Check>,
}

/// What the backup directory probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupDirProbe {
    /// A file could be created there (and was removed again); `created` = the directory does
    /// not exist yet and will be made by the backup.
    Writable {
        path: String,
        free_bytes: Option<u64>,
        created: bool,
    },
    Unwritable {
        path: String,
        why: String,
    },
}

/// The read-only probes made beside the observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Probes {
    /// The DNS provider's `check_update` (absent: no dns switch, or the record was not observed).
    pub dns_update: Option<Result<(), ProviderError>>,
    /// The NAT provider's `check_swing` (absent: no nat switch, or the rule was not observed).
    pub nat_swing: Option<Result<(), ProviderError>>,
    pub backup_dir: BackupDirProbe,
}

fn check(
    subject: impl Into<String>,
    check: &'static str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        subject: subject.into(),
        check,
        status,
        detail: detail.into(),
        fix,
    }
}

/// The fix of a provider error, by its kind.
fn fix_for(kind: ErrorKind, what: &str) -> String {
    match kind {
        ErrorKind::Auth => format!(
            "check the credentials the plan gives for {what} (and that they are enabled on the other side)"
        ),
        ErrorKind::Tls => format!(
            "give the CA that issued {what}'s certificate as `ca_file`, or fix the certificate it serves"
        ),
        ErrorKind::Transient => format!("make sure {what} is up and reachable from this host"),
        ErrorKind::Refused => format!("allow this client on {what} (ACL, permissions)"),
        ErrorKind::Conflict => format!("make {what} match what the plan starts from"),
        ErrorKind::NotFound => format!("create what is missing on {what}, or correct the plan"),
        ErrorKind::Invalid | ErrorKind::Failed => format!("correct the plan's settings for {what}"),
    }
}

/// Judges readiness. `now_unix` is the engine clock (seconds).
pub fn judge(
    c: &CompiledPlan,
    view: &PlanView,
    o: &Observed,
    d: &Diff,
    probes: &Probes,
    plan_label: &str,
    now_unix: i64,
) -> DoctorReport {
    let mut checks = Vec::new();
    let need = match (
        c.plan.windows.iter().map(|w| w.start.timestamp()).min(),
        c.plan.windows.iter().map(|w| w.end.timestamp()).max(),
    ) {
        (Some(from), Some(until)) => Needed {
            from: from.max(now_unix),
            until,
            windows: true,
        },
        _ => Needed {
            from: now_unix,
            until: now_unix,
            windows: false,
        },
    };
    for name in c.plan.appliances.keys() {
        appliance(c, o, name, need, &mut checks);
    }
    switch(c, o, probes, &mut checks);
    for u in &d.unobserved {
        checks.push(check(
            "site",
            "observed",
            Status::Blocker,
            u.clone(),
            Some("make sure it is up and reachable from this host".into()),
        ));
    }
    for drift in &d.drift {
        checks.push(check(
            "site",
            "drift",
            Status::Blocker,
            drift.clone(),
            Some("make the site match what the plan starts from, or correct the plan".into()),
        ));
    }
    backup_dir(&probes.backup_dir, &mut checks);
    windows(c, now_unix, &mut checks);
    for f in &view.findings {
        let status = match f.level {
            Level::Error => Status::Blocker,
            Level::Warning => Status::Warning,
            Level::Info => continue,
        };
        checks.push(check(
            "plan",
            "finding",
            status,
            format!("{}: {}", f.code, f.message),
            Some(
                "change the plan (windows, policy, estimates) until `swing plan` shows no error"
                    .into(),
            ),
        ));
    }
    let blockers = checks
        .iter()
        .filter(|k| k.status == Status::Blocker)
        .count();
    let warnings = checks
        .iter()
        .filter(|k| k.status == Status::Warning)
        .count();
    DoctorReport {
        format_version: 1,
        plan: plan_label.to_owned(),
        site: c.plan.site.clone(),
        ready: blockers == 0,
        blockers,
        warnings,
        checks,
    }
}

fn appliance(c: &CompiledPlan, o: &Observed, name: &str, need: Needed, out: &mut Vec<Check>) {
    let subject = format!("appliance {name}");
    let address = c
        .plan
        .appliances
        .get(name)
        .map(|a| a.address.clone())
        .unwrap_or_default();
    let obs = match o.appliances.get(name) {
        Some(Ok(a)) => a,
        Some(Err(e)) => {
            out.push(check(
                &subject,
                "api-token",
                Status::Blocker,
                e.message.clone(),
                Some(match e.kind {
                    ErrorKind::Auth => "check client_id and client_secret of the API account (/login > Management > API Configuration: enabled, secret not regenerated)".into(),
                    k => fix_for(k, &format!("appliance {name} ({address})")),
                }),
            ));
            return;
        }
        None => {
            out.push(check(
                &subject,
                "api-token",
                Status::Blocker,
                "not observed",
                Some("wire a provider for it".into()),
            ));
            return;
        }
    };
    if !obs.reachable {
        out.push(check(
            &subject,
            "api-token",
            Status::Blocker,
            format!(
                "does not answer at {address}: {}",
                obs.error_message.as_deref().unwrap_or("no answer")
            ),
            Some(fix_for(ErrorKind::Transient, &format!("appliance {name}"))),
        ));
        return;
    }
    out.push(check(
        &subject,
        "api-token",
        Status::Ok,
        format!(
            "OAuth token issued, check_health answered (version {}, role {})",
            obs.version.as_deref().unwrap_or("unknown"),
            obs.role.as_str()
        ),
        None,
    ));
    if !obs.healthy {
        out.push(check(
            &subject,
            "health",
            Status::Blocker,
            format!(
                "check_health reports a problem: {}",
                obs.error_message.as_deref().unwrap_or("success=0")
            ),
            Some("resolve it under /appliance > Status before the window".into()),
        ));
    }
    match &obs.certificate {
        Some(cert) => out.push(certificate(&subject, cert, &c.plan, need)),
        None => out.push(check(
            &subject,
            "tls",
            Status::Warning,
            "the served certificate was not inspected",
            Some("let the provider inspect certificates".into()),
        )),
    }
    // The judges of the change's own preflight steps.
    for (op, label) in [
        (StepOp::Api(name.to_owned()), "api-permissions"),
        (StepOp::Clock(name.to_owned()), "clock"),
    ] {
        let Some(step) = c.step_by_op(&op) else {
            continue;
        };
        let (status, detail) = match judge_condition(&step.postcondition, o, Ctx { plan: &c.plan })
        {
            Verdict::Holds => (Status::Ok, held(&step.postcondition, obs)),
            Verdict::Fatal(m) | Verdict::NotYet(m) | Verdict::Unknown(m) => (Status::Blocker, m),
        };
        let fix = (status != Status::Ok).then(|| match label {
            "clock" => {
                "fix NTP under /appliance > Networking > IP Configuration (or this host's clock)"
                    .into()
            }
            _ => {
                "grant it at /login > Management > API Configuration (edit the API account)".into()
            }
        });
        out.push(check(&subject, label, status, detail, fix));
    }
    out.push(match &obs.api_version {
        Some(v) => check(
            &subject,
            "api-version",
            Status::Ok,
            format!("API version {v}"),
            None,
        ),
        None => check(
            &subject,
            "api-version",
            Status::Warning,
            "get_api_info did not report an API version",
            None,
        ),
    });
    if let Some(j) = &obs.jump_clients {
        out.push(check(
            &subject,
            "jump-clients",
            Status::Ok,
            format!(
                "{} counted ({} ready now), {} passive, {} uninstalled and {} lost not counted",
                j.total, j.upgraded_online, j.passive, j.uninstalled, j.lost
            ),
            None,
        ));
    }
    for w in &obs.warnings {
        out.push(check(
            &subject,
            "readable",
            Status::Warning,
            w.clone(),
            Some(
                "the value stays unknown; report the answer (`swing doctor --capture DIR`)".into(),
            ),
        ));
    }
}

/// What a holding `X.api` or clock postcondition found, in words.
fn held(
    cond: &swing_schema::output::Condition,
    obs: &crate::provider::ApplianceObservation,
) -> String {
    use swing_schema::output::Condition;
    match cond {
        Condition::ApiPermissions { needs, .. } if needs.is_empty() => {
            "the plan needs no API permission here".into()
        }
        Condition::ApiPermissions { needs, .. } => {
            let held: Vec<String> = needs
                .iter()
                .map(|n| match n.permission() {
                    Some((name, want)) => format!("{name} = {want}"),
                    None => "Configuration API read (the Jump Client list answered)".into(),
                })
                .collect();
            format!(
                "the API account holds what the plan uses: {}",
                held.join(", ")
            )
        }
        Condition::ClockSkew { max_s, .. } => format!(
            "clock {} s off ours (allowed {max_s} s)",
            obs.clock_skew_s.unwrap_or(0)
        ),
        _ => "holds".into(),
    }
}

/// When the certificate is needed: from the first window's start (the apply's preflight
/// demands `policy.certificate_min_days` left then) to the end of the last window; a plan
/// without windows may run now.
#[derive(Debug, Clone, Copy)]
struct Needed {
    from: i64,
    until: i64,
    windows: bool,
}

fn day(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn certificate(
    subject: &str,
    cert: &crate::provider::CertificateInfo,
    plan: &swing_schema::Plan,
    need: Needed,
) -> Check {
    let renew = |when: &str| {
        Some(format!(
            "renew it under /appliance > Security > Certificates {when}"
        ))
    };
    let Ok(not_after) = chrono::DateTime::parse_from_rfc3339(&cert.not_after) else {
        return check(
            subject,
            "tls",
            Status::Blocker,
            format!("certificate expiry {:?} is unreadable", cert.not_after),
            renew("(or report the answer: `swing doctor --capture DIR`)"),
        );
    };
    let expires = not_after.format("%Y-%m-%d %H:%M UTC%:z");
    let min_days = i64::from(plan.policy.certificate_min_days);
    let left_at_start = (not_after.timestamp() - need.from).div_euclid(86_400);
    let left_at_end = (not_after.timestamp() - need.until).div_euclid(86_400);
    let (status, detail, fix) = if !cert.trusted {
        (
            Status::Blocker,
            "the served certificate chain is not trusted".to_owned(),
            Some(
                "give the issuing CA as `ca_file`, or serve a certificate the system trusts".into(),
            ),
        )
    } else if !cert.sans.iter().any(|n| n.eq_ignore_ascii_case(&plan.site)) {
        (
            Status::Blocker,
            format!(
                "the served certificate is not valid for {} (it names {})",
                plan.site,
                cert.sans.join(", ")
            ),
            Some(format!(
                "serve a certificate for {} under /appliance > Security > Certificates",
                plan.site
            )),
        )
    } else if need.windows && not_after.timestamp() <= need.until {
        (
            Status::Blocker,
            format!(
                "certificate expires {expires} — before the end of the last window ({})",
                day(need.until)
            ),
            renew("before the first window"),
        )
    } else if left_at_start < min_days {
        (
            Status::Blocker,
            format!(
                "certificate expires {expires}: {left_at_start} days left {}, the plan asks for {min_days} (policy.certificate_min_days)",
                if need.windows {
                    format!("when the first window opens ({})", day(need.from))
                } else {
                    "today".to_owned()
                }
            ),
            renew("before the first window"),
        )
    } else {
        (
            Status::Ok,
            format!(
                "certificate chain trusted, valid for {}; {} days left {}",
                plan.site,
                left_at_end,
                if need.windows {
                    format!("at the end of the last window ({})", day(need.until))
                } else {
                    "today (the plan has no windows)".to_owned()
                }
            ),
            None,
        )
    };
    check(subject, "tls", status, detail, fix)
}

fn switch(c: &CompiledPlan, o: &Observed, probes: &Probes, out: &mut Vec<Check>) {
    let Some(sw) = plan_switch(&c.plan) else {
        return;
    };
    let provider = |name: Option<&str>| name.unwrap_or("?").to_owned();
    use swing_schema::Switch;
    match sw {
        Switch::Dns { provider: p, .. } => {
            let subject = format!("dns {}", provider(Some(p)));
            if let Some((record, r)) = &o.dns {
                out.push(match r {
                    Ok(d) => check(
                        &subject,
                        "record",
                        Status::Ok,
                        format!(
                            "the server answers: {record} → {} (TTL {} s)",
                            d.addresses
                                .iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join(", "),
                            d.ttl
                        ),
                        None,
                    ),
                    Err(e) => check(
                        &subject,
                        "record",
                        Status::Blocker,
                        e.message.clone(),
                        Some(fix_for(e.kind, "the DNS server")),
                    ),
                });
            }
            probe(&subject, "tsig-update", &probes.dns_update, out, |_| {
                "the TSIG key is accepted: a signed UPDATE made only of prerequisites changed nothing".into()
            });
        }
        Switch::Nat { provider: p, .. } => {
            let subject = format!("nat {}", provider(Some(p)));
            if let Some((public, r)) = &o.nat {
                out.push(match r {
                    Ok(n) => match n.target {
                        Some(t) => check(
                            &subject,
                            "rule",
                            Status::Ok,
                            format!("the rule for {public} sends traffic to {t}"),
                            None,
                        ),
                        None => check(
                            &subject,
                            "rule",
                            Status::Blocker,
                            format!("no rule matches {public}"),
                            Some("create the DNAT rule the plan starts from".into()),
                        ),
                    },
                    Err(e) => check(
                        &subject,
                        "rule",
                        Status::Blocker,
                        e.message.clone(),
                        Some(fix_for(e.kind, "the NAT gateway")),
                    ),
                });
            }
            probe(&subject, "writable", &probes.nat_swing, out, |_| {
                "the swing is accepted: its transaction was checked, not committed".into()
            });
        }
        Switch::SharedIp { .. } => {}
    }
}

fn probe(
    subject: &str,
    name: &'static str,
    r: &Option<Result<(), ProviderError>>,
    out: &mut Vec<Check>,
    ok: impl Fn(()) -> String,
) {
    match r {
        None => {}
        Some(Ok(())) => out.push(check(subject, name, Status::Ok, ok(()), None)),
        Some(Err(e))
            if e.kind == ErrorKind::NotFound && e.message.starts_with("this provider cannot") =>
        {
            out.push(check(
                subject,
                name,
                Status::Warning,
                e.message.clone(),
                None,
            ));
        }
        Some(Err(e)) => out.push(check(
            subject,
            name,
            Status::Blocker,
            e.message.clone(),
            Some(fix_for(e.kind, subject)),
        )),
    }
}

fn backup_dir(p: &BackupDirProbe, out: &mut Vec<Check>) {
    out.push(match p {
        BackupDirProbe::Unwritable { path, why } => check(
            "backup",
            "directory",
            Status::Blocker,
            format!("cannot write a backup into {path}: {why}"),
            Some("create the directory writable by the user swing runs as, or change `backup.directory`".into()),
        ),
        BackupDirProbe::Writable {
            path,
            free_bytes: Some(free),
            ..
        } if *free < MIN_BACKUP_FREE_BYTES => check(
            "backup",
            "directory",
            Status::Blocker,
            format!(
                "{path} has {} MiB free (needs at least {} MiB)",
                free >> 20,
                MIN_BACKUP_FREE_BYTES >> 20
            ),
            Some("free space there, or point `backup.directory` at a larger file system".into()),
        ),
        BackupDirProbe::Writable {
            path,
            free_bytes,
            created,
        } => check(
            "backup",
            "directory",
            Status::Ok,
            format!(
                "{path} {}{}",
                if *created {
                    "will be created (its parent is writable)"
                } else {
                    "is writable"
                },
                free_bytes
                    .map(|f| format!(", {} MiB free", f >> 20))
                    .unwrap_or_default()
            ),
            None,
        ),
    });
}

fn windows(c: &CompiledPlan, now: i64, out: &mut Vec<Check>) {
    let mut ws: Vec<_> = c.plan.windows.iter().collect();
    ws.sort_by_key(|w| w.start);
    if ws.is_empty() {
        out.push(check(
            "windows",
            "next-window",
            Status::Ok,
            "no maintenance windows: the change may run at any time",
            None,
        ));
        return;
    }
    match ws.iter().find(|w| w.end.timestamp() > now) {
        None => out.push(check(
            "windows",
            "next-window",
            Status::Blocker,
            format!(
                "every window has ended (the last one, {}, ended {})",
                ws[ws.len() - 1].name,
                ws[ws.len() - 1].end.to_rfc3339()
            ),
            Some("add the change's windows in the future to `windows`".into()),
        )),
        Some(w) if w.start.timestamp() <= now => {
            let ended = ws.iter().take_while(|x| x.end.timestamp() <= now).count();
            out.push(check(
                "windows",
                "next-window",
                if ended > 0 {
                    Status::Blocker
                } else {
                    Status::Ok
                },
                format!(
                    "window {} is open now (until {})",
                    w.name,
                    w.end.to_rfc3339()
                ),
                (ended > 0).then(|| "an earlier window has ended: move it into the future".into()),
            ))
        }
        Some(w) => {
            let ended = ws.iter().take_while(|x| x.end.timestamp() <= now).count();
            let days = (w.start.timestamp() - now) / 86_400;
            out.push(if ended > 0 {
                check(
                    "windows",
                    "next-window",
                    Status::Blocker,
                    format!(
                        "{ended} of the plan's windows have ended; the next, {}, starts {}",
                        w.name,
                        w.start.to_rfc3339()
                    ),
                    Some(
                        "every window of the change must lie in the future: move the ended ones"
                            .into(),
                    ),
                )
            } else {
                check(
                    "windows",
                    "next-window",
                    Status::Ok,
                    format!(
                        "the first window, {}, starts {} (in {days} days)",
                        w.name,
                        w.start.to_rfc3339()
                    ),
                    None,
                )
            });
        }
    }
}

/// One file of a capture: a path relative to the capture directory and its bytes.
pub type CaptureFile = (std::path::PathBuf, Vec<u8>);

/// The files `--capture DIR` writes for one plan: per appliance `<site>/<appliance>/` with
/// each raw answer's body under its own name and an `index.json` of the requests, statuses
/// and headers; a `capture-error.txt` where an appliance could not be captured. Every
/// occurrence of a name in `hide` (host names, when asked) becomes `host-N.invalid`.
pub fn capture_files(
    site: &str,
    captured: &[(
        String,
        Result<Vec<crate::provider::RawAnswer>, ProviderError>,
    )],
    hide: &[String],
) -> Vec<CaptureFile> {
    let mut hide: Vec<&String> = hide.iter().filter(|h| !h.is_empty()).collect();
    hide.sort_by_key(|h| std::cmp::Reverse(h.len()));
    hide.dedup();
    let redact = |bytes: &[u8]| -> Vec<u8> {
        let mut text = String::from_utf8_lossy(bytes).into_owned();
        for (i, h) in hide.iter().enumerate() {
            text = replace_ignore_ascii_case(&text, h, &format!("host-{}.invalid", i + 1));
        }
        text.into_bytes()
    };
    let site_dir = String::from_utf8_lossy(&redact(site.as_bytes())).into_owned();
    let mut files = Vec::new();
    for (appliance, r) in captured {
        let dir = std::path::Path::new(&site_dir).join(appliance);
        match r {
            Ok(answers) => {
                let mut index = Vec::new();
                for a in answers {
                    index.push(serde_json::json!({
                        "file": a.name,
                        "request": String::from_utf8_lossy(&redact(a.request.as_bytes())),
                        "status": a.status,
                        "headers": a.headers.iter().map(|(k, v)| {
                            serde_json::json!([k, String::from_utf8_lossy(&redact(v.as_bytes()))])
                        }).collect::<Vec<_>>(),
                    }));
                    files.push((dir.join(&a.name), redact(&a.body)));
                }
                let mut text = serde_json::to_vec_pretty(&index).unwrap_or_default();
                text.push(b'\n');
                files.push((dir.join("index.json"), text));
            }
            Err(e) => files.push((
                dir.join("capture-error.txt"),
                redact(format!("{}\n", e.message).as_bytes()),
            )),
        }
    }
    files
}

/// `hay` with `needle` replaced, ASCII case-insensitively (host names are case-insensitive).
fn replace_ignore_ascii_case(hay: &str, needle: &str, with: &str) -> String {
    let (h, n) = (hay.to_ascii_lowercase(), needle.to_ascii_lowercase());
    let mut out = String::with_capacity(hay.len());
    let mut last = 0;
    for (i, _) in h.match_indices(&n) {
        if i < last {
            continue;
        }
        out.push_str(&hay[last..i]);
        out.push_str(with);
        last = i + n.len();
    }
    out.push_str(&hay[last..]);
    out
}
