//! The DynamoDB store: one table holds every tenant's objects (single-table design).
//!
//! `docs/dynamodb.md` describes the key schema, every item type, the indexes, each access pattern
//! and how an import of any size stays all or nothing although a DynamoDB transaction holds at most
//! 100 items. In short: every partition key starts with `T#{tenant}#`, so no query can reach
//! another tenant's items; listings are keyset-paginated Queries (never a Scan); creations are
//! conditional on `attribute_not_exists(PK)`; records carry a `version` checked on every update.
//! Runs, matches with their claims, discrepancies, rules, the audit trail and API keys are in
//! `dynamo/recon.rs`; report jobs in `dynamo/reports.rs`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, DeleteRequest, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, KeysAndAttributes, Projection, ProjectionType, Put, ScalarAttributeType, TableStatus, TransactWriteItem,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

mod recon;
mod reports;

use super::model::{
    new_id, Account, ItemStatus, Page, RecordImportOutcome, RecordQuery, StatementImport, StoredRecord,
    StoredTransaction, TenantId, TransactionQuery,
};
use super::{page_size, split_cursor, AccountStore, LedgerStore, RecordStore, StoreError};
use crate::domain::{BankTransaction, Record};

/// A DynamoDB item.
type Item = HashMap<String, AttributeValue>;

/// The table's partition key attribute.
pub const PK: &str = "PK";
/// The table's sort key attribute.
pub const SK: &str = "SK";
/// The index of every listing in natural order (by date then id).
pub const GSI1: &str = "GSI1";
/// The index of listings filtered by reconciliation status.
pub const GSI2: &str = "GSI2";

/// Most items one TransactWriteItems call may hold.
const TRANSACTION_MAX: usize = 100;
/// Most requests one BatchWriteItem call may hold.
const BATCH_WRITE_MAX: usize = 25;
/// Most keys one BatchGetItem call may hold.
const BATCH_GET_MAX: usize = 100;
/// How often a batch is resent before its unprocessed part is reported as a failure.
const MAX_ATTEMPTS: u32 = 10;

const STATE_PENDING: &str = "pending";
const STATE_COMPLETE: &str = "complete";

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    lease: Duration,
}

/// Everything a key of a tenant's object is built from, in one place so that no access path can
/// forget the tenant.
struct Keys<'a> {
    tenant: &'a str,
}

impl<'a> Keys<'a> {
    fn of(tenant: &'a TenantId) -> Self {
        Keys { tenant: tenant.as_str() }
    }

    fn accounts(&self) -> String {
        format!("T#{}#ACCOUNT", self.tenant)
    }

    fn imports(&self, account: &str) -> String {
        format!("T#{}#A#{account}#IMPORT", self.tenant)
    }

    fn line(&self, id: &str) -> String {
        format!("T#{}#TXN#{id}", self.tenant)
    }

    fn lines_by_date(&self, account: &str) -> String {
        format!("T#{}#A#{account}#TXN", self.tenant)
    }

    fn lines_by_status(&self, account: &str, status: ItemStatus) -> String {
        format!("T#{}#A#{account}#TXN#{}", self.tenant, status.as_str())
    }

    fn record(&self, id: &str) -> String {
        format!("T#{}#REC#{id}", self.tenant)
    }

    fn records_by_date(&self) -> String {
        format!("T#{}#REC", self.tenant)
    }

    fn records_by_status(&self, status: ItemStatus) -> String {
        format!("T#{}#REC#{}", self.tenant, status.as_str())
    }
}

/// The sort key of listings: dates are fixed width, so string order is (date, id) order.
fn date_key(date: NaiveDate, id: &str) -> String {
    format!("{date}#{id}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} is not valid: {detail}").into())
}

fn get_s<'i>(item: &'i Item, name: &str) -> Result<&'i str, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(corrupt("item", format_args!("attribute {name} is missing"))),
    }
}

fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn get_n(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt("number", format_args!("{name} = {v:?}"))),
        _ => Err(corrupt("item", format_args!("attribute {name} is missing"))),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(value).map(s).map_err(StoreError::backend)
}

fn from_json<T: DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    let text = get_s(item, name)?;
    serde_json::from_str(text).map_err(|e| corrupt(name, e))
}

fn parse_status(item: &Item) -> Result<ItemStatus, StoreError> {
    let v = get_s(item, "status")?;
    v.parse().map_err(|_| corrupt("status", v))
}

