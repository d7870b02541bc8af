//! Cross-field checks on a well-shaped, typed plan: references between names, the scenario's
//! consistency (failover / migration / single), switch methods and their providers, windows,
//! versions and operator settings — each diagnostic pointed at the node that is wrong.
//!
//! Owns the cross-field rules, each with a pinpoint message (the shape schema holds none; the
//! editor schema restates those JSON Schema can express, for editors). Must not: re-check shape (done before), read
//! files or the environment (no secret resolution, no `ca_file` existence check: `validate`
//! runs where neither exists), or talk to any appliance.

use std::collections::HashMap;

use chrono::Datelike;
use swing_schema::duration::MAX_DURATION_SECS;
use swing_schema::{
    DurationSpec, Notify, Plan, Provider, Source, Strategy, Switch, ValueOrRef, Version,
};

use crate::diagnostics::{DiagnosticBuilder, PlanDiagnostic, Severity, Span, WithHelp, codes};
use crate::load::{SpanIndex, escape_pointer_segment};

struct Ctx<'a> {
    b: &'a DiagnosticBuilder,
    spans: &'a SpanIndex,
    plan: &'a Plan,
    out: Vec<PlanDiagnostic>,
}

/// Runs every semantic check; returns errors and warnings.
pub(super) fn check(b: &DiagnosticBuilder, spans: &SpanIndex, plan: &Plan) -> Vec<PlanDiagnostic> {
    let mut c = Ctx {
        b,
        spans,
        plan,
        out: Vec::new(),
    };
    c.scenario();
    c.failover();
    c.migration();
    c.appliances();
    c.windows();
    c.target();
    c.providers();
    c.bounds();
    c.notify();
    c.out
}

fn ptr(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| format!("/{}", escape_pointer_segment(p)))
        .collect()
}

