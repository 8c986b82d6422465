//! Golden files: each statement under `tests/golden/<format>/` sits beside `<name>.json`, the exact
//! `bankrec parse --json` output expected for it. `BLESS=1 cargo test golden` rewrites the JSON
//! after a deliberate change (review the diff before committing).

use std::path::{Path, PathBuf};

use bankrec::parse::{parse, ParseOptions};

fn golden_inputs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(golden_inputs(&path));
        } else if path.extension().is_none_or(|e| e != "json" && e != "toml") {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn every_golden_statement_parses_to_its_expected_json() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let inputs = golden_inputs(&root);
    assert!(!inputs.is_empty(), "no golden files under {}", root.display());
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for input in &inputs {
        let name = input.strip_prefix(&root).unwrap().display().to_string();
        let bytes = std::fs::read(input).unwrap();
        let json = match parse(&name, &bytes, &ParseOptions::default()) {
            Ok(parsed) => serde_json::to_string_pretty(&parsed.to_json()).unwrap() + "\n",
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let expected_path = input.with_extension(format!(
            "{}json",
            input.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default()
        ));
        if bless {
            std::fs::write(&expected_path, &json).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(want) if want == json => {}
            Ok(_) => failures.push(format!("{name}: output differs from {}", expected_path.display())),
            Err(_) => failures.push(format!("{name}: no {} (run with BLESS=1)", expected_path.display())),
        }
    }
    assert!(failures.is_empty(), "golden failures:\n  {}", failures.join("\n  "));
}
