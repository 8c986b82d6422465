//! BAI2 (Cash Management Balance Reporting, version 2) parser.
//!
//! A BAI2 file is a tree of comma-separated records: `01` file header, `02` group header (one
//! originator, one as-of date), `03` account identifier with its summaries, `16` transaction
//! details, `49` / `98` / `99` trailers with control totals, and `88` records that continue
//! whatever record precedes them. Each account (`03` .. `49`) becomes one [`Statement`].
//!
//! Banks bend the layout in many ways, all handled here: records ended by `/` or only by the line
//! end, several records on one line (`.../   02,...`), fixed 80-byte blocks without line ends,
//! records wrapped onto a bare next line, `88` records that continue a field in its middle, `/`
//! inside free text. Every trailer is checked against the records it closes; a difference is a
//! [`ParseErrorKind::ControlTotal`] error unless the file's trailers also contradict each other,
//! which shows a producer that never computed them (then each difference is a warning).

use std::borrow::Cow;
use std::collections::HashSet;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::text;
use super::{Format, ParseError, ParseErrorKind, Parsed, Source, Warning};
use crate::domain::{AccountIdent, BankTransaction, Currency, Money, Statement};

/// Physical record length when the file header does not state one (the spec's usual value).
const DEFAULT_RECORD_LENGTH: usize = 80;
/// How many transactions pass between two progress reports.
const PROGRESS_EVERY: usize = 4096;
/// More digits than this cannot be a real amount and would overflow the decimal mantissa.
const MAX_AMOUNT_DIGITS: usize = 28;

/// Parses a BAI2 file.
pub fn parse(source: &Source<'_>) -> Result<Parsed, ParseError> {
    let text = text::decode(source.bytes, None);
    let mut parser = Parser::new(source, declared_record_length(&text));
    split_physical(&text, parser.record_length, &mut |piece| parser.feed(piece))?;
    parser.finish()
}

/// The record codes BAI2 defines, plus a bare line that only continues the record before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    FileHeader,
    GroupHeader,
    Account,
    Detail,
    AccountTrailer,
    Continuation,
    GroupTrailer,
    FileTrailer,
    /// A line without a record code: the previous record wrapped onto it.
    Wrapped,
}

impl Code {
    fn from_digits(digits: &[u8]) -> Option<Code> {
        Some(match digits {
            b"01" => Code::FileHeader,
            b"02" => Code::GroupHeader,
            b"03" => Code::Account,
            b"16" => Code::Detail,
            b"49" => Code::AccountTrailer,
            b"88" => Code::Continuation,
            b"98" => Code::GroupTrailer,
            b"99" => Code::FileTrailer,
            _ => return None,
        })
    }

    fn label(self) -> &'static str {
        match self {
            Code::FileHeader => "01 file header",
            Code::GroupHeader => "02 group header",
            Code::Account => "03 account identifier",
            Code::Detail => "16 transaction detail",
            Code::AccountTrailer => "49 account trailer",
            Code::Continuation => "88 continuation",
            Code::GroupTrailer => "98 group trailer",
            Code::FileTrailer => "99 file trailer",
            Code::Wrapped => "wrapped line",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Code::FileHeader => "01",
            Code::GroupHeader => "02",
            Code::Account => "03",
            Code::Detail => "16",
            Code::AccountTrailer => "49",
            Code::Continuation => "88",
            Code::GroupTrailer => "98",
            Code::FileTrailer => "99",
            Code::Wrapped => "88",
        }
    }
}

/// One physical record: the data after `NN,`, without the closing `/`.
#[derive(Debug, Clone, Copy)]
struct Piece<'a> {
    code: Code,
    text: &'a str,
    /// The record was closed with `/`: what follows in a continuation starts a new field.
    terminated: bool,
    /// The physical record filled the whole record length: a continuation of its text joins
    /// without a blank, because the producer cut the text mid-word.
    full: bool,
    line: usize,
    /// 1-based column of `text` in its line.
    col: usize,
    /// The record code was followed by `:` or `;` instead of `,`.
    odd_delimiter: bool,
    /// Byte offset of the record in the file, for progress.
    offset: usize,
}

/// The physical record length the file header declares (field 6 of `01`), if any.
fn declared_record_length(text: &str) -> Option<usize> {
    let start = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let header = start.strip_prefix("01,")?;
    let end = header.find(['/', '\n', '\r']).unwrap_or(header.len());
    let field = header.get(..end)?.split(',').nth(5)?.trim();
    field.parse::<usize>().ok().filter(|n| (10..=10_000).contains(n))
}

/// Cuts the text into physical records and hands each to `sink`.
fn split_physical<'a>(
    text: &'a str,
    record_length: Option<usize>,
    sink: &mut dyn FnMut(Piece<'a>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let bytes = text.as_bytes();
    let length = record_length.unwrap_or(DEFAULT_RECORD_LENGTH);
    let has_lf = memchr::memchr(b'\n', bytes).is_some();
    let has_cr = memchr::memchr(b'\r', bytes).is_some();
    if !has_lf && !has_cr && text.len() > length && !is_blocked(text, length) {
        // One long line of records closed by `/` and nothing else between them.
        return split_line(text, 1, 0, length, true, sink);
    }
    if !has_lf && !has_cr && text.len() > length {
        // Fixed-length blocks without line ends: every block is one physical record.
        let mut start = 0;
        let mut number = 1;
        while start < text.len() {
            let mut end = (start + length).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let line = text.get(start..end).unwrap_or("");
            split_line(line, number, start, length, false, sink)?;
            start = end;
            number += 1;
        }
        return Ok(());
    }
    let separator = if has_lf { b'\n' } else { b'\r' };
    let mut start = 0;
    let mut number = 1;
    while start <= text.len() {
        let end = memchr::memchr(separator, bytes.get(start..).unwrap_or(&[])).map(|p| start + p);
        let stop = end.unwrap_or(text.len());
        let line = text.get(start..stop).unwrap_or("");
        let line = line.strip_suffix('\r').unwrap_or(line);
        split_line(line, number, start, length, false, sink)?;
        match end {
            Some(e) => start = e + 1,
            None => break,
        }
        number += 1;
    }
    Ok(())
}

fn is_pad(c: char) -> bool {
    c.is_whitespace() || c == '\0' || c == '\u{1a}'
}

/// Whether `rest` starts a record: a known two-digit code and a comma.
fn starts_record(rest: &[u8]) -> bool {
    rest.len() >= 3 && rest[2] == b',' && Code::from_digits(&rest[..2]).is_some()
}

/// Whether a text without line ends is cut into fixed-length blocks: each of its first blocks
/// starts with a record code.
fn is_blocked(text: &str, length: usize) -> bool {
    let bytes = text.as_bytes();
    (0..8).map(|i| i * length).take_while(|start| *start < bytes.len()).all(|start| {
        let block = bytes.get(start..).unwrap_or(&[]);
        let skip = block.iter().take_while(|b| **b == b' ').count();
        block.len() == skip || starts_record(block.get(skip..).unwrap_or(&[]))
    })
}

/// Splits one physical line into records: a line may carry several records, each closed by `/`
/// and followed by blanks (`49,00,2/  03,...`). In a file that is one single line, `tight`
/// lets records follow their `/` without blanks.
fn split_line<'a>(
    line: &'a str,
    number: usize,
    offset: usize,
    length: usize,
    tight: bool,
    sink: &mut dyn FnMut(Piece<'a>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let bytes = line.as_bytes();
    let mut start = 0;
    let mut search = 0;
    while let Some(p) = memchr::memchr(b'/', bytes.get(search..).unwrap_or(&[])).map(|p| search + p) {
        let mut next = p + 1;
        while bytes.get(next).is_some_and(|b| *b == b' ' || *b == b'\t') {
            next += 1;
        }
        if (tight || next > p + 1) && starts_record(bytes.get(next..).unwrap_or(&[])) {
            let segment = line.get(start..=p).unwrap_or("");
            classify(segment, number, offset, start, false, sink)?;
            start = next;
        }
        search = p + 1;
    }
    let full = line.len() == length && !line.ends_with(is_pad);
    classify(line.get(start..).unwrap_or(""), number, offset, start, full, sink)
}