/// Waits before attempt `attempt` (0-based) of a retried call to AWS: exponential (20 ms doubled
/// each attempt, at most 2 s), with jitter so that concurrent callers do not retry in lockstep.
/// The store's calls and the Lambda invocations ([`crate::aws::invoke`]) share it.
pub(crate) async fn backoff(attempt: u32) {
    let base = 20u64.saturating_mul(1u64 << attempt.min(10)).min(2_000);
    let mut r = [0u8; 1];
    let jitter = if getrandom::fill(&mut r).is_ok() { base * u64::from(r[0]) / 512 } else { 0 };
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

impl DynamoStore {
    /// A store on `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into(), lease: Duration::from_secs(120) }
    }

    /// A store on `table` with the client configured from the standard AWS environment
    /// (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL_DYNAMODB`).
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::load_from_env().await;
        Self::new(Client::new(&config), table)
    }

    /// How long an unfinished import blocks another attempt at the same file before that attempt
    /// may take it over (the first writer is then presumed dead).
    pub fn with_import_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its indexes (on-demand billing) unless it exists, and waits until it
    /// is active. Returns whether it was created.
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(StoreError::backend)
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(StoreError::backend)
        };
        let index = |name: &str| -> Result<GlobalSecondaryIndex, StoreError> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(&format!("{name}PK"), KeyType::Hash)?)
                .key_schema(key(&format!("{name}SK"), KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(StoreError::backend)
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr(PK)?)
            .attribute_definitions(attr(SK)?)
            .attribute_definitions(attr("GSI1PK")?)
            .attribute_definitions(attr("GSI1SK")?)
            .attribute_definitions(attr("GSI2PK")?)
            .attribute_definitions(attr("GSI2SK")?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .global_secondary_indexes(index(GSI1)?)
            .global_secondary_indexes(index(GSI2)?)
            .send()
            .await;
        let created = match created {
            Ok(_) => true,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => false,
            Err(e) => return Err(StoreError::backend(e)),
        };
        for attempt in 0..60 {
            let table =
                self.client.describe_table().table_name(&self.table).send().await.map_err(StoreError::backend)?;
            if table.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(created);
            }
            backoff(attempt.min(5)).await;
        }
        Err(StoreError::NotInitialised(format!("table {} did not become active", self.table)))
    }

    /// Maps an SDK error: a missing table says how to create it.
    fn err<E, R>(&self, e: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        if e.code() == Some("ResourceNotFoundException") {
            return StoreError::NotInitialised(format!(
                "the DynamoDB table {} does not exist; create it with `bankrec store init --store dynamodb://{}`",
                self.table, self.table
            ));
        }
        if e.code() == Some("ValidationException") {
            // Values DynamoDB cannot hold (an item over 400 KB, a key over its size limit).
            let message = e.message().unwrap_or("refused by DynamoDB").to_string();
            return StoreError::Invalid(message);
        }
        StoreError::backend(e)
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err(e))?;
        Ok(out.item)
    }

    /// Reads many items by key, in batches, retrying unprocessed keys.
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt > 0 {
                    backoff(attempt).await;
                }
                if attempt >= MAX_ATTEMPTS {
                    return Err(StoreError::Backend(
                        format!("{} keys stayed unprocessed after {MAX_ATTEMPTS} attempts", pending.len()).into(),
                    ));
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(StoreError::backend)?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| self.err(e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                if let Some(mut unprocessed) = out.unprocessed_keys {
                    pending = unprocessed.remove(&self.table).map(|k| k.keys).unwrap_or_default();
                }
                attempt += 1;
            }
        }
        Ok(found)
    }

    /// Sends write requests in batches of 25, resending unprocessed items with exponential backoff
    /// until all are done.
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt > 0 {
                    backoff(attempt).await;
                }
                if attempt >= MAX_ATTEMPTS {
                    return Err(StoreError::Backend(
                        format!("{} writes stayed unprocessed after {MAX_ATTEMPTS} attempts", pending.len()).into(),
                    ));
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, std::mem::take(&mut pending))
                    .send()
                    .await
                    .map_err(|e| self.err(e))?;
                if let Some(mut unprocessed) = out.unprocessed_items {
                    pending = unprocessed.remove(&self.table).unwrap_or_default();
                }
                attempt += 1;
            }
        }
        Ok(())
    }

    /// Deletes items by key in batches (the undo of a failed write).
    async fn delete_all(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(keys.len());
        for k in keys {
            let delete = DeleteRequest::builder().set_key(Some(k)).build().map_err(StoreError::backend)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.batch_write(requests).await
    }

    /// Runs one transaction. Returns, per item, whether its condition failed (`None` when the
    /// transaction committed). A transaction that conflicts with another is retried.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<bool>>, StoreError> {
        let mut attempt = 0;
        loop {
            let sent = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let e = match sent {
                Ok(_) => return Ok(None),
                Err(e) => e,
            };
            let reasons: Option<Vec<Option<String>>> = e
                .as_service_error()
                .and_then(|se| match se {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                        c,
                    ) => Some(c.cancellation_reasons().iter().map(|r| r.code().map(str::to_string)).collect()),
                    _ => None,
                });
            let Some(reasons) = reasons else {
                return Err(self.err(e));
            };
            let failed: Vec<bool> = reasons.iter().map(|r| r.as_deref() == Some("ConditionalCheckFailed")).collect();
            let retryable = reasons
                .iter()
                .all(|r| matches!(r.as_deref(), None | Some("None" | "TransactionConflict" | "ThrottlingError")));
            if failed.iter().any(|f| *f) {
                return Ok(Some(failed));
            }
            if !retryable || attempt + 1 >= MAX_ATTEMPTS {
                return Err(self.err(e));
            }
            attempt += 1;
            backoff(attempt).await;
        }
    }

    /// Queries one partition (of the table or an index) in key order from `lo` (inclusive) to
    /// `hi` (inclusive), keeping the items `keep` accepts, until more than `limit` are kept or the
    /// partition ends. DynamoDB may end a page early, even with no item, so pages are followed by
    /// their `LastEvaluatedKey` until enough items are in.
    #[allow(clippy::too_many_arguments)]
    async fn range(
        &self,
        index: Option<&str>,
        pk_name: &str,
        pk: String,
        sk_name: &str,
        lo: Option<String>,
        hi: Option<String>,
        filter: Option<Filter>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut condition = "#pk = :pk".to_string();
        let mut values: Item = HashMap::from([(":pk".to_string(), s(pk))]);
        match (&lo, &hi) {
            (Some(lo), Some(hi)) if lo > hi => return Ok(Vec::new()),
            (Some(_), Some(_)) => condition.push_str(" AND #sk BETWEEN :lo AND :hi"),
            (Some(_), None) => condition.push_str(" AND #sk >= :lo"),
            (None, Some(_)) => condition.push_str(" AND #sk <= :hi"),
            (None, None) => {}
        }
        let mut names = HashMap::from([("#pk".to_string(), pk_name.to_string())]);
        if lo.is_some() || hi.is_some() {
            names.insert("#sk".to_string(), sk_name.to_string());
        }
        if let Some(lo) = lo {
            values.insert(":lo".into(), s(lo));
        }
        if let Some(hi) = hi {
            values.insert(":hi".into(), s(hi));
        }
        let mut filter_expression = None;
        if let Some(f) = filter {
            filter_expression = Some(f.expression.to_string());
            names.insert(f.name.0.to_string(), f.name.1.to_string());
            values.insert(f.value.0.to_string(), f.value.1);
        }
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression(&condition)
                .set_filter_expression(filter_expression.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start.take())
                .consistent_read(index.is_none())
                .set_limit(i32::try_from(limit.saturating_add(1)).ok().filter(|l| *l <= 10_000))
                .send()
                .await
                .map_err(|e| self.err(e))?;
            out.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(k) if out.len() <= limit => start = Some(k),
                _ => return Ok(out),
            }
        }
    }
}

