//! SWIFT MT940 customer statements and MT942 interim reports, with the dialects banks actually
//! send: SWIFT block wrappers and bank header lines, wrapped lines, decimal dots, missing entry
//! dates, funds codes, missing transaction types, and `:86:` texts that are free text, German
//! `?NN` subfields (or Triodos' `>NN`), `/CODE/` slash fields or SEPA `EREF+`/`SVWZ+` keywords.
//!
//! The file is read line by line without copying: a field is the span from its tag to the last
//! line that continues it, and is interpreted when the next tag (or the end) arrives. Tag order is
//! checked within a statement that starts with `:20:`; fragments without `:20:` are read leniently
//! and flagged with a warning.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;

use super::text::{self, DateOrder, DecimalSeparator};
use super::{Format, ParseError, ParseErrorKind, Parsed, Source, Warning};
use crate::domain::{AccountIdent, BankTransaction, Currency, Money, Statement};

/// SWIFT text lines are at most 65 characters; a line that long was wrapped mid-text.
const SWIFT_LINE: usize = 65;

/// How often (in transactions) progress is reported.
const PROGRESS_EVERY: usize = 4096;

/// Parses a MT940 file (`format` says which variant was detected or asked for).
pub fn parse(source: &Source<'_>, format: Format) -> Result<Parsed, ParseError> {
    let text = text::decode(source.bytes, None);
    let mut parser = Parser {
        source,
        format,
        statements: Vec::new(),
        warnings: Vec::new(),
        open: None,
        bank_ids: HashMap::new(),
        transactions: 0,
        fields: 0,
    };
    parser.run(&text)?;
    if parser.fields == 0 {
        return Err(source.error(
            format,
            None,
            ParseErrorKind::Empty,
            "found no MT940 field, expected a statement starting with `:20:`",
        ));
    }
    Ok(Parsed { statements: parser.statements, warnings: parser.warnings })
}

/// The fields this parser knows. Anything else shaped like a tag is wrapped text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Reference,   // :20:
    Related,     // :21:
    Account,     // :25:, :25P:
    Number,      // :28:, :28C:
    FloorLimit,  // :34F:
    DateTime,    // :13:, :13D:
    Opening,     // :60F:, :60M:
    Line,        // :61:
    Info,        // :86:
    Closing,     // :62F:, :62M:
    Available,   // :64:
    Forward,     // :65:
    Summary,     // :90C:, :90D:
    NonSwift,    // :NS:
}

impl Tag {
    fn from_name(name: &str) -> Option<Tag> {
        Some(match name {
            "20" => Tag::Reference,
            "21" => Tag::Related,
            "25" | "25P" => Tag::Account,
            "28" | "28C" => Tag::Number,
            "34F" => Tag::FloorLimit,
            "13" | "13D" => Tag::DateTime,
            "60F" | "60M" => Tag::Opening,
            "61" => Tag::Line,
            "86" => Tag::Info,
            "62F" | "62M" => Tag::Closing,
            "64" => Tag::Available,
            "65" => Tag::Forward,
            "90C" | "90D" => Tag::Summary,
            "NS" => Tag::NonSwift,
            _ => return None,
        })
    }
}

/// Where a statement that started with `:20:` is, for the tag order check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Reference,
    Related,
    Account,
    Number,
    Report,
    Opening,
    StatementInfo,
    Line,
    LineInfo,
    Closing,
    Trailer,
    Summary,
}

impl Stage {
    /// The tags that may follow, and how to say so in an error.
    fn allows(self, tag: Tag) -> bool {
        use Tag as T;
        match self {
            Stage::Reference => matches!(tag, T::Related | T::Account),
            Stage::Related => matches!(tag, T::Account),
            Stage::Account => matches!(tag, T::Number | T::Opening | T::FloorLimit | T::DateTime),
            Stage::Number => matches!(tag, T::Opening | T::FloorLimit | T::DateTime | T::Line),
            Stage::Report => matches!(tag, T::FloorLimit | T::DateTime | T::Line | T::Info | T::Summary),
            Stage::Opening | Stage::StatementInfo => matches!(tag, T::Line | T::Info | T::Closing),
            Stage::Line | Stage::LineInfo => matches!(tag, T::Line | T::Info | T::Closing | T::Summary),
            Stage::Closing => matches!(tag, T::Available | T::Forward | T::Info),
            Stage::Trailer => matches!(tag, T::Forward | T::Info),
            Stage::Summary => matches!(tag, T::Summary | T::Info),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Stage::Reference => "`:21:` or `:25:`",
            Stage::Related => "`:25:`",
            Stage::Account => "`:28C:` or `:60F:`",
            Stage::Number => "`:60F:` (or `:34F:`/`:13D:` in a MT942)",
            Stage::Report => "`:34F:`, `:13D:`, `:61:` or `:90D:`",
            Stage::Opening | Stage::StatementInfo => "`:61:`, `:86:` or `:62F:`",
            Stage::Line | Stage::LineInfo => "`:61:`, `:86:` or `:62F:`",
            Stage::Closing => "`:64:`, `:65:`, `:86:` or `:20:`",
            Stage::Trailer => "`:65:`, `:86:` or `:20:`",
            Stage::Summary => "`:90C:`, `:86:` or `:20:`",
        }
    }

