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
    Reference,  // :20:
    Related,    // :21:
    Account,    // :25:, :25P:
    Number,     // :28:, :28C:
    FloorLimit, // :34F:
    DateTime,   // :13:, :13D:
    Opening,    // :60F:, :60M:
    Line,       // :61:
    Info,       // :86:
    Closing,    // :62F:, :62M:
    Available,  // :64:
    Forward,    // :65:
    Summary,    // :90C:, :90D:
    NonSwift,   // :NS:
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
#[derive(Debug)]
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
            line_error(
                6,
                ParseErrorKind::InvalidDate,
                format!("found {}, expected an entry date MMDD", shown(md)),
                false,
            )
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

const SEPA_KEYS: [&str; 13] = [
    "EREF+", "KREF+", "MREF+", "CRED+", "DEBT+", "SVWZ+", "ABWA+", "ABWE+", "IBAN+", "BIC+", "COAM+", "OAMT+", "PURP+",
];

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
        Some(sep @ (b'?' | b'>'))
            if head.get(if gvc { 4..6 } else { 1..3 }).is_some_and(|d| d.iter().all(u8::is_ascii_digit)) =>
        {
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
        reference: sepa.eref.and_then(end_to_end_id),
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

/// A SEPA end-to-end id is at most 35 characters; text after that ran on from the next subfield.
fn end_to_end_id(raw: &str) -> Option<String> {
    let cut = raw.char_indices().nth(35).map(|(i, _)| i).unwrap_or(raw.len());
    non_empty(raw.get(..cut).unwrap_or(raw)).filter(|r| r != "NOTPROVIDED")
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
        // ING separates fields with `//`, so a value's own trailing slash is not part of it.
        let raw = s.get(pos + code.len() + 2..end).unwrap_or("");
        let value = raw.trim_end_matches('/');
        match *code {
            "EREF" => out.reference = non_empty(value).filter(|r| r != "NOTPROVIDED"),
            "NAME" => out.payee = non_empty(value),
            "IBAN" => out.account = non_empty(value),
            "TRTP" => out.code = non_empty(value),
            "REMI" => {
                let v = value;
                if let Some(r) = v.strip_prefix("STRD/CUR/").or_else(|| v.strip_prefix("STRD/")) {
                    structured_ref = non_empty(r.trim_matches('/'));
                    remi = structured_ref.clone();
                } else {
                    remi = non_empty(v.strip_prefix("USTD//").or_else(|| v.strip_prefix("USTD/")).unwrap_or(v));
                }
            }
            "CNTP" | "BENM" | "ORDP" => {
                let mut it = raw.split('/');
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
    out.description = remi.or_else(|| out.payee.clone()).unwrap_or_default();
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
            // SWIFT transmissions may frame a message with SOH/ETX control characters.
            let t = line.text.trim_start_matches(['\u{1}', '\u{3}']);
            let mut start = line.start + (line.text.len() - t.len());
            let mut t = t.trim_end_matches(['\u{1}', '\u{3}']);
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
                    self.error(
                        f.line,
                        ParseErrorKind::InvalidCurrency,
                        format!("found `{code}`, expected a currency code"),
                    )
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
            self.error(
                f.line,
                ParseErrorKind::InvalidAmount,
                format!("found `{raw}`, expected an amount such as 123,45"),
            )
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
        let customer_ref = parts.customer_ref.trim();
        t.description = if !info.description.is_empty() {
            info.description.into()
        } else if let Some(text) = p.supplementary {
            text.into()
        } else if !is_placeholder_ref(customer_ref) {
            text::squash_ws(customer_ref).into()
        } else {
            Box::default()
        };
        t.payee = info.payee.map(Into::into);
        t.counterparty_account = info.account.map(Into::into);
        let type_code = parts.type_code.as_deref().map(str::trim).filter(|c| !c.is_empty());
        if type_code.is_some_and(|c| c.ends_with("CHK")) && !is_placeholder_ref(customer_ref) {
            t.check_number = Some(customer_ref.into());
        }
        t.reference = info
            .reference
            .or_else(|| (!is_placeholder_ref(customer_ref)).then(|| customer_ref.to_string()))
            .map(Into::into);
        t.bank_code = type_code.map(str::to_string).or(info.code).map(Into::into);
        let mut duplicate = None;
        if let Some(bank_ref) = parts.bank_ref.as_deref().filter(|r| !is_placeholder_ref(r)) {
            if !self.bank_ids.contains_key(&open.account.id) {
                self.bank_ids.insert(open.account.id.clone(), HashSet::new());
            }
            let fresh = self.bank_ids.get_mut(&open.account.id).is_some_and(|seen| seen.insert(bank_ref.to_string()));
            if fresh {
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
        if open.explicit && self.format == Format::Mt940 && statement.closing_balance.is_none() {
            self.warnings.push(Warning {
                line: Some(open.line),
                statement: Some(self.statements.len()),
                message: "statement has no closing balance `:62F:`; the file may be cut short".into(),
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdSource;
    use crate::parse::ParseOptions;
    use proptest::prelude::*;

    fn read(text: &str) -> Result<Parsed, ParseError> {
        read_bytes(text.as_bytes(), Format::Mt940)
    }

    fn read_bytes(bytes: &[u8], format: Format) -> Result<Parsed, ParseError> {
        let options = ParseOptions::default();
        let source = Source { name: "test.sta", bytes, options: &options, progress: None };
        parse(&source, format)
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    const SAMPLE: &str = "{1:F01GRNBNL2AXXXX0000000000}{2:O940GRNBNL2AXXXXN}{4:\n\
:20:STMT0001\n\
:25:NL91ABNA0417164300EUR\n\
:28C:42/1\n\
:60F:C240301EUR1500,00\n\
:61:2403010301D125,50NTRFINV-2024-17//BR0001\n\
:86:166?00SEPA OVERWEISUNG?20EREF+E2E-77?21SVWZ+Invoice 2024-17 Wid?22gets?30INGBNL2A\n\
?31NL20INGB0001234567?32Widget Works B.V.\n\
:61:2403040304C1000,NTRFNONREF//BR0002\n\
:86:Salary March\n\
:62F:C240304EUR2374,50\n\
:64:C240304EUR2300,00\n\
-}\n";

    #[test]
    fn a_statement_maps_account_balances_and_lines() {
        let parsed = read(SAMPLE).unwrap();
        assert_eq!(parsed.statements.len(), 1);
        let s = &parsed.statements[0];
        assert_eq!(s.account.id, "NL91ABNA0417164300EUR");
        assert_eq!(s.account.iban.as_deref(), Some("NL91ABNA0417164300"));
        assert_eq!(s.currency, Currency::EUR);
        assert_eq!(s.statement_id.as_deref(), Some("42/1"));
        assert_eq!(s.opening_balance.map(|m| m.amount()), Some(dec("1500.00")));
        assert_eq!(s.closing_balance.map(|m| m.amount()), Some(dec("2374.50")));
        assert_eq!(s.available_balance.map(|m| m.amount()), Some(dec("2300.00")));
        let t = &s.transactions[0];
        assert_eq!(t.booking_date, date(2024, 3, 1));
        assert_eq!(t.value_date, None);
        assert_eq!(t.amount.amount(), dec("-125.50"));
        assert_eq!(&*t.description, "SEPA OVERWEISUNG Invoice 2024-17 Widgets");
        assert_eq!(t.payee.as_deref(), Some("Widget Works B.V."));
        assert_eq!(t.counterparty_account.as_deref(), Some("NL20INGB0001234567"));
        assert_eq!(t.reference.as_deref(), Some("E2E-77"));
        assert_eq!(t.bank_code.as_deref(), Some("NTRF"));
        assert_eq!((t.id.as_ref(), t.id_source), ("BR0001", IdSource::Bank));
        assert_eq!(s.transactions[1].amount.amount(), dec("1000"));
        assert_eq!(&*s.transactions[1].description, "Salary March");
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn the_entry_date_rolls_over_into_the_next_year() {
        let line = statement_line("2312310102C5,00NTRFNONREF").unwrap();
        assert_eq!(line.value_date, date(2023, 12, 31));
        assert_eq!(line.booking_date, date(2024, 1, 2));
        let back = statement_line("2401021231C5,00NTRFNONREF").unwrap();
        assert_eq!(back.booking_date, date(2023, 12, 31));
    }

    #[test]
    fn reversals_flip_the_sign_and_a_funds_code_is_skipped() {
        assert_eq!(statement_line("240101RC10,00NTRFNONREF").unwrap().amount, dec("-10.00"));
        assert_eq!(statement_line("240101RD10,00NTRFNONREF").unwrap().amount, dec("10.00"));
        assert_eq!(statement_line("240101DR6,00N024NONREF").unwrap().amount, dec("-6.00"));
        assert_eq!(statement_line("2401010101CK2000,00NMSCX").unwrap().amount, dec("2000.00"));
    }

    #[test]
    fn amounts_may_use_a_dot_or_have_no_decimals() {
        assert_eq!(statement_line("030109C000000000300.00NMSCNONREF").unwrap().amount, dec("300.00"));
        assert_eq!(statement_line("140729C500NTRFNONREF").unwrap().amount, dec("500"));
        assert_eq!(statement_line("201201DD80,NMSC25594900").unwrap().amount, dec("-80"));
        assert_eq!(swift_amount("1,000"), Some(dec("1.000")));
    }

    #[test]
    fn type_code_and_customer_reference_are_optional() {
        let nonref = statement_line("2009020902D20,00NONREF").unwrap();
        assert_eq!((nonref.type_code, nonref.customer_ref), (None, "NONREF"));
        let bank_only = statement_line("2011301130CN220000,00//19239782213").unwrap();
        assert_eq!((bank_only.type_code, bank_only.bank_ref), (None, Some("19239782213")));
        let spaced = statement_line("121123D10,00NIT NONREF").unwrap();
        assert_eq!(spaced.type_code, Some("NIT"));
    }

    #[test]
    fn a_line_cut_before_its_amount_continues_on_the_next_line() {
        let parsed =
            read(":20:X\n:25:123\n:28C:1\n:60F:C181126EUR0,\n:61:1811261126CR\n30,00N062NONREF\n:62F:C181126EUR30,\n")
                .unwrap();
        assert_eq!(parsed.statements[0].transactions[0].amount.amount(), dec("30.00"));
    }

    #[test]
    fn a_truncated_line_is_rejected_with_its_column() {
        let err = read(":20:X\n:25:123\n:28C:1\n:60F:C240101EUR0,\n:61:2401\n:62F:C240101EUR0,\n").unwrap_err();
        assert_eq!(err.line, Some(5));
        assert_eq!(err.column, Some(5));
        assert_eq!(err.field.as_deref(), Some(":61:"));
        assert_eq!(err.kind, ParseErrorKind::InvalidDate);
        assert!(err.to_string().starts_with("test.sta:5:5: mt940 :61:"), "{err}");
    }

    #[test]
    fn a_tag_out_of_order_is_rejected_naming_what_came_before() {
        let err = read(":20:X\n:28C:1\n:60F:C240101EUR0,\n:62F:C240101EUR0,\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert_eq!(err.field.as_deref(), Some(":28C:"));
        assert!(err.message.contains("after `:20:` (line 1)"), "{}", err.message);
        let err = read(":20:X\n:25:1\n:28C:1\n:60F:C240101EUR0,\n:61:240101C1,NTRFNONREF\n:25:2\n").unwrap_err();
        assert_eq!(err.line, Some(6));
        assert!(err.message.contains("after `:61:`"), "{}", err.message);
    }

    #[test]
    fn an_unknown_tag_inside_a_text_is_wrapped_text() {
        let text = ":20:X\n:25:1\n:28C:1\n:60F:C240101EUR0,\n:61:240101C1,NTRFNONREF\n:86:paid 2014-09-12T16\n:26:37 by card\n:62F:C240101EUR1,\n";
        let parsed = read(text).unwrap();
        assert_eq!(&*parsed.statements[0].transactions[0].description, "paid 2014-09-12T16 :26:37 by card");
        assert!(parsed.warnings.iter().any(|w| w.line == Some(7) && w.message.contains("`:26:`")));
    }

    #[test]
    fn a_dash_inside_a_line_text_is_not_the_end_of_the_message() {
        let text = ":20:X\n:25:1\n:28C:1\n:60F:C240101EUR0,\n:61:240101C1,NTRFNONREF\n:86:/EREF/AB12\n-\nCD34//REMI/USTD//rent/\n:62F:C240101EUR1,\n-\n";
        let parsed = read(text).unwrap();
        let t = &parsed.statements[0].transactions[0];
        assert_eq!(t.reference.as_deref(), Some("AB12-CD34"));
        assert_eq!(&*t.description, "rent");
    }

    #[test]
    fn slash_coded_texts_give_name_account_and_reference() {
        let i = info(&[(
            4,
            "/TRTP/SEPA OVERBOEKING/IBAN/NL20INGB0001234567/BIC/INGBNL2A/NAME/J. Smit/EREF/ORDER-5/REMI/Rent May/",
        )]);
        assert_eq!(i.payee.as_deref(), Some("J. Smit"));
        assert_eq!(i.account.as_deref(), Some("NL20INGB0001234567"));
        assert_eq!(i.reference.as_deref(), Some("ORDER-5"));
        assert_eq!(&*i.description, "Rent May");
        let ing = info(&[(4, "/EREF/E1//CNTP/NL20INGB0001234567/INGBNL2A/P. Jansen/AMSTERDAM//REMI/USTD//Gift/")]);
        assert_eq!((ing.payee.as_deref(), ing.account.as_deref()), (Some("P. Jansen"), Some("NL20INGB0001234567")));
        assert_eq!((ing.reference.as_deref(), ing.description.as_str()), (Some("E1"), "Gift"));
    }

    #[test]
    fn triodos_subfields_use_an_angle_bracket() {
        let i = info(&[(4, "000>100555555555"), (0, ">20RENT FOR MAY>21 FLAT 3"), (0, ">310666666666")]);
        assert_eq!(&*i.description, "RENT FOR MAY FLAT 3");
        assert_eq!(i.account.as_deref(), Some("0666666666"));
    }

    #[test]
    fn free_text_lines_join_with_a_blank_unless_the_line_was_full() {
        let full = "A".repeat(61);
        let i = info(&[(4, full.as_str()), (0, "BC"), (0, "next line")]);
        assert_eq!(&*i.description, format!("{full}BC next line"));
    }

    #[test]
    fn header_lines_are_skipped_and_unknown_text_is_reported() {
        let text =
            "ABNANL2A\n940\nABNANL2A\nsome preface\n:20:X\n:25:1\n:28:1\n:60F:C240101EUR0,\n:62F:C240101EUR0,\n-\n";
        let parsed = read(text).unwrap();
        assert_eq!(parsed.statements.len(), 1);
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.warnings[0].line, Some(4));
    }

    #[test]
    fn cr_line_ends_and_a_missing_final_newline_are_read() {
        let text = ":20:X\r:25:1\r:28C:1\r:60F:C240101EUR1,\r:61:240101D1,NTRFNONREF\r:62F:C240101EUR0,";
        let parsed = read(text).unwrap();
        assert_eq!(parsed.statements[0].transactions.len(), 1);
        assert_eq!(parsed.statements[0].closing_balance.map(|m| m.amount()), Some(dec("0")));
    }

    #[test]
    fn control_characters_framing_a_transmission_are_ignored() {
        let text = "\u{1}\n:20:X\n:25:1\n:28C:1\n:60F:C240101EUR0,\n:62F:C240101EUR0,\n-\u{3}\n";
        let parsed = read(text).unwrap();
        assert_eq!(parsed.statements.len(), 1);
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn progress_is_reported_every_few_thousand_lines() {
        let mut text = String::from(":20:X\n:25:1\n:28C:1\n:60F:C240101EUR0,\n");
        for _ in 0..PROGRESS_EVERY * 2 {
            text.push_str(":61:240101C1,NTRFNONREF\n:86:x\n");
        }
        text.push_str(":62F:C240101EUR8192,\n");
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let progress = |_: u64| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let options = ParseOptions::default();
        let source = Source { name: "big.sta", bytes: text.as_bytes(), options: &options, progress: Some(&progress) };
        let parsed = parse(&source, Format::Mt940).unwrap();
        assert_eq!(parsed.statements[0].transactions.len(), PROGRESS_EVERY * 2);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn eight_bit_text_is_decoded_as_latin() {
        let text =
            b":20:X\n:25:1\n:28C:1\n:60F:C240101EUR0,\n:61:240101C1,NTRFNONREF\n:86:M\xfcller\n:62F:C240101EUR1,\n";
        let parsed = read_bytes(text, Format::Mt940).unwrap();
        assert_eq!(&*parsed.statements[0].transactions[0].description, "Müller");
    }

    #[test]
    fn an_interim_report_imports_its_lines_in_the_floor_limit_currency() {
        let text = ":20:R1\n:25:PL61109010140000071219812874\n:28C:1/1\n:34F:PLN0\n:13D:2401191815+0100\n\
:61:2401190119CN0,01NTRFNONREF//MB1\n:86:first\n:61:2401190119DN2,00NTRFNONREF//MB2\n:90D:1PLN2,00\n:90C:1PLN0,01\n-\n";
        let parsed = read_bytes(text.as_bytes(), Format::Mt942).unwrap();
        let s = &parsed.statements[0];
        assert_eq!(s.currency.code(), "PLN");
        assert_eq!(s.transactions.len(), 2);
        assert_eq!(s.opening_balance, None);
        assert_eq!(s.account.iban.as_deref(), Some("PL61109010140000071219812874"));
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    #[test]
    fn a_repeated_bank_reference_is_not_used_as_an_id_twice() {
        let text = ":20:X\n:25:1\n:28C:1\n:60F:C240101EUR0,\n:61:240101C1,NTRFNONREF//SAME\n:61:240101C1,NTRFNONREF//SAME\n:62F:C240101EUR2,\n";
        let parsed = read(text).unwrap();
        let t = &parsed.statements[0].transactions;
        assert_eq!((t[0].id_source, t[1].id_source), (IdSource::Bank, IdSource::Fingerprint));
        assert!(parsed.warnings.iter().any(|w| w.line == Some(6)));
    }

    #[test]
    fn a_date_that_does_not_exist_moves_to_the_months_end_with_a_warning() {
        let text = ":20:X\n:25:1\n:28C:1\n:60F:C160229EUR0,\n:61:1602300301DR6,00N024NONREF\n:62F:D160301EUR6,\n";
        let parsed = read(text).unwrap();
        let t = &parsed.statements[0].transactions[0];
        assert_eq!((t.booking_date, t.value_date), (date(2016, 3, 1), Some(date(2016, 2, 29))));
        assert!(parsed.warnings.iter().any(|w| w.line == Some(5)));
        assert!(read(":20:X\n:25:1\n:28C:1\n:60F:C161301EUR0,\n").is_err());
    }

    #[test]
    fn a_cheque_line_gives_its_number() {
        let t = &read(":20:X\n:25:1\n:28:1\n:60F:C240101EUR0,\n:61:240101D68,NCHK16703074\n:62F:D240101EUR68,\n")
            .unwrap()
            .statements[0]
            .transactions[0];
        assert_eq!(t.check_number.as_deref(), Some("16703074"));
        assert_eq!(t.bank_code.as_deref(), Some("NCHK"));
    }

    #[test]
    fn a_fragment_without_reference_tag_is_read_with_a_warning() {
        let parsed = read(":61:110701CN50,00NZ10NONREF\n-\n").unwrap();
        assert_eq!(parsed.statements[0].transactions.len(), 1);
        assert_eq!(parsed.warnings[0].line, Some(1));
    }

    #[test]
    fn text_without_any_field_is_refused() {
        let err = read("1\n2\n3\n").unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::Empty);
    }

    #[test]
    fn bank_style_account_identifiers_are_split_into_their_parts() {
        let (a, c) = account_ident("DABADKKK/1234567890");
        assert_eq!((a.id.as_str(), a.bic.as_deref(), c), ("DABADKKK/1234567890", Some("DABADKKK"), None));
        let (a, c) = account_ident("12345678/1020304050");
        assert_eq!(a.bank_id.as_deref(), Some("12345678"));
        assert_eq!(c, None);
        let (a, c) = account_ident("UBRTHUHB/123456789150ABCDEF002/HUF");
        assert_eq!((a.bic.as_deref(), c.map(|c| c.code().to_string())), (Some("UBRTHUHB"), Some("HUF".into())));
    }

    /// One generated line, with what the parser must give back.
    #[derive(Debug, Clone)]
    struct GenLine {
        value: NaiveDate,
        entry: NaiveDate,
        cents: i64,
        words: Vec<String>,
        customer_ref: Option<String>,
        bank_id: Option<String>,
        payee: Option<String>,
    }

    fn gen_line() -> impl Strategy<Value = GenLine> {
        (
            0i64..24_000,
            0i64..4,
            -1_000_000_000i64..1_000_000_000,
            prop::collection::vec("[A-Za-z0-9]{1,12}", 1..12),
            prop::option::of("R[0-9]{1,10}"),
            prop::option::of("[A-Z0-9]{1,12}"),
            prop::option::of("[A-Za-z]{1,20}"),
        )
            .prop_map(|(day, lag, cents, words, customer_ref, bank_id, payee)| {
                let value = date(2000, 1, 1) + chrono::Duration::days(day);
                GenLine {
                    value,
                    entry: value + chrono::Duration::days(lag),
                    cents,
                    words,
                    customer_ref,
                    bank_id,
                    payee,
                }
            })
    }

    fn amount_text(cents: i64) -> String {
        format!("{},{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
    }

    /// Writes lines as one MT940 statement: free text for lines without a payee, `?NN` subfields
    /// for lines with one.
    fn write_statement(account: &str, lines: &[GenLine]) -> String {
        let mut out = format!(":20:GEN\n:25:{account}\n:28C:7/1\n:60F:C{}EUR0,00\n", lines[0].value.format("%y%m%d"));
        let mut total = 0i64;
        for (i, l) in lines.iter().enumerate() {
            total += l.cents;
            let mark = if l.cents < 0 { "D" } else { "C" };
            let reference = l.customer_ref.as_deref().unwrap_or("NONREF");
            let bank = l.bank_id.as_ref().map(|b| format!("//{b}X{i}")).unwrap_or_default();
            out += &format!(
                ":61:{}{}{mark}{}NTRF{reference}{bank}\n",
                l.value.format("%y%m%d"),
                l.entry.format("%m%d"),
                amount_text(l.cents)
            );
            let description = l.words.join(" ");
            match &l.payee {
                Some(payee) => {
                    out += ":86:166";
                    let chars: Vec<char> = description.chars().collect();
                    for (n, chunk) in chars.chunks(27).enumerate() {
                        out += &format!("?{}{}\n", 20 + n, chunk.iter().collect::<String>());
                    }
                    out += &format!("?32{payee}\n");
                }
                None => {
                    let mut line = String::from(":86:");
                    for word in &l.words {
                        if line.len() + word.len() + 1 > 60 {
                            out += &line;
                            out.push('\n');
                            line.clear();
                        } else if !line.ends_with(':') {
                            line.push(' ');
                        }
                        line.push_str(word);
                    }
                    out += &line;
                    out.push('\n');
                }
            }
        }
        let mark = if total < 0 { "D" } else { "C" };
        out += &format!(":62F:{mark}{}EUR{}\n-\n", lines[lines.len() - 1].value.format("%y%m%d"), amount_text(total));
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn written_statements_read_back_unchanged(
            account in "[0-9]{8}/[0-9]{10}",
            lines in prop::collection::vec(gen_line(), 1..20),
        ) {
            let text = write_statement(&account, &lines);
            let parsed = read(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(parsed.statements.len(), 1);
            let s = &parsed.statements[0];
            prop_assert_eq!(&s.account.id, &account);
            prop_assert_eq!(s.transactions.len(), lines.len());
            let total: i64 = lines.iter().map(|l| l.cents).sum();
            prop_assert_eq!(s.closing_balance.map(|m| m.amount()), Some(Decimal::new(total, 2)));
            for (i, (t, l)) in s.transactions.iter().zip(&lines).enumerate() {
                prop_assert_eq!(t.booking_date, l.entry);
                prop_assert_eq!(t.value_date, (l.value != l.entry).then_some(l.value));
                prop_assert_eq!(t.amount.amount(), Decimal::new(l.cents, 2));
                prop_assert_eq!(&*t.description, &*l.words.join(" "));
                prop_assert_eq!(t.payee.as_deref(), l.payee.as_deref());
                prop_assert_eq!(t.reference.as_deref(), l.customer_ref.as_deref());
                let id = l.bank_id.as_ref().map(|b| format!("{b}X{i}")).unwrap_or_default();
                prop_assert_eq!(&*t.id, &*id);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in any::<Vec<u8>>()) {
            let _ = read_bytes(&bytes, Format::Mt940);
        }

        #[test]
        fn arbitrary_field_soup_never_panics(
            text in "((:(20|25|28C|60F|60M|61|86|62F|64|34F|13D|90D|NS|26):)?[-0-9A-Z,./?>+ {}:ü]{0,40}(\n|\r\n|\r)){0,25}",
        ) {
            let _ = read_bytes(text.as_bytes(), Format::Mt942);
        }
    }
}
