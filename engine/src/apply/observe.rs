//! Gathering an observation for a condition: what the executor looks at (an appliance's
//! `check_health`, the DNS record, the NAT rule, who answers at a shared address, Jump
//! Client counts) to tell whether a step's pre- or postcondition holds now.
//!
//! Owns: which provider is asked for which condition and how an unanswered question is
//! worded. Must not: act on the world, journal, or decide order.

use std::net::SocketAddr;

use sha2::{Digest, Sha256};
use swing_schema::Switch;
use swing_schema::output::Condition;

use super::site::SiteExecutor;
use super::walker::{Check, StepError};
use crate::condition::{Ctx, Verdict, judge};
use crate::provider::{ApplianceObservation, FailoverRole};
use crate::refresh::{Observed, plan_switch};

impl SiteExecutor {
    /// Evaluates one condition against the world now.
    pub(crate) fn eval<'a>(
        &'a self,
        cond: &'a Condition,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Check, StepError>> + Send + 'a>>
    {
        Box::pin(async move {
            let holds = |v: serde_json::Value| Ok(Check::Holds(v));
            let not_yet = |why: String| Ok(Check::NotYet(why));
            match cond {
                Condition::Healthy { appliance } => {
                    let o = match self.observe(appliance).await {
                        Ok(o) => o,
                        Err(e) if e.retryable => {
                            return not_yet(format!("{appliance}: {}", e.message));
                        }
                        Err(e) => return Err(e),
                    };
                    let evidence = serde_json::json!({ "appliance": appliance, "version": o.version, "role": o.role });
                    self.ask(cond, one(appliance, o), evidence)
                }
                Condition::Version { appliance, version } => {
                    let o = match self.observe(appliance).await {
                        Ok(o) => o,
                        Err(e) if e.retryable => {
                            return not_yet(format!("{appliance}: {}", e.message));
                        }
                        Err(e) => return Err(e),
                    };
                    let evidence =
                        serde_json::json!({ "appliance": appliance, "version": version });
                    self.ask(cond, one(appliance, o), evidence)
                }
                Condition::Role { appliance, role } => {
                    let o = self.observe(appliance).await?;
                    let evidence = serde_json::json!({ "appliance": appliance, "role": role });
                    self.ask(cond, one(appliance, o), evidence)
                }
                Condition::ClockSkew { appliance, .. } => {
                    let o = self.observe(appliance).await?;
                    let evidence = serde_json::json!({ "appliance": appliance, "clock_skew_s": o.clock_skew_s });
                    self.ask(cond, one(appliance, o), evidence)
                }
                Condition::Certificate {
                    appliance,
                    site,
                    min_days,
                } => {
                    let o = self.observe(appliance).await?;
                    let Some(cert) = o.certificate else {
                        return not_yet(format!(
                            "appliance {appliance}'s certificate was not observed"
                        ));
                    };
                    if !cert.trusted {
                        return Err(StepError::fatal(format!(
                            "appliance {appliance}'s certificate is not trusted"
                        )));
                    }
                    if !cert.sans.iter().any(|n| n.eq_ignore_ascii_case(site)) {
                        return Err(StepError::fatal(format!(
                            "appliance {appliance}'s certificate is not valid for {site}"
                        )));
                    }
                    let left_days = chrono::DateTime::parse_from_rfc3339(&cert.not_after)
                        .map(|t| (t.timestamp_millis() - self.clock.now_ms()) / 86_400_000)
                        .map_err(|_| {
                            StepError::fatal(format!(
                                "certificate notAfter `{}` unreadable",
                                cert.not_after
                            ))
                        })?;
                    if left_days < i64::from(*min_days) {
                        return Err(StepError::fatal(format!(
                            "appliance {appliance}'s certificate expires in {left_days} days (policy: at least {min_days})"
                        )));
                    }
                    holds(
                        serde_json::json!({ "appliance": appliance, "leaf_sha256": cert.leaf_sha256, "days_left": left_days }),
                    )
                }
                Condition::InWindow => {
                    let ws = &self.plan().windows;
                    let now = self.clock.now_ms();
                    if ws.is_empty()
                        || ws.iter().any(|w| {
                            w.start.timestamp_millis() <= now && now < w.end.timestamp_millis()
                        })
                    {
                        holds(serde_json::Value::Null)
                    } else {
                        Err(StepError::fatal(
                            "now is outside every maintenance window of the plan",
                        ))
                    }
                }
                Condition::BackupExists { appliance } => {
                    let backups = self
                        .backups
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    for b in backups.iter().rev() {
                        if let Ok(bytes) = std::fs::read(&b.path)
                            && hex::encode(Sha256::digest(&bytes)) == b.sha256
                        {
                            return holds(
                                serde_json::json!({ "path": b.path, "sha256": b.sha256 }),
                            );
                        }
                    }
                    not_yet(format!(
                        "no configuration backup of {appliance} with a matching SHA-256 on disk"
                    ))
                }
                Condition::SameCertificate {
                    appliance,
                    as_appliance,
                } => {
                    let (a, b) = (
                        self.observe(appliance).await?,
                        self.observe(as_appliance).await?,
                    );
                    match (a.certificate, b.certificate) {
                        (Some(x), Some(y)) if x.leaf_sha256 == y.leaf_sha256 => {
                            holds(serde_json::json!({ "leaf_sha256": x.leaf_sha256 }))
                        }
                        _ => not_yet(format!(
                            "{appliance} does not serve the same certificate as {as_appliance} yet"
                        )),
                    }
                }
                Condition::CertificateExported { appliance } => {
                    let o = match self.observe(appliance).await {
                        Ok(o) => o,
                        Err(e) if e.retryable => {
                            return not_yet(format!("{appliance}: {}", e.message));
                        }
                        Err(e) => return Err(e),
                    };
                    let Some(cert) = o.certificate else {
                        return not_yet(format!(
                            "appliance {appliance}'s certificate was not observed"
                        ));
                    };
                    let dir = self.backup_dir(self.plan());
                    match super::exported::find(&dir, appliance, &cert.leaf_sha256) {
                        Ok(found) => holds(serde_json::json!({
                            "appliance": appliance,
                            "file": found.path,
                            "leaf_sha256": found.leaf_sha256,
                        })),
                        // The person confirmed an export that is not there or is another
                        // certificate: halt and say what was found.
                        Err(problem) => Err(StepError::fatal(problem.to_string())),
                    }
                }
                // The walker got a person's confirmation (or the automation reported success):
                // that is the whole postcondition, nothing else is claimed.
                Condition::Confirmed => holds(serde_json::Value::Null),
                Condition::SyncAfter {
                    appliance,
                    after_step,
                } => {
                    let o = self.observe(appliance).await?;
                    // A sync the person started when asked (before confirming) counts.
                    let since = self.person_since(after_step).unwrap_or(0);
                    let status = o.last_sync_status.as_deref();
                    match (o.last_sync_unix, status.map(SyncStatus::of)) {
                        (_, Some(SyncStatus::Failed)) => Err(StepError::fatal(format!(
                            "the data sync on {appliance} failed: {}",
                            crate::render::escape::terminal_line(status.unwrap_or_default())
                        ))),
                        (Some(t), Some(SyncStatus::Succeeded))
                            if t.saturating_mul(1000) >= since - 1000 =>
                        {
                            holds(
                                serde_json::json!({ "appliance": appliance, "last_sync_unix": t, "last_sync_status": status }),
                            )
                        }
                        _ => not_yet(format!(
                            "waiting for a successful data sync on {appliance} after {after_step} (status: {})",
                            crate::render::escape::terminal_line(status.unwrap_or("none reported"))
                        )),
                    }
                }
                Condition::SiteServedBy { appliance } => self.site_served_by(appliance).await,
                Condition::DnsTtl { record, ttl_s } => {
                    let dns = self.dns()?;
                    let o = dns.observe(record).await?;
                    if u64::from(o.ttl) == *ttl_s {
                        holds(serde_json::json!({ "record": record, "ttl": o.ttl }))
                    } else {
                        not_yet(format!("dns {record} has TTL {}, expecting {ttl_s}", o.ttl))
                    }
                }
                Condition::JumpClientsRatio { ratio } => {
                    let mut best: Option<crate::provider::JumpClientSummary> = None;
                    for name in self.plan().appliances.keys() {
                        if let Ok(o) = self.observe(name).await
                            && o.role != FailoverRole::Backup
                            && let Some(j) = o.jump_clients
                            && best.is_none_or(|b| j.ratio() > b.ratio())
                        {
                            best = Some(j);
                        }
                    }
                    match best {
                        Some(j) if j.ratio() >= *ratio => holds(serde_json::json!({
                            "total": j.total, "upgraded_online": j.upgraded_online
                        })),
                        Some(j) => not_yet(format!(
                            "{} of {} Jump Clients online and upgraded ({:.0}%, need {:.0}%)",
                            j.upgraded_online,
                            j.total,
                            j.ratio() * 100.0,
                            ratio * 100.0
                        )),
                        None => not_yet("Jump Clients not observed yet".into()),
                    }
                }
                Condition::ApiPermissions { appliance, needs } => {
                    let o = match self.observe(appliance).await {
                        Ok(o) => o,
                        Err(e) if e.retryable => {
                            return not_yet(format!("{appliance}: {}", e.message));
                        }
                        Err(e) => return Err(e),
                    };
                    let evidence = serde_json::json!({ "appliance": appliance, "permissions": o.api_permissions, "needs": needs });
                    self.ask(cond, one(appliance, o), evidence)
                }
                Condition::ApiAccount { appliance } => match self.observe(appliance).await {
                    Ok(o) if o.reachable => holds(serde_json::json!({ "appliance": appliance })),
                    Ok(_) => not_yet(format!("appliance {appliance} does not answer")),
                    Err(e) if e.retryable => not_yet(e.message),
                    Err(e) => not_yet(format!(
                        "the API account does not authenticate on {appliance} yet: {}",
                        e.message
                    )),
                },
                Condition::Elapsed {
                    after_step,
                    seconds,
                } => {
                    let since = self.acted_at(after_step).unwrap_or(0);
                    let waited = (self.clock.now_ms() - since) / 1000;
                    if waited >= i64::try_from(*seconds).unwrap_or(i64::MAX) {
                        holds(serde_json::json!({ "waited_s": waited }))
                    } else {
                        not_yet(format!(
                            "waiting for the old TTL to expire: {waited}s of {seconds}s"
                        ))
                    }
                }
                Condition::All { all } => {
                    let mut seen = serde_json::Map::new();
                    for (i, c) in all.iter().enumerate() {
                        match self.eval(c).await? {
                            Check::Holds(v) => {
                                seen.insert(i.to_string(), v);
                            }
                            nope => return Ok(nope),
                        }
                    }
                    holds(serde_json::Value::Object(seen))
                }
            }
        })
    }

