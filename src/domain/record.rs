//! Books side of the domain: accounting records (invoices, bills, expenses, payments...) and
//! their CSV and JSON readers.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::{Currency, Money};

/// What kind of document a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A customer invoice (money in).
    Invoice,
    /// A supplier bill (money out).
    Bill,
    /// An expense (money out).
    Expense,
    /// A payment recorded in the books.
    Payment,
    /// A credit note.
    CreditNote,
    /// A manual journal entry touching the bank account.
    Journal,
    /// A check written or received.
    Check,
}

impl RecordKind {
    /// All kinds, in a stable order.
    pub const ALL: [RecordKind; 7] = [
        RecordKind::Invoice,
        RecordKind::Bill,
        RecordKind::Expense,
        RecordKind::Payment,
        RecordKind::CreditNote,
        RecordKind::Journal,
        RecordKind::Check,
    ];

    /// The snake_case name used in files and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            RecordKind::Invoice => "invoice",
            RecordKind::Bill => "bill",
            RecordKind::Expense => "expense",
            RecordKind::Payment => "payment",
            RecordKind::CreditNote => "credit_note",
            RecordKind::Journal => "journal",
            RecordKind::Check => "check",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RecordKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        RecordKind::ALL
            .into_iter()
            .find(|k| k.as_str() == norm || (norm == "cheque" && *k == RecordKind::Check))
            .ok_or_else(|| {
                format!(
                    "unknown record kind {s:?} (expected one of invoice, bill, expense, payment, credit_note, journal, check)"
                )
            })
    }
}

/// An entry in the books that should show up on the bank statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The books' own id (unique per tenant).
    pub id: String,
    /// Invoice, bill, ...
    pub kind: RecordKind,
    /// Document or payment date.
    pub date: NaiveDate,
    /// Due date, when known.
    pub due_date: Option<NaiveDate>,
    /// Signed from the bank account's view: invoices > 0, bills and expenses < 0.
    pub amount: Money,
    /// Customer or supplier name.
    pub counterparty: Option<String>,
    /// Invoice number, check number or other reference.
    pub reference: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

/// A records file that could not be read, with the line and field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", location(*.line, .field.as_deref()))]
pub struct RecordsError {
    /// File (or upload) name.
    pub file: String,
    /// 1-based line (CSV) or array position + 1 (JSON), when known.
    pub line: Option<usize>,
    /// The field at fault.
    pub field: Option<String>,
    /// What was wrong.
    pub message: String,
}

fn location(line: Option<usize>, field: Option<&str>) -> String {
    match (line, field) {
        (Some(l), Some(f)) => format!(":{l}: field `{f}`"),
        (Some(l), None) => format!(":{l}"),
        (None, Some(f)) => format!(": field `{f}`"),
        (None, None) => String::new(),
    }
}

/// The JSON/CSV shape of a record before validation.
#[derive(Debug, Deserialize)]
struct RawRecord {
    id: Option<String>,
    kind: Option<String>,
    date: Option<String>,
    #[serde(default)]
    due_date: Option<String>,
    amount: Option<serde_json::Value>,
    currency: Option<String>,
    #[serde(default)]
    counterparty: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// Reads records from CSV (header `id,kind,date,amount,currency,counterparty,reference,description`,
/// optional `due_date`) or JSON (an array of objects with the same fields), chosen by content.
pub fn read_records(file: &str, bytes: &[u8]) -> Result<Vec<Record>, RecordsError> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)).map_err(|e| RecordsError {
        file: file.into(),
        line: None,
        field: None,
        message: format!("not UTF-8 text ({e})"),
    })?;
    let first = text.trim_start().chars().next();
    if matches!(first, Some('[') | Some('{')) {
        read_json(file, text)
    } else {
        read_csv(file, text)
    }
}

fn read_json(file: &str, text: &str) -> Result<Vec<Record>, RecordsError> {
    let err = |line: Option<usize>, message: String| RecordsError { file: file.into(), line, field: None, message };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| err(Some(e.line()), format!("invalid JSON at column {}: {e}", e.column())))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut o) => match o.remove("records").or_else(|| o.remove("items")) {
            Some(serde_json::Value::Array(items)) => items,
            _ => return Err(err(None, "expected an array of records (or {\"records\": [...]})".into())),
        },
        _ => return Err(err(None, "expected an array of records".into())),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let raw: RawRecord =
                serde_json::from_value(item).map_err(|e| err(Some(i + 1), format!("record {}: {e}", i + 1)))?;
            validate(file, i + 1, raw)
        })
        .collect()
}

