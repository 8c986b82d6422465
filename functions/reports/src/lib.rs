//! The `reports` function: builds the report of one stored job, invoked asynchronously by the API
//! with `{tenant, report_id}` after it stored the pending job.
//!
//! The report is written to the bucket and the job marked `ready` (or `failed` with its reason). A
//! job that cannot be built, or no longer exists, is answered, not retried; a backend failure is
//! returned so that Lambda invokes again, which is safe: a job that is no longer pending is left
//! as it stands.

use bankrec::lambda::jobs::{run_report_job, JobError, ReportJob, ReportResult};
use bankrec::lambda::Retry;
use bankrec::store::{Blobs, ReportStore, Store};
use serde::Serialize;

/// The invocation's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// The job was handled: its status says whether the report is ready.
    Done(ReportResult),
    /// The job cannot run; retrying would not help.
    Refused {
        /// Why.
        error: String,
    },
}

/// Builds one job's report.
pub async fn handle(
    store: &dyn Store,
    jobs: &dyn ReportStore,
    blobs: &dyn Blobs,
    job: ReportJob,
) -> Result<Reply, JobError> {
    match run_report_job(store, jobs, blobs, &job).await {
        Ok(done) => {
            tracing::info!(report.id = %done.report_id, report.status = done.status.as_str(), "report job handled");
            Ok(Reply::Done(done))
        }
        Err(e) if e.retry() == Retry::Transient => Err(e),
        Err(e) => {
            tracing::warn!(report.id = %job.report_id, error = %e, "report job refused");
            Ok(Reply::Refused { error: e.to_string() })
        }
    }
}
