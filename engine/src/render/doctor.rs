//! The doctor's report as text (terminal), Markdown (a ticket or pull-request comment) and
//! JSON (the report itself, `format_version` 1).
//!
//! Owns every byte of the report's wording around the checks. Every string that came from a
//! plan, an appliance or a server passes through [`super::escape`]. Must not: judge (the
//! checks arrive decided), do IO or touch the terminal.

use crate::doctor::{DoctorReport, Status};

use super::escape::{md_inline, terminal_line};

fn mark(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warning => "warning",
        Status::Blocker => "BLOCKER",
    }
}

fn verdict(r: &DoctorReport) -> String {
    if r.ready {
        format!(
            "READY — {} checks, no blocker{}",
            r.checks.len(),
            match r.warnings {
                0 => String::new(),
                1 => ", 1 warning".into(),
                n => format!(", {n} warnings"),
            }
        )
    } else {
        format!(
            "NOT READY — {} blocker{}: fix each, then run `swing doctor` again",
            r.blockers,
            if r.blockers == 1 { "" } else { "s" }
        )
    }
}

/// Terminal text: one line per check, the fix under each warning and blocker.
pub fn text(r: &DoctorReport) -> String {
    let mut out = format!(
        "swing doctor: {} ({})\n\n",
        terminal_line(&r.site),
        terminal_line(&r.plan)
    );
    let width = r
        .checks
        .iter()
        .map(|c| c.subject.chars().count() + c.check.len() + 1)
        .max()
        .unwrap_or(0);
    for c in &r.checks {
        let label = format!("{} {}", terminal_line(&c.subject), c.check);
        out.push_str(&format!(
            "  {:<7}  {label:<width$}  {}\n",
            mark(c.status),
            terminal_line(&c.detail)
        ));
        if let Some(fix) = &c.fix
            && c.status != Status::Ok
        {
            out.push_str(&format!(
                "  {:<7}  {:<width$}  fix: {}\n",
                "",
                "",
                terminal_line(fix)
            ));
        }
    }
    out.push_str(&format!("\n{}\n", verdict(r)));
    out
}

/// Markdown: a verdict line and a table of the checks.
pub fn markdown(r: &DoctorReport) -> String {
    let mut out = format!(
        "### swing doctor: {}\n\n**{}**\n\n| | what | check | found | fix |\n|---|---|---|---|---|\n",
        md_inline(&r.site),
        verdict(r)
    );
    for c in &r.checks {
        let icon = match c.status {
            Status::Ok => "✅",
            Status::Warning => "⚠️",
            Status::Blocker => "⛔",
        };
        out.push_str(&format!(
            "| {icon} | {} | {} | {} | {} |\n",
            md_inline(&c.subject),
            c.check,
            md_inline(&c.detail),
            c.fix
                .as_deref()
                .filter(|_| c.status != Status::Ok)
                .map(md_inline)
                .unwrap_or_default()
        ));
    }
    out.push_str(&format!("\nPlan: {}\n", md_inline(&r.plan)));
    out
}

/// JSON: the report (one object per plan; the caller makes a list of several).
pub fn json(r: &DoctorReport) -> serde_json::Value {
    serde_json::to_value(r).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Check;

    fn report(detail: &str) -> DoctorReport {
        DoctorReport {
            format_version: 1,
            plan: "p.yaml".into(),
            site: "access.example.com".into(),
            ready: false,
            blockers: 1,
            warnings: 0,
            checks: vec![Check {
                subject: "appliance a".into(),
                check: "tls",
                status: Status::Blocker,
                detail: detail.into(),
                fix: Some("renew it".into()),
            }],
        }
    }

    #[test]
    fn server_text_cannot_break_out_of_its_line_or_cell() {
        let r = report("expired\n| injected | row |\x1b[31m");
        let t = text(&r);
        assert!(!t.contains('\x1b'), "{t}");
        assert!(t.contains("fix: renew it"), "{t}");
        assert!(t.contains("NOT READY — 1 blocker"), "{t}");
        let m = markdown(&r);
        assert_eq!(
            m.lines().filter(|l| l.starts_with("| ⛔")).count(),
            1,
            "one row per check: {m}"
        );
        assert!(m.contains("\\| injected \\|"), "{m}");
    }
}
