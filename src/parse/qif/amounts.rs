//! QIF amounts: `T-1,000.00` from Quicken, `T-12,50` from European programs, decided once for the
//! whole file so that `1.234` means the same thing on every line.

use rust_decimal::Decimal;

use crate::parse::text::{self, DecimalSeparator};

/// Tallies the amounts whose decimal separator is certain.
#[derive(Debug, Default)]
pub(super) struct SeparatorVote {
    dot: usize,
    comma: usize,
}

/// The separator chosen for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SeparatorDecision {
    /// How every amount is read.
    pub separator: DecimalSeparator,
    /// Some amounts prove a decimal dot and others a decimal comma.
    pub conflicting: bool,
}

impl SeparatorVote {
    /// Records one amount as written. `1,234.56` and `12,5` decide; `1,234` (one separator before
    /// exactly three digits) could be either and does not.
    pub(super) fn observe(&mut self, raw: &str) {
        let bytes = raw.as_bytes();
        let last_dot = memchr::memrchr(b'.', bytes);
        let last_comma = memchr::memrchr(b',', bytes);
        let decimal = match (last_dot, last_comma) {
            (Some(d), Some(c)) => Some(if d > c { b'.' } else { b',' }),
            (Some(p), None) | (None, Some(p)) => {
                let sep = bytes.get(p).copied().unwrap_or(b'.');
                let other = if sep == b'.' { b',' } else { b'.' };
                if memchr::memchr(sep, bytes).is_some_and(|first| first != p) {
                    // `1.234.567`: a repeated separator groups thousands.
                    Some(other)
                } else {
                    let after = bytes.get(p + 1..).unwrap_or_default();
                    let decimals = after.iter().take_while(|b| b.is_ascii_digit()).count();
                    (decimals != 3).then_some(sep)
                }
            }
            (None, None) => None,
        };
        match decimal {
            Some(b'.') => self.dot += 1,
            Some(_) => self.comma += 1,
            None => {}
        }
    }

    /// Dot or comma when the file's certain amounts agree; otherwise each amount decides alone.
    pub(super) fn decide(&self) -> SeparatorDecision {
        let separator = match (self.dot > 0, self.comma > 0) {
            (true, false) => DecimalSeparator::Dot,
            (false, true) => DecimalSeparator::Comma,
            _ => DecimalSeparator::Auto,
        };
        SeparatorDecision { separator, conflicting: self.dot > 0 && self.comma > 0 }
    }
}

/// Parses an amount. The forms QIF files nearly always use (`-1234.56`, `-1,234.56`, and with the
/// separators swapped in a decimal-comma file) take a fast path without allocating; anything else
/// (a currency sign, blanks, a trailing minus) goes through the shared reader. Negative zero comes
/// out as zero.
pub(super) fn parse(raw: &str, separator: DecimalSeparator) -> Option<Decimal> {
    let s = raw.trim();
    let mut value = fast(s.as_bytes(), separator).or_else(|| text::parse_amount(s, separator))?;
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    Some(value)
}

