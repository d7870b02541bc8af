//! Text renderer: a Terraform-like plan for the terminal. `~` resource change, `+` automatic
//! step or wait, `!` operator step, `?` gate; operator instructions numbered beneath their
//! step; each phase with its abort path; findings; the summary line last.
//!
//! Every string of the view is stripped of control characters and escape sequences first
//! (`super::escape::terminal_view`), so only swing's own colours reach the terminal.
//!
//! Must not: decide whether colour is used (the caller passes it) or print anything the view
//! does not hold.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use swing_schema::output::{ChangeAction, Condition, Level, PlanView, StepKind, human_duration};

use super::{change_line, when};

struct Paint {
    on: bool,
}

impl Paint {
    fn paint(&self, style: Style, s: &str) -> String {
        if self.on {
            format!("{style}{s}{style:#}")
        } else {
            s.to_owned()
        }
    }
    fn bold(&self, s: &str) -> String {
        self.paint(Style::new().bold(), s)
    }
    fn fg(&self, c: AnsiColor, s: &str) -> String {
        self.paint(Style::new().fg_color(Some(c.into())), s)
    }
    fn dim(&self, s: &str) -> String {
        self.paint(Style::new().dimmed(), s)
    }
}

fn marker(kind: StepKind) -> (char, AnsiColor) {
    match kind {
        StepKind::Auto | StepKind::Wait => ('+', AnsiColor::Green),
        StepKind::Operator => ('!', AnsiColor::Magenta),
        StepKind::Gate => ('?', AnsiColor::Cyan),
    }
}