/// Cuts the items after `limit` and turns the last kept one into the cursor.
fn paginate<T>(mut items: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, cursor }
}

/// The inclusive sort-key bounds of a date-ordered listing, from its filters and cursor; the item
/// at the cursor itself is dropped by the caller.
fn date_bounds(from: Option<NaiveDate>, to: Option<NaiveDate>, after: Option<&(String, String)>) -> Bounds {
    let lo_from = from.map(|d| d.to_string());
    let lo_after = after.map(|(d, id)| format!("{d}#{id}"));
    let lo = match (lo_from, lo_after.clone()) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    // `$` sorts right after `#`, so every `{to}#{id}` key is below `{to}$`.
    Bounds { lo, hi: to.map(|d| format!("{d}$")), skip: lo_after }
}

/// A FilterExpression with the names and values it uses.
struct Filter {
    expression: &'static str,
    name: (&'static str, &'static str),
    value: (&'static str, AttributeValue),
}

struct Bounds {
    lo: Option<String>,
    hi: Option<String>,
    skip: Option<String>,
}

fn account_item(keys: &Keys<'_>, a: &Account) -> Result<Item, StoreError> {
    let mut item = key(keys.accounts(), a.id.clone());
    item.insert("type".into(), s("account"));
    item.insert("data".into(), to_json(a)?);
    Ok(item)
}

fn import_from_item(item: &Item) -> Result<StatementImport, StoreError> {
    let mut imp: StatementImport = from_json(item, "data")?;
    imp.transactions_imported = usize::try_from(get_n(item, "imported")?).unwrap_or(usize::MAX);
    imp.duplicates_skipped = usize::try_from(get_n(item, "duplicates")?).unwrap_or(usize::MAX);
    Ok(imp)
}

fn line_item(keys: &Keys<'_>, import_sha: &str, t: &StoredTransaction) -> Result<Item, StoreError> {
    let sort = date_key(t.transaction.booking_date, &t.id);
    let mut item = key(keys.line(&t.id), "TXN");
    item.insert("type".into(), s("txn"));
    item.insert("GSI1PK".into(), s(keys.lines_by_date(&t.account_id)));
    item.insert("GSI1SK".into(), s(sort.clone()));
    item.insert("GSI2PK".into(), s(keys.lines_by_status(&t.account_id, t.status)));
    item.insert("GSI2SK".into(), s(sort));
    item.insert("id".into(), s(t.id.clone()));
    item.insert("account_id".into(), s(t.account_id.clone()));
    item.insert("statement_id".into(), s(t.statement_id.clone()));
    item.insert("import_sha".into(), s(import_sha));
    item.insert("status".into(), s(t.status.as_str()));
    if let Some(m) = &t.match_id {
        item.insert("match_id".into(), s(m.clone()));
    }
    item.insert("txn".into(), to_json(&t.transaction)?);
    Ok(item)
}

fn line_from_item(item: &Item) -> Result<StoredTransaction, StoreError> {
    let transaction: BankTransaction = from_json(item, "txn")?;
    Ok(StoredTransaction {
        id: get_s(item, "id")?.to_string(),
        account_id: get_s(item, "account_id")?.to_string(),
        statement_id: get_s(item, "statement_id")?.to_string(),
        transaction,
        status: parse_status(item)?,
        match_id: opt_s(item, "match_id"),
    })
}

fn record_item(keys: &Keys<'_>, r: &StoredRecord) -> Result<Item, StoreError> {
    let sort = date_key(r.record.date, &r.record.id);
    let mut item = key(keys.record(&r.record.id), "REC");
    item.insert("type".into(), s("record"));
    item.insert("GSI1PK".into(), s(keys.records_by_date()));
    item.insert("GSI1SK".into(), s(sort.clone()));
    item.insert("GSI2PK".into(), s(keys.records_by_status(r.status)));
    item.insert("GSI2SK".into(), s(sort));
    item.insert("kind".into(), s(r.record.kind.as_str()));
    item.insert("status".into(), s(r.status.as_str()));
    item.insert("version".into(), n(r.version));
    if let Some(m) = &r.match_id {
        item.insert("match_id".into(), s(m.clone()));
    }
    item.insert("record".into(), to_json(&r.record)?);
    Ok(item)
}

fn record_from_item(item: &Item) -> Result<StoredRecord, StoreError> {
    Ok(StoredRecord {
        record: from_json(item, "record")?,
        status: parse_status(item)?,
        match_id: opt_s(item, "match_id"),
        version: get_n(item, "version")?,
    })
}

fn put(table: &str, item: Item, condition: &str, values: Option<Item>) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(values)
        .build()
        .map_err(StoreError::backend)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete(table: &str, key: Item, condition: &str, values: Option<Item>) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(condition)
        .set_expression_attribute_values(values)
        .build()
        .map_err(StoreError::backend)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn item_key(item: &Item) -> Item {
    item.iter().filter(|(k, _)| *k == PK || *k == SK).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn now_secs() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

#[async_trait]
impl AccountStore for DynamoStore {
    async fn create_account(&self, tenant: &TenantId, account: &Account) -> Result<(), StoreError> {
        let item = account_item(&Keys::of(tenant), account)?;
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
                Err(StoreError::Conflict(format!("account {} already exists", account.id)))
            }
            Err(e) => Err(self.err(e)),
        }
    }

