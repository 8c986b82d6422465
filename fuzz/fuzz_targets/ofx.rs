//! Fuzz target: the ofx parser must return a statement or an error for any bytes, never panic.
#![no_main]

use bankrec::parse::{parse, Format, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ParseOptions { format: Some(Format::Ofx), ..ParseOptions::default() };
    let _ = parse("fuzz.input", data, &options);
});