/// Renders one plan; `color` adds ANSI styles.
pub fn render(v: &PlanView, color: bool) -> String {
    let safe = super::escape::terminal_view(v);
    let v = &safe;
    let p = Paint { on: color };
    let mut o = String::new();
    let info = &v.plan;
    let _ = writeln!(
        o,
        "{} {} · site {} · {} · target {} ({}{})",
        p.bold("swing plan"),
        p.bold(&info.name),
        info.site,
        info.scenario.label(),
        info.target_version,
        info.source,
        if info.packages.is_empty() {
            String::new()
        } else {
            format!(": {}", info.packages.join(", "))
        }
    );
    if let Some(f) = &info.file {
        let _ = writeln!(o, "{}", p.dim(&format!("file: {f}")));
    }
    if info.offline {
        let _ = writeln!(
            o,
            "{}",
            p.dim("offline: no live state read; unknown values are (known after refresh)")
        );
    }
    o.push('\n');

    if let Some(r) = &v.refresh {
        let _ = writeln!(o, "{}", p.bold("Refreshed state:"));
        for line in &r.observed {
            let _ = writeln!(o, "  {line}");
        }
        o.push('\n');
        for (title, list) in [
            ("Cannot observe (apply is blocked):", &r.unobserved),
            (
                "Drift the plan does not cover (apply is blocked):",
                &r.drift,
            ),
        ] {
            if !list.is_empty() {
                let _ = writeln!(o, "{}", p.fg(AnsiColor::Red, title));
                for d in list {
                    let _ = writeln!(o, "  {} {d}", p.fg(AnsiColor::Red, "!"));
                }
                o.push('\n');
            }
        }
        if !r.has_changes {
            let _ = writeln!(o, "{}", p.bold(&v.summary.line));
            return o;
        }
        if !r.done.is_empty() {
            let _ = writeln!(
                o,
                "{}\n  {}\n",
                p.bold(&format!(
                    "Already done ({} steps, observed; not planned again):",
                    r.done.len()
                )),
                p.dim(&r.done.join(", "))
            );
        }
    }

    let _ = writeln!(o, "{}", p.bold("Resource changes:"));
    for c in &v.changes {
        let (m, col) = match c.action {
            ChangeAction::Update => ('~', AnsiColor::Yellow),
            ChangeAction::Delete => ('-', AnsiColor::Red),
        };
        let _ = writeln!(o, "  {} {}", p.fg(col, &m.to_string()), change_line(c));
    }
    o.push('\n');

    if !v.windows.is_empty() {
        let _ = writeln!(o, "{}", p.bold("Maintenance windows:"));
        for w in &v.windows {
            let fit = if w.steps.is_empty() {
                "unused".to_owned()
            } else if w.fits {
                format!(
                    "uses {} of {}",
                    human_duration(w.used_s),
                    human_duration(w.duration_s)
                )
            } else {
                p.fg(
                    AnsiColor::Red,
                    &format!(
                        "DOES NOT FIT: needs {} of {}",
                        human_duration(w.used_s),
                        human_duration(w.duration_s)
                    ),
                )
            };
            let _ = writeln!(
                o,
                "  {} {} → {} · {} steps · {fit}",
                w.name,
                w.start,
                w.end,
                w.steps.len()
            );
        }
        o.push('\n');
    }

    let _ = writeln!(
        o,
        "{} {}",
        p.bold("Steps"),
        p.dim("(+ automatic, ! you act, ? you approve; start · estimate)")
    );
    let width = v.steps.iter().map(|s| s.id.len()).max().unwrap_or(10);
    for ph in &v.phases {
        o.push('\n');
        let win = if ph.windows.is_empty() {
            String::new()
        } else {
            format!(" · window {}", ph.windows.join(", "))
        };
        let _ = writeln!(
            o,
            "  {}{}",
            p.bold(&format!("── {} ", ph.title)),
            p.dim(&format!("{}{win}", when(v, ph.start_s)))
        );
        for id in &ph.steps {
            let Some(s) = v.steps.iter().find(|s| &s.id == id) else {
                continue;
            };
            let (m, col) = marker(s.kind);
            let mut flags = Vec::new();
            if s.downtime {
                flags.push(p.fg(
                    AnsiColor::Red,
                    &format!("DOWNTIME ~{}", human_duration(s.downtime_s)),
                ));
            }
            if s.unprotected {
                flags.push(p.fg(AnsiColor::Yellow, "no failover"));
            }
            let flags = if flags.is_empty() {
                String::new()
            } else {
                format!("  [{}]", flags.join(", "))
            };
            let _ = writeln!(
                o,
                "  {} {:<width$}  {:>16}  {:>6}  {}{}",
                p.fg(col, &m.to_string()),
                s.id,
                when(v, s.start_s),
                human_duration(s.estimate_s),
                s.title,
                flags,
            );
            let pad = " ".repeat(6);
            for (i, line) in s.instructions.iter().enumerate() {
                let _ = writeln!(o, "{pad}{}. {line}", i + 1);
            }
            if matches!(s.kind, StepKind::Operator | StepKind::Gate | StepKind::Wait)
                && s.postcondition != Condition::Confirmed
            {
                let _ = writeln!(
                    o,
                    "{pad}{}",
                    p.dim(&format!("swing checks: {}", s.postcondition.describe()))
                );
            }
            if let Some(f) = &s.on_failure
                && matches!(s.kind, StepKind::Operator | StepKind::Gate)
            {
                let _ = writeln!(
                    o,
                    "{pad}{}",
                    p.fg(AnsiColor::Red, &format!("on failure: {f}"))
                );
            }
        }
        let _ = writeln!(
            o,
            "    {}",
            p.dim(&format!("if you stop here: {}", ph.abort))
        );
    }
    o.push('\n');

    for f in &v.findings {
        let (label, col) = match f.level {
            Level::Error => ("Error", AnsiColor::Red),
            Level::Warning => ("Warning", AnsiColor::Yellow),
            Level::Info => ("Note", AnsiColor::Blue),
        };
        let _ = writeln!(
            o,
            "{}: {} {}",
            p.fg(col, label),
            f.message,
            p.dim(&format!("[{}]", f.code))
        );
    }
    if !v.findings.is_empty() {
        o.push('\n');
    }
    let _ = writeln!(o, "{}", p.bold(&v.summary.line));
    o
}
