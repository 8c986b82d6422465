//! The `reconcile` function: runs one reconciliation to the end, invoked asynchronously with
//! `{tenant, request}` by the API, or by an EventBridge schedule of an account with
//! `{tenant, request: {account_id, last_days}}`.
//!
//! Only backend failures are returned as errors (Lambda retries those); a job that can never
//! succeed (unknown account, bad period) is answered and logged, not retried.

use bankrec::lambda::jobs::{run_reconcile_job, JobError, JobResult, ReconcileJob};
use bankrec::lambda::Retry;
use bankrec::matching::EngineConfig;
use bankrec::store::Store;
use chrono::NaiveDate;
use serde::Serialize;

/// The invocation's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reply {
    /// The run finished.
    Done(JobResult),
    /// The job cannot run; retrying would not help.
    Refused {
        /// Why.
        error: String,
    },
}

/// Runs one job; `today` resolves `last_days`.
pub async fn handle(
    store: &dyn Store,
    job: ReconcileJob,
    today: NaiveDate,
    engine: &EngineConfig,
) -> Result<Reply, JobError> {
    match run_reconcile_job(store, &job, today, engine).await {
        Ok(done) => {
            tracing::info!(reconciliation.id = %done.reconciliation_id, reconciliation.status = done.status.as_str(), "reconciled");
            Ok(Reply::Done(done))
        }
        Err(e) if e.retry() == Retry::Transient => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "reconcile job refused");
            Ok(Reply::Refused { error: e.to_string() })
        }
    }
}
