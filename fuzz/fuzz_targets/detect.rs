//! Fuzz target: format detection plus whichever parser it picks must never panic.
#![no_main]

use bankrec::parse::{parse, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse("fuzz.input", data, &ParseOptions::default());
});
