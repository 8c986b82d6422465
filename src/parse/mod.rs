//! Statement import: format detection by content, one parser per format, and the checks every
//! parsed statement goes through (ids for lines without one, periods, balance check).
//!
//! Each parser reads the whole file as bytes (the CLI memory-maps files, so a large statement costs
//! address space, not heap) and returns domain [`Statement`]s or a [`ParseError`] naming the file,
//! the line (and column or tag) and what was expected.

pub mod bai2;
pub mod camt;
pub mod csv;
pub mod mt940;
pub mod ofx;
pub mod qif;
pub mod text;

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{BalanceCheck, Currency, IdSource, Statement};
pub use text::{DateOrder, DecimalSeparator};

/// A statement file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// Delimited text (comma, semicolon, tab, pipe).
    #[serde(rename = "csv")]
    Csv,
    /// OFX 1.x (SGML) or 2.x (XML), including QFX and QBO.
    #[serde(rename = "ofx")]
    Ofx,
    /// Quicken Interchange Format.
    #[serde(rename = "qif")]
    Qif,
    /// ISO 20022 bank-to-customer statement.
    #[serde(rename = "camt.053")]
    Camt053,
    /// ISO 20022 intraday account report.
    #[serde(rename = "camt.052")]
    Camt052,
    /// ISO 20022 debit/credit notification.
    #[serde(rename = "camt.054")]
    Camt054,
    /// SWIFT MT940 customer statement.
    #[serde(rename = "mt940")]
    Mt940,
    /// SWIFT MT942 interim transaction report.
    #[serde(rename = "mt942")]
    Mt942,
    /// BAI2 cash management balance report.
    #[serde(rename = "bai2")]
    Bai2,
}

impl Format {
    /// The name used in JSON output and on the command line.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ofx => "ofx",
            Format::Qif => "qif",
            Format::Camt053 => "camt.053",
            Format::Camt052 => "camt.052",
            Format::Camt054 => "camt.054",
            Format::Mt940 => "mt940",
            Format::Mt942 => "mt942",
            Format::Bai2 => "bai2",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "csv" | "tsv" | "ssv" => Format::Csv,
            "ofx" | "qfx" | "qbo" => Format::Ofx,
            "qif" => Format::Qif,
            "camt" | "camt.053" | "camt053" => Format::Camt053,
            "camt.052" | "camt052" => Format::Camt052,
            "camt.054" | "camt054" => Format::Camt054,
            "mt940" | "sta" => Format::Mt940,
            "mt942" => Format::Mt942,
            "bai2" | "bai" => Format::Bai2,
            _ => return Err(format!("unknown format {s:?} (expected csv, ofx, qif, camt, mt940, mt942 or bai2)")),
        })
    }
}

/// What kind of problem a [`ParseError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParseErrorKind {
    /// The content matches no supported format.
    UnknownFormat,
    /// The file is empty or holds no statement data at all.
    Empty,
    /// The structure is broken (missing tag, unexpected record, bad XML...).
    Syntax,
    /// A required field is missing.
    MissingField,
    /// An amount could not be read.
    InvalidAmount,
    /// A date could not be read.
    InvalidDate,
    /// A currency code is not ISO 4217.
    InvalidCurrency,
    /// A control total or record count in the file does not match its content (BAI2).
    ControlTotal,
    /// The file is an error response from the bank (OFX status), not a statement.
    BankError,
    /// A valid file of a kind bankrec does not import (investment statements...).
    Unsupported,
}

