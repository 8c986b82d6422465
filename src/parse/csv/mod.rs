//! CSV statement parser: delimited bank exports in their many dialects.
//!
//! A file is read in two steps. [`detect_profile`] looks at the first rows and writes down what
//! it found as a [`CsvProfile`] (delimiter, header row, column roles, decimal separator, sign
//! convention); [`parse`] then applies that profile — or the caller's own — to every row. A
//! profile saved per bank therefore reproduces exactly what detection chose.
//!
//! Balances: rows labelled as balances (`Balance at start of period`, `Likutis pabaigai`) and
//! `Saldo:`-style lines above the header are taken as stated. Otherwise a running-balance column
//! gives them: in file order the closing balance is the newest row's balance and the opening
//! balance is the oldest row's balance minus that row's amount, whether the file lists the
//! oldest or the newest row first (decided by the dates, else by which reading the balances
//! follow).

mod blocks;
mod cells;
mod detect;
mod litas;
mod rows;

use std::borrow::Cow;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::text::{self, DateOrder, DateOrderVote, DecimalSeparator};
use super::{Format, ParseError, ParseErrorKind, Parsed, Source, Warning};
use crate::domain::{AccountIdent, BankTransaction, Currency, Money, Statement};
use cells::{read_date, DateCell, Label};

pub use detect::looks_like_csv;

/// A column named by its header text or by its 0-based position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ColumnRef {
    /// 0-based position in the row.
    Index(usize),
    /// Header text (matched exactly, then ignoring case and blanks).
    Name(String),
}

/// Which column holds what. Every role is optional except a date and one way to read the
/// amount (an amount column, or debit and/or credit columns).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsvColumns {
    /// Booking date.
    pub date: Option<ColumnRef>,
    /// Value date.
    pub value_date: Option<ColumnRef>,
    /// Signed (or, with an indicator, unsigned) amount.
    pub amount: Option<ColumnRef>,
    /// Money out of the account.
    pub debit: Option<ColumnRef>,
    /// Money into the account.
    pub credit: Option<ColumnRef>,
    /// Debit/credit indicator for the amount.
    pub indicator: Option<ColumnRef>,
    /// Main text.
    pub description: Option<ColumnRef>,
    /// Further text appended to the description.
    pub memo: Option<ColumnRef>,
    /// Counterparty name.
    pub payee: Option<ColumnRef>,
    /// Counterparty account (IBAN or local number).
    pub counterparty_account: Option<ColumnRef>,
    /// End-to-end id or remittance reference.
    pub reference: Option<ColumnRef>,
    /// The bank's own id of the line.
    pub id: Option<ColumnRef>,
    /// Check number.
    pub check_number: Option<ColumnRef>,
    /// The bank's transaction type code.
    pub bank_code: Option<ColumnRef>,
    /// Running balance after the line.
    pub balance: Option<ColumnRef>,
    /// Currency of the line (one statement per currency).
    pub currency: Option<ColumnRef>,
    /// The statement's own account (one statement per account).
    pub account: Option<ColumnRef>,
    /// Statement opening balance repeated on every row.
    pub opening_balance: Option<ColumnRef>,
    /// Statement closing balance repeated on every row.
    pub closing_balance: Option<ColumnRef>,
    /// A fee charged on the line (PayPal): booked as a separate line beside the amount; a
    /// running balance then follows amount + fee.
    pub fee: Option<ColumnRef>,
}

/// How the amount's sign is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SignConvention {
    /// The amount column is signed as the account sees it.
    #[default]
    AsIs,
    /// The amount column is signed the other way (credit-card exports).
    Negate,
    /// Separate debit and credit columns; their own signs are ignored.
    DebitCredit,
    /// An indicator column says which way an (unsigned) amount goes.
    Indicator {
        /// Indicator values meaning money out (compared ignoring case).
        debit: Vec<String>,
        /// Indicator values meaning money in.
        credit: Vec<String>,
    },
}

fn yes() -> bool {
    true
}

/// An explicit column mapping for one bank's CSV export; overrides detection. Load one with
/// [`CsvProfile::load`], or get the one detection chose with [`detect_profile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CsvProfile {
    /// The bank or export this profile is for.
    pub name: Option<String>,
    /// Field delimiter (`,` `;` tab `|`); detected when absent.
    pub delimiter: Option<char>,
    /// Physical lines before the header (or before the data without a header); lines of
    /// `label: value` metadata found there are still read.
    pub skip_lines: usize,
    /// Whether the first non-blank row after `skip_lines` is a header.
    #[serde(default = "yes")]
    pub header: bool,
    /// Which column holds what.
    pub columns: CsvColumns,
    /// A chrono format for the dates (`%d.%m.%Y`); else dates are read in any common form.
    pub date_format: Option<String>,
    /// Day/month order of numeric dates; else decided from all the file's dates.
    pub date_order: Option<DateOrder>,
    /// Decimal separator of amounts.
    pub decimal_separator: DecimalSeparator,
    /// How the sign of an amount is read.
    pub sign: SignConvention,
    /// Character encoding label (`windows-1252`, `iso-8859-1`); else UTF-8 with Windows-1252
    /// as the fallback.
    pub encoding: Option<String>,
    /// Currency of the statement when the file has no currency column.
    pub currency: Option<Currency>,
    /// Account id when the file carries none.
    pub account_id: Option<String>,
}

impl Default for CsvProfile {
    fn default() -> Self {
        CsvProfile {
            name: None,
            delimiter: None,
            skip_lines: 0,
            header: true,
            columns: CsvColumns::default(),
            date_format: None,
            date_order: None,
            decimal_separator: DecimalSeparator::Auto,
            sign: SignConvention::AsIs,
            encoding: None,
            currency: None,
            account_id: None,
        }
    }
}

impl CsvProfile {
    /// Loads a profile from a TOML or JSON file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        if text.trim_start().starts_with('{') {
            Ok(serde_json::from_str(&text)?)
        } else {
            Ok(toml::from_str(&text)?)
        }
    }
}

fn decode_with<'a>(bytes: &'a [u8], label: Option<&str>) -> Cow<'a, str> {
    match label.and_then(text::encoding_for_label) {
        Some(enc) if encoding_rs::Encoding::for_bom(bytes).is_none() => enc.decode_without_bom_handling(bytes).0,
        _ => text::decode(bytes, None),
    }
}

/// The mapping detection chooses for this file (so that it can be saved per bank).
pub fn detect_profile(source: &Source<'_>) -> Result<CsvProfile, ParseError> {
    let text = decode_with(source.bytes, None);
    detect::detect(source, &text).map(|(profile, _)| profile)
}

/// Parses a CSV file: the caller's profile if given, else the detected one.
pub fn parse(source: &Source<'_>) -> Result<Parsed, ParseError> {
    let given = source.options.csv_profile.as_ref();
    let text = decode_with(source.bytes, given.and_then(|p| p.encoding.as_deref()));
    if given.is_none() && litas::is_litas(&text) {
        return litas::parse(source, &text);
    }
    if given.is_none() && blocks::looks_like_blocks(&text) {
        let (table, lines) = blocks::to_table(&text);
        let file_line = |l: Option<usize>| l.map(|l| lines.get(l.saturating_sub(1)).copied().unwrap_or(l));
        let result = detect::detect(source, &table).and_then(|(profile, mut warnings)| {
            let mut parsed = apply(source, &table, &profile)?;
            warnings.append(&mut parsed.warnings);
            parsed.warnings = warnings;
            Ok(parsed)
        });
        return match result {
            Ok(mut parsed) => {
                for w in &mut parsed.warnings {
                    w.line = file_line(w.line);
                }
                Ok(parsed)
            }
            Err(mut e) => {
                e.line = file_line(e.line);
                e.column = None;
                Err(e)
            }
        };
    }
    let (profile, warnings) = match given {
        Some(p) => (Cow::Borrowed(p), Vec::new()),
        None => {
            let (p, w) = detect::detect(source, &text)?;
            (Cow::Owned(p), w)
        }
    };
    let mut parsed = apply(source, &text, &profile)?;
    parsed.warnings.splice(0..0, warnings);
    Ok(parsed)
}

