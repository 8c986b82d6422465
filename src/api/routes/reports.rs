//! Reports: ask for one (`POST /reports`), follow it (`GET /reports/{id}`) and download it when it
//! is ready. The report is built by [`crate::reports::generate`], started through a
//! [`crate::reports::ReportDispatch`]: a background task locally, the `reports` function in AWS.

use std::str::FromStr;

use axum::extract::State;
use axum::http::{header, HeaderName, StatusCode};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::extract::{date_param, ApiPath, Caller, JsonBody};
use crate::api::{ApiRoute, AppState, ReportServices, BASE_PATH};
use crate::reports::ReportFormat;
use crate::store::model::new_id;
use crate::store::{BlobKey, ReportJob, ReportStatus};

/// The report routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/reports", create_report),
        ApiRoute::get("/reports/{id}", get_report),
        ApiRoute::get("/reports/{id}/download", download_report),
    ]
}

/// `POST /reports` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewReport {
    /// The account.
    pub account_id: String,
    /// First day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Last day, `YYYY-MM-DD`.
    pub end_date: String,
    /// `json`, `csv`, `xlsx`, `pdf` or `html`.
    pub format: String,
}

/// A report job as the API shows it.
#[derive(Debug, Serialize)]
pub struct ReportView {
    report_id: String,
    status: ReportStatus,
    account_id: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    format: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    download_url: Option<String>,
}

impl ReportView {
    fn of(job: ReportJob, download_url: Option<String>) -> Self {
        ReportView {
            report_id: job.id,
            status: job.status,
            account_id: job.account_id,
            start_date: job.start_date,
            end_date: job.end_date,
            format: job.format,
            created_at: job.created_at,
            finished_at: job.finished_at,
            error: job.error,
            download_url,
        }
    }
}

fn services(state: &AppState) -> Result<ReportServices, ApiError> {
    state.reports.clone().ok_or_else(|| ApiError::Unavailable("report jobs are not configured on this server".into()))
}

async fn create_report(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewReport>,
) -> Result<(StatusCode, [(HeaderName, String); 1], Json<ReportView>), ApiError> {
    let services = services(&state)?;
    let format = ReportFormat::from_str(body.format.trim()).map_err(|m| ApiError::invalid_parameter("format", m))?;
    let start = date_param("start_date", Some(&body.start_date))?
        .ok_or_else(|| ApiError::invalid_parameter("start_date", "`start_date` is required"))?;
    let end = date_param("end_date", Some(&body.end_date))?
        .ok_or_else(|| ApiError::invalid_parameter("end_date", "`end_date` is required"))?;
    if start > end {
        return Err(ApiError::invalid_parameter("end_date", "`end_date` is before `start_date`"));
    }
    let account = state.store.get_account(&caller.tenant, body.account_id.trim()).await?;
    let job = ReportJob {
        id: new_id("rpt"),
        account_id: account.id,
        start_date: start,
        end_date: end,
        format: format.as_str().to_string(),
        status: ReportStatus::Pending,
        blob_key: None,
        error: None,
        created_by: caller.key_id.clone(),
        created_at: Utc::now(),
        finished_at: None,
    };
    services.jobs.create_report_job(&caller.tenant, &job).await?;
    if let Err(e) = services.dispatch.dispatch(&caller.tenant, &job.id).await {
        // The job stays visible as failed rather than pending forever.
        let mut failed = job.clone();
        failed.status = ReportStatus::Failed;
        failed.error = Some("the report could not be started".into());
        failed.finished_at = Some(Utc::now());
        let _ = services.jobs.update_report_job(&caller.tenant, &failed).await;
        return Err(ApiError::Internal(Box::new(e)));
    }
    let location = format!("{BASE_PATH}/reports/{}", job.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(ReportView::of(job, None))))
}

async fn get_report(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReportView>, ApiError> {
    let services = services(&state)?;
    let job = services.jobs.get_report_job(&caller.tenant, &id).await?;
    let url = match (&job.status, &job.blob_key) {
        (ReportStatus::Ready, Some(key)) => {
            let key = BlobKey::new(key.clone()).map_err(|e| ApiError::Internal(Box::new(e)))?;
            Some(
                services
                    .links
                    .download_url(&caller.tenant, &job, &key)
                    .await
                    .map_err(|e| ApiError::Internal(Box::new(e)))?,
            )
        }
        _ => None,
    };
    Ok(Json(ReportView::of(job, url)))
}

async fn download_report(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<([(HeaderName, String); 2], Vec<u8>), ApiError> {
    let services = services(&state)?;
    let job = services.jobs.get_report_job(&caller.tenant, &id).await?;
    let (ReportStatus::Ready, Some(key)) = (job.status, job.blob_key.as_deref()) else {
        return Err(ApiError::Conflict(format!("report {id} is {}, not ready", job.status.as_str())));
    };
    let format = ReportFormat::from_str(&job.format).map_err(|m| ApiError::Internal(m.into()))?;
    let key = BlobKey::new(key).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let bytes = state.blobs.get(&key).await.map_err(|e| ApiError::Internal(Box::new(e)))?;
    let file_name = format!("{}.{}", job.id, format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
        ],
        bytes,
    ))
}