fn classify<'a>(
    segment: &'a str,
    number: usize,
    offset: usize,
    seg_start: usize,
    full_line: bool,
    sink: &mut dyn FnMut(Piece<'a>) -> Result<(), ParseError>,
) -> Result<(), ParseError> {
    let trimmed_end = segment.trim_end_matches(is_pad);
    let body = trimmed_end.trim_start_matches(is_pad);
    if body.is_empty() {
        return Ok(());
    }
    let lead = trimmed_end.len() - body.len();
    let (text, terminated) = match body.strip_suffix('/') {
        Some(t) => (t, true),
        None => (body, false),
    };
    let b = text.as_bytes();
    let digits = b.get(..2).filter(|d| d.iter().all(u8::is_ascii_digit));
    let (code, data, skip) = match (digits.and_then(Code::from_digits), b.get(2)) {
        (Some(code), None) => (code, "", 2),
        (Some(code), Some(b',' | b':' | b';')) => (code, text.get(3..).unwrap_or(""), 3),
        _ => (Code::Wrapped, text, 0),
    };
    let odd_delimiter = skip == 3 && b.get(2) != Some(&b',');
    sink(Piece {
        code,
        text: data,
        terminated,
        full: full_line && !terminated,
        line: number,
        col: seg_start + lead + skip + 1,
        odd_delimiter,
        offset: offset + seg_start,
    })
}

/// A field's value and where it starts.
struct Field<'a> {
    value: Cow<'a, str>,
    line: usize,
    col: usize,
}

impl Field<'_> {
    fn trimmed(&self) -> &str {
        self.value.trim()
    }
}

/// Reads the comma-separated fields of one logical record (a record and its continuations).
struct Fields<'p, 'a> {
    pieces: &'p [Piece<'a>],
    idx: usize,
    pos: usize,
    piece_done: bool,
}

impl<'p, 'a> Fields<'p, 'a> {
    fn new(pieces: &'p [Piece<'a>]) -> Self {
        Fields { pieces, idx: 0, pos: 0, piece_done: false }
    }

    fn advance(&mut self) {
        self.idx += 1;
        self.pos = 0;
        self.piece_done = false;
    }

    /// The next field. A record closed by `/` ends its last field; one that stops without `/`
    /// or `,` continues its last field in the next continuation.
    fn next(&mut self) -> Option<Field<'a>> {
        loop {
            let p = *self.pieces.get(self.idx)?;
            if self.piece_done {
                self.advance();
                continue;
            }
            let rest = p.text.get(self.pos..).unwrap_or("");
            let col = p.col + self.pos;
            if let Some(k) = memchr::memchr(b',', rest.as_bytes()) {
                self.pos += k + 1;
                return Some(Field { value: Cow::Borrowed(rest.get(..k).unwrap_or("")), line: p.line, col });
            }
            self.piece_done = true;
            let has_more = self.idx + 1 < self.pieces.len();
            if p.terminated || !has_more {
                return Some(Field { value: Cow::Borrowed(rest), line: p.line, col });
            }
            if rest.is_empty() {
                // The record stopped right after a comma: the continuation starts a new field.
                continue;
            }
            let mut value = String::from(rest);
            loop {
                self.advance();
                let Some(q) = self.pieces.get(self.idx) else { break };
                match memchr::memchr(b',', q.text.as_bytes()) {
                    Some(k) => {
                        value.push_str(q.text.get(..k).unwrap_or(""));
                        self.pos = k + 1;
                        break;
                    }
                    None => {
                        value.push_str(q.text);
                        self.piece_done = true;
                        if q.terminated || self.idx + 1 >= self.pieces.len() {
                            break;
                        }
                    }
                }
            }
            return Some(Field { value: Cow::Owned(value), line: p.line, col });
        }
    }

    /// The next field, or an empty one when the record ended early (omitted trailing fields are
    /// defaulted).
    fn next_or_empty(&mut self) -> Field<'a> {
        let (line, col) = self.here();
        self.next().unwrap_or(Field { value: Cow::Borrowed(""), line, col })
    }

    fn here(&self) -> (usize, usize) {
        match self.pieces.get(self.idx).or(self.pieces.last()) {
            Some(p) => (p.line, p.col + self.pos),
            None => (0, 1),
        }
    }

    /// Everything left, commas included: the free text of a `16` record. Continuations are joined
    /// with a blank unless the producer cut the text at the record length.
    fn rest_text(&mut self) -> String {
        let mut out = String::new();
        let mut previous_full = false;
        while let Some(p) = self.pieces.get(self.idx) {
            if !self.piece_done {
                let part = p.text.get(self.pos..).unwrap_or("");
                if !out.is_empty() && !previous_full {
                    out.push(' ');
                }
                out.push_str(part);
            }
            previous_full = p.full;
            self.advance();
        }
        text::squash_ws(&out)
    }
}

/// Parses an amount in minor units: optional sign, digits only. `Ok(None)` when blank.
fn minor_units(raw: &str) -> Result<Option<i128>, ()> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > MAX_AMOUNT_DIGITS {
        return Err(());
    }
    let mut value: i128 = 0;
    for b in significant.bytes() {
        value = value * 10 + i128::from(b - b'0');
    }
    Ok(Some(if negative { -value } else { value }))
}

fn to_decimal(minor: i128, currency: Currency) -> Option<Decimal> {
    Decimal::try_from_i128_with_scale(minor, currency.minor_units()).ok()
}

/// Reads `YYMMDD` (or `YYYYMMDD`). `Ok(None)` when blank.
fn bai_date(raw: &str) -> Result<Option<NaiveDate>, ()> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|d| d.parse::<u32>().ok()).ok_or(());
    let (year, rest) = match s.len() {
        6 => (text::expand_year(n(0..2)?, 2), 2),
        8 => (n(0..4)?, 4),
        _ => return Err(()),
    };
    let date = NaiveDate::from_ymd_opt(year as i32, n(rest..rest + 2)?, n(rest + 2..rest + 4)?);
    date.map(Some).ok_or(())
}

/// Three-digit type code.
fn type_code(raw: &str) -> Option<u16> {
    let s = raw.trim();
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// Money direction of a type code: +1 credit (into the account), -1 debit, `None` for status,
/// non-monetary and unassigned codes.
fn direction(code: u16) -> Option<i8> {
    match code {
        100..=399 | 720..=728 | 920..=959 => Some(1),
        400..=699 | 760 | 960..=999 => Some(-1),
        _ => None,
    }
}

/// Type codes whose customer reference is the check serial number.
fn is_check(code: u16) -> bool {
    matches!(code, 474 | 475)
}

/// Whether an originator id has the shape of a BIC (`NWBKGB2L`, `CITIGB2LXXX`).
fn looks_like_bic(id: &str) -> bool {
    let b = id.as_bytes();
    (b.len() == 8 || b.len() == 11)
        && b.iter().take(6).all(u8::is_ascii_uppercase)
        && b.iter().skip(6).all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// What a trailer states next to what the content adds up to.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    total: i128,
    records: u64,
}

/// Where the file is in its `01 (02 (03 .. 49)* 98)* 99` structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    BeforeFile,
    InFile,
    InGroup,
    InAccount,
    AfterFile,
}

struct GroupState {
    currency: Option<Currency>,
    as_of: Option<NaiveDate>,
    originator: Option<String>,
    content: Tally,
    records_at_start: u64,
    accounts: u64,
    /// Sum of the `49` totals and counts as stated, while every one is stated.
    stated_children: Option<Tally>,
    account_records: u64,
}

