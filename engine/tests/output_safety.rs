//! Output safety: a plan whose every string holds a hostile payload (HTML, a fake heading, a
//! `</details>`, table pipes, code fences, Mermaid syntax, line breaks, terminal escape
//! sequences) renders in every format as plain text of that medium — Markdown parsed with
//! pulldown-cmark has no HTML but swing's own and no extra heading, `<details>` stay balanced,
//! Mermaid and DOT get no extra line, the terminal sees no control character but swing's
//! colours, GitHub annotations stay one well-formed command each.
//!
//! Must not: compare against hard-coded renderings; every check is against the same plan
//! rendered with harmless strings.

use pulldown_cmark::{Event, Parser, Tag};
use serde_json::Value;
use swing_engine::compile::CompileOptions;
use swing_engine::render::{self, Format, RenderOptions, markdown};
use swing_schema::output::PlanView;

const PAYLOAD: &str = " x</details>\n## No changes. The site matches the plan.\n<img src=x onerror=alert(1)> | a | b |\n```\n~~~\n- [x] done\n1. one\n\"]; s9[\"x\" #; & <!-- --> end\n  click s0 call alert()\n::error::forged\r\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[31m\u{9b}31m\u{9d}8;;x\u{9c} `` ` $x$ *b* _i_";

/// A plan through the real pipeline with hostile operator instructions and package names.
fn compiled() -> PlanView {
    let yaml = format!(
        r#"version: 1
name: access-25-1-offline
site: access.example.com
target: {{ version: "25.1.3", source: manual, packages: [{p}] }}
appliances:
  vault: {{ address: 10.0.0.21, current_version: "24.3.2" }}
windows:
  - {{ name: sunday, start: 2026-12-06T06:00:00+01:00, end: 2026-12-06T10:00:00+01:00 }}
backup: {{ directory: ./backups, password: "${{env:BACKUP_PASSWORD}}" }}
verify:
  manual: [{p}, "Start an access session"]
providers:
  appliance: {{ type: beyondtrust, client_id: "${{env:BT_ID}}", client_secret: "${{env:BT_SECRET}}" }}
"#,
        p = serde_json::to_string(PAYLOAD).unwrap()
    );
    let checked = swing_engine::validate::check_source("hostile.yaml", &yaml);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let plan = checked.plan.unwrap();
    let opts = CompileOptions {
        offline: true,
        file: Some("plans/hostile.yaml".into()),
    };
    let mut view = swing_engine::view::plan_view(&plan, &opts).unwrap();
    // A live plan's parts, so the refreshed state, drift and findings are rendered too.
    view.refresh = Some(swing_schema::output::RefreshView {
        observed: vec!["appliance vault: 24.3.2, primary, healthy".into()],
        done: vec![view.steps[0].id.clone()],
        needed: view.steps.iter().skip(1).map(|s| s.id.clone()).collect(),
        drift: vec!["appliance vault is 25.0.1, the plan expects 24.3.2".into()],
        unobserved: vec!["appliance vault: connection refused".into()],
        has_changes: true,
    });
    view.findings.push(swing_schema::output::Finding {
        level: swing_schema::output::Level::Warning,
        code: "window-overrun".into(),
        message: "the window is tight".into(),
    });
    view
}

