//! Text helpers shared by every statement parser: character decoding, amounts written the many ways
//! banks write them, dates in several orders, and byte offset → line/column.

use std::borrow::Cow;

use chrono::NaiveDate;
use encoding_rs::Encoding;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Decodes a statement file to text. A BOM wins; then valid UTF-8 is borrowed as is; otherwise the
/// declared encoding (from an OFX `CHARSET`, an XML declaration...) or Windows-1252 (a superset of
/// Latin-1 for printable text, which is what 8-bit bank exports use) decodes it.
pub fn decode<'a>(bytes: &'a [u8], declared: Option<&'static Encoding>) -> Cow<'a, str> {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom_len..]);
        return text;
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let enc = declared.filter(|e| *e != encoding_rs::UTF_8).unwrap_or(encoding_rs::WINDOWS_1252);
    let (text, _, _) = enc.decode(bytes);
    text
}

/// Looks up an encoding by label (`ISO-8859-1`, `cp1252`, `utf-8`, OFX `CHARSET:1252`).
pub fn encoding_for_label(label: &str) -> Option<&'static Encoding> {
    let label = label.trim();
    if label.chars().all(|c| c.is_ascii_digit()) && !label.is_empty() {
        // OFX 1.x writes code pages as bare numbers.
        return Encoding::for_label(format!("windows-{label}").as_bytes())
            .or_else(|| Encoding::for_label(format!("cp{label}").as_bytes()));
    }
    Encoding::for_label(label.as_bytes())
}

/// 1-based line and column of a byte offset in `text`.
pub fn line_col(text: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let col = offset - before.iter().rposition(|&b| b == b'\n').map(|p| p + 1).unwrap_or(0) + 1;
    (line, col)
}

/// Line and column of byte offsets in one text, for parsers that name a position only in
/// warnings and errors: the line starts are found the first time a position is asked for, so
/// reading a file that needs none costs nothing.
#[derive(Debug)]
pub struct LineIndex<'a> {
    text: &'a [u8],
    starts: std::cell::OnceCell<Vec<usize>>,
}

impl<'a> LineIndex<'a> {
    /// An index of `text` (nothing is scanned yet).
    pub fn new(text: &'a [u8]) -> Self {
        LineIndex { text, starts: std::cell::OnceCell::new() }
    }

    /// 1-based line and column of `offset`, as [`line_col`] gives them.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let starts = self
            .starts
            .get_or_init(|| std::iter::once(0).chain(memchr::memchr_iter(b'\n', self.text).map(|i| i + 1)).collect());
        // Lines that start at or before the offset; the first line starts at 0.
        let line = starts.partition_point(|&s| s <= offset);
        let start = starts.get(line.wrapping_sub(1)).copied().unwrap_or(0);
        (line, offset - start + 1)
    }

    /// 1-based line of `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.line_col(offset).0
    }
}

/// Which character separates the decimals in an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalSeparator {
    /// Decide per amount: the last `.` or `,` followed by one to three... digits is the decimal
    /// separator unless it is clearly a thousands group (see [`parse_amount`]).
    #[default]
    Auto,
    /// `1,234.56`
    Dot,
    /// `1.234,56`
    Comma,
}

