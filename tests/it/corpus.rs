//! Every real statement file in the shared corpus (`../shared/corpus`, or `BANKREC_CORPUS`) is parsed
//! and the facts its source project asserts (`expected.json`) are checked: account ids, currencies,
//! transaction counts, opening and closing balances, the date of the first line. Files the source
//! says must fail must be rejected with an error that names the file, or produce no wrong number.
//!
//! Where a format has no balances (QIF) and the source states a closing balance, it is the source's
//! running total from zero, so it is compared with the sum of the parsed lines.
//!
//! Where a format has no opening balance (OFX) and the source states one, the source derived it as
//! closing − lines, and that is what is compared.
//!
//! A few files are deliberately read differently from their source project's parser; each is listed
//! in [`DEVIATIONS`] with the reason and the exact outcome bankrec must produce instead, which is
//! asserted just as strictly.
//!
//! Outside CI a missing corpus skips the suite with a message; with `CI=true` it fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use bankrec::parse::{parse, ParseErrorKind, ParseOptions, ParsedFile};
use rust_decimal::Decimal;
use serde_json::Value;

/// What bankrec must do instead of what the source project asserts.
enum Instead {
    /// Reject the file with this kind of error.
    Reject(ParseErrorKind),
    /// Import this many transactions in all; every other asserted fact still holds.
    Transactions(usize),
    /// These facts do not apply (the source invents them); every other asserted fact still holds.
    Without(&'static [&'static str]),
}

/// Files bankrec deliberately reads differently from their source project, and why.
const DEVIATIONS: &[(&str, Instead, &str)] = &[
    (
        "ofx/ofxparse__error_message.ofx",
        Instead::Reject(ParseErrorKind::BankError),
        "an OFX error response is reported as the bank's error, not imported as an empty statement",
    ),
    (
        "ofx/ofxparse__signon_fail.ofx",
        Instead::Reject(ParseErrorKind::BankError),
        "a sign-on failure is reported as the bank's error, not imported as an empty statement",
    ),
    (
        "ofx/ofxparse__bank_small.ofx",
        Instead::Reject(ParseErrorKind::Empty),
        "an OFX body with no statement at all is refused as empty rather than imported as nothing",
    ),
    (
        "ofx/beangulp__beangulp-file_type_testdata-example.qfx",
        Instead::Reject(ParseErrorKind::Unsupported),
        "investment statements (trades, no cash lines) are not imported",
    ),
    (
        "ofx/reds__example-OfxDownload.qfx",
        Instead::Reject(ParseErrorKind::Unsupported),
        "investment statements (trades, no cash lines) are not imported",
    ),
    (
        "ofx/ofxparse__vanguard.ofx",
        Instead::Reject(ParseErrorKind::Unsupported),
        "its one asserted line is a mutual-fund sale (SELLMF), a trade, not a cash movement",
    ),
    (
        "ofx/ofxparse__ofx-v102-empty-tags.ofx",
        Instead::Transactions(1),
        "the source's count of 0 comes from its parser crashing on empty tags; the line itself is valid",
    ),
    (
        "camt/oca__test-camt053",
        Instead::Transactions(3),
        "a batch entry is one transaction with its TxDtls kept as details; the source splits it into its parts",
    ),
    (
        "camt/oca__test-camt053-txdtls",
        Instead::Transactions(1),
        "a batch entry is one transaction with its TxDtls kept as details; the source splits it into its parts",
    ),
    (
        "camt/oca__test-camt054",
        Instead::Without(&["opening_balance", "closing_balance"]),
        "the file states no balance; the source's 0.00 is its own default, not the bank's figure",
    ),
    (
        "camt/ofxstatement-iso20022__camt053.xml",
        Instead::Without(&["account_id"]),
        "the asserted IBAN comes from the source's configuration, not the file, whose account id is its Othr/Id",
    ),
    (
        "mt940/oca__test-rabo.swi",
        Instead::Without(&["statements"]),
        "statements without lines are kept (every `:20:` is a statement); the source drops the two empty ones",
    ),
    (
        "mt940/wolph-mt940__betterplace-sepa_snippet_broken.sta",
        Instead::Reject(ParseErrorKind::Syntax),
        "a corrupted `:86:` appears as a second `:25:` after a `:61:`; the source reads its text as the account id",
    ),
    (
        "mt940/wolph-mt940__self-provided-invalid_statement.sta",
        Instead::Reject(ParseErrorKind::UnknownFormat),
        "the lines \"1\" to \"10\" are not a statement; the source reports an empty one",
    ),
    (
        "csv/beangulp__examples-tests-csvbank-statement.csv",
        Instead::Without(&["currency"]),
        "the file names no currency; the source's USD comes from its importer configuration",
    ),
    (
        "csv/oca__original_currency.csv",
        Instead::Without(&["currency"]),
        "the file's only currency column says EUR; the source's USD is the currency of the journal it imported into",
    ),
    (
        "csv/oca__empty_lines_statement.csv",
        Instead::Without(&["opening_balance"]),
        "the file states no balance; the source's 0.00 is its own default, not the bank's figure",
    ),
    (
        "csv/ofxstatement__danske.csv",
        Instead::Without(&["opening_balance", "closing_balance"]),
        "the file states no balance; the source's 0.00 means \"not provided\"",
    ),
    (
        "csv/oca__multi_currency.csv",
        Instead::Transactions(2),
        "the file holds a USD and a EUR line and both are imported (one statement per currency); the source drops the EUR line",
    ),
    (
        "csv/ofxstatement__litas_esis.acc",
        Instead::Without(&["account_id"]),
        "the account id is the IBAN as written; the source glues the currency code (a separate field) onto it",
    ),
];

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("BANKREC_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if dir.join("expected.json").is_file() {
        return Some(dir);
    }
    let in_ci = std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false);
    assert!(!in_ci, "CI=true but the statement corpus is missing at {}", dir.display());
    eprintln!("corpus suite skipped: no corpus at {} (set BANKREC_CORPUS)", dir.display());
    None
}

