//! Rule runtime tests: decisions reach Rust, and broken or hostile scripts end quickly with an
//! error naming the rule, line and column.

use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};
use rust_decimal::Decimal;

use super::*;

fn bank() -> Dynamic {
    let mut m = Map::new();
    m.insert("amount".into(), Dynamic::from(Decimal::new(10050, 2)));
    m.insert("text".into(), Dynamic::from("ACME GMBH INV-00123".to_string()));
    m.insert("check_number".into(), Dynamic::UNIT);
    Dynamic::from(m)
}

fn record() -> Dynamic {
    let mut m = Map::new();
    m.insert("amount".into(), Dynamic::from(Decimal::new(10050, 2)));
    m.insert("reference".into(), Dynamic::from("INV-00123".to_string()));
    m.insert("kind".into(), Dynamic::from("invoice".to_string()));
    Dynamic::from(m)
}

fn features() -> Dynamic {
    let mut m = Map::new();
    m.insert("exact_amount".into(), Dynamic::from(true));
    m.insert("days".into(), Dynamic::from(3_i64));
    Dynamic::from(m)
}

fn run(name: &str, source: &str) -> (Result<Verdict, RuleError>, Duration) {
    let started = Instant::now();
    let out = RuleSet::compile(name, source).and_then(|set| set.judge_pair(&bank(), &record(), &features()));
    (out, started.elapsed())
}

fn runtime_kind(out: &Result<Verdict, RuleError>) -> Option<RuntimeFailure> {
    match out {
        Err(RuleError::Runtime { kind, .. }) => Some(*kind),
        _ => None,
    }
}

#[test]
fn the_default_rules_compile() {
    let set = RuleSet::defaults();
    assert!(set.as_ref().is_ok_and(|s| s.rules().len() == DEFAULT_RULES.len()), "{set:?}");
}

#[test]
fn an_accept_reaches_rust_with_its_confidence_as_a_decimal() {
    let (out, _) = run(
        "money",
        r#"fn pair(b, r, f) { if b.amount == r.amount && b.amount == 100.50 { accept(0.97, "same money") } else { () } }"#,
    );
    let verdict = out.unwrap_or_default();
    assert_eq!(verdict.decision, Decision::Accept { confidence: 0.97, reason: "same money".into() });
    assert_eq!(verdict.rule.as_deref(), Some("money"));
}