/// Parses an amount as banks write it: optional currency symbol or code, `+`/`-` in front or
/// behind, parentheses for negatives, blanks, apostrophes or the other separator as thousands
/// separators, and a decimal dot or comma. Returns `None` when the text is not an amount.
pub fn parse_amount(raw: &str, sep: DecimalSeparator) -> Option<Decimal> {
    let mut s = raw.trim();
    if s.is_empty() {
        return None;
    }
    let mut negative = false;
    if s.starts_with('(') && s.ends_with(')') {
        negative = true;
        s = s[1..s.len() - 1].trim();
    }
    // A currency code may stand before or after the number (`EUR 12,50`, `12.50 USD`), but only
    // a real ISO 4217 code: `12a` or `100.00 CR` are not amounts this function can read.
    let letters: Vec<&str> = s.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).collect();
    if letters.len() > 1 || letters.iter().any(|w| crate::domain::Currency::new(w).is_err()) {
        return None;
    }
    // Keep digits, separators and signs; drop currency symbols/codes and spacing.
    let mut digits = String::with_capacity(s.len());
    let mut sign_seen = false;
    for (i, c) in s.char_indices() {
        match c {
            '0'..='9' | '.' | ',' => digits.push(c),
            '-' | '\u{2212}' => {
                if sign_seen {
                    return None;
                }
                sign_seen = true;
                negative = !negative;
            }
            '+' => {
                if sign_seen {
                    return None;
                }
                sign_seen = true;
            }
            ' ' | '\u{a0}' | '\u{202f}' | '\'' | '’' => {}
            c if c.is_alphabetic() || matches!(c, '$' | '€' | '£' | '¥' | '₹' | '₩' | '¤') => {
                // A currency marker may stand at either end only, not between digits.
                let rest = &s[i..];
                let before_digits = !digits.chars().any(|d| d.is_ascii_digit());
                let after_digits = !rest.chars().any(|d| d.is_ascii_digit());
                if !(before_digits || after_digits) {
                    return None;
                }
                if c.is_alphabetic() && !c.is_ascii_uppercase() && !c.is_ascii_lowercase() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    if !digits.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let normalised = normalise_separators(&digits, sep)?;
    let value = Decimal::from_str_exact(&normalised).ok()?;
    Some(if negative { -value } else { value })
}

fn normalise_separators(digits: &str, sep: DecimalSeparator) -> Option<String> {
    let decimal = match sep {
        DecimalSeparator::Dot => Some('.'),
        DecimalSeparator::Comma => Some(','),
        DecimalSeparator::Auto => {
            let last_dot = digits.rfind('.');
            let last_comma = digits.rfind(',');
            match (last_dot, last_comma) {
                (Some(d), Some(c)) => Some(if d > c { '.' } else { ',' }),
                (Some(p), None) | (None, Some(p)) => {
                    let ch = if last_dot.is_some() { '.' } else { ',' };
                    let count = digits.matches(ch).count();
                    let after = digits.len() - p - 1;
                    // `1,234` / `1.234.567`: thousands groups; `12,5` / `0.123` single: decimal.
                    if count > 1 || (after == 3 && digits[..p].len() <= 3 && digits[..p] != *"0" && ch == ',') {
                        None
                    } else {
                        Some(ch)
                    }
                }
                (None, None) => None,
            }
        }
    };
    let (int_part, frac_part) = match decimal.and_then(|c| digits.rfind(c).map(|p| (c, p))) {
        Some((c, p)) => {
            if digits[..p].contains(c) {
                return None; // the decimal separator appears twice
            }
            (&digits[..p], Some(&digits[p + 1..]))
        }
        None => (digits, None),
    };
    if frac_part.is_some_and(|f| f.contains(['.', ','])) {
        return None;
    }
    // Thousands separators: all the same character, groups of exactly three digits after the first.
    let mut out = String::with_capacity(digits.len());
    let groups: Vec<&str> = int_part.split(['.', ',']).collect();
    if groups.len() > 1 {
        let sep_chars: Vec<char> = int_part.chars().filter(|c| *c == '.' || *c == ',').collect();
        if sep_chars.iter().any(|c| *c != sep_chars[0]) || Some(sep_chars[0]) == decimal {
            return None;
        }
        if groups[0].is_empty() || groups[0].len() > 3 || groups[1..].iter().any(|g| g.len() != 3) {
            return None;
        }
    }
    for g in groups {
        out.push_str(g);
    }
    if let Some(f) = frac_part {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

/// Order of day, month and year in a numeric date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateOrder {
    /// `31/12/2024`, `31.12.24`
    Dmy,
    /// `12/31/2024`
    Mdy,
    /// `2024-12-31`, `24/12/31`
    Ymd,
}

impl std::str::FromStr for DateOrder {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "dmy" => Ok(DateOrder::Dmy),
            "mdy" => Ok(DateOrder::Mdy),
            "ymd" => Ok(DateOrder::Ymd),
            _ => Err(format!("unknown date order {s:?} (expected dmy, mdy or ymd)")),
        }
    }
}

/// Splits a date such as `8/12/13`, `2/10'2020`, `1/ 1'00`, `31.12.2024`, `2024-12-31` or
/// `20241231` into its three numeric fields, as written. Returns `None` when it is not a date.
pub fn date_fields(raw: &str) -> Option<[u32; 3]> {
    let s = raw.trim();
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
        return Some([n(0..4)?, n(4..6)?, n(6..8)?]);
    }
    let mut fields = [0u32; 3];
    let mut count = 0;
    for part in s.split(['/', '-', '.', '\'']) {
        let part = part.trim();
        if part.is_empty() || part.len() > 4 || !part.bytes().all(|b| b.is_ascii_digit()) || count == 3 {
            return None;
        }
        fields[count] = part.parse().ok()?;
        count += 1;
    }
    (count == 3).then_some(fields)
}