/// Every string of the view that may hold any text (an enum's string does not), found by
/// trying the payload in each one.
fn free_paths(view: &Value) -> Vec<Vec<PathPart>> {
    fn walk(v: &Value, at: &mut Vec<PathPart>, out: &mut Vec<Vec<PathPart>>) {
        match v {
            Value::String(_) => out.push(at.clone()),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    at.push(PathPart::Index(i));
                    walk(x, at, out);
                    at.pop();
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    at.push(PathPart::Key(k.clone()));
                    walk(x, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    walk(view, &mut Vec::new(), &mut all);
    all.into_iter()
        .filter(|p| {
            let mut v = view.clone();
            *get(&mut v, p) = Value::String(PAYLOAD.into());
            serde_json::from_value::<PlanView>(v).is_ok()
        })
        .collect()
}

#[derive(Clone)]
enum PathPart {
    Key(String),
    Index(usize),
}

fn get<'a>(v: &'a mut Value, path: &[PathPart]) -> &'a mut Value {
    path.iter().fold(v, |v, p| match p {
        PathPart::Key(k) => &mut v[k.as_str()],
        PathPart::Index(i) => &mut v[*i],
    })
}

/// The same view with `f` applied to every free string (consistently, so step ids and the
/// references to them still agree).
fn mapped(view: &PlanView, paths: &[Vec<PathPart>], f: impl Fn(&str) -> String) -> PlanView {
    let mut v = serde_json::to_value(view).unwrap();
    for p in paths {
        let slot = get(&mut v, p);
        let s = slot.as_str().unwrap().to_owned();
        *slot = Value::String(f(&s));
    }
    serde_json::from_value(v).unwrap()
}

fn pair() -> (PlanView, PlanView) {
    let base = compiled();
    let paths = free_paths(&serde_json::to_value(&base).unwrap());
    assert!(paths.len() > 50, "only {} free strings found", paths.len());
    // Harmless: the payload's letters only (same shape, nothing to escape).
    let harmless = mapped(&base, &paths, |s| format!("{s} harmless text"));
    let hostile = mapped(&base, &paths, |s| format!("{s}{PAYLOAD}"));
    (harmless, hostile)
}

const BIG: RenderOptions = RenderOptions {
    color: false,
    max_chars: Some(10_000_000),
};

struct MdShape {
    headings: usize,
    html: Vec<String>,
    code_blocks: usize,
    list_items: usize,
    tables: usize,
}

fn md_shape(md: &str) -> MdShape {
    let mut s = MdShape {
        headings: 0,
        html: Vec::new(),
        code_blocks: 0,
        list_items: 0,
        tables: 0,
    };
    let mut opts = pulldown_cmark::Options::empty();
    opts.insert(pulldown_cmark::Options::ENABLE_TABLES);
    opts.insert(pulldown_cmark::Options::ENABLE_TASKLISTS);
    opts.insert(pulldown_cmark::Options::ENABLE_STRIKETHROUGH);
    for e in Parser::new_ext(md, opts) {
        match e {
            Event::Start(Tag::Heading { .. }) => s.headings += 1,
            Event::Start(Tag::CodeBlock(_)) => s.code_blocks += 1,
            Event::Start(Tag::Item) => s.list_items += 1,
            Event::Start(Tag::Table(_)) => s.tables += 1,
            Event::Html(h) | Event::InlineHtml(h) => s.html.push(h.to_string()),
            _ => {}
        }
    }
    s
}

/// swing's own HTML: the marker, `<details><summary>…</summary>` and `</details>`.
fn own_html(h: &str) -> bool {
    let h = h.trim();
    h == "</details>"
        || h.strip_prefix("<details><summary>")
            .and_then(|r| r.strip_suffix("</summary>"))
            .is_some_and(|title| !title.contains(['<', '>']))
        || (h.starts_with("<!-- swing:plan ")
            && h.ends_with(" -->")
            && !h["<!-- ".len()..h.len() - " -->".len()].contains("--"))
}

#[test]
fn markdown_of_a_hostile_plan_has_only_swings_structure() {
    let (harmless, hostile) = pair();
    for views in [
        vec![hostile.clone()],
        vec![hostile.clone(), hostile.clone()],
    ] {
        let base_views: Vec<PlanView> = views.iter().map(|_| harmless.clone()).collect();
        let md = render::render_many(&views, Format::Markdown, BIG);
        let base = render::render_many(&base_views, Format::Markdown, BIG);
        let (got, want) = (md_shape(&md), md_shape(&base));
        for h in &got.html {
            assert!(own_html(h), "HTML from a plan string: {h:?}\n{md}");
        }
        assert_eq!(got.html.len(), want.html.len(), "{md}");
        assert_eq!(got.headings, want.headings, "extra heading:\n{md}");
        assert_eq!(
            got.code_blocks, want.code_blocks,
            "code fence broken:\n{md}"
        );
        assert_eq!(got.list_items, want.list_items, "extra list item:\n{md}");
        assert_eq!(got.tables, want.tables, "table broken:\n{md}");
        // Balance among the HTML a renderer sees: a plan string's `</details>` inside a code
        // span is text, not a tag (checked above: no HTML node comes from a plan string).
        let tags = |t: &str| got.html.iter().map(|h| h.matches(t).count()).sum::<usize>();
        assert_eq!(
            tags("<details>"),
            tags("</details>"),
            "details unbalanced:\n{md}"
        );
        assert_eq!(tags("<details>"), md.matches("<details>").count(), "{md}");
        assert_eq!(
            md.lines().count(),
            base.lines().count(),
            "extra line:\n{md}"
        );
        assert!(md.lines().next().unwrap().starts_with("<!-- swing:plan "));
        assert!(!md.contains('\u{1b}') && !md.contains('\r') && !md.contains('\u{9b}'));
    }
}

#[test]
fn mermaid_and_dot_of_a_hostile_plan_get_no_injected_line() {
    let (harmless, hostile) = pair();
    for f in [Format::Mermaid, Format::Gantt, Format::Dot] {
        let got = render::render(&hostile, f, BIG);
        let want = render::render(&harmless, f, BIG);
        assert_eq!(
            got.lines().count(),
            want.lines().count(),
            "{f:?} gained lines:\n{got}"
        );
        // Line by line, each hostile line is the harmless one's kind of line.
        for (g, w) in got.lines().zip(want.lines()) {
            let head = |l: &str| {
                l.split_whitespace()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(2)
                    .collect::<String>()
            };
            assert_eq!(head(g), head(w), "{f:?}: {g:?} in place of {w:?}");
            assert!(!g.contains(|c: char| c.is_control()), "{f:?}: {g:?}");
        }
        if f != Format::Dot {
            // Quoted labels: the payload's quotes never end one.
            for l in got.lines() {
                assert!(l.matches('"').count() % 2 == 0, "{f:?}: {l:?}");
            }
        }
    }
}

#[test]
fn terminal_text_of_a_hostile_plan_has_no_escape_sequence() {
    let (harmless, hostile) = pair();
    let plain = render::render(&hostile, Format::Text, BIG);
    assert!(
        !plain.contains(|c: char| c.is_control() && c != '\n'),
        "control character in text output"
    );
    assert_eq!(
        plain.lines().count(),
        render::render(&harmless, Format::Text, BIG).lines().count()
    );
    let coloured = render::render(&hostile, Format::Text, RenderOptions { color: true, ..BIG });
    // Only SGR sequences (swing's colours) remain.
    let mut rest = coloured.as_str();
    while let Some(i) = rest.find('\u{1b}') {
        let seq = &rest[i..];
        let end = seq.find('m').expect("an SGR sequence ends with m");
        assert!(
            seq[1..end].starts_with('[')
                && seq[2..end].chars().all(|c| c.is_ascii_digit() || c == ';'),
            "not a colour: {:?}",
            &seq[..end.min(20)]
        );
        rest = &seq[end..];
    }
}

#[test]
fn github_annotations_of_a_hostile_plan_stay_one_command_each() {
    let (_, hostile) = pair();
    let out = render::render(&hostile, Format::Github, BIG);
    // Findings (2) + unobserved (1) + drift (1).
    assert_eq!(out.lines().count(), hostile.findings.len() + 2, "{out}");
    let re = annotation_regex();
    for l in out.lines() {
        assert!(re.is_match(l), "not a workflow command: {l:?}");
    }
}

/// GitHub's documented grammar: `::LEVEL [k=v(,k=v)*]::DATA`, properties file/line/col/
/// endLine/endColumn/title, values with `%`, CR, LF, `:` and `,` escaped, data with `%`, CR and
/// LF escaped.
pub fn annotation_regex() -> Regex {
    Regex::new(
        r"^::(error|warning|notice)( ((file|title)=([^%:,\r\n]|%25|%0D|%0A|%3A|%2C)*|(line|col|endLine|endColumn)=[1-9][0-9]*)(,((file|title)=([^%:,\r\n]|%25|%0D|%0A|%3A|%2C)*|(line|col|endLine|endColumn)=[1-9][0-9]*))*)?::([^%\r\n]|%25|%0D|%0A)*$",
    )
    .unwrap()
}

/// The payload in a Markdown comment cut to a small limit still keeps the summary whole.
#[test]
fn markdown_cut_keeps_the_hostile_summary_whole_and_escaped() {
    let (_, hostile) = pair();
    let summary = markdown::summary(&hostile);
    let max = summary.chars().count() + 400;
    let md = markdown::render(&hostile, max);
    assert!(md.starts_with(&summary));
    assert!(md.chars().count() <= max, "{} > {max}", md.chars().count());
    assert!(md.contains("_Cut to stay under"));
    assert!(md_shape(&md).html.iter().all(|h| own_html(h)));
}

use regex::Regex;