    async fn get_account(&self, tenant: &TenantId, id: &str) -> Result<Account, StoreError> {
        if id.is_empty() {
            // DynamoDB refuses empty key values; no account has an empty id.
            return Err(StoreError::NotFound { what: "account", id: String::new() });
        }
        let item = self.get(key(Keys::of(tenant).accounts(), id)).await?;
        let item = item.ok_or_else(|| StoreError::NotFound { what: "account", id: id.to_string() })?;
        from_json(&item, "data")
    }

    async fn list_accounts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        let limit = page_size(limit);
        let cursor = cursor.filter(|c| !c.is_empty());
        let items = self
            .range(
                None,
                PK,
                Keys::of(tenant).accounts(),
                SK,
                cursor.map(str::to_string),
                None,
                None,
                limit + usize::from(cursor.is_some()),
            )
            .await?;
        let mut accounts = Vec::with_capacity(items.len());
        for item in &items {
            if cursor.is_some_and(|c| opt_s(item, SK).as_deref() == Some(c)) {
                continue;
            }
            accounts.push(from_json::<Account>(item, "data")?);
        }
        Ok(paginate(accounts, limit, |a| a.id.clone()))
    }
}

/// How one attempt at storing an import's lines went.
#[derive(Default)]
struct LineWrites {
    /// Keys of the lines this import owns (written now or by an earlier attempt at the same file).
    owned: Vec<Item>,
    imported: usize,
    duplicates: usize,
    /// Set when this attempt stepped back for a concurrent import of overlapping lines.
    stepped_back: bool,
}