/// Expands a two- or three-digit year: `13` → 2013, `99` → 1999, `099` (Quicken's Y2K form) → 1999,
/// `100` → 2000.
pub fn expand_year(y: u32, digits: usize) -> u32 {
    match digits {
        0..=2 => {
            if y < 70 {
                2000 + y
            } else {
                1900 + y
            }
        }
        3 => 1900 + y,
        _ => y,
    }
}

/// Builds a date from fields read in `order`. Two-digit years are expanded; a four-digit first field
/// is always a year.
pub fn date_from_fields(fields: [u32; 3], order: DateOrder, year_digits: usize) -> Option<NaiveDate> {
    let (y, m, d) = if fields[0] > 999 {
        (fields[0], fields[1], fields[2])
    } else {
        match order {
            DateOrder::Dmy => (expand_year(fields[2], year_digits), fields[1], fields[0]),
            DateOrder::Mdy => (expand_year(fields[2], year_digits), fields[0], fields[1]),
            DateOrder::Ymd => (expand_year(fields[0], year_digits), fields[1], fields[2]),
        }
    };
    NaiveDate::from_ymd_opt(y as i32, m, d)
}

/// Tallies which orders can read every date of a file, so that `03/04/2024` is decided by the
/// other dates in the same file rather than guessed one at a time.
#[derive(Debug, Clone, Default)]
pub struct DateOrderVote {
    impossible: [bool; 3],
    seen: usize,
}

impl DateOrderVote {
    fn index(order: DateOrder) -> usize {
        match order {
            DateOrder::Dmy => 0,
            DateOrder::Mdy => 1,
            DateOrder::Ymd => 2,
        }
    }

    /// Records one date's fields.
    pub fn observe(&mut self, fields: [u32; 3], year_digits: usize) {
        self.seen += 1;
        for order in [DateOrder::Dmy, DateOrder::Mdy, DateOrder::Ymd] {
            if date_from_fields(fields, order, year_digits).is_none() {
                self.impossible[Self::index(order)] = true;
            }
        }
    }

    /// The order that reads every observed date, preferring day-first, then month-first, then
    /// year-first when several do (`preferred` goes first when given).
    pub fn decide(&self, preferred: Option<DateOrder>) -> Option<DateOrder> {
        let mut candidates = vec![DateOrder::Dmy, DateOrder::Mdy, DateOrder::Ymd];
        if let Some(p) = preferred {
            candidates.retain(|o| *o != p);
            candidates.insert(0, p);
        }
        candidates.into_iter().find(|o| !self.impossible[Self::index(*o)])
    }

    /// Whether the observed dates fit more than one order (the decision was a preference).
    pub fn is_ambiguous(&self) -> bool {
        self.impossible.iter().filter(|x| !**x).count() > 1
    }
}