/// A statement file that could not be read. `Display` gives `file:line:column: message (tag)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
pub struct ParseError {
    /// The file (or upload) name.
    pub file: String,
    /// The format being parsed, once known.
    pub format: Option<Format>,
    /// 1-based line.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// The tag, record or field at fault (`TRNAMT`, `:61:`, `16`, `amount`...).
    pub field: Option<String>,
    /// The kind of problem.
    pub kind: ParseErrorKind,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if let Some(format) = self.format {
            write!(f, ": {format}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Something the parser accepted but a person should know about (a balance that does not add up,
/// a line it skipped and why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// 1-based line, when it concerns one.
    pub line: Option<usize>,
    /// Index of the statement in the file, when it concerns one.
    pub statement: Option<usize>,
    /// What happened.
    pub message: String,
}

/// Options that override what the parser would detect.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ParseOptions {
    /// Parse as this format instead of detecting it.
    pub format: Option<Format>,
    /// Currency for files that do not state one (QIF, most CSV).
    pub currency: Option<Currency>,
    /// Day/month order for files where it is ambiguous (QIF, CSV).
    pub date_order: Option<DateOrder>,
    /// Account id for files that do not carry one (QIF, CSV).
    pub account_id: Option<String>,
    /// An explicit CSV column mapping; overrides CSV detection.
    pub csv_profile: Option<csv::CsvProfile>,
}

/// The input every format parser gets.
pub struct Source<'a> {
    /// The file name, for error messages.
    pub name: &'a str,
    /// The raw bytes.
    pub bytes: &'a [u8],
    /// The caller's overrides.
    pub options: &'a ParseOptions,
    /// Called now and then with the number of bytes consumed so far (progress bars).
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl<'a> Source<'a> {
    /// An error at a line (and optionally column) of this file.
    pub fn error(
        &self,
        format: Format,
        line: Option<usize>,
        kind: ParseErrorKind,
        message: impl Into<String>,
    ) -> ParseError {
        ParseError {
            file: self.name.to_string(),
            format: Some(format),
            line,
            column: None,
            field: None,
            kind,
            message: message.into(),
        }
    }

    /// The currency to use when the file does not state one.
    pub fn fallback_currency(&self) -> Currency {
        self.options.currency.unwrap_or(Currency::XXX)
    }

    /// Reports progress (bytes consumed) to the caller, if it asked.
    pub fn report_progress(&self, consumed: usize) {
        if let Some(p) = self.progress {
            p(consumed as u64);
        }
    }
}

impl ParseError {
    /// Adds the column.
    pub fn at_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    /// Adds the tag, record or field at fault.
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// What a format parser returns.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The statements, in file order.
    pub statements: Vec<Statement>,
    /// Things a person should know.
    pub warnings: Vec<Warning>,
}

/// A parsed statement file.
#[derive(Debug, Clone, Serialize)]
pub struct ParsedFile {
    /// The format it was read as.
    pub format: Format,
    /// The statements, in file order; every transaction has an id.
    pub statements: Vec<Statement>,
    /// Things a person should know (including balance mismatches).
    pub warnings: Vec<Warning>,
}

impl ParsedFile {
    /// Total number of transactions across statements.
    pub fn transaction_count(&self) -> usize {
        self.statements.iter().map(|s| s.transactions.len()).sum()
    }

