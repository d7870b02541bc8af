//! The change record as Markdown (for the ticket, at most [`MAX_CHARS`] characters: the
//! observed values are cut first, never the verdict or the step table) and JSON (the
//! [`ChangeReport`] itself).
//!
//! Owns the wording around the record; every string from the plan, the journal or an
//! appliance passes through [`super::escape`]. Must not: compute the record or do IO.

use std::fmt::Write as _;

use swing_schema::report::ChangeReport;

use super::escape::{md_code, md_inline};

/// The most characters of the Markdown record (GitHub's comment limit is 65,536).
pub const MAX_CHARS: usize = 65_000;

fn secs(s: Option<f64>) -> String {
    s.map(|s| format!("{s:.1} s")).unwrap_or_default()
}

/// Markdown, at most `max` characters.
pub fn markdown(r: &ChangeReport, max: usize) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "## Change record: {} ({})\n\n**{}** — {}\n",
        md_inline(&r.change),
        md_inline(&r.site),
        r.verdict,
        md_inline(&r.verdict_text)
    );
    let _ = writeln!(o, "| | |\n|---|---|");
    let _ = writeln!(
        o,
        "| plan digest | {} |",
        r.plan_digest.as_deref().map(md_code).unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "| signed by | {} |",
        r.signed_by
            .as_deref()
            .map(md_code)
            .unwrap_or_else(|| "not signed".to_owned())
    );
    let _ = writeln!(
        o,
        "| client downtime (measured) | {} |",
        r.downtime_measured_s
            .map(|d| format!("{d:.3} s longest outage a probing client saw"))
            .unwrap_or_else(|| "no client probe ran".to_owned())
    );
    for d in &r.downtime_by_switch {
        let _ = writeln!(
            o,
            "| — during {} | {:.3} s ({} outage(s), {} probes) |",
            md_code(&d.step),
            d.longest_outage_s,
            d.outages,
            d.probes
        );
    }
    let _ = writeln!(
        o,
        "| without failover protection | {} s (wall clock, break verified → establish verified) |",
        r.unprotected_s
    );
    let _ = writeln!(o, "| runs | {} |", r.runs.len());
    o.push('\n');
    if !r.runs.is_empty() {
        let _ = writeln!(
            o,
            "| run | started | host | pid | ended |\n|---|---|---|---|---|"
        );
        for (i, run) in r.runs.iter().enumerate() {
            let _ = writeln!(
                o,
                "| {}{} | {} | {} | {} | {} |",
                i + 1,
                if run.resume { " (resume)" } else { "" },
                run.started,
                md_inline(&run.host),
                run.pid,
                run.outcome
                    .as_deref()
                    .unwrap_or("without a record (killed)")
            );
        }
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "| step | status | started | finished | took | confirmed by | note |\n|---|---|---|---|---|---|---|"
    );
    for s in &r.steps {
        let _ = writeln!(
            o,
            "| {} | {}{} | {} | {} | {} | {} | {} |",
            md_code(&s.id),
            s.status,
            if s.failures.is_empty() {
                String::new()
            } else {
                format!(" ({} failure(s))", s.failures.len())
            },
            s.started.as_deref().unwrap_or(""),
            s.finished.as_deref().unwrap_or(""),
            secs(s.duration_s),
            md_inline(s.confirmed_by.as_deref().unwrap_or("")),
            md_inline(s.note.as_deref().unwrap_or(""))
        );
    }
    o.push('\n');
    if !r.backups.is_empty() {
        let _ = writeln!(o, "Backups:\n");
        for b in &r.backups {
            let _ = writeln!(
                o,
                "- {} ({} bytes, SHA-256 {})",
                md_code(&b.path),
                b.bytes,
                md_code(&b.sha256)
            );
        }
        o.push('\n');
    }
    let failures: Vec<String> = r
        .steps
        .iter()
        .flat_map(|s| {
            s.failures
                .iter()
                .map(move |f| format!("- {}: {}\n", md_code(&s.id), md_inline(f)))
        })
        .collect();
    if !failures.is_empty() {
        o.push_str("Failures and halts:\n\n");
        for f in failures {
            o.push_str(&f);
        }
        o.push('\n');
    }
    // The observed values: detail, cut first when the record would be too long.
    let mut details =
        String::from("<details><summary>What swing observed at each verification</summary>\n\n");
    let mut cut = 0usize;
    for s in r.steps.iter().filter(|s| !s.observed.is_null()) {
        let entry = format!(
            "- {}: {}\n",
            md_code(&s.id),
            md_inline(&s.observed.to_string())
        );
        if o.len() + details.len() + entry.len() + 200 > max {
            cut += 1;
            continue;
        }
        details.push_str(&entry);
    }
    if cut > 0 {
        let _ = writeln!(
            details,
            "\n({cut} observation(s) cut to stay under {max} characters; `swing report --format json` has them all)"
        );
    }
    details.push_str("\n</details>\n");
    o.push_str(&details);
    o
}

/// JSON: the record.
pub fn json(r: &ChangeReport) -> String {
    let mut s = serde_json::to_string_pretty(r).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use swing_schema::report::ReportStep;

    fn record(steps: usize, observed_len: usize) -> ChangeReport {
        ChangeReport {
            format_version: 1,
            change: "chg".into(),
            site: "access.example.com".into(),
            plan_digest: Some("ab".repeat(32)),
            signed_by: None,
            verdict: "done".into(),
            verdict_text: "Done.".into(),
            runs: Vec::new(),
            steps: (0..steps)
                .map(|i| ReportStep {
                    id: format!("s{i}"),
                    title: "t".into(),
                    status: "succeeded".into(),
                    started: None,
                    finished: None,
                    duration_s: Some(1.0),
                    confirmed_by: Some("mallory | <b>".into()),
                    note: Some("line\n| injected |".into()),
                    observed: serde_json::json!({ "v": "x".repeat(observed_len) }),
                    failures: Vec::new(),
                })
                .collect(),
            downtime_measured_s: None,
            downtime_by_switch: Vec::new(),
            unprotected_s: 0,
            backups: Vec::new(),
        }
    }

    #[test]
    fn the_record_stays_under_the_limit_cutting_observations_not_steps() {
        let r = record(40, 5_000);
        let md = markdown(&r, MAX_CHARS);
        assert!(md.len() <= MAX_CHARS, "{}", md.len());
        assert_eq!(
            md.matches("| `s").count(),
            40,
            "every step stays in the table"
        );
        assert!(md.contains("observation(s) cut"), "the cut is said");
        // Actors and notes are data: they cannot add table cells or HTML.
        assert!(!md.contains("<b>"));
        assert!(md.contains("mallory \\| &lt;b&gt;"), "{}", &md[..2000]);
    }
}
