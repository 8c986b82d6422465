//! CSV statement parser.

use serde::{Deserialize, Serialize};

use super::{Format, ParseError, ParseErrorKind, Parsed, Source};

/// An explicit column mapping for one bank's CSV export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvProfile {}

impl CsvProfile {
    /// Loads a profile from a TOML or JSON file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        if text.trim_start().starts_with('{') {
            Ok(serde_json::from_str(&text)?)
        } else {
            Ok(toml::from_str(&text)?)
        }
    }
}

/// Whether the start of a file looks like delimited text.
pub fn looks_like_csv(head: &str) -> bool {
    head.lines().take(5).any(|l| l.contains(',') || l.contains(';') || l.contains('\t'))
}

/// Parses a CSV file.
pub fn parse(source: &Source<'_>) -> Result<Parsed, ParseError> {
    Err(source.error(Format::Csv, None, ParseErrorKind::Unsupported, "CSV import is not available yet"))
}
