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

/// Parses an amount. Plain `-1234.56` takes a fast path; anything else (grouping, a comma, a
/// currency sign) goes through the shared reader. Negative zero comes out as zero.
pub(super) fn parse(raw: &str, separator: DecimalSeparator) -> Option<Decimal> {
    let s = raw.trim();
    let plain = separator != DecimalSeparator::Comma && is_plain(s.as_bytes());
    let mut value =
        if plain { Decimal::from_str_exact(s).ok() } else { None }.or_else(|| text::parse_amount(s, separator))?;
    if value.is_zero() {
        value.set_sign_positive(true);
    }
    Some(value)
}

/// `-?[0-9]+(\.[0-9]+)?`
fn is_plain(s: &[u8]) -> bool {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    let (int, frac) = match memchr::memchr(b'.', digits) {
        Some(p) => (digits.get(..p).unwrap_or_default(), digits.get(p + 1..)),
        None => (digits, None),
    };
    !int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
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
