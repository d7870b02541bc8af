//! The rehearsal report of `swing rehearse` (and `swing demo`): text, Markdown or JSON, in
//! real units — what the twin copied, the outcome and any halt with its cause, the step's
//! advice and the phase's abort path, the client's measured downtime, the time without
//! failover, each window's fit, the steps and the state left behind.
//!
//! Owns: the wording and layout of the report. Must not: decide anything about the run, or
//! print plan text unescaped (every plan string goes through `render::escape` per medium).

use std::fmt::Write as _;

use swing_engine::render::escape;
use swing_schema::output::human_duration;
use swing_testkit::rehearse::Rehearsal;
use swing_testkit::twin::TwinSwitch;

use crate::exit::Exit;

/// Report formats of `swing rehearse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

/// Prints the report; exit 0 when the change completed on the twin, 1 when it halted.
pub fn show(r: &Rehearsal, format: Format) -> Exit {
    match format {
        Format::Json => match serde_json::to_string_pretty(r) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("swing rehearse: the report as JSON: {e}"),
        },
        Format::Text => print!(
            "{}",
            text(r, &|s| escape::terminal(s), &|s| escape::terminal(s))
        ),
        Format::Markdown => print!("{}", markdown(r)),
    }
    if r.outcome == "done" {
        Exit::Ok
    } else {
        Exit::Error
    }
}

/// The report as Markdown for a ticket: the same lines, plan text escaped for Markdown,
/// section titles as headings and entries as list items.
pub fn markdown(r: &Rehearsal) -> String {
    let body = text(r, &escape::md_inline, &escape::md_code);
    let mut o = String::from("## Rehearsal\n\n");
    for line in body.lines() {
        if let Some(item) = line.strip_prefix("  - ") {
            o.push_str("- ");
            o.push_str(item);
        } else if let Some(item) = line.strip_prefix("  ") {
            o.push_str("- ");
            o.push_str(item);
        } else if let Some(title) = line.strip_suffix(':').filter(|l| !l.is_empty()) {
            o.push_str("### ");
            o.push_str(title);
            o.push('\n');
        } else {
            o.push_str(line);
        }
        o.push('\n');
    }
    o
}

fn dur(s: f64) -> String {
    human_duration(s.round().max(0.0) as u64)
}

