//! QIF statement parser.

use super::{Format, ParseError, ParseErrorKind, Parsed, Source};

/// Parses a QIF file.
pub fn parse(source: &Source<'_>) -> Result<Parsed, ParseError> {
    Err(source.error(Format::Qif, None, ParseErrorKind::Unsupported, "QIF import is not available yet"))
}
