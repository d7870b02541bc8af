//! Markdown renderer for a pull-request comment: summary table, risk labels, findings, resource
//! changes, phase timeline with abort paths, Gantt chart, operator checklist with checkboxes and
//! the full step detail folded away. The first line is a hidden marker (`<!-- swing:plan
//! site=… name=… digest=… -->`) a CI step finds its comment by. Never longer than the limit it
//! is given ([`MAX_CHARS`] by default): detail is cut, section by section from the least
//! important, and a note says what was cut; the summary ([`summary`]) is never cut.
//!
//! Every plan string goes through [`super::escape`]: it renders as text, never as Markdown or
//! HTML. Must not: read anything but the view.

use std::fmt::Write as _;

use swing_schema::output::{Condition, Level, PlanView, StepKind, human_duration};

use super::escape::{html_comment_value, md_code, md_fenced_line, md_inline};
use super::{change_line, mermaid, when};

/// GitHub's comment limit is 65,536 characters; stay below it with margin.
pub const MAX_CHARS: usize = 65_000;

/// The hidden first line: which plan this comment is about, and a digest of its view, so a CI
/// step can find "the swing comment" of a site and update it instead of adding one per push.
pub fn marker(v: &PlanView) -> String {
    format!(
        "<!-- swing:plan site={} name={} digest={} -->\n",
        html_comment_value(&v.plan.site),
        html_comment_value(&v.plan.name),
        view_digest(std::slice::from_ref(v))
    )
}

/// SHA-256 (hex, first 16 characters) of the JSON plan views: changes when the plan does.
fn view_digest(views: &[PlanView]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for v in views {
        h.update(super::json::render(v).as_bytes());
    }
    hex::encode(h.finalize())[..16].to_owned()
}

