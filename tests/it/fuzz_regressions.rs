//! Replays every input under `tests/fuzz-regressions/<target>/` — inputs that once crashed a
//! fuzzer, and hostile inputs written by hand (amounts that overflow a `Decimal` when summed) —
//! through the parser its folder names. Each must give a statement or an error naming the file,
//! never a panic.

use std::path::Path;

use bankrec::parse::{parse, Format, ParseOptions};

#[test]
fn no_recorded_hostile_input_makes_a_parser_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut replayed = 0;
    for dir in std::fs::read_dir(&root).unwrap().flatten() {
        let target = dir.file_name().to_string_lossy().to_string();
        let format = match target.as_str() {
            "detect" => None,
            "camt" => Some(Format::Camt053),
            other => Some(other.parse::<Format>().unwrap_or_else(|e| panic!("folder {other}: {e}"))),
        };
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = format!("{target}/{}", file.file_name().to_string_lossy());
            let bytes = std::fs::read(file.path()).unwrap();
            let options = ParseOptions { format, ..ParseOptions::default() };
            let outcome = std::panic::catch_unwind(|| parse(&name, &bytes, &options));
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => assert!(e.to_string().contains(&name), "{name}: the error does not name the file: {e}"),
                Err(_) => panic!("{name} makes the parser panic"),
            }
            replayed += 1;
        }
    }
    assert!(replayed >= 3, "the regression inputs are missing ({replayed} found)");
}
