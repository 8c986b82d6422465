//! Cursor pagination: every list takes `cursor` and `limit` and answers `{items, cursor}`, where
//! `cursor` is `null` on the last page.

use serde::Serialize;

use super::error::ApiError;
use super::extract::param;
use crate::store::{Page, MAX_PAGE};

/// Longest cursor accepted; the stores' cursors are far shorter.
const MAX_CURSOR_LEN: usize = 512;

/// A validated `cursor` and `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Where the previous page ended, as the previous answer gave it.
    pub cursor: Option<String>,
    /// Page size; 0 means the store's default.
    pub limit: usize,
}

impl PageRequest {
    /// Validates the raw query values.
    pub fn parse(cursor: Option<&str>, limit: Option<&str>) -> Result<Self, ApiError> {
        let cursor = cursor.filter(|c| !c.is_empty());
        if cursor.is_some_and(|c| c.len() > MAX_CURSOR_LEN) {
            return Err(ApiError::invalid_parameter(
                "cursor",
                "invalid `cursor`: pass back the cursor of the previous page",
            ));
        }
        let limit: usize = param("limit", limit)?.unwrap_or(0);
        if limit > MAX_PAGE {
            return Err(ApiError::invalid_parameter("limit", format!("invalid `limit`: at most {MAX_PAGE}")));
        }
        Ok(PageRequest { cursor: cursor.map(str::to_string), limit })
    }
}

/// One page of a list, as the API answers it.
#[derive(Debug, Serialize)]
pub struct Paged<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    pub cursor: Option<String>,
}

impl<T> Paged<T> {
    /// Converts a store page item by item.
    pub fn from_page<S>(page: Page<S>, view: impl Fn(S) -> T) -> Self {
        Paged { items: page.items.into_iter().map(view).collect(), cursor: page.cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_above_the_maximum_or_not_a_number_is_refused() {
        assert!(PageRequest::parse(None, Some("1001")).is_err());
        assert!(PageRequest::parse(None, Some("-1")).is_err());
        assert!(PageRequest::parse(None, Some("ten")).is_err());
        assert_eq!(PageRequest::parse(Some(""), Some("10")).unwrap(), PageRequest { cursor: None, limit: 10 });
    }

    #[test]
    fn an_absurdly_long_cursor_is_refused() {
        assert!(PageRequest::parse(Some(&"x".repeat(513)), None).is_err());
    }
}
