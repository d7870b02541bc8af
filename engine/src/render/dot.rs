//! DOT renderer: the step dependency graph for Graphviz, one cluster per phase. Shapes by kind
//! (box automatic, hexagon operator, ellipse wait, diamond gate); downtime steps red, steps
//! without failover protection dashed.
//!
//! Must not: read anything but the view.

use std::fmt::Write as _;

use swing_schema::output::{PlanView, StepKind, human_duration};

use super::escape::dot_string as q;

/// Renders the dependency graph.
pub fn render(v: &PlanView) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "digraph {} {{", q(&v.plan.name));
    let _ = writeln!(o, "  label={};", q(&v.summary.line));
    let _ = writeln!(
        o,
        "  labelloc=t;\n  rankdir=TB;\n  node [fontname=\"Helvetica\", fontsize=10];"
    );
    for (i, ph) in v.phases.iter().enumerate() {
        let _ = writeln!(o, "  subgraph cluster_{i} {{");
        let _ = writeln!(o, "    label={};", q(ph.title.as_str()));
        for id in &ph.steps {
            let Some(s) = v.steps.iter().find(|s| &s.id == id) else {
                continue;
            };
            let shape = match s.kind {
                StepKind::Auto => "box",
                StepKind::Operator => "hexagon",
                StepKind::Wait => "ellipse",
                StepKind::Gate => "diamond",
            };
            let mut style = vec!["filled"];
            if s.unprotected {
                style.push("dashed");
            }
            let color = if s.downtime { "red" } else { "black" };
            let fill = match s.kind {
                StepKind::Operator => "#fff3cd",
                StepKind::Gate => "#d1ecf1",
                _ => "#ffffff",
            };
            let _ = writeln!(
                o,
                "    {} [label={}, shape={shape}, style={}, color={color}, fillcolor={}];",
                q(&s.id),
                q(&format!(
                    "{}\n{} · {}",
                    s.id,
                    s.kind.as_str(),
                    human_duration(s.estimate_s)
                )),
                q(&style.join(",")),
                q(fill)
            );
        }
        let _ = writeln!(o, "  }}");
    }
    for s in &v.steps {
        for d in &s.depends_on {
            let _ = writeln!(o, "  {} -> {};", q(d), q(&s.id));
        }
    }
    o.push_str("}\n");
    o
}
