//! Reconciliation state on DynamoDB: runs, matches and their claims, discrepancies, rule
//! versions, the learned memory, the audit trail and API keys.
//!
//! A claim is the `match_id` attribute of a bank line or record item, set by an update whose
//! condition is `attribute_not_exists(match_id)`, in the same TransactWriteItems call as the
//! match that takes it; so two live matches can never hold one item, whatever runs concurrently.
//! `docs/dynamodb.md` describes how a run larger than one transaction commits all or nothing.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{
    backoff, date_bounds, date_key, from_json, get_n, get_s, key, line_from_item, n, opt_s, paginate, s, to_json,
    DynamoStore, Filter, Item, Keys, GSI1, GSI2, MAX_ATTEMPTS, PK, SK, TRANSACTION_MAX,
};
use crate::store::keys::{ApiKey, KeyHash, KeyStore};
use crate::store::model::{new_id, ItemStatus, Page, TenantId};
use crate::store::recon::{
    AuditEvent, Discrepancy, DiscrepancyKind, DiscrepancyStore, MatchAction, MatchState, ReconStore, Resolution,
    ResolutionAction, RuleStore, RuleVersion, Run, RunOutcome, RunStatus, StoredMatch,
};
use crate::store::{page_size, split_cursor, StoreError};

/// How long a run stays locked by a `finish_run` that may have died before another may finish it.
const FINISH_LEASE: Duration = Duration::from_secs(15 * 60);
/// How often a write is retried when only the audit counter moved under it.
const COUNTER_ATTEMPTS: u32 = 60;

/// Attribute names that are DynamoDB reserved words or read better aliased; an expression names
/// only those it uses (DynamoDB refuses unused names).
const NAMES: [(&str, &str); 7] = [
    ("#status", "status"),
    ("#state", "state"),
    ("#data", "data"),
    ("#note", "note"),
    ("#seq", "seq"),
    ("#active", "active"),
    ("#latest", "latest"),
];

impl Keys<'_> {
    fn run(&self, id: &str) -> String {
        format!("T#{}#RUN#{id}", self.tenant)
    }

    fn account_runs(&self, account: &str) -> String {
        format!("T#{}#A#{account}#RUN", self.tenant)
    }

    fn run_matches(&self, run: &str) -> String {
        format!("T#{}#RUN#{run}#MATCH", self.tenant)
    }

    fn a_match(&self, id: &str) -> String {
        format!("T#{}#MATCH#{id}", self.tenant)
    }

    fn matches_by_state(&self, account: &str, state: MatchState) -> String {
        format!("T#{}#A#{account}#MATCH#{}", self.tenant, state.as_str())
    }

    fn discrepancy(&self, id: &str) -> String {
        format!("T#{}#DIS#{id}", self.tenant)
    }

    fn discrepancies(&self) -> String {
        format!("T#{}#DIS", self.tenant)
    }

    fn account_discrepancies(&self, account: &str) -> String {
        format!("T#{}#A#{account}#DIS", self.tenant)
    }

    fn rules(&self) -> String {
        format!("T#{}#RULES", self.tenant)
    }

    fn rule_versions(&self, name: &str) -> String {
        format!("T#{}#RULE#{name}", self.tenant)
    }

    fn memory(&self) -> String {
        format!("T#{}#MEMORY", self.tenant)
    }

    fn audit(&self) -> String {
        format!("T#{}#AUDIT", self.tenant)
    }

    fn audit_counter(&self) -> String {
        format!("T#{}#AUDITSEQ", self.tenant)
    }

    fn audit_of(&self, entity_id: &str) -> String {
        format!("T#{}#AUDIT#{entity_id}", self.tenant)
    }
}

