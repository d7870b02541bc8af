//! The prober's findings: one [`ProbeRecord`] per probe and the [`ProbeReport`] computed
//! from them (outages, the longest one = measured downtime, the sequence of appliances that
//! answered, and the "served by exactly one appliance" check).
//!
//! Owns: the arithmetic over records, as pure functions (tests feed records directly).
//! Must not: do IO, or hold anything secret (records carry appliance ids, hostnames and
//! error texts only).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// One probe: when it started, whether the site answered healthy, and who answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeRecord {
    /// Sequence number (probes start every interval, in this order).
    pub seq: u64,
    /// Start of the probe, milliseconds since the prober started.
    pub at_ms: u64,
    /// Wall clock at the start of the probe, UNIX milliseconds.
    pub unix_ms: i64,
    /// `GET /check_health` answered HTTP 200 over a verified TLS connection.
    pub ok: bool,
    /// How long the health call took, milliseconds.
    pub latency_ms: u64,
    /// The appliance id (`<appliance id=...>`) the command API reported, when identified.
    pub appliance: Option<String>,
    /// Why the probe failed (or why identification failed on a healthy probe).
    pub error: Option<String>,
}

/// A run of consecutive failed probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outage {
    /// Start of the first failed probe (ms since the prober started).
    pub start_ms: u64,
    /// Start of the first successful probe after it; `None` while the outage lasts.
    pub end_ms: Option<u64>,
    /// `end - start`; for an ongoing outage, up to the last failed probe plus one interval.
    pub duration_ms: u64,
    /// Failed probes in this outage.
    pub failures: u64,
    /// The first error seen.
    pub first_error: String,
}

/// A run of consecutive identified answers from the same appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Served {
    /// Appliance id as reported by `check_health`.
    pub appliance: String,
    /// A label for it (plan name such as `a`), when the caller gave one.
    pub label: Option<String>,
    pub first_ms: u64,
    pub last_ms: u64,
    pub probes: u64,
}

/// Everything the prober measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    pub site: String,
    /// How the site was reached (`address 10.0.0.10`, `dns 10.0.0.53:53`).
    pub route: String,
    pub interval_ms: u64,
    /// Wall clock when the prober started, UNIX milliseconds.
    pub started_unix_ms: i64,
    /// Milliseconds from start to the last finished probe.
    pub duration_ms: u64,
    pub probes: u64,
    pub failures: u64,
    /// Healthy probes whose appliance could not be identified.
    pub unidentified: u64,
    /// OAuth tokens the prober fetched (reused until a 401).
    pub tokens_fetched: u64,
    pub outages: Vec<Outage>,
    /// The longest outage = measured client-visible downtime, milliseconds.
    pub longest_outage_ms: u64,
    /// Sum of all outages, milliseconds.
    pub total_outage_ms: u64,
    /// Who served the site, in order (consecutive answers of one appliance merged).
    pub served: Vec<Served>,
    /// Failed probes in order, capped at [`MAX_FAILURES_LISTED`].
    pub failure_list: Vec<ProbeRecord>,
}

/// Most failed probes listed individually in a report (counts are always complete).
pub const MAX_FAILURES_LISTED: usize = 1000;

impl ProbeReport {
    /// Compute a report from records (in any order; they are sorted by `seq`).
    pub fn from_records(
        site: &str,
        route: &str,
        interval: Duration,
        started_unix_ms: i64,
        records: &[ProbeRecord],
        labels: &BTreeMap<String, String>,
        tokens_fetched: u64,
    ) -> ProbeReport {
        let interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        let mut sorted: Vec<&ProbeRecord> = records.iter().collect();
        sorted.sort_by_key(|r| r.seq);

        let mut outages: Vec<Outage> = Vec::new();
        let mut current: Option<Outage> = None;
        let mut served: Vec<Served> = Vec::new();
        let mut failure_list = Vec::new();
        let mut failures = 0;
        let mut unidentified = 0;
        let mut last_failure_ms = 0;
        for r in &sorted {
            if r.ok {
                if let Some(mut o) = current.take() {
                    o.end_ms = Some(r.at_ms);
                    o.duration_ms = r.at_ms.saturating_sub(o.start_ms);
                    outages.push(o);
                }
                match &r.appliance {
                    Some(id) => match served.last_mut() {
                        Some(s) if &s.appliance == id => {
                            s.last_ms = r.at_ms;
                            s.probes += 1;
                        }
                        _ => served.push(Served {
                            appliance: id.clone(),
                            label: labels.get(id).cloned(),
                            first_ms: r.at_ms,
                            last_ms: r.at_ms,
                            probes: 1,
                        }),
                    },
                    None => unidentified += 1,
                }
            } else {
                failures += 1;
                last_failure_ms = r.at_ms;
                if failure_list.len() < MAX_FAILURES_LISTED {
                    failure_list.push((*r).clone());
                }
                match current.as_mut() {
                    Some(o) => o.failures += 1,
                    None => {
                        current = Some(Outage {
                            start_ms: r.at_ms,
                            end_ms: None,
                            duration_ms: 0,
                            failures: 1,
                            first_error: r.error.clone().unwrap_or_else(|| "failed".into()),
                        })
                    }
                }
            }
        }
        if let Some(mut o) = current.take() {
            o.duration_ms = last_failure_ms
                .saturating_sub(o.start_ms)
                .saturating_add(interval_ms);
            outages.push(o);
        }
        let longest_outage_ms = outages.iter().map(|o| o.duration_ms).max().unwrap_or(0);
        let total_outage_ms = outages.iter().map(|o| o.duration_ms).sum();
        ProbeReport {
            site: site.to_string(),
            route: route.to_string(),
            interval_ms,
            started_unix_ms,
            duration_ms: sorted.last().map(|r| r.at_ms + r.latency_ms).unwrap_or(0),
            probes: sorted.len() as u64,
            failures,
            unidentified,
            tokens_fetched,
            outages,
            longest_outage_ms,
            total_outage_ms,
            served,
            failure_list,
        }
    }