    fn after(tag: Tag, current: Stage) -> Stage {
        match tag {
            Tag::Reference => Stage::Reference,
            Tag::Related => Stage::Related,
            Tag::Account => Stage::Account,
            Tag::Number => Stage::Number,
            Tag::FloorLimit | Tag::DateTime => Stage::Report,
            Tag::Opening => Stage::Opening,
            Tag::Line => Stage::Line,
            Tag::Info => match current {
                Stage::Line | Stage::LineInfo => Stage::LineInfo,
                Stage::Opening | Stage::StatementInfo | Stage::Report => Stage::StatementInfo,
                other => other,
            },
            Tag::Closing => Stage::Closing,
            Tag::Available | Tag::Forward => Stage::Trailer,
            Tag::Summary => Stage::Summary,
            Tag::NonSwift => current,
        }
    }
}

/// One line of the text, without its line break.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    number: usize,
    start: usize,
    text: &'a str,
}

/// Splits text at LF, CRLF or a lone CR, counting lines from `first`.
#[derive(Clone)]
struct Lines<'a> {
    text: &'a str,
    base: usize,
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str, base: usize, first: usize) -> Self {
        Lines { text, base, pos: 0, number: first.saturating_sub(1) }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Line<'a>;

    fn next(&mut self) -> Option<Line<'a>> {
        let bytes = self.text.as_bytes();
        let rest = bytes.get(self.pos..).filter(|r| !r.is_empty())?;
        let start = self.pos;
        let (end, next) = match memchr::memchr2(b'\n', b'\r', rest) {
            Some(i) => {
                let crlf = rest.get(i) == Some(&b'\r') && rest.get(i + 1) == Some(&b'\n');
                (start + i, start + i + if crlf { 2 } else { 1 })
            }
            None => (bytes.len(), bytes.len()),
        };
        self.pos = next;
        self.number += 1;
        Some(Line { number: self.number, start: self.base + start, text: self.text.get(start..end).unwrap_or("") })
    }
}

/// A field: its tag and the span of its content, from after the tag to the end of its last line.
#[derive(Debug, Clone, Copy)]
struct Field<'a> {
    tag: Tag,
    name: &'a str,
    line: usize,
    start: usize,
    end: usize,
}

impl<'a> Field<'a> {
    fn body(&self, text: &'a str) -> &'a str {
        text.get(self.start..self.end).unwrap_or("")
    }

    /// The content's lines: the rest of the tag line, then each continuation line.
    fn lines(&self, text: &'a str) -> Lines<'a> {
        Lines::new(self.body(text), self.start, self.line)
    }

    fn label(&self) -> String {
        format!(":{}:", self.name)
    }
}

/// `:NN:` / `:NNA:` / `:NS:` at the start of a line: the tag name and where the content starts.
fn tag_shape(line: &str) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    if b.first() != Some(&b':') {
        return None;
    }
    if b.get(1..4) == Some(b"NS:") {
        return Some(("NS", 4));
    }
    let digits = b.get(1..3)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    match (b.get(3), b.get(4)) {
        (Some(b':'), _) => Some((line.get(1..3)?, 4)),
        (Some(c), Some(b':')) if c.is_ascii_uppercase() => Some((line.get(1..4)?, 5)),
        _ => None,
    }
}

/// Lines banks put before or between messages that carry no statement data.
fn is_known_header(line: &str) -> bool {
    let t = line.trim();
    if t.is_empty() || t.bytes().all(|b| b == b'-' || b == b'=' || b == b'.') {
        return true;
    }
    if matches!(t, "940" | "942" | ":940:" | ":942:" | "940 00" | "942 00") || t.starts_with("0000 ") {
        return true;
    }
    // A BIC on its own line (ABN AMRO, bunq).
    (t.len() == 8 || t.len() == 11) && is_bic(t)
}

fn is_bic(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() == 8 || b.len() == 11)
        && b.iter().take(6).all(u8::is_ascii_uppercase)
        && b.iter().skip(6).all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Whether `s` is an IBAN with a valid check sum (blanks not allowed).
fn is_iban(s: &str) -> bool {
    let b = s.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b.iter().take(2).all(u8::is_ascii_uppercase)
        || !b.iter().skip(2).take(2).all(u8::is_ascii_digit)
        || !b.iter().all(u8::is_ascii_alphanumeric)
    {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b.iter().skip(4).chain(b.iter().take(4)) {
        let v = if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c.to_ascii_uppercase() - b'A') + 10 };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// The account identification as written, with its parts recognised.
fn account_ident(raw: &str) -> (AccountIdent, Option<Currency>) {
    let id = raw.trim();
    let mut account = AccountIdent { id: id.to_string(), ..Default::default() };
    let mut currency = None;
    let mut number = id;
    if let Some((prefix, rest)) = id.split_once('/') {
        if is_bic(prefix) {
            account.bic = Some(prefix.to_string());
            number = rest;
        } else if !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) {
            account.bank_id = Some(prefix.to_string());
            number = rest;
        }
    }
    // Dutch banks append the currency: `NL77INGB0574908765EUR`, `0800003200000001610722 EUR`.
    if number.len() > 3 {
        let split = number.len() - 3;
        if let (Some(head), Some(tail)) = (number.get(..split), number.get(split..)) {
            if tail.bytes().all(|b| b.is_ascii_uppercase()) {
                if let Ok(c) = Currency::new(tail) {
                    currency = Some(c);
                    let head = head.trim_end_matches([' ', '/']);
                    if is_iban(head) {
                        account.iban = Some(head.to_string());
                    }
                }
            }
        }
    }
    if account.iban.is_none() && is_iban(number) {
        account.iban = Some(number.to_string());
    }
    (account, currency)
}

/// The first valid IBAN among the words of a text.
fn find_iban(text: &str) -> Option<&str> {
    text.split(|c: char| !c.is_ascii_alphanumeric()).find(|w| w.len() >= 15 && is_iban(w))
}

/// A signed amount as MT940 writes it: digits with one optional decimal comma (or dot, in old
/// Rabobank files), possibly without decimals (`500,` or `500`).
fn swift_amount(raw: &str) -> Option<Decimal> {
    let sep_count = raw.bytes().filter(|b| *b == b',' || *b == b'.').count();
    if sep_count > 1 || !raw.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if !raw.bytes().all(|b| b.is_ascii_digit() || b == b',' || b == b'.') {
        return None;
    }
    let trimmed = raw.trim_end_matches([',', '.']);
    let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
    let sep = if trimmed.contains('.') { DecimalSeparator::Dot } else { DecimalSeparator::Comma };
    text::parse_amount(trimmed, sep)
}

/// Length of the amount at the start of `b` (digits and separators).
fn amount_len(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit() || **c == b',' || **c == b'.').count()
}