/// The outcome for one corpus file.
pub struct Outcome {
    pub path: String,
    pub problems: Vec<String>,
}

fn dec(v: &Value) -> Option<Decimal> {
    v.as_str().and_then(|s| Decimal::from_str(s).ok())
}

fn check_account(i: usize, want: &Value, got: &[&bankrec::domain::Statement], problems: &mut Vec<String>) {
    let label = format!("account #{}", i + 1);
    if got.is_empty() {
        problems.push(format!("{label}: no parsed statement for it"));
        return;
    }
    if let Some(id) = want["account_id"].as_str() {
        if got[0].account.id != id {
            problems.push(format!("{label}: account id {:?}, expected {id:?}", got[0].account.id));
        }
    }
    if let Some(ccy) = want["currency"].as_str() {
        if got[0].currency.code() != ccy {
            problems.push(format!("{label}: currency {}, expected {ccy}", got[0].currency));
        }
    }
    if let Some(n) = want["transaction_count"].as_u64() {
        let count: usize = got.iter().map(|s| s.transactions.len()).sum();
        if count as u64 != n {
            problems.push(format!("{label}: {count} transactions, expected {n}"));
        }
    }
    if let Some(open) = dec(&want["opening_balance"]) {
        let last = got[got.len() - 1];
        match (got[0].opening_balance, last.closing_balance) {
            (Some(m), _) if m.amount() == open => {}
            (None, Some(close)) if close.amount() - got.iter().map(|s| s.total()).sum::<Decimal>() == open => {}
            (other, _) => problems.push(format!("{label}: opening balance {other:?}, expected {open}")),
        }
    }
    if let Some(close) = dec(&want["closing_balance"]) {
        let last = got[got.len() - 1];
        match last.closing_balance {
            Some(m) if m.amount() == close => {}
            Some(m) => problems.push(format!("{label}: closing balance {m:?}, expected {close}")),
            None => {
                let running: Decimal = got.iter().map(|s| s.total()).sum::<Decimal>()
                    + got[0].opening_balance.map(|m| m.amount()).unwrap_or_default();
                if running != close {
                    problems.push(format!("{label}: no closing balance and lines sum to {running}, expected {close}"));
                }
            }
        }
    }
}

fn check_facts(want: &Value, parsed: &ParsedFile, problems: &mut Vec<String>) {
    let statements = &parsed.statements;
    let accounts = want["accounts"].as_array().cloned().unwrap_or_default();
    if accounts.len() == statements.len() {
        for (i, a) in accounts.iter().enumerate() {
            check_account(i, a, &[&statements[i]], problems);
        }
    } else if !accounts.is_empty() {
        for (i, a) in accounts.iter().enumerate() {
            let group: Vec<_> = match a["account_id"].as_str() {
                Some(id) => statements.iter().filter(|s| s.account.id == id).collect(),
                None if accounts.len() == 1 => statements.iter().collect(),
                None => statements.get(i).into_iter().collect(),
            };
            check_account(i, a, &group, problems);
        }
    }
    if let Some(n) = want["total_transactions"].as_u64() {
        if parsed.transaction_count() as u64 != n {
            problems.push(format!("{} transactions in all, expected {n}", parsed.transaction_count()));
        }
    }
    if let Some(n) = want["statements"].as_u64().filter(|n| *n > 0) {
        if statements.len() as u64 != n {
            problems.push(format!("{} statements, expected {n}", statements.len()));
        }
    }
    if let Some(first) = want["first_date"].as_str() {
        let got = statements.iter().flat_map(|s| s.transactions.first()).next().map(|t| t.booking_date.to_string());
        if got.as_deref() != Some(first) {
            problems.push(format!("first transaction dated {got:?}, expected {first}"));
        }
    }
}