fn err(source: &Source<'_>, line: Option<usize>, kind: ParseErrorKind, message: String) -> ParseError {
    source.error(Format::Csv, line, kind, message)
}

/// The profile's columns as positions in this file's rows.
#[derive(Debug, Default)]
struct Cols {
    date: usize,
    value_date: Option<usize>,
    amount: Option<usize>,
    debit: Option<usize>,
    credit: Option<usize>,
    indicator: Option<usize>,
    description: Option<usize>,
    memo: Option<usize>,
    payee: Option<usize>,
    counterparty_account: Option<usize>,
    reference: Option<usize>,
    id: Option<usize>,
    check_number: Option<usize>,
    bank_code: Option<usize>,
    balance: Option<usize>,
    currency: Option<usize>,
    account: Option<usize>,
    opening_balance: Option<usize>,
    closing_balance: Option<usize>,
    fee: Option<usize>,
}

fn resolve_column(
    source: &Source<'_>,
    header: Option<&[String]>,
    col: &Option<ColumnRef>,
    role: &str,
    line: Option<usize>,
) -> Result<Option<usize>, ParseError> {
    match col {
        None => Ok(None),
        Some(ColumnRef::Index(i)) => Ok(Some(*i)),
        Some(ColumnRef::Name(name)) => {
            let names = header.ok_or_else(|| {
                err(
                    source,
                    None,
                    ParseErrorKind::MissingField,
                    format!("the profile names the {role} column {name:?} but the file has no header row"),
                )
            })?;
            let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
            let want = squash(name);
            names
                .iter()
                .position(|h| h == name)
                .or_else(|| names.iter().position(|h| squash(h) == want))
                .map(Some)
                .ok_or_else(|| {
                    err(
                        source,
                        line,
                        ParseErrorKind::MissingField,
                        format!("found no column {name:?} in the header, expected the {role} column the profile names"),
                    )
                    .in_field(role.to_string())
                })
        }
    }
}

fn resolve_columns(
    source: &Source<'_>,
    profile: &CsvProfile,
    header: Option<&[String]>,
    line: Option<usize>,
) -> Result<Cols, ParseError> {
    let c = &profile.columns;
    let r = |col: &Option<ColumnRef>, role: &str| resolve_column(source, header, col, role, line);
    let date = r(&c.date, "date")?.ok_or_else(|| {
        err(
            source,
            line,
            ParseErrorKind::MissingField,
            "found no date column, expected one (date, booking date...)".into(),
        )
        .in_field("date")
    })?;
    let cols = Cols {
        date,
        value_date: r(&c.value_date, "value date")?,
        amount: r(&c.amount, "amount")?,
        debit: r(&c.debit, "debit")?,
        credit: r(&c.credit, "credit")?,
        indicator: r(&c.indicator, "indicator")?,
        description: r(&c.description, "description")?,
        memo: r(&c.memo, "memo")?,
        payee: r(&c.payee, "payee")?,
        counterparty_account: r(&c.counterparty_account, "counterparty account")?,
        reference: r(&c.reference, "reference")?,
        id: r(&c.id, "id")?,
        check_number: r(&c.check_number, "check number")?,
        bank_code: r(&c.bank_code, "bank code")?,
        balance: r(&c.balance, "balance")?,
        currency: r(&c.currency, "currency")?,
        account: r(&c.account, "account")?,
        opening_balance: r(&c.opening_balance, "opening balance")?,
        closing_balance: r(&c.closing_balance, "closing balance")?,
        fee: r(&c.fee, "fee")?,
    };
    let readable = match profile.sign {
        SignConvention::DebitCredit => cols.debit.is_some() || cols.credit.is_some(),
        _ => cols.amount.is_some(),
    };
    if !readable {
        return Err(err(
            source,
            line,
            ParseErrorKind::MissingField,
            "found no amount column, expected an amount column or debit and credit columns".into(),
        )
        .in_field("amount"));
    }
    Ok(cols)
}

/// Running-balance bookkeeping for one statement: only the ends and the step checks are kept.
#[derive(Debug, Default)]
struct Running {
    first: Option<(Decimal, Decimal)>,
    last: Option<(Decimal, Decimal)>,
    /// Steps that agree when the file lists the oldest row first / the newest row first.
    oldest_first_ok: usize,
    newest_first_ok: usize,
    steps: usize,
    /// Byte offsets of the first rows that break each reading (made lines only when reported).
    first_bad_row: [Option<usize>; 2],
}

impl Running {
    fn observe(&mut self, amount: Decimal, balance: Decimal, row: usize) {
        if let Some((prev_amount, prev_balance)) = self.last {
            self.steps += 1;
            if balance - prev_balance == amount {
                self.oldest_first_ok += 1;
            } else if self.first_bad_row[0].is_none() {
                self.first_bad_row[0] = Some(row);
            }
            if prev_balance - balance == prev_amount {
                self.newest_first_ok += 1;
            } else if self.first_bad_row[1].is_none() {
                self.first_bad_row[1] = Some(row);
            }
        } else {
            self.first = Some((amount, balance));
        }
        self.last = Some((amount, balance));
    }
}

/// A transaction whose booking or value date waits for the file's day/month order.
struct PendingDate {
    /// Index in the group's transactions.
    index: usize,
    date: DateCell,
    value_date: Option<DateCell>,
    /// Byte offset of the row, for the line of an error.
    row: usize,
}

/// Transactions of one account and currency. Dates that read the same in every day/month order
/// are set at once; only the others are kept aside until the whole file has voted.
struct Group {
    account: String,
    currency: Currency,
    transactions: Vec<BankTransaction>,
    pending: Vec<PendingDate>,
    running: Running,
    opening_col: Option<Decimal>,
    closing_col: Option<Decimal>,
}

/// Key/value facts from the lines above the header and from labelled balance rows.
#[derive(Debug, Default)]
struct Meta {
    account: Option<String>,
    currency: Option<Currency>,
    opening: Option<Decimal>,
    closing: Option<Decimal>,
    start: Option<String>,
    end: Option<String>,
}

impl Meta {
    fn take(&mut self, label: Label, value: &str, source: &Source<'_>) -> bool {
        let value = value.trim();
        if value.is_empty() {
            return false;
        }
        let amount = || read_money(value, DecimalSeparator::Auto);
        match label {
            Label::Opening | Label::Closing => {
                let Some(a) = amount() else { return false };
                if let Some(code) = value.split_whitespace().find_map(|w| Currency::new(w).ok()) {
                    self.currency.get_or_insert(code);
                }
                let slot = if label == Label::Opening { &mut self.opening } else { &mut self.closing };
                *slot = Some(a);
            }
            Label::Account => {
                self.account.get_or_insert_with(|| value.to_string());
            }
            Label::Currency => match Currency::new(value) {
                Ok(c) => self.currency = Some(c),
                Err(_) => return false,
            },
            Label::StartDate => self.start = Some(value.to_string()),
            Label::EndDate => self.end = Some(value.to_string()),
            Label::Total => {}
        }
        let _ = source;
        true
    }

    /// Reads `key: value` cells, `key` cell + value cell, and `label,,,value` lines.
    fn read_line(&mut self, cells: &[&str], source: &Source<'_>) {
        let mut i = 0;
        while i < cells.len() {
            let cell = cells[i].trim();
            if let Some((key, value)) = cell.split_once(':').filter(|(_, v)| !v.trim().is_empty()) {
                let key = key.trim();
                if key.is_empty() {
                    if let Ok(c) = Currency::new(value) {
                        self.currency.get_or_insert(c);
                    }
                } else if let Some(label) = cells::label_of(key, true) {
                    self.take(label, value, source);
                }
            } else if let Some(label) = cells::label_of(cell, true) {
                if let Some(j) = (i + 1..cells.len()).find(|&j| !cells[j].trim().is_empty()) {
                    if self.take(label, cells[j], source) {
                        i = j;
                    }
                }
            }
            i += 1;
        }
    }
}