/// A date that does not exist (30 February) is moved to the month's last day with a warning, as
/// some banks write such value dates; a month outside 1..=12 is an error.
fn ymd(year: i32, month: u32, day: u32) -> Option<(NaiveDate, bool)> {
    if let Some(d) = NaiveDate::from_ymd_opt(year, month, day) {
        return Some((d, false));
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    (28..day).rev().find_map(|d| NaiveDate::from_ymd_opt(year, month, d)).map(|d| (d, true))
}

/// `YYMMDD` at the start of `b`.
fn yymmdd(b: &[u8]) -> Option<(NaiveDate, bool)> {
    let digits = b.get(..6).filter(|d| d.iter().all(u8::is_ascii_digit))?;
    let n = |i: usize| u32::from(digits[i] - b'0') * 10 + u32::from(digits[i + 1] - b'0');
    let fields = [n(0), n(2), n(4)];
    if let Some(d) = text::date_from_fields(fields, DateOrder::Ymd, 2) {
        return Some((d, false));
    }
    ymd(text::expand_year(fields[0], 2) as i32, fields[1], fields[2])
}

/// The entry (booking) date `MMDD`, in the year that puts it nearest the value date: a line valued
/// on 31 December and booked on 2 January was booked in the next year.
fn entry_date(value: NaiveDate, month: u32, day: u32) -> Option<(NaiveDate, bool)> {
    let y = value.year();
    [y - 1, y, y + 1]
        .into_iter()
        .filter_map(|year| ymd(year, month, day))
        .min_by_key(|(d, _)| (*d - value).num_days().abs())
}

/// The parts of a `:61:` statement line.
#[derive(Debug)]
struct StatementLine<'a> {
    value_date: NaiveDate,
    booking_date: NaiveDate,
    clamped: bool,
    amount: Decimal,
    type_code: Option<&'a str>,
    customer_ref: &'a str,
    bank_ref: Option<&'a str>,
}

/// Why a `:61:` could not be read: where, what, and whether more text might complete it.
struct LineError {
    offset: usize,
    kind: ParseErrorKind,
    message: String,
    truncated: bool,
}

fn line_error(offset: usize, kind: ParseErrorKind, message: String, truncated: bool) -> LineError {
    LineError { offset, kind, message, truncated }
}

fn shown(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b.get(..b.len().min(12)).unwrap_or(b)).into_owned();
    if s.is_empty() {
        "the end of the line".into()
    } else {
        format!("`{s}`")
    }
}

/// Reads `:61:` content: value date, optional entry date, mark, optional funds code, amount,
/// optional type code, reference for the account owner and `//` bank reference.
fn statement_line(s: &str) -> Result<StatementLine<'_>, LineError> {
    let b = s.as_bytes();
    let (value_date, mut clamped) = yymmdd(b).ok_or_else(|| {
        let short = b.len() < 6 && b.iter().all(u8::is_ascii_digit);
        line_error(0, ParseErrorKind::InvalidDate, format!("found {}, expected a value date YYMMDD", shown(b)), short)
    })?;
    let mut i = 6;
    let mut booking_date = value_date;
    if let Some(md) = b.get(6..10).filter(|d| d.iter().all(u8::is_ascii_digit)) {
        let month = u32::from(md[0] - b'0') * 10 + u32::from(md[1] - b'0');
        let day = u32::from(md[2] - b'0') * 10 + u32::from(md[3] - b'0');
        let (d, c) = entry_date(value_date, month, day).ok_or_else(|| {
            line_error(6, ParseErrorKind::InvalidDate, format!("found {}, expected an entry date MMDD", shown(md)), false)
        })?;
        booking_date = d;
        clamped |= c;
        i = 10;
    }
    let rest = b.get(i..).unwrap_or_default();
    let (negative, mark_len) = match rest {
        [b'R', b'C', ..] => (true, 2),
        [b'R', b'D', ..] => (false, 2),
        [b'E', b'C', ..] => (false, 2),
        [b'E', b'D', ..] => (true, 2),
        [b'C', ..] => (false, 1),
        [b'D', ..] => (true, 1),
        _ => {
            return Err(line_error(
                i,
                ParseErrorKind::Syntax,
                format!("found {}, expected the debit/credit mark C, D, RC or RD", shown(rest)),
                rest.is_empty(),
            ))
        }
    };
    i += mark_len;
    // The funds code is the third letter of the currency code.
    if b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        i += 1;
    }
    let rest = b.get(i..).unwrap_or_default();
    let len = amount_len(rest);
    let raw = s.get(i..i + len).unwrap_or("");
    let amount = swift_amount(raw).ok_or_else(|| {
        line_error(
            i,
            ParseErrorKind::InvalidAmount,
            format!("found {}, expected an amount such as 123,45", shown(rest)),
            rest.is_empty(),
        )
    })?;
    i += len;
    let rest = s.get(i..).unwrap_or("").trim_end();
    let rb = rest.as_bytes();
    let nonref_only = rest.starts_with("NONREF") && (rest.len() == 6 || rest.get(6..8) == Some("//"));
    let (type_code, rest) = if rest.starts_with("//") || nonref_only || rest.is_empty() {
        (None, rest)
    } else if matches!(rb.first(), Some(b'N' | b'F' | b'S')) && rest.len() >= 4 && rest.is_char_boundary(4) {
        (rest.get(..4).map(str::trim_end), rest.get(4..).unwrap_or(""))
    } else {
        (None, rest)
    };
    let (customer_ref, bank_ref) = match rest.find("//") {
        Some(p) => (rest.get(..p).unwrap_or(""), rest.get(p + 2..).map(str::trim).filter(|r| !r.is_empty())),
        None => (rest, None),
    };
    Ok(StatementLine {
        value_date,
        booking_date,
        clamped,
        amount: if negative { -amount } else { amount },
        type_code,
        customer_ref: customer_ref.trim(),
        bank_ref,
    })
}

