//! Report jobs: a report asked for through the API is built in the background; its job says where
//! it stands and, once ready, which blob holds it.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::model::TenantId;
use super::StoreError;

/// Where a report job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Accepted, not built yet.
    Pending,
    /// Built and stored: `blob_key` holds it.
    Ready,
    /// Building failed; `error` says why.
    Failed,
}

impl ReportStatus {
    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReportStatus::Pending => "pending",
            ReportStatus::Ready => "ready",
            ReportStatus::Failed => "failed",
        }
    }
}

impl std::str::FromStr for ReportStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => ReportStatus::Pending,
            "ready" => ReportStatus::Ready,
            "failed" => ReportStatus::Failed,
            _ => return Err(format!("unknown report status {s:?}")),
        })
    }
}

/// One requested report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportJob {
    /// `rpt_...`
    pub id: String,
    /// The account reported on.
    pub account_id: String,
    /// First day of the period.
    pub start_date: NaiveDate,
    /// Last day of the period.
    pub end_date: NaiveDate,
    /// `json`, `csv`, `xlsx`, `pdf` or `html`.
    pub format: String,
    /// Where it stands.
    pub status: ReportStatus,
    /// The blob holding the finished report.
    pub blob_key: Option<String>,
    /// Why building failed (for people; no internals).
    pub error: Option<String>,
    /// Who asked.
    pub created_by: String,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// When it was ready or failed.
    pub finished_at: Option<DateTime<Utc>>,
}

/// Report jobs of a tenant.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores a new job; `Conflict` if the id exists.
    async fn create_report_job(&self, tenant: &TenantId, job: &ReportJob) -> Result<(), StoreError>;
    /// One job; `NotFound` for another tenant's.
    async fn get_report_job(&self, tenant: &TenantId, id: &str) -> Result<ReportJob, StoreError>;
    /// Replaces a job's status, blob key, error and finish time; `NotFound` if it does not exist.
    async fn update_report_job(&self, tenant: &TenantId, job: &ReportJob) -> Result<(), StoreError>;
}