impl DynamoStore {
    /// Claims the import item, waiting for (or taking over from) another attempt at the same file.
    /// Returns the owner token, or the finished import when another attempt completed it.
    async fn claim_import(
        &self,
        keys: &Keys<'_>,
        item: &Item,
        imp: &StatementImport,
    ) -> Result<Result<String, StatementImport>, StoreError> {
        let import_key = key(keys.imports(&imp.account_id), imp.file_sha256.clone());
        let waited_until = std::time::Instant::now() + self.lease + Duration::from_secs(5);
        let mut attempt = 0;
        loop {
            let owner = new_id("own");
            let mut claim = item.clone();
            claim.insert("owner".into(), s(owner.clone()));
            claim.insert("lease_until".into(), n(now_secs() + self.lease.as_secs()));
            let sent = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(claim))
                .condition_expression("attribute_not_exists(PK)")
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(Ok(owner)),
                Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(self.err(e)),
            }
            let Some(existing) = self.get(import_key.clone()).await? else {
                continue; // The other attempt failed and cleaned up: try again.
            };
            if get_s(&existing, "state")? == STATE_COMPLETE {
                return Ok(Err(import_from_item(&existing)?));
            }
            let lease_until = get_n(&existing, "lease_until")?;
            if lease_until <= now_secs() {
                // The other attempt stopped without finishing: take its import over.
                let old_owner = get_s(&existing, "owner")?.to_string();
                let taken = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(import_key.clone()))
                    .update_expression("SET #owner = :me, lease_until = :until")
                    .condition_expression("#owner = :old AND #state = :pending")
                    .expression_attribute_names("#owner", "owner")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":me", s(owner.clone()))
                    .expression_attribute_values(":old", s(old_owner))
                    .expression_attribute_values(":pending", s(STATE_PENDING))
                    .expression_attribute_values(":until", n(now_secs() + self.lease.as_secs()))
                    .send()
                    .await;
                match taken {
                    Ok(_) => return Ok(Ok(owner)),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                    Err(e) => return Err(self.err(e)),
                }
            }
            if std::time::Instant::now() > waited_until {
                return Err(StoreError::Conflict(format!("import {} is still being stored by another writer", imp.id)));
            }
            backoff(attempt.min(6)).await;
            attempt += 1;
        }
    }

    /// Writes the lines not stored yet, 100 per transaction, each conditional on its absence so
    /// that a stored line (perhaps matched since) is never overwritten.
    async fn write_lines(
        &self,
        keys: &Keys<'_>,
        imp: &StatementImport,
        lines: &[StoredTransaction],
        out: &mut LineWrites,
    ) -> Result<(), StoreError> {
        let deadline = std::time::Instant::now() + self.lease + Duration::from_secs(5);
        for chunk in lines.chunks(TRANSACTION_MAX) {
            let mut items = Vec::with_capacity(chunk.len());
            for t in chunk {
                items.push(line_item(keys, &imp.file_sha256, t)?);
            }
            let mut round = 0;
            while !items.is_empty() {
                if std::time::Instant::now() > deadline {
                    return Err(StoreError::Conflict(format!("the lines of import {} stayed contended", imp.id)));
                }
                if round > 0 {
                    backoff(round.min(6)).await;
                }
                round += 1;
                let ops = items
                    .iter()
                    .map(|i| put(&self.table, i.clone(), "attribute_not_exists(PK)", None))
                    .collect::<Result<Vec<_>, _>>()?;
                let Some(failed) = self.transact(ops).await? else {
                    out.owned.extend(items.iter().map(item_key));
                    out.imported += items.len();
                    break;
                };
                let (existing, rest): (Vec<_>, Vec<_>) = items.into_iter().zip(failed).partition(|(_, failed)| *failed);
                items = rest.into_iter().map(|(i, _)| i).collect();
                let stored = self.batch_get(existing.iter().map(|(i, _)| item_key(i)).collect()).await?;
                let mut states: HashMap<String, Option<Item>> = HashMap::new();
                let mut blocked: HashSet<String> = HashSet::new();
                for line in &stored {
                    let statement = get_s(line, "statement_id")?;
                    if statement == imp.id {
                        // Written by an earlier attempt at this same file.
                        out.owned.push(item_key(line));
                        out.imported += 1;
                        continue;
                    }
                    let sha = get_s(line, "import_sha")?.to_string();
                    if !states.contains_key(&sha) {
                        let account = get_s(line, "account_id")?;
                        let other = self.get(key(keys.imports(account), sha.clone())).await?;
                        states.insert(sha.clone(), other);
                    }
                    let other = states.get(&sha).and_then(Option::as_ref);
                    if other.and_then(|o| opt_s(o, "state")).as_deref() == Some(STATE_COMPLETE) {
                        out.duplicates += 1;
                        continue;
                    }
                    // Another import of an overlapping file is under way. Wait-die on the import
                    // id keeps two such imports from waiting on each other: the smaller id waits
                    // for the other to finish, the larger one steps back and starts over.
                    let expired = other.and_then(|o| get_n(o, "lease_until").ok()).is_some_and(|l| l <= now_secs());
                    if expired {
                        return Err(StoreError::Conflict(format!(
                            "transaction {} belongs to statement import {}, which was never completed; import that \
                             file again to complete it",
                            get_s(line, "id")?,
                            statement
                        )));
                    }
                    if imp.id.as_str() > statement {
                        out.stepped_back = true;
                        return Err(StoreError::Conflict(format!(
                            "statement import {statement} is storing the same lines at the same time"
                        )));
                    }
                    if let Some(pk) = opt_s(line, PK) {
                        blocked.insert(pk);
                    }
                }
                // Lines to try again: those blocked by an unfinished import, and those seen as
                // existing but gone by the read (their import was undone).
                let seen: HashSet<String> = stored.iter().filter_map(|l| opt_s(l, PK)).collect();
                for (i, _) in existing {
                    if opt_s(&i, PK).is_some_and(|pk| !seen.contains(&pk) || blocked.contains(&pk)) {
                        items.push(i);
                    }
                }
            }
        }
        Ok(())
    }

    async fn store_import(
        &self,
        keys: &Keys<'_>,
        imp: &StatementImport,
        lines: &[StoredTransaction],
        duplicates_in_file: usize,
        owner: &str,
        out: &mut LineWrites,
    ) -> Result<StatementImport, StoreError> {
        self.write_lines(keys, imp, lines, out).await?;
        let mut stored = imp.clone();
        stored.transactions_imported = out.imported;
        stored.duplicates_skipped = out.duplicates + duplicates_in_file;
        let done = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(keys.imports(&imp.account_id), imp.file_sha256.clone())))
            .update_expression(
                "SET #state = :complete, imported = :imported, duplicates = :duplicates REMOVE #owner, lease_until",
            )
            .condition_expression("#owner = :me AND #state = :pending")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":pending", s(STATE_PENDING))
            .expression_attribute_values(":complete", s(STATE_COMPLETE))
            .expression_attribute_values(":imported", n(stored.transactions_imported as u64))
            .expression_attribute_values(":duplicates", n(stored.duplicates_skipped as u64))
            .send()
            .await;
        match done {
            Ok(_) => Ok(stored),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                // Another attempt took the import over after our lease ran out; it owns the lines now.
                out.owned.clear();
                Err(StoreError::Conflict(format!("import {} was taken over by another writer", imp.id)))
            }
            Err(e) => Err(self.err(e)),
        }
    }

    /// Undoes a failed import: its lines, then the import item (only while this attempt owns it).
    async fn undo_import(&self, keys: &Keys<'_>, imp: &StatementImport, owner: &str, owned: Vec<Item>) {
        if self.delete_all(owned).await.is_err() {
            // The pending import stays: a retry of the same file completes or undoes it.
            return;
        }
        let _ = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys.imports(&imp.account_id), imp.file_sha256.clone())))
            .condition_expression("#owner = :me AND #state = :pending")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":pending", s(STATE_PENDING))
            .send()
            .await;
    }

    /// Whether each import (by its file hash, within `account`) is complete, read in one batch.
    async fn complete_imports(
        &self,
        keys: &Keys<'_>,
        account: &str,
        shas: HashSet<String>,
    ) -> Result<HashSet<String>, StoreError> {
        if shas.is_empty() {
            return Ok(HashSet::new());
        }
        let found = self.batch_get(shas.into_iter().map(|sha| key(keys.imports(account), sha)).collect()).await?;
        Ok(found
            .iter()
            .filter(|i| opt_s(i, "state").as_deref() == Some(STATE_COMPLETE))
            .filter_map(|i| opt_s(i, SK))
            .collect())
    }
}

