//! MT940 statement parser.

use super::{Format, ParseError, ParseErrorKind, Parsed, Source};

/// Parses a MT940 file (`format` says which variant was detected or asked for).
pub fn parse(source: &Source<'_>, format: Format) -> Result<Parsed, ParseError> {
    Err(source.error(format, None, ParseErrorKind::Unsupported, "MT940 import is not available yet"))
}