struct AccountState {
    statement: Statement,
    /// Bank references already used as ids in this account.
    bank_ids: HashSet<String>,
    total: i128,
    records_at_start: u64,
}

/// Trailer checks.
///
/// Every `49`, `98` and `99` is compared with the records it closes. A difference means lines
/// were lost or changed after the bank wrote the file, and the file is refused with
/// [`ParseErrorKind::ControlTotal`] — as long as the trailers agree with each other (each group
/// trailer equals the sum of its account trailers, the file trailer the sum of its groups). Some
/// producers write trailers they never computed; their trailers then also contradict each other,
/// which proves they are no evidence of damage, so the differences become warnings instead.
#[derive(Default)]
struct Trailers {
    mismatches: Vec<ParseError>,
    /// First place where two trailers contradict each other.
    contradiction: Option<usize>,
}

struct Parser<'s, 'a> {
    source: &'s Source<'s>,
    record_length: Option<usize>,
    pending: Vec<Piece<'a>>,
    stage: Stage,
    statements: Vec<Statement>,
    warnings: Vec<Warning>,
    file_id: Option<String>,
    file_records_at_start: u64,
    file_content: Tally,
    file_groups: u64,
    file_stated_children: Option<Tally>,
    file_group_records: u64,
    records: u64,
    /// Records counted before the logical record being dispatched.
    records_before: u64,
    group: Option<GroupState>,
    account: Option<AccountState>,
    trailers: Trailers,
    transactions: usize,
    last_line: usize,
}

impl<'s, 'a> Parser<'s, 'a> {
    fn new(source: &'s Source<'s>, record_length: Option<usize>) -> Self {
        Parser {
            source,
            record_length,
            pending: Vec::with_capacity(8),
            stage: Stage::BeforeFile,
            statements: Vec::new(),
            warnings: Vec::new(),
            file_id: None,
            file_records_at_start: 0,
            file_content: Tally::default(),
            file_groups: 0,
            file_stated_children: Some(Tally::default()),
            file_group_records: 0,
            records: 0,
            records_before: 0,
            group: None,
            account: None,
            trailers: Trailers::default(),
            transactions: 0,
            last_line: 0,
        }
    }

    fn error(&self, line: usize, kind: ParseErrorKind, message: impl Into<String>) -> ParseError {
        self.source.error(Format::Bai2, Some(line), kind, message)
    }

    fn field_error(&self, f: &Field<'_>, kind: ParseErrorKind, name: &str, message: String) -> ParseError {
        self.error(f.line, kind, message).at_column(f.col).in_field(name)
    }

    fn warn(&mut self, line: usize, message: String) {
        let statement = self.account.as_ref().map(|_| self.statements.len());
        self.warnings.push(Warning { line: Some(line), statement, message });
    }

    /// Takes one physical record; a logical record is complete when the next one starts.
    fn feed(&mut self, piece: Piece<'a>) -> Result<(), ParseError> {
        self.last_line = piece.line;
        if piece.odd_delimiter {
            self.warn(
                piece.line,
                format!(
                    "line {}: record code {} is followed by a stray character instead of a comma",
                    piece.line,
                    piece.code.tag()
                ),
            );
        }
        match piece.code {
            Code::Continuation | Code::Wrapped => {
                if piece.code == Code::Wrapped {
                    let b = piece.text.as_bytes();
                    if b.len() >= 3 && b[0].is_ascii_digit() && b[1].is_ascii_digit() && b[2] == b',' {
                        return Err(self
                            .error(
                                piece.line,
                                ParseErrorKind::Syntax,
                                format!(
                                    "found record code {}, expected 01, 02, 03, 16, 49, 88, 98 or 99",
                                    piece.text.get(..2).unwrap_or("")
                                ),
                            )
                            .at_column(piece.col)
                            .in_field("record code"));
                    }
                }
                if self.pending.is_empty() {
                    let what =
                        if piece.code == Code::Wrapped { "text without a record code" } else { "an 88 continuation" };
                    let expected =
                        if self.stage == Stage::BeforeFile { "the 01 file header" } else { "a record to continue" };
                    return Err(self
                        .error(piece.line, ParseErrorKind::Syntax, format!("found {what}, expected {expected}"))
                        .at_column(piece.col)
                        .in_field("record code"));
                }
                if piece.code == Code::Wrapped {
                    let head = self.pending.first().map(|p| p.line).unwrap_or(piece.line);
                    self.warn(
                        piece.line,
                        format!(
                            "line {} has no record code; read as the continuation of the record on line {head}",
                            piece.line
                        ),
                    );
                }
                self.pending.push(piece);
                Ok(())
            }
            _ => {
                self.flush()?;
                self.pending.push(piece);
                Ok(())
            }
        }
    }