#[test]
fn the_first_accept_or_veto_wins_and_adjustments_accumulate_before_it() {
    let set = RuleSet::from_sources([
        ("a".to_string(), r#"fn pair(b, r, f) { adjust(1, "a") }"#.to_string()),
        ("b".to_string(), r#"fn pair(b, r, f) { veto("no") }"#.to_string()),
        ("c".to_string(), r#"fn pair(b, r, f) { accept(1) }"#.to_string()),
    ]);
    let verdict = set.and_then(|s| s.judge_pair(&bank(), &record(), &features())).unwrap_or_default();
    assert_eq!(verdict.decision, Decision::Veto { reason: "no".into() });
    assert_eq!(verdict.rule.as_deref(), Some("b"));
    assert_eq!(verdict.adjustments, vec![("a".to_string(), 1.0, "a".to_string())]);
}

#[test]
fn native_helpers_are_callable_from_scripts() {
    let (out, _) = run(
        "helpers",
        r#"fn pair(b, r, f) {
            let ok = has_ref(b.text, r.reference) && similar("ACME GMBH", "Acme") > 0.9
                && days_between("2024-03-01", "2024-03-04") == 3 && business_days("2024-03-01", "2024-03-04") == 1
                && amount_within(100.00, 98.00, 1, 2.50) && refs_in(b.text).len() == 2 && tokens("a b").len() == 2
                && digits("INV-00123") == "123";
            if ok { accept(1) } else { veto("helpers disagree") }
        }"#,
    );
    assert!(matches!(out.map(|v| v.decision), Ok(Decision::Accept { .. })));
}

#[test]
fn a_syntax_error_names_the_rule_line_and_column() {
    let (out, _) = run("broken", "fn pair(b, r, f) {\n    let x = ;\n}");
    match out {
        Err(RuleError::Compile { rule, line, column, .. }) => {
            assert_eq!(rule, "broken");
            assert_eq!(line, Some(2));
            assert!(column.is_some());
        }
        other => panic!("expected a compile error, got {other:?}"),
    }
}

#[test]
fn a_script_without_an_entry_point_is_refused() {
    let (out, _) = run("empty", "let x = 1;");
    assert!(matches!(out, Err(RuleError::NoEntryPoint { .. })));
    let (wrong_arity, _) = run("arity", "fn pair(b) { () }");
    assert!(matches!(wrong_arity, Err(RuleError::NoEntryPoint { .. })));
}

#[test]
fn an_endless_loop_stops_at_the_operation_limit_quickly() {
    // The operation limit carries no position of its own: the error points at the function.
    let (out, took) = run("spin", "// spins\nfn pair(b, r, f) {\n  loop { }\n}");
    assert_eq!(runtime_kind(&out), Some(RuntimeFailure::TooManyOperations), "{out:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let msg = out.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("rule `spin`") && msg.contains("line 2"), "{msg}");
}

#[test]
fn deep_recursion_stops_at_the_call_depth_limit() {
    let (out, took) = run("deep", "fn down(n) { down(n + 1) }\nfn pair(b, r, f) { down(0) }");
    assert_eq!(runtime_kind(&out), Some(RuntimeFailure::StackOverflow), "{out:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_huge_string_stops_at_the_size_limit() {
    let (out, took) = run("big", "fn pair(b, r, f) { let s = \"xxxxxxxxxxxxxxxx\"; loop { s += s; } }");
    assert_eq!(runtime_kind(&out), Some(RuntimeFailure::DataTooLarge), "{out:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let (arr, _) = run("arr", "fn pair(b, r, f) { let a = [1]; loop { a += a; } }");
    assert_eq!(runtime_kind(&arr), Some(RuntimeFailure::DataTooLarge), "{arr:?}");
}

#[test]
fn eval_and_imports_are_not_available() {
    let (out, _) = run("evil", r#"fn pair(b, r, f) { eval("1 + 1") }"#);
    assert!(out.is_err(), "{out:?}");
    let (import, _) = run("import", "import \"std\" as s;\nfn pair(b, r, f) { () }");
    assert!(matches!(import, Err(RuleError::Compile { .. })), "{import:?}");
}

#[test]
fn unknown_variables_and_fields_are_errors_not_silent_unit() {
    let (out, _) = run("typo", "fn pair(b, r, f) { undefined_thing }");
    assert!(matches!(out, Err(RuleError::Compile { .. }) | Err(RuleError::Runtime { .. })), "{out:?}");
    let (field, _) = run("field", "fn pair(b, r, f) { if b.no_such_field == 1 { veto() } else { () } }");
    assert_eq!(runtime_kind(&field), Some(RuntimeFailure::Script), "{field:?}");
}

#[test]
fn a_wrong_return_value_is_an_error() {
    let (out, _) = run("wrong", "fn pair(b, r, f) { 42 }");
    assert_eq!(runtime_kind(&out), Some(RuntimeFailure::BadReturn), "{out:?}");
}

#[test]
fn rules_load_from_a_folder_in_file_name_order() {
    let dir = std::env::temp_dir().join(format!("bankrec-rules-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("20-b.rhai"), "fn pair(b, r, f) { () }");
    let _ = std::fs::write(dir.join("10-a.rhai"), "fn pair(b, r, f) { () }");
    let _ = std::fs::write(dir.join("notes.txt"), "not a rule");
    let set = RuleSet::load_dir(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let names: Vec<String> = set.map(|s| s.rules().iter().map(|r| r.name().to_string()).collect()).unwrap_or_default();
    assert_eq!(names, vec!["10-a".to_string(), "20-b".to_string()]);
}

#[test]
fn the_examples_in_the_rule_writers_guide_compile_and_run() {
    let guide = include_str!("../../rules/README.md");
    let mut examples = Vec::new();
    let mut rest = guide;
    while let Some(start) = rest.find("```rhai\n") {
        let body = &rest[start + 8..];
        let Some(end) = body.find("```") else { break };
        examples.push(&body[..end]);
        rest = &body[end..];
    }
    assert!(examples.len() >= 3);
    let mut bank = Map::new();
    for (k, v) in [("text", "CARD SETTLEMENT"), ("name", "landlord property management")] {
        bank.insert(k.into(), Dynamic::from(v.to_string()));
    }
    bank.insert("amount".into(), Dynamic::from(Decimal::new(9860, 2)));
    let mut record = Map::new();
    record.insert("kind".into(), Dynamic::from("invoice".to_string()));
    record.insert("name".into(), Dynamic::from("landlord property management".to_string()));
    record.insert("amount".into(), Dynamic::from(Decimal::new(10000, 2)));
    let mut f = Map::new();
    f.insert("exact_amount".into(), Dynamic::from(true));
    f.insert("days".into(), Dynamic::from(-2_i64));
    for (i, source) in examples.iter().enumerate().skip(1) {
        let set = RuleSet::compile(&format!("example-{i}"), source);
        let verdict = set.and_then(|s| {
            s.judge_pair(&Dynamic::from(bank.clone()), &Dynamic::from(record.clone()), &Dynamic::from(f.clone()))
        });
        assert!(verdict.is_ok(), "example {i}: {verdict:?}");
    }
}