impl Ctx<'_> {
    fn key(&self, parts: &[&str]) -> Span {
        self.spans.key_or_value_span(&ptr(parts))
    }
    fn val(&self, parts: &[&str]) -> Span {
        self.spans.value_span(&ptr(parts))
    }
    fn has(&self, parts: &[&str]) -> bool {
        self.spans.get(&ptr(parts)).is_some()
    }

    fn names(&self) -> String {
        self.plan
            .appliances
            .keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn scenario(&mut self) {
        let p = self.plan;
        let n = p.appliances.len();
        if p.failover.is_some() && p.migration.is_some() {
            let d = self.b.at(
                Severity::Error,
                codes::FAILOVER_AND_MIGRATION,
                self.key(&["migration"]),
                "migration here",
                "a plan is either a failover upgrade or a hardware migration, not both",
            );
            let d = self
                .b
                .also(d, self.key(&["failover"]), "failover here")
                .help("split it into two plans: migrate first, then upgrade the pair (or the other way round)");
            self.out.push(d);
        }
        if n == 2 && p.failover.is_none() && p.migration.is_none() {
            self.out.push(
                self.b
                    .at(
                        Severity::Error,
                        codes::TWO_WITHOUT_PAIRING,
                        self.key(&["appliances"]),
                        "two appliances",
                        "two appliances but neither `failover` nor `migration` says how they relate",
                    )
                    .help("add `failover:` (a pair) or `migration:` (old → new), or keep one appliance"),
            );
        }
        if n == 1 && p.failover.is_some() {
            self.out.push(
                self.b
                    .at(
                        Severity::Error,
                        codes::FAILOVER_NEEDS_TWO,
                        self.key(&["failover"]),
                        "needs two appliances",
                        format!("`failover` needs two appliances, but only {} is defined", self.names()),
                    )
                    .help("add the second appliance under `appliances:`, or remove `failover:` for a single-appliance upgrade"),
            );
        }
        if n == 1 && p.migration.is_some() {
            self.out.push(
                self.b
                    .at(
                        Severity::Error,
                        codes::FAILOVER_NEEDS_TWO,
                        self.key(&["migration"]),
                        "needs two appliances",
                        format!("`migration` needs two appliances (old and new), but only {} is defined", self.names()),
                    )
                    .help("add the new appliance under `appliances:`"),
            );
        }
    }

    fn appliance_ref(&mut self, parts: &[&str], name: &str, role: &str) -> bool {
        if self.plan.appliances.contains_key(name) {
            return true;
        }
        let candidates: Vec<&str> = self.plan.appliances.keys().map(String::as_str).collect();
        let help = match super::schema::closest(name, candidates.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? appliances defined: {}", self.names()),
            None => format!("appliances defined: {}", self.names()),
        };
        self.out.push(
            self.b
                .at(
                    Severity::Error,
                    codes::UNKNOWN_APPLIANCE,
                    self.val(parts),
                    "no such appliance",
                    format!("{role} `{name}` is not one of the appliances"),
                )
                .help(help),
        );
        false
    }

    fn failover(&mut self) {
        let Some(f) = &self.plan.failover else {
            return;
        };
        let p_ok = self.appliance_ref(&["failover", "primary"], &f.primary, "primary");
        let b_ok = self.appliance_ref(&["failover", "backup"], &f.backup, "backup");
        if p_ok && b_ok && f.primary == f.backup {
            let d = self.b.at(
                Severity::Error,
                codes::PRIMARY_EQUALS_BACKUP,
                self.val(&["failover", "backup"]),
                "same as primary",
                format!("`{}` cannot be both primary and backup", f.backup),
            );
            let d = self
                .b
                .also(d, self.val(&["failover", "primary"]), "primary")
                .help("the backup must name the other appliance of the pair");
            self.out.push(d);
        }
        if let Some(fp) = &f.final_primary {
            if f.strategy == Strategy::Synchronous {
                self.out.push(
                    self.b
                        .at(
                            Severity::Error,
                            codes::FINAL_PRIMARY_ON_SYNC,
                            self.key(&["failover", "final_primary"]),
                            "only for asynchronous",
                            "`final_primary` applies only to an asynchronous upgrade",
                        )
                        .help("with `strategy: synchronous` the primary keeps its role; remove `final_primary`"),
                );
            } else if self.appliance_ref(&["failover", "final_primary"], fp, "final_primary")
                && *fp != f.primary
                && *fp != f.backup
            {
                self.out.push(self.b.at(
                    Severity::Error,
                    codes::UNKNOWN_APPLIANCE,
                    self.val(&["failover", "final_primary"]),
                    "not in the pair",
                    format!("final_primary `{fp}` is neither the primary nor the backup"),
                ));
            }
        }
        match (&f.switch, f.strategy) {
            (None, Strategy::Asynchronous) => self.out.push(
                self.b
                    .at(
                        Severity::Error,
                        codes::MISSING_KEY,
                        self.key(&["failover"]),
                        "missing `switch`",
                        "an asynchronous upgrade moves the site to the backup, so `failover` needs `switch`",
                    )
                    .help("add e.g. `switch: { method: shared-ip, address: 10.0.0.10 }` (or dns / nat)"),
            ),
            (Some(s), _) => self.switch(&["failover", "switch"], s),
            (None, Strategy::Synchronous) => {}
        }
        if f.strategy == Strategy::Asynchronous && self.plan.windows.len() == 1 {
            self.out.push(
                self.b
                    .at(
                        Severity::Warning,
                        codes::ASYNC_ONE_WINDOW,
                        self.key(&["windows"]),
                        "one window",
                        "an asynchronous upgrade usually takes two windows (one per appliance); only one is given",
                    )
                    .help("add a second window for the old primary, or accept doing both in one window"),
            );
        }
    }

    fn migration(&mut self) {
        let Some(m) = &self.plan.migration else {
            return;
        };
        let f_ok = self.appliance_ref(&["migration", "from"], &m.from, "migration source");
        let t_ok = self.appliance_ref(&["migration", "to"], &m.to, "migration target");
        if f_ok && t_ok && m.from == m.to {
            let d = self.b.at(
                Severity::Error,
                codes::PRIMARY_EQUALS_BACKUP,
                self.val(&["migration", "to"]),
                "same as `from`",
                format!("`{}` cannot be migrated onto itself", m.to),
            );
            let d = self
                .b
                .also(d, self.val(&["migration", "from"]), "from")
                .help("`to` must name the freshly installed appliance");
            self.out.push(d);
        }
        self.switch(&["migration", "switch"], &m.switch);
    }

    fn switch(&mut self, at: &[&str], s: &Switch) {
        let want: &[&str] = match s {
            Switch::SharedIp { address } => {
                for (name, a) in &self.plan.appliances {
                    if a.address == *address {
                        let mut parts = at.to_vec();
                        parts.push("address");
                        let d = self.b.at(
                            Severity::Error,
                            codes::DUPLICATE_ADDRESS,
                            self.val(&parts),
                            "also an appliance address",
                            format!("the shared IP `{address}` is also the unique address of appliance `{name}`"),
                        );
                        let d = self
                            .b
                            .also(d, self.val(&["appliances", name, "address"]), "here")
                            .help("the shared IP moves between appliances; each appliance also has its own unique IP");
                        self.out.push(d);
                    }
                }
                return;
            }
            Switch::Dns { .. } => &["rfc2136"],
            Switch::Nat { public, .. } => {
                if !is_endpoint(public) {
                    let mut parts = at.to_vec();
                    parts.push("public");
                    self.out.push(
                        self.b
                            .at(
                                Severity::Error,
                                codes::BAD_ENDPOINT,
                                self.val(&parts),
                                "not address:port",
                                format!("`public` must be `address:port`, not `{public}`"),
                            )
                            .help("write e.g. \"203.0.113.10:443\" (quoted)"),
                    );
                }
                &["nftables", "iptables", "exec"]
            }
        };
        let Some(name) = s.provider() else {
            return;
        };
        let mut parts = at.to_vec();
        parts.push("provider");
        let method = s.method();
        match self.plan.providers.get(name) {
            None => {
                let candidates: Vec<&str> =
                    self.plan.providers.keys().map(String::as_str).collect();
                let mut d = self.b.at(
                    Severity::Error,
                    codes::UNKNOWN_PROVIDER,
                    self.val(&parts),
                    "no such provider",
                    format!("switch method `{method}` uses provider `{name}`, which is not defined under `providers`"),
                );
                d = match super::schema::closest(name, candidates.iter().copied()) {
                    Some(c) => d.help(format!("did you mean `{c}`?")),
                    None => d.help(format!(
                        "add `providers.{name}` with `type: {}`",
                        want.join("` or `type: ")
                    )),
                };
                self.out.push(d);
            }
            Some(p) if !want.contains(&p.type_name()) => {
                let d = self.b.at(
                    Severity::Error,
                    codes::PROVIDER_WRONG_TYPE,
                    self.val(&parts),
                    format!("of type `{}`", p.type_name()),
                    format!(
                        "switch method `{method}` needs a provider of type {}, but `{name}` is of type `{}`",
                        want.join(" or "),
                        p.type_name()
                    ),
                );
                let d = self
                    .b
                    .also(d, self.val(&["providers", name, "type"]), "defined here")
                    .help(format!(
                        "point `provider` at a provider with `type: {}`",
                        want.join("` or `type: ")
                    ));
                self.out.push(d);
            }
            Some(_) => {}
        }
    }

    fn appliances(&mut self) {
        let mut by_address: HashMap<(&str, u16), &str> = HashMap::new();
        for (name, a) in &self.plan.appliances {
            if let Some(first) = by_address.insert((a.address.as_str(), a.port), name) {
                let d = self.b.at(
                    Severity::Error,
                    codes::DUPLICATE_ADDRESS,
                    self.val(&["appliances", name, "address"]),
                    "same address",
                    format!(
                        "appliances `{first}` and `{name}` have the same address `{}`",
                        a.address
                    ),
                );
                let d = self
                    .b
                    .also(d, self.val(&["appliances", first, "address"]), "first used here")
                    .help("give each appliance its own unique IP or hostname (not the shared IP or the site name)");
                self.out.push(d);
            }
            let explicit = self.has(&["appliances", name, "provider"]);
            let span = if explicit {
                self.val(&["appliances", name, "provider"])
            } else {
                self.key(&["appliances", name])
            };
            let default_note = if explicit { "" } else { " (the default)" };
            match self.plan.providers.get(&a.provider) {
                None => self.out.push(
                    self.b
                        .at(
                            Severity::Error,
                            codes::UNKNOWN_PROVIDER,
                            span,
                            "provider not defined",
                            format!(
                                "appliance `{name}` is reached through provider `{}`{default_note}, which is not defined under `providers`",
                                a.provider
                            ),
                        )
                        .help(format!(
                            "add `providers.{}` with `type: beyondtrust`, or set `provider:` on the appliance",
                            a.provider
                        )),
                ),
                Some(p) if !matches!(p, Provider::Beyondtrust(_)) => {
                    let d = self.b.at(
                        Severity::Error,
                        codes::PROVIDER_WRONG_TYPE,
                        span,
                        format!("of type `{}`", p.type_name()),
                        format!(
                            "appliance `{name}` needs a provider of type beyondtrust, but `{}`{default_note} is of type `{}`",
                            a.provider,
                            p.type_name()
                        ),
                    );
                    let d = self
                        .b
                        .also(d, self.val(&["providers", &a.provider, "type"]), "defined here")
                        .help("appliances are reached through a `type: beyondtrust` provider");
                    self.out.push(d);
                }
                Some(_) => {}
            }
        }
    }

    /// `notify`: each webhook URL parses and is `https`, or `http` to a loopback address only
    /// (a reference is checked when apply resolves it); `events` is not empty and names each
    /// event once.
    fn notify(&mut self) {
        for (i, n) in self.plan.notify.iter().enumerate() {
            let idx = i.to_string();
            if let Notify::Webhook {
                url: ValueOrRef::Literal(url),
                ..
            } = n
                && let Err(problem) = crate::notify::check_url(url)
            {
                self.out.push(
                    self.b
                        .at(
                            Severity::Error,
                            codes::BAD_NOTIFY_URL,
                            self.val(&["notify", &idx, "url"]),
                            problem.label(),
                            format!("notify #{}: {problem}", i + 1),
                        )
                        .help(problem.help()),
                );
            }
            let events = n.events();
            if events.is_empty() {
                self.out.push(
                    self.b
                        .at(
                            Severity::Error,
                            codes::NOTIFY_EVENTS,
                            self.val(&["notify", &idx, "events"]),
                            "no events",
                            format!("notify #{} hears about no event", i + 1),
                        )
                        .help("name at least one of paused, waiting-for-window, failed, done, or leave `events` out for all four"),
                );
            }
            for (j, e) in events.iter().enumerate() {
                if let Some(first) = events[..j].iter().position(|x| x == e) {
                    let d = self.b.at(
                        Severity::Error,
                        codes::NOTIFY_EVENTS,
                        self.val(&["notify", &idx, "events", &j.to_string()]),
                        "named again",
                        format!("notify #{} names the event `{}` twice", i + 1, e.as_str()),
                    );
                    let d = self
                        .b
                        .also(
                            d,
                            self.val(&["notify", &idx, "events", &first.to_string()]),
                            "first",
                        )
                        .help("name each event once");
                    self.out.push(d);
                }
            }
        }
    }

    fn windows(&mut self) {
        let ws = &self.plan.windows;
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (i, w) in ws.iter().enumerate() {
            let idx = i.to_string();
            if w.end <= w.start {
                let d = self.b.at(
                    Severity::Error,
                    codes::WINDOW_END_BEFORE_START,
                    self.val(&["windows", &idx, "end"]),
                    "not after start",
                    format!("window `{}` ends before (or when) it starts", w.name),
                );
                let d = self
                    .b
                    .also(d, self.val(&["windows", &idx, "start"]), "start")
                    .help("`end` must be later than `start` (mind the UTC offsets)");
                self.out.push(d);
            }
            if let Some(first) = names.insert(w.name.as_str(), i) {
                let d = self.b.at(
                    Severity::Error,
                    codes::DUPLICATE_WINDOW,
                    self.val(&["windows", &idx, "name"]),
                    "duplicate name",
                    format!("two windows are named `{}`", w.name),
                );
                let d = self
                    .b
                    .also(d, self.val(&["windows", &first.to_string(), "name"]), "first")
                    .help("give each window its own name; journals and `--window` refer to them by name");
                self.out.push(d);
            }
        }
        let mut order: Vec<usize> = (0..ws.len()).filter(|&i| ws[i].end > ws[i].start).collect();
        order.sort_by_key(|&i| ws[i].start);
        for pair in order.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if ws[b].start < ws[a].end {
                let d = self.b.at(
                    Severity::Error,
                    codes::WINDOWS_OVERLAP,
                    self.val(&["windows", &b.to_string(), "start"]),
                    format!("starts before `{}` ends", ws[a].name),
                    format!("windows `{}` and `{}` overlap", ws[a].name, ws[b].name),
                );
                let d = self
                    .b
                    .also(
                        d,
                        self.val(&["windows", &a.to_string(), "end"]),
                        "ends here",
                    )
                    .help("windows must not overlap; merge them into one or move one");
                self.out.push(d);
            }
        }
    }

    /// No value of a valid plan can overflow anything downstream: every duration at most
    /// [`MAX_DURATION_SECS`] (the parser already refuses longer ones; a plan built in memory is
    /// checked here too), window timestamps in the years 1970–9999, and all windows inside one
    /// span of at most that length — so every offset, sum and instant compile, render and
    /// apply compute stays far inside its type.
    fn bounds(&mut self) {
        let p = self.plan;
        let mut durations: Vec<(Vec<String>, DurationSpec)> = vec![
            (
                vec!["policy".into(), "max_unprotected".into()],
                p.policy.max_unprotected,
            ),
            (
                vec!["policy".into(), "clock_skew_max".into()],
                p.policy.clock_skew_max,
            ),
            (
                vec![
                    "policy".into(),
                    "jump_clients".into(),
                    "wait_timeout".into(),
                ],
                p.policy.jump_clients.wait_timeout,
            ),
        ];
        for (k, d) in &p.policy.estimates {
            durations.push((vec!["policy".into(), "estimates".into(), k.clone()], *d));
        }
        for (at, d) in durations {
            if d.secs() > MAX_DURATION_SECS {
                let at: Vec<&str> = at.iter().map(String::as_str).collect();
                let diag = self
                    .b
                    .at(
                        Severity::Error,
                        codes::BAD_DURATION,
                        self.val(&at),
                        "too long",
                        format!(
                            "`{}` is longer than {}, the longest duration swing accepts",
                            at.join("."),
                            DurationSpec::from_secs(MAX_DURATION_SECS)
                        ),
                    )
                    .help("a change, window or timeout is at most 366d");
                self.out.push(diag);
            }
        }
        let in_range =
            |t: &chrono::DateTime<chrono::FixedOffset>| (1970..=9999).contains(&t.year());
        for (i, w) in p.windows.iter().enumerate() {
            let idx = i.to_string();
            for (field, t) in [("start", w.start), ("end", w.end)] {
                if !in_range(&t) {
                    let diag = self
                        .b
                        .at(
                            Severity::Error,
                            codes::OUT_OF_RANGE,
                            self.val(&["windows", &idx, field]),
                            "year out of range",
                            format!("window `{}` {field}s in the year {}", w.name, t.year()),
                        )
                        .help("a window lies between the years 1970 and 9999");
                    self.out.push(diag);
                }
            }
        }
        if !p
            .windows
            .iter()
            .all(|w| in_range(&w.start) && in_range(&w.end))
        {
            // Reported above; the span of such dates is not even computed.
            return;
        }
        let first = p.windows.iter().min_by_key(|w| w.start);
        let last = p.windows.iter().max_by_key(|w| w.end);
        if let (Some(first), Some(last)) = (first, last) {
            let span = (last.end - first.start).num_seconds();
            if span > MAX_DURATION_SECS as i64 {
                let i = p.windows.iter().position(|w| w == last).unwrap_or(0);
                let diag = self
                    .b
                    .at(
                        Severity::Error,
                        codes::OUT_OF_RANGE,
                        self.val(&["windows", &i.to_string(), "end"]),
                        "too far from the first window",
                        format!(
                            "the windows span more than {} (from `{}` to `{}`)",
                            DurationSpec::from_secs(MAX_DURATION_SECS),
                            first.name,
                            last.name
                        ),
                    )
                    .help("one change fits in a year; plan a later change separately");
                self.out.push(diag);
            }
        }
    }

    fn target(&mut self) {
        let t = &self.plan.target;
        if t.source == Source::Manual && self.plan.windows.is_empty() {
            self.out.push(
                self.b
                    .at(
                        Severity::Warning,
                        codes::MANUAL_WITHOUT_WINDOWS,
                        self.val(&["target", "source"]),
                        "no windows",
                        "a manual (offline) update without maintenance windows",
                    )
                    .help("an offline update takes an operator on site: add `windows:` so apply knows when it may run"),
            );
        }
        let skip = self.plan.migration.as_ref().map(|m| m.from.as_str());
        for (name, a) in &self.plan.appliances {
            let Some(cur) = &a.current_version else {
                continue;
            };
            if Some(name.as_str()) == skip || !Version::is_dotted(cur.as_str()) {
                continue;
            }
            if cur.components() > t.version.components() {
                let d = self.b.at(
                    Severity::Error,
                    codes::TARGET_NOT_NEWER,
                    self.val(&["appliances", name, "current_version"]),
                    "newer than the target",
                    format!(
                        "appliance `{name}` runs {cur}, newer than the target {}; appliances cannot be downgraded",
                        t.version
                    ),
                );
                let d = self
                    .b
                    .also(d, self.val(&["target", "version"]), "target")
                    .help("check `target.version` and `current_version`");
                self.out.push(d);
            }
        }
    }

    fn providers(&mut self) {
        for (name, p) in &self.plan.providers {
            match p {
                Provider::Beyondtrust(bt) => {
                    use swing_schema::OperatorMode;
                    if bt.operator == OperatorMode::Exec && bt.operator_command.is_none() {
                        self.out.push(
                            self.b
                                .at(
                                    Severity::Error,
                                    codes::OPERATOR_COMMAND,
                                    self.val(&["providers", name, "operator"]),
                                    "needs operator_command",
                                    format!("provider `{name}` has `operator: exec` but no `operator_command`"),
                                )
                                .help("add `operator_command: ./scripts/operator.sh` (the command that performs operator steps)"),
                        );
                    }
                    if bt.operator != OperatorMode::Exec && bt.operator_command.is_some() {
                        self.out.push(
                            self.b
                                .at(
                                    Severity::Warning,
                                    codes::OPERATOR_COMMAND,
                                    self.key(&["providers", name, "operator_command"]),
                                    "ignored",
                                    format!("`operator_command` of provider `{name}` is used only with `operator: exec`"),
                                )
                                .help("set `operator: exec` or remove `operator_command`"),
                        );
                    }
                }
                Provider::Rfc2136(r) => {
                    if !is_endpoint(&r.server) {
                        self.out.push(
                            self.b
                                .at(
                                    Severity::Error,
                                    codes::BAD_ENDPOINT,
                                    self.val(&["providers", name, "server"]),
                                    "not host:port",
                                    format!("`server` of provider `{name}` must be `host:port`"),
                                )
                                .help("write e.g. \"10.0.0.53:53\" (quoted)"),
                        );
                    }
                }
                Provider::Nftables(_) | Provider::Iptables(_) | Provider::Exec(_) => {}
            }
        }
    }
}