/// File line numbers of records. The reader's own count lags on CRLF files and after blank
/// lines, so lines are counted from byte offsets, skipping the terminators a record starts with.
#[derive(Debug, Default)]
pub(crate) struct LineCounter {
    offset: usize,
    line: usize,
}

impl LineCounter {
    /// 1-based line of the record that starts at byte `byte` (offsets only move forward).
    ///
    /// Rows ask for their line only when a warning or an error needs it: counting every row's
    /// line showed up in profiles of large files.
    pub(crate) fn line_at(&mut self, bytes: &[u8], byte: usize) -> usize {
        let mut start = byte.min(bytes.len());
        while bytes.get(start).is_some_and(|b| *b == b'\r' || *b == b'\n') {
            start += 1;
        }
        if start >= self.offset {
            self.line += memchr::memchr_iter(b'\n', &bytes[self.offset..start]).count();
            self.offset = start;
        }
        self.line + 1
    }
}

/// Amounts beyond this are refused: no bank line comes near it, and keeping every amount below it
/// keeps sums and balance arithmetic far from `Decimal`'s overflow.
const MONEY_LIMIT: Decimal = Decimal::from_parts(2_808_348_672, 232_830_643, 0, false, 0); // 10^18

/// An amount as banks write it (see [`text::parse_amount`]), within [`MONEY_LIMIT`].
pub(crate) fn read_money(s: &str, sep: DecimalSeparator) -> Option<Decimal> {
    plain_amount(s, sep).or_else(|| text::parse_amount(s, sep)).filter(|d| d.abs() < MONEY_LIMIT)
}

/// The plain form most amount cells take (`-1234.56`, `12,50`, `+7`: a sign, up to 18 digits and
/// at most one separator that is the decimal one under `sep`), read without the general reader's
/// scanning and copying; it gives exactly what [`text::parse_amount`] gives. `None` when the cell
/// has another form.
fn plain_amount(s: &str, sep: DecimalSeparator) -> Option<Decimal> {
    let (negative, digits) = match s.as_bytes().split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s.as_bytes()),
    };
    let mut mantissa: i64 = 0;
    let mut count = 0u32;
    let mut separator: Option<(u8, u32)> = None;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                if count == 18 {
                    return None;
                }
                mantissa = mantissa * 10 + i64::from(b - b'0');
                count += 1;
            }
            b'.' | b',' if separator.is_none() => separator = Some((b, count)),
            _ => return None,
        }
    }
    let scale = match separator {
        None if count > 0 => 0,
        None => return None,
        Some((c, int_len)) => {
            let scale = count - int_len;
            if int_len == 0 || scale == 0 {
                return None;
            }
            let decimal = match sep {
                DecimalSeparator::Dot => c == b'.',
                DecimalSeparator::Comma => c == b',',
                // `1,234` may be a thousands group: the general reader decides.
                DecimalSeparator::Auto => !(c == b',' && scale == 3 && int_len <= 3),
            };
            if !decimal {
                return None;
            }
            scale
        }
    };
    let value = Decimal::new(mantissa, scale);
    Some(if negative { -value } else { value })
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// A cell's text for an optional field, allocated at its final size.
fn opt_text(s: &str) -> Option<Box<str>> {
    (!s.is_empty()).then(|| s.into())
}

/// A cell's text without surrounding blanks; the Unicode-aware trim only runs when an end is
/// not plainly visible ASCII.
fn trim_cell(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        (None, _) | (_, None) => s,
        _ => s.trim(),
    }
}

fn clean_text(s: &str) -> Box<str> {
    if needs_squash(s.as_bytes()) {
        text::squash_ws(s).into_boxed_str()
    } else {
        s.into()
    }
}

/// `description / memo` as one cleaned text, built at its final size. Both cells are trimmed, so
/// the joint adds no blanks to squash.
fn joined_text(description: &str, memo: &str) -> Box<str> {
    if needs_squash(description.as_bytes()) || needs_squash(memo.as_bytes()) {
        return text::squash_ws(&format!("{description} / {memo}")).into_boxed_str();
    }
    let mut s = String::with_capacity(description.len() + 3 + memo.len());
    s.push_str(description);
    s.push_str(" / ");
    s.push_str(memo);
    s.into_boxed_str()
}

/// Bytes read to estimate the length of the rows ahead.
const ROW_SAMPLE: usize = 64 * 1024;

/// Shortest average row the estimate trusts: a sample of blank or stray short lines must not
/// reserve room for far more lines than the file can hold.
const MIN_ROW_BYTES: usize = 32;

/// An estimate of the rows from byte `row` to the end: line breaks counted in a sample, scaled to
/// the rest of the file (exact for files smaller than the sample). An estimate that falls short
/// only means the list grows as it would without one.
fn rows_ahead(bytes: &[u8], row: usize) -> usize {
    let rest = bytes.get(row..).unwrap_or(&[]);
    let sample = rest.get(..ROW_SAMPLE).unwrap_or(rest);
    let breaks = memchr::memchr_iter(b'\n', sample).count() + 1;
    if sample.len() == rest.len() {
        return breaks;
    }
    let scaled = u64::try_from(rest.len()).unwrap_or(u64::MAX).saturating_mul(breaks as u64) / sample.len() as u64;
    let estimate = usize::try_from(scaled).unwrap_or(usize::MAX).min(rest.len() / MIN_ROW_BYTES);
    // A little over, so that a file of even rows is not one line short of room.
    estimate + estimate / 64
}

/// Whether text has a line break, a tab or two blanks in a row. Branch-free passes over the bytes
/// (which the compiler vectorises): cells are short, and a substring search costs more to set up
/// than this costs to run.
fn needs_squash(b: &[u8]) -> bool {
    let control = b.iter().fold(false, |found, &c| found | matches!(c, b'\n' | b'\r' | b'\t'));
    let next = b.get(1..).unwrap_or(&[]);
    let doubled = b.iter().zip(next).fold(false, |found, (&x, &y)| found | ((x == b' ') & (y == b' ')));
    control || doubled
}

fn looks_like_iban(s: &str) -> bool {
    let b = s.as_bytes();
    (15..=34).contains(&b.len())
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..4].iter().all(u8::is_ascii_digit)
        && b[4..].iter().all(u8::is_ascii_alphanumeric)
}