    /// The `bankrec parse --json` shape: format, then per statement the account, currency,
    /// period, balances and transactions (amounts as decimal strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{json, Value};
        let money = |m: &Option<crate::domain::Money>| m.map(|m| Value::String(m.to_fixed())).unwrap_or(Value::Null);
        let statements: Vec<Value> = self
            .statements
            .iter()
            .map(|s| {
                json!({
                    "account_id": s.account.id,
                    "currency": s.currency.code(),
                    "start_date": s.start_date.map(|d| d.to_string()),
                    "end_date": s.end_date.map(|d| d.to_string()),
                    "opening_balance": money(&s.opening_balance),
                    "closing_balance": money(&s.closing_balance),
                    "transactions": s.transactions.iter().map(|t| json!({
                        "id": t.id,
                        "date": t.booking_date.to_string(),
                        "amount": t.amount.to_fixed(),
                        "description": t.description,
                        "payee": t.payee,
                        "reference": t.reference,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({ "format": self.format.as_str(), "statements": statements })
    }
}

/// Guesses the format from the content (never from the file name).
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let head_len = bytes.len().min(64 * 1024);
    let head = String::from_utf8_lossy(&bytes[..head_len]);
    let head = head.trim_start_matches('\u{feff}');
    let trimmed = head.trim_start();
    let upper_start: String = trimmed.chars().take(4096).collect::<String>().to_ascii_uppercase();

    if upper_start.contains("OFXHEADER") || upper_start.contains("<OFX>") || upper_start.contains("<OFX ") {
        return Some(Format::Ofx);
    }
    if let Some(pos) = head.find("urn:iso:std:iso:20022:tech:xsd:camt.") {
        let kind = &head[pos + "urn:iso:std:iso:20022:tech:xsd:camt.".len()..];
        return Some(if kind.starts_with("052") {
            Format::Camt052
        } else if kind.starts_with("054") {
            Format::Camt054
        } else {
            Format::Camt053
        });
    }
    if trimmed.starts_with('<') {
        if head.contains("BkToCstmrStmt") {
            return Some(Format::Camt053);
        }
        if head.contains("BkToCstmrAcctRpt") {
            return Some(Format::Camt052);
        }
        if head.contains("BkToCstmrDbtCdtNtfctn") {
            return Some(Format::Camt054);
        }
        if upper_start.contains("<STMTTRNRS>") || upper_start.contains("<STMTRS>") || upper_start.contains("<CCSTMTRS>")
        {
            return Some(Format::Ofx);
        }
    }
    // BAI2 records end with `/` and several may share a physical line, so a group header can
    // follow a `/` rather than start a line.
    if trimmed.starts_with("01,")
        && head.lines().any(|l| l.starts_with("02,") || l.split('/').skip(1).any(|r| r.trim_start().starts_with("02,")))
    {
        return Some(Format::Bai2);
    }
    // QIF may open with `#` comment lines or a stray `^` before its first header.
    let first_qif_line =
        trimmed.lines().map(str::trim_start).find(|l| !(l.is_empty() || l.starts_with('#') || l.starts_with('^')));
    if first_qif_line.is_some_and(|l| {
        ["!TYPE:", "!ACCOUNT", "!OPTION:", "!CLEAR:"]
            .iter()
            .any(|p| l.get(..p.len()).is_some_and(|s| s.eq_ignore_ascii_case(p)))
    }) {
        return Some(Format::Qif);
    }
    if looks_like_mt940(head) || starts_with_swift_tag(trimmed) {
        return Some(if head.contains(":34F:") && !head.contains(":60F:") && !head.contains(":60M:") {
            Format::Mt942
        } else {
            Format::Mt940
        });
    }
    if looks_like_qif_body(trimmed) {
        return Some(Format::Qif);
    }
    if csv::looks_like_csv(head) {
        return Some(Format::Csv);
    }
    None
}

fn looks_like_mt940(head: &str) -> bool {
    let has = |tag: &str| head.contains(tag);
    (has(":20:") || has(":25:"))
        && (has(":60F:") || has(":60M:") || has(":61:") || has(":62F:") || has(":28C:") || has(":34F:"))
}

/// A first line such as `:20:` or `:60F:`: a SWIFT field tag, whatever follows.
fn starts_with_swift_tag(trimmed: &str) -> bool {
    let b = trimmed.as_bytes();
    let digits = b.len() > 3 && b[0] == b':' && b[1].is_ascii_digit() && b[2].is_ascii_digit();
    digits && (b[3] == b':' || (b.len() > 4 && b[3].is_ascii_uppercase() && b[4] == b':'))
}

fn looks_like_qif_body(trimmed: &str) -> bool {
    // QIF without a header still has one-letter fields and `^` record ends.
    let mut lines = trimmed.lines().take(40).filter(|l| !l.trim().is_empty());
    let ends = trimmed.lines().take(200).filter(|l| l.trim() == "^").count();
    ends > 0 && lines.all(|l| l.trim() == "^" || l.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
}

/// Parses a statement file: detects (or takes) its format, runs that parser, then gives every line
/// without a bank id a stable fingerprint id, fills statement periods and checks balances.
pub fn parse(name: &str, bytes: &[u8], options: &ParseOptions) -> Result<ParsedFile, ParseError> {
    parse_with_progress(name, bytes, options, None)
}

/// [`parse`] that reports progress (bytes consumed) to `progress`.
pub fn parse_with_progress(
    name: &str,
    bytes: &[u8],
    options: &ParseOptions,
    progress: Option<&(dyn Fn(u64) + Sync)>,
) -> Result<ParsedFile, ParseError> {
    let empty = |format: Option<Format>, message: &str| ParseError {
        file: name.to_string(),
        format,
        line: None,
        column: None,
        field: None,
        kind: ParseErrorKind::Empty,
        message: message.into(),
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(empty(options.format, "the file is empty"));
    }
    let format = match options.format {
        Some(f) => f,
        None => detect(bytes).ok_or_else(|| ParseError {
            file: name.to_string(),
            format: None,
            line: None,
            column: None,
            field: None,
            kind: ParseErrorKind::UnknownFormat,
            message: "not a statement format bankrec reads (CSV, OFX/QFX/QBO, QIF, CAMT.052/053/054, MT940/MT942, BAI2); use --format to force one".into(),
        })?,
    };
    let source = Source { name, bytes, options, progress };
    let parsed = match format {
        Format::Csv => csv::parse(&source)?,
        Format::Ofx => ofx::parse(&source)?,
        Format::Qif => qif::parse(&source)?,
        Format::Camt053 | Format::Camt052 | Format::Camt054 => camt::parse(&source, format)?,
        Format::Mt940 | Format::Mt942 => mt940::parse(&source, format)?,
        Format::Bai2 => bai2::parse(&source)?,
    };
    Ok(finish(format, parsed))
}

/// Post-processing shared by every format.
fn finish(format: Format, parsed: Parsed) -> ParsedFile {
    let Parsed { mut statements, mut warnings } = parsed;
    for (index, statement) in statements.iter_mut().enumerate() {
        assign_fingerprints(statement);
        fill_period(statement);
        if let BalanceCheck::Mismatch { .. } = statement.balance_check() {
            warnings.push(Warning {
                line: None,
                statement: Some(index),
                message: format!(
                    "statement {} of account {}: {}",
                    index + 1,
                    statement.account.id,
                    statement.balance_check()
                ),
            });
        }
    }
    ParsedFile { format, statements, warnings }
}

fn fill_period(statement: &mut Statement) {
    if statement.start_date.is_some() && statement.end_date.is_some() {
        return;
    }
    // One pass for both ends: a million lines are read from memory once, not twice.
    let mut dates = statement.transactions.iter().map(|t| t.booking_date);
    let Some(first) = dates.next() else { return };
    let (earliest, latest) = dates.fold((first, first), |(lo, hi), d| (lo.min(d), hi.max(d)));
    statement.start_date.get_or_insert(earliest);
    statement.end_date.get_or_insert(latest);
}

/// Normalises text for fingerprints: case-folded, alphanumerics only, single spaces.
pub fn normalise_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    normalise_into(&mut out, s);
    out
}

/// [`normalise_text`] into a buffer the caller reuses.
fn normalise_into(out: &mut String, s: &str) {
    out.clear();
    for word in s.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
}

/// Gives every transaction without a bank id a fingerprint id: a hash of account, date, amount,
/// normalised description/payee and the ordinal among otherwise identical lines of that day. The
/// ordinal is counted among identical lines only, so an overlapping export that starts mid-day
/// still yields the same ids for the same lines.
fn assign_fingerprints(statement: &mut Statement) {
    use std::fmt::Write as _;
    let mut seen: HashMap<[u8; 32], u32> = HashMap::new();
    let account = statement.account.id.clone();
    // Buffers reused across lines: this runs for every line of files without ids (most CSV).
    let (mut text, mut number) = (String::new(), String::new());
    for t in statement.transactions.iter_mut().filter(|t| t.id_source == IdSource::Fingerprint) {
        let mut h = Sha256::new();
        h.update(account.as_bytes());
        h.update([0]);
        number.clear();
        let _ = write!(number, "{}", t.booking_date);
        h.update(number.as_bytes());
        h.update([0]);
        number.clear();
        let _ = write!(number, "{}", t.amount.amount().normalize());
        h.update(number.as_bytes());
        h.update(t.amount.currency().code().as_bytes());
        h.update([0]);
        normalise_into(&mut text, &t.description);
        h.update(text.as_bytes());
        h.update([0]);
        normalise_into(&mut text, t.payee.as_deref().unwrap_or(""));
        h.update(text.as_bytes());
        let key: [u8; 32] = h.clone().finalize().into();
        let ordinal = seen.entry(key).and_modify(|n| *n += 1).or_insert(0);
        h.update(ordinal.to_be_bytes());
        let digest = h.finalize();
        let mut id = String::with_capacity(23);
        id.push_str("fp-");
        hex_into(&mut id, &digest[..10]);
        t.id = id.into_boxed_str();
    }
}

fn hex_into(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountIdent, BankTransaction, Money};
    use chrono::NaiveDate;
    use rust_decimal::Decimal;

    fn txn(day: u32, amount: i64, text: &str) -> BankTransaction {
        let mut t = BankTransaction::new(
            NaiveDate::from_ymd_opt(2024, 5, day).unwrap(),
            Money::new(Decimal::new(amount, 2), Currency::EUR),
        );
        t.description = text.into();
        t
    }

    #[test]
    fn fingerprints_are_stable_across_overlapping_exports() {
        let account = AccountIdent { id: "NL01".into(), ..Default::default() };
        let mut full = Statement::new(account.clone(), Currency::EUR);
        full.transactions =
            vec![txn(1, -500, "Coffee"), txn(2, -500, "Coffee"), txn(2, -500, "COFFEE!"), txn(2, 100, "x")];
        let mut overlap = Statement::new(account, Currency::EUR);
        overlap.transactions = vec![txn(2, -500, "coffee"), txn(2, -500, "Coffee"), txn(2, 100, "x")];
        assign_fingerprints(&mut full);
        assign_fingerprints(&mut overlap);
        let ids = |s: &Statement| s.transactions.iter().map(|t| t.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&full)[1..], ids(&overlap)[..]);
        // two identical lines on one day get different ids
        assert_ne!(full.transactions[1].id, full.transactions[2].id);
    }

    #[test]
    fn formats_are_detected_by_content() {
        assert_eq!(detect(b"OFXHEADER:100\nDATA:OFXSGML\n<OFX>"), Some(Format::Ofx));
        assert_eq!(detect(b"!Type:Bank\nD1/1/24\nT-1\n^\n"), Some(Format::Qif));
        assert_eq!(detect(b"01,BANK,CUST,240101,0000,1,,,2/\n02,CUST,BANK,1,240101,,USD,2/\n"), Some(Format::Bai2));
        assert_eq!(detect(b":20:STARTUMS\n:25:123/456\n:28C:1\n:60F:C240101EUR0,00\n"), Some(Format::Mt940));
        assert_eq!(
            detect(b"<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\">"),
            Some(Format::Camt053)
        );
    }

    #[test]
    fn an_empty_file_is_refused_with_its_name() {
        let err = parse("empty.qif", b"  \n", &ParseOptions::default()).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::Empty);
        assert!(err.to_string().starts_with("empty.qif"));
    }

    #[test]
    fn unknown_content_is_refused_as_unknown_format() {
        let err = parse("x.bin", b"\x00\x01\x02 hello", &ParseOptions::default()).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::UnknownFormat);
    }
}