    /// What the apply's report carries of this measurement.
    pub fn client_downtime(&self) -> swing_engine::provider::ClientDowntime {
        swing_engine::provider::ClientDowntime {
            longest_outage_ms: self.longest_outage_ms,
            outages: self.outages.len(),
            total_outage_ms: self.total_outage_ms,
            probes: self.probes,
            interval_ms: self.interval_ms,
            served_by: self.sequence(),
        }
    }

    /// The measured downtime: the longest outage.
    pub fn longest_outage(&self) -> Duration {
        Duration::from_millis(self.longest_outage_ms)
    }

    /// The appliances that answered, in order (label when known, else id).
    pub fn sequence(&self) -> Vec<String> {
        self.served
            .iter()
            .map(|s| s.label.clone().unwrap_or_else(|| s.appliance.clone()))
            .collect()
    }

    /// The "served by exactly one appliance" check: every identified answer came from one
    /// appliance at a time, in exactly the `expected` order (labels or ids), with no
    /// back-and-forth between them (which would mean two appliances served the site at once
    /// or a switch flapped).
    pub fn check_served_by(&self, expected: &[&str]) -> Result<(), String> {
        let seq = self.sequence();
        if seq.iter().map(String::as_str).eq(expected.iter().copied()) {
            Ok(())
        } else {
            Err(format!(
                "the site was served by {} — expected {}",
                if seq.is_empty() {
                    "no identified appliance".to_string()
                } else {
                    seq.join(" → ")
                },
                expected.join(" → ")
            ))
        }
    }

    /// A short human summary (several lines, no trailing newline).
    pub fn summary(&self) -> String {
        let seq = self.sequence();
        let mut s = format!(
            "probe of {} via {}: {} probes every {} ms over {:.1} s, {} failed\n",
            self.site,
            self.route,
            self.probes,
            self.interval_ms,
            self.duration_ms as f64 / 1000.0,
            self.failures
        );
        s.push_str(&format!(
            "measured downtime (longest outage): {:.3} s in {} outage(s), {:.3} s in total\n",
            self.longest_outage_ms as f64 / 1000.0,
            self.outages.len(),
            self.total_outage_ms as f64 / 1000.0
        ));
        s.push_str(&format!(
            "served by: {}",
            if seq.is_empty() {
                "(not identified)".to_string()
            } else {
                seq.join(" → ")
            }
        ));
        for o in &self.outages {
            s.push_str(&format!(
                "\n  outage at +{:.3} s for {:.3} s ({} failed probes): {}",
                o.start_ms as f64 / 1000.0,
                o.duration_ms as f64 / 1000.0,
                o.failures,
                o.first_error
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, ok: bool, who: Option<&str>) -> ProbeRecord {
        ProbeRecord {
            seq,
            at_ms: seq * 50,
            unix_ms: 0,
            ok,
            latency_ms: 2,
            appliance: who.map(str::to_string),
            error: (!ok).then(|| "connection refused".to_string()),
        }
    }

    #[test]
    fn outages_and_sequence_are_computed_in_seq_order() {
        let recs = vec![
            rec(3, false, None),
            rec(0, true, Some("ID-A")),
            rec(1, true, Some("ID-A")),
            rec(2, false, None),
            rec(4, true, Some("ID-B")),
            rec(5, true, None),
            rec(6, false, None),
        ];
        let labels = BTreeMap::from([("ID-A".to_string(), "a".to_string())]);
        let r =
            ProbeReport::from_records("s", "x", Duration::from_millis(50), 0, &recs, &labels, 2);
        assert_eq!(r.probes, 7);
        assert_eq!(r.failures, 3);
        assert_eq!(r.unidentified, 1);
        assert_eq!(r.outages.len(), 2);
        assert_eq!(r.outages[0].start_ms, 100);
        assert_eq!(r.outages[0].end_ms, Some(200));
        assert_eq!(r.outages[0].duration_ms, 100);
        assert_eq!(r.outages[1].end_ms, None);
        assert_eq!(r.outages[1].duration_ms, 50);
        assert_eq!(r.longest_outage(), Duration::from_millis(100));
        assert_eq!(r.total_outage_ms, 150);
        assert_eq!(r.sequence(), vec!["a".to_string(), "ID-B".to_string()]);
        assert!(r.check_served_by(&["a", "ID-B"]).is_ok());
        assert!(r.check_served_by(&["a"]).is_err());
        assert!(r.summary().contains("longest outage"));
    }

    #[test]
    fn flapping_is_not_served_by_one() {
        let recs = vec![
            rec(0, true, Some("A")),
            rec(1, true, Some("B")),
            rec(2, true, Some("A")),
            rec(3, true, Some("B")),
        ];
        let r = ProbeReport::from_records(
            "s",
            "x",
            Duration::from_millis(50),
            0,
            &recs,
            &BTreeMap::new(),
            1,
        );
        assert_eq!(r.failures, 0);
        assert_eq!(r.longest_outage_ms, 0);
        let err = r.check_served_by(&["A", "B"]).unwrap_err();
        assert!(err.contains("A → B → A → B"), "{err}");
    }
}