/// Applies `profile` to the decoded file.
fn apply(source: &Source<'_>, text: &str, profile: &CsvProfile) -> Result<Parsed, ParseError> {
    let delimiter = match profile.delimiter {
        Some(c) if c.is_ascii() => c as u8,
        Some(c) => {
            return Err(err(
                source,
                None,
                ParseErrorKind::Syntax,
                format!("found delimiter {c:?}, expected a single-byte character such as ',' or ';'"),
            ))
        }
        None => detect::sniff_delimiter(text).unwrap_or(b','),
    };
    let mut rows = rows::Rows::new(text, delimiter);
    let bytes = text.as_bytes();
    let mut warnings: Vec<Warning> = Vec::new();
    let mut meta = Meta::default();
    let mut header: Option<Vec<String>> = None;
    let mut cols: Option<Cols> = None;
    let mut groups: Vec<Group> = Vec::new();
    let mut vote = DateOrderVote::default();
    // The last fields given to the vote (booking, value date): a file's rows mostly repeat the
    // dates before them, and a vote does not change when the same date comes again.
    let mut voted: [Option<([u32; 3], usize)>; 2] = [None, None];
    let mut day_month_seen = false;
    let mut last_currency: Option<Currency> = None;
    let mut count = 0usize;
    let mut lines = LineCounter::default();
    let sep = profile.decimal_separator;

    let default_currency = |meta: &Meta| {
        source.options.currency.or(meta.currency).or(profile.currency).unwrap_or_else(|| source.fallback_currency())
    };

    loop {
        let record = rows.next_row().map_err(|e| {
            let line = lines.line_at(bytes, e.start);
            err(source, Some(line), ParseErrorKind::Syntax, format!("{}, expected delimited rows", e.message))
        })?;
        let Some(record) = record else { break };
        let row = record.start;
        let cell_at = |i: usize| record.get(i).map(trim_cell).unwrap_or("");
        let blank = !(0..record.len()).any(|i| record.get(i).is_some_and(|c| c.bytes().any(|b| b.is_ascii_graphic())))
            && (0..record.len()).all(|i| cell_at(i).is_empty());

        if cols.is_none() {
            let line = lines.line_at(bytes, row);
            if line <= profile.skip_lines || (blank && profile.header) {
                let cells: Vec<&str> = (0..record.len()).map(cell_at).collect();
                meta.read_line(&cells, source);
                continue;
            }
            if profile.header {
                let names: Vec<String> =
                    (0..record.len()).map(|i| cell_at(i).trim_start_matches('\u{feff}').to_string()).collect();
                cols = Some(resolve_columns(source, profile, Some(&names), Some(line))?);
                header = Some(names);
                continue;
            }
            cols = Some(resolve_columns(source, profile, None, Some(line))?);
        }
        let Some(c) = cols.as_ref() else { continue };
        let mut line = || lines.line_at(bytes, row);
        if blank {
            warnings.push(Warning { line: Some(line()), statement: None, message: "empty row skipped".into() });
            continue;
        }
        let name_of = |i: usize| -> String {
            header
                .as_ref()
                .and_then(|h| h.get(i))
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("column {}", i + 1))
        };

        // Labelled balance and total rows.
        let label = cells::label_of(cell_at(0), false)
            .or_else(|| c.description.and_then(|d| cells::label_of(cell_at(d), false)));
        if let Some(label) = label {
            if label == Label::Total {
                warnings.push(Warning {
                    line: Some(line()),
                    statement: None,
                    message: format!("total row {:?} skipped (a sum of lines, not a line)", cell_at(0)),
                });
                continue;
            }
            let value = read_amount(c, &profile.sign, sep, &cell_at)
                .ok()
                .flatten()
                .or_else(|| (1..record.len()).rev().find_map(|i| read_money(cell_at(i), DecimalSeparator::Auto)));
            if let Some(v) = value {
                if let Some(code) = c.currency.and_then(|i| Currency::new(cell_at(i)).ok()) {
                    meta.currency.get_or_insert(code);
                }
                let slot = if label == Label::Opening { &mut meta.opening } else { &mut meta.closing };
                *slot = Some(v);
                continue;
            }
        }

        // A row narrower or wider than the header, where the header's columns beyond the row are
        // named: the exporter merged or split a middle field, so columns after the date are
        // read from the row's end.
        let mut shift: isize = 0;
        if let Some(h) = header.as_ref() {
            let n = record.len();
            let genuine = if n < h.len() {
                h[n..].iter().any(|name| !name.is_empty())
            } else {
                (h.len()..n).any(|i| !cell_at(i).is_empty())
            };
            if genuine {
                shift = h.len() as isize - n as isize;
            }
        }

        let date_text = cell_at(c.date);
        let date = match &profile.date_format {
            Some(fmt) => NaiveDate::parse_from_str(date_text, fmt)
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(date_text, fmt).map(|d| d.date()))
                .ok()
                .map(DateCell::Fixed),
            None => read_date(date_text),
        };
        let Some(date) = date else {
            if !date_text.bytes().any(|b| b.is_ascii_digit()) {
                warnings.push(Warning {
                    line: Some(line()),
                    statement: None,
                    message: format!("row without a date skipped ({:?} in {})", date_text, name_of(c.date)),
                });
                continue;
            }
            return Err(err(
                source,
                Some(line()),
                ParseErrorKind::InvalidDate,
                format!("found {date_text:?} in column {}, expected a date", name_of(c.date)),
            )
            .at_column(c.date + 1)
            .in_field(name_of(c.date)));
        };

        let mut amount = read_amount(c, &profile.sign, sep, &cell_at);
        let mut repaired = false;
        if shift != 0 && !matches!(amount, Ok(Some(_))) {
            let shifted = |i: usize| if i > c.date { i.checked_add_signed(-shift).unwrap_or(usize::MAX) } else { i };
            let retry = read_amount(c, &profile.sign, sep, &|i| cell_at(shifted(i)));
            if let Ok(Some(_)) = retry {
                amount = retry;
                repaired = true;
                warnings.push(Warning {
                    line: Some(line()),
                    statement: None,
                    message: format!(
                        "row has {} fields, the header {}; columns after the date read from the row's end",
                        record.len(),
                        header.as_ref().map_or(0, Vec::len)
                    ),
                });
            }
        }
        let shifted_at = |i: usize| {
            if repaired && i > c.date {
                i.checked_add_signed(-shift).unwrap_or(usize::MAX)
            } else {
                i
            }
        };
        let cell = |i: usize| cell_at(shifted_at(i));
        let amount = match amount {
            Ok(Some(a)) => a,
            Ok(None) => {
                warnings.push(Warning {
                    line: Some(line()),
                    statement: None,
                    message: "row without an amount read as 0.00".into(),
                });
                Decimal::ZERO
            }
            Err((i, found, expected)) => {
                let i = shifted_at(i);
                return Err(err(
                    source,
                    Some(line()),
                    ParseErrorKind::InvalidAmount,
                    format!("found {found:?} in column {}, expected {expected}", name_of(i)),
                )
                .at_column(i + 1)
                .in_field(name_of(i)));
            }
        };

        let row_currency = match c.currency.map(cell).filter(|s| !s.is_empty()) {
            // Rows repeat their currency: the code read last is reused while the text is the same.
            Some(code) => match last_currency.filter(|last| last.code() == code) {
                Some(same) => Some(same),
                None => {
                    let read = Currency::new(code).map_err(|_| {
                        let i = c.currency.unwrap_or(0);
                        err(
                            source,
                            Some(line()),
                            ParseErrorKind::InvalidCurrency,
                            format!("found {code:?} in column {}, expected an ISO 4217 currency code", name_of(i)),
                        )
                        .at_column(i + 1)
                        .in_field(name_of(i))
                    })?;
                    last_currency = Some(read);
                    Some(read)
                }
            },
            None => None,
        };
        let currency = row_currency.unwrap_or_else(|| default_currency(&meta));
        let account = c.account.map(cell).unwrap_or("");
        let gi = match groups.iter().rposition(|g| g.currency == currency && g.account == account) {
            Some(gi) => gi,
            None => {
                // The first group usually holds the whole file: sized from the rows ahead, so a
                // large file's lines are not copied each time the list doubles.
                let expected = if groups.is_empty() { rows_ahead(bytes, row) } else { 0 };
                groups.push(Group {
                    account: account.to_string(),
                    currency,
                    transactions: Vec::with_capacity(expected),
                    pending: Vec::new(),
                    running: Running::default(),
                    opening_col: None,
                    closing_col: None,
                });
                groups.len() - 1
            }
        };
        let Some(group) = groups.get_mut(gi) else { continue };

        let value_date = c.value_date.map(cell).and_then(|v| match &profile.date_format {
            Some(fmt) => NaiveDate::parse_from_str(v, fmt).ok().map(DateCell::Fixed),
            None => read_date(v),
        });
        for (d, last) in [Some(date), value_date].into_iter().zip(voted.iter_mut()) {
            if let Some(DateCell::Fields(f, digits)) = d {
                if *last != Some((f, digits)) {
                    vote.observe(f, digits);
                    *last = Some((f, digits));
                }
            }
        }
        day_month_seen |= matches!(date, DateCell::Fields(..));
        // Dates that need no vote are final now; the others wait for the whole file.
        let settled = match (date, value_date) {
            (DateCell::Fixed(b), None) => Some((b, None)),
            (DateCell::Fixed(b), Some(DateCell::Fixed(v))) => Some((b, Some(v).filter(|v| *v != b))),
            _ => None,
        };

        let (booking, value) = settled.unwrap_or((NaiveDate::MIN, None));
        let mut t = BankTransaction::new(booking, Money::new(amount, currency));
        t.value_date = value;
        let description = c.description.map(cell).unwrap_or("");
        let memo = c.memo.map(cell).unwrap_or("");
        t.description = match (description.is_empty(), memo.is_empty()) {
            (false, false) => joined_text(description, memo),
            (false, true) => clean_text(description),
            (true, false) => clean_text(memo),
            (true, true) => Box::default(),
        };
        t.payee = c.payee.map(cell).filter(|s| !s.is_empty()).map(clean_text);
        t.counterparty_account = c.counterparty_account.map(cell).and_then(opt_text);
        t.reference = c.reference.map(cell).and_then(opt_text);
        t.check_number = c.check_number.map(cell).and_then(opt_text);
        t.bank_code = c.bank_code.map(cell).and_then(opt_text);
        if let Some(id) = c.id.map(cell) {
            t.set_bank_id(id);
        }
        let fee = match c.fee.map(cell).filter(|s| !s.is_empty()) {
            Some(f) => match read_money(f, sep) {
                Some(f) => f,
                None => {
                    let i = shifted_at(c.fee.unwrap_or(0));
                    return Err(err(
                        source,
                        Some(line()),
                        ParseErrorKind::InvalidAmount,
                        format!("found {f:?} in column {}, expected a fee amount", name_of(i)),
                    )
                    .at_column(i + 1)
                    .in_field(name_of(i)));
                }
            },
            None => Decimal::ZERO,
        };
        if let Some(b) = c.balance.map(cell).filter(|s| !s.is_empty()) {
            match read_money(b, sep).or_else(|| read_money(b, DecimalSeparator::Auto)) {
                Some(b) => group.running.observe(amount + fee, b, row),
                None => warnings.push(Warning {
                    line: Some(line()),
                    statement: None,
                    message: format!("unreadable balance {b:?} ignored"),
                }),
            }
        }
        if group.transactions.is_empty() {
            group.opening_col = c.opening_balance.and_then(|i| read_money(cell(i), sep));
            group.closing_col = c.closing_balance.and_then(|i| read_money(cell(i), sep));
        }
        let fee_line = (!fee.is_zero()).then(|| {
            let mut f = BankTransaction::new(booking, Money::new(fee, currency));
            f.value_date = value;
            f.description =
                if t.description.is_empty() { "Fee".into() } else { format!("Fee: {}", t.description).into() };
            f.reference = t.reference.clone();
            if t.id_source == crate::domain::IdSource::Bank {
                f = f.with_bank_id(format!("{}:fee", t.id));
            }
            f
        });
        if settled.is_none() {
            group.pending.push(PendingDate { index: group.transactions.len(), date, value_date, row });
        }
        group.transactions.push(t);
        if let Some(f) = fee_line {
            if settled.is_none() {
                group.pending.push(PendingDate { index: group.transactions.len(), date, value_date, row });
            }
            group.transactions.push(f);
        }
        count += 1;
        if count % 4096 == 0 {
            source.report_progress(row);
        }
    }
    source.report_progress(text.len());

    if cols.is_none() && groups.is_empty() && meta.opening.is_none() && meta.closing.is_none() && header.is_none() {
        return Err(err(
            source,
            None,
            ParseErrorKind::Empty,
            "found no rows, expected a header and statement lines".into(),
        ));
    }

    // Lines of rows named after the loop: counted afresh, as these rows lie behind the counter.
    let line_of = |row: usize| LineCounter::default().line_at(bytes, row);
    let order = match source.options.date_order.or(profile.date_order) {
        Some(o) => o,
        None => {
            let preferred = (default_currency(&meta) == Currency::USD).then_some(DateOrder::Mdy);
            match vote.decide(preferred) {
                Some(o) => o,
                None => {
                    // No order reads every date: name the first one the preferred order cannot.
                    let o = preferred.unwrap_or(DateOrder::Dmy);
                    let bad = groups
                        .iter()
                        .flat_map(|g| g.pending.iter())
                        .find(|p| p.date.resolve(o).is_none() || p.value_date.is_some_and(|v| v.resolve(o).is_none()));
                    let line = bad.map(|b| line_of(b.row));
                    return Err(err(
                        source,
                        line,
                        ParseErrorKind::InvalidDate,
                        "found dates that no single day/month order reads, expected one order for the whole file"
                            .into(),
                    )
                    .in_field(
                        header
                            .as_ref()
                            .and_then(|h| h.get(cols.as_ref().map_or(0, |c| c.date)).cloned())
                            .unwrap_or_default(),
                    ));
                }
            }
        }
    };
    if vote.is_ambiguous() && source.options.date_order.is_none() && profile.date_order.is_none() && day_month_seen {
        warnings.push(Warning {
            line: None,
            statement: None,
            message: format!(
                "every date fits more than one day/month order; read as {order:?} (use a date order to override)"
            ),
        });
    }
    let resolve_meta_date = |s: &Option<String>| s.as_deref().and_then(read_date).and_then(|d| d.resolve(order));

    let mut statements: Vec<Statement> = Vec::with_capacity(groups.len());
    let single = groups.len() == 1;
    for g in groups {
        let mut transactions = g.transactions;
        // The estimate went to the first group: a file split by currency or account gives the
        // room back.
        if transactions.capacity() > transactions.len() + transactions.len() / 4 + 64 {
            transactions.shrink_to_fit();
        }
        for p in &g.pending {
            let Some(booking) = p.date.resolve(order) else {
                return Err(err(
                    source,
                    Some(line_of(p.row)),
                    ParseErrorKind::InvalidDate,
                    format!("found a date that is not a calendar date in {order:?} order"),
                ));
            };
            if let Some(t) = transactions.get_mut(p.index) {
                t.booking_date = booking;
                t.value_date = p.value_date.and_then(|v| v.resolve(order)).filter(|v| *v != booking);
            }
        }
        let account_id = source
            .options
            .account_id
            .clone()
            .or_else(|| profile.account_id.clone())
            .or_else(|| opt(&g.account))
            .or_else(|| meta.account.clone())
            .unwrap_or_default();
        let compact: String = account_id.split_whitespace().collect();
        let account =
            AccountIdent { iban: looks_like_iban(&compact).then_some(compact), id: account_id, ..Default::default() };
        let mut s = Statement::new(account, g.currency);
        let money = |d: Decimal| Money::new(d, g.currency);
        let r = &g.running;
        if let (Some(first), Some(last)) = (r.first, r.last) {
            let fd = transactions.first().map(|t| t.booking_date);
            let ld = transactions.last().map(|t| t.booking_date);
            let newest_first = if fd != ld { fd > ld } else { r.newest_first_ok > r.oldest_first_ok };
            let (opening, closing, ok, bad) = if newest_first {
                (last.1 - last.0, first.1, r.newest_first_ok, r.first_bad_row[1])
            } else {
                (first.1 - first.0, last.1, r.oldest_first_ok, r.first_bad_row[0])
            };
            s.opening_balance = Some(money(opening));
            s.closing_balance = Some(money(closing));
            if ok < r.steps {
                warnings.push(Warning {
                    line: bad.map(line_of),
                    statement: Some(statements.len()),
                    message: format!(
                        "the running balance does not follow the amounts on {} of {} rows",
                        r.steps - ok,
                        r.steps
                    ),
                });
            }
        }
        if let Some(o) = g.opening_col {
            s.opening_balance = Some(money(o));
        }
        if let Some(c) = g.closing_col {
            s.closing_balance = Some(money(c));
        }
        if single {
            if let Some(o) = meta.opening {
                s.opening_balance = Some(money(o));
            }
            if let Some(c) = meta.closing {
                s.closing_balance = Some(money(c));
            }
            s.start_date = resolve_meta_date(&meta.start);
            s.end_date = resolve_meta_date(&meta.end);
        }
        s.transactions = transactions;
        statements.push(s);
    }
    // The account's main currency (most lines) first; ties keep file order.
    statements.sort_by_key(|s| std::cmp::Reverse(s.transactions.len()));
    Ok(Parsed { statements, warnings })
}