/// What the `:86:` text says about a line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Info {
    description: String,
    payee: Option<String>,
    account: Option<String>,
    reference: Option<String>,
    code: Option<String>,
}

fn non_empty(s: &str) -> Option<String> {
    let t = text::squash_ws(s);
    (!t.is_empty()).then_some(t)
}

/// Joins wrapped lines: a full SWIFT line was cut mid-text and continues directly; a shorter one
/// ended a line of its own, which reads as a blank.
fn join_lines<'a>(lines: impl Iterator<Item = (usize, &'a str)>, direct: bool) -> String {
    let mut out = String::new();
    let mut prev_full = true;
    for (tag_len, line) in lines {
        if !out.is_empty() && !direct && !prev_full {
            out.push(' ');
        }
        out.push_str(line);
        prev_full = line.chars().count() + tag_len >= SWIFT_LINE;
    }
    out
}

const SEPA_KEYS: [&str; 13] =
    ["EREF+", "KREF+", "MREF+", "CRED+", "DEBT+", "SVWZ+", "ABWA+", "ABWE+", "IBAN+", "BIC+", "COAM+", "OAMT+", "PURP+"];

const SLASH_CODES: [&str; 30] = [
    "EREF", "REMI", "NAME", "IBAN", "BIC", "ORDP", "BENM", "CNTP", "TRTP", "MARF", "CSID", "ADDR", "ISDT", "RTRN",
    "PREF", "SUM", "OCMT", "OSDR", "PURP", "ULTC", "ULTD", "ULTB", "TRCD", "KREF", "CHGS", "EXCH", "BUSP", "SVCL",
    "OGB", "ACCW",
];

/// Reads an `:86:` text (its lines, each with the width of the tag before it).
fn info(lines: &[(usize, &str)]) -> Info {
    let direct = join_lines(lines.iter().copied(), true);
    let head = direct.trim_start().as_bytes();
    let gvc = head.len() >= 4 && head.iter().take(3).all(u8::is_ascii_digit);
    match head.get(if gvc { 3 } else { 0 }) {
        Some(sep @ (b'?' | b'>')) if head.get(if gvc { 4..6 } else { 1..3 }).is_some_and(|d| d.iter().all(u8::is_ascii_digit)) => {
            subfields(direct.trim_start(), char::from(*sep))
        }
        Some(b'/') if slash_code_at(direct.trim_start(), 0).is_some() => slash_fields(direct.trim_start()),
        _ => Info { description: text::squash_ws(&join_lines(lines.iter().copied(), false)), ..Default::default() },
    }
}

/// German structured text: `GVC?00posting text?20remittance...?31account?32name`.
fn subfields(s: &str, sep: char) -> Info {
    let mut posting = String::new();
    let mut remittance = String::new();
    let mut name = String::new();
    let mut account = String::new();
    let code = s.get(..3).filter(|c| c.bytes().all(|b| b.is_ascii_digit())).map(str::to_string);
    let mut parts = s.split(sep);
    parts.next();
    for part in parts {
        let (Some(key), Some(value)) = (part.get(..2), part.get(2..)) else {
            continue;
        };
        match key {
            "00" => posting.push_str(value),
            "20" | "21" | "22" | "23" | "24" | "25" | "26" | "27" | "28" | "29" | "60" | "61" | "62" | "63" => {
                remittance.push_str(value)
            }
            "31" => account.push_str(value),
            "32" | "33" => name.push_str(value),
            _ => {}
        }
    }
    let sepa = sepa_keywords(&remittance);
    let text = match (sepa.svwz, sepa.first) {
        (Some(svwz), _) => svwz.to_string(),
        (None, Some(first)) => remittance.get(..first).unwrap_or("").to_string(),
        (None, None) => remittance.clone(),
    };
    Info {
        description: text::squash_ws(&format!("{posting} {text}")),
        payee: non_empty(&name),
        account: non_empty(&account).or_else(|| sepa.iban.and_then(non_empty)),
        reference: sepa.eref.and_then(non_empty).filter(|r| r != "NOTPROVIDED"),
        code,
    }
}