/// `host:port` or `[v6]:port` with a port in 1..=65535.
fn is_endpoint(s: &str) -> bool {
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    !host.is_empty()
        && !host.contains(char::is_whitespace)
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::is_endpoint;
    use swing_schema::plan::{ENDPOINT_PATTERN, HOSTNAME_PATTERN};

    fn matches(pattern: &str, s: &str) -> bool {
        jsonschema::draft202012::is_valid(
            &serde_json::json!({ "type": "string", "pattern": pattern }),
            &serde_json::json!(s),
        )
    }

    /// The editor schema states `host:port` with `ENDPOINT_PATTERN`; it must judge as this
    /// module does.
    #[test]
    fn endpoint_pattern_agrees_with_is_endpoint() {
        for s in [
            "10.0.0.53:53",
            "ns1.example.com:53",
            "[::1]:53",
            "[2001:db8::1]:5353",
            "h:1",
            "h:65535",
            "h:65536",
            "h:0",
            "h:00",
            "h:053",
            "h:+53",
            "h:-53",
            "h:",
            ":53",
            "ns1.example.com",
            "ns 1:53",
            "h:53 ",
            "h:99999",
            "h:6553a",
            "a:b:c",
        ] {
            assert_eq!(matches(ENDPOINT_PATTERN, s), is_endpoint(s), "`{s}`");
        }
    }

    /// The editor schema restates `site`'s `hostname` format with `HOSTNAME_PATTERN` for
    /// validators that do not check formats; on plain ASCII names they agree.
    #[test]
    fn hostname_pattern_agrees_with_the_hostname_format() {
        let format = serde_json::json!({ "type": "string", "format": "hostname" });
        let long_label = "a".repeat(64);
        for s in [
            "access.example.com",
            "a",
            "a-b.c",
            "-a.example.com",
            "a-.example.com",
            "access.example.com.",
            "https://access.example.com/",
            "access..example.com",
            "acc_ess.example.com",
            "10.0.0.1",
            long_label.as_str(),
        ] {
            let by_format = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&format)
                .expect("compiles")
                .is_valid(&serde_json::json!(s));
            assert_eq!(matches(HOSTNAME_PATTERN, s), by_format, "`{s}`");
        }
    }
}
