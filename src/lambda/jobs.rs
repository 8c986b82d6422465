//! Asynchronous jobs: a reconciliation invoked with `{tenant, request}` (by ingestion, a
//! per-account schedule, or by hand), a run the API stored as `running`, finished with
//! `{tenant, run_id}`, and a report invoked with `{tenant, report_id}` once the API has stored its
//! pending job.
//!
//! A schedule cannot know dates in advance, so a request may give `last_days` instead of a
//! period: the run then covers the days up to and including today.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::Retry;
use crate::matching::{EngineConfig, Summary};
use crate::reports::{generate, ReportError};
use crate::store::model::InvalidId;
use crate::store::{Blobs, ReportStatus, ReportStore, RunStatus, Store, StoreError, TenantId};
use crate::workflows::reconcile::{finish_started_run, reconcile, ReconcileError, ReconcileRequest};

/// Who the runs started by a job are attributed to.
pub const ACTOR: &str = "system";

/// Longest period a `last_days` request may cover.
pub const MAX_LAST_DAYS: u32 = 366;

/// The payload of the reconcile function.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileJob {
    /// The tenant whose account is reconciled.
    pub tenant: String,
    /// What to reconcile.
    pub request: JobRequest,
}

/// The reconciliation a job asks for: a period, or the last days up to today.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The account.
    pub account_id: String,
    /// First day of the period.
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// Last day of the period.
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    /// Instead of dates: this many days, ending today.
    #[serde(default)]
    pub last_days: Option<u32>,
    /// Compute, store nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a finished job answers (the invocation's result, and what is logged).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobResult {
    /// The run (for a dry run, an id that was never stored).
    pub reconciliation_id: String,
    /// Where it stands.
    pub status: RunStatus,
    /// Its counts.
    pub summary: Summary,
}

/// Why a job did not run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The tenant is not a tenant id.
    #[error(transparent)]
    Tenant(#[from] InvalidId),
    /// Neither a whole period nor `last_days`, or both.
    #[error("give either start_date and end_date, or last_days (1 to {MAX_LAST_DAYS})")]
    Period,
    /// The reconciliation failed.
    #[error(transparent)]
    Reconcile(#[from] ReconcileError),
    /// The report job could not be read or updated.
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl JobError {
    /// Whether invoking again can help.
    pub fn retry(&self) -> Retry {
        match self {
            JobError::Reconcile(ReconcileError::Store(StoreError::Backend(_) | StoreError::NotInitialised(_)))
            | JobError::Report(ReportError::Store(StoreError::Backend(_) | StoreError::NotInitialised(_))) => {
                Retry::Transient
            }
            _ => Retry::Permanent,
        }
    }
}

impl ReconcileJob {
    /// The tenant and the workflow's request, with `last_days` resolved against `today`.
    pub fn resolve(&self, today: NaiveDate) -> Result<(TenantId, ReconcileRequest), JobError> {
        let tenant = TenantId::new(&self.tenant)?;
        let r = &self.request;
        let (start_date, end_date) = match (r.start_date, r.end_date, r.last_days) {
            (Some(start), Some(end), None) => (start, end),
            (None, None, Some(days @ 1..=MAX_LAST_DAYS)) => (today - Duration::days(i64::from(days) - 1), today),
            _ => return Err(JobError::Period),
        };
        let request = ReconcileRequest {
            account_id: r.account_id.clone(),
            start_date,
            end_date,
            dry_run: r.dry_run,
            actor: ACTOR.into(),
        };
        Ok((tenant, request))
    }
}

/// Runs a reconcile job to the end.
pub async fn run_reconcile_job(
    store: &dyn Store,
    job: &ReconcileJob,
    today: NaiveDate,
    engine: &EngineConfig,
) -> Result<JobResult, JobError> {
    let (tenant, request) = job.resolve(today)?;
    let outcome = reconcile(store, &tenant, &request, engine).await?;
    Ok(JobResult { reconciliation_id: outcome.run.id, status: outcome.run.status, summary: outcome.run.summary })
}

/// The payload with which the API hands over a run it stored as `running` (see
/// [`crate::workflows::reconcile::start_run`]): the reconcile function finishes that run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRunJob {
    /// The tenant of the run.
    pub tenant: String,
    /// The stored run.
    pub run_id: String,
}

/// Finishes a stored run. A run that is no longer `running` (a repeated delivery, or a run
/// finished meanwhile) is a conflict, which is permanent: it is never run twice.
pub async fn run_finish_job(
    store: &dyn Store,
    job: &FinishRunJob,
    engine: &EngineConfig,
) -> Result<JobResult, JobError> {
    let tenant = TenantId::new(&job.tenant)?;
    let outcome = finish_started_run(store, &tenant, &job.run_id, engine).await?;
    Ok(JobResult { reconciliation_id: outcome.run.id, status: outcome.run.status, summary: outcome.run.summary })
}

/// The payload of the reports function: the job the API stored, by tenant and id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportJob {
    /// The tenant.
    pub tenant: String,
    /// The stored report job (`rpt_...`).
    pub report_id: String,
}