/// The part of the comment that is never cut: marker, heading, summary line, risks, what
/// blocks an apply, the overview table and the findings.
pub fn summary(v: &PlanView) -> String {
    let mut o = marker(v);
    let i = &v.plan;
    let _ = writeln!(
        o,
        "## swing plan {} — {}\n",
        md_code(&i.name),
        md_inline(&i.site)
    );
    let _ = writeln!(o, "**{}**\n", md_inline(&v.summary.line));
    let mut risks = Vec::new();
    if v.summary.errors > 0 {
        risks.push(format!("🛑 {} error(s)", v.summary.errors));
    }
    if v.summary.downtime_s > 0 {
        risks.push(format!(
            "⏱ downtime ~{}",
            human_duration(v.summary.downtime_s)
        ));
    }
    if v.summary.unprotected_s > 0 {
        risks.push(format!(
            "🛡 no failover for {}",
            human_duration(v.summary.unprotected_s)
        ));
    }
    if v.summary.operator > 0 {
        risks.push(format!("🧑‍🔧 {} operator steps", v.summary.operator));
    }
    if v.steps.iter().any(|s| s.action == "decommission") {
        risks.push("⚠️ irreversible: factory reset of the old appliance".to_owned());
    }
    if i.offline {
        risks.push("📴 offline plan".to_owned());
    }
    if !risks.is_empty() {
        let _ = writeln!(
            o,
            "Risk: {}\n",
            risks
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    if let Some(r) = &v.refresh {
        for (title, list) in [
            ("🛑 Cannot observe (apply is blocked)", &r.unobserved),
            (
                "🛑 Drift the plan does not cover (apply is blocked)",
                &r.drift,
            ),
        ] {
            if !list.is_empty() {
                let _ = writeln!(o, "**{title}**\n");
                for d in list {
                    let _ = writeln!(o, "- {}", md_inline(d));
                }
                o.push('\n');
            }
        }
    }
    o.push_str("| | |\n|---|---|\n");
    let _ = writeln!(o, "| Scenario | {} |", i.scenario.label());
    let _ = writeln!(
        o,
        "| Target | {} ({}){} |",
        md_inline(&i.target_version),
        md_inline(&i.source),
        if i.packages.is_empty() {
            String::new()
        } else {
            format!(": {}", md_inline(&i.packages.join(", ")))
        }
    );
    if let Some(sw) = &i.switch {
        let ttl = sw
            .ttl_s
            .map(|t| format!(", TTL {t}s during the change"))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "| Switch | {} {}{ttl} |",
            md_inline(&sw.method),
            md_code(&sw.subject)
        );
    }
    for a in &v.appliances {
        let _ = writeln!(
            o,
            "| Appliance {} ({}) | {} → {} · {} → {} |",
            md_code(&a.name),
            md_inline(&a.address),
            md_inline(super::or_unknown(a.version_before.as_deref())),
            md_inline(a.version_after.as_deref().unwrap_or("—")),
            md_inline(&a.role_before),
            md_inline(&a.role_after)
        );
    }
    let _ = writeln!(
        o,
        "| Estimated work | {} |",
        human_duration(v.summary.estimate_s)
    );
    if v.summary.elapsed_s != v.summary.estimate_s {
        let _ = writeln!(
            o,
            "| Elapsed (with window gaps) | {} |",
            human_duration(v.summary.elapsed_s)
        );
    }
    let _ = writeln!(
        o,
        "| Downtime | ~{} |",
        human_duration(v.summary.downtime_s)
    );
    if v.summary.unprotected_s > 0 {
        let _ = writeln!(
            o,
            "| Without failover | {} (max {}) |",
            human_duration(v.summary.unprotected_s),
            human_duration(v.summary.max_unprotected_s)
        );
    }
    for w in &v.windows {
        let state = if w.steps.is_empty() {
            "unused".to_owned()
        } else if w.fits {
            format!(
                "✅ uses {} of {}",
                human_duration(w.used_s),
                human_duration(w.duration_s)
            )
        } else {
            format!(
                "❌ needs {} of {}",
                human_duration(w.used_s),
                human_duration(w.duration_s)
            )
        };
        let _ = writeln!(
            o,
            "| Window {} | {} → {} · {state} |",
            md_code(&w.name),
            md_inline(&w.start),
            md_inline(&w.end)
        );
    }
    o.push('\n');
    if !v.findings.is_empty() {
        for f in &v.findings {
            let icon = match f.level {
                Level::Error => "❌",
                Level::Warning => "⚠️",
                Level::Info => "ℹ️",
            };
            let _ = writeln!(
                o,
                "- {icon} {} ({})",
                md_inline(&f.message),
                md_code(&f.code)
            );
        }
        o.push('\n');
    }
    o
}

/// The refreshed state and the resource changes: detail, cut like the sections after it.
fn state_and_changes(v: &PlanView) -> String {
    let mut o = String::new();
    if let Some(r) = &v.refresh {
        let _ = writeln!(o, "<details><summary>Refreshed state</summary>\n");
        for line in &r.observed {
            let _ = writeln!(o, "- {}", md_inline(line));
        }
        if !r.done.is_empty() {
            let _ = writeln!(
                o,
                "\nAlready done ({} steps, observed): {}",
                r.done.len(),
                r.done
                    .iter()
                    .map(|d| md_code(d))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        o.push_str("\n</details>\n\n");
    }
    o.push_str("### Resource changes\n\n```diff\n");
    for c in &v.changes {
        let m = match c.action {
            swing_schema::output::ChangeAction::Update => '~',
            swing_schema::output::ChangeAction::Delete => '-',
        };
        let _ = writeln!(o, "{m} {}", md_fenced_line(&change_line(c)));
    }
    o.push_str("```\n\n");
    o
}

fn timeline(v: &PlanView) -> String {
    let mut o = String::from(
        "### Timeline\n\n| Phase | Start | Takes | Window | Steps | If you stop here |\n|---|---|---|---|---|---|\n",
    );
    for ph in &v.phases {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            md_inline(&ph.title),
            when(v, ph.start_s),
            human_duration(ph.end_s.saturating_sub(ph.start_s)),
            if ph.windows.is_empty() {
                "—".to_owned()
            } else {
                md_inline(&ph.windows.join(", "))
            },
            ph.steps
                .iter()
                .map(|s| md_code(s))
                .collect::<Vec<_>>()
                .join(" "),
            md_inline(&ph.abort)
        );
    }
    o.push('\n');
    o
}

fn gantt(v: &PlanView) -> String {
    let mut o = String::from("### Schedule\n\n");
    for chart in mermaid::gantt_per_window(v) {
        o.push_str("```mermaid\n");
        o.push_str(&chart);
        o.push_str("```\n\n");
    }
    o
}

fn checklist(v: &PlanView) -> String {
    let mut o = String::from("### Operator checklist\n\n");
    for s in v
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Operator | StepKind::Gate))
    {
        let verb = if s.kind == StepKind::Gate {
            "approve"
        } else {
            "do"
        };
        let _ = writeln!(
            o,
            "- [ ] **{}** ({verb}, ~{}, {}) — {}",
            md_code(&s.id),
            human_duration(s.estimate_s),
            when(v, s.start_s),
            md_inline(&s.title)
        );
        for (i, line) in s.instructions.iter().enumerate() {
            let _ = writeln!(o, "    {}. {}", i + 1, md_inline(line));
        }
        if s.postcondition != Condition::Confirmed {
            let _ = writeln!(
                o,
                "    - swing checks: {}",
                md_inline(&s.postcondition.describe())
            );
        }
        if let Some(f) = &s.on_failure {
            let _ = writeln!(o, "    - **on failure:** {}", md_inline(f));
        }
    }
    o.push('\n');
    o
}