#[derive(Default)]
struct Sepa<'a> {
    first: Option<usize>,
    eref: Option<&'a str>,
    svwz: Option<&'a str>,
    iban: Option<&'a str>,
}

/// Splits SEPA remittance text at its `KEY+` keywords.
fn sepa_keywords(s: &str) -> Sepa<'_> {
    let mut marks: Vec<(usize, usize, &str)> = Vec::new();
    for (plus, _) in s.match_indices('+') {
        for key in SEPA_KEYS {
            let start = (plus + 1).saturating_sub(key.len());
            if plus + 1 >= key.len() && s.get(start..plus + 1) == Some(key) {
                marks.push((start, plus + 1, key));
                break;
            }
        }
    }
    let mut out = Sepa { first: marks.first().map(|m| m.0), ..Default::default() };
    for (i, (_, value_start, key)) in marks.iter().enumerate() {
        let end = marks.get(i + 1).map(|m| m.0).unwrap_or(s.len());
        let value = s.get(*value_start..end).unwrap_or("");
        match *key {
            "EREF+" => out.eref = Some(value),
            "SVWZ+" => out.svwz = Some(value),
            "IBAN+" => out.iban = Some(value),
            _ => {}
        }
    }
    out
}

/// The slash code starting at byte `at` (`/EREF/`), if it is one.
fn slash_code_at(s: &str, at: usize) -> Option<&'static str> {
    let rest = s.get(at..)?;
    let rest = rest.strip_prefix('/')?;
    SLASH_CODES.into_iter().find(|code| rest.starts_with(code) && rest.as_bytes().get(code.len()) == Some(&b'/'))
}

/// Slash-coded text: `/EREF/.../NAME/.../REMI/...`, `/CNTP/iban/bic/name/city/`.
fn slash_fields(s: &str) -> Info {
    let mut marks: Vec<(usize, &str)> = Vec::new();
    for (pos, _) in s.match_indices('/') {
        if let Some(code) = slash_code_at(s, pos) {
            if marks.last().is_none_or(|(p, c)| pos >= p + c.len() + 2) {
                marks.push((pos, code));
            }
        }
    }
    let mut out = Info::default();
    let mut party: Option<(&str, &str)> = None;
    let mut remi = None;
    let mut structured_ref = None;
    for (i, (pos, code)) in marks.iter().enumerate() {
        let end = marks.get(i + 1).map(|m| m.0).unwrap_or(s.len());
        let value = s.get(pos + code.len() + 2..end).unwrap_or("");
        match *code {
            "EREF" => out.reference = non_empty(value).filter(|r| r != "NOTPROVIDED"),
            "NAME" => out.payee = non_empty(value),
            "IBAN" => out.account = non_empty(value),
            "TRTP" => out.code = non_empty(value),
            "REMI" => {
                let v = value.trim_end_matches('/');
                if let Some(r) = v.strip_prefix("STRD/CUR/").or_else(|| v.strip_prefix("STRD/")) {
                    structured_ref = non_empty(r.trim_matches('/'));
                    remi = structured_ref.clone();
                } else {
                    remi = non_empty(v.strip_prefix("USTD//").or_else(|| v.strip_prefix("USTD/")).unwrap_or(v));
                }
            }
            "CNTP" | "BENM" | "ORDP" => {
                let mut it = value.split('/');
                let account = it.next().unwrap_or("");
                let _bic = it.next();
                let name = it.next().unwrap_or("");
                if party.is_none() || !account.trim().is_empty() {
                    party = Some((account, name));
                }
            }
            _ => {}
        }
    }
    if let Some((account, name)) = party {
        if out.account.is_none() {
            out.account = non_empty(account);
        }
        if out.payee.is_none() {
            out.payee = non_empty(name);
        }
    }
    if out.reference.is_none() {
        out.reference = structured_ref;
    }
    out.description = remi.unwrap_or_else(|| text::squash_ws(s));
    out
}

/// References banks write where the account owner's reference belongs, that are not references.
fn is_placeholder_ref(r: &str) -> bool {
    matches!(r, "" | "NONREF" | "NOTPROVIDED" | "EREF" | "PREF" | "MARF" | "KREF")
}

/// A `:61:` waiting for its `:86:`.
struct Pending<'a> {
    line: usize,
    line_offset: usize,
    parts: LineParts<'a>,
    supplementary: Option<String>,
    info: Vec<(usize, &'a str)>,
}

/// The statement being read.
struct Open<'a> {
    explicit: bool,
    line: usize,
    stage: Stage,
    last_tag: Option<Field<'a>>,
    account: AccountIdent,
    account_currency: Option<Currency>,
    floor_currency: Option<Currency>,
    statement_id: Option<String>,
    opening: Option<Money>,
    closing: Option<Money>,
    available: Option<Money>,
    transactions: Vec<BankTransaction>,
    pending: Option<Pending<'a>>,
}

impl Open<'_> {
    fn new(explicit: bool, line: usize) -> Self {
        Open {
            explicit,
            line,
            stage: Stage::Reference,
            last_tag: None,
            account: AccountIdent::default(),
            account_currency: None,
            floor_currency: None,
            statement_id: None,
            opening: None,
            closing: None,
            available: None,
            transactions: Vec::new(),
            pending: None,
        }
    }

    fn currency(&self, fallback: Currency) -> Currency {
        self.opening
            .or(self.closing)
            .map(|m| m.currency())
            .or(self.floor_currency)
            .or(self.account_currency)
            .unwrap_or(fallback)
    }
}