#[async_trait]
impl LedgerStore for DynamoStore {
    async fn find_import(
        &self,
        tenant: &TenantId,
        account_id: &str,
        file_sha256: &str,
    ) -> Result<Option<StatementImport>, StoreError> {
        if file_sha256.is_empty() {
            return Ok(None);
        }
        let item = self.get(key(Keys::of(tenant).imports(account_id), file_sha256)).await?;
        match item {
            Some(i) if get_s(&i, "state")? == STATE_COMPLETE => Ok(Some(import_from_item(&i)?)),
            _ => Ok(None),
        }
    }

    async fn save_import(
        &self,
        tenant: &TenantId,
        import: &StatementImport,
        transactions: &[StoredTransaction],
    ) -> Result<StatementImport, StoreError> {
        let keys = Keys::of(tenant);
        let account = self.get_account(tenant, &import.account_id).await?;
        // Everything that can be refused is refused before the first write.
        let mut seen = HashSet::new();
        let mut lines = Vec::with_capacity(transactions.len());
        let mut duplicates_in_file = 0;
        for st in transactions {
            let t = &st.transaction;
            if t.amount.currency() != account.currency {
                return Err(StoreError::Invalid(format!(
                    "transaction {} is in {}, the account is in {}",
                    t.id,
                    t.amount.currency(),
                    account.currency
                )));
            }
            if seen.insert(st.id.as_str()) {
                let mut line = st.clone();
                line.account_id.clone_from(&import.account_id);
                line.statement_id.clone_from(&import.id);
                lines.push(line);
            } else {
                duplicates_in_file += 1;
            }
        }

        let mut pending = import.clone();
        pending.transactions_imported = 0;
        pending.duplicates_skipped = 0;
        let mut item = key(keys.imports(&import.account_id), import.file_sha256.clone());
        item.insert("type".into(), s("import"));
        item.insert("id".into(), s(import.id.clone()));
        item.insert("state".into(), s(STATE_PENDING));
        item.insert("imported".into(), n(0));
        item.insert("duplicates".into(), n(0));
        item.insert("data".into(), to_json(&pending)?);
        let mut attempt = 0;
        loop {
            let owner = match self.claim_import(&keys, &item, import).await? {
                Ok(owner) => owner,
                Err(mut existing) => {
                    existing.duplicates_skipped += existing.transactions_imported;
                    existing.transactions_imported = 0;
                    return Ok(existing);
                }
            };
            let mut out = LineWrites::default();
            match self.store_import(&keys, &pending, &lines, duplicates_in_file, &owner, &mut out).await {
                Ok(stored) => return Ok(stored),
                Err(e) => {
                    self.undo_import(&keys, import, &owner, out.owned).await;
                    if !out.stepped_back || attempt + 1 >= MAX_ATTEMPTS {
                        return Err(e);
                    }
                }
            }
            attempt += 1;
            backoff(attempt + 2).await;
        }
    }

    async fn list_imports(&self, tenant: &TenantId, account_id: &str) -> Result<Vec<StatementImport>, StoreError> {
        let keys = Keys::of(tenant);
        let filter = Filter {
            expression: "#state = :complete",
            name: ("#state", "state"),
            value: (":complete", s(STATE_COMPLETE)),
        };
        let items = self.range_all(None, keys.imports(account_id), Some(filter)).await?;
        let mut imports = items.iter().map(import_from_item).collect::<Result<Vec<_>, _>>()?;
        imports.sort_by(|a, b| {
            (a.start_date, a.end_date, a.imported_at, &a.id).cmp(&(b.start_date, b.end_date, b.imported_at, &b.id))
        });
        Ok(imports)
    }

    async fn list_transactions(
        &self,
        tenant: &TenantId,
        account_id: &str,
        query: &TransactionQuery,
    ) -> Result<Page<StoredTransaction>, StoreError> {
        let keys = Keys::of(tenant);
        let after = query.cursor.as_deref().map(split_cursor).transpose()?;
        let limit = page_size(query.limit);
        let bounds = date_bounds(query.from, query.to, after.as_ref());
        let (index, pk) = match query.status {
            Some(status) => (GSI2, keys.lines_by_status(account_id, status)),
            None => (GSI1, keys.lines_by_date(account_id)),
        };
        let sk_name = format!("{index}SK");
        let mut complete: HashSet<String> = HashSet::new();
        let mut checked: HashSet<String> = HashSet::new();
        let mut lo = bounds.lo.clone();
        let mut skip = bounds.skip.clone();
        let mut lines = Vec::new();
        // Lines of an unfinished import are invisible; skipping them may need more than one round.
        loop {
            let items = self
                .range(
                    Some(index),
                    &format!("{index}PK"),
                    pk.clone(),
                    &sk_name,
                    lo.clone(),
                    bounds.hi.clone(),
                    None,
                    limit + 1,
                )
                .await?;
            let exhausted = items.len() <= limit + 1;
            let unknown: HashSet<String> =
                items.iter().filter_map(|i| opt_s(i, "import_sha")).filter(|sha| !checked.contains(sha)).collect();
            checked.extend(unknown.iter().cloned());
            complete.extend(self.complete_imports(&keys, account_id, unknown).await?);
            let last = items.last().and_then(|i| opt_s(i, &sk_name));
            for item in &items {
                let sort = opt_s(item, &sk_name);
                if sort.is_some() && sort == skip {
                    continue;
                }
                if opt_s(item, "import_sha").is_some_and(|sha| complete.contains(&sha)) {
                    lines.push(line_from_item(item)?);
                }
            }
            if lines.len() > limit || exhausted || last.is_none() {
                break;
            }
            lo.clone_from(&last);
            skip = last;
        }
        Ok(paginate(lines, limit, |t| format!("{}~{}", t.transaction.booking_date, t.id)))
    }

