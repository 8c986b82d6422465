//! [`ReportStore`] on SQLite: one row per report job.

use std::str::FromStr;

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::model::TenantId;
use super::reports::{ReportJob, ReportStatus, ReportStore};
use super::sqlite::{backend, corrupt, parse_date, parse_time, SqliteStore};
use super::StoreError;

type JobRow =
    (String, String, String, String, String, String, Option<String>, Option<String>, String, String, Option<String>);

fn job_from_row(row: JobRow) -> Result<ReportJob, StoreError> {
    let (id, account_id, start, end, format, status, blob_key, error, created_by, created_at, finished_at) = row;
    Ok(ReportJob {
        id,
        account_id,
        start_date: parse_date(&start)?,
        end_date: parse_date(&end)?,
        format,
        status: ReportStatus::from_str(&status).map_err(|_| corrupt("report status", &status))?,
        blob_key,
        error,
        created_by,
        created_at: parse_time(&created_at)?,
        finished_at: finished_at.as_deref().map(parse_time).transpose()?,
    })
}

#[async_trait]
impl ReportStore for SqliteStore {
    async fn create_report_job(&self, tenant: &TenantId, job: &ReportJob) -> Result<(), StoreError> {
        let (tenant, job) = (tenant.as_str().to_string(), job.clone());
        self.with(move |conn| {
            let inserted = conn
                .execute(
                    "INSERT OR IGNORE INTO report_jobs (tenant, id, account_id, start_date, end_date, format, status,
                     blob_key, error, created_by, created_at, finished_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![
                        tenant,
                        job.id,
                        job.account_id,
                        job.start_date.to_string(),
                        job.end_date.to_string(),
                        job.format,
                        job.status.as_str(),
                        job.blob_key,
                        job.error,
                        job.created_by,
                        job.created_at.to_rfc3339(),
                        job.finished_at.map(|t| t.to_rfc3339()),
                    ],
                )
                .map_err(backend)?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("report {} already exists", job.id)));
            }
            Ok(())
        })
        .await
    }

    async fn get_report_job(&self, tenant: &TenantId, id: &str) -> Result<ReportJob, StoreError> {
        let (tenant, id) = (tenant.as_str().to_string(), id.to_string());
        self.read(move |conn| {
            let row: Option<JobRow> = conn
                .query_row(
                    "SELECT id, account_id, start_date, end_date, format, status, blob_key, error, created_by,
                     created_at, finished_at FROM report_jobs WHERE tenant = ?1 AND id = ?2",
                    params![tenant, id],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                            r.get(10)?,
                        ))
                    },
                )
                .optional()
                .map_err(backend)?;
            match row {
                Some(row) => job_from_row(row),
                None => Err(StoreError::NotFound { what: "report", id }),
            }
        })
        .await
    }

    async fn update_report_job(&self, tenant: &TenantId, job: &ReportJob) -> Result<(), StoreError> {
        let (tenant, job) = (tenant.as_str().to_string(), job.clone());
        self.with(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE report_jobs SET status = ?3, blob_key = ?4, error = ?5, finished_at = ?6
                     WHERE tenant = ?1 AND id = ?2",
                    params![
                        tenant,
                        job.id,
                        job.status.as_str(),
                        job.blob_key,
                        job.error,
                        job.finished_at.map(|t| t.to_rfc3339()),
                    ],
                )
                .map_err(backend)?;
            if changed == 0 {
                return Err(StoreError::NotFound { what: "report", id: job.id });
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};

    use super::*;

    fn job(id: &str) -> ReportJob {
        ReportJob {
            id: id.into(),
            account_id: "acc_1".into(),
            start_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default(),
            end_date: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap_or_default(),
            format: "pdf".into(),
            status: ReportStatus::Pending,
            blob_key: None,
            error: None,
            created_by: "key_1".into(),
            created_at: Utc::now(),
            finished_at: None,
        }
    }

    #[tokio::test]
    async fn a_job_is_stored_updated_and_invisible_to_other_tenants() -> Result<(), StoreError> {
        let store = SqliteStore::open_in_memory()?;
        let (a, b) =
            (TenantId::new("a").map_err(StoreError::backend)?, TenantId::new("b").map_err(StoreError::backend)?);
        let mut j = job("rpt_1");
        store.create_report_job(&a, &j).await?;
        assert!(matches!(store.create_report_job(&a, &j).await, Err(StoreError::Conflict(_))));
        assert!(matches!(store.get_report_job(&b, "rpt_1").await, Err(StoreError::NotFound { .. })));
        assert!(matches!(store.update_report_job(&b, &j).await, Err(StoreError::NotFound { .. })));
        j.status = ReportStatus::Ready;
        j.blob_key = Some("reports/a/rpt_1.pdf".into());
        j.finished_at = Some(Utc::now());
        store.update_report_job(&a, &j).await?;
        let back = store.get_report_job(&a, "rpt_1").await?;
        assert_eq!((back.status, back.blob_key.as_deref()), (ReportStatus::Ready, Some("reports/a/rpt_1.pdf")));
        // The same id in another tenant is another job.
        store.create_report_job(&b, &job("rpt_1")).await?;
        assert_eq!(store.get_report_job(&b, "rpt_1").await?.status, ReportStatus::Pending);
        Ok(())
    }
}
