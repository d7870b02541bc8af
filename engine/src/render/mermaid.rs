//! Mermaid renderers: the dependency flowchart and a Gantt chart of the estimated schedule
//! across the maintenance windows (GitHub renders both in pull-request comments).
//!
//! Must not: read anything but the view. Node ids are `s<index>` because step ids contain
//! dots, which Mermaid ids do not allow; every plan string is a quoted, single-line label or
//! a name without Mermaid syntax (`super::escape`), so none can add a line to the chart.

use std::fmt::Write as _;

use swing_schema::output::{PlanView, StepKind, human_duration};

use super::escape::{mermaid_label as label, mermaid_text as task_name};
use super::origin;

/// The dependency graph, one subgraph per phase.
pub fn flowchart(v: &PlanView) -> String {
    let mut o = String::new();
    let node = |id: &str| {
        v.steps
            .iter()
            .position(|s| s.id == id)
            .map(|i| format!("s{i}"))
    };
    o.push_str("flowchart TD\n");
    for (pi, ph) in v.phases.iter().enumerate() {
        let _ = writeln!(o, "  subgraph p{pi}[\"{}\"]", label(&ph.title));
        for id in &ph.steps {
            let (Some(n), Some(s)) = (node(id), v.steps.iter().find(|s| &s.id == id)) else {
                continue;
            };
            let text = format!(
                "{}<br/>{} · {}",
                label(&s.id),
                s.kind.as_str(),
                human_duration(s.estimate_s)
            );
            let shape = match s.kind {
                StepKind::Auto => format!("[\"{text}\"]"),
                StepKind::Operator => format!("{{{{\"{text}\"}}}}"),
                StepKind::Wait => format!("([\"{text}\"])"),
                StepKind::Gate => format!("{{\"{text}\"}}"),
            };
            let _ = writeln!(o, "    {n}{shape}");
        }
        o.push_str("  end\n");
    }
    for s in &v.steps {
        let Some(to) = node(&s.id) else { continue };
        for d in &s.depends_on {
            if let Some(from) = node(d) {
                let _ = writeln!(o, "  {from} --> {to}");
            }
        }
    }
    o.push_str("  classDef operator fill:#fff3cd,stroke:#b58900\n");
    o.push_str("  classDef gate fill:#d1ecf1,stroke:#0c5460\n");
    o.push_str("  classDef downtime stroke:#d00,stroke-width:3px\n");
    let class = |pred: &dyn Fn(&swing_schema::output::StepView) -> bool| -> Vec<String> {
        v.steps
            .iter()
            .enumerate()
            .filter(|(_, s)| pred(s))
            .map(|(i, _)| format!("s{i}"))
            .collect()
    };
    for (name, ids) in [
        ("operator", class(&|s| s.kind == StepKind::Operator)),
        ("gate", class(&|s| s.kind == StepKind::Gate)),
        ("downtime", class(&|s| s.downtime)),
    ] {
        if !ids.is_empty() {
            let _ = writeln!(o, "  class {} {name}", ids.join(","));
        }
    }
    o
}

/// The estimated schedule as a Gantt chart: windows first, then one section per phase.
pub fn gantt(v: &PlanView) -> String {
    let all: Vec<&swing_schema::output::WindowView> = v.windows.iter().collect();
    gantt_of(v, &all, None, |_| true)
}

/// The schedule as one Gantt chart per maintenance window, each holding that window's steps
/// (a step outside every window goes with the last window that started before it): windows a
/// week apart would otherwise squash every step into two slivers of one chart. One chart when
/// the plan has fewer than two windows. Every chart is a complete diagram of its own.
pub fn gantt_per_window(v: &PlanView) -> Vec<String> {
    if v.windows.len() < 2 {
        return vec![gantt(v)];
    }
    let home = |s: &swing_schema::output::StepView| -> usize {
        v.windows
            .iter()
            .position(|w| w.steps.contains(&s.id))
            .or_else(|| v.windows.iter().rposition(|w| w.start_s <= s.start_s))
            .unwrap_or(0)
    };
    v.windows
        .iter()
        .enumerate()
        .map(|(i, w)| {
            gantt_of(v, &[w], Some(&w.name), |id| {
                v.steps
                    .iter()
                    .find(|s| s.id == id)
                    .is_some_and(|s| home(s) == i)
            })
        })
        .collect()
}

/// An RFC 3339 time of swing's own view in `format` (empty when unreadable).
fn clock(rfc3339: &str, format: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

fn gantt_of(
    v: &PlanView,
    windows: &[&swing_schema::output::WindowView],
    window_title: Option<&str>,
    shown: impl Fn(&str) -> bool,
) -> String {
    let base = origin(v);
    let at = |off: u64| -> String {
        match base {
            Some(t) => (t + chrono::Duration::seconds(off.min(i64::MAX as u64) as i64))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            None => {
                // Relative schedule: day 1 at 00:00 stands for the start of the apply.
                let d = chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .unwrap_or_default();
                (d + chrono::Duration::seconds(off.min(i64::MAX as u64) as i64))
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            }
        }
    };
    let mut o = String::new();
    o.push_str("gantt\n");
    let when = match base {
        Some(t) => format!("from {}", t.format("%Y-%m-%d %H:%M %:z")),
        None => "relative: 00:00 = start of apply".to_owned(),
    };
    let _ = match (window_title, windows) {
        (Some(name), [w]) => writeln!(
            o,
            "  title {}: estimated schedule, window {} ({} to {})",
            task_name(&v.plan.name),
            task_name(name),
            clock(&w.start, "%a %d %b %H:%M %:z"),
            clock(&w.end, "%a %d %b %H:%M")
        ),
        _ => writeln!(
            o,
            "  title {}: estimated schedule ({when})",
            task_name(&v.plan.name)
        ),
    };
    o.push_str("  dateFormat YYYY-MM-DD HH:mm:ss\n");
    o.push_str(if base.is_some() {
        "  axisFormat %d %b %H:%M\n"
    } else {
        "  axisFormat %H:%M\n"
    });
    if !windows.is_empty() {
        o.push_str("  section Windows\n");
        for (i, w) in windows.iter().enumerate() {
            let _ = writeln!(
                o,
                "    window {} :{}w{i}, {}, {}s",
                task_name(&w.name),
                if w.fits { "active, " } else { "crit, " },
                at(w.start_s),
                w.duration_s.max(1)
            );
        }
    }
    for ph in &v.phases {
        if !ph.steps.iter().any(|id| shown(id)) {
            continue;
        }
        let _ = writeln!(o, "  section {}", task_name(&ph.title));
        for id in ph.steps.iter().filter(|id| shown(id)) {
            let Some((i, s)) = v.steps.iter().enumerate().find(|(_, s)| &s.id == id) else {
                continue;
            };
            let tag = if s.downtime { "crit, " } else { "" };
            let _ = writeln!(
                o,
                "    {} :{tag}s{i}, {}, {}s",
                task_name(&s.id),
                at(s.start_s),
                s.estimate_s.max(1)
            );
        }
    }
    o
}