fn detail_rows(v: &PlanView) -> Vec<String> {
    v.steps
        .iter()
        .map(|s| {
            format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                md_code(&s.id),
                s.kind.as_str(),
                s.phase.as_str(),
                when(v, s.start_s),
                human_duration(s.estimate_s),
                if s.downtime {
                    format!("~{}", human_duration(s.downtime_s))
                } else {
                    "—".to_owned()
                },
                if s.unprotected { "yes" } else { "—" },
                md_inline(s.window.as_deref().unwrap_or("—")),
                s.depends_on
                    .iter()
                    .map(|d| md_code(d))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })
        .collect()
}

fn graph(v: &PlanView) -> String {
    format!(
        "<details><summary>Dependency graph</summary>\n\n```mermaid\n{}```\n\n</details>\n\n",
        mermaid::flowchart(v)
    )
}

/// Renders one plan in at most `max` characters: the [`summary`] always whole (it alone may
/// be longer than a very small `max`), then as much detail as fits, and a note naming what was
/// cut.
pub fn render(v: &PlanView, max: usize) -> String {
    let mut out = summary(v);
    if v.refresh.as_ref().is_some_and(|r| !r.has_changes) {
        return out;
    }
    let mut cut = Vec::new();
    let note_room = 200;
    let mut len = out.chars().count();
    let add = |out: &mut String,
               len: &mut usize,
               cut: &mut Vec<&'static str>,
               name: &'static str,
               section: String| {
        let n = section.chars().count();
        if *len + n + note_room <= max {
            out.push_str(&section);
            *len += n;
        } else {
            cut.push(name);
        }
    };
    add(
        &mut out,
        &mut len,
        &mut cut,
        "resource changes",
        state_and_changes(v),
    );
    add(&mut out, &mut len, &mut cut, "timeline", timeline(v));
    add(&mut out, &mut len, &mut cut, "schedule", gantt(v));
    add(
        &mut out,
        &mut len,
        &mut cut,
        "operator checklist",
        checklist(v),
    );
    // Full detail: as many rows as fit.
    let rows = detail_rows(v);
    let tail = "\n</details>\n\n";
    let mut detail = format!(
        "<details><summary>All {} steps</summary>\n\n| Step | Kind | Phase | Start | Takes | Downtime | No failover | Window | After |\n|---|---|---|---|---|---|---|---|---|\n",
        v.steps.len()
    );
    let mut detail_len = detail.chars().count();
    let mut shown = 0;
    for r in &rows {
        let n = r.chars().count();
        if len + detail_len + n + tail.len() + note_room > max {
            break;
        }
        detail.push_str(r);
        detail_len += n;
        shown += 1;
    }
    if shown > 0 {
        detail.push_str(tail);
        add(&mut out, &mut len, &mut cut, "step detail", detail);
    }
    if shown < rows.len() {
        cut.push("step detail");
    }
    add(&mut out, &mut len, &mut cut, "dependency graph", graph(v));
    if !cut.is_empty() {
        let _ = writeln!(
            out,
            "_Cut to stay under {max} characters: {}. Run `swing plan --format text` for everything._",
            cut.join(", ")
        );
    }
    out
}
