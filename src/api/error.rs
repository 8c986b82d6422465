//! The API's one error type and its one mapping to an HTTP status and the JSON envelope
//! `{"error": {"code", "message", "details"}}`.
//!
//! Server errors are logged here, once, with their source chain; their bodies say nothing about
//! what failed inside.

use std::error::Error as StdError;
use std::fmt;

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::domain::RecordsError;
use crate::parse::ParseError;
use crate::rules::RuleError;
use crate::store::keys::KeyError;
use crate::store::StoreError;
use crate::workflows::import::ImportError;
use crate::workflows::matches::MatchError;
use crate::workflows::reconcile::ReconcileError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` key, or one that is not valid.
    #[error("missing or invalid API key (send `Authorization: Bearer <key>`)")]
    Unauthorized,
    /// A signed grant (an upload URL) that is invalid or expired.
    #[error("{0}")]
    Forbidden(String),
    /// No such object for the caller's tenant (another tenant's objects are reported the same way).
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of object.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// No route has this path.
    #[error("no such route")]
    NoRoute,
    /// The path exists but not with this method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// The request is malformed: bad JSON, a wrong type, an invalid parameter.
    #[error("{message}")]
    BadRequest {
        /// Machine-readable code (`malformed_json`, `invalid_request`, `invalid_parameter`...).
        code: &'static str,
        /// What was wrong, for a person.
        message: String,
        /// Where: field, line, column.
        details: Value,
    },
    /// The change conflicts with the stored state.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the route accepts.
    #[error("the request body is larger than this route accepts")]
    PayloadTooLarge,
    /// The request is well-formed but its content cannot be used (an unparseable statement file).
    #[error("{message}")]
    Unprocessable {
        /// Machine-readable code (`unparseable_statement`, `invalid_records`...).
        code: &'static str,
        /// What was wrong, for a person.
        message: String,
        /// Where: file, line, column, field.
        details: Value,
    },
    /// The backing store is not set up.
    #[error("the service is not available")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// Anything else: a bug or a failing backend.
    #[error("internal error")]
    Internal(#[source] Box<dyn StdError + Send + Sync>),
}

impl ApiError {
    /// A 400 for one invalid parameter or field.
    pub fn invalid_parameter(field: &str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: "invalid_parameter", message: message.into(), details: json!({ "field": field }) }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code in the envelope.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound { .. } | ApiError::NoRoute => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::BadRequest { code, .. } | ApiError::Unprocessable { code, .. } => code,
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::BadRequest { details, .. } | ApiError::Unprocessable { details, .. } => details.clone(),
            ApiError::NotFound { what, id } => json!({ "resource": what, "id": id }),
            _ => Value::Null,
        }
    }
}

/// Displays an error and all its sources, `a: b: c`.
struct Chain<'a>(&'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(http.status = status.as_u16(), error = %Chain(&self), "request failed");
            match self {
                ApiError::Unavailable(_) => "the service is temporarily unavailable; try again later".to_string(),
                _ => "internal error; it has been logged".to_string(),
            }
        } else {
            self.to_string()
        };
        let body = json!({ "error": { "code": self.code(), "message": message, "details": self.details() } });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => ApiError::NotFound { what, id },
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => {
                ApiError::BadRequest { code: "invalid_request", message: m, details: Value::Null }
            }
            e @ StoreError::NotInitialised(_) => ApiError::Unavailable(Box::new(e)),
            e @ StoreError::Backend(_) => ApiError::Internal(Box::new(e)),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(e) => e.into(),
            e @ KeyError::Randomness(_) => ApiError::Internal(Box::new(e)),
        }
    }
}

/// Where a statement file failed, for the envelope's `details`.
fn parse_details(e: &ParseError) -> Value {
    json!({
        "file": e.file,
        "format": e.format.map(|f| f.as_str()),
        "line": e.line,
        "column": e.column,
        "field": e.field,
        "kind": e.kind,
    })
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Parse(p) => ApiError::Unprocessable {
                code: "unparseable_statement",
                message: p.to_string(),
                details: parse_details(&p),
            },
            e @ ImportError::CurrencyMismatch { .. } => {
                let details = match &e {
                    ImportError::CurrencyMismatch { file, found, expected } => {
                        json!({ "file": file, "found": found, "expected": expected })
                    }
                    _ => Value::Null,
                };
                ApiError::Unprocessable { code: "currency_mismatch", message: e.to_string(), details }
            }
            e @ ImportError::AccountMismatch { .. } => {
                ApiError::Unprocessable { code: "account_mismatch", message: e.to_string(), details: Value::Null }
            }
            ImportError::Store(e) => e.into(),
            e @ ImportError::Blob(_) => ApiError::Internal(Box::new(e)),
        }
    }
}

impl ApiError {
    /// A records upload that could not be read: 400 when the body is JSON (a wrong type or value
    /// in a request body), 422 when it is a CSV file (an unreadable file, like a statement).
    pub fn from_records(e: RecordsError, json_body: bool) -> Self {
        let details = json!({ "file": e.file, "line": e.line, "field": e.field });
        if json_body {
            ApiError::BadRequest { code: "invalid_record", message: e.to_string(), details }
        } else {
            ApiError::Unprocessable { code: "invalid_records", message: e.to_string(), details }
        }
    }
}

/// Where a rule failed, for the envelope's `details`.
fn rule_details(e: &RuleError) -> Value {
    match e {
        RuleError::Compile { rule, line, column, .. } | RuleError::Runtime { rule, line, column, .. } => {
            json!({ "rule": rule, "line": line, "column": column })
        }
        RuleError::NoEntryPoint { rule } => json!({ "rule": rule, "line": null, "column": null }),
        RuleError::Io { .. } => Value::Null,
    }
}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        match e {
            e @ RuleError::Io { .. } => ApiError::Internal(Box::new(e)),
            e => ApiError::Unprocessable { code: "invalid_rule", details: rule_details(&e), message: e.to_string() },
        }
    }
}

impl From<ReconcileError> for ApiError {
    fn from(e: ReconcileError) -> Self {
        match e {
            e @ ReconcileError::InvalidPeriod { .. } => ApiError::invalid_parameter("start_date", e.to_string()),
            ReconcileError::Rule(e) => e.into(),
            ReconcileError::Store(e) => e.into(),
            e @ (ReconcileError::Engine(_) | ReconcileError::Memory(_)) => ApiError::Internal(Box::new(e)),
        }
    }
}

impl From<MatchError> for ApiError {
    fn from(e: MatchError) -> Self {
        match e {
            MatchError::Invalid(message) => {
                ApiError::BadRequest { code: "invalid_request", message, details: Value::Null }
            }
            MatchError::Store(e) => e.into(),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest { code: "unreadable_body", message: r.body_text(), details: Value::Null }
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest { code: "invalid_parameter", message: r.body_text(), details: Value::Null }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest { code: "invalid_parameter", message: r.body_text(), details: Value::Null }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_request",
            _ => "malformed_json",
        };
        ApiError::BadRequest {
            code,
            message: e.to_string(),
            details: json!({ "line": e.line(), "column": e.column() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (StatusCode, Value) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_backend_failure_is_a_500_whose_body_reveals_nothing_internal() {
        let secret = std::io::Error::other("disk /var/lib/secret-path is full");
        let (status, json) = body(StoreError::backend(secret).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json["error"]["code"], "internal");
        assert!(!json.to_string().contains("secret-path"));
        assert!(!json.to_string().contains("backend"));
    }

    #[tokio::test]
    async fn another_tenants_object_and_a_missing_one_look_alike() {
        let (status, json) = body(StoreError::NotFound { what: "account", id: "acc_1".into() }.into()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"]["code"], "not_found");
        assert_eq!(json["error"]["details"]["id"], "acc_1");
    }

    #[tokio::test]
    async fn an_unparseable_statement_is_a_422_with_line_column_and_field() {
        let err = ParseError {
            file: "march.ofx".into(),
            format: Some(crate::parse::Format::Ofx),
            line: Some(12),
            column: Some(5),
            field: Some("TRNAMT".into()),
            kind: crate::parse::ParseErrorKind::InvalidAmount,
            message: "not an amount".into(),
        };
        let (status, json) = body(ImportError::Parse(err).into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["error"]["code"], "unparseable_statement");
        assert_eq!(json["error"]["details"]["line"], 12);
        assert_eq!(json["error"]["details"]["column"], 5);
        assert_eq!(json["error"]["details"]["field"], "TRNAMT");
        assert_eq!(json["error"]["details"]["kind"], "invalid_amount");
    }

    #[tokio::test]
    async fn malformed_json_and_a_wrong_type_are_both_400_with_different_codes() {
        let syntax = serde_json::from_str::<Value>("{\"a\":").unwrap_err();
        let (status, json) = body(syntax.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"]["code"], "malformed_json");
        let wrong = serde_json::from_str::<Vec<u8>>("\"x\"").unwrap_err();
        let (status, json) = body(wrong.into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"]["code"], "invalid_request");
    }

    #[tokio::test]
    async fn a_rule_that_does_not_compile_is_a_422_naming_rule_line_and_column() {
        let err = RuleError::Compile { rule: "90-mine".into(), line: Some(3), column: Some(7), message: "x".into() };
        let (status, json) = body(err.into()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json["error"]["code"], "invalid_rule");
        assert_eq!(json["error"]["details"], json!({"rule": "90-mine", "line": 3, "column": 7}));
    }

    #[tokio::test]
    async fn workflow_errors_map_to_the_status_their_cause_deserves() {
        let d = |day| chrono::NaiveDate::from_ymd_opt(2026, 3, day).unwrap();
        let (status, json) = body(ReconcileError::InvalidPeriod { start: d(9), end: d(1) }.into()).await;
        assert_eq!((status, &json["error"]["details"]["field"]), (StatusCode::BAD_REQUEST, &json!("start_date")));
        let (status, _) = body(ReconcileError::Memory("disk path /secret".into()).into()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let (status, _) = body(MatchError::Invalid("no items".into()).into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = body(MatchError::Store(StoreError::Conflict("already matched".into())).into()).await;
        assert_eq!(status, StatusCode::CONFLICT);
        let (status, json) = body(ApiError::Forbidden("the upload URL expired".into())).await;
        assert_eq!((status, &json["error"]["code"]), (StatusCode::FORBIDDEN, &json!("forbidden")));
    }

    #[tokio::test]
    async fn a_401_tells_the_client_to_use_a_bearer_key() {
        let response = ApiError::Unauthorized.into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
    }
}
