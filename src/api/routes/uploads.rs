//! Statement uploads through a URL: `POST /accounts/{id}/statements/upload-url` mints one, and
//! locally `PUT /uploads/{token}` receives the file. The upload does what the S3 trigger does in
//! AWS: import the file, then reconcile the statement's period.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::accounts::StatementView;
use super::optional_text;
use crate::api::error::ApiError;
use crate::api::extract::{ApiPath, ApiQuery, Caller};
use crate::api::uploads::{UploadError, UploadUrl};
use crate::api::{ApiRoute, AppState, STATEMENT_BODY_LIMIT};
use crate::parse::ParseOptions;
use crate::store::model::new_id;
use crate::store::{RunStatus, StoreError};
use crate::workflows::reconcile::{reconcile, ReconcileRequest};

/// Who the audit trail names for runs started by an upload.
const UPLOAD_ACTOR: &str = "upload";

/// The upload routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/accounts/{id}/statements/upload-url", upload_url),
        ApiRoute::put("/uploads/{token}", receive_upload).public().body_limit(STATEMENT_BODY_LIMIT),
    ]
}

/// `POST /accounts/{id}/statements/upload-url` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UrlParams {
    file_name: Option<String>,
}

/// A file name safe as the last segment of an object key.
fn key_file_name(name: Option<String>) -> Result<String, ApiError> {
    let name = optional_text("file_name", name, 100)?.unwrap_or_else(|| "statement".to_string());
    let ok =
        name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) && !name.starts_with('.');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::invalid_parameter("file_name", "`file_name` may hold A-Z a-z 0-9 . - _ and not start with a dot"))
    }
}

/// This server's origin as the client reached it, for a URL that points back here.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        })
        .unwrap_or("localhost");
    let scheme =
        headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).filter(|p| *p == "https").unwrap_or("http");
    format!("{scheme}://{host}")
}

async fn upload_url(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<UrlParams>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<UploadUrl>), ApiError> {
    let file_name = key_file_name(q.file_name)?;
    state.store.get_account(&caller.tenant, &id).await?;
    // Unique per URL, so that two uploads of the same name never overwrite each other.
    let key = format!("statements/{}/{id}/{}-{file_name}", caller.tenant.as_str(), new_id("upl"));
    let url = state.uploads.mint(&caller.tenant, &id, &key, &origin(&headers)).await.map_err(upload_error)?;
    Ok((StatusCode::CREATED, Json(url)))
}

fn upload_error(e: UploadError) -> ApiError {
    match e {
        e @ (UploadError::Invalid | UploadError::Expired(_)) => ApiError::Forbidden(e.to_string()),
        UploadError::NotHere => ApiError::NoRoute,
        e @ UploadError::Backend(_) => ApiError::Internal(Box::new(e)),
    }
}

/// What an upload did.
#[derive(Debug, Serialize)]
struct UploadOutcome {
    statement: StatementView,
    reconciliation: Option<serde_json::Value>,
}

async fn receive_upload(
    State(state): State<AppState>,
    ApiPath(token): ApiPath<String>,
    request: Request,
) -> Result<(StatusCode, Json<UploadOutcome>), ApiError> {
    // The grant is checked before the body is read: nobody without one can make this server
    // take in a file.
    let grant = state.uploads.redeem(&token, Utc::now()).map_err(upload_error)?;
    let body = Bytes::from_request(request, &state).await?;
    let file_name = grant.key.rsplit('/').next().unwrap_or("upload").to_string();
    let outcome = crate::workflows::import::import_statement(
        state.store.as_ref(),
        state.blobs.as_ref(),
        &grant.tenant,
        &grant.account_id,
        &file_name,
        &body,
        &ParseOptions::default(),
    )
    .await?;
    tracing::info!(
        import.id = %outcome.import.id,
        import.transactions_imported = outcome.import.transactions_imported,
        "statement uploaded"
    );
    // A repeated delivery imports nothing and so reconciles nothing, as the S3 trigger does.
    let mut reconciliation = None;
    if let (true, Some(start), Some(end)) = (outcome.created, outcome.import.start_date, outcome.import.end_date) {
        let req = ReconcileRequest {
            account_id: grant.account_id.clone(),
            start_date: start,
            end_date: end,
            dry_run: false,
            actor: UPLOAD_ACTOR.to_string(),
        };
        match reconcile(state.store.as_ref(), &grant.tenant, &req, &state.engine).await {
            Ok(done) => {
                reconciliation = Some(serde_json::json!({
                    "reconciliation_id": done.run.id,
                    "status": done.run.status.as_str(),
                }))
            }
            // The file is in; a locked period or a busy store only postpones reconciling it.
            Err(e) => {
                let locked = matches!(&e, crate::workflows::reconcile::ReconcileError::Store(StoreError::Conflict(_)));
                tracing::warn!(import.id = %outcome.import.id, locked, error = %e, "auto-reconciliation skipped");
                reconciliation = Some(serde_json::json!({ "status": RunStatus::Failed.as_str() }));
            }
        }
    }
    let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(UploadOutcome { statement: outcome.import.into(), reconciliation })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_file_name_for_a_key_is_plain() {
        assert_eq!(key_file_name(None).unwrap(), "statement");
        assert_eq!(key_file_name(Some("march-2026.ofx".into())).unwrap(), "march-2026.ofx");
        for bad in ["../x", "a/b", ".hidden", "mä.ofx", "a b"] {
            assert!(key_file_name(Some(bad.into())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_origin_comes_from_a_plausible_host_header_only() {
        let mut h = HeaderMap::new();
        assert_eq!(origin(&h), "http://localhost");
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert_eq!(origin(&h), "http://127.0.0.1:8080");
        h.insert(header::HOST, HeaderValue::from_static("evil.com/path?x"));
        assert_eq!(origin(&h), "http://localhost");
    }
}
