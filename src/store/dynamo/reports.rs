//! Report jobs on DynamoDB: one item per job in the tenant's report partition.
//!
//! The job's `data` is written once, when the job is created; what a build changes later
//! (`status`, `blob_key`, `error`, `finished_at`) are top-level attributes that override it when
//! read, so finishing a job is one conditional `UpdateItem` and never a read-modify-write.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{corrupt, from_json, get_s, key, opt_s, s, to_json, DynamoStore, Item, Keys};
use crate::store::model::TenantId;
use crate::store::reports::{ReportJob, ReportStatus, ReportStore};
use crate::store::StoreError;

impl Keys<'_> {
    fn reports(&self) -> String {
        format!("T#{}#REPORT", self.tenant)
    }
}

/// The sort key of one job within the tenant's report partition.
fn report_sk(id: &str) -> String {
    format!("REPORT#{id}")
}

fn report_item(keys: &Keys<'_>, job: &ReportJob) -> Result<Item, StoreError> {
    let mut item = key(keys.reports(), report_sk(&job.id));
    item.insert("type".into(), s("report"));
    item.insert("data".into(), to_json(job)?);
    for (name, value) in finish_attributes(job) {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    Ok(item)
}

/// The attributes a build changes, by name; `None` is an attribute the item must not hold.
fn finish_attributes(job: &ReportJob) -> [(&'static str, Option<String>); 4] {
    [
        ("status", Some(job.status.as_str().to_string())),
        ("blob_key", job.blob_key.clone()),
        ("error", job.error.clone()),
        ("finished_at", job.finished_at.map(|t| t.to_rfc3339())),
    ]
}

fn report_from_item(item: &Item) -> Result<ReportJob, StoreError> {
    let mut job: ReportJob = from_json(item, "data")?;
    let status = get_s(item, "status")?;
    job.status = status.parse::<ReportStatus>().map_err(|_| corrupt("report status", status))?;
    job.blob_key = opt_s(item, "blob_key");
    job.error = opt_s(item, "error");
    job.finished_at = opt_s(item, "finished_at")
        .map(|t| DateTime::parse_from_rfc3339(&t).map(|t| t.with_timezone(&Utc)).map_err(|_| corrupt("time", t)))
        .transpose()?;
    Ok(job)
}

/// `SET` of the attributes a job holds and `REMOVE` of those it does not, with their names and
/// values (every name aliased: `status` is a DynamoDB reserved word).
fn finish_update(job: &ReportJob) -> (String, HashMap<String, String>, Item) {
    let mut set = Vec::new();
    let mut remove = Vec::new();
    let mut names = HashMap::from([("#pk".to_string(), "PK".to_string())]);
    let mut values = Item::new();
    for (i, (name, value)) in finish_attributes(job).into_iter().enumerate() {
        let alias = format!("#a{i}");
        names.insert(alias.clone(), name.to_string());
        match value {
            Some(v) => {
                set.push(format!("{alias} = :v{i}"));
                values.insert(format!(":v{i}"), s(v));
            }
            None => remove.push(alias),
        }
    }
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    (expression, names, values)
}

#[async_trait]
impl ReportStore for DynamoStore {
    async fn create_report_job(&self, tenant: &TenantId, job: &ReportJob) -> Result<(), StoreError> {
        let item = report_item(&Keys::of(tenant), job)?;
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::Conflict(format!("report {} already exists", job.id)))
            }
            Err(e) => Err(self.err(e)),
        }
    }

    async fn get_report_job(&self, tenant: &TenantId, id: &str) -> Result<ReportJob, StoreError> {
        let not_found = || StoreError::NotFound { what: "report", id: id.to_string() };
        let item = self.get(key(Keys::of(tenant).reports(), report_sk(id))).await?.ok_or_else(not_found)?;
        report_from_item(&item)
    }

    async fn update_report_job(&self, tenant: &TenantId, job: &ReportJob) -> Result<(), StoreError> {
        let (expression, names, values) = finish_update(job);
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(Keys::of(tenant).reports(), report_sk(&job.id))))
            .update_expression(expression)
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                Err(StoreError::NotFound { what: "report", id: job.id.clone() })
            }
            Err(e) => Err(self.err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn job() -> ReportJob {
        ReportJob {
            id: "rpt_1".into(),
            account_id: "acc_1".into(),
            start_date: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
            format: "csv".into(),
            status: ReportStatus::Pending,
            blob_key: None,
            error: None,
            created_by: "key_1".into(),
            created_at: Utc::now(),
            finished_at: None,
        }
    }

    #[test]
    fn a_job_item_sits_in_its_tenants_report_partition_and_reads_back_as_written() {
        let t = TenantId::new("t1").unwrap();
        let mut j = job();
        j.status = ReportStatus::Ready;
        j.blob_key = Some("reports/t1/rpt_1.csv".into());
        j.finished_at = Some(Utc::now());
        let item = report_item(&Keys::of(&t), &j).unwrap();
        assert_eq!(opt_s(&item, "PK").as_deref(), Some("T#t1#REPORT"));
        assert_eq!(opt_s(&item, "SK").as_deref(), Some("REPORT#rpt_1"));
        assert_eq!(report_from_item(&item).unwrap(), j);
    }

    #[test]
    fn finishing_a_job_sets_what_it_holds_and_removes_what_it_does_not() {
        let mut j = job();
        j.status = ReportStatus::Failed;
        j.error = Some("no such account".into());
        let (expression, names, values) = finish_update(&j);
        assert_eq!(expression, "SET #a0 = :v0, #a2 = :v2 REMOVE #a1, #a3");
        assert_eq!(names.get("#a1").map(String::as_str), Some("blob_key"));
        assert_eq!(values.len(), 2);
    }

    #[test]
    fn the_report_partition_of_one_tenant_is_not_a_prefix_of_anothers() {
        let (a, ab) = (TenantId::new("a").unwrap(), TenantId::new("ab").unwrap());
        let (x, y) = (Keys::of(&a).reports(), Keys::of(&ab).reports());
        assert!(!y.starts_with(&format!("{x}#")) && x != y && x.starts_with("T#a#"));
    }

    #[test]
    fn a_damaged_job_item_is_reported_not_panicked_on() {
        let item: Item = HashMap::from([("data".to_string(), s("{")), ("status".to_string(), s("x"))]);
        assert!(matches!(report_from_item(&item), Err(StoreError::Backend(_))));
    }
}