fn read_csv(file: &str, text: &str) -> Result<Vec<Record>, RecordsError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(false).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| RecordsError { file: file.into(), line: Some(1), field: None, message: e.to_string() })?
        .clone();
    for required in ["id", "kind", "date", "amount", "currency"] {
        if !headers.iter().any(|h| h.eq_ignore_ascii_case(required)) {
            return Err(RecordsError {
                file: file.into(),
                line: Some(1),
                field: Some(required.into()),
                message: format!(
                    "missing column `{required}` (header must be id,kind,date,amount,currency,counterparty,reference,description[,due_date])"
                ),
            });
        }
    }
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let cols = [
        col("id"),
        col("kind"),
        col("date"),
        col("due_date"),
        col("amount"),
        col("currency"),
        col("counterparty"),
        col("reference"),
        col("description"),
    ];
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| RecordsError {
            file: file.into(),
            line: e.position().map(|p| p.line() as usize),
            field: None,
            message: e.to_string(),
        })?;
        let line = row.position().map(|p| p.line() as usize).unwrap_or(0);
        let get = |i: Option<usize>| i.and_then(|i| row.get(i)).filter(|s| !s.is_empty()).map(str::to_string);
        let raw = RawRecord {
            id: get(cols[0]),
            kind: get(cols[1]),
            date: get(cols[2]),
            due_date: get(cols[3]),
            amount: get(cols[4]).map(serde_json::Value::String),
            currency: get(cols[5]),
            counterparty: get(cols[6]),
            reference: get(cols[7]),
            description: get(cols[8]),
        };
        out.push(validate(file, line, raw)?);
    }
    Ok(out)
}

fn validate(file: &str, line: usize, raw: RawRecord) -> Result<Record, RecordsError> {
    let fail = |field: &str, message: String| RecordsError {
        file: file.into(),
        line: Some(line),
        field: Some(field.into()),
        message,
    };
    let required = |v: Option<String>, field: &str| {
        v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).ok_or_else(|| fail(field, "is required".into()))
    };
    let date = |v: &str, field: &str| {
        NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d")
            .map_err(|_| fail(field, format!("invalid date {v:?} (expected YYYY-MM-DD)")))
    };
    let id = required(raw.id, "id")?;
    let kind = required(raw.kind, "kind")?.parse::<RecordKind>().map_err(|m| fail("kind", m))?;
    let date_v = date(&required(raw.date, "date")?, "date")?;
    let due_date = match raw.due_date.filter(|s| !s.trim().is_empty()) {
        Some(d) => Some(date(&d, "due_date")?),
        None => None,
    };
    let currency = Currency::new(&required(raw.currency, "currency")?).map_err(|e| fail("currency", e.to_string()))?;
    let amount_text = match raw.amount {
        Some(serde_json::Value::String(s)) => s,
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(other) => return Err(fail("amount", format!("expected a decimal string, got {other}"))),
        None => return Err(fail("amount", "is required".into())),
    };
    let amount = Decimal::from_str_exact(amount_text.trim())
        .or_else(|_| Decimal::from_scientific(amount_text.trim()))
        .map_err(|_| fail("amount", format!("invalid amount {amount_text:?} (expected e.g. -1234.56)")))?;
    let clean = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    Ok(Record {
        id,
        kind,
        date: date_v,
        due_date,
        amount: Money::new(amount, currency),
        counterparty: clean(raw.counterparty),
        reference: clean(raw.reference),
        description: clean(raw.description),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_are_read_with_signed_amounts_and_optional_due_date() {
        let csv = "id,kind,date,amount,currency,counterparty,reference,description,due_date\n\
                   INV-1,invoice,2024-03-01,1200.50,EUR,Acme GmbH,INV-00123,March services,2024-03-31\n\
                   B-7,bill,2024-03-02,-99.99,EUR,Paper Co,,,\n";
        let records = read_records("books.csv", csv.as_bytes()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].amount.to_fixed(), "1200.50");
        assert_eq!(records[0].due_date, NaiveDate::from_ymd_opt(2024, 3, 31));
        assert_eq!(records[1].kind, RecordKind::Bill);
        assert_eq!(records[1].reference, None);
    }

    #[test]
    fn json_records_accept_string_or_number_amounts() {
        let json = r#"[{"id":"1","kind":"expense","date":"2024-01-05","amount":"-5.10","currency":"usd"},
                       {"id":"2","kind":"invoice","date":"2024-01-06","amount":10,"currency":"USD"}]"#;
        let records = read_records("books.json", json.as_bytes()).unwrap();
        assert_eq!(records[0].amount.amount().to_string(), "-5.10");
        assert_eq!(records[1].amount.amount().to_string(), "10");
    }

    #[test]
    fn a_bad_record_names_the_file_line_and_field() {
        let csv = "id,kind,date,amount,currency\nA,invoice,2024-01-01,12.00,EUR\nB,invoice,01/02/2024,1,EUR\n";
        let err = read_records("books.csv", csv.as_bytes()).unwrap_err();
        assert_eq!(err.line, Some(3));
        assert_eq!(err.field.as_deref(), Some("date"));
        assert!(err.to_string().starts_with("books.csv:3: field `date`"), "{err}");
    }

    #[test]
    fn a_csv_without_the_required_columns_is_refused() {
        let err = read_records("x.csv", b"id,date,amount\n1,2024-01-01,3\n").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("kind"));
    }
}