    async fn get_transaction(&self, tenant: &TenantId, id: &str) -> Result<StoredTransaction, StoreError> {
        let keys = Keys::of(tenant);
        let not_found = || StoreError::NotFound { what: "transaction", id: id.to_string() };
        let item = self.get(key(keys.line(id), "TXN")).await?.ok_or_else(not_found)?;
        let line = line_from_item(&item)?;
        let sha = get_s(&item, "import_sha")?.to_string();
        if self.complete_imports(&keys, &line.account_id, HashSet::from([sha])).await?.is_empty() {
            return Err(not_found());
        }
        Ok(line)
    }
}

impl DynamoStore {
    /// Every item of one partition of the table, following `LastEvaluatedKey` to the end.
    async fn range_all(
        &self,
        index: Option<&str>,
        pk: String,
        filter: Option<Filter>,
    ) -> Result<Vec<Item>, StoreError> {
        let pk_name = index.map(|i| format!("{i}PK")).unwrap_or_else(|| PK.to_string());
        self.range(index, &pk_name, pk, SK, None, None, filter, usize::MAX - 1).await
    }
}

/// What an upsert does to one record.
enum Change {
    Insert(StoredRecord),
    Update { old_version: u64, new: StoredRecord },
}

#[async_trait]
impl RecordStore for DynamoStore {
    async fn upsert_records(&self, tenant: &TenantId, records: &[Record]) -> Result<RecordImportOutcome, StoreError> {
        let keys = Keys::of(tenant);
        let mut ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let stored = self.batch_get(ids.iter().map(|id| key(keys.record(id), "REC")).collect()).await?;
        let mut current: HashMap<String, (u64, StoredRecord)> = HashMap::new();
        for item in &stored {
            let r = record_from_item(item)?;
            current.insert(r.record.id.clone(), (r.version, r));
        }
        // Applied in order as the embedded store does, so a record repeated in one file counts
        // the way it would there; only the final state of each record is written.
        let mut outcome = RecordImportOutcome::default();
        let mut changes: HashMap<String, Change> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for r in records {
            let now = match changes.get(&r.id) {
                Some(Change::Insert(n)) | Some(Change::Update { new: n, .. }) => Some(n.clone()),
                None => current.get(&r.id).map(|(_, s)| s.clone()),
            };
            match now {
                Some(old) if old.record == *r => outcome.duplicates_skipped += 1,
                Some(old) if old.status == ItemStatus::Reconciled => {
                    return Err(StoreError::Conflict(format!(
                        "record {} is reconciled and cannot be changed (unlock its period first)",
                        r.id
                    )));
                }
                Some(old) => {
                    let new = StoredRecord { record: r.clone(), version: old.version + 1, ..old };
                    let change = match changes.remove(&r.id) {
                        Some(Change::Insert(_)) => Change::Insert(new),
                        Some(Change::Update { old_version, .. }) => Change::Update { old_version, new },
                        None => Change::Update { old_version: current.get(&r.id).map(|(v, _)| *v).unwrap_or(0), new },
                    };
                    if !order.contains(&r.id) {
                        order.push(r.id.clone());
                    }
                    changes.insert(r.id.clone(), change);
                    outcome.updated += 1;
                }
                None => {
                    let new =
                        StoredRecord { record: r.clone(), status: ItemStatus::Pending, match_id: None, version: 1 };
                    order.push(r.id.clone());
                    changes.insert(r.id.clone(), Change::Insert(new));
                    outcome.imported += 1;
                }
            }
        }
        let mut ops = Vec::with_capacity(order.len());
        let mut undo = Vec::with_capacity(order.len());
        for id in &order {
            let Some(change) = changes.get(id) else { continue };
            match change {
                Change::Insert(new) => {
                    ops.push(put(&self.table, record_item(&keys, new)?, "attribute_not_exists(PK)", None)?);
                    let values = HashMap::from([(":v".to_string(), n(new.version))]);
                    undo.push(delete(&self.table, key(keys.record(id), "REC"), "version = :v", Some(values))?);
                }
                Change::Update { old_version, new } => {
                    let values = HashMap::from([(":v".to_string(), n(*old_version))]);
                    ops.push(put(&self.table, record_item(&keys, new)?, "version = :v", Some(values))?);
                    let Some((_, old)) = current.get(id) else { continue };
                    let values = HashMap::from([(":v".to_string(), n(new.version))]);
                    undo.push(put(&self.table, record_item(&keys, old)?, "version = :v", Some(values))?);
                }
            }
        }
        // Each chunk is one transaction; a later chunk that fails undoes the earlier ones, each
        // undo conditional on the version written, so a change made since is never reverted.
        for (i, chunk) in ops.chunks(TRANSACTION_MAX).enumerate() {
            let failed = self.transact(chunk.to_vec()).await;
            if !matches!(failed, Ok(None)) {
                for done in undo.chunks(TRANSACTION_MAX).take(i) {
                    let _ = self.transact(done.to_vec()).await;
                }
                return match failed {
                    Err(e) => Err(e),
                    _ => Err(StoreError::Conflict("records were modified concurrently; nothing was written".into())),
                };
            }
        }
        Ok(outcome)
    }

    async fn get_record(&self, tenant: &TenantId, id: &str) -> Result<StoredRecord, StoreError> {
        let item = self.get(key(Keys::of(tenant).record(id), "REC")).await?;
        record_from_item(&item.ok_or_else(|| StoreError::NotFound { what: "record", id: id.to_string() })?)
    }

