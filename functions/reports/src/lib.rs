//! The `reports` function: builds one report, invoked asynchronously with
//! `{tenant, account_id, start_date, end_date, format}`.
//!
//! It calls the library's report job, which refuses every job until the report workflow is part
//! of the library; the refusal is answered, not retried.

use bankrec::lambda::jobs::{run_report_job, JobError, JobResult, ReportJob};
use bankrec::lambda::Retry;
use bankrec::store::Store;
use serde::Serialize;

/// The invocation's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// The report was built.
    Done(JobResult),
    /// The job cannot run; retrying would not help.
    Refused {
        /// Why.
        error: String,
    },
}

/// Builds one report.
pub async fn handle(store: &dyn Store, job: ReportJob) -> Result<Reply, JobError> {
    match run_report_job(store, &job).await {
        Ok(done) => Ok(Reply::Done(done)),
        Err(e) if e.retry() == Retry::Transient => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "report job refused");
            Ok(Reply::Refused { error: e.to_string() })
        }
    }
}