/// Collapses runs of whitespace and trims; used for descriptions assembled from several lines.
pub fn squash_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amt(s: &str) -> Option<String> {
        parse_amount(s, DecimalSeparator::Auto).map(|d| d.to_string())
    }

    #[test]
    fn amounts_in_the_forms_banks_write_them() {
        assert_eq!(amt("-12.34").as_deref(), Some("-12.34"));
        assert_eq!(amt("1,234.56").as_deref(), Some("1234.56"));
        assert_eq!(amt("1.234,56").as_deref(), Some("1234.56"));
        assert_eq!(amt("12,5").as_deref(), Some("12.5"));
        assert_eq!(amt("(45.00)").as_deref(), Some("-45.00"));
        assert_eq!(amt("$1,000.00").as_deref(), Some("1000.00"));
        assert_eq!(amt("-€ 3,50").as_deref(), Some("-3.50"));
        assert_eq!(amt("100.00-").as_deref(), Some("-100.00"));
        assert_eq!(amt("1 234,56 EUR").as_deref(), Some("1234.56"));
        assert_eq!(amt("1'234.50").as_deref(), Some("1234.50"));
        assert_eq!(amt("1,000").as_deref(), Some("1000"));
        assert_eq!(amt("0,123").as_deref(), Some("0.123"));
    }

    #[test]
    fn text_that_is_not_an_amount_is_refused() {
        assert_eq!(amt(""), None);
        assert_eq!(amt("abc"), None);
        assert_eq!(amt("12a34"), None);
        assert_eq!(amt("--5"), None);
        assert_eq!(amt("12a"), None);
        assert_eq!(amt("100.00 CR"), None);
        assert_eq!(amt("EUR 1 USD"), None);
        assert_eq!(amt("1.2.3,4,5"), None);
    }

    #[test]
    fn an_explicit_separator_overrides_the_guess() {
        assert_eq!(parse_amount("1,234", DecimalSeparator::Comma).map(|d| d.to_string()).as_deref(), Some("1.234"));
        assert_eq!(parse_amount("1.234", DecimalSeparator::Dot).map(|d| d.to_string()).as_deref(), Some("1.234"));
    }

    #[test]
    fn date_fields_cover_the_quicken_forms() {
        assert_eq!(date_fields("8/12/13"), Some([8, 12, 13]));
        assert_eq!(date_fields("2/10'2020"), Some([2, 10, 2020]));
        assert_eq!(date_fields("1/ 1'00"), Some([1, 1, 0]));
        assert_eq!(date_fields("20241231"), Some([2024, 12, 31]));
        assert_eq!(date_fields("31.12.2024"), Some([31, 12, 2024]));
        assert_eq!(date_fields("yesterday"), None);
    }

    #[test]
    fn the_date_order_is_decided_by_the_whole_file() {
        let mut vote = DateOrderVote::default();
        vote.observe([3, 4, 2024], 4);
        assert!(vote.is_ambiguous());
        vote.observe([12, 25, 2024], 4);
        assert_eq!(vote.decide(None), Some(DateOrder::Mdy));
        assert!(!vote.is_ambiguous());
    }

    #[test]
    fn three_digit_years_are_quicken_y2k_years() {
        assert_eq!(date_from_fields([3, 25, 99], DateOrder::Mdy, 3), NaiveDate::from_ymd_opt(1999, 3, 25));
        assert_eq!(date_from_fields([8, 12, 13], DateOrder::Mdy, 2), NaiveDate::from_ymd_opt(2013, 8, 12));
    }

    #[test]
    fn line_and_column_of_an_offset() {
        assert_eq!(line_col(b"ab\ncd\nef", 4), (2, 2));
        assert_eq!(line_col(b"ab", 0), (1, 1));
        for text in [&b"ab\ncd\nef"[..], b"\n\nx\n", b"", b"one line"] {
            let index = LineIndex::new(text);
            for offset in 0..=text.len() + 1 {
                assert_eq!(index.line_col(offset), line_col(text, offset), "{offset}");
            }
        }
    }

    #[test]
    fn latin1_bytes_decode_and_a_bom_is_dropped() {
        assert_eq!(decode(b"caf\xe9", None), "café");
        assert_eq!(decode(b"\xEF\xBB\xBFabc", None), "abc");
    }
}
