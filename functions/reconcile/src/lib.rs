//! The `reconcile` function: runs one reconciliation to the end. It is invoked asynchronously
//! by the API with `{tenant, run_id}` to finish a run the API stored as `running`, and with
//! `{tenant, request}` by an EventBridge schedule of an account
//! (`{tenant, request: {account_id, last_days}}`) or by hand.
//!
//! Only backend failures are returned as errors (Lambda retries those); a job that can never
//! succeed (unknown account, bad period, a run that is no longer `running`) is answered and
//! logged, not retried.

use bankrec::lambda::jobs::{run_finish_job, run_reconcile_job, FinishRunJob, JobError, JobResult, ReconcileJob};
use bankrec::lambda::Retry;
use bankrec::matching::EngineConfig;
use bankrec::store::Store;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What the function is invoked with; the two shapes share no field but `tenant`, so the shape
/// alone says which it is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Payload {
    /// Finish a run the API stored as `running`.
    Finish(FinishRunJob),
    /// Reconcile a period (or the last days) of an account.
    Reconcile(ReconcileJob),
}

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
    payload: Payload,
    today: NaiveDate,
    engine: &EngineConfig,
) -> Result<Reply, JobError> {
    let result = match &payload {
        Payload::Finish(job) => run_finish_job(store, job, engine).await,
        Payload::Reconcile(job) => run_reconcile_job(store, job, today, engine).await,
    };
    match result {
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
