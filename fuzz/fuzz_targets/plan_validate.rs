//! Fuzz target: the plan loader and validator must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let checked = swing_engine::validate::check_source("fuzz.yaml", &text);
    // A plan is only produced when there is no error.
    if checked.plan.is_some() {
        assert!(!checked.has_errors());
    }
});