/// Parses every corpus file of `family` (its folder: csv, ofx, qif, camt, mt940, bai2) and returns
/// what went wrong for each.
pub fn run_family(dir: &std::path::Path, family: &str) -> Vec<Outcome> {
    let expected: BTreeMap<String, Value> =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).expect("read expected.json"))
            .expect("expected.json is valid JSON");
    let mut outcomes = Vec::new();
    for (path, want) in expected.iter().filter(|(p, _)| family == "*" || p.split('/').next() == Some(family)) {
        let bytes = std::fs::read(dir.join(path)).unwrap_or_else(|e| panic!("cannot read corpus file {path}: {e}"));
        let mut problems = Vec::new();
        let result = std::panic::catch_unwind(|| parse(path, &bytes, &ParseOptions::default()));
        if let Some((_, instead, why)) = DEVIATIONS.iter().find(|(p, _, _)| p == path) {
            let mut want = want.clone();
            let mut drop_facts = |facts: &[&str]| {
                for a in want["accounts"].as_array_mut().into_iter().flatten() {
                    for f in facts {
                        a[*f] = Value::Null;
                    }
                }
                for f in facts {
                    if want.get(*f).is_some() {
                        want[*f] = Value::Null;
                    }
                }
            };
            match instead {
                Instead::Transactions(_) => drop_facts(&["transaction_count", "total_transactions"]),
                Instead::Without(facts) => drop_facts(facts),
                Instead::Reject(_) => {}
            }
            match (result, instead) {
                (Ok(Err(err)), Instead::Reject(kind))
                    if err.kind == *kind && err.to_string().contains(path.as_str()) => {}
                (Ok(Ok(parsed)), Instead::Transactions(n)) if parsed.transaction_count() == *n => {
                    check_facts(&want, &parsed, &mut problems)
                }
                (Ok(Ok(parsed)), Instead::Without(_)) => check_facts(&want, &parsed, &mut problems),
                (Ok(other), _) => problems.push(format!("deliberate deviation ({why}) not met: got {other:?}")),
                (Err(_), _) => problems.push("the parser panicked".into()),
            }
            outcomes.push(Outcome { path: path.clone(), problems });
            continue;
        }
        match (result, want["must_fail"].as_bool()) {
            (Err(_), _) => problems.push("the parser panicked".into()),
            (Ok(Err(err)), Some(true)) => {
                if !err.to_string().contains(path.as_str()) || err.message.is_empty() {
                    problems.push(format!("rejected, but the error does not name the file: {err}"));
                }
            }
            (Ok(Err(err)), Some(false)) => problems.push(format!("rejected a file its source parses: {err}")),
            (Ok(Err(err)), None) => {
                if want["accounts"].as_array().is_some_and(|a| !a.is_empty()) {
                    problems.push(format!("rejected a file with asserted facts: {err}"));
                }
            }
            (Ok(Ok(parsed)), _) => check_facts(want, &parsed, &mut problems),
        }
        outcomes.push(Outcome { path: path.clone(), problems });
    }
    outcomes
}

fn assert_family(family: &str) {
    let Some(dir) = corpus_dir() else { return };
    let outcomes = run_family(&dir, family);
    assert!(!outcomes.is_empty(), "no corpus files for {family}");
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.problems.is_empty()).collect();
    let report: String =
        failed.iter().map(|o| format!("\n  {}:\n    - {}", o.path, o.problems.join("\n    - "))).collect();
    eprintln!("corpus {family}: {} of {} files pass", outcomes.len() - failed.len(), outcomes.len());
    assert!(failed.is_empty(), "{} of {} {family} corpus files fail:{report}", failed.len(), outcomes.len());
}

#[test]
fn every_csv_corpus_file_meets_its_sources_facts() {
    assert_family("csv");
}

#[test]
fn every_ofx_corpus_file_meets_its_sources_facts() {
    assert_family("ofx");
}

#[test]
fn every_qif_corpus_file_meets_its_sources_facts() {
    assert_family("qif");
}

#[test]
fn every_camt_corpus_file_meets_its_sources_facts() {
    assert_family("camt");
}

#[test]
fn every_mt940_corpus_file_meets_its_sources_facts() {
    assert_family("mt940");
}

#[test]
fn every_bai2_corpus_file_meets_its_sources_facts() {
    assert_family("bai2");
}
