//! Snapshot tests of `swing plan`'s renderers: every example plan × text, Markdown, JSON and
//! Mermaid (flowchart + Gantt), through the same calls the CLI makes (validate → compile →
//! view → render). Snapshots live in `tests/snapshots/`; review changes with `cargo insta
//! review` (or the `.snap.new` files) and read them as an operator at 2 a.m. would.
//!
//! Must not: reach the network or depend on the machine (paths are made relative).

use std::path::Path;

use swing_engine::compile::CompileOptions;
use swing_engine::render::{self, Format, RenderOptions};
use swing_schema::output::PlanView;

fn view_of(path: &Path) -> PlanView {
    let checked = swing_engine::validate::check_file(path);
    let plan = checked
        .plan
        .unwrap_or_else(|| panic!("{} is not valid: {:?}", path.display(), checked.diagnostics));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let opts = CompileOptions {
        offline: true,
        file: Some(format!("plans/examples/{name}")),
    };
    swing_engine::view::plan_view(&plan, &opts).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn name(path: &Path) -> String {
    path.file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn text() {
    insta::glob!("../plans/examples", "*.yaml", |path| {
        let v = view_of(path);
        insta::assert_snapshot!(
            format!("{}-text", name(path)),
            render::render(&v, Format::Text, RenderOptions::default())
        );
    });
}

#[test]
fn markdown() {
    insta::glob!("../plans/examples", "*.yaml", |path| {
        let v = view_of(path);
        let md = render::render(&v, Format::Markdown, RenderOptions::default());
        assert!(md.chars().count() <= render::markdown::MAX_CHARS);
        insta::assert_snapshot!(format!("{}-markdown", name(path)), md);
    });
}

#[test]
fn json() {
    insta::glob!("../plans/examples", "*.yaml", |path| {
        let v = view_of(path);
        let json = render::render(&v, Format::Json, RenderOptions::default());
        // The JSON reads back into the same view (what `swing show` relies on).
        let back: PlanView = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        insta::assert_snapshot!(format!("{}-json", name(path)), json);
    });
}

#[test]
fn mermaid() {
    insta::glob!("../plans/examples", "*.yaml", |path| {
        let v = view_of(path);
        let both = format!(
            "{}\n%% ---- gantt ----\n{}",
            render::render(&v, Format::Mermaid, RenderOptions::default()),
            render::render(&v, Format::Gantt, RenderOptions::default())
        );
        insta::assert_snapshot!(format!("{}-mermaid", name(path)), both);
    });
}
