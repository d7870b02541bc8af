//! Fuzz target: the tolerant command-API XML parsers must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = swing_providers::beyondtrust::xml::parse_check_health(&text);
    let _ = swing_providers::beyondtrust::xml::parse_command_result(&text);
    let _ = swing_providers::beyondtrust::xml::parse_api_info(&text);
});
