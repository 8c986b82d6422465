//! Reconciliation reports an auditor signs: the bank reconciliation statement, the exceptions, the
//! match detail and summary figures of one account over one period.
//!
//! The content is computed once ([`Report::build`] over [`ReportData`], gathered from the store by
//! [`gather::from_store`] or from an in-memory reconciliation by [`gather::from_result`]) and then
//! rendered by one renderer per [`ReportFormat`]. [`generate`] is the whole job the API's
//! background task and the AWS `reports` function run: gather, build, render, store the blob,
//! mark the job ready.

pub mod gather;
pub mod model;
pub mod render;

use std::str::FromStr;

use chrono::{NaiveDate, Utc};

pub use model::{Report, ReportData};

use crate::store::{BlobError, BlobKey, Blobs, ReportJob, ReportStatus, ReportStore, Store, StoreError, TenantId};

/// A report's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    /// The data, as JSON.
    Json,
    /// One CSV file per section, zipped.
    Csv,
    /// A workbook with one sheet per section.
    Xlsx,
    /// A paginated, printable document.
    Pdf,
    /// One self-contained web page.
    Html,
}

impl ReportFormat {
    /// Every format.
    pub const ALL: [ReportFormat; 5] =
        [ReportFormat::Json, ReportFormat::Csv, ReportFormat::Xlsx, ReportFormat::Pdf, ReportFormat::Html];

    /// The name used in requests (`json`, `csv`, `xlsx`, `pdf`, `html`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Csv => "csv",
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::Pdf => "pdf",
            ReportFormat::Html => "html",
        }
    }

    /// The file name extension.
    pub fn extension(&self) -> &'static str {
        match self {
            ReportFormat::Csv => "csv.zip",
            other => other.as_str(),
        }
    }

    /// The MIME type.
    pub fn content_type(&self) -> &'static str {
        match self {
            ReportFormat::Json => "application/json",
            ReportFormat::Csv => "application/zip",
            ReportFormat::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ReportFormat::Pdf => "application/pdf",
            ReportFormat::Html => "text/html; charset=utf-8",
        }
    }

    /// The format a file name asks for by its extension (`.csv.zip` and `.zip` are CSV).
    pub fn from_file_name(name: &str) -> Option<ReportFormat> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv.zip") || lower.ends_with(".zip") {
            return Some(ReportFormat::Csv);
        }
        let ext = lower.rsplit_once('.').map(|(_, e)| e)?;
        ReportFormat::ALL.into_iter().find(|f| f.as_str() == ext && *f != ReportFormat::Csv)
    }
}

impl FromStr for ReportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown report format {s:?} (json, csv, xlsx, pdf, html)"))
    }
}

