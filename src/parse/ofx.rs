//! OFX statement parser.

use super::{Format, ParseError, ParseErrorKind, Parsed, Source};

/// Parses a OFX file.
pub fn parse(source: &Source<'_>) -> Result<Parsed, ParseError> {
    Err(source.error(Format::Ofx, None, ParseErrorKind::Unsupported, "OFX import is not available yet"))
}
