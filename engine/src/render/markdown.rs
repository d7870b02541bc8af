//! Markdown renderer for a pull-request comment: summary table, risk labels, findings, resource
//! changes, phase timeline with abort paths, Gantt chart, operator checklist with checkboxes and
//! the full step detail folded away. Never longer than [`MAX_CHARS`]: detail is cut, section by
//! section from the least important, and a note says so; the summary is never cut.
//!
//! Must not: read anything but the view.

use std::fmt::Write as _;

use swing_schema::output::{Condition, Level, PlanView, StepKind, human_duration};

use super::{change_line, mermaid, when};

/// GitHub's comment limit is 65,536 characters; stay below it with margin.
pub const MAX_CHARS: usize = 65_000;

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn head(v: &PlanView) -> String {
    let mut o = String::new();
    let i = &v.plan;
    let _ = writeln!(o, "## swing plan `{}` — {}\n", i.name, i.site);
    let _ = writeln!(o, "**{}**\n", v.summary.line);
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
                    let _ = writeln!(o, "- {}", cell(d));
                }
                o.push('\n');
            }
        }
        let _ = writeln!(o, "<details><summary>Refreshed state</summary>\n");
        for line in &r.observed {
            let _ = writeln!(o, "- {}", cell(line));
        }
        if !r.done.is_empty() {
            let _ = writeln!(
                o,
                "\nAlready done ({} steps, observed): {}",
                r.done.len(),
                r.done
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        o.push_str("\n</details>\n\n");
    }
    o.push_str("| | |\n|---|---|\n");
    let _ = writeln!(o, "| Scenario | {} |", i.scenario.label());
    let _ = writeln!(
        o,
        "| Target | {} ({}){} |",
        i.target_version,
        i.source,
        if i.packages.is_empty() {
            String::new()
        } else {
            format!(": {}", cell(&i.packages.join(", ")))
        }
    );
    if let Some(sw) = &i.switch {
        let ttl = sw
            .ttl_s
            .map(|t| format!(", TTL {t}s during the change"))
            .unwrap_or_default();
        let _ = writeln!(o, "| Switch | {} `{}`{ttl} |", sw.method, cell(&sw.subject));
    }
    for a in &v.appliances {
        let _ = writeln!(
            o,
            "| Appliance `{}` ({}) | {} → {} · {} → {} |",
            a.name,
            cell(&a.address),
            super::or_unknown(a.version_before.as_deref()),
            a.version_after.as_deref().unwrap_or("—"),
            a.role_before,
            a.role_after
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
            "| Window `{}` | {} → {} · {state} |",
            cell(&w.name),
            w.start,
            w.end
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
            let _ = writeln!(o, "- {icon} {} (`{}`)", f.message, f.code);
        }
        o.push('\n');
    }
    o.push_str("### Resource changes\n\n```diff\n");
    for c in &v.changes {
        let m = match c.action {
            swing_schema::output::ChangeAction::Update => '~',
            swing_schema::output::ChangeAction::Delete => '-',
        };
        let _ = writeln!(o, "{m} {}", change_line(c));
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
            ph.title,
            when(v, ph.start_s),
            human_duration(ph.end_s.saturating_sub(ph.start_s)),
            if ph.windows.is_empty() {
                "—".to_owned()
            } else {
                ph.windows.join(", ")
            },
            ph.steps
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" "),
            cell(&ph.abort)
        );
    }
    o.push('\n');
    o
}

fn gantt(v: &PlanView) -> String {
    format!("### Schedule\n\n```mermaid\n{}```\n\n", mermaid::gantt(v))
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
            "- [ ] **`{}`** ({verb}, ~{}, {}) — {}",
            s.id,
            human_duration(s.estimate_s),
            when(v, s.start_s),
            s.title
        );
        for (i, line) in s.instructions.iter().enumerate() {
            let _ = writeln!(o, "    {}. {}", i + 1, line);
        }
        if s.postcondition != Condition::Confirmed {
            let _ = writeln!(o, "    - swing checks: {}", s.postcondition.describe());
        }
        if let Some(f) = &s.on_failure {
            let _ = writeln!(o, "    - **on failure:** {f}");
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
                "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                s.id,
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
                s.window.as_deref().unwrap_or("—"),
                s.depends_on
                    .iter()
                    .map(|d| format!("`{d}`"))
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

/// Renders one plan in at most `max` characters (the head is always kept whole).
pub fn render(v: &PlanView, max: usize) -> String {
    let mut out = head(v);
    if v.refresh.as_ref().is_some_and(|r| !r.has_changes) {
        return out;
    }
    let mut cut = Vec::new();
    let detail_head = format!(
        "<details><summary>All {} steps</summary>\n\n| Step | Kind | Phase | Start | Takes | Downtime | No failover | Window | After |\n|---|---|---|---|---|---|---|---|---|\n",
        v.steps.len()
    );
    let note_room = 200;
    for (name, section) in [
        ("timeline", timeline(v)),
        ("schedule", gantt(v)),
        ("operator checklist", checklist(v)),
    ] {
        if out.chars().count() + section.chars().count() + note_room <= max {
            out.push_str(&section);
        } else {
            cut.push(name);
        }
    }
    // Full detail: as many rows as fit.
    let rows = detail_rows(v);
    let tail = "\n</details>\n\n";
    let mut detail = detail_head;
    let mut shown = 0;
    for r in &rows {
        if out.chars().count() + detail.chars().count() + r.chars().count() + tail.len() + note_room
            > max
        {
            break;
        }
        detail.push_str(r);
        shown += 1;
    }
    if shown > 0 {
        out.push_str(&detail);
        out.push_str(tail);
    }
    if shown < rows.len() {
        cut.push("step detail");
    }
    let g = graph(v);
    if out.chars().count() + g.chars().count() + note_room <= max {
        out.push_str(&g);
    } else {
        cut.push("dependency graph");
    }
    if !cut.is_empty() {
        let _ = writeln!(
            out,
            "_Cut to stay under {max} characters: {}. Run `swing plan --format text` for everything._",
            cut.join(", ")
        );
    }
    out
}

/// Several plans: a fleet table first (always), then each plan as far as the budget allows.
pub fn render_set(views: &[PlanView]) -> String {
    let mut out = format!(
        "## swing plan: {} sites\n\n| Plan | Site | Scenario | Summary |\n|---|---|---|---|\n",
        views.len()
    );
    let mut rows_cut = 0;
    for v in views {
        let row = format!(
            "| `{}` | {} | {} | {} |\n",
            v.plan.name,
            v.plan.site,
            v.plan.scenario.label(),
            cell(&v.summary.line)
        );
        if out.chars().count() + row.chars().count() + 300 > MAX_CHARS {
            rows_cut += 1;
            continue;
        }
        out.push_str(&row);
    }
    out.push('\n');
    let mut plans_cut = 0;
    for v in views {
        let budget = MAX_CHARS.saturating_sub(out.chars().count() + 300);
        let one = render(v, budget.min(MAX_CHARS));
        if one.chars().count() <= budget {
            out.push_str(&one);
        } else {
            plans_cut += 1;
        }
    }
    if rows_cut + plans_cut > 0 {
        let _ = writeln!(
            out,
            "_Cut to stay under {MAX_CHARS} characters: {rows_cut} table rows, {plans_cut} plans. Render them one by one._"
        );
    }
    out
}