/// Where a report job stands once the function is done with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportResult {
    /// The job.
    pub report_id: String,
    /// `ready`, or `failed` with `error`.
    pub status: ReportStatus,
    /// Why building failed (for people; no internals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Builds the report of a stored job into blobs and marks the job ready, or failed with the
/// reason. A job that is no longer pending (a duplicate delivery) is answered as it stands and
/// nothing changes; only a job that cannot be read or updated is an error.
pub async fn run_report_job(
    store: &dyn Store,
    jobs: &dyn ReportStore,
    blobs: &dyn Blobs,
    job: &ReportJob,
) -> Result<ReportResult, JobError> {
    let tenant = TenantId::new(&job.tenant)?;
    let done = generate(store, jobs, blobs, &tenant, &job.report_id).await?;
    Ok(ReportResult { report_id: done.id, status: done.status, error: done.error })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::domain::Currency;
    use crate::store::{Account, AccountStore, ReconStore, SqliteStore};

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn job(json: &str) -> ReconcileJob {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_scheduled_job_covers_the_last_days_up_to_today() {
        let j = job(r#"{"tenant":"acme","request":{"account_id":"acc","last_days":7}}"#);
        let (tenant, req) = j.resolve(day("2024-03-10")).unwrap();
        assert_eq!(tenant.as_str(), "acme");
        assert_eq!((req.start_date, req.end_date), (day("2024-03-04"), day("2024-03-10")));
        assert_eq!(req.actor, ACTOR);
    }

    #[test]
    fn a_job_needs_exactly_one_way_of_stating_its_period() {
        for request in [
            r#"{"account_id":"a"}"#,
            r#"{"account_id":"a","start_date":"2024-01-01"}"#,
            r#"{"account_id":"a","start_date":"2024-01-01","end_date":"2024-01-31","last_days":3}"#,
            r#"{"account_id":"a","last_days":0}"#,
            r#"{"account_id":"a","last_days":400}"#,
        ] {
            let j = job(&format!(r#"{{"tenant":"acme","request":{request}}}"#));
            assert!(matches!(j.resolve(day("2024-03-10")), Err(JobError::Period)), "{request}");
        }
    }

    #[test]
    fn unknown_fields_and_bad_tenants_are_refused_permanently() {
        assert!(serde_json::from_str::<ReconcileJob>(r#"{"tenant":"a","request":{"account_id":"x"},"x":1}"#).is_err());
        let j = job(r#"{"tenant":"a#b","request":{"account_id":"x","last_days":1}}"#);
        let e = j.resolve(day("2024-03-10")).unwrap_err();
        assert_eq!(e.retry(), Retry::Permanent);
    }

    #[tokio::test]
    async fn a_job_stores_a_completed_run_of_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open_dir(dir.path()).unwrap());
        let tenant = TenantId::new("acme").unwrap();
        let account = Account {
            id: "acc".into(),
            name: "Main".into(),
            currency: Currency::new("EUR").unwrap(),
            account_number: None,
            iban: None,
            opening_balance: None,
            created_at: Utc::now(),
        };
        store.create_account(&tenant, &account).await.unwrap();
        let j = job(
            r#"{"tenant":"acme","request":{"account_id":"acc","start_date":"2024-01-01","end_date":"2024-01-31"}}"#,
        );
        let done = run_reconcile_job(store.as_ref(), &j, day("2024-03-10"), &EngineConfig::default()).await.unwrap();
        assert_eq!(done.status, RunStatus::Completed);
        assert_eq!(store.get_run(&tenant, &done.reconciliation_id).await.unwrap().created_by, ACTOR);
    }

    #[tokio::test]
    async fn a_job_for_an_unknown_account_fails_permanently() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let j = job(r#"{"tenant":"acme","request":{"account_id":"nope","last_days":3}}"#);
        let e = run_reconcile_job(&store, &j, day("2024-03-10"), &EngineConfig::default()).await.unwrap_err();
        assert_eq!(e.retry(), Retry::Permanent);
    }
}