/// The report for people. `t` escapes prose, `c` identifiers (Markdown: code spans).
pub fn text(r: &Rehearsal, t: &dyn Fn(&str) -> String, c: &dyn Fn(&str) -> String) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Rehearsal of {} (site {}) on its twin: facts {}, time scale {:.6} (1 s of the twin is {} of the plan)",
        c(&r.plan),
        t(&r.site),
        match r.twin.source {
            swing_testkit::twin::FactSource::Observed => "observed read-only",
            swing_testkit::twin::FactSource::Offline => "from the plan (--offline)",
        },
        r.time_scale,
        dur(1.0 / r.time_scale)
    );
    let _ = writeln!(o, "\nTwin:");
    for a in &r.twin.appliances {
        let j = &a.jump_clients;
        let _ = writeln!(
            o,
            "  - {} {} {}{}; shared IP {}; Jump Clients {} active, {} offline, {} passive, {} uninstalled, {} lost; certificate {} days; catalogue {}",
            c(&a.name),
            t(&a.version),
            a.role,
            a.peer
                .as_ref()
                .map(|p| format!(" (peer {})", c(p)))
                .unwrap_or_default(),
            if a.holds_shared_ip {
                "held"
            } else {
                "not held"
            },
            j.active,
            j.active_offline,
            j.passive,
            j.uninstalled,
            j.lost,
            a.certificate_valid_days,
            if a.catalogue.is_empty() {
                "none (already on target)".to_string()
            } else {
                t(&a.catalogue.join(", "))
            }
        );
    }
    match &r.twin.switch {
        Some(TwinSwitch::Dns {
            record,
            points_at,
            address,
            ttl_s,
        }) => {
            let _ = writeln!(
                o,
                "  - dns {} → {} ({}), TTL {}",
                t(record),
                points_at
                    .as_deref()
                    .map(c)
                    .unwrap_or_else(|| "no appliance".into()),
                t(address),
                human_duration(*ttl_s)
            );
        }
        Some(TwinSwitch::Nat { public, target }) => {
            let _ = writeln!(
                o,
                "  - nat {} → {}",
                t(public),
                target
                    .as_deref()
                    .map(c)
                    .unwrap_or_else(|| "no appliance".into())
            );
        }
        Some(TwinSwitch::SharedIp { holder }) => {
            let _ = writeln!(
                o,
                "  - shared IP held by {}",
                holder.as_deref().map(c).unwrap_or_else(|| "nobody".into())
            );
        }
        None => {}
    }
    for n in &r.twin.notes {
        let _ = writeln!(o, "  - note: {}", t(n));
    }
    if !r.faults.is_empty() {
        let f: Vec<String> = r.faults.iter().map(|f| c(f)).collect();
        let _ = writeln!(o, "\nFaults: {}", f.join(", "));
    }
    if !r.drift.is_empty() {
        let _ = writeln!(o, "\nDrift (the site differs from what the plan expects):");
        for d in &r.drift {
            let _ = writeln!(o, "  - {}", t(d));
        }
    }
    let _ = writeln!(o, "\nOutcome: {}", r.outcome);
    if let Some(h) = &r.halt {
        match &h.step {
            Some(s) => {
                let _ = writeln!(o, "  halted at {}: {}", c(s), t(&h.cause));
            }
            None => {
                let _ = writeln!(o, "  refused before any step: {}", t(&h.cause));
            }
        }
        // The phase's abort path is printed once, below, even when the advice repeats it.
        let abort = h.abort_path.as_deref().unwrap_or("\u{0}");
        for a in h.advice.iter().filter(|a| !a.contains(abort)) {
            let _ = writeln!(o, "  advice: {}", t(a));
        }
        if let (Some(p), Some(a)) = (&h.phase, &h.abort_path) {
            let _ = writeln!(o, "  abort path ({}): {}", t(p), t(a));
        }
    }
    let _ = writeln!(
        o,
        "\nClient downtime (measured by the prober; resolution {}):",
        dur(r.probe_resolution_s)
    );
    if r.outages.is_empty() {
        let _ = writeln!(o, "  none seen");
    }
    for x in &r.outages {
        let during: Vec<String> = x.during.iter().map(|s| c(s)).collect();
        let _ = writeln!(
            o,
            "  - {} during {}",
            dur(x.downtime_s),
            if during.is_empty() {
                "no step".into()
            } else {
                during.join(", ")
            }
        );
    }
    let served: Vec<String> = r.served_by.iter().map(|s| c(s)).collect();
    let _ = writeln!(o, "  served by {}", served.join(" → "));
    let _ = writeln!(
        o,
        "\nTime without failover: rehearsed {}, planned {}",
        dur(r.unprotected_s),
        human_duration(r.planned_unprotected_s)
    );
    if !r.windows.is_empty() {
        let _ = writeln!(o, "\nWindows:");
    }
    for w in &r.windows {
        let fits = |f: bool| if f { "fits" } else { "does NOT fit" };
        let _ = writeln!(
            o,
            "  - {} ({}): planned use {} ({}), rehearsed {}",
            c(&w.name),
            human_duration(w.length_s),
            human_duration(w.planned_used_s),
            fits(w.planned_fits),
            match (w.rehearsed_used_s, w.rehearsed_fits) {
                (Some(u), Some(f)) => format!("{} ({})", dur(u), fits(f)),
                _ => "not reached".into(),
            }
        );
    }
    let _ = writeln!(o, "\nSteps (planned → rehearsed):");
    for s in &r.steps {
        let _ = writeln!(
            o,
            "  - {} {}: {} → {}",
            c(&s.id),
            s.status,
            human_duration(s.planned_s),
            s.rehearsed_s.map(dur).unwrap_or_else(|| "-".into())
        );
    }
    let _ = writeln!(o, "\nState left behind:");
    for a in &r.state_after {
        let _ = writeln!(
            o,
            "  - {} {} {}, shared IPs [{}], {}",
            c(&a.name),
            t(&a.version),
            a.role,
            a.shared_ips.join(", "),
            if a.healthy { "healthy" } else { "NOT healthy" }
        );
    }
    let _ = writeln!(
        o,
        "\nWhole change as rehearsed (waits for a later window not counted): {}",
        dur(r.makespan_s)
    );
    o
}
