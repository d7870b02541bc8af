//! Fuzz target: every plan the validator accepts compiles and renders in every format without a
//! panic — the whole `swing plan --offline` pipeline (validate → compile → view → text,
//! Markdown, JSON, DOT, Mermaid flowchart and Gantt). Must not: do IO or skip a renderer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swing_engine::compile::CompileOptions;
use swing_engine::render::{self, Format, RenderOptions};

const FORMATS: [Format; 6] = [
    Format::Text,
    Format::Markdown,
    Format::Json,
    Format::Dot,
    Format::Mermaid,
    Format::Gantt,
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let checked = swing_engine::validate::check_source("fuzz.yaml", &text);
    let has_errors = checked.has_errors();
    let Some(plan) = checked.plan else { return };
    assert!(!has_errors, "a plan is produced only without errors");
    let options = CompileOptions {
        offline: true,
        file: None,
    };
    // Every compile error is a bug of compile itself (dependency, order, invariant), never a
    // property of a valid plan: so a valid plan must compile.
    let view = match swing_engine::view::plan_view(&plan, &options) {
        Ok(view) => view,
        Err(e) => panic!("a valid plan did not compile: {e}"),
    };
    for format in FORMATS {
        let out = render::render(&view, format, RenderOptions::default());
        assert!(!out.is_empty(), "{format:?} rendered nothing");
    }
    let _ = render::render(&view, Format::Text, RenderOptions {
            color: true,
            ..RenderOptions::default()
        });
    let _ = render::render_many(&[view.clone(), view], Format::Markdown, RenderOptions::default());
});
