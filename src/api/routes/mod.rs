//! The route handlers, one module per area. Handlers decode, call one store method or workflow,
//! and encode; errors go through [`ApiError`].

pub mod accounts;
pub mod recon;
pub mod records;
pub mod reports;
pub mod rules;
pub mod uploads;

use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;

/// `GET /health`: the process is up (no key needed, nothing touched).
pub async fn health() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Any path no route has.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}

/// A known path with a method it does not have.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Trims an optional text field, treating blank as absent and refusing text over `max` chars.
pub(crate) fn optional_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) {
        Some(v) if v.chars().count() > max => {
            Err(ApiError::invalid_parameter(field, format!("`{field}` is longer than {max} characters")))
        }
        v => Ok(v),
    }
}