/// Whether `text` mentions `token` as a whole name (`:v` is not mentioned by `:vn`).
fn uses(text: &str, token: &str) -> bool {
    text.match_indices(token).any(|(i, _)| {
        text.get(i + token.len()..)
            .and_then(|rest| rest.chars().next())
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// The names and values of an expression, keeping only those it uses.
fn expression_parts(
    text: &str,
    values: Vec<(&str, AttributeValue)>,
) -> (Option<HashMap<String, String>>, Option<Item>) {
    let names: HashMap<String, String> =
        NAMES.iter().filter(|(alias, _)| uses(text, alias)).map(|(a, n)| (a.to_string(), n.to_string())).collect();
    let values: Item = values.into_iter().filter(|(k, _)| uses(text, k)).map(|(k, v)| (k.to_string(), v)).collect();
    (Some(names).filter(|m| !m.is_empty()), Some(values).filter(|m| !m.is_empty()))
}

fn update_op(
    table: &str,
    key: Item,
    update: &str,
    condition: Option<&str>,
    values: Vec<(&str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let (names, values) = expression_parts(&format!("{update} {}", condition.unwrap_or("")), values);
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(update)
        .set_condition_expression(condition.map(str::to_string))
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .build()
        .map_err(StoreError::backend)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

fn put_op(
    table: &str,
    item: Item,
    condition: &str,
    values: Vec<(&str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let (names, values) = expression_parts(condition, values);
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .build()
        .map_err(StoreError::backend)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete_op(table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder().table_name(table).set_key(Some(key)).build().map_err(StoreError::backend)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn check_op(
    table: &str,
    key: Item,
    condition: &str,
    values: Vec<(&str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let (names, values) = expression_parts(condition, values);
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(condition)
        .set_expression_attribute_names(names)
        .set_expression_attribute_values(values)
        .build()
        .map_err(StoreError::backend)?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|_| super::corrupt("time", text))
}

fn seq_key(seq: u64) -> String {
    format!("{seq:020}")
}

/// One audit event to append with a write.
struct Audit {
    actor: String,
    entity: &'static str,
    entity_id: String,
    action: String,
    before: serde_json::Value,
    after: serde_json::Value,
}

fn run_item(keys: &Keys<'_>, run: &Run) -> Result<Item, StoreError> {
    let mut item = key(keys.run(&run.id), "RUN");
    item.insert("type".into(), s("run"));
    item.insert("account_id".into(), s(run.account_id.clone()));
    item.insert("version".into(), n(run.version));
    item.insert("data".into(), to_json(run)?);
    item.insert("GSI1PK".into(), s(keys.account_runs(&run.account_id)));
    item.insert("GSI1SK".into(), s(run_sort_key(run)));
    Ok(item)
}

/// Sorts an account's runs newest first in an ascending query: microseconds before the end of
/// time, zero-padded, then the id.
fn run_sort_key(run: &Run) -> String {
    let age = i64::MAX.saturating_sub(run.created_at.timestamp_micros().max(0));
    format!("{age:020}#{}", run.id)
}

fn run_from_item(item: &Item) -> Result<Run, StoreError> {
    let mut run: Run = from_json(item, "data")?;
    run.version = get_n(item, "version")?;
    Ok(run)
}

fn match_item(keys: &Keys<'_>, m: &StoredMatch) -> Result<Item, StoreError> {
    let mut item = key(keys.a_match(&m.id), "MATCH");
    item.insert("type".into(), s("match"));
    if let Some(run) = &m.run_id {
        item.insert("GSI1PK".into(), s(keys.run_matches(run)));
        item.insert("GSI1SK".into(), s(m.id.clone()));
    }
    item.insert("GSI2PK".into(), s(keys.matches_by_state(&m.account_id, m.state)));
    item.insert("GSI2SK".into(), s(m.id.clone()));
    item.insert("state".into(), s(m.state.as_str()));
    item.insert("version".into(), n(m.version));
    item.insert("updated_at".into(), s(m.updated_at.to_rfc3339()));
    if let Some(note) = &m.note {
        item.insert("note".into(), s(note.clone()));
    }
    item.insert("data".into(), to_json(m)?);
    Ok(item)
}

/// A match as stored: the JSON as created, with the attributes later changes update in place.
fn match_from_item(item: &Item) -> Result<StoredMatch, StoreError> {
    let mut m: StoredMatch = from_json(item, "data")?;
    let state = get_s(item, "state")?;
    m.state = state.parse().map_err(|_| super::corrupt("match state", state))?;
    m.version = get_n(item, "version")?;
    m.updated_at = parse_time(get_s(item, "updated_at")?)?;
    m.note = opt_s(item, "note");
    // The embedded store lists a match's items in id order; so does this one.
    m.bank_transaction_ids.sort();
    m.record_ids.sort();
    Ok(m)
}

fn discrepancy_item(keys: &Keys<'_>, d: &Discrepancy) -> Result<Item, StoreError> {
    let sort = date_key(d.date, &d.id);
    let mut item = key(keys.discrepancy(&d.id), "DIS");
    item.insert("type".into(), s("discrepancy"));
    item.insert("GSI1PK".into(), s(keys.discrepancies()));
    item.insert("GSI1SK".into(), s(sort.clone()));
    item.insert("GSI2PK".into(), s(keys.account_discrepancies(&d.account_id)));
    item.insert("GSI2SK".into(), s(sort));
    item.insert("status".into(), s(if d.resolution.is_some() { "resolved" } else { "open" }));
    item.insert("version".into(), n(d.version));
    item.insert("data".into(), to_json(d)?);
    Ok(item)
}

fn discrepancy_from_item(item: &Item) -> Result<Discrepancy, StoreError> {
    let mut d: Discrepancy = from_json(item, "data")?;
    d.version = get_n(item, "version")?;
    Ok(d)
}

fn rule_item(keys: &Keys<'_>, r: &RuleVersion) -> Result<Item, StoreError> {
    let mut item = key(keys.rule_versions(&r.name), seq_key(r.version));
    item.insert("type".into(), s("rule"));
    item.insert("data".into(), to_json(r)?);
    Ok(item)
}

/// A rule version; whether it is active is the rule head's to say.
fn rule_from_item(item: &Item, active: u64) -> Result<RuleVersion, StoreError> {
    let mut r: RuleVersion = from_json(item, "data")?;
    r.active = r.version == active;
    Ok(r)
}

/// What one operation of a transaction does, to explain why it was refused.
#[derive(Debug, Clone)]
enum Op {
    Other,
    NewMatch(String),
    NewDiscrepancy(String),
    Claim { what: &'static str, id: String },
    MatchVersion(String),
    RunLock(String),
}

/// The bank lines and records of one or more matches, read before writing.
#[derive(Default)]
struct Items {
    lines: HashMap<String, Item>,
    records: HashMap<String, Item>,
}

/// A unit of work that goes into one transaction whole, with what undoes it.
struct Group {
    ops: Vec<(TransactWriteItem, Op)>,
    undo: Vec<TransactWriteItem>,
    audit: Option<Audit>,
}

impl DynamoStore {
    async fn load_run(&self, keys: &Keys<'_>, id: &str) -> Result<Run, StoreError> {
        let not_found = || StoreError::NotFound { what: "reconciliation", id: id.to_string() };
        if id.is_empty() {
            return Err(not_found());
        }
        run_from_item(&self.get(key(keys.run(id), "RUN")).await?.ok_or_else(not_found)?)
    }

    async fn load_match(&self, keys: &Keys<'_>, id: &str) -> Result<StoredMatch, StoreError> {
        let not_found = || StoreError::NotFound { what: "match", id: id.to_string() };
        if id.is_empty() {
            return Err(not_found());
        }
        match_from_item(&self.get(key(keys.a_match(id), "MATCH")).await?.ok_or_else(not_found)?)
    }

    async fn load_discrepancy(&self, keys: &Keys<'_>, id: &str) -> Result<Discrepancy, StoreError> {
        let not_found = || StoreError::NotFound { what: "discrepancy", id: id.to_string() };
        if id.is_empty() {
            return Err(not_found());
        }
        discrepancy_from_item(&self.get(key(keys.discrepancy(id), "DIS")).await?.ok_or_else(not_found)?)
    }

    /// Runs `ops` with `audits` appended to the tenant's trail in the same transaction. The
    /// trail's counter item is part of the transaction, so sequence numbers are gap-free per
    /// commit and increasing; when only the counter moved (another writer appended first), the
    /// transaction is sent again with fresh numbers. Returns the keys of the events written, or
    /// which of `ops` failed their condition.
    async fn commit(
        &self,
        keys: &Keys<'_>,
        ops: Vec<TransactWriteItem>,
        audits: &[Audit],
    ) -> Result<Result<Vec<Item>, Vec<bool>>, StoreError> {
        if ops.len() + audits.len() + 1 > TRANSACTION_MAX {
            return Err(StoreError::Invalid(format!(
                "one change of {} items is more than a DynamoDB transaction holds",
                ops.len() + audits.len()
            )));
        }
        if audits.is_empty() {
            return Ok(match self.transact(ops).await? {
                None => Ok(Vec::new()),
                Some(failed) => Err(failed),
            });
        }
        let counter_key = key(keys.audit_counter(), "SEQ");
        for attempt in 0..COUNTER_ATTEMPTS {
            let current = self.get(counter_key.clone()).await?;
            let last = current.as_ref().map(|c| get_n(c, "seq")).transpose()?;
            let next = last.unwrap_or(0) + audits.len() as u64;
            let condition = if last.is_some() { "#seq = :old" } else { "attribute_not_exists(PK)" };
            let mut items = ops.clone();
            items.push(update_op(
                &self.table,
                counter_key.clone(),
                "SET #seq = :new",
                Some(condition),
                vec![(":old", n(last.unwrap_or(0))), (":new", n(next))],
            )?);
            let mut event_keys = Vec::with_capacity(audits.len());
            for (i, a) in audits.iter().enumerate() {
                let seq = last.unwrap_or(0) + i as u64 + 1;
                let event = AuditEvent {
                    seq,
                    at: Utc::now(),
                    actor: a.actor.clone(),
                    entity: a.entity.to_string(),
                    entity_id: a.entity_id.clone(),
                    action: a.action.clone(),
                    before: a.before.clone(),
                    after: a.after.clone(),
                };
                let mut item = key(keys.audit(), seq_key(seq));
                event_keys.push(item.clone());
                item.insert("type".into(), s("audit"));
                item.insert("GSI1PK".into(), s(keys.audit_of(&a.entity_id)));
                item.insert("GSI1SK".into(), s(seq_key(seq)));
                item.insert("data".into(), to_json(&event)?);
                items.push(put_op(&self.table, item, "attribute_not_exists(PK)", vec![])?);
            }
            match self.transact(items).await? {
                None => return Ok(Ok(event_keys)),
                Some(failed) => {
                    let mine: Vec<bool> = failed.iter().take(ops.len()).copied().collect();
                    if mine.iter().any(|f| *f) {
                        return Ok(Err(mine));
                    }
                }
            }
            backoff(attempt.min(5)).await;
        }
        Err(StoreError::Conflict("the audit trail is too busy; try again".into()))
    }

    /// Reads the bank lines and records of `matches`; `NotFound` for the first that does not
    /// exist for this tenant.
    async fn read_items(&self, keys: &Keys<'_>, matches: &[&StoredMatch]) -> Result<Items, StoreError> {
        let mut line_ids: Vec<&str> =
            matches.iter().flat_map(|m| m.bank_transaction_ids.iter()).map(|s| s.as_str()).collect();
        let mut record_ids: Vec<&str> = matches.iter().flat_map(|m| m.record_ids.iter()).map(|s| s.as_str()).collect();
        for (what, ids) in [("transaction", &line_ids), ("record", &record_ids)] {
            if let Some(id) = ids.iter().find(|id| id.is_empty()) {
                return Err(StoreError::NotFound { what, id: id.to_string() });
            }
        }
        line_ids.sort_unstable();
        line_ids.dedup();
        record_ids.sort_unstable();
        record_ids.dedup();
        let mut items = Items::default();
        for item in self.batch_get(line_ids.iter().map(|id| key(keys.line(id), "TXN")).collect()).await? {
            items.lines.insert(get_s(&item, "id")?.to_string(), item);
        }
        for item in self.batch_get(record_ids.iter().map(|id| key(keys.record(id), "REC")).collect()).await? {
            let record: crate::domain::Record = from_json(&item, "record")?;
            items.records.insert(record.id, item);
        }
        for m in matches {
            if let Some(id) = m.bank_transaction_ids.iter().find(|id| !items.lines.contains_key(*id)) {
                return Err(StoreError::NotFound { what: "transaction", id: id.clone() });
            }
            if let Some(id) = m.record_ids.iter().find(|id| !items.records.contains_key(*id)) {
                return Err(StoreError::NotFound { what: "record", id: id.clone() });
            }
        }
        Ok(items)
    }

    /// The GSI2 key of a line in `status`.
    fn line_status_key(keys: &Keys<'_>, items: &Items, id: &str, status: ItemStatus) -> Result<String, StoreError> {
        let item =
            items.lines.get(id).ok_or_else(|| StoreError::NotFound { what: "transaction", id: id.to_string() })?;
        Ok(keys.lines_by_status(get_s(item, "account_id")?, status))
    }

    /// Updates of every item of `m`: `Claim` takes them (absent claim, not reconciled), otherwise
    /// they must be held by `m` and get `status` (releasing the claim when `release`).
    fn item_ops(
        &self,
        keys: &Keys<'_>,
        items: &Items,
        m: &StoredMatch,
        status: ItemStatus,
        mode: ItemChange,
    ) -> Result<Vec<(TransactWriteItem, Op)>, StoreError> {
        let mut ops = Vec::new();
        for (what, ids) in [("transaction", &m.bank_transaction_ids), ("record", &m.record_ids)] {
            for id in ids {
                // A record's version guards the books' upserts against lost updates.
                let status = if mode == ItemChange::Undo {
                    // Back to what it was before the claim this undoes.
                    let read = if what == "transaction" { items.lines.get(id) } else { items.records.get(id) };
                    read.and_then(|i| opt_s(i, "status")).and_then(|v| v.parse().ok()).unwrap_or(ItemStatus::Pending)
                } else {
                    status
                };
                let (item_key, gsi2, bump) = if what == "transaction" {
                    (key(keys.line(id), "TXN"), Self::line_status_key(keys, items, id, status)?, "")
                } else {
                    (key(keys.record(id), "REC"), keys.records_by_status(status), ", version = version + :one")
                };
                let values = vec![
                    (":m", s(m.id.clone())),
                    (":st", s(status.as_str())),
                    (":g", s(gsi2)),
                    (":rec", s(ItemStatus::Reconciled.as_str())),
                    (":one", n(1)),
                ];
                let (update, condition) = match mode {
                    ItemChange::Claim => (
                        format!("SET match_id = :m, #status = :st, GSI2PK = :g{bump}"),
                        "attribute_exists(PK) AND attribute_not_exists(match_id) AND #status <> :rec",
                    ),
                    ItemChange::Release | ItemChange::Undo => {
                        (format!("SET #status = :st, GSI2PK = :g{bump} REMOVE match_id"), "match_id = :m")
                    }
                    ItemChange::Restatus => (format!("SET #status = :st, GSI2PK = :g{bump}"), "match_id = :m"),
                };
                let op = update_op(&self.table, item_key, &update, Some(condition), values)?;
                ops.push((op, Op::Claim { what, id: id.clone() }));
            }
        }
        Ok(ops)
    }

    /// The update of a match item to `after` (its state, note, time and version), conditional on
    /// the version read.
    fn match_update(
        &self,
        keys: &Keys<'_>,
        before: &StoredMatch,
        after: &StoredMatch,
        reconciled_in: Option<Option<&str>>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut set = "SET #state = :state, GSI2PK = :g, updated_at = :at, version = :new".to_string();
        if after.note.is_some() {
            set.push_str(", #note = :note");
        }
        match reconciled_in {
            Some(Some(_)) => set.push_str(", reconciled_in = :run"),
            Some(None) => set.push_str(" REMOVE reconciled_in"),
            None => {}
        }
        let values = vec![
            (":state", s(after.state.as_str())),
            (":g", s(keys.matches_by_state(&after.account_id, after.state))),
            (":at", s(after.updated_at.to_rfc3339())),
            (":new", n(after.version)),
            (":old", n(before.version)),
            (":note", s(after.note.clone().unwrap_or_default())),
            (":run", s(reconciled_in.flatten().unwrap_or_default())),
        ];
        update_op(&self.table, key(keys.a_match(&after.id), "MATCH"), &set, Some("version = :old"), values)
    }

    /// Says why operation `op` failed its condition.
    async fn explain(&self, keys: &Keys<'_>, op: &Op) -> StoreError {
        match op {
            Op::NewMatch(id) => StoreError::Conflict(format!("match {id} already exists")),
            Op::NewDiscrepancy(id) => StoreError::Conflict(format!("discrepancy {id} already exists")),
            Op::MatchVersion(id) => StoreError::Conflict(format!("match {id} was changed concurrently")),
            Op::RunLock(id) => StoreError::Conflict(format!("reconciliation {id} was changed concurrently")),
            Op::Other => StoreError::Conflict("the change conflicts with a concurrent one".into()),
            Op::Claim { what, id } => {
                let item_key =
                    if *what == "transaction" { key(keys.line(id), "TXN") } else { key(keys.record(id), "REC") };
                match self.get(item_key).await {
                    Err(e) => e,
                    Ok(None) => StoreError::NotFound { what, id: id.clone() },
                    Ok(Some(item)) => match opt_s(&item, "match_id") {
                        Some(other) => StoreError::Conflict(format!("{what} {id} is already in live match {other}")),
                        None => StoreError::Conflict(format!("{what} {id} is reconciled and locked")),
                    },
                }
            }
        }
    }

    /// Runs groups in as few transactions as fit, each with `guard` (when given) first. When one
    /// fails, the transactions already committed are undone and their audit events removed, so
    /// nothing of the change stays visible.
    async fn commit_groups(
        &self,
        keys: &Keys<'_>,
        guard: Option<(TransactWriteItem, Op)>,
        groups: Vec<Group>,
    ) -> Result<Vec<(Vec<TransactWriteItem>, Vec<Item>)>, StoreError> {
        let mut done: Vec<(Vec<TransactWriteItem>, Vec<Item>)> = Vec::new();
        let mut chunk: Vec<Group> = Vec::new();
        let size = |g: &Group| g.ops.len() + usize::from(g.audit.is_some());
        let fixed = 1 + usize::from(guard.is_some());
        let mut pending = groups.into_iter().peekable();
        loop {
            let mut used = fixed;
            while let Some(g) = pending.peek() {
                if !chunk.is_empty() && used + size(g) > TRANSACTION_MAX {
                    break;
                }
                used += size(g);
                if let Some(g) = pending.next() {
                    chunk.push(g);
                }
            }
            if chunk.is_empty() {
                return Ok(done);
            }
            let mut ops: Vec<(TransactWriteItem, Op)> = guard.iter().cloned().collect();
            let mut undo = Vec::new();
            let mut audits = Vec::new();
            for g in chunk.drain(..) {
                ops.extend(g.ops);
                undo.extend(g.undo);
                audits.extend(g.audit);
            }
            let (writes, meanings): (Vec<_>, Vec<_>) = ops.into_iter().unzip();
            let result = self.commit(keys, writes, &audits).await;
            let failure = match result {
                Ok(Ok(events)) => {
                    done.push((undo, events));
                    continue;
                }
                Ok(Err(failed)) => {
                    let first =
                        failed.iter().position(|f| *f).and_then(|i| meanings.get(i)).cloned().unwrap_or(Op::Other);
                    self.explain(keys, &first).await
                }
                Err(e) => e,
            };
            self.undo(done).await;
            return Err(failure);
        }
    }

    /// Best-effort undo of committed transactions, newest first; each undo is conditional on the
    /// state this change left, so a later change by someone else is never reverted.
    async fn undo(&self, done: Vec<(Vec<TransactWriteItem>, Vec<Item>)>) {
        for (undo, events) in done.into_iter().rev() {
            for part in undo.chunks(TRANSACTION_MAX) {
                if !matches!(self.transact(part.to_vec()).await, Ok(None)) {
                    tracing::warn!(store.table = %self.table, "undo of a refused change was incomplete");
                }
            }
            if self.delete_all(events).await.is_err() {
                tracing::warn!(store.table = %self.table, "audit events of a refused change were left behind");
            }
        }
    }

    /// One conditional update outside a transaction; `false` when its condition failed.
    async fn update_if(
        &self,
        item_key: Item,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let (names, values) = expression_parts(&format!("{update} {condition}"), values);
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item_key))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The update that stores `run` as its next version, conditional on the version read (and on
    /// holding the finish lock when `lock` is given, which it releases).
    fn run_write(
        &self,
        keys: &Keys<'_>,
        run: &Run,
        lock: Option<&str>,
        locked_manual: Option<&[String]>,
    ) -> Result<(TransactWriteItem, Run), StoreError> {
        let mut next = run.clone();
        next.version = run.version + 1;
        let mut set = "SET #data = :data, version = :new".to_string();
        let mut remove = Vec::new();
        match locked_manual {
            Some(ids) if !ids.is_empty() => set.push_str(", locked_manual = :locked"),
            Some(_) => remove.push("locked_manual"),
            None => {}
        }
        let mut condition = "version = :old".to_string();
        if lock.is_some() {
            condition.push_str(" AND finishing = :tok");
            remove.extend(["finishing", "finishing_until"]);
        }
        if !remove.is_empty() {
            set.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let values = vec![
            (":data", to_json(&next)?),
            (":new", n(next.version)),
            (":old", n(run.version)),
            (":tok", s(lock.unwrap_or_default())),
            (":locked", to_json(&locked_manual.unwrap_or_default())?),
        ];
        Ok((update_op(&self.table, key(keys.run(&run.id), "RUN"), &set, Some(&condition), values)?, next))
    }

    /// Stores `run` as its next version.
    async fn store_run(
        &self,
        keys: &Keys<'_>,
        run: &Run,
        audits: &[Audit],
        locked: Option<&[String]>,
    ) -> Result<Run, StoreError> {
        let (op, next) = self.run_write(keys, run, None, locked)?;
        match self.commit(keys, vec![op], audits).await? {
            Ok(_) => Ok(next),
            Err(_) => {
                let stored = self.load_run(keys, &run.id).await?;
                Err(StoreError::Conflict(format!(
                    "reconciliation {} was changed concurrently (version {}, expected {})",
                    run.id, stored.version, run.version
                )))
            }
        }
    }

    /// Every item of a partition of an index, optionally filtered.
    async fn index_all(&self, index: &str, pk: String, filter: Option<Filter>) -> Result<Vec<Item>, StoreError> {
        self.range(Some(index), &format!("{index}PK"), pk, &format!("{index}SK"), None, None, filter, usize::MAX - 1)
            .await
    }
}

/// How an item of a match changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemChange {
    Claim,
    Release,
    Restatus,
    /// A release back to the status read before the claim.
    Undo,
}

fn status_filter(status: &'static str) -> Filter {
    Filter { expression: "#status = :status", name: ("#status", "status"), value: (":status", s(status)) }
}

#[async_trait]
impl ReconStore for DynamoStore {
    async fn create_run(&self, tenant: &TenantId, run: &Run) -> Result<(), StoreError> {
        let keys = Keys::of(tenant);
        self.get_account_item(&keys, &run.account_id).await?;
        let op = put_op(&self.table, run_item(&keys, run)?, "attribute_not_exists(PK)", vec![])?;
        let audit = Audit {
            actor: run.created_by.clone(),
            entity: "reconciliation",
            entity_id: run.id.clone(),
            action: "reconciliation.started".into(),
            before: serde_json::Value::Null,
            after: json(run),
        };
        match self.commit(&keys, vec![op], &[audit]).await? {
            Ok(_) => Ok(()),
            Err(_) => Err(StoreError::Conflict(format!("reconciliation {} already exists", run.id))),
        }
    }

    async fn get_run(&self, tenant: &TenantId, id: &str) -> Result<Run, StoreError> {
        self.load_run(&Keys::of(tenant), id).await
    }

    async fn list_runs(
        &self,
        tenant: &TenantId,
        account_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Run>, StoreError> {
        let keys = Keys::of(tenant);
        let limit = page_size(limit);
        let cursor = cursor.filter(|c| !c.is_empty());
        let items = self
            .range(
                Some(GSI1),
                "GSI1PK",
                keys.account_runs(account_id),
                "GSI1SK",
                cursor.map(str::to_string),
                None,
                None,
                limit + usize::from(cursor.is_some()),
            )
            .await?;
        let mut runs = Vec::with_capacity(items.len());
        for item in &items {
            if cursor.is_some() && opt_s(item, "GSI1SK").as_deref() == cursor {
                continue;
            }
            runs.push(run_from_item(item)?);
        }
        Ok(paginate(runs, limit, run_sort_key))
    }

    async fn finish_run(&self, tenant: &TenantId, run: &Run, outcome: &RunOutcome) -> Result<Run, StoreError> {
        let keys = Keys::of(tenant);
        let before = self.load_run(&keys, &run.id).await?;
        if before.version != run.version {
            return Err(StoreError::Conflict(format!(
                "reconciliation {} was changed concurrently (version {}, expected {})",
                run.id, before.version, run.version
            )));
        }
        // What a single SQL transaction would refuse half-way is refused before any write.
        let mut ids = HashSet::new();
        let mut claimed = HashSet::new();
        for m in &outcome.matches {
            if !ids.insert(("match", m.id.as_str())) {
                return Err(StoreError::Conflict(format!("match {} already exists", m.id)));
            }
            if m.state.is_live() {
                for (what, id) in m
                    .bank_transaction_ids
                    .iter()
                    .map(|id| ("transaction", id))
                    .chain(m.record_ids.iter().map(|id| ("record", id)))
                {
                    if !claimed.insert((what, id.as_str())) {
                        return Err(StoreError::Conflict(format!("{what} {id} is already in live match")));
                    }
                }
            }
        }
        for d in &outcome.discrepancies {
            if !ids.insert(("discrepancy", d.id.as_str())) {
                return Err(StoreError::Conflict(format!("discrepancy {} already exists", d.id)));
            }
        }
        let live: Vec<&StoredMatch> = outcome.matches.iter().filter(|m| m.state.is_live()).collect();
        let items = self.read_items(&keys, &live).await?;

        // The run lock: one finisher at a time, and a stale run version is refused up front.
        let token = new_id("fin");
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        let locked = self
            .update_if(
                key(keys.run(&run.id), "RUN"),
                "SET finishing = :tok, finishing_until = :until",
                "version = :v AND (attribute_not_exists(finishing) OR finishing_until < :now)",
                vec![
                    (":tok", s(token.clone())),
                    (":until", n(now + FINISH_LEASE.as_secs())),
                    (":v", n(run.version)),
                    (":now", n(now)),
                ],
            )
            .await?;
        if !locked {
            return Err(StoreError::Conflict(format!(
                "reconciliation {} is being finished or was changed concurrently",
                run.id
            )));
        }
        let result = self.finish_locked(&keys, &before, run, outcome, &items, &token).await;
        if result.is_err() {
            let _ = self
                .update_if(
                    key(keys.run(&run.id), "RUN"),
                    "REMOVE finishing, finishing_until",
                    "finishing = :tok",
                    vec![(":tok", s(token))],
                )
                .await;
        }
        result
    }

    async fn update_run(&self, tenant: &TenantId, run: &Run) -> Result<Run, StoreError> {
        let keys = Keys::of(tenant);
        self.load_run(&keys, &run.id).await?;
        self.store_run(&keys, run, &[], None).await
    }

    async fn get_match(&self, tenant: &TenantId, id: &str) -> Result<StoredMatch, StoreError> {
        self.load_match(&Keys::of(tenant), id).await
    }

    async fn list_matches(
        &self,
        tenant: &TenantId,
        run_id: &str,
        state: Option<MatchState>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<StoredMatch>, StoreError> {
        let keys = Keys::of(tenant);
        let limit = page_size(limit);
        let cursor = cursor.filter(|c| !c.is_empty());
        if run_id.is_empty() {
            return Ok(Page { items: Vec::new(), cursor: None });
        }
        let filter = state.map(|st| Filter {
            expression: "#state = :state",
            name: ("#state", "state"),
            value: (":state", s(st.as_str())),
        });
        let items = self
            .range(
                Some(GSI1),
                "GSI1PK",
                keys.run_matches(run_id),
                "GSI1SK",
                cursor.map(str::to_string),
                None,
                filter,
                limit + usize::from(cursor.is_some()),
            )
            .await?;
        let mut matches = Vec::with_capacity(items.len());
        for item in &items {
            if cursor.is_some() && opt_s(item, "GSI1SK").as_deref() == cursor {
                continue;
            }
            matches.push(match_from_item(item)?);
        }
        Ok(paginate(matches, limit, |m| m.id.clone()))
    }

    async fn insert_match(&self, tenant: &TenantId, m: &StoredMatch) -> Result<(), StoreError> {
        let keys = Keys::of(tenant);
        let mut ops = vec![(
            put_op(&self.table, match_item(&keys, m)?, "attribute_not_exists(PK)", vec![])?,
            Op::NewMatch(m.id.clone()),
        )];
        if m.state.is_live() {
            let items = self.read_items(&keys, &[m]).await?;
            ops.extend(self.item_ops(&keys, &items, m, m.claimed_item_status(), ItemChange::Claim)?);
        }
        let audit = Audit {
            actor: m.created_by.clone(),
            entity: "match",
            entity_id: m.id.clone(),
            action: "match.created".into(),
            before: serde_json::Value::Null,
            after: json(m),
        };
        self.commit_groups(&keys, None, vec![Group { ops, undo: Vec::new(), audit: Some(audit) }]).await?;
        Ok(())
    }

    async fn apply_match_action(
        &self,
        tenant: &TenantId,
        id: &str,
        action: MatchAction,
        actor: &str,
        note: Option<&str>,
    ) -> Result<StoredMatch, StoreError> {
        let keys = Keys::of(tenant);
        let before = self.load_match(&keys, id).await?;
        let after = action.apply(&before, note)?;
        let mut ops = vec![(self.match_update(&keys, &before, &after, None)?, Op::MatchVersion(id.to_string()))];
        let change = match (before.state.is_live(), after.state.is_live()) {
            (false, true) => Some((ItemChange::Claim, after.claimed_item_status())),
            (true, false) => Some((ItemChange::Release, ItemStatus::Unmatched)),
            (true, true) => Some((ItemChange::Restatus, after.claimed_item_status())),
            (false, false) => None,
        };
        if let Some((mode, status)) = change {
            let items = self.read_items(&keys, &[&before]).await?;
            ops.extend(self.item_ops(&keys, &items, &after, status, mode)?);
        }
        let audit = Audit {
            actor: actor.to_string(),
            entity: "match",
            entity_id: id.to_string(),
            action: action.audit_name().into(),
            before: json(&before),
            after: json(&after),
        };
        self.commit_groups(&keys, None, vec![Group { ops, undo: Vec::new(), audit: Some(audit) }]).await?;
        Ok(after)
    }

    async fn rejected_pairs(
        &self,
        tenant: &TenantId,
        account_id: &str,
    ) -> Result<Vec<(Vec<String>, Vec<String>)>, StoreError> {
        let keys = Keys::of(tenant);
        if account_id.is_empty() {
            return Ok(Vec::new());
        }
        let items = self.index_all(GSI2, keys.matches_by_state(account_id, MatchState::Rejected), None).await?;
        items.iter().map(|i| match_from_item(i).map(|m| (m.bank_transaction_ids, m.record_ids))).collect()
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        entity_id: Option<&str>,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let keys = Keys::of(tenant);
        let limit = page_size(limit);
        let lo = Some(seq_key(after_seq.saturating_add(1)));
        let items = match entity_id {
            Some("") => Vec::new(),
            Some(entity) => {
                self.range(Some(GSI1), "GSI1PK", keys.audit_of(entity), "GSI1SK", lo, None, None, limit).await?
            }
            None => self.range(None, PK, keys.audit(), SK, lo, None, None, limit).await?,
        };
        items.iter().take(limit).map(|i| from_json::<AuditEvent>(i, "data")).collect()
    }
}

impl DynamoStore {
    async fn get_account_item(&self, keys: &Keys<'_>, account: &str) -> Result<(), StoreError> {
        let missing = || StoreError::NotFound { what: "account", id: account.to_string() };
        if account.is_empty() {
            return Err(missing());
        }
        self.get(key(keys.accounts(), account)).await?.map(|_| ()).ok_or_else(missing)
    }

    /// `finish_run` once the run lock is held: claims first (undone if any is refused), then the
    /// changes that cannot be refused, then the run itself, which releases the lock.
    async fn finish_locked(
        &self,
        keys: &Keys<'_>,
        before: &Run,
        run: &Run,
        outcome: &RunOutcome,
        items: &Items,
        token: &str,
    ) -> Result<Run, StoreError> {
        let guard = (
            check_op(&self.table, key(keys.run(&run.id), "RUN"), "finishing = :tok", vec![(":tok", s(token))])?,
            Op::RunLock(run.id.clone()),
        );
        let mut groups = Vec::new();
        for m in &outcome.matches {
            let mut ops = vec![(
                put_op(&self.table, match_item(keys, m)?, "attribute_not_exists(PK)", vec![])?,
                Op::NewMatch(m.id.clone()),
            )];
            let mut undo = vec![delete_op(&self.table, key(keys.a_match(&m.id), "MATCH"))?];
            if m.state.is_live() {
                ops.extend(self.item_ops(keys, items, m, m.claimed_item_status(), ItemChange::Claim)?);
                undo.extend(
                    self.item_ops(keys, items, m, ItemStatus::Pending, ItemChange::Undo)?.into_iter().map(|(op, _)| op),
                );
            }
            let audit = Audit {
                actor: run.created_by.clone(),
                entity: "match",
                entity_id: m.id.clone(),
                action: "match.created".into(),
                before: serde_json::Value::Null,
                after: json(m),
            };
            groups.push(Group { ops, undo, audit: Some(audit) });
        }
        for d in &outcome.discrepancies {
            groups.push(Group {
                ops: vec![(
                    put_op(&self.table, discrepancy_item(keys, d)?, "attribute_not_exists(PK)", vec![])?,
                    Op::NewDiscrepancy(d.id.clone()),
                )],
                undo: vec![delete_op(&self.table, key(keys.discrepancy(&d.id), "DIS"))?],
                audit: None,
            });
        }
        let done = self.commit_groups(keys, Some(guard), groups).await?;

        // Nothing below can be refused by another writer's claim; it only tidies up state.
        let now = Utc::now();
        let ours: HashSet<&str> = outcome.matches.iter().map(|m| m.id.as_str()).collect();
        let suggested =
            self.index_all(GSI2, keys.matches_by_state(&run.account_id, MatchState::Suggested), None).await?;
        for item in &suggested {
            let m = match_from_item(item)?;
            if ours.contains(m.id.as_str()) {
                continue;
            }
            self.update_if(
                key(keys.a_match(&m.id), "MATCH"),
                "SET #state = :sup, GSI2PK = :g, updated_at = :at, version = version + :one",
                "#state = :sugg",
                vec![
                    (":sup", s(MatchState::Superseded.as_str())),
                    (":g", s(keys.matches_by_state(&m.account_id, MatchState::Superseded))),
                    (":at", s(now.to_rfc3339())),
                    (":one", n(1)),
                    (":sugg", s(MatchState::Suggested.as_str())),
                ],
            )
            .await?;
        }
        let unmatched = Items {
            lines: self
                .batch_get(
                    outcome
                        .unmatched_transactions
                        .iter()
                        .filter(|i| !i.is_empty())
                        .map(|id| key(keys.line(id), "TXN"))
                        .collect(),
                )
                .await?
                .into_iter()
                .filter_map(|i| opt_s(&i, "id").map(|id| (id, i)))
                .collect(),
            records: HashMap::new(),
        };
        let mark = "attribute_exists(PK) AND attribute_not_exists(match_id) AND #status IN (:pending, :unm)";
        for id in &outcome.unmatched_transactions {
            if !unmatched.lines.contains_key(id) {
                continue;
            }
            let g = Self::line_status_key(keys, &unmatched, id, ItemStatus::Unmatched)?;
            self.update_if(
                key(keys.line(id), "TXN"),
                "SET #status = :unm, GSI2PK = :g",
                mark,
                vec![(":unm", s("unmatched")), (":pending", s("pending")), (":g", s(g))],
            )
            .await?;
        }
        for id in outcome.unmatched_records.iter().filter(|i| !i.is_empty()) {
            self.update_if(
                key(keys.record(id), "REC"),
                "SET #status = :unm, GSI2PK = :g, version = version + :one",
                mark,
                vec![
                    (":unm", s("unmatched")),
                    (":pending", s("pending")),
                    (":g", s(keys.records_by_status(ItemStatus::Unmatched))),
                    (":one", n(1)),
                ],
            )
            .await?;
        }
        // This run's view replaces earlier runs' open "missing" discrepancies of the account;
        // amount mismatches stay with their (still live) matches.
        let open =
            self.index_all(GSI2, keys.account_discrepancies(&run.account_id), Some(status_filter("open"))).await?;
        for item in &open {
            let d = discrepancy_from_item(item)?;
            let earlier = d.run_id.as_deref().is_some_and(|r| r != run.id);
            if !earlier || !matches!(d.kind, DiscrepancyKind::MissingInBooks | DiscrepancyKind::MissingInBank) {
                continue;
            }
            let mut after = d.clone();
            after.resolution = Some(Resolution {
                action: ResolutionAction::Ignore,
                account: None,
                note: format!("superseded by reconciliation {}", run.id),
                record_id: None,
                resolved_by: run.created_by.clone(),
                resolved_at: now,
            });
            after.version += 1;
            let op = put_op(&self.table, discrepancy_item(keys, &after)?, "version = :v", vec![(":v", n(d.version))])?;
            self.transact(vec![op]).await?;
        }

        let (op, next) = self.run_write(keys, run, Some(token), None)?;
        let audit = Audit {
            actor: run.created_by.clone(),
            entity: "reconciliation",
            entity_id: run.id.clone(),
            action: "reconciliation.finished".into(),
            before: json(before),
            after: json(&next),
        };
        match self.commit(keys, vec![op], &[audit]).await {
            Ok(Ok(_)) => Ok(next),
            Ok(Err(_)) => {
                self.undo(done).await;
                Err(StoreError::Conflict(format!("reconciliation {} was changed concurrently", run.id)))
            }
            Err(e) => {
                self.undo(done).await;
                Err(e)
            }
        }
    }

    /// Moves `matches` and their items to a new state, in transactions of whole matches.
    async fn restate(
        &self,
        keys: &Keys<'_>,
        matches: &[StoredMatch],
        state: MatchState,
        reconciled_in: Option<&str>,
    ) -> Result<(), StoreError> {
        let all: Vec<&StoredMatch> = matches.iter().collect();
        let items = self.read_items(keys, &all).await?;
        let now = Utc::now();
        let mut groups = Vec::new();
        for m in matches {
            let mut after = m.clone();
            after.state = state;
            after.updated_at = now;
            after.version += 1;
            let status = if state == MatchState::Reconciled {
                ItemStatus::Reconciled
            } else if m.difference.is_zero() {
                ItemStatus::Matched
            } else {
                ItemStatus::Discrepancy
            };
            let mut ops =
                vec![(self.match_update(keys, m, &after, Some(reconciled_in))?, Op::MatchVersion(m.id.clone()))];
            ops.extend(self.item_ops(keys, &items, m, status, ItemChange::Restatus)?);
            groups.push(Group { ops, undo: Vec::new(), audit: None });
        }
        self.commit_groups(keys, None, groups).await.map(|_| ())
    }
}

#[async_trait]
impl DiscrepancyStore for DynamoStore {
    async fn add_discrepancies(&self, tenant: &TenantId, items: &[Discrepancy], actor: &str) -> Result<(), StoreError> {
        let keys = Keys::of(tenant);
        let mut groups = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for d in items {
            if !seen.insert(d.id.as_str()) {
                return Err(StoreError::Conflict(format!("discrepancy {} already exists", d.id)));
            }
            groups.push(Group {
                ops: vec![(
                    put_op(&self.table, discrepancy_item(&keys, d)?, "attribute_not_exists(PK)", vec![])?,
                    Op::NewDiscrepancy(d.id.clone()),
                )],
                undo: vec![delete_op(&self.table, key(keys.discrepancy(&d.id), "DIS"))?],
                audit: Some(Audit {
                    actor: actor.to_string(),
                    entity: "discrepancy",
                    entity_id: d.id.clone(),
                    action: "discrepancy.raised".into(),
                    before: serde_json::Value::Null,
                    after: json(d),
                }),
            });
        }
        self.commit_groups(&keys, None, groups).await.map(|_| ())
    }

    async fn get_discrepancy(&self, tenant: &TenantId, id: &str) -> Result<Discrepancy, StoreError> {
        self.load_discrepancy(&Keys::of(tenant), id).await
    }

    async fn list_discrepancies(
        &self,
        tenant: &TenantId,
        account_id: Option<&str>,
        open: Option<bool>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Discrepancy>, StoreError> {
        let keys = Keys::of(tenant);
        let after = cursor.map(split_cursor).transpose()?;
        let limit = page_size(limit);
        let bounds = date_bounds(None, None, after.as_ref());
        let (index, pk) = match account_id {
            Some("") => return Ok(Page { items: Vec::new(), cursor: None }),
            Some(acc) => (GSI2, keys.account_discrepancies(acc)),
            None => (GSI1, keys.discrepancies()),
        };
        let filter = open.map(|o| status_filter(if o { "open" } else { "resolved" }));
        let sk_name = format!("{index}SK");
        let items = self
            .range(
                Some(index),
                &format!("{index}PK"),
                pk,
                &sk_name,
                bounds.lo,
                None,
                filter,
                limit + usize::from(bounds.skip.is_some()),
            )
            .await?;
        let mut found = Vec::with_capacity(items.len());
        for item in &items {
            if bounds.skip.is_some() && opt_s(item, &sk_name) == bounds.skip {
                continue;
            }
            found.push(discrepancy_from_item(item)?);
        }
        Ok(paginate(found, limit, |d| format!("{}~{}", d.date, d.id)))
    }

    async fn resolve_discrepancy(
        &self,
        tenant: &TenantId,
        id: &str,
        resolution: &Resolution,
    ) -> Result<Discrepancy, StoreError> {
        let keys = Keys::of(tenant);
        let before = self.load_discrepancy(&keys, id).await?;
        if before.resolution.is_some() {
            return Err(StoreError::Conflict(format!("discrepancy {id} is already resolved")));
        }
        let mut after = before.clone();
        after.resolution = Some(resolution.clone());
        after.version += 1;
        let op =
            put_op(&self.table, discrepancy_item(&keys, &after)?, "version = :v", vec![(":v", n(before.version))])?;
        let audit = Audit {
            actor: resolution.resolved_by.clone(),
            entity: "discrepancy",
            entity_id: id.to_string(),
            action: "discrepancy.resolved".into(),
            before: json(&before),
            after: json(&after),
        };
        match self.commit(&keys, vec![op], &[audit]).await? {
            Ok(_) => Ok(after),
            Err(_) => Err(StoreError::Conflict(format!("discrepancy {id} was changed concurrently"))),
        }
    }

    async fn complete_run(
        &self,
        tenant: &TenantId,
        run_id: &str,
        override_reason: Option<&str>,
        actor: &str,
    ) -> Result<Run, StoreError> {
        let keys = Keys::of(tenant);
        let before = self.load_run(&keys, run_id).await?;
        if before.status != RunStatus::Completed {
            return Err(StoreError::Conflict(format!(
                "reconciliation {run_id} is {} and cannot be completed",
                before.status.as_str()
            )));
        }
        let open = self
            .range(
                Some(GSI2),
                "GSI2PK",
                keys.account_discrepancies(&before.account_id),
                "GSI2SK",
                None,
                Some(format!("{}$", before.end_date)),
                Some(status_filter("open")),
                usize::MAX - 1,
            )
            .await?
            .len();
        if open > 0 && override_reason.is_none_or(|r| r.trim().is_empty()) {
            return Err(StoreError::Conflict(format!(
                "{open} open discrepancies up to {}; resolve them or complete with an override reason",
                before.end_date
            )));
        }
        // Lock: this run's live matches, and the account's live manual matches with a line inside
        // the period.
        let mut lock = Vec::new();
        for item in self.index_all(GSI1, keys.run_matches(run_id), None).await? {
            let m = match_from_item(&item)?;
            if m.state.is_live() && m.state != MatchState::Reconciled {
                lock.push(m);
            }
        }
        let mut manual = Vec::new();
        for state in [MatchState::Matched, MatchState::Discrepancy, MatchState::Confirmed, MatchState::Manual] {
            for item in self.index_all(GSI2, keys.matches_by_state(&before.account_id, state), None).await? {
                let m = match_from_item(&item)?;
                if m.run_id.is_none() {
                    manual.push(m);
                }
            }
        }
        let refs: Vec<&StoredMatch> = manual.iter().collect();
        let items = self.read_items(&keys, &refs).await?;
        let mut locked_manual = Vec::new();
        for m in manual {
            let inside = m.bank_transaction_ids.iter().any(|id| {
                items
                    .lines
                    .get(id)
                    .and_then(|i| line_from_item(i).ok())
                    .is_some_and(|l| l.transaction.booking_date <= before.end_date)
            });
            if inside {
                locked_manual.push(m.id.clone());
                lock.push(m);
            }
        }
        self.restate(&keys, &lock, MatchState::Reconciled, Some(run_id)).await?;
        let mut run = before.clone();
        run.status = RunStatus::Reconciled;
        let mut after = json(&Run { version: run.version + 1, ..run.clone() });
        after["override_reason"] = json(&override_reason);
        let audit = Audit {
            actor: actor.to_string(),
            entity: "reconciliation",
            entity_id: run_id.to_string(),
            action: "reconciliation.completed".into(),
            before: json(&before),
            after,
        };
        self.store_run(&keys, &run, &[audit], Some(&locked_manual)).await
    }

    async fn unlock_run(&self, tenant: &TenantId, run_id: &str, reason: &str, actor: &str) -> Result<Run, StoreError> {
        let keys = Keys::of(tenant);
        let before = self.load_run(&keys, run_id).await?;
        if before.status != RunStatus::Reconciled {
            return Err(StoreError::Conflict(format!("reconciliation {run_id} is not reconciled")));
        }
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid("unlocking needs a reason".into()));
        }
        let run_item = self.get(key(keys.run(run_id), "RUN")).await?;
        let manual: Vec<String> = match run_item.as_ref().and_then(|i| opt_s(i, "locked_manual")) {
            Some(text) => serde_json::from_str(&text).map_err(|e| super::corrupt("locked_manual", e))?,
            None => Vec::new(),
        };
        let mut candidates = self.index_all(GSI1, keys.run_matches(run_id), None).await?;
        candidates.extend(self.batch_get(manual.iter().map(|id| key(keys.a_match(id), "MATCH")).collect()).await?);
        let mut locked = Vec::new();
        for item in &candidates {
            if opt_s(item, "reconciled_in").as_deref() == Some(run_id) {
                locked.push(match_from_item(item)?);
            }
        }
        self.restate(&keys, &locked, MatchState::Confirmed, None).await?;
        let mut run = before.clone();
        run.status = RunStatus::Completed;
        let mut after = json(&Run { version: run.version + 1, ..run.clone() });
        after["unlock_reason"] = serde_json::Value::String(reason.to_string());
        let audit = Audit {
            actor: actor.to_string(),
            entity: "reconciliation",
            entity_id: run_id.to_string(),
            action: "reconciliation.unlocked".into(),
            before: json(&before),
            after,
        };
        self.store_run(&keys, &run, &[audit], Some(&[])).await
    }
}

/// The audit of a rule change keeps which version is active, not the whole script.
fn rule_audit(actor: &str, action: &str, before: Option<(&str, u64)>, after: &RuleVersion) -> Audit {
    let brief = |name: &str, version: u64| serde_json::json!({ "name": name, "version": version });
    Audit {
        actor: actor.to_string(),
        entity: "rule",
        entity_id: after.name.clone(),
        action: action.to_string(),
        before: before.map(|(n, v)| brief(n, v)).unwrap_or(serde_json::Value::Null),
        after: brief(&after.name, after.version),
    }
}

/// A rule's head item: its latest and active versions, and its own version for optimistic
/// concurrency.
struct Head {
    latest: u64,
    active: u64,
    version: u64,
}

impl DynamoStore {
    async fn rule_head(&self, keys: &Keys<'_>, name: &str) -> Result<Option<Head>, StoreError> {
        if name.is_empty() {
            return Ok(None);
        }
        let Some(item) = self.get(key(keys.rules(), name)).await? else { return Ok(None) };
        Ok(Some(Head {
            latest: get_n(&item, "latest")?,
            active: get_n(&item, "active")?,
            version: get_n(&item, "version")?,
        }))
    }

    /// The head update to `latest`/`active`, conditional on the head read.
    fn head_write(
        &self,
        keys: &Keys<'_>,
        name: &str,
        head: Option<&Head>,
        latest: u64,
        active: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = key(keys.rules(), name);
        item.insert("type".into(), s("rule_head"));
        item.insert("latest".into(), n(latest));
        item.insert("active".into(), n(active));
        item.insert("version".into(), n(head.map_or(1, |h| h.version + 1)));
        match head {
            Some(h) => put_op(&self.table, item, "version = :v", vec![(":v", n(h.version))]),
            None => put_op(&self.table, item, "attribute_not_exists(PK)", vec![]),
        }
    }
}

#[async_trait]
impl RuleStore for DynamoStore {
    async fn save_rule(
        &self,
        tenant: &TenantId,
        name: &str,
        source: &str,
        actor: &str,
    ) -> Result<RuleVersion, StoreError> {
        let keys = Keys::of(tenant);
        if name.is_empty() {
            return Err(StoreError::Invalid("a rule needs a name".into()));
        }
        // Concurrent saves of one rule are serialised by the head's version: the loser retries
        // with the next number, as the embedded store's lock would make it wait.
        for attempt in 0..MAX_ATTEMPTS {
            let head = self.rule_head(&keys, name).await?;
            let saved = RuleVersion {
                name: name.to_string(),
                version: head.as_ref().map_or(0, |h| h.latest) + 1,
                source: source.to_string(),
                active: true,
                created_by: actor.to_string(),
                created_at: Utc::now(),
            };
            let ops = vec![
                put_op(&self.table, rule_item(&keys, &saved)?, "attribute_not_exists(PK)", vec![])?,
                self.head_write(&keys, name, head.as_ref(), saved.version, saved.version)?,
            ];
            let audit = rule_audit(actor, "rule.saved", head.as_ref().map(|h| (name, h.active)), &saved);
            if self.commit(&keys, ops, &[audit]).await?.is_ok() {
                return Ok(saved);
            }
            backoff(attempt).await;
        }
        Err(StoreError::Conflict(format!("rule {name} is being changed concurrently")))
    }

    async fn active_rules(&self, tenant: &TenantId) -> Result<Vec<RuleVersion>, StoreError> {
        let keys = Keys::of(tenant);
        let heads = self.range_all(None, keys.rules(), None).await?;
        let mut wanted = Vec::with_capacity(heads.len());
        let mut active = HashMap::new();
        for h in &heads {
            let name = get_s(h, SK)?.to_string();
            let v = get_n(h, "active")?;
            wanted.push(key(keys.rule_versions(&name), seq_key(v)));
            active.insert(name, v);
        }
        let mut rules = Vec::with_capacity(wanted.len());
        for item in self.batch_get(wanted).await? {
            let r: RuleVersion = from_json(&item, "data")?;
            let v = active.get(&r.name).copied().unwrap_or(0);
            rules.push(rule_from_item(&item, v)?);
        }
        rules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rules)
    }

    async fn rule_versions(&self, tenant: &TenantId, name: &str) -> Result<Vec<RuleVersion>, StoreError> {
        let keys = Keys::of(tenant);
        let not_found = || StoreError::NotFound { what: "rule", id: name.to_string() };
        let head = self.rule_head(&keys, name).await?.ok_or_else(not_found)?;
        let items = self.range_all(None, keys.rule_versions(name), None).await?;
        let mut versions = items.iter().map(|i| rule_from_item(i, head.active)).collect::<Result<Vec<_>, _>>()?;
        versions.sort_by_key(|v| std::cmp::Reverse(v.version));
        if versions.is_empty() {
            return Err(not_found());
        }
        Ok(versions)
    }

    async fn activate_rule(
        &self,
        tenant: &TenantId,
        name: &str,
        version: u64,
        actor: &str,
    ) -> Result<RuleVersion, StoreError> {
        let keys = Keys::of(tenant);
        let not_found = || StoreError::NotFound { what: "rule version", id: format!("{name} v{version}") };
        if name.is_empty() {
            return Err(not_found());
        }
        let target = self.get(key(keys.rule_versions(name), seq_key(version))).await?.ok_or_else(not_found)?;
        for attempt in 0..MAX_ATTEMPTS {
            let head = self.rule_head(&keys, name).await?.ok_or_else(not_found)?;
            let after = rule_from_item(&target, version)?;
            let ops = vec![self.head_write(&keys, name, Some(&head), head.latest, version)?];
            let audit = rule_audit(actor, "rule.rolled_back", Some((name, head.active)), &after);
            if self.commit(&keys, ops, &[audit]).await?.is_ok() {
                return Ok(after);
            }
            backoff(attempt).await;
        }
        Err(StoreError::Conflict(format!("rule {name} is being changed concurrently")))
    }

    async fn load_memory(&self, tenant: &TenantId) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let keys = Keys::of(tenant);
        let Some(item) = self.get(key(keys.memory(), "MEMORY")).await? else { return Ok(None) };
        let bytes = match item.get("json") {
            Some(AttributeValue::B(b)) => b.clone().into_inner(),
            _ => return Err(super::corrupt("memory", "attribute json is missing")),
        };
        Ok(Some((bytes, get_n(&item, "version")?)))
    }

    async fn save_memory(&self, tenant: &TenantId, memory: &[u8], expected: u64) -> Result<u64, StoreError> {
        let keys = Keys::of(tenant);
        let mut item = key(keys.memory(), "MEMORY");
        item.insert("type".into(), s("memory"));
        item.insert("json".into(), AttributeValue::B(memory.to_vec().into()));
        item.insert("version".into(), n(expected + 1));
        let op = if expected == 0 {
            put_op(&self.table, item, "attribute_not_exists(PK)", vec![])?
        } else {
            put_op(&self.table, item, "version = :v", vec![(":v", n(expected))])?
        };
        match self.transact(vec![op]).await? {
            None => Ok(expected + 1),
            Some(_) => Err(StoreError::Conflict("the learned memory was changed concurrently".into())),
        }
    }
}

/// API keys are looked up by hash before any tenant is known, so their items are the one kind
/// whose partition key does not start with the tenant; the tenant is an attribute of the item.
#[async_trait]
impl KeyStore for DynamoStore {
    async fn insert_key(&self, key_: &ApiKey, hash: &KeyHash) -> Result<(), StoreError> {
        let mut by_hash = key(format!("KEY#{}", hash.as_str()), "KEY");
        by_hash.insert("type".into(), s("api_key"));
        by_hash.insert("id".into(), s(key_.id.clone()));
        by_hash.insert("tenant".into(), s(key_.tenant.as_str()));
        by_hash.insert("created_at".into(), s(key_.created_at.to_rfc3339()));
        let mut by_id = key(format!("KEYID#{}", key_.id), "KEYID");
        by_id.insert("type".into(), s("api_key_id"));
        let ops = vec![
            put_op(&self.table, by_hash, "attribute_not_exists(PK)", vec![])?,
            put_op(&self.table, by_id, "attribute_not_exists(PK)", vec![])?,
        ];
        match self.transact(ops).await? {
            None => Ok(()),
            Some(_) => Err(StoreError::Conflict(format!("key {} already exists", key_.id))),
        }
    }

    async fn find_key(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        let Some(item) = self.get(key(format!("KEY#{}", hash.as_str()), "KEY")).await? else { return Ok(None) };
        let id = get_s(&item, "id")?.to_string();
        let tenant = get_s(&item, "tenant")?;
        Ok(Some(ApiKey {
            tenant: TenantId::new(tenant).map_err(|_| super::corrupt("key tenant", tenant))?,
            created_at: parse_time(get_s(&item, "created_at")?)?,
            id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matching::Method;
    use rust_decimal::Decimal;

    #[test]
    fn an_expression_names_a_value_only_when_it_uses_it_whole() {
        assert!(uses("version = :v", ":v"));
        assert!(!uses("version = :vn", ":v"));
        assert!(uses("SET #status = :st, GSI2PK = :g", "#status"));
        let (names, values) = expression_parts("SET #state = :a", vec![(":a", n(1)), (":b", n(2))]);
        assert_eq!(names.map(|m| m.len()), Some(1));
        assert_eq!(values.map(|m| m.keys().cloned().collect::<Vec<_>>()), Some(vec![":a".to_string()]));
        assert_eq!(expression_parts("attribute_not_exists(PK)", vec![]), (None, None));
    }

    #[test]
    fn the_new_keys_keep_every_tenant_apart() {
        let (a, ab) = (TenantId::new("a").unwrap(), TenantId::new("ab").unwrap());
        let of = |t: &TenantId| {
            let k = Keys::of(t);
            vec![
                k.run("r"),
                k.run_matches("r"),
                k.a_match("m"),
                k.matches_by_state("acc", MatchState::Suggested),
                k.discrepancy("d"),
                k.discrepancies(),
                k.account_discrepancies("acc"),
                k.rules(),
                k.rule_versions("fees"),
                k.memory(),
                k.audit(),
                k.audit_counter(),
                k.audit_of("m"),
            ]
        };
        for x in of(&a) {
            assert!(x.starts_with("T#a#"), "{x}");
            for y in of(&ab) {
                assert!(!y.starts_with("T#a#"), "{y}");
                assert_ne!(x, y);
            }
        }
    }

    #[test]
    fn a_match_reads_back_with_the_state_and_version_changed_in_place() {
        let t = TenantId::new("t1").unwrap();
        let keys = Keys::of(&t);
        let m = StoredMatch {
            id: "mat_1".into(),
            run_id: Some("rec_1".into()),
            account_id: "acc_1".into(),
            state: MatchState::Suggested,
            bank_transaction_ids: vec!["txn_b".into(), "txn_a".into()],
            record_ids: vec!["R1".into()],
            confidence: 0.7310585786300049,
            method: Method::Score,
            rule: None,
            difference: Decimal::new(-250, 2),
            explanation: Default::default(),
            note: None,
            created_by: "cli".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 1,
        };
        let mut item = match_item(&keys, &m).unwrap();
        assert_eq!(opt_s(&item, "GSI2PK").as_deref(), Some("T#t1#A#acc_1#MATCH#suggested"));
        item.insert("state".into(), s("confirmed"));
        item.insert("version".into(), n(2));
        item.insert("note".into(), s("ok"));
        let back = match_from_item(&item).unwrap();
        assert_eq!((back.state, back.version, back.note.as_deref()), (MatchState::Confirmed, 2, Some("ok")));
        assert_eq!(back.bank_transaction_ids, ["txn_a", "txn_b"]);
        assert_eq!((back.difference, back.confidence), (m.difference, m.confidence));
    }

    #[test]
    fn audit_sequence_keys_sort_as_numbers() {
        assert!(seq_key(9) < seq_key(10));
        assert!(seq_key(99_999) < seq_key(u64::MAX));
    }

    #[test]
    fn a_damaged_item_is_reported_not_panicked_on() {
        let item: Item = HashMap::from([("data".to_string(), s("{")), ("version".to_string(), s("x"))]);
        assert!(matches!(match_from_item(&item), Err(StoreError::Backend(_))));
        assert!(matches!(run_from_item(&item), Err(StoreError::Backend(_))));
        assert!(matches!(discrepancy_from_item(&item), Err(StoreError::Backend(_))));
    }
}