/// Reads `-?d{1,3}(Gddd)*(Dd+)?` or `-?d+(Dd+)?`, where `D` is the decimal separator and `G` the
/// other one; `None` leaves the text to the shared reader.
fn fast(s: &[u8], separator: DecimalSeparator) -> Option<Decimal> {
    let (decimal, group) = match separator {
        DecimalSeparator::Comma => (b',', b'.'),
        DecimalSeparator::Dot | DecimalSeparator::Auto => (b'.', b','),
    };
    // Room for a sign, Decimal's 28 significant digits, a point and a few leading zeros.
    let mut buf = [0u8; 32];
    let mut len = 0;
    let mut push = |b: u8| -> Option<()> {
        *buf.get_mut(len)? = b;
        len += 1;
        Some(())
    };
    let mut rest = s;
    if let Some(r) = rest.strip_prefix(b"-") {
        push(b'-')?;
        rest = r;
    }
    let int_end = memchr::memchr(decimal, rest).unwrap_or(rest.len());
    let (int, frac) = rest.split_at(int_end);
    let grouped = memchr::memchr(group, int).is_some();
    // Under `Auto`, `1,234`-like text is left to the shared reader's judgement.
    if grouped && separator == DecimalSeparator::Auto {
        return None;
    }
    for (i, g) in int.split(|b| *b == group).enumerate() {
        let bad_size = if i == 0 { g.is_empty() || (grouped && g.len() > 3) } else { g.len() != 3 };
        if bad_size || !g.iter().all(u8::is_ascii_digit) {
            return None;
        }
        for b in g {
            push(*b)?;
        }
    }
    if let Some(f) = frac.strip_prefix(&[decimal]) {
        if f.is_empty() || !f.iter().all(u8::is_ascii_digit) {
            return None;
        }
        push(b'.')?;
        for b in f {
            push(*b)?;
        }
    }
    let text = std::str::from_utf8(buf.get(..len)?).ok()?;
    Decimal::from_str_exact(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(amounts: &[&str]) -> SeparatorDecision {
        let mut vote = SeparatorVote::default();
        for a in amounts {
            vote.observe(a);
        }
        vote.decide()
    }

    fn amount(raw: &str, sep: DecimalSeparator) -> Option<String> {
        parse(raw, sep).map(|d| d.to_string())
    }

    #[test]
    fn grouped_and_plain_amounts_are_read() {
        assert_eq!(amount("-1,000.00", DecimalSeparator::Dot).as_deref(), Some("-1000.00"));
        assert_eq!(amount(" 67.50 ", DecimalSeparator::Dot).as_deref(), Some("67.50"));
        assert_eq!(amount("-184.8", DecimalSeparator::Auto).as_deref(), Some("-184.8"));
        assert_eq!(amount("1.234,56", DecimalSeparator::Comma).as_deref(), Some("1234.56"));
        assert_eq!(amount("-12,50", DecimalSeparator::Comma).as_deref(), Some("-12.50"));
        assert_eq!(amount("-0.00", DecimalSeparator::Dot).as_deref(), Some("0.00"));
        assert_eq!(amount("$1,000.00", DecimalSeparator::Dot).as_deref(), Some("1000.00"));
    }

    #[test]
    fn the_fast_path_agrees_with_the_shared_reader() {
        for (raw, sep) in [
            ("-1,000.00", DecimalSeparator::Dot),
            ("1,234,567.5", DecimalSeparator::Dot),
            ("-1.234,56", DecimalSeparator::Comma),
            ("0.07", DecimalSeparator::Auto),
            ("12", DecimalSeparator::Comma),
            ("1234567890123456789012345.12", DecimalSeparator::Dot),
        ] {
            assert_eq!(fast(raw.as_bytes(), sep), text::parse_amount(raw, sep), "{raw}");
        }
        for (raw, sep) in
            [("1,23.00", DecimalSeparator::Dot), ("1,234", DecimalSeparator::Auto), ("--1", DecimalSeparator::Dot)]
        {
            assert_eq!(fast(raw.as_bytes(), sep), None, "{raw}");
        }
    }

    #[test]
    fn text_and_overlong_numbers_are_not_amounts() {
        assert_eq!(amount("abc", DecimalSeparator::Dot), None);
        assert_eq!(amount("", DecimalSeparator::Dot), None);
        assert_eq!(amount("1.", DecimalSeparator::Auto).as_deref(), Some("1"));
        assert_eq!(amount("99999999999999999999999999999999", DecimalSeparator::Dot), None);
    }

    #[test]
    fn a_file_with_decimal_commas_reads_a_dotted_thousand_as_a_thousand() {
        let d = decide(&["-12,50", "1.234"]);
        assert_eq!(d, SeparatorDecision { separator: DecimalSeparator::Comma, conflicting: false });
        assert_eq!(amount("1.234", d.separator).as_deref(), Some("1234"));
    }

    #[test]
    fn a_quicken_file_reads_a_comma_thousand_as_a_thousand() {
        let d = decide(&["-1,000.00", "5.5"]);
        assert_eq!(d.separator, DecimalSeparator::Dot);
        assert_eq!(amount("1,234", d.separator).as_deref(), Some("1234"));
    }

    #[test]
    fn ambiguous_or_conflicting_files_let_each_amount_decide() {
        assert_eq!(decide(&["1,234", "100"]).separator, DecimalSeparator::Auto);
        assert_eq!(decide(&["1.5", "2,5"]), SeparatorDecision { separator: DecimalSeparator::Auto, conflicting: true });
        assert_eq!(decide(&["1.234.567"]).separator, DecimalSeparator::Comma);
    }
}