    fn flush(&mut self) -> Result<(), ParseError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pieces = std::mem::take(&mut self.pending);
        let result = self.dispatch(&pieces);
        self.pending = pieces;
        self.pending.clear();
        result
    }

    fn dispatch(&mut self, pieces: &[Piece<'a>]) -> Result<(), ParseError> {
        let Some(head) = pieces.first().copied() else { return Ok(()) };
        self.records_before = self.records;
        self.records += pieces.iter().filter(|p| p.code != Code::Wrapped).count() as u64;
        let expected = match self.stage {
            Stage::BeforeFile => "01 file header",
            Stage::InFile => "02 group header or 99 file trailer",
            Stage::InGroup => "03 account identifier or 98 group trailer",
            Stage::InAccount => "16 transaction detail, 88 continuation or 49 account trailer",
            Stage::AfterFile => "nothing after the 99 file trailer",
        };
        let allowed = matches!(
            (self.stage, head.code),
            (Stage::BeforeFile | Stage::AfterFile, Code::FileHeader)
                | (Stage::InFile, Code::GroupHeader | Code::FileTrailer)
                | (Stage::InGroup, Code::Account | Code::GroupTrailer)
                | (Stage::InAccount, Code::Detail | Code::AccountTrailer)
        );
        if !allowed {
            let mut message = format!("found {}, expected {expected}", head.code.label());
            if head.code == Code::Detail && self.stage == Stage::InGroup {
                message.push_str(" (a transaction needs its account's 03 record first)");
            }
            return Err(self
                .error(head.line, ParseErrorKind::Syntax, message)
                .at_column(head.col.saturating_sub(3).max(1))
                .in_field(head.code.tag()));
        }
        match head.code {
            Code::FileHeader => self.file_header(pieces),
            Code::GroupHeader => self.group_header(pieces),
            Code::Account => self.account_header(pieces),
            Code::Detail => self.detail(pieces),
            Code::AccountTrailer => self.account_trailer(pieces),
            Code::GroupTrailer => self.group_trailer(pieces),
            Code::FileTrailer => self.file_trailer(pieces),
            Code::Continuation | Code::Wrapped => Ok(()),
        }
    }

    fn file_header(&mut self, pieces: &[Piece<'a>]) -> Result<(), ParseError> {
        let mut f = Fields::new(pieces);
        for _ in 0..4 {
            f.next_or_empty();
        }
        let id = f.next_or_empty();
        let id = id.trimmed();
        self.file_id = (!id.is_empty()).then(|| id.to_string());
        self.file_records_at_start = self.records_before;
        self.file_content = Tally::default();
        self.file_groups = 0;
        self.file_stated_children = Some(Tally::default());
        self.file_group_records = 0;
        self.stage = Stage::InFile;
        Ok(())
    }

    fn group_header(&mut self, pieces: &[Piece<'a>]) -> Result<(), ParseError> {
        let mut f = Fields::new(pieces);
        let head = pieces.first().map(|p| p.line).unwrap_or(0);
        let _receiver = f.next_or_empty();
        let originator = f.next_or_empty().trimmed().to_string();
        let status = f.next_or_empty();
        let date_field = f.next_or_empty();
        let as_of = match bai_date(&date_field.value) {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(self.field_error(
                    &date_field,
                    ParseErrorKind::MissingField,
                    "as-of date",
                    "found no as-of date, expected YYMMDD".into(),
                ))
            }
            Err(()) => {
                return Err(self.field_error(
                    &date_field,
                    ParseErrorKind::InvalidDate,
                    "as-of date",
                    format!("found {:?}, expected a date as YYMMDD", date_field.trimmed()),
                ))
            }
        };
        let _time = f.next_or_empty();
        let currency_field = f.next_or_empty();
        let currency = self.currency(&currency_field)?;
        match status.trimmed() {
            "2" => self.warn(head, "group status 2: the bank marks this group as a deletion".into()),
            "4" => self.warn(head, "group status 4: the bank marks this group as test data only".into()),
            _ => {}
        }
        self.group = Some(GroupState {
            currency,
            as_of: Some(as_of),
            originator: (!originator.is_empty()).then_some(originator),
            content: Tally::default(),
            records_at_start: self.records_before,
            accounts: 0,
            stated_children: Some(Tally::default()),
            account_records: 0,
        });
        self.stage = Stage::InGroup;
        Ok(())
    }

    /// The currency of an account whose group and identifier name none: the caller's choice,
    /// else US dollars, which the BAI2 specification makes the default.
    fn default_currency(&self) -> Currency {
        self.source.options.currency.unwrap_or(Currency::USD)
    }

    fn currency(&self, f: &Field<'_>) -> Result<Option<Currency>, ParseError> {
        let code = f.trimmed();
        if code.is_empty() {
            return Ok(None);
        }
        Currency::new(code).map(Some).map_err(|_| {
            self.field_error(
                f,
                ParseErrorKind::InvalidCurrency,
                "currency",
                format!("found currency {code:?}, expected an ISO 4217 code such as USD"),
            )
        })
    }

    fn amount(&self, f: &Field<'_>, name: &str) -> Result<Option<i128>, ParseError> {
        minor_units(&f.value).map_err(|()| {
            self.field_error(
                f,
                ParseErrorKind::InvalidAmount,
                name,
                format!("found amount {:?}, expected digits with implied decimals (e.g. 123456)", f.trimmed()),
            )
        })
    }

    fn type_code(&self, f: &Field<'_>) -> Result<u16, ParseError> {
        type_code(&f.value).ok_or_else(|| {
            self.field_error(
                f,
                ParseErrorKind::Syntax,
                "type code",
                format!("found type code {:?}, expected three digits", f.trimmed()),
            )
        })
    }

    /// Reads a funds type and its variable fields. Returns the value date of funds type `V`.
    fn funds_type(&self, f: &mut Fields<'_, 'a>) -> Result<Option<NaiveDate>, ParseError> {
        let funds = f.next_or_empty();
        match funds.trimmed() {
            "" | "Z" | "z" | "0" | "1" | "2" => Ok(None),
            "V" | "v" => {
                let date = f.next_or_empty();
                let _time = f.next_or_empty();
                bai_date(&date.value).map_err(|()| {
                    self.field_error(
                        &date,
                        ParseErrorKind::InvalidDate,
                        "value date",
                        format!("found value date {:?}, expected YYMMDD", date.trimmed()),
                    )
                })
            }
            "S" | "s" => {
                for _ in 0..3 {
                    let part = f.next_or_empty();
                    self.amount(&part, "availability amount")?;
                }
                Ok(None)
            }
            "D" | "d" => {
                let count_field = f.next_or_empty();
                let count = match count_field.trimmed() {
                    "" => 0,
                    c => c.parse::<u64>().map_err(|_| {
                        self.field_error(
                            &count_field,
                            ParseErrorKind::Syntax,
                            "distribution count",
                            format!("found {c:?}, expected the number of availability distributions"),
                        )
                    })?,
                };
                for _ in 0..count {
                    let (Some(_days), Some(amount)) = (f.next(), f.next()) else {
                        return Err(self.field_error(
                            &count_field,
                            ParseErrorKind::MissingField,
                            "distribution",
                            format!("found fewer than the {count} availability distributions announced"),
                        ));
                    };
                    self.amount(&amount, "availability amount")?;
                }
                Ok(None)
            }
            other => Err(self.field_error(
                &funds,
                ParseErrorKind::Syntax,
                "funds type",
                format!("found funds type {other:?}, expected 0, 1, 2, V, S, D or Z"),
            )),
        }
    }

    fn account_header(&mut self, pieces: &[Piece<'a>]) -> Result<(), ParseError> {
        let mut f = Fields::new(pieces);
        let number = f.next_or_empty();
        let id = number.trimmed().to_string();
        if id.is_empty() {
            return Err(self.field_error(
                &number,
                ParseErrorKind::MissingField,
                "account number",
                "found no account number, expected the customer account number".into(),
            ));
        }
        let currency_field = f.next_or_empty();
        let (group_currency, originator) = match &self.group {
            Some(g) => (g.currency, g.originator.clone()),
            None => (None, None),
        };
        let currency = self.currency(&currency_field)?.or(group_currency).unwrap_or(self.default_currency());
        let as_of = self.group.as_ref().and_then(|g| g.as_of);
        let account = AccountIdent {
            id,
            bic: originator.as_deref().filter(|o| looks_like_bic(o)).map(str::to_string),
            bank_id: originator,
            ..AccountIdent::default()
        };
        let mut statement = Statement::new(account, currency);
        statement.statement_id = self.file_id.clone();
        statement.start_date = as_of;
        statement.end_date = as_of;
        let mut total: i128 = 0;
        loop {
            // An empty type code cannot start a summary: it is a defaulted one or a stray comma.
            let code_field = loop {
                match f.next() {
                    Some(field) if field.trimmed().is_empty() => continue,
                    other => break other,
                }
            };
            let Some(code_field) = code_field else { break };
            let code = self.type_code(&code_field)?;
            let amount_field = f.next_or_empty();
            let amount = self.amount(&amount_field, "summary amount")?;
            let _items = f.next_or_empty();
            self.funds_type(&mut f)?;
            let Some(minor) = amount else { continue };
            total = total.saturating_add(minor);
            let money = || to_decimal(minor, currency).map(|d| Money::new(d, currency));
            match code {
                10 if statement.opening_balance.is_none() => statement.opening_balance = money(),
                15 if statement.closing_balance.is_none() => statement.closing_balance = money(),
                45 if statement.available_balance.is_none() => statement.available_balance = money(),
                _ => {}
            }
        }
        self.account =
            Some(AccountState { statement, bank_ids: HashSet::new(), total, records_at_start: self.records_before });
        self.stage = Stage::InAccount;
        Ok(())
    }

    fn detail(&mut self, pieces: &[Piece<'a>]) -> Result<(), ParseError> {
        let head = pieces.first().copied();
        let line = head.map(|p| p.line).unwrap_or(0);
        let mut f = Fields::new(pieces);
        let code_field = f.next_or_empty();
        let code = self.type_code(&code_field)?;
        let amount_field = f.next_or_empty();
        let amount = self.amount(&amount_field, "amount")?;
        let value_date = self.funds_type(&mut f)?;
        let bank_ref = f.next_or_empty().trimmed().to_string();
        let customer_ref = f.next_or_empty().trimmed().to_string();
        let description = f.rest_text();
        let as_of = self.group.as_ref().and_then(|g| g.as_of);
        let Some(account) = self.account.as_mut() else { return Ok(()) };
        if let Some(minor) = amount {
            account.total = account.total.saturating_add(minor);
        }
        let currency = account.statement.currency;
        let (Some(minor), Some(sign), Some(booking_date)) = (amount, direction(code), as_of) else {
            let why = if amount.is_none() {
                "it has no amount".to_string()
            } else {
                format!("type code {code:03} is neither a credit nor a debit")
            };
            self.warn(line, format!("16 transaction detail on line {line} skipped: {why}"));
            return Ok(());
        };
        let Some(value) = to_decimal(minor * i128::from(sign), currency) else {
            return Err(self.field_error(
                &amount_field,
                ParseErrorKind::InvalidAmount,
                "amount",
                format!("found amount {:?}, expected at most {MAX_AMOUNT_DIGITS} digits", amount_field.trimmed()),
            ));
        };
        let mut txn = BankTransaction::new(booking_date, Money::new(value, currency));
        let repeated = !bank_ref.is_empty() && !account.bank_ids.insert(bank_ref.clone());
        if !repeated {
            txn = txn.with_bank_id(bank_ref.as_str());
        }
        txn.value_date = value_date.filter(|d| *d != booking_date);
        txn.description = description.into();
        txn.bank_code = Some(format!("{code:03}").into());
        if !customer_ref.is_empty() {
            if is_check(code) {
                txn.check_number = Some(customer_ref.as_str().into());
            }
            txn.reference = Some(customer_ref.into());
        }
        account.statement.transactions.push(txn);
        self.transactions += 1;
        if repeated {
            // Two lines with one id would collapse into one when imported; the fingerprint keeps both.
            self.warn(
                line,
                format!("bank reference {bank_ref:?} on line {line} repeats an earlier line's; not used as its id"),
            );
        }
        if self.transactions % PROGRESS_EVERY == 0 {
            if let Some(p) = head {
                self.source.report_progress(p.offset);
            }
        }
        Ok(())
    }

    /// Reads a trailer's control total and the counts after it.
    fn trailer_fields<const N: usize>(
        &self,
        pieces: &[Piece<'a>],
    ) -> Result<(Option<i128>, [Option<u64>; N]), ParseError> {
        let mut f = Fields::new(pieces);
        let total_field = f.next_or_empty();
        let total = self.amount(&total_field, "control total")?;
        let mut counts = [None; N];
        for slot in counts.iter_mut() {
            let field = f.next_or_empty();
            let value = match field.trimmed() {
                "" => None,
                v => Some(v.parse::<u64>().map_err(|_| {
                    self.field_error(&field, ParseErrorKind::Syntax, "count", format!("found {v:?}, expected a count"))
                })?),
            };
            *slot = value;
        }
        Ok((total, counts))
    }

    fn mismatch(&mut self, line: usize, tag: &str, what: &str, stated: i128, content: i128) {
        let err = self
            .error(
                line,
                ParseErrorKind::ControlTotal,
                format!("found {what} {stated}, expected {content} (what the records it closes add up to)"),
            )
            .in_field(tag);
        self.trailers.mismatches.push(err);
    }

    fn contradiction(&mut self, line: usize) {
        self.trailers.contradiction.get_or_insert(line);
    }

    fn account_trailer(&mut self, pieces: &[Piece<'a>]) -> Result<(), ParseError> {
        let line = pieces.first().map(|p| p.line).unwrap_or(0);
        let (total, [count]) = self.trailer_fields::<1>(pieces)?;
        let Some(account) = self.account.take() else { return Ok(()) };
        let records = self.records.saturating_sub(account.records_at_start);
        if let Some(t) = total.filter(|t| *t != account.total) {
            self.mismatch(line, "49", "account control total", t, account.total);
        }
        if let Some(c) = count.filter(|c| *c != records) {
            self.mismatch(line, "49", "account record count", i128::from(c), i128::from(records));
        }
        if let Some(g) = self.group.as_mut() {
            g.content.total = g.content.total.saturating_add(account.total);
            g.accounts += 1;
            g.account_records += records;
            g.stated_children = match (g.stated_children, total, count) {
                (Some(s), Some(t), Some(c)) => {
                    Some(Tally { total: s.total.saturating_add(t), records: s.records.saturating_add(c) })
                }
                _ => None,
            };
        }
        self.statements.push(account.statement);
        self.stage = Stage::InGroup;
        Ok(())
    }

    fn group_trailer(&mut self, pieces: &[Piece<'a>]) -> Result<(), ParseError> {
        let line = pieces.first().map(|p| p.line).unwrap_or(0);
        let (total, [accounts, count]) = self.trailer_fields::<2>(pieces)?;
        let Some(g) = self.group.take() else { return Ok(()) };
        let records = self.records.saturating_sub(g.records_at_start);
        if let Some(t) = total.filter(|t| *t != g.content.total) {
            self.mismatch(line, "98", "group control total", t, g.content.total);
        }
        if let Some(a) = accounts.filter(|a| *a != g.accounts) {
            self.mismatch(line, "98", "number of accounts", i128::from(a), i128::from(g.accounts));
        }
        if let Some(c) = count.filter(|c| *c != records) {
            self.mismatch(line, "98", "group record count", i128::from(c), i128::from(records));
        }
        if let Some(children) = g.stated_children {
            let own = records.saturating_sub(g.account_records);
            if total.is_some_and(|t| t != children.total)
                || count.is_some_and(|c| c != children.records.saturating_add(own))
            {
                self.contradiction(line);
            }
        }
        self.file_content.total = self.file_content.total.saturating_add(g.content.total);
        self.file_groups += 1;
        self.file_group_records += records;
        self.file_stated_children = match (self.file_stated_children, total, count) {
            (Some(s), Some(t), Some(c)) => {
                Some(Tally { total: s.total.saturating_add(t), records: s.records.saturating_add(c) })
            }
            _ => None,
        };
        self.stage = Stage::InFile;
        Ok(())
    }

    fn file_trailer(&mut self, pieces: &[Piece<'a>]) -> Result<(), ParseError> {
        let line = pieces.first().map(|p| p.line).unwrap_or(0);
        let (total, [groups, count]) = self.trailer_fields::<2>(pieces)?;
        let records = self.records.saturating_sub(self.file_records_at_start);
        if let Some(t) = total.filter(|t| *t != self.file_content.total) {
            self.mismatch(line, "99", "file control total", t, self.file_content.total);
        }
        if let Some(n) = groups.filter(|n| *n != self.file_groups) {
            self.mismatch(line, "99", "number of groups", i128::from(n), i128::from(self.file_groups));
        }
        if let Some(c) = count.filter(|c| *c != records) {
            self.mismatch(line, "99", "file record count", i128::from(c), i128::from(records));
        }
        if let Some(children) = self.file_stated_children {
            let own = records.saturating_sub(self.file_group_records);
            if total.is_some_and(|t| t != children.total)
                || count.is_some_and(|c| c != children.records.saturating_add(own))
            {
                self.contradiction(line);
            }
        }
        self.stage = Stage::AfterFile;
        Ok(())
    }

    fn finish(mut self) -> Result<Parsed, ParseError> {
        self.flush()?;
        let end = self.last_line.max(1);
        match self.stage {
            Stage::AfterFile => {}
            Stage::BeforeFile => {
                return Err(self.error(end, ParseErrorKind::Empty, "found no records, expected a 01 file header"))
            }
            stage => {
                let inside = match (stage, &self.account) {
                    (Stage::InAccount, Some(a)) => format!("inside account {}", a.statement.account.id),
                    (Stage::InGroup, _) => "inside a group".to_string(),
                    _ => "before its 99 file trailer".to_string(),
                };
                return Err(self.error(
                    end,
                    ParseErrorKind::Syntax,
                    format!(
                        "found the end of the file {inside}, expected the trailers that close it (truncated file?)"
                    ),
                ));
            }
        }
        let mismatches = std::mem::take(&mut self.trailers.mismatches);
        match self.trailers.contradiction {
            None => {
                if let Some(first) = mismatches.into_iter().next() {
                    return Err(first);
                }
            }
            Some(at) => {
                for m in mismatches {
                    self.warnings.push(Warning {
                        line: m.line,
                        statement: None,
                        message: format!(
                            "{} trailer: {} — not enforced because the file's trailers contradict each other (line {at})",
                            m.field.as_deref().unwrap_or(""),
                            m.message
                        ),
                    });
                }
            }
        }
        if self.statements.is_empty() {
            self.warnings.push(Warning { line: None, statement: None, message: "the file holds no accounts".into() });
        }
        Ok(Parsed { statements: self.statements, warnings: self.warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdSource;
    use crate::parse::ParseOptions;
    use proptest::prelude::*;

    fn run(text: &str) -> Result<Parsed, ParseError> {
        run_with(text.as_bytes(), &ParseOptions::default())
    }

    fn run_with(bytes: &[u8], options: &ParseOptions) -> Result<Parsed, ParseError> {
        parse(&Source { name: "test.bai", bytes, options, progress: None })
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn amounts(s: &Statement) -> Vec<String> {
        s.transactions.iter().map(|t| t.amount.to_fixed()).collect()
    }

    const CHECKING: &str = "\
01,021000021,ACMECORP,240312,0600,7,80,1,2/
02,ACMECORP,021000021,1,240311,2400,USD,2/
03,555001234,,010,125000,,,015,128550,,,045,127000,,/
16,195,10000,V,240312,,WIRE0001,INV-77,Incoming wire from Harbor Supply Co
16,475,2450,0,CHK1002,1002,Check paid/
16,699,4000,Z,,,Monthly service fee/
49,397000,5/
98,397000,1,7/
99,397000,1,9/
";

    #[test]
    fn a_statement_maps_account_balances_and_signed_lines() {
        let parsed = run(CHECKING).unwrap();
        assert_eq!(parsed.statements.len(), 1);
        let s = &parsed.statements[0];
        assert_eq!(s.account.id, "555001234");
        assert_eq!(s.account.bank_id.as_deref(), Some("021000021"));
        assert_eq!(s.currency, Currency::USD);
        assert_eq!(s.statement_id.as_deref(), Some("7"));
        assert_eq!((s.start_date, s.end_date), (Some(date(2024, 3, 11)), Some(date(2024, 3, 11))));
        assert_eq!(s.opening_balance.map(|m| m.to_fixed()).as_deref(), Some("1250.00"));
        assert_eq!(s.closing_balance.map(|m| m.to_fixed()).as_deref(), Some("1285.50"));
        assert_eq!(s.available_balance.map(|m| m.to_fixed()).as_deref(), Some("1270.00"));
        assert_eq!(amounts(s), ["100.00", "-24.50", "-40.00"]);
        let wire = &s.transactions[0];
        assert_eq!(wire.booking_date, date(2024, 3, 11));
        assert_eq!(wire.value_date, Some(date(2024, 3, 12)));
        assert_eq!((wire.id.as_ref(), wire.id_source), ("WIRE0001", IdSource::Bank));
        assert_eq!(wire.reference.as_deref(), Some("INV-77"));
        assert_eq!(&*wire.description, "Incoming wire from Harbor Supply Co");
        assert_eq!(wire.bank_code.as_deref(), Some("195"));
        assert_eq!(s.transactions[1].check_number.as_deref(), Some("1002"));
        assert_eq!(&*s.transactions[1].description, "Check paid");
        assert_eq!(s.transactions[2].id_source, IdSource::Fingerprint);
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    }

    fn file(currency_02: &str, account: &str, total: i64, records: u32) -> String {
        format!(
            "01,B,C,240101,0000,1,,,2/\n02,C,B,1,240101,,{currency_02},2/\n{account}\n49,{total},{records}/\n98,{total},1,{}/\n99,{total},1,{}/\n",
            records + 2,
            records + 4
        )
    }

    #[test]
    fn amounts_carry_the_implied_decimals_of_their_currency() {
        let jpy = run(&file("JPY", "03,1,,010,1500,,/\n16,399,250,,,,/", 1750, 3)).unwrap();
        assert_eq!(jpy.statements[0].opening_balance.map(|m| m.to_fixed()).as_deref(), Some("1500"));
        assert_eq!(amounts(&jpy.statements[0]), ["250"]);
        let bhd = run(&file("BHD", "03,1,,010,1500,,/\n16,399,250,,,,/", 1750, 3)).unwrap();
        assert_eq!(bhd.statements[0].opening_balance.map(|m| m.to_fixed()).as_deref(), Some("1.500"));
        assert_eq!(amounts(&bhd.statements[0]), ["0.250"]);
    }

    #[test]
    fn the_account_currency_overrides_the_group_and_usd_is_the_default() {
        let gbp = run(&file("USD", "03,1,GBP,010,100,,/", 100, 2)).unwrap();
        assert_eq!(gbp.statements[0].currency.code(), "GBP");
        let none = run(&file("", "03,1,,010,100,,/", 100, 2)).unwrap();
        assert_eq!(none.statements[0].currency, Currency::USD);
        let options = ParseOptions { currency: Some(Currency::EUR), ..ParseOptions::default() };
        let chosen = run_with(file("", "03,1,,010,100,,/", 100, 2).as_bytes(), &options).unwrap();
        assert_eq!(chosen.statements[0].currency, Currency::EUR);
    }

    #[test]
    fn signed_summaries_and_negative_balances_are_kept() {
        let parsed = run(&file("USD", "03,1,,010,-3500,,,015,+3600,,/", 100, 2)).unwrap();
        let s = &parsed.statements[0];
        assert_eq!(s.opening_balance.map(|m| m.to_fixed()).as_deref(), Some("-35.00"));
        assert_eq!(s.closing_balance.map(|m| m.to_fixed()).as_deref(), Some("36.00"));
    }

    #[test]
    fn a_continuation_carries_on_the_summaries_even_in_the_middle_of_a_field() {
        // `110,5000` stops without a delimiter: the continuation's `00` finishes the amount.
        let account = "03,1,,010,100,,,110,5000\n88,00,4,/\n88,015,500100,,/";
        let parsed = run(&file("USD", account, 1000200, 4)).unwrap();
        let s = &parsed.statements[0];
        assert_eq!(s.closing_balance.map(|m| m.to_fixed()).as_deref(), Some("5001.00"));
    }

    #[test]
    fn a_summary_type_code_may_wait_for_its_amount_in_the_continuation() {
        let account = "03,1,,010,-500,,,190/\n88,500,,,015,0,,/";
        let parsed = run(&file("USD", account, 0, 3)).unwrap();
        let s = &parsed.statements[0];
        assert_eq!(s.opening_balance.map(|m| m.to_fixed()).as_deref(), Some("-5.00"));
        assert_eq!(s.closing_balance.map(|m| m.to_fixed()).as_deref(), Some("0.00"));
    }

    #[test]
    fn text_continues_in_88_records_and_a_cut_at_the_record_length_joins_without_a_blank() {
        let cut = format!("88,{}", "X".repeat(70) + "INTERNA");
        assert_eq!(cut.len(), 80);
        let account = format!("03,1,,,,/\n16,699,100,,,/\n88,FIRST PART\n88,SECOND\n{cut}\n88,TIONAL TFR");
        let parsed = run(&file("USD", &account, 100, 7)).unwrap();
        let t = &parsed.statements[0].transactions[0];
        assert_eq!(&*t.description, format!("FIRST PART SECOND {}INTERNATIONAL TFR", "X".repeat(70)));
    }

    #[test]
    fn free_text_may_hold_commas_and_slashes_and_records_may_omit_the_slash() {
        let account =
            "03,1,USD,,,,/\n16,165,60000,,REF1,AB/GS/0001,ACH Credit, From: X/Y, SEC: CCD\n88,EREF: AB/GS/0001";
        let parsed = run(&file("USD", account, 60000, 4)).unwrap();
        let t = &parsed.statements[0].transactions[0];
        assert_eq!(t.reference.as_deref(), Some("AB/GS/0001"));
        assert_eq!(&*t.description, "ACH Credit, From: X/Y, SEC: CCD EREF: AB/GS/0001");
        assert_eq!(t.amount.to_fixed(), "600.00");
    }

    #[test]
    fn several_records_on_one_line_are_split_at_a_slash_and_blanks() {
        let text = "01,B,C,240101,0000,1,,,2/   02,C,B,1,240101,,USD,2/\n\
                    03,1,,010,100,,/ 16,142,25,Z,,,PAYPAL PPD/ 16,451,5,Z,,,FEE/  49,130,4/\n98,130,1,6/\n99,130,1,8/\n";
        let parsed = run(text).unwrap();
        assert_eq!(amounts(&parsed.statements[0]), ["0.25", "-0.05"]);
        assert_eq!(&*parsed.statements[0].transactions[0].description, "PAYPAL PPD");
    }

    #[test]
    fn fixed_length_blocks_without_line_ends_are_read_as_records() {
        let records = [
            "01,B,C,240101,0000,1,40,,2/",
            "02,C,B,1,240101,,USD,2/",
            "03,1,,010,100,,/",
            "16,142,25,Z,,,A LONG TEXT THAT FILLS",
            "88,THE WHOLE BLOCK/",
            "49,125,4/",
            "98,125,1,6/",
            "99,125,1,8/",
        ];
        let blob: String = records.iter().map(|r| format!("{r:<40}")).collect();
        let parsed = run(&blob).unwrap();
        let t = &parsed.statements[0].transactions[0];
        assert_eq!(&*t.description, "A LONG TEXT THAT FILLS THE WHOLE BLOCK");
    }

    #[test]
    fn a_file_on_one_line_without_padding_is_split_at_each_slash() {
        let text = "01,B,C,240101,0000,1,,,2/02,C,B,1,240101,,USD,2/03,1,,010,100,,/16,142,25,Z,,,SALE 12/2024 A/B/\
                    49,125,3/98,125,1,5/99,125,1,7/";
        let parsed = run(text).unwrap();
        assert_eq!(&*parsed.statements[0].transactions[0].description, "SALE 12/2024 A/B");
    }

    #[test]
    fn a_continuation_code_with_a_colon_is_read_with_a_warning() {
        let account = "03,1,,,,/\n16,142,25,Z,,,TEXT\n88:MORE";
        let parsed = run(&file("USD", account, 25, 4)).unwrap();
        assert_eq!(&*parsed.statements[0].transactions[0].description, "TEXT MORE");
        assert_eq!(parsed.warnings.len(), 1);
    }

    #[test]
    fn a_repeated_bank_reference_is_not_used_twice_as_an_id() {
        let account = "03,1,,,,/\n16,142,25,Z,B1,,A/\n16,142,30,Z,B1,,B/";
        let parsed = run(&file("USD", account, 55, 4)).unwrap();
        let t = &parsed.statements[0].transactions;
        assert_eq!((t[0].id.as_ref(), t[0].id_source), ("B1", IdSource::Bank));
        assert_eq!(t[1].id_source, IdSource::Fingerprint);
        assert_eq!(parsed.warnings.len(), 1);
    }

    #[test]
    fn a_record_wrapped_onto_a_bare_line_continues_with_a_warning() {
        let account = "03,1,,,,/\n16,142,25,Z,,,FIRST HALF\nSECOND HALF/";
        let parsed = run(&file("USD", account, 25, 3)).unwrap();
        assert_eq!(&*parsed.statements[0].transactions[0].description, "FIRST HALF SECOND HALF");
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.warnings[0].line, Some(5));
    }

    #[test]
    fn funds_types_consume_their_own_fields() {
        let account = "03,1,,,,/\n\
                       16,115,450000,S,100000,200000,150000,BREF1,CREF1,LOCKBOX/\n\
                       16,115,300000,D,2,0,100000,1,200000,BREF2,CREF2,DISTRIBUTED/\n\
                       16,115,100,V,240105,1200,BREF3,,VALUE DATED/";
        let parsed = run(&file("USD", account, 750100, 5)).unwrap();
        let t = &parsed.statements[0].transactions;
        assert_eq!((t[0].id.as_ref(), t[0].reference.as_deref()), ("BREF1", Some("CREF1")));
        assert_eq!((t[1].id.as_ref(), t[1].reference.as_deref()), ("BREF2", Some("CREF2")));
        assert_eq!(&*t[1].description, "DISTRIBUTED");
        assert_eq!(t[2].value_date, Some(date(2024, 1, 5)));
        assert_eq!(t[2].reference, None);
    }

    #[test]
    fn lines_with_status_or_non_monetary_codes_are_skipped_with_a_warning() {
        let account = "03,1,,,,/\n16,890,,,,,NOTE ONLY/\n16,142,25,,,,/";
        let parsed = run(&file("USD", account, 25, 4)).unwrap();
        assert_eq!(amounts(&parsed.statements[0]), ["0.25"]);
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(parsed.warnings[0].line, Some(4));
        assert_eq!(parsed.warnings[0].statement, Some(0));
    }

    #[test]
    fn a_control_total_that_disagrees_with_the_lines_is_a_control_total_error() {
        let err = run(&file("USD", "03,1,,010,100,,/\n16,142,25,,,,/", 100, 3)).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::ControlTotal);
        assert_eq!(err.line, Some(5));
        assert_eq!(err.field.as_deref(), Some("49"));
        assert!(err.message.contains("found account control total 100, expected 125"), "{}", err.message);
    }

    #[test]
    fn a_record_count_that_disagrees_is_a_control_total_error() {
        let err = run(&file("USD", "03,1,,010,100,,/\n16,142,25,,,,/", 125, 4)).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::ControlTotal);
        assert!(err.message.contains("record count 4, expected 3"), "{}", err.message);
    }

    #[test]
    fn trailers_that_contradict_each_other_are_reported_as_warnings() {
        // The group trailer is not the sum of its account trailer: the producer did not compute them.
        let text = "01,B,C,240101,0000,1,,,2/\n02,C,B,1,240101,,USD,2/\n03,1,,010,100,,/\n16,142,25,,,,/\n\
                    49,999,9/\n98,5,1,4/\n99,5,1,6/\n";
        let parsed = run(text).unwrap();
        assert_eq!(amounts(&parsed.statements[0]), ["0.25"]);
        assert!(parsed.warnings.iter().any(|w| w.line == Some(5) && w.message.contains("not enforced")));
    }

    #[test]
    fn blank_trailer_totals_are_not_checked() {
        let text = "01,B,C,240101,0000,1,,,2/\n02,C,B,1,240101,,,2/\n03,1,/\n49,,2/\n98,0,1,4/\n99,0,1,6/";
        let parsed = run(text).unwrap();
        assert_eq!(parsed.statements.len(), 1);
        assert!(parsed.statements[0].transactions.is_empty());
    }

    #[test]
    fn a_detail_before_any_account_is_a_syntax_error_with_its_line() {
        let err = run("01,B,C,240101,0000,1,,,2/\n02,C,B,1,240101,,USD,2/\n16,142,25,,,,/\n").unwrap_err();
        assert_eq!((err.kind, err.line), (ParseErrorKind::Syntax, Some(3)));
        assert_eq!(err.field.as_deref(), Some("16"));
        assert!(err.message.starts_with("found 16 transaction detail, expected 03"), "{}", err.message);
    }

    #[test]
    fn an_unknown_record_code_is_refused() {
        let err = run("00,0004,1/2/345,06/0321,0829,001,80,1,2/\n").unwrap_err();
        assert_eq!((err.kind, err.line, err.column), (ParseErrorKind::Syntax, Some(1), Some(1)));
        assert!(err.message.contains("record code 00"), "{}", err.message);
    }

    #[test]
    fn a_bad_amount_names_its_line_column_and_field() {
        let err = run(&file("USD", "03,1,,,,/\n16,142,12.50,,,,/", 0, 3)).unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::InvalidAmount);
        assert_eq!((err.line, err.column), (Some(4), Some(8)));
        assert_eq!(err.field.as_deref(), Some("amount"));
    }

    #[test]
    fn bad_dates_currencies_and_funds_types_are_typed_errors() {
        let bad_date = run("01,B,C,240101,0000,1,,,2/\n02,C,B,1,241399,,USD,2/\n").unwrap_err();
        assert_eq!(bad_date.kind, ParseErrorKind::InvalidDate);
        let bad_ccy = run(&file("ZZZ", "03,1,/", 0, 2)).unwrap_err();
        assert_eq!(bad_ccy.kind, ParseErrorKind::InvalidCurrency);
        let bad_funds = run(&file("USD", "03,1,,,,/\n16,142,1,Q,,,/", 1, 3)).unwrap_err();
        assert_eq!(bad_funds.field.as_deref(), Some("funds type"));
    }

    #[test]
    fn a_truncated_file_is_refused() {
        let err = run("01,B,C,240101,0000,1,,,2/\n02,C,B,1,240101,,USD,2/\n03,1,,,,/\n16,142,25,,,,/\n").unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::Syntax);
        assert!(err.message.contains("inside account 1"), "{}", err.message);
    }

    #[test]
    fn the_same_account_in_two_groups_gives_two_statements() {
        let text = "01,B,C,240102,0000,1,,,2/\n\
                    02,C,B,1,240101,,USD,2/\n03,9,,010,100,,/\n49,100,2/\n98,100,1,4/\n\
                    02,C,B,1,240102,,USD,2/\n03,9,,010,200,,/\n49,200,2/\n98,200,1,4/\n99,300,2,10/\n";
        let parsed = run(text).unwrap();
        assert_eq!(parsed.statements.len(), 2);
        assert_eq!(parsed.statements[1].start_date, Some(date(2024, 1, 2)));
    }

    /// One generated transaction: credit or debit, amount in cents, references and text.
    #[derive(Debug, Clone)]
    struct GenLine {
        credit: bool,
        cents: i64,
        bank_ref: String,
        customer_ref: String,
        text: String,
    }

    #[derive(Debug, Clone)]
    struct GenAccount {
        number: String,
        opening: i64,
        lines: Vec<GenLine>,
    }

    fn gen_line() -> impl Strategy<Value = GenLine> {
        (
            any::<bool>(),
            1i64..10_000_000_000,
            "([A-Z0-9]{1,16})?",
            "([A-Z0-9-]{1,12})?",
            prop::collection::vec("[A-Za-z0-9.:-][A-Za-z0-9.:,-]{0,10}", 0..12),
        )
            .prop_map(|(credit, cents, bank_ref, customer_ref, words)| GenLine {
                credit,
                cents,
                bank_ref,
                customer_ref,
                text: words.join(" "),
            })
    }

    fn gen_account() -> impl Strategy<Value = GenAccount> {
        ("[0-9]{4,12}", -100_000_000i64..100_000_000, prop::collection::vec(gen_line(), 0..8)).prop_map(
            |(number, opening, mut lines)| {
                // A bank reference is unique within an account (a repeat is deliberately not used
                // as an id), so the generated ones are made unique too.
                for (i, line) in lines.iter_mut().enumerate() {
                    if !line.bank_ref.is_empty() {
                        line.bank_ref = format!("{}-{i}", line.bank_ref);
                    }
                }
                GenAccount { number, opening, lines }
            },
        )
    }

    /// Writes a BAI2 file the way a bank would: records cut at 80 bytes into `88` continuations,
    /// trailers with their control totals and record counts.
    fn write_bai2(day: NaiveDate, currency: &str, accounts: &[GenAccount]) -> String {
        let yymmdd = day.format("%y%m%d").to_string();
        let mut out =
            format!("01,BANKID,CUSTID,{yymmdd},0700,42,80,,2/\n02,CUSTID,BANKID,1,{yymmdd},2400,{currency},2/\n");
        let mut group_total: i128 = 0;
        let mut group_records = 2u64;
        for a in accounts {
            let closing = a.opening + a.lines.iter().map(|l| if l.credit { l.cents } else { -l.cents }).sum::<i64>();
            let mut records = vec![format!("03,{},,010,{},,,015,{},,/", a.number, a.opening, closing)];
            let mut total = i128::from(a.opening) + i128::from(closing);
            for l in &a.lines {
                let code = if l.credit { "195" } else { "699" };
                total += i128::from(l.cents);
                let record = format!("16,{code},{},Z,{},{},{}", l.cents, l.bank_ref, l.customer_ref, l.text);
                let mut rest = record.as_str();
                let mut first = true;
                while !rest.is_empty() {
                    let room = if first { 80 } else { 77 };
                    let take = rest.len().min(room);
                    let (head, tail) = rest.split_at(take);
                    records.push(if first { head.to_string() } else { format!("88,{head}") });
                    rest = tail;
                    first = false;
                }
            }
            records.push(format!("49,{total},{}/", records.len() + 1));
            group_total += total;
            group_records += records.len() as u64;
            for r in records {
                out.push_str(&r);
                out.push('\n');
            }
        }
        group_records += 1;
        out.push_str(&format!("98,{group_total},{},{group_records}/\n", accounts.len()));
        out.push_str(&format!("99,{group_total},1,{}/\n", group_records + 2));
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn written_statements_parse_back_to_the_same_transactions(
            accounts in prop::collection::vec(gen_account(), 1..4),
            day in 0u32..3000,
            currency in prop::sample::select(vec!["USD", "EUR", "GBP", "CAD"]),
        ) {
            let as_of = date(2015, 1, 1) + chrono::Days::new(u64::from(day));
            let text = write_bai2(as_of, currency, &accounts);
            let parsed = run(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(parsed.statements.len(), accounts.len());
            for (s, a) in parsed.statements.iter().zip(&accounts) {
                prop_assert_eq!(&s.account.id, &a.number);
                prop_assert_eq!(s.currency.code(), currency);
                prop_assert_eq!(s.opening_balance.map(|m| m.amount()), Some(Decimal::new(a.opening, 2)));
                prop_assert_eq!(s.transactions.len(), a.lines.len());
                for (t, l) in s.transactions.iter().zip(&a.lines) {
                    let signed = if l.credit { l.cents } else { -l.cents };
                    prop_assert_eq!(t.amount.amount(), Decimal::new(signed, 2));
                    prop_assert_eq!(t.booking_date, as_of);
                    prop_assert_eq!(&*t.description, l.text.as_str());
                    prop_assert_eq!(&*t.id, l.bank_ref.as_str());
                    prop_assert_eq!(t.reference.as_deref().unwrap_or(""), l.customer_ref.as_str());
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in any::<Vec<u8>>()) {
            let _ = run_with(&bytes, &ParseOptions::default());
        }

        #[test]
        fn arbitrary_record_soup_never_panics(
            records in prop::collection::vec(
                ("(01|02|03|16|49|88|98|99|[0-9]{2})", "[0-9A-Z,/ .VSDZ+-]{0,24}", prop::sample::select(vec!["\n", "/\n", "/ ", "\r\n", ""])),
                0..24,
            )
        ) {
            let mut text = String::from("01,B,C,240101,0000,1,,,2/\n");
            for (code, body, end) in &records {
                text.push_str(code);
                text.push(',');
                text.push_str(body);
                text.push_str(end);
            }
            let _ = run(&text);
        }
    }
}