    async fn list_records(&self, tenant: &TenantId, query: &RecordQuery) -> Result<Page<StoredRecord>, StoreError> {
        let keys = Keys::of(tenant);
        let after = query.cursor.as_deref().map(split_cursor).transpose()?;
        let limit = page_size(query.limit);
        let bounds = date_bounds(query.from, query.to, after.as_ref());
        let (index, pk) = match query.status {
            Some(status) => (GSI2, keys.records_by_status(status)),
            None => (GSI1, keys.records_by_date()),
        };
        let filter = query.kind.map(|k| Filter {
            expression: "#kind = :kind",
            name: ("#kind", "kind"),
            value: (":kind", s(k.as_str())),
        });
        let sk_name = format!("{index}SK");
        let items = self
            .range(
                Some(index),
                &format!("{index}PK"),
                pk,
                &sk_name,
                bounds.lo,
                bounds.hi,
                filter,
                limit + usize::from(bounds.skip.is_some()),
            )
            .await?;
        let mut records = Vec::with_capacity(items.len());
        for item in &items {
            if bounds.skip.is_some() && opt_s(item, &sk_name) == bounds.skip {
                continue;
            }
            records.push(record_from_item(item)?);
        }
        Ok(paginate(records, limit, |r| format!("{}~{}", r.record.date, r.record.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money, RecordKind};
    use rust_decimal::Decimal;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default()
    }

    #[test]
    fn no_key_of_one_tenant_is_a_prefix_of_another_tenants_key() {
        let (a, ab) = (TenantId::new("a").unwrap(), TenantId::new("ab").unwrap());
        let (ka, kab) = (Keys::of(&a), Keys::of(&ab));
        let of = |k: &Keys<'_>| {
            vec![
                k.accounts(),
                k.imports("acc"),
                k.line("txn"),
                k.lines_by_date("acc"),
                k.lines_by_status("acc", ItemStatus::Pending),
                k.record("r"),
                k.records_by_date(),
                k.records_by_status(ItemStatus::Matched),
            ]
        };
        for x in of(&ka) {
            for y in of(&kab) {
                assert!(!x.starts_with(&format!("{y}#")) && !y.starts_with(&format!("{x}#")) && x != y, "{x} / {y}");
            }
            assert!(x.starts_with("T#a#"));
        }
    }

    #[test]
    fn date_bounds_start_at_the_later_of_filter_and_cursor_and_end_after_the_last_day() {
        let after = ("2026-03-05".to_string(), "txn_b".to_string());
        let b = date_bounds(Some(day(3)), Some(day(9)), Some(&after));
        assert_eq!(b.lo.as_deref(), Some("2026-03-05#txn_b"));
        assert_eq!(b.skip.as_deref(), Some("2026-03-05#txn_b"));
        let hi = b.hi.unwrap_or_default();
        assert!(date_key(day(9), "zzzz") < hi && hi < date_key(day(10), "0"));
        let b = date_bounds(Some(day(7)), None, Some(&after));
        assert_eq!(b.lo.as_deref(), Some("2026-03-07"));
        assert!(b.lo.as_deref() < Some(date_key(day(7), "a").as_str()));
    }

    #[test]
    fn a_page_that_ends_the_listing_carries_no_cursor() {
        let full = paginate(vec![1, 2], 2, |i| i.to_string());
        assert_eq!(full.cursor, None);
        let more = paginate(vec![1, 2, 3], 2, |i| i.to_string());
        assert_eq!((more.items, more.cursor), (vec![1, 2], Some("2".to_string())));
    }

    #[test]
    fn lines_and_records_read_back_exactly_as_written() {
        let t = TenantId::new("t1").unwrap();
        let keys = Keys::of(&t);
        let mut txn = BankTransaction::new(day(4), Money::new(Decimal::new(-123_456, 3), Currency::EUR));
        txn.id = "F1".into();
        txn.description = "Coffee, ünïcode".into();
        let line = StoredTransaction {
            id: "txn_1".into(),
            account_id: "acc_1".into(),
            statement_id: "stm_1".into(),
            transaction: txn,
            status: ItemStatus::Matched,
            match_id: Some("mat_1".into()),
        };
        let item = line_item(&keys, "abc", &line).unwrap();
        assert_eq!(line_from_item(&item).unwrap(), line);
        assert_eq!(opt_s(&item, "GSI2PK").as_deref(), Some("T#t1#A#acc_1#TXN#matched"));

        let record = StoredRecord {
            record: Record {
                id: "INV-1".into(),
                kind: RecordKind::Invoice,
                date: day(1),
                due_date: Some(day(30)),
                amount: Money::new(Decimal::new(1000, 2), Currency::EUR),
                counterparty: Some("Acme".into()),
                reference: None,
                description: None,
            },
            status: ItemStatus::Pending,
            match_id: None,
            version: 7,
        };
        let item = record_item(&keys, &record).unwrap();
        assert_eq!(record_from_item(&item).unwrap(), record);
        assert_eq!(opt_s(&item, "GSI1SK").as_deref(), Some("2026-03-01#INV-1"));
    }

    #[test]
    fn an_item_missing_an_attribute_is_reported_not_panicked_on() {
        let item: Item = HashMap::from([("id".to_string(), s("txn_1")), ("version".to_string(), s("x"))]);
        assert!(matches!(line_from_item(&item), Err(StoreError::Backend(_))));
        assert!(matches!(record_from_item(&item), Err(StoreError::Backend(_))));
        assert!(matches!(get_n(&item, "version"), Err(StoreError::Backend(_))));
    }
}