/// The row's amount under `sign`: `Ok(None)` when its amount cells are empty, `Err` with the
/// column and text when one is not an amount.
fn read_amount<'c>(
    c: &Cols,
    sign: &SignConvention,
    sep: DecimalSeparator,
    cell: &dyn Fn(usize) -> &'c str,
) -> Result<Option<Decimal>, (usize, String, &'static str)> {
    let num = |i: usize| -> Result<Option<Decimal>, (usize, String, &'static str)> {
        let s = cell(i);
        if s.is_empty() {
            return Ok(None);
        }
        read_money(s, sep).map(Some).ok_or_else(|| (i, s.to_string(), "an amount"))
    };
    match sign {
        SignConvention::AsIs | SignConvention::Negate => {
            let Some(i) = c.amount else { return Ok(None) };
            let a = num(i)?;
            Ok(if *sign == SignConvention::Negate { a.map(|a| -a) } else { a })
        }
        SignConvention::DebitCredit => {
            let d = c.debit.map(num).transpose()?.flatten();
            let k = c.credit.map(num).transpose()?.flatten();
            Ok(match (d, k) {
                (None, None) => None,
                (d, k) => Some(k.unwrap_or_default().abs() - d.unwrap_or_default().abs()),
            })
        }
        SignConvention::Indicator { debit, credit } => {
            let Some(i) = c.amount else { return Ok(None) };
            let Some(a) = num(i)? else { return Ok(None) };
            let Some(ind) = c.indicator.map(cell).filter(|s| !s.is_empty()) else { return Ok(Some(a)) };
            if debit.iter().any(|w| w.eq_ignore_ascii_case(ind)) {
                Ok(Some(-a.abs()))
            } else if credit.iter().any(|w| w.eq_ignore_ascii_case(ind)) {
                Ok(Some(a.abs()))
            } else {
                Err((c.indicator.unwrap_or(0), ind.to_string(), "a debit or credit mark the profile lists"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdSource;
    use crate::parse::{ParseOptions, ParsedFile};
    use proptest::prelude::*;
    use std::str::FromStr;

    fn run_with(bytes: &[u8], options: ParseOptions) -> Result<ParsedFile, ParseError> {
        let options = ParseOptions { format: Some(Format::Csv), ..options };
        crate::parse::parse("test.csv", bytes, &options)
    }

    fn run(text: &str) -> ParsedFile {
        match run_with(text.as_bytes(), ParseOptions::default()) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn amounts(p: &ParsedFile) -> Vec<String> {
        p.statements[0].transactions.iter().map(|t| t.amount.amount().to_string()).collect()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn plain_amounts_read_exactly_as_the_general_reader_reads_them() {
        for (text, sep) in [
            ("-1234.56", DecimalSeparator::Dot),
            ("12,50", DecimalSeparator::Comma),
            ("+7", DecimalSeparator::Auto),
            ("-0.00", DecimalSeparator::Auto),
            ("0,12", DecimalSeparator::Auto),
            ("007.50", DecimalSeparator::Dot),
        ] {
            let quick = plain_amount(text, sep).map(|d| d.serialize());
            assert_eq!(quick, text::parse_amount(text, sep).map(|d| d.serialize()), "{text}");
            assert!(quick.is_some(), "{text}");
        }
        // Thousands groups and the other separator are left to the general reader.
        assert_eq!(plain_amount("1,234", DecimalSeparator::Auto), None);
        assert_eq!(plain_amount("0,123", DecimalSeparator::Auto), None);
        assert_eq!(plain_amount("1,5", DecimalSeparator::Dot), None);
        assert_eq!(plain_amount("1234567890123456789", DecimalSeparator::Dot), None);
    }

    #[test]
    fn a_german_semicolon_export_reads_decimal_commas_and_the_currency_in_the_header() {
        let p = run("Buchungstag;Valuta;Verwendungszweck;Betrag (EUR);\n\
                     01.10.2023;02.10.2023;Miete;-1.250,00;\n\
                     03.10.2023;03.10.2023;Gehalt;2.500,50;\n");
        let s = &p.statements[0];
        assert_eq!(s.currency, Currency::EUR);
        assert_eq!(amounts(&p), ["-1250.00", "2500.50"]);
        assert_eq!(s.transactions[0].booking_date, date(2023, 10, 1));
        assert_eq!(s.transactions[0].value_date, Some(date(2023, 10, 2)));
        assert_eq!(&*s.transactions[0].description, "Miete");
    }

    #[test]
    fn metadata_above_the_header_gives_account_balance_and_period() {
        let p = run("\"Konto:\";\"DE44500105175407324931\";\n\"Von:\";\"01.03.2024\";\n\"Bis:\";\"31.03.2024\";\n\
                     \"Saldo:\";\"120.50 EUR\";\n\n\
                     \"Buchungstag\";\"Beschreibung\";\"Betrag\";\n\"05.03.2024\";\"Kaffee\";\"-3,50\";\n");
        let s = &p.statements[0];
        assert_eq!(s.account.id, "DE44500105175407324931");
        assert_eq!(s.account.iban.as_deref(), Some("DE44500105175407324931"));
        assert_eq!(s.closing_balance, Some(Money::new(dec("120.50"), Currency::EUR)));
        assert_eq!(s.start_date, Some(date(2024, 3, 1)));
        assert_eq!(s.end_date, Some(date(2024, 3, 31)));
        assert_eq!(amounts(&p), ["-3.50"]);
    }

    #[test]
    fn a_newest_first_running_balance_gives_opening_and_closing() {
        let p = run("Date,Description,Amount,Balance\n\
                     03/20/2024,Rent,-500.00,1000.00\n03/15/2024,Salary,1200.00,1500.00\n03/02/2024,Shop,-20.00,300.00\n");
        let s = &p.statements[0];
        assert_eq!(s.closing_balance.map(|m| m.amount()), Some(dec("1000.00")));
        assert_eq!(s.opening_balance.map(|m| m.amount()), Some(dec("320.00")));
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn an_oldest_first_running_balance_gives_opening_and_closing() {
        let p =
            run("Date,Description,Amount,Balance\n2024-03-02,Shop,-20.00,300.00\n2024-03-15,Salary,1200.00,1500.00\n");
        let s = &p.statements[0];
        assert_eq!(s.opening_balance.map(|m| m.amount()), Some(dec("320.00")));
        assert_eq!(s.closing_balance.map(|m| m.amount()), Some(dec("1500.00")));
    }

    #[test]
    fn debit_and_credit_columns_give_signed_amounts() {
        let p = run("Date,Details,Withdrawal,Deposit\n2024-01-02,ATM,\"$1,000.00\",\n2024-01-03,Pay,,$250.10\n");
        assert_eq!(amounts(&p), ["-1000.00", "250.10"]);
        assert_eq!(p.statements[0].currency, Currency::USD);
    }

    #[test]
    fn an_indicator_column_signs_unsigned_amounts() {
        let p = run("Date;Text;Amount;D/C\n2024-01-02;Fee;12.00;D\n2024-01-03;Refund;-5.00;C\n");
        assert_eq!(amounts(&p), ["-12.00", "5.00"]);
    }

    #[test]
    fn parentheses_symbols_and_thousands_are_read() {
        let p = run("Date,Memo,Amount\n2024-01-02,a,(45.00)\n2024-01-03,b,\"€1,234.56\"\n2024-01-04,c,100.00-\n");
        assert_eq!(amounts(&p), ["-45.00", "1234.56", "-100.00"]);
        assert_eq!(p.statements[0].currency, Currency::EUR);
    }

    #[test]
    fn month_first_dates_are_decided_by_the_whole_file() {
        let p = run("Date,Description,Amount\n03/04/2024,a,1.00\n12/25/2024,b,2.00\n");
        assert_eq!(p.statements[0].transactions[0].booking_date, date(2024, 3, 4));
    }

    #[test]
    fn the_callers_date_order_currency_and_account_win() {
        let options = ParseOptions {
            date_order: Some(DateOrder::Mdy),
            currency: Some(Currency::new("GBP").unwrap()),
            account_id: Some("ACC-1".into()),
            ..Default::default()
        };
        let p = run_with(b"Date,Description,Amount\n03/04/2024,a,1.00\n", options).unwrap();
        let s = &p.statements[0];
        assert_eq!(s.transactions[0].booking_date, date(2024, 3, 4));
        assert_eq!(s.currency.code(), "GBP");
        assert_eq!(s.account.id, "ACC-1");
    }

    #[test]
    fn a_file_without_header_is_read_by_content() {
        let p = run("\n1111;28.12.2012;27.12.2012;INTEREST TAX;;;-0,17\n1111;21.01.2013;18.01.2013;FUEL;;;-15,00\n");
        let t = &p.statements[0].transactions;
        assert_eq!(amounts(&p), ["-0.17", "-15.00"]);
        assert_eq!(&*t[1].description, "FUEL");
        assert_eq!(t[1].value_date, Some(date(2013, 1, 18)));
        assert!(p.warnings.iter().any(|w| w.message.contains("no header")));
    }

    #[test]
    fn windows_1252_and_a_bom_are_decoded() {
        let p = run_with(b"Date;Libell\xe9;Montant\n2024-01-02;Caf\xe9 \x80;-2,50\n", ParseOptions::default()).unwrap();
        assert_eq!(&*p.statements[0].transactions[0].description, "Café €");
        let p = run("\u{feff}Date,Description,Amount\n2024-01-02,x,1\n");
        assert_eq!(p.transaction_count(), 1);
    }

    #[test]
    fn a_bad_amount_names_the_line_column_and_text() {
        let e = run_with(b"Date,Description,Amount\n2024-01-02,x,1.00\n2024-01-03,y,twelve\n", Default::default())
            .unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::InvalidAmount);
        assert_eq!(e.line, Some(3));
        assert_eq!(e.column, Some(3));
        assert_eq!(e.field.as_deref(), Some("Amount"));
        assert!(e.message.contains("\"twelve\""), "{e}");
    }

    #[test]
    fn a_bad_date_names_the_line_and_column() {
        let e =
            run_with(b"Date,Description,Amount\n2024-01-02,x,1.00\n2024-13-45,y,1\n", Default::default()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::InvalidDate);
        assert_eq!(e.line, Some(3));
        assert_eq!(e.field.as_deref(), Some("Date"));
    }

    #[test]
    fn rows_without_date_or_with_totals_are_skipped_with_a_warning() {
        let p = run("Date,Description,Amount\n2024-01-02,x,1.00\n,,\nTotal,,1.00\n");
        assert_eq!(p.transaction_count(), 1);
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert_eq!(p.warnings[1].line, Some(4));
    }

    #[test]
    fn labelled_balance_rows_become_the_statement_balances() {
        let p = run("Date,Description,Amount\n2024-01-01,Opening balance,100.00\n2024-01-02,x,-1.00\n\
                     2024-01-31,Closing balance,99.00\n");
        let s = &p.statements[0];
        assert_eq!(s.transactions.len(), 1);
        assert_eq!(s.opening_balance.map(|m| m.amount()), Some(dec("100.00")));
        assert_eq!(s.closing_balance.map(|m| m.amount()), Some(dec("99.00")));
    }

    #[test]
    fn an_id_column_gives_bank_ids_and_a_fee_column_a_line_of_its_own() {
        let p = run("Date,Name,Currency,Gross,Fee,Net,Balance,Transaction ID\n\
                     1/2/2024,Buyer,USD,100.00,-3.20,96.80,96.80,T1\n");
        let t = &p.statements[0].transactions;
        assert_eq!(amounts(&p), ["100.00", "-3.20"]);
        assert_eq!(&*t[0].id, "T1");
        assert_eq!(t[0].id_source, IdSource::Bank);
        assert_eq!(&*t[1].id, "T1:fee");
        assert_eq!(t[0].payee.as_deref(), Some("Buyer"));
        assert_eq!(p.statements[0].opening_balance.map(|m| m.amount()), Some(Decimal::ZERO));
    }

    #[test]
    fn a_currency_column_splits_the_file_into_one_statement_per_currency() {
        let p = run("Date,Description,Currency,Amount\n2024-01-02,a,EUR,1\n2024-01-02,b,USD,2\n2024-01-03,c,USD,3\n");
        assert_eq!(p.statements.len(), 2);
        assert_eq!(p.statements[0].currency, Currency::USD);
        assert_eq!(p.statements[0].transactions.len(), 2);
    }

    #[test]
    fn a_profile_overrides_detection_by_index_or_name() {
        let toml_text = r#"
            name = "Example Bank"
            delimiter = "|"
            header = false
            decimal_separator = "comma"
            date_format = "%d%m%Y"
            currency = "CHF"
            [columns]
            date = 0
            amount = 2
            description = 1
            [sign]
            kind = "negate"
        "#;
        let profile: CsvProfile = toml::from_str(toml_text).unwrap();
        let options = ParseOptions { csv_profile: Some(profile), ..Default::default() };
        let p = run_with(b"02012024|Card purchase|12,50\n", options).unwrap();
        let s = &p.statements[0];
        assert_eq!(s.currency.code(), "CHF");
        assert_eq!(s.transactions[0].amount.amount(), dec("-12.50"));
        assert_eq!(s.transactions[0].booking_date, date(2024, 1, 2));

        let json = r#"{"columns":{"date":"When","amount":"How much"},"sign":{"kind":"indicator","debit":["S"],"credit":["H"]}}"#;
        let mut profile: CsvProfile = serde_json::from_str(json).unwrap();
        profile.columns.indicator = Some(ColumnRef::Name("S/H".into()));
        let options = ParseOptions { csv_profile: Some(profile), ..Default::default() };
        let p = run_with(b"When,How much,S/H\n2024-01-02,5.00,S\n", options).unwrap();
        assert_eq!(p.statements[0].transactions[0].amount.amount(), dec("-5.00"));
    }

    #[test]
    fn a_profile_naming_a_missing_column_is_refused() {
        let profile = CsvProfile {
            columns: CsvColumns {
                date: Some(ColumnRef::Name("Datum".into())),
                amount: Some(ColumnRef::Name("Betrag".into())),
                ..Default::default()
            },
            ..Default::default()
        };
        let options = ParseOptions { csv_profile: Some(profile), ..Default::default() };
        let e = run_with(b"Date,Amount\n2024-01-02,1\n", options).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::MissingField);
        assert_eq!(e.field.as_deref(), Some("date"));
    }

    #[test]
    fn the_detected_profile_is_the_mapping_used_and_survives_a_round_trip() {
        let bytes = b"Posting Date;Description;Debit;Credit\n02.01.2024;Shop;10,00;\n";
        let options = ParseOptions::default();
        let source = Source { name: "x.csv", bytes, options: &options, progress: None };
        let profile = detect_profile(&source).unwrap();
        assert_eq!(profile.delimiter, Some(';'));
        assert_eq!(profile.sign, SignConvention::DebitCredit);
        assert_eq!(profile.decimal_separator, DecimalSeparator::Comma);
        assert_eq!(profile.columns.debit, Some(ColumnRef::Name("Debit".into())));
        let json = serde_json::to_string(&profile).unwrap();
        assert_eq!(serde_json::from_str::<CsvProfile>(&json).unwrap(), profile);
    }

    #[test]
    fn a_running_balance_that_only_fits_the_opposite_sign_flips_it() {
        let p = run("Date,Label,Debit,Credit,Balance\n2024-01-01,a,0.00,20.00,-10.00\n\
                     2024-01-01,b,0.00,13.50,-23.50\n2024-01-01,c,33.50,0.00,10.00\n");
        assert_eq!(amounts(&p), ["-20.00", "-13.50", "33.50"]);
        assert!(p.warnings.iter().any(|w| w.message.contains("opposite sign")));
    }

    #[test]
    fn a_header_only_file_has_no_statements() {
        let p = run("Date,Description,Amount\n");
        assert!(p.statements.is_empty());
    }

    #[test]
    fn a_row_with_merged_middle_fields_is_read_from_its_end_with_a_warning() {
        let p = run("Date,Bank,Address,City,Country,Name,Memo,Amount,\n2012:03:01,,\",Vilnius,LT\",Shop,Fee,-7.80,\n\
                     2012:03:02,X,Street,Town,LT,Payee,Pay,5.00,\n");
        assert_eq!(amounts(&p), ["-7.80", "5.00"]);
        assert_eq!(&*p.statements[0].transactions[0].description, "Fee");
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert_eq!(p.warnings[0].line, Some(2));
    }

    #[test]
    fn valuta_is_a_value_date_or_a_currency_as_its_cells_say() {
        let p = run("Buchungstag;Valuta;Text;Betrag\n01.02.2024;02.02.2024;x;-1,00\n");
        assert_eq!(p.statements[0].transactions[0].value_date, Some(date(2024, 2, 2)));
        let p = run("Datum;Valuta;Omschrijving;Bedrag\n01-02-2024;EUR;x;-1,00\n");
        assert_eq!(p.statements[0].currency, Currency::EUR);
    }

    #[test]
    fn a_labelled_balance_above_the_header_is_the_closing_balance() {
        let p = run("Account Number : 0808,: EUR,,\nBalance at end of period,,,\"+31,50\"\nDate,Label,Debit,Credit\n\
                     01/04/20,a,\"-50,00\",\n02/04/20,b,,\"81,50\"\n");
        let s = &p.statements[0];
        assert_eq!(s.account.id, "0808");
        assert_eq!(s.currency, Currency::EUR);
        assert_eq!(s.closing_balance.map(|m| m.amount()), Some(dec("31.50")));
        assert_eq!(amounts(&p), ["-50.00", "81.50"]);
    }

    #[test]
    fn absurdly_large_amounts_are_refused() {
        assert_eq!(MONEY_LIMIT, Decimal::from(1_000_000_000_000_000_000i64));
        let e = run_with(b"Date,Amount\n2024-01-01,1\n2024-01-02,79228162514264337593543950335\n", Default::default())
            .unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::InvalidAmount);
    }

    #[test]
    fn the_row_estimate_is_exact_for_small_files_and_bounded_for_large_ones() {
        assert_eq!(rows_ahead(b"a,1\nb,2\nc,3", 0), 3);
        assert_eq!(rows_ahead(b"h\na,1\nb,2\n", 2), 3);
        let even = "2024-01-01,Some text of a line,-12.50\n".repeat(10_000);
        let rows = rows_ahead(even.as_bytes(), 0);
        assert!((10_000..=10_200).contains(&rows), "{rows}");
        // Blank lines in the sample do not reserve a line per byte of the rest.
        let odd = format!("{}{}", "\n".repeat(ROW_SAMPLE), "x".repeat(10 * ROW_SAMPLE));
        assert!(rows_ahead(odd.as_bytes(), 0) <= odd.len() / MIN_ROW_BYTES + odd.len() / MIN_ROW_BYTES / 64);
    }

    #[test]
    fn a_joined_description_and_memo_read_as_the_cleaned_joint_text() {
        for (d, m) in [("Rent", "March"), ("Two  blanks", "memo"), ("Tab\there", "x"), ("a", "line\nbreak")] {
            assert_eq!(joined_text(d, m), clean_text(&format!("{d} / {m}")), "{d:?} {m:?}");
        }
    }

    #[test]
    fn csv_is_recognised_by_a_consistent_delimiter() {
        assert!(looks_like_csv("a;b;c\n1;2;3\n4;5;6\n"));
        assert!(looks_like_csv("Date\tAmount\n2024-01-01\t1\n"));
        assert!(!looks_like_csv("just some prose without any structure\nand another line\n"));
        assert!(!looks_like_csv("a,b\u{0}\n1,2\n"));
    }

    /// A transaction as the round-trip writer writes it.
    #[derive(Debug, Clone)]
    struct Line {
        date: NaiveDate,
        cents: i64,
        text: String,
        id: String,
    }

    fn line_strategy() -> impl Strategy<Value = Line> {
        (0i64..20_000, -100_000_000i64..100_000_000, "[A-Za-z]{1,8}( [A-Za-z]{1,8}){0,2}", "[A-Z0-9]{1,10}").prop_map(
            |(day, cents, text, id)| Line { date: date(2000, 1, 1) + chrono::Duration::days(day), cents, text, id },
        )
    }

    fn write_csv(lines: &[Line], delimiter: char, comma: bool, german_dates: bool) -> String {
        let d = delimiter;
        let mut out = format!("Date{d}Description{d}Amount{d}Transaction ID\n");
        for l in lines {
            let date = if german_dates {
                l.date.format("%d.%m.%Y").to_string()
            } else {
                l.date.format("%Y-%m-%d").to_string()
            };
            let mut amount = Decimal::new(l.cents, 2).to_string();
            if comma {
                amount = amount.replace('.', ",");
            }
            out.push_str(&format!("{date}{d}{}{d}{amount}{d}{}\n", l.text, l.id));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn written_statements_parse_back_to_the_same_transactions(
            lines in proptest::collection::vec(line_strategy(), 1..30),
            delimiter in prop::sample::select(vec![',', ';', '\t', '|']),
            german_dates: bool,
        ) {
            let comma = delimiter != ',' && delimiter != '|';
            let text = write_csv(&lines, delimiter, comma, german_dates);
            let parsed = run_with(text.as_bytes(), ParseOptions::default()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(parsed.statements.len(), 1);
            let got = &parsed.statements[0].transactions;
            prop_assert_eq!(got.len(), lines.len());
            for (t, l) in got.iter().zip(&lines) {
                prop_assert_eq!(t.booking_date, l.date);
                prop_assert_eq!(t.amount.amount(), Decimal::new(l.cents, 2));
                prop_assert_eq!(&*t.description, l.text.as_str());
                prop_assert_eq!(&*t.id, l.id.as_str());
            }
        }

        #[test]
        fn the_plain_amount_reader_agrees_with_the_general_one(
            text in "[-+]?[0-9]{0,20}([.,][0-9]{0,5}){0,2}",
            sep in prop::sample::select(vec![DecimalSeparator::Auto, DecimalSeparator::Dot, DecimalSeparator::Comma]),
        ) {
            if let Some(quick) = plain_amount(&text, sep) {
                prop_assert_eq!(Some(quick.serialize()), text::parse_amount(&text, sep).map(|d| d.serialize()), "{:?}", text);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = run_with(&bytes, ParseOptions::default());
        }

        #[test]
        fn csv_like_text_never_panics(text in "[0-9a-zA-Z,;.:()$€\"\n\r/ +-]{0,300}") {
            let _ = run_with(text.as_bytes(), ParseOptions::default());
            let _ = looks_like_csv(&text);
        }
    }
}
