//! Tests of the camt parser.

#[test]
#[ignore]
fn dump() {
    let path = std::env::var("CAMT_DUMP").unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let parsed = crate::parse::parse(&path, &bytes, &Default::default());
    match parsed {
        Ok(p) => {
            println!("{}", serde_json::to_string_pretty(&p.statements).unwrap());
            for w in p.warnings {
                println!("WARN {w:?}");
            }
        }
        Err(e) => println!("ERR {e}"),
    }
}