    /// Whether `appliance` is seen answering at the shared `address` (false when that cannot
    /// be told).
    pub(super) async fn shared_ip_answered_by(&self, appliance: &str, address: &str) -> bool {
        let Some(p) = self.providers.appliances.get(appliance) else {
            return false;
        };
        let Ok(own) = self.observe(appliance).await else {
            return false;
        };
        match (own.appliance_id, p.identify_at(address).await) {
            (Some(want), Ok(Some(id))) => id == want,
            _ => false,
        }
    }

    /// Whether `appliance` is the one answering the command API at the shared `address`.
    async fn answers_at(
        &self,
        appliance: &str,
        address: &str,
        own: &crate::provider::ApplianceObservation,
    ) -> Result<Check, StepError> {
        let p = self
            .providers
            .appliances
            .get(appliance)
            .ok_or_else(|| StepError::fatal(format!("no provider is wired for {appliance}")))?;
        let Some(want) = own.appliance_id.as_deref() else {
            return Ok(Check::NotYet(format!(
                "{appliance} reported no appliance id"
            )));
        };
        match p.identify_at(address).await {
            Ok(Some(id)) if id == want => Ok(Check::Holds(serde_json::json!({
                "appliance": appliance,
                "shared_ip": address,
                "answered_by": id
            }))),
            Ok(Some(id)) => Ok(Check::NotYet(format!(
                "the shared IP {address} is answered by appliance id {id}, not {appliance}"
            ))),
            Ok(None) => Ok(Check::NotYet(format!(
                "nothing answers at the shared IP {address} yet"
            ))),
            // A provider that cannot look (an exec plugin): the operator's report stands,
            // journaled as not observable.
            Err(e) if e.kind == crate::provider::ErrorKind::NotFound => {
                Ok(Check::Holds(serde_json::json!({
                    "appliance": appliance,
                    "shared_ip": address,
                    "observable": false
                })))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn site_served_by(&self, appliance: &str) -> Result<Check, StepError> {
        let cond = Condition::SiteServedBy {
            appliance: appliance.to_owned(),
        };
        match plan_switch(self.plan()) {
            Some(Switch::SharedIp { address }) => {
                let o = self.observe(appliance).await?;
                let reachable = o.reachable;
                let evidence = serde_json::json!({ "appliance": appliance, "shared_ip": address });
                let seen = one(appliance, o.clone());
                match judge(&cond, &seen, Ctx { plan: self.plan() }) {
                    // check_health lists shared IPs only inside a failover relationship: while
                    // the pair is broken, ask who answers at the shared address itself.
                    Verdict::Unknown(_) if reachable => {
                        self.answers_at(appliance, address, &o).await
                    }
                    Verdict::Unknown(_) => Ok(Check::NotYet(format!(
                        "shared IP {address} is not enabled on {appliance}"
                    ))),
                    v => verdict(v, evidence),
                }
            }
            Some(Switch::Dns { record, .. }) => {
                let dns = self.dns()?;
                let o = dns.observe(record).await?;
                let want = self.appliance_ip(appliance)?;
                let evidence = serde_json::json!({ "record": record, "address": want.to_string() });
                let seen = Observed {
                    dns: Some((record.clone(), Ok(o))),
                    ..Observed::default()
                };
                self.ask(&cond, seen, evidence)
            }
            Some(Switch::Nat { public, .. }) => {
                let nat = self
                    .providers
                    .nat
                    .as_ref()
                    .ok_or_else(|| StepError::fatal("no NAT provider is wired"))?;
                let p: SocketAddr = public
                    .parse()
                    .map_err(|_| StepError::fatal(format!("`{public}` is not an address:port")))?;
                let o = nat.observe(p).await?;
                self.appliance_ip(appliance)?;
                let evidence = serde_json::json!({ "public": public, "target": o.target });
                let seen = Observed {
                    nat: Some((public.clone(), Ok(o))),
                    ..Observed::default()
                };
                self.ask(&cond, seen, evidence)
            }
            // Nothing moves the site: it is served where it is.
            None => Ok(Check::Holds(serde_json::Value::Null)),
        }
    }

    /// Asks the [judge](crate::condition::judge) about `cond` given what was `seen`;
    /// `evidence` is what the journal records when it holds.
    fn ask(
        &self,
        cond: &Condition,
        seen: Observed,
        evidence: serde_json::Value,
    ) -> Result<Check, StepError> {
        verdict(judge(cond, &seen, Ctx { plan: self.plan() }), evidence)
    }
}

/// What `last_data_sync_status` says, as far as its text tells (the vendor does not document
/// its vocabulary: the words of the texts seen are read, anything else is `Unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncStatus {
    Succeeded,
    Failed,
    Pending,
    Unknown,
}

impl SyncStatus {
    pub(crate) fn of(text: &str) -> SyncStatus {
        let t = text.trim().to_ascii_lowercase();
        let has = |w: &[&str]| w.iter().any(|w| t.contains(w));
        if has(&["fail", "error", "abort"]) {
            SyncStatus::Failed
        } else if has(&["progress", "waiting", "pending", "running", "started"]) {
            SyncStatus::Pending
        } else if has(&["success", "succeeded", "complete", "synchronized", "synced"]) || t == "ok"
        {
            SyncStatus::Succeeded
        } else {
            SyncStatus::Unknown
        }
    }
}

/// An observation of one appliance, as the judge reads it.
fn one(appliance: &str, o: ApplianceObservation) -> Observed {
    let mut seen = Observed::default();
    seen.appliances.insert(appliance.to_owned(), Ok(o));
    seen
}

/// The walker's reading of a verdict: waiting while the observation cannot tell, halting on
/// a fatal one.
fn verdict(v: Verdict, evidence: serde_json::Value) -> Result<Check, StepError> {
    match v {
        Verdict::Holds => Ok(Check::Holds(evidence)),
        Verdict::NotYet(why) | Verdict::Unknown(why) => Ok(Check::NotYet(why)),
        Verdict::Fatal(why) => Err(StepError::fatal(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::SyncStatus;

    #[test]
    fn sync_status_texts_are_read_by_their_words() {
        for (text, want) in [
            ("Success", SyncStatus::Succeeded),
            ("Sync completed", SyncStatus::Succeeded),
            ("OK", SyncStatus::Succeeded),
            ("In progress", SyncStatus::Pending),
            ("Waiting for first sync", SyncStatus::Pending),
            ("Failed: peer unreachable", SyncStatus::Failed),
            ("Error 17", SyncStatus::Failed),
            ("Bananas", SyncStatus::Unknown),
            ("", SyncStatus::Unknown),
        ] {
            assert_eq!(SyncStatus::of(text), want, "{text}");
        }
    }
}