impl std::fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The period is empty or reversed.
    #[error("invalid period: start_date {start} is after end_date {end}")]
    InvalidPeriod {
        /// First day.
        start: NaiveDate,
        /// Last day.
        end: NaiveDate,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob could not be written.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A renderer failed.
    #[error("cannot render the {format} report")]
    Render {
        /// The format.
        format: ReportFormat,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl ReportError {
    pub(crate) fn render(format: ReportFormat, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        ReportError::Render { format, source: Box::new(e) }
    }
}

/// Renders a report in a format.
pub fn render(report: &Report, format: ReportFormat) -> Result<Vec<u8>, ReportError> {
    match format {
        ReportFormat::Json => serde_json::to_vec_pretty(report).map_err(|e| ReportError::render(format, e)),
        ReportFormat::Csv => render::csv::render(report),
        ReportFormat::Xlsx => render::xlsx::render(report),
        ReportFormat::Pdf => Ok(render::pdf::render(report)),
        ReportFormat::Html => Ok(render::html::render(report).into_bytes()),
    }
}

/// Builds a report from the store.
pub async fn build(
    store: &dyn Store,
    tenant: &TenantId,
    account_id: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<Report, ReportError> {
    if start > end {
        return Err(ReportError::InvalidPeriod { start, end });
    }
    let data = gather::from_store(store, tenant, account_id, start, end).await?;
    Ok(Report::build(&data, Utc::now()))
}

/// The blob key of a job's report: under the tenant, so keys never cross tenants.
pub fn blob_key(tenant: &TenantId, job: &ReportJob, format: ReportFormat) -> Result<BlobKey, BlobError> {
    BlobKey::from_segments(&["reports", tenant.as_str(), &format!("{}.{}", job.id, format.extension())])
}

/// Builds the report a job asks for, stores it in blobs and marks the job ready (or failed, with
/// the reason, when the report cannot be built). Returns the updated job. Errors are returned
/// only when the job itself cannot be updated.
pub async fn generate(
    store: &dyn Store,
    jobs: &dyn ReportStore,
    blobs: &dyn Blobs,
    tenant: &TenantId,
    job_id: &str,
) -> Result<ReportJob, ReportError> {
    let mut job = jobs.get_report_job(tenant, job_id).await?;
    if job.status != ReportStatus::Pending {
        return Ok(job);
    }
    let outcome: Result<String, ReportError> = async {
        let format = ReportFormat::from_str(&job.format)
            .map_err(|_| ReportError::Store(StoreError::Invalid(format!("unknown format {}", job.format))))?;
        let report = build(store, tenant, &job.account_id, job.start_date, job.end_date).await?;
        // Rendering is CPU-bound: keep it off the async workers.
        let bytes = tokio::task::spawn_blocking(move || render(&report, format))
            .await
            .map_err(|e| ReportError::Store(StoreError::backend(e)))??;
        let key = blob_key(tenant, &job, format)?;
        blobs.put(&key, &bytes, format.content_type()).await?;
        Ok(key.as_str().to_string())
    }
    .await;
    job.finished_at = Some(Utc::now());
    match outcome {
        Ok(key) => {
            job.status = ReportStatus::Ready;
            job.blob_key = Some(key);
        }
        Err(e) => {
            tracing::warn!(report.id = %job.id, error = %e, "report failed");
            job.status = ReportStatus::Failed;
            job.error = Some(match &e {
                ReportError::Store(StoreError::NotFound { what, id }) => format!("{what} {id} not found"),
                ReportError::InvalidPeriod { .. } => e.to_string(),
                _ => "the report could not be built".to_string(),
            });
        }
    }
    jobs.update_report_job(tenant, &job).await?;
    Ok(job)
}

/// Where a finished report can be downloaded: a route of the local server, or a presigned S3 URL
/// in AWS.
#[async_trait::async_trait]
pub trait ReportLinks: Send + Sync {
    /// A URL the caller can fetch the job's report from.
    async fn download_url(&self, tenant: &TenantId, job: &ReportJob, key: &BlobKey) -> Result<String, BlobError>;
}

/// Starts building a job's report: a background task locally, an asynchronous invocation of the
/// `reports` function (or a queue message) in AWS.
#[async_trait::async_trait]
pub trait ReportDispatch: Send + Sync {
    /// Hands the job over; returns once it is accepted, not when the report is ready.
    async fn dispatch(&self, tenant: &TenantId, job_id: &str) -> Result<(), ReportError>;
}

/// Builds reports in a tokio task of this process, over the given ports.
#[derive(Clone)]
pub struct LocalDispatch {
    store: std::sync::Arc<dyn Store>,
    jobs: std::sync::Arc<dyn ReportStore>,
    blobs: std::sync::Arc<dyn Blobs>,
}

impl LocalDispatch {
    /// A dispatcher over the ports the report is built from and stored in.
    pub fn new(
        store: std::sync::Arc<dyn Store>,
        jobs: std::sync::Arc<dyn ReportStore>,
        blobs: std::sync::Arc<dyn Blobs>,
    ) -> Self {
        LocalDispatch { store, jobs, blobs }
    }
}

#[async_trait::async_trait]
impl ReportDispatch for LocalDispatch {
    async fn dispatch(&self, tenant: &TenantId, job_id: &str) -> Result<(), ReportError> {
        let (this, tenant, id) = (self.clone(), tenant.clone(), job_id.to_string());
        tokio::spawn(async move {
            if let Err(e) = generate(this.store.as_ref(), this.jobs.as_ref(), this.blobs.as_ref(), &tenant, &id).await {
                tracing::error!(report.id = %id, error = %e, "report job could not be updated");
            }
        });
        Ok(())
    }
}

/// Links to the local server's download route.
#[derive(Debug, Clone, Default)]
pub struct LocalLinks;

#[async_trait::async_trait]
impl ReportLinks for LocalLinks {
    async fn download_url(&self, _tenant: &TenantId, job: &ReportJob, _key: &BlobKey) -> Result<String, BlobError> {
        Ok(format!("{}/reports/{}/download", crate::api::BASE_PATH, job.id))
    }
}

/// Figures as text with the currency's decimals, the way every renderer prints them.
pub(crate) fn money(amount: rust_decimal::Decimal, currency: crate::domain::Currency) -> String {
    crate::domain::money::fixed(amount, currency.minor_units())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_choose_their_format() {
        assert_eq!(ReportFormat::from_file_name("out/r.XLSX"), Some(ReportFormat::Xlsx));
        assert_eq!(ReportFormat::from_file_name("r.csv.zip"), Some(ReportFormat::Csv));
        assert_eq!(ReportFormat::from_file_name("r.pdf"), Some(ReportFormat::Pdf));
        assert_eq!(ReportFormat::from_file_name("r.csv"), None);
        assert_eq!(ReportFormat::from_file_name("report"), None);
    }
}