struct Parser<'s, 'src> {
    source: &'s Source<'src>,
    format: Format,
    statements: Vec<Statement>,
    warnings: Vec<Warning>,
    open: Option<Open<'s>>,
    bank_ids: HashMap<String, HashSet<String>>,
    transactions: usize,
    fields: usize,
}

impl<'s> Parser<'s, '_> {
    fn error(&self, line: usize, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        self.source.error(self.format, Some(line), kind, message)
    }

    fn warn(&mut self, line: usize, message: impl Into<String>) {
        let statement = self.open.as_ref().map(|_| self.statements.len());
        self.warnings.push(Warning { line: Some(line), statement, message: message.into() });
    }

    fn run(&mut self, text: &'s str) -> Result<(), ParseError> {
        let mut lines = Lines::new(text, 0, 1);
        let mut field: Option<Field<'s>> = None;
        let mut skipped: Option<(usize, usize)> = None;
        while let Some(line) = lines.next() {
            let mut t = line.text;
            let mut start = line.start;
            if t.starts_with('{') {
                // SWIFT blocks `{1:...}{2:...}{4:` wrap the text block; the fields follow `{4:`.
                self.flush(&mut field, text)?;
                match t.find("{4:") {
                    Some(p) if !t.get(p + 3..).unwrap_or("").trim().is_empty() => {
                        t = t.get(p + 3..).unwrap_or("");
                        start += p + 3;
                    }
                    _ => continue,
                }
            }
            if t.is_empty() {
                continue;
            }
            if t.trim().is_empty() {
                if let Some(f) = field.as_mut() {
                    f.end = start + t.len();
                }
                continue;
            }
            if self.is_trailer(t, field.as_ref(), &lines) {
                self.flush(&mut field, text)?;
                self.close();
                continue;
            }
            let shape = tag_shape(t);
            match shape.and_then(|(name, _)| Tag::from_name(name).map(|tag| (tag, name))) {
                Some((tag, name)) => {
                    self.flush(&mut field, text)?;
                    if let Some((first, count)) = skipped.take() {
                        self.skipped_lines(first, count);
                    }
                    let offset = shape.map(|(_, o)| o).unwrap_or(0);
                    field = Some(Field { tag, name, line: line.number, start: start + offset, end: start + t.len() });
                }
                None => match field.as_mut() {
                    Some(f) => {
                        f.end = start + t.len();
                        if let Some((name, _)) = shape {
                            let msg = format!(
                                "`:{name}:` is not an MT940 tag; read as wrapped text of `{}` (line {})",
                                f.label(),
                                f.line
                            );
                            self.warn(line.number, msg);
                        }
                    }
                    None => {
                        if shape.is_some() || !is_known_header(t) {
                            skipped = Some(match skipped {
                                Some((first, count)) => (first, count + 1),
                                None => (line.number, 1),
                            });
                        }
                    }
                },
            }
        }
        self.flush(&mut field, text)?;
        if let Some((first, count)) = skipped.take() {
            self.skipped_lines(first, count);
        }
        self.close();
        Ok(())
    }

    fn skipped_lines(&mut self, first: usize, count: usize) {
        let msg = format!("skipped {count} line(s) from line {first} that are not MT940 fields");
        self.warnings.push(Warning { line: Some(first), statement: None, message: msg });
    }

    /// A `-` line ends a message, except inside a transaction's `:86:` text when more text follows
    /// (some banks wrap a `-` onto a line of its own).
    fn is_trailer(&self, t: &str, field: Option<&Field<'_>>, lines: &Lines<'_>) -> bool {
        if t.starts_with("-}") {
            return true;
        }
        if t.trim_end() != "-" {
            return false;
        }
        let in_line_info = field.is_some_and(|f| f.tag == Tag::Info)
            && self.open.as_ref().is_some_and(|o| matches!(o.stage, Stage::Line | Stage::LineInfo));
        if !in_line_info {
            return true;
        }
        match lines.clone().find(|l| !l.text.trim().is_empty()) {
            None => true,
            Some(next) => next.text.starts_with('{') || next.text.starts_with('-') || tag_shape(next.text).is_some(),
        }
    }

    fn flush(&mut self, field: &mut Option<Field<'s>>, text: &'s str) -> Result<(), ParseError> {
        match field.take() {
            Some(f) => self.field(f, text),
            None => Ok(()),
        }
    }

    fn field(&mut self, f: Field<'s>, text: &'s str) -> Result<(), ParseError> {
        self.fields += 1;
        if f.tag == Tag::Reference {
            self.close();
            self.open = Some(Open::new(true, f.line));
        } else if self.open.is_none() {
            self.open = Some(Open::new(false, f.line));
            self.warn(f.line, format!("`{}` before any `:20:`; read as part of a statement without one", f.label()));
        }
        let Some((explicit, stage, last_tag)) = self.open.as_ref().map(|o| (o.explicit, o.stage, o.last_tag)) else {
            return Ok(());
        };
        if explicit && f.tag != Tag::Reference && f.tag != Tag::NonSwift && !stage.allows(f.tag) {
            let after = last_tag.map(|p| format!("`{}` (line {})", p.label(), p.line)).unwrap_or_default();
            return Err(self
                .error(
                    f.line,
                    ParseErrorKind::Syntax,
                    format!("found `{}` after {after}, expected {} first", f.label(), stage.expected()),
                )
                .in_field(f.label()));
        }
        if let Some(open) = self.open.as_mut() {
            open.stage = Stage::after(f.tag, open.stage);
            if f.tag != Tag::NonSwift {
                open.last_tag = Some(f);
            }
        }
        match f.tag {
            Tag::Reference | Tag::Related | Tag::DateTime | Tag::Forward | Tag::Summary | Tag::NonSwift => {}
            Tag::Account => {
                let Some(open) = self.open.as_mut() else {
                    return Ok(());
                };
                let raw = join_lines(f.lines(text).map(|l| (0, l.text.trim())), true);
                let (account, currency) = account_ident(&raw);
                if !open.account.id.is_empty() && open.account.id != account.id {
                    let msg = format!("a second `:25:` ({}) in one statement; the first one is kept", account.id);
                    self.warn(f.line, msg);
                } else {
                    open.account = account;
                    open.account_currency = currency;
                }
            }
            Tag::Number => {
                let Some(open) = self.open.as_mut() else {
                    return Ok(());
                };
                let raw = join_lines(f.lines(text).map(|l| (0, l.text.trim())), true);
                open.statement_id = non_empty(&raw);
            }
            Tag::FloorLimit => {
                let first = f.lines(text).next().map(|l| l.text.trim()).unwrap_or("");
                let code = first.get(..3).unwrap_or("");
                let currency = Currency::new(code).map_err(|_| {
                    self.error(f.line, ParseErrorKind::InvalidCurrency, format!("found `{code}`, expected a currency code"))
                        .in_field(f.label())
                })?;
                if let Some(open) = self.open.as_mut() {
                    open.floor_currency.get_or_insert(currency);
                }
            }
            Tag::Opening | Tag::Closing | Tag::Available => {
                let money = self.balance(&f, text)?;
                let Some(open) = self.open.as_mut() else {
                    return Ok(());
                };
                let slot = match f.tag {
                    Tag::Opening => &mut open.opening,
                    Tag::Closing => &mut open.closing,
                    _ => &mut open.available,
                };
                let repeated = slot.is_some() && f.tag != Tag::Available;
                *slot = Some(money);
                if f.tag == Tag::Closing {
                    self.settle()?;
                }
                if repeated {
                    self.warn(f.line, format!("`{}` given twice; the later balance is kept", f.label()));
                }
            }
            Tag::Line => {
                self.settle()?;
                let pending = self.statement_line(&f, text)?;
                if let Some(open) = self.open.as_mut() {
                    open.pending = Some(pending);
                }
            }
            Tag::Info => {
                let Some(open) = self.open.as_mut() else {
                    return Ok(());
                };
                let lines = f.lines(text).enumerate().map(|(i, l)| (if i == 0 { 4 } else { 0 }, l.text));
                match open.pending.as_mut() {
                    Some(p) => p.info.extend(lines),
                    None => {
                        // Statement-level information; some banks give the account's IBAN there.
                        if open.account.iban.is_none() {
                            let body = f.body(text);
                            open.account.iban = find_iban(body).map(str::to_string);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// `:60F:` / `:62F:` / `:64:`: mark, date, currency, amount.
    fn balance(&mut self, f: &Field<'s>, text: &'s str) -> Result<Money, ParseError> {
        let first = f.lines(text).next().map(|l| l.text).unwrap_or("");
        let s = first.trim_end();
        let b = s.as_bytes();
        let col = |i: usize| f.name.len() + 3 + i;
        let sign = match b.first() {
            Some(b'C') => Decimal::ONE,
            Some(b'D') => Decimal::NEGATIVE_ONE,
            _ => {
                return Err(self
                    .error(f.line, ParseErrorKind::Syntax, format!("found {}, expected the mark C or D", shown(b)))
                    .at_column(col(0))
                    .in_field(f.label()))
            }
        };
        let rest = b.get(1..).unwrap_or_default();
        let (_, clamped) = yymmdd(rest).ok_or_else(|| {
            self.error(f.line, ParseErrorKind::InvalidDate, format!("found {}, expected a date YYMMDD", shown(rest)))
                .at_column(col(1))
                .in_field(f.label())
        })?;
        if clamped {
            self.warn(f.line, format!("`{}` has a date that does not exist; read as the month's last day", f.label()));
        }
        let code = s.get(7..10).unwrap_or("");
        let currency = Currency::new(code).map_err(|_| {
            self.error(f.line, ParseErrorKind::InvalidCurrency, format!("found `{code}`, expected a currency code"))
                .at_column(col(7))
                .in_field(f.label())
        })?;
        let raw = s.get(10..).unwrap_or("").trim();
        let amount = swift_amount(raw).ok_or_else(|| {
            self.error(f.line, ParseErrorKind::InvalidAmount, format!("found `{raw}`, expected an amount such as 123,45"))
                .at_column(col(10))
                .in_field(f.label())
        })?;
        Ok(Money::new(sign * amount, currency))
    }

    fn line_error(&self, f: &Field<'s>, e: LineError) -> ParseError {
        self.error(f.line, e.kind, format!("`:61:` {}", e.message)).at_column(5 + e.offset).in_field(f.label())
    }

    fn statement_line(&mut self, f: &Field<'s>, text: &'s str) -> Result<Pending<'s>, ParseError> {
        let mut lines = f.lines(text);
        let first = lines.next().map(|l| l.text).unwrap_or("");
        let parsed = match statement_line(first) {
            Ok(p) => LineParts::borrowed(p),
            Err(e) if e.truncated => {
                // A line cut before its amount continues on the next line.
                let Some(next) = lines.next() else {
                    return Err(self.line_error(f, e));
                };
                let joined = format!("{first}{}", next.text.trim());
                match statement_line(&joined) {
                    Ok(p) => LineParts::owned(p),
                    Err(e) => return Err(self.line_error(f, e)),
                }
            }
            Err(e) => return Err(self.line_error(f, e)),
        };
        if parsed.clamped {
            self.warn(f.line, "`:61:` has a date that does not exist; read as the month's last day");
        }
        if parsed.customer_ref.is_empty() && parsed.bank_ref.is_none() {
            self.warn(f.line, "`:61:` has no reference for the account owner (expected at least NONREF)");
        }
        let rest: Vec<&str> = lines.map(|l| l.text).collect();
        let supplementary = non_empty(&rest.join(" "));
        Ok(Pending { line: f.line, line_offset: f.start, parts: parsed, supplementary, info: Vec::new() })
    }

    /// Turns the pending `:61:` (and its `:86:`) into a transaction.
    fn settle(&mut self) -> Result<(), ParseError> {
        let fallback = self.source.fallback_currency();
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        let Some(p) = open.pending.take() else {
            return Ok(());
        };
        let currency = open.currency(fallback);
        let parts = p.parts;
        let mut t = BankTransaction::new(parts.booking_date, Money::new(parts.amount, currency));
        if parts.value_date != parts.booking_date {
            t.value_date = Some(parts.value_date);
        }
        let info = if p.info.is_empty() { Info::default() } else { info(&p.info) };
        t.description = if info.description.is_empty() {
            p.supplementary.clone().unwrap_or_default()
        } else {
            info.description
        };
        t.payee = info.payee;
        t.counterparty_account = info.account;
        let customer_ref = parts.customer_ref.trim();
        let type_code = parts.type_code.as_deref().map(str::trim).filter(|c| !c.is_empty());
        if type_code.is_some_and(|c| c.ends_with("CHK")) && !is_placeholder_ref(customer_ref) {
            t.check_number = Some(customer_ref.to_string());
        }
        t.reference = info.reference.or_else(|| (!is_placeholder_ref(customer_ref)).then(|| customer_ref.to_string()));
        t.bank_code = type_code.map(str::to_string).or(info.code);
        let mut duplicate = None;
        if let Some(bank_ref) = parts.bank_ref.as_deref().filter(|r| !is_placeholder_ref(r)) {
            let seen = self.bank_ids.entry(open.account.id.clone()).or_default();
            if seen.insert(bank_ref.to_string()) {
                t = t.with_bank_id(bank_ref);
            } else {
                duplicate = Some(bank_ref.to_string());
            }
        }
        open.transactions.push(t);
        self.transactions += 1;
        if let Some(r) = duplicate {
            self.warn(p.line, format!("bank reference {r} is used by an earlier line of this account; not used as id"));
        }
        if self.transactions % PROGRESS_EVERY == 0 {
            self.source.report_progress(p.line_offset);
        }
        Ok(())
    }

    /// Ends the open statement.
    fn close(&mut self) {
        if self.open.as_ref().is_some_and(|o| o.pending.is_some()) {
            // Settling cannot fail: the line was read when its `:61:` arrived.
            let _ = self.settle();
        }
        let Some(open) = self.open.take() else {
            return;
        };
        let currency = open.currency(self.source.fallback_currency());
        let mut statement = Statement::new(open.account, currency);
        statement.statement_id = open.statement_id;
        statement.opening_balance = open.opening;
        statement.closing_balance = open.closing;
        statement.available_balance = open.available;
        statement.transactions = open.transactions;
        for t in &mut statement.transactions {
            if t.amount.currency() != currency {
                t.amount = Money::new(t.amount.amount(), currency);
            }
        }
        if open.explicit && statement.closing_balance.is_none() && statement.account.id.is_empty() {
            let _ = open.line;
        }
        self.statements.push(statement);
    }
}

/// The parts of a `:61:` kept until its `:86:` has been read.
struct LineParts<'a> {
    value_date: NaiveDate,
    booking_date: NaiveDate,
    clamped: bool,
    amount: Decimal,
    type_code: Option<Cow<'a, str>>,
    customer_ref: Cow<'a, str>,
    bank_ref: Option<Cow<'a, str>>,
}

impl<'a> LineParts<'a> {
    fn borrowed(p: StatementLine<'a>) -> Self {
        LineParts {
            value_date: p.value_date,
            booking_date: p.booking_date,
            clamped: p.clamped,
            amount: p.amount,
            type_code: p.type_code.map(Cow::Borrowed),
            customer_ref: Cow::Borrowed(p.customer_ref),
            bank_ref: p.bank_ref.map(Cow::Borrowed),
        }
    }

    fn owned(p: StatementLine<'_>) -> Self {
        LineParts {
            value_date: p.value_date,
            booking_date: p.booking_date,
            clamped: p.clamped,
            amount: p.amount,
            type_code: p.type_code.map(|s| Cow::Owned(s.to_string())),
            customer_ref: Cow::Owned(p.customer_ref.to_string()),
            bank_ref: p.bank_ref.map(|s| Cow::Owned(s.to_string())),
        }
    }
}
