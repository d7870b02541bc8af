//! Several plans (a fleet of sites) rendered one at a time: [`SetRenderer`] takes each plan's
//! view as it is planned and hands back the text to write now, so a command over thousands of
//! plans holds one plan in memory, not the fleet. The result is byte for byte what rendering
//! the whole set at once gives ([`super::render_many`] is this renderer over a slice).
//!
//! What it keeps across plans is small and bounded: running totals (text), the fleet table's
//! rows and digest (Markdown, `--summary-file`), and — Markdown only, whose one comment is
//! capped at `max_chars` — the views themselves, because each plan's share of the cap is
//! known only once the fleet table is. Must not: do IO, or reorder plans.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};
use swing_schema::output::PlanView;

use super::escape::{html_comment_value, md_code, md_inline};
use super::{Format, RenderOptions, ci, dot, json, markdown, mermaid, text};

/// The rendering of a set of `total` plans, fed one plan at a time.
pub struct SetRenderer {
    format: Format,
    opts: RenderOptions,
    total: usize,
    seen: usize,
    steps: u64,
    upgrades: u64,
    with_errors: usize,
    /// Built for Markdown and when the fleet's summary is asked for.
    table: Option<FleetTable>,
    /// The one plan's `--summary-file` text when the set has one plan.
    single_summary: Option<String>,
    /// Markdown of several plans: the views, rendered at the end within the cap.
    markdown: Vec<PlanView>,
}

/// The never-cut head of several plans in Markdown: marker (sites, names, digest of every
/// view's JSON) and one table row per plan.
#[derive(Default)]
struct FleetTable {
    sites: Vec<String>,
    names: Vec<String>,
    digest: Sha256,
    rows: String,
}

impl FleetTable {
    fn add(&mut self, v: &PlanView) {
        self.sites.push(html_comment_value(&v.plan.site));
        self.names.push(html_comment_value(&v.plan.name));
        self.digest.update(json::render(v).as_bytes());
        let _ = writeln!(
            self.rows,
            "| {} | {} | {} | {} |",
            md_code(&v.plan.name),
            md_inline(&v.plan.site),
            v.plan.scenario.label(),
            md_inline(&v.summary.line)
        );
    }

    fn render(&self) -> String {
        let digest = hex::encode(self.digest.clone().finalize());
        format!(
            "<!-- swing:plan site={} name={} digest={} -->\n## swing plan: {} sites\n\n| Plan | Site | Scenario | Summary |\n|---|---|---|---|\n{}\n",
            self.sites.join(","),
            self.names.join(","),
            &digest[..16],
            self.names.len(),
            self.rows
        )
    }
}

/// How one plan of a set renders on its own; [`SetRenderer::push_rendered`] puts it in place.
#[derive(Debug, Clone, Copy)]
struct ItemFormat {
    format: Format,
    opts: RenderOptions,
    total: usize,
}

impl ItemFormat {
    /// The plan's own part of the set's output: the whole rendering of a set of one; JSON:
    /// its object, indented into the `plans` array; text: its rendering and a blank line;
    /// Markdown: nothing yet (the set is laid out at the end, within its size cap).
    fn render(&self, v: &PlanView) -> String {
        if self.total == 1 {
            return super::render(v, self.format, self.opts);
        }
        match self.format {
            Format::Json => {
                let one = json::render(v);
                let mut out = String::with_capacity(one.len() + one.len() / 8);
                for (i, line) in one.trim_end().lines().enumerate() {
                    if i > 0 {
                        out.push('\n');
                    }
                    out.push_str("    ");
                    out.push_str(line);
                }
                out
            }
            Format::Text => {
                let mut out = text::render(v, self.opts.color);
                out.push('\n');
                out
            }
            Format::Markdown => String::new(),
            Format::Github => ci::plan_annotations(std::slice::from_ref(v)),
            Format::Dot => dot::render(v),
            Format::Mermaid => mermaid::flowchart(v),
            Format::Gantt => mermaid::gantt(v),
        }
    }
}

impl SetRenderer {
    /// A renderer for `total` plans (one plan renders as that plan alone); `summaries`: the
    /// caller will ask for [`SetRenderer::summaries`].
    pub fn new(format: Format, opts: RenderOptions, total: usize, summaries: bool) -> SetRenderer {
        SetRenderer {
            format,
            opts,
            total,
            seen: 0,
            steps: 0,
            upgrades: 0,
            with_errors: 0,
            table: (format == Format::Markdown || summaries).then(FleetTable::default),
            single_summary: None,
            markdown: Vec::new(),
        }
    }

    /// How each plan's own part is rendered.
    fn item_format(&self) -> ItemFormat {
        ItemFormat {
            format: self.format,
            opts: self.opts,
            total: self.total,
        }
    }

    /// The next plan: returns what to write now.
    pub fn push(&mut self, v: &PlanView) -> String {
        let item = self.item_format().render(v);
        self.push_rendered(v, item)
    }

