//! A fleet's status table (`swing fleet status`, the end of `swing fleet apply`) as text (a
//! terminal), Markdown (a ticket or pull-request comment) and JSON (the [`FleetView`]
//! itself): site, wave, state, phase, what it waits for, downtime, time without failover.
//!
//! Owns the wording and layout of the table; every string from a plan, a journal or a lock
//! passes through [`super::escape`]. Must not: judge the fleet or do IO.

use std::fmt::Write as _;

use swing_schema::fleet::{FleetPlanSite, FleetPlanView, FleetSite, FleetView};
use swing_schema::output::human_duration;

use super::escape::{md_code, md_inline, terminal_line};
use super::status::phase_name;

fn downtime(s: &FleetSite) -> String {
    s.downtime_s
        .map_or_else(|| "—".to_owned(), |d| format!("{d:.1} s"))
}

fn unprotected(s: &FleetSite) -> String {
    if s.unprotected_s == 0 {
        "—".to_owned()
    } else {
        human_duration(s.unprotected_s)
    }
}

/// What the last column says: what the site waits for, else its problem.
fn why(s: &FleetSite) -> Option<&str> {
    s.waiting_for.as_deref().or(s.problem.as_deref())
}

/// Terminal text: one aligned row per site, then the fleet's verdict.
pub fn text(v: &FleetView) -> String {
    let header = [
        "SITE",
        "WAVE",
        "STATE",
        "PHASE",
        "STEPS",
        "DOWNTIME",
        "UNPROTECTED",
        "WAITING FOR",
    ];
    let rows: Vec<[String; 8]> = v
        .sites
        .iter()
        .map(|s| {
            [
                terminal_line(&s.site),
                s.wave.to_string(),
                s.state.clone(),
                phase_name(s.phase),
                format!("{}/{}", s.steps_done, s.steps_total),
                downtime(s),
                unprotected(s),
                why(s).map(terminal_line).unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut o = String::new();
    let line = |o: &mut String, cells: &[String]| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        let _ = writeln!(o, "{}", l.trim_end());
    };
    line(&mut o, &header.map(str::to_owned));
    for r in &rows {
        line(&mut o, r);
    }
    let _ = writeln!(o, "\n{}", terminal_line(&v.summary));
    o
}

/// Markdown: a heading, the verdict and one table row per site.
pub fn markdown(v: &FleetView) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "### swing fleet: {}\n", v.outcome);
    let _ = writeln!(o, "{}\n", md_inline(&v.summary));
    let _ = writeln!(
        o,
        "| Site | Wave | State | Phase | Steps | Downtime | Unprotected | Waiting for |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for s in &v.sites {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {}/{} | {} | {} | {} |",
            md_code(&s.site),
            s.wave,
            s.state,
            phase_name(s.phase),
            s.steps_done,
            s.steps_total,
            downtime(s),
            unprotected(s),
            why(s).map(md_inline).unwrap_or_default()
        );
    }
    o
}

/// The view as pretty JSON.
pub fn json(v: &FleetView) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// What keeps a planned site from being applied as it is, if anything.
fn blocked(s: &FleetPlanSite) -> String {
    let mut b = Vec::new();
    if s.errors > 0 {
        b.push(format!("{} error finding(s)", s.errors));
    }
    if !s.drift.is_empty() {
        b.push(format!("drift: {}", s.drift.join("; ")));
    }
    if !s.unobserved.is_empty() {
        b.push(format!("not observed: {}", s.unobserved.join("; ")));
    }
    b.join("; ")
}

/// A fleet's plan as terminal text: one row per site, by wave.
pub fn plan_text(v: &FleetPlanView) -> String {
    let mut o = String::new();
    for w in &v.waves {
        let gate = w.gate.as_ref().map_or_else(
            || " (the canary)".to_owned(),
            |g| format!(" (gate: --confirm {g})"),
        );
        let _ = writeln!(o, "Wave {}: {} site(s){gate}", w.number, w.sites);
        for s in v.sites.iter().filter(|s| s.wave == w.number) {
            let b = blocked(s);
            let _ = writeln!(
                o,
                "  {}  {}/{} steps · ~{} · downtime ~{} · unprotected ~{}{}{}",
                terminal_line(&s.site),
                s.steps_needed,
                s.steps_total,
                human_duration(s.estimate_s),
                human_duration(s.downtime_s),
                human_duration(s.unprotected_s),
                if b.is_empty() {
                    String::new()
                } else {
                    format!(" · BLOCKED: {}", terminal_line(&b))
                },
                s.saved
                    .as_ref()
                    .map(|p| format!(" · saved {}", terminal_line(p)))
                    .unwrap_or_default()
            );
        }
    }
    o
}

/// A fleet's plan as Markdown: one table row per site.
pub fn plan_markdown(v: &FleetPlanView) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "### swing fleet plan: {} site(s) in {} wave(s)\n",
        v.sites.len(),
        v.waves.len()
    );
    let _ = writeln!(
        o,
        "| Wave | Site | Steps | Estimate | Downtime | Unprotected | Blocked by |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for s in &v.sites {
        let _ = writeln!(
            o,
            "| {} | {} | {}/{} | {} | {} | {} | {} |",
            s.wave,
            md_code(&s.site),
            s.steps_needed,
            s.steps_total,
            human_duration(s.estimate_s),
            human_duration(s.downtime_s),
            human_duration(s.unprotected_s),
            md_inline(&blocked(s))
        );
    }
    o
}

/// A fleet's plan as pretty JSON.
pub fn plan_json(v: &FleetPlanView) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(site: &str, why: &str) -> FleetView {
        FleetView {
            format_version: 1,
            outcome: "waiting".into(),
            summary: "Waiting.".into(),
            failures: 0,
            max_failures: Some(0),
            waves: vec![],
            sites: vec![FleetSite {
                site: site.into(),
                change: "c".into(),
                plan: "p.yaml".into(),
                wave: 2,
                state: "paused".into(),
                phase: None,
                steps_done: 3,
                steps_total: 9,
                waiting_for: Some(why.into()),
                downtime_s: Some(1.25),
                unprotected_s: 90,
                lock: None,
                problem: None,
            }],
        }
    }

    #[test]
    fn plan_strings_cannot_break_the_table_or_the_terminal() {
        let v = view("evil|site\u{1b}[2J", "a | b\nnext");
        let md = markdown(&v);
        let row = md.lines().last().unwrap();
        // Eight cells, so nine unescaped pipes: the site's and the reason's are escaped.
        let unescaped = row
            .char_indices()
            .filter(|(i, c)| *c == '|' && !row[..*i].ends_with('\\'))
            .count();
        assert_eq!(unescaped, 9, "{row}");
        assert!(!md.contains('\u{1b}'));
        let t = text(&v);
        assert!(!t.contains('\u{1b}'), "{t}");
        assert!(t.contains("1.2 s") || t.contains("1.3 s"), "{t}");
        assert!(t.contains("3/9"), "{t}");
        let back: FleetView = serde_json::from_str(&json(&v)).unwrap();
        assert_eq!(back, v);
    }
}
