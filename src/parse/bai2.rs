//! BAI2 statement parser.

use super::{Format, ParseError, ParseErrorKind, Parsed, Source};

/// Parses a BAI2 file.
pub fn parse(source: &Source<'_>) -> Result<Parsed, ParseError> {
    Err(source.error(Format::Bai2, None, ParseErrorKind::Unsupported, "BAI2 import is not available yet"))
}