    /// The next plan, its own part already rendered by [`ItemFormat::render`]: returns what
    /// to write now.
    fn push_rendered(&mut self, v: &PlanView, item: String) -> String {
        self.seen += 1;
        self.steps += v.summary.steps as u64;
        self.upgrades += v.summary.appliances_to_upgrade as u64;
        self.with_errors += usize::from(v.summary.errors > 0);
        if self.total == 1 {
            self.single_summary = Some(markdown::summary(v));
            return item;
        }
        if let Some(t) = self.table.as_mut() {
            t.add(v);
        }
        match self.format {
            Format::Json if self.seen == 1 => format!(
                "{{\n  \"format_version\": {},\n  \"plans\": [\n{item}",
                swing_schema::output::OUTPUT_FORMAT_VERSION
            ),
            Format::Json => format!(",\n{item}"),
            Format::Markdown => {
                self.markdown.push(v.clone());
                String::new()
            }
            _ => item,
        }
    }

    /// The end of the set: what to write after the last plan.
    pub fn finish(&mut self) -> String {
        if self.total == 1 {
            return String::new();
        }
        match self.format {
            Format::Json if self.seen == 0 => format!(
                "{{\n  \"format_version\": {},\n  \"plans\": []\n}}\n",
                swing_schema::output::OUTPUT_FORMAT_VERSION
            ),
            Format::Json => "\n  ]\n}\n".to_owned(),
            Format::Text => format!(
                "{} plans · {} steps · {} appliances to upgrade · {} with errors\n",
                self.seen, self.steps, self.upgrades, self.with_errors
            ),
            Format::Markdown => {
                let max = self.opts.max_chars();
                let mut out = self
                    .table
                    .as_ref()
                    .map(FleetTable::render)
                    .unwrap_or_default();
                let mut plans_cut = 0;
                for v in &self.markdown {
                    let budget = max.saturating_sub(out.chars().count() + 300);
                    let one = markdown::render(v, budget);
                    if one.chars().count() <= budget {
                        out.push_str(&one);
                    } else {
                        plans_cut += 1;
                    }
                }
                if plans_cut > 0 {
                    let _ = writeln!(
                        out,
                        "_Cut to stay under {max} characters: {plans_cut} of {} plans. Render them one by one._",
                        self.seen
                    );
                }
                out
            }
            Format::Github | Format::Dot | Format::Mermaid | Format::Gantt => String::new(),
        }
    }

    /// What `--summary-file` appends: the one plan's summary, or the fleet table.
    pub fn summaries(&self) -> String {
        match (&self.single_summary, &self.table) {
            (Some(s), _) => s.clone(),
            (None, Some(t)) => t.render(),
            (None, None) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swing_schema::output::PlanSetView;

    fn views() -> Vec<PlanView> {
        [
            include_str!("../../../plans/examples/single-automatic.yaml"),
            include_str!("../../../plans/examples/failover-async-dns.yaml"),
            include_str!("../../../plans/examples/hardware-migration.yaml"),
        ]
        .iter()
        .map(|text| {
            let c = crate::validate::check_source("example.yaml", text);
            crate::view::plan_view(
                &c.plan.expect("a valid example"),
                &crate::compile::CompileOptions::default(),
            )
            .unwrap()
        })
        .collect()
    }

    #[test]
    fn the_json_of_a_set_fed_one_plan_at_a_time_is_the_set_serialized_whole() {
        let views = views();
        let whole = serde_json::to_string_pretty(&PlanSetView {
            format_version: swing_schema::output::OUTPUT_FORMAT_VERSION,
            plans: views.clone(),
        })
        .unwrap()
            + "\n";
        let streamed = super::super::render_many(&views, Format::Json, RenderOptions::default());
        assert_eq!(streamed, whole);
        let empty: PlanSetView = serde_json::from_str(&super::super::render_many(
            &[],
            Format::Json,
            RenderOptions::default(),
        ))
        .unwrap();
        assert!(empty.plans.is_empty());
    }

    #[test]
    fn one_plan_renders_as_itself_and_several_get_the_fleet_table_and_totals() {
        let views = views();
        let opts = RenderOptions::default();
        for f in [
            Format::Text,
            Format::Markdown,
            Format::Json,
            Format::Mermaid,
        ] {
            assert_eq!(
                super::super::render_many(&views[..1], f, opts),
                super::super::render(&views[0], f, opts)
            );
        }
        let text = super::super::render_many(&views, Format::Text, opts);
        let steps: u64 = views.iter().map(|v| u64::from(v.summary.steps)).sum();
        assert!(
            text.ends_with(&format!(
                "3 plans · {steps} steps · 4 appliances to upgrade · 0 with errors\n"
            )),
            "{}",
            &text[text.len().saturating_sub(200)..]
        );
        let mut r = SetRenderer::new(Format::Json, opts, views.len(), true);
        for v in &views {
            r.push(v);
        }
        let table = r.summaries();
        assert!(table.starts_with("<!-- swing:plan site="), "{table}");
        assert!(table.contains("## swing plan: 3 sites"), "{table}");
        let md = super::super::render_many(&views, Format::Markdown, opts);
        assert!(
            md.starts_with(&table),
            "the Markdown leads with the same fleet table"
        );
        let small = RenderOptions {
            max_chars: Some(3_000),
            ..opts
        };
        let cut = super::super::render_many(&views, Format::Markdown, small);
        assert!(
            cut.chars().count() <= 3_000 + 200,
            "{}",
            cut.chars().count()
        );
        assert!(cut.contains("Cut to stay under 3000 characters"), "{cut}");
    }
}
