//! [`ReconStore`] on SQLite: runs, matches with their claims, the audit trail. Every multi-row
//! change runs in one immediate transaction, so a claim and the match that takes it are written
//! together or not at all.

use std::str::FromStr;

use async_trait::async_trait;
use chrono::Utc;
use rusqlite::{params, OptionalExtension, Row, Transaction};
use rust_decimal::Decimal;

use super::model::{Page, TenantId};
use super::recon::{
    AuditEvent, Discrepancy, DiscrepancyKind, DiscrepancyStore, MatchAction, MatchState, ReconStore, Resolution,
    RuleStore, RuleVersion, Run, RunOutcome, RunStatus, StoredMatch,
};
use super::sqlite::{backend, collect, corrupt, get_by_id, paginate, parse_date, parse_time, SqliteStore};
use super::{page_size, StoreError};
use crate::matching::Method;

fn run_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Run, StoreError>> {
    let id: String = row.get("id")?;
    let account_id: String = row.get("account_id")?;
    let start: String = row.get("start_date")?;
    let end: String = row.get("end_date")?;
    let status: String = row.get("status")?;
    let summary: String = row.get("summary_json")?;
    let created_by: String = row.get("created_by")?;
    let created_at: String = row.get("created_at")?;
    let finished_at: Option<String> = row.get("finished_at")?;
    let error: Option<String> = row.get("error")?;
    let version: i64 = row.get("version")?;
    Ok((|| {
        Ok(Run {
            id,
            account_id,
            start_date: parse_date(&start)?,
            end_date: parse_date(&end)?,
            status: RunStatus::from_str(&status).map_err(|_| corrupt("run status", &status))?,
            summary: serde_json::from_str(&summary).map_err(|_| corrupt("summary", &summary))?,
            created_by,
            created_at: parse_time(&created_at)?,
            finished_at: finished_at.as_deref().map(parse_time).transpose()?,
            error,
            version: version as u64,
        })
    })())
}

fn method_name(m: Method) -> String {
    serde_json::to_value(m).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn match_from_row(
    tx: &rusqlite::Connection,
    tenant: &str,
    row: &Row<'_>,
) -> rusqlite::Result<Result<StoredMatch, StoreError>> {
    let id: String = row.get("id")?;
    let run_id: Option<String> = row.get("run_id")?;
    let account_id: String = row.get("account_id")?;
    let state: String = row.get("state")?;
    let confidence: f64 = row.get("confidence")?;
    let method: String = row.get("method")?;
    let rule: Option<String> = row.get("rule")?;
    let difference: String = row.get("difference")?;
    let explanation: String = row.get("explanation_json")?;
    let note: Option<String> = row.get("note")?;
    let created_by: String = row.get("created_by")?;
    let created_at: String = row.get("created_at")?;
    let updated_at: String = row.get("updated_at")?;
    let version: i64 = row.get("version")?;
    let (mut bank, mut records) = (Vec::new(), Vec::new());
    let mut stmt = tx.prepare_cached(
        "SELECT item_kind, item_id FROM match_items WHERE tenant = ?1 AND match_id = ?2 ORDER BY item_kind, item_id",
    )?;
    let mut rows = stmt.query(params![tenant, id])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        let item: String = r.get(1)?;
        if kind == "transaction" {
            bank.push(item);
        } else {
            records.push(item);
        }
    }
    Ok((|| {
        Ok(StoredMatch {
            id,
            run_id,
            account_id,
            state: MatchState::from_str(&state).map_err(|_| corrupt("match state", &state))?,
            bank_transaction_ids: bank,
            record_ids: records,
            confidence,
            method: serde_json::from_value(serde_json::Value::String(method.clone()))
                .map_err(|_| corrupt("method", &method))?,
            rule,
            difference: Decimal::from_str(&difference).map_err(|_| corrupt("difference", &difference))?,
            explanation: serde_json::from_str(&explanation).map_err(|_| corrupt("explanation", &explanation))?,
            note,
            created_by,
            created_at: parse_time(&created_at)?,
            updated_at: parse_time(&updated_at)?,
            version: version as u64,
        })
    })())
}

fn load_match(tx: &rusqlite::Connection, tenant: &str, id: &str) -> Result<StoredMatch, StoreError> {
    tx.query_row("SELECT * FROM matches WHERE tenant = ?1 AND id = ?2", params![tenant, id], |row| {
        match_from_row(tx, tenant, row)
    })
    .optional()
    .map_err(backend)?
    .ok_or(StoreError::NotFound { what: "match", id: id.to_string() })?
}

/// One audit event to append.
struct Audit<'a, J = serde_json::Value> {
    actor: &'a str,
    entity: &'a str,
    entity_id: &'a str,
    action: &'a str,
    before: J,
    after: J,
}

fn append_audit(tx: &Transaction<'_>, tenant: &str, e: Audit<'_>) -> Result<(), StoreError> {
    let Audit { actor, entity, entity_id, action, before, after } = e;
    let (before, after) = (before.to_string(), after.to_string());
    append_audit_json(tx, tenant, Audit { actor, entity, entity_id, action, before: &before, after: &after })
}

/// [`append_audit`] with `before` and `after` already written as JSON.
fn append_audit_json(tx: &Transaction<'_>, tenant: &str, e: Audit<'_, &str>) -> Result<(), StoreError> {
    AuditLog::open(tx, tenant)?.append(tx, e)
}

/// The tenant's audit log inside one write transaction: the next sequence number is read once,
/// then counted on (the transaction holds the write lock, so no other writer appends meanwhile).
/// A finished run appends one event per match, tens of thousands in one transaction; each is
/// written straight from JSON text.
struct AuditLog<'t> {
    tenant: &'t str,
    next: i64,
    at: String,
}

impl<'t> AuditLog<'t> {
    fn open(tx: &Transaction<'_>, tenant: &'t str) -> Result<Self, StoreError> {
        let last: i64 = tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_events WHERE tenant = ?1", params![tenant], |r| {
                r.get(0)
            })
            .map_err(backend)?;
        Ok(AuditLog { tenant, next: last + 1, at: Utc::now().to_rfc3339() })
    }

    fn append(&mut self, tx: &Transaction<'_>, e: Audit<'_, &str>) -> Result<(), StoreError> {
        let Audit { actor, entity, entity_id, action, before, after } = e;
        tx.prepare_cached(
            "INSERT INTO audit_events (tenant, seq, at, actor, entity, entity_id, action, before_json, after_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut st| {
            st.execute(params![self.tenant, self.next, self.at, actor, entity, entity_id, action, before, after])
        })
        .map_err(backend)?;
        self.next += 1;
        Ok(())
    }
}

fn insert_match_row(tx: &Transaction<'_>, tenant: &str, m: &StoredMatch) -> Result<(), StoreError> {
    let explanation = serde_json::to_string(&m.explanation).map_err(StoreError::backend)?;
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO matches (tenant, id, run_id, account_id, state, confidence, method, rule, difference,
                explanation_json, note, created_by, created_at, updated_at, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )
        .and_then(|mut st| {
            st.execute(params![
                tenant,
                m.id,
                m.run_id,
                m.account_id,
                m.state.as_str(),
                m.confidence,
                method_name(m.method),
                m.rule,
                m.difference.to_string(),
                explanation,
                m.note,
                m.created_by,
                m.created_at.to_rfc3339(),
                m.updated_at.to_rfc3339(),
                m.version as i64,
            ])
        })
        .map_err(backend)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("match {} already exists", m.id)));
    }
    let mut item = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO match_items (tenant, match_id, item_kind, item_id) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(backend)?;
    for id in &m.bank_transaction_ids {
        item.execute(params![tenant, m.id, "transaction", id]).map_err(backend)?;
    }
    for id in &m.record_ids {
        item.execute(params![tenant, m.id, "record", id]).map_err(backend)?;
    }
    Ok(())
}

/// Claims every item of `m` for it: `NotFound` if an item does not exist for this tenant,
/// `Conflict` if another live match holds it.
fn claim_items(tx: &Transaction<'_>, tenant: &str, m: &StoredMatch) -> Result<(), StoreError> {
    let status = m.claimed_item_status().as_str();
    for id in &m.bank_transaction_ids {
        claim_item(tx, tenant, ItemTable::Transactions, id, &m.id, status)?;
    }
    for id in &m.record_ids {
        claim_item(tx, tenant, ItemTable::Records, id, &m.id, status)?;
    }
    Ok(())
}

/// The two tables whose rows a match claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ItemTable {
    Transactions,
    Records,
}

/// Claims one item for match `match_id`: `NotFound` if it does not exist for this tenant,
/// `Conflict` if another live match holds it or it is reconciled.
fn claim_item(
    tx: &Transaction<'_>,
    tenant: &str,
    table: ItemTable,
    id: &str,
    match_id: &str,
    status: &str,
) -> Result<(), StoreError> {
    const CLAIM_TRANSACTION: &str = "UPDATE bank_transactions SET match_id = ?3, status = ?4
         WHERE tenant = ?1 AND id = ?2 AND match_id IS NULL AND status != 'reconciled'";
    const CLAIM_RECORD: &str = "UPDATE records SET match_id = ?3, status = ?4
         WHERE tenant = ?1 AND id = ?2 AND match_id IS NULL AND status != 'reconciled'";
    let (name, sql, what) = match table {
        ItemTable::Transactions => ("bank_transactions", CLAIM_TRANSACTION, "transaction"),
        ItemTable::Records => ("records", CLAIM_RECORD, "record"),
    };
    let n =
        tx.prepare_cached(sql).and_then(|mut st| st.execute(params![tenant, id, match_id, status])).map_err(backend)?;
    if n == 0 {
        let holder: Option<Option<String>> = tx
            .query_row(
                &format!("SELECT match_id FROM {name} WHERE tenant = ?1 AND id = ?2"),
                params![tenant, id],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)?;
        return Err(match holder {
            None => StoreError::NotFound { what, id: id.to_string() },
            Some(Some(other)) => StoreError::Conflict(format!("{what} {id} is already in live match {other}")),
            Some(None) => StoreError::Conflict(format!("{what} {id} is reconciled and locked")),
        });
    }
    Ok(())
}

fn release_items(tx: &Transaction<'_>, tenant: &str, m: &StoredMatch) -> Result<(), StoreError> {
    for table in ["bank_transactions", "records"] {
        tx.execute(
            &format!("UPDATE {table} SET match_id = NULL, status = 'unmatched' WHERE tenant = ?1 AND match_id = ?2"),
            params![tenant, m.id],
        )
        .map_err(backend)?;
    }
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn write_run(tx: &Transaction<'_>, tenant: &str, run: &Run) -> Result<Run, StoreError> {
    let mut next = run.clone();
    next.version = run.version + 1;
    let n = tx
        .execute(
            "UPDATE runs SET status = ?3, summary_json = ?4, finished_at = ?5, error = ?6, version = ?7
             WHERE tenant = ?1 AND id = ?2 AND version = ?8",
            params![
                tenant,
                run.id,
                run.status.as_str(),
                serde_json::to_string(&run.summary).map_err(StoreError::backend)?,
                run.finished_at.map(|t| t.to_rfc3339()),
                run.error,
                next.version as i64,
                run.version as i64,
            ],
        )
        .map_err(backend)?;
    if n == 0 {
        let exists: Option<i64> = tx
            .query_row("SELECT version FROM runs WHERE tenant = ?1 AND id = ?2", params![tenant, run.id], |r| r.get(0))
            .optional()
            .map_err(backend)?;
        return Err(match exists {
            None => StoreError::NotFound { what: "reconciliation", id: run.id.clone() },
            Some(v) => StoreError::Conflict(format!(
                "reconciliation {} was changed concurrently (version {v}, expected {})",
                run.id, run.version
            )),
        });
    }
    Ok(next)
}

#[async_trait]
impl ReconStore for SqliteStore {
    async fn create_run(&self, tenant: &TenantId, run: &Run) -> Result<(), StoreError> {
        let (tenant, run) = (tenant.as_str().to_string(), run.clone());
        self.with(move |conn| {
            let tx = conn.transaction().map_err(backend)?;
            let account: Option<String> = tx
                .query_row(
                    "SELECT id FROM accounts WHERE tenant = ?1 AND id = ?2",
                    params![tenant, run.account_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            if account.is_none() {
                return Err(StoreError::NotFound { what: "account", id: run.account_id.clone() });
            }
            tx.execute(
                "INSERT INTO runs (tenant, id, account_id, start_date, end_date, status, summary_json, created_by,
                    created_at, finished_at, error, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    tenant,
                    run.id,
                    run.account_id,
                    run.start_date.to_string(),
                    run.end_date.to_string(),
                    run.status.as_str(),
                    serde_json::to_string(&run.summary).map_err(StoreError::backend)?,
                    run.created_by,
                    run.created_at.to_rfc3339(),
                    run.finished_at.map(|t| t.to_rfc3339()),
                    run.error,
                    run.version as i64,
                ],
            )
            .map_err(backend)?;
            append_audit(
                &tx,
                &tenant,
                Audit {
                    actor: &run.created_by,
                    entity: "reconciliation",
                    entity_id: &run.id,
                    action: "reconciliation.started",
                    before: serde_json::Value::Null,
                    after: json(&run),
                },
            )?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_run(&self, tenant: &TenantId, id: &str) -> Result<Run, StoreError> {
        let (tenant, id) = (tenant.as_str().to_string(), id.to_string());
        self.read(move |conn| {
            conn.query_row("SELECT * FROM runs WHERE tenant = ?1 AND id = ?2", params![tenant, id], run_from_row)
                .optional()
                .map_err(backend)?
                .ok_or(StoreError::NotFound { what: "reconciliation", id })?
        })
        .await
    }

    async fn list_runs(
        &self,
        tenant: &TenantId,
        account_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Run>, StoreError> {
        // Runs are never deleted, so insertion order (the rowid) is creation order.
        let before = match cursor.filter(|c| !c.is_empty()) {
            Some(c) => c.parse::<i64>().map_err(|_| StoreError::Invalid(format!("invalid cursor {c:?}")))?,
            None => i64::MAX,
        };
        let (tenant, account_id, limit) = (tenant.as_str().to_string(), account_id.to_string(), page_size(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT rowid AS seq, * FROM runs WHERE tenant = ?1 AND account_id = ?2 AND rowid < ?3
                     ORDER BY rowid DESC LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![tenant, account_id, before, limit as i64 + 1], |row| {
                    let seq: i64 = row.get("seq")?;
                    Ok(run_from_row(row)?.map(|run| (seq, run)))
                })
                .map_err(backend)?;
            let page = paginate(collect(rows)?, limit, |(seq, _)| seq.to_string());
            Ok(Page { items: page.items.into_iter().map(|(_, run)| run).collect(), cursor: page.cursor })
        })
        .await
    }

    async fn finish_run(&self, tenant: &TenantId, run: &Run, outcome: &RunOutcome) -> Result<Run, StoreError> {
        let (tenant, run) = (tenant.as_str().to_string(), run.clone());
        let RunOutcome { matches, unmatched_transactions: ut, unmatched_records: ur, discrepancies } = outcome.clone();
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            // The time of each step, logged at debug level (`RUST_LOG=bankrec::store=debug`).
            let mut at = std::time::Instant::now();
            let mut lap = |step: &'static str| {
                let now = std::time::Instant::now();
                tracing::debug!(step, seconds = (now - at).as_secs_f64(), "finish_run step");
                at = now;
            };
            let now = Utc::now().to_rfc3339();
            tx.execute(
                "UPDATE matches SET state = 'superseded', updated_at = ?3, version = version + 1
                 WHERE tenant = ?1 AND account_id = ?2 AND state = 'suggested'",
                params![tenant, run.account_id, now],
            )
            .map_err(backend)?;
            // Claims are made in table and id order rather than match by match: ids follow the
            // statement's and the books' order, so consecutive claims touch neighbouring pages
            // of the item tables and their status indexes.
            let mut claims: Vec<(ItemTable, &str, &str, &str)> = Vec::new();
            let mut audit = AuditLog::open(&tx, &tenant)?;
            for m in &matches {
                insert_match_row(&tx, &tenant, m)?;
                if m.state.is_live() {
                    let status = m.claimed_item_status().as_str();
                    claims.extend(
                        m.bank_transaction_ids
                            .iter()
                            .map(|id| (ItemTable::Transactions, id.as_str(), m.id.as_str(), status)),
                    );
                    claims
                        .extend(m.record_ids.iter().map(|id| (ItemTable::Records, id.as_str(), m.id.as_str(), status)));
                }
                let after = serde_json::to_string(m).map_err(StoreError::backend)?;
                audit.append(
                    &tx,
                    Audit {
                        actor: &run.created_by,
                        entity: "match",
                        entity_id: &m.id,
                        action: "match.created",
                        before: "null",
                        after: &after,
                    },
                )?;
            }
            lap("matches and their audit events");
            claims.sort_unstable();
            for (table, id, match_id, status) in claims {
                claim_item(&tx, &tenant, table, id, match_id, status)?;
            }
            lap("claims");
            // In id order too, for the same reason.
            let (mut ut, mut ur) = (ut, ur);
            ut.sort_unstable();
            ur.sort_unstable();
            for (table, ids) in [("bank_transactions", &ut), ("records", &ur)] {
                let mut st = tx
                    .prepare_cached(&format!(
                        "UPDATE {table} SET status = 'unmatched'
                         WHERE tenant = ?1 AND id = ?2 AND match_id IS NULL AND status IN ('pending', 'unmatched')"
                    ))
                    .map_err(backend)?;
                for id in ids {
                    st.execute(params![tenant, id]).map_err(backend)?;
                }
            }
            // This run's view replaces earlier runs' open "missing" discrepancies of the account;
            // amount mismatches stay with their (still live) matches.
            let superseded = serde_json::to_string(&Resolution {
                action: crate::store::ResolutionAction::Ignore,
                account: None,
                note: format!("superseded by reconciliation {}", run.id),
                record_id: None,
                resolved_by: run.created_by.clone(),
                resolved_at: Utc::now(),
            })
            .map_err(StoreError::backend)?;
            tx.execute(
                "UPDATE discrepancies SET status = 'resolved', resolution_json = ?4, version = version + 1
                 WHERE tenant = ?1 AND account_id = ?2 AND status = 'open' AND run_id IS NOT NULL AND run_id != ?3
                   AND kind IN ('missing_in_books', 'missing_in_bank')",
                params![tenant, run.account_id, run.id, superseded],
            )
            .map_err(backend)?;
            lap("unmatched items");
            for d in &discrepancies {
                insert_discrepancy(&tx, &tenant, d)?;
            }
            lap("discrepancies");
            let before = tx
                .query_row("SELECT * FROM runs WHERE tenant = ?1 AND id = ?2", params![tenant, run.id], run_from_row)
                .optional()
                .map_err(backend)?
                .transpose()?;
            let stored = write_run(&tx, &tenant, &run)?;
            let (before, after) = (json(&before).to_string(), json(&stored).to_string());
            audit.append(
                &tx,
                Audit {
                    actor: &run.created_by,
                    entity: "reconciliation",
                    entity_id: &run.id,
                    action: "reconciliation.finished",
                    before: &before,
                    after: &after,
                },
            )?;
            lap("run");
            tx.commit().map_err(backend)?;
            lap("commit");
            Ok(stored)
        })
        .await
    }

    async fn update_run(&self, tenant: &TenantId, run: &Run) -> Result<Run, StoreError> {
        let (tenant, run) = (tenant.as_str().to_string(), run.clone());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let stored = write_run(&tx, &tenant, &run)?;
            tx.commit().map_err(backend)?;
            Ok(stored)
        })
        .await
    }

    async fn get_match(&self, tenant: &TenantId, id: &str) -> Result<StoredMatch, StoreError> {
        let (tenant, id) = (tenant.as_str().to_string(), id.to_string());
        self.read(move |conn| load_match(conn, &tenant, &id)).await
    }

    async fn list_matches(
        &self,
        tenant: &TenantId,
        run_id: &str,
        state: Option<MatchState>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<StoredMatch>, StoreError> {
        let (tenant, run_id, after, limit) =
            (tenant.as_str().to_string(), run_id.to_string(), cursor.unwrap_or("").to_string(), page_size(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT * FROM matches WHERE tenant = ?1 AND run_id = ?2 AND (?3 IS NULL OR state = ?3) AND id > ?4
                     ORDER BY id LIMIT ?5",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![tenant, run_id, state.map(|s| s.as_str()), after, limit as i64 + 1], |row| {
                    match_from_row(conn, &tenant, row)
                })
                .map_err(backend)?;
            let items = collect(rows)?;
            Ok(paginate(items, limit, |m| m.id.clone()))
        })
        .await
    }

    async fn insert_match(&self, tenant: &TenantId, m: &StoredMatch) -> Result<(), StoreError> {
        let (tenant, m) = (tenant.as_str().to_string(), m.clone());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            insert_match_row(&tx, &tenant, &m)?;
            if m.state.is_live() {
                claim_items(&tx, &tenant, &m)?;
            }
            append_audit(
                &tx,
                &tenant,
                Audit {
                    actor: &m.created_by,
                    entity: "match",
                    entity_id: &m.id,
                    action: "match.created",
                    before: serde_json::Value::Null,
                    after: json(&m),
                },
            )?;
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn apply_match_action(
        &self,
        tenant: &TenantId,
        id: &str,
        action: MatchAction,
        actor: &str,
        note: Option<&str>,
    ) -> Result<StoredMatch, StoreError> {
        let (tenant, id, actor, note) =
            (tenant.as_str().to_string(), id.to_string(), actor.to_string(), note.map(str::to_string));
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let before = load_match(&tx, &tenant, &id)?;
            let after = action.apply(&before, note.as_deref())?;
            match (before.state.is_live(), after.state.is_live()) {
                (false, true) => claim_items(&tx, &tenant, &after)?,
                (true, false) => release_items(&tx, &tenant, &before)?,
                (true, true) => {
                    // Still live (a confirmed discrepancy): the items keep their claim; refresh
                    // their status.
                    let status = after.claimed_item_status().as_str();
                    for table in ["bank_transactions", "records"] {
                        tx.execute(
                            &format!("UPDATE {table} SET status = ?3 WHERE tenant = ?1 AND match_id = ?2"),
                            params![tenant, id, status],
                        )
                        .map_err(backend)?;
                    }
                }
                (false, false) => {}
            }
            tx.execute(
                "UPDATE matches SET state = ?3, note = ?4, updated_at = ?5, version = ?6 WHERE tenant = ?1 AND id = ?2",
                params![
                    tenant,
                    id,
                    after.state.as_str(),
                    after.note,
                    after.updated_at.to_rfc3339(),
                    after.version as i64
                ],
            )
            .map_err(backend)?;
            append_audit(
                &tx,
                &tenant,
                Audit {
                    actor: &actor,
                    entity: "match",
                    entity_id: &id,
                    action: action.audit_name(),
                    before: json(&before),
                    after: json(&after),
                },
            )?;
            tx.commit().map_err(backend)?;
            Ok(after)
        })
        .await
    }

    async fn rejected_pairs(
        &self,
        tenant: &TenantId,
        account_id: &str,
    ) -> Result<Vec<(Vec<String>, Vec<String>)>, StoreError> {
        let (tenant, account_id) = (tenant.as_str().to_string(), account_id.to_string());
        self.with(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT * FROM matches WHERE tenant = ?1 AND account_id = ?2 AND state = 'rejected' ORDER BY id",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![tenant, account_id], |row| match_from_row(conn, &tenant, row))
                .map_err(backend)?;
            Ok(collect(rows)?.into_iter().map(|m| (m.bank_transaction_ids, m.record_ids)).collect())
        })
        .await
    }

    async fn list_audit(
        &self,
        tenant: &TenantId,
        entity_id: Option<&str>,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let (tenant, entity_id, limit) = (tenant.as_str().to_string(), entity_id.map(str::to_string), page_size(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT seq, at, actor, entity, entity_id, action, before_json, after_json FROM audit_events
                     WHERE tenant = ?1 AND (?2 IS NULL OR entity_id = ?2) AND seq > ?3 ORDER BY seq LIMIT ?4",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![tenant, entity_id, after_seq as i64, limit as i64], |r| {
                    let seq: i64 = r.get(0)?;
                    let at: String = r.get(1)?;
                    let before: String = r.get(6)?;
                    let after: String = r.get(7)?;
                    Ok((|| {
                        Ok(AuditEvent {
                            seq: seq as u64,
                            at: parse_time(&at)?,
                            actor: r.get(2).map_err(backend)?,
                            entity: r.get(3).map_err(backend)?,
                            entity_id: r.get(4).map_err(backend)?,
                            action: r.get(5).map_err(backend)?,
                            before: serde_json::from_str(&before).map_err(|_| corrupt("audit", &before))?,
                            after: serde_json::from_str(&after).map_err(|_| corrupt("audit", &after))?,
                        })
                    })())
                })
                .map_err(backend)?;
            collect(rows)
        })
        .await
    }
}

fn insert_discrepancy(tx: &Transaction<'_>, tenant: &str, d: &Discrepancy) -> Result<(), StoreError> {
    let transaction_ids = serde_json::to_string(&d.transaction_ids).map_err(StoreError::backend)?;
    let record_ids = serde_json::to_string(&d.record_ids).map_err(StoreError::backend)?;
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO discrepancies (tenant, id, account_id, run_id, kind, amount, transaction_ids_json,
                record_ids_json, match_id, date, description, proposal, status, resolution_json, created_at, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )
        .and_then(|mut st| {
            st.execute(params![
                tenant,
                d.id,
                d.account_id,
                d.run_id,
                d.kind.as_str(),
                d.amount.to_string(),
                transaction_ids,
                record_ids,
                d.match_id,
                d.date.to_string(),
                d.description,
                d.proposal,
                if d.resolution.is_some() { "resolved" } else { "open" },
                d.resolution.as_ref().map(|r| serde_json::to_string(r).unwrap_or_default()),
                d.created_at.to_rfc3339(),
                d.version as i64,
            ])
        })
        .map_err(backend)?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("discrepancy {} already exists", d.id)));
    }
    Ok(())
}

fn discrepancy_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Discrepancy, StoreError>> {
    let id: String = row.get("id")?;
    let account_id: String = row.get("account_id")?;
    let run_id: Option<String> = row.get("run_id")?;
    let kind: String = row.get("kind")?;
    let amount: String = row.get("amount")?;
    let txns: String = row.get("transaction_ids_json")?;
    let records: String = row.get("record_ids_json")?;
    let match_id: Option<String> = row.get("match_id")?;
    let date: String = row.get("date")?;
    let description: String = row.get("description")?;
    let proposal: Option<String> = row.get("proposal")?;
    let resolution: Option<String> = row.get("resolution_json")?;
    let created_at: String = row.get("created_at")?;
    let version: i64 = row.get("version")?;
    Ok((|| {
        Ok(Discrepancy {
            id,
            account_id,
            run_id,
            kind: DiscrepancyKind::from_str(&kind).map_err(|_| corrupt("discrepancy kind", &kind))?,
            amount: Decimal::from_str(&amount).map_err(|_| corrupt("amount", &amount))?,
            transaction_ids: serde_json::from_str(&txns).map_err(|_| corrupt("ids", &txns))?,
            record_ids: serde_json::from_str(&records).map_err(|_| corrupt("ids", &records))?,
            match_id,
            date: parse_date(&date)?,
            description,
            proposal,
            resolution: resolution
                .as_deref()
                .map(|r| serde_json::from_str::<Resolution>(r).map_err(|_| corrupt("resolution", r)))
                .transpose()?,
            created_at: parse_time(&created_at)?,
            version: version as u64,
        })
    })())
}

fn load_discrepancy(conn: &rusqlite::Connection, tenant: &str, id: &str) -> Result<Discrepancy, StoreError> {
    get_by_id(conn, "discrepancies", "discrepancy", tenant, id, discrepancy_from_row)
}

fn load_run(conn: &rusqlite::Connection, tenant: &str, id: &str) -> Result<Run, StoreError> {
    get_by_id(conn, "runs", "reconciliation", tenant, id, run_from_row)
}

#[async_trait]
impl DiscrepancyStore for SqliteStore {
    async fn add_discrepancies(&self, tenant: &TenantId, items: &[Discrepancy], actor: &str) -> Result<(), StoreError> {
        let (tenant, items, actor) = (tenant.as_str().to_string(), items.to_vec(), actor.to_string());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            for d in &items {
                insert_discrepancy(&tx, &tenant, d)?;
                append_audit(
                    &tx,
                    &tenant,
                    Audit {
                        actor: &actor,
                        entity: "discrepancy",
                        entity_id: &d.id,
                        action: "discrepancy.raised",
                        before: serde_json::Value::Null,
                        after: json(d),
                    },
                )?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_discrepancy(&self, tenant: &TenantId, id: &str) -> Result<Discrepancy, StoreError> {
        let (tenant, id) = (tenant.as_str().to_string(), id.to_string());
        self.read(move |conn| load_discrepancy(conn, &tenant, &id)).await
    }

    async fn list_discrepancies(
        &self,
        tenant: &TenantId,
        account_id: Option<&str>,
        open: Option<bool>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Discrepancy>, StoreError> {
        let after = cursor.map(super::split_cursor).transpose()?.unwrap_or_default();
        let (tenant, account_id, limit) =
            (tenant.as_str().to_string(), account_id.map(str::to_string), page_size(limit));
        let status = open.map(|o| if o { "open" } else { "resolved" });
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT * FROM discrepancies
                     WHERE tenant = ?1 AND (?2 IS NULL OR account_id = ?2) AND (?3 IS NULL OR status = ?3)
                       AND (date, id) > (?4, ?5)
                     ORDER BY date, id LIMIT ?6",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![tenant, account_id, status, after.0, after.1, limit as i64 + 1],
                    discrepancy_from_row,
                )
                .map_err(backend)?;
            Ok(paginate(collect(rows)?, limit, |d| format!("{}~{}", d.date, d.id)))
        })
        .await
    }

    async fn resolve_discrepancy(
        &self,
        tenant: &TenantId,
        id: &str,
        resolution: &Resolution,
    ) -> Result<Discrepancy, StoreError> {
        let (tenant, id, resolution) = (tenant.as_str().to_string(), id.to_string(), resolution.clone());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let before = load_discrepancy(&tx, &tenant, &id)?;
            if before.resolution.is_some() {
                return Err(StoreError::Conflict(format!("discrepancy {id} is already resolved")));
            }
            let mut after = before.clone();
            after.resolution = Some(resolution.clone());
            after.version += 1;
            tx.execute(
                "UPDATE discrepancies SET status = 'resolved', resolution_json = ?3, version = ?4
                 WHERE tenant = ?1 AND id = ?2 AND version = ?5",
                params![
                    tenant,
                    id,
                    serde_json::to_string(&resolution).map_err(StoreError::backend)?,
                    after.version as i64,
                    before.version as i64
                ],
            )
            .map_err(backend)?;
            append_audit(
                &tx,
                &tenant,
                Audit {
                    actor: &resolution.resolved_by,
                    entity: "discrepancy",
                    entity_id: &id,
                    action: "discrepancy.resolved",
                    before: json(&before),
                    after: json(&after),
                },
            )?;
            tx.commit().map_err(backend)?;
            Ok(after)
        })
        .await
    }

    async fn complete_run(
        &self,
        tenant: &TenantId,
        run_id: &str,
        override_reason: Option<&str>,
        actor: &str,
    ) -> Result<Run, StoreError> {
        let (tenant, run_id, reason, actor) =
            (tenant.as_str().to_string(), run_id.to_string(), override_reason.map(str::to_string), actor.to_string());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let before = load_run(&tx, &tenant, &run_id)?;
            if before.status != RunStatus::Completed {
                return Err(StoreError::Conflict(format!(
                    "reconciliation {run_id} is {} and cannot be completed",
                    before.status.as_str()
                )));
            }
            let open: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM discrepancies
                     WHERE tenant = ?1 AND account_id = ?2 AND status = 'open' AND date <= ?3",
                    params![tenant, before.account_id, before.end_date.to_string()],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if open > 0 && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(StoreError::Conflict(format!(
                    "{open} open discrepancies up to {}; resolve them or complete with an override reason",
                    before.end_date
                )));
            }
            // Lock: this run's live matches, and the account's live manual matches with a line
            // inside the period.
            let now = Utc::now().to_rfc3339();
            tx.execute(
                "UPDATE matches SET state = 'reconciled', reconciled_in = ?3, updated_at = ?4, version = version + 1
                 WHERE tenant = ?1 AND state IN ('matched', 'discrepancy', 'confirmed', 'manual')
                   AND (run_id = ?2 OR (run_id IS NULL AND account_id = ?5 AND EXISTS (
                        SELECT 1 FROM match_items mi JOIN bank_transactions bt
                          ON bt.tenant = mi.tenant AND bt.id = mi.item_id AND mi.item_kind = 'transaction'
                        WHERE mi.tenant = matches.tenant AND mi.match_id = matches.id AND bt.booking_date <= ?6)))",
                params![tenant, run_id, run_id, now, before.account_id, before.end_date.to_string()],
            )
            .map_err(backend)?;
            for table in ["bank_transactions", "records"] {
                tx.execute(
                    &format!(
                        "UPDATE {table} SET status = 'reconciled' WHERE tenant = ?1 AND match_id IN
                         (SELECT id FROM matches WHERE tenant = ?1 AND reconciled_in = ?2)"
                    ),
                    params![tenant, run_id],
                )
                .map_err(backend)?;
            }
            let mut run = before.clone();
            run.status = RunStatus::Reconciled;
            let stored = write_run(&tx, &tenant, &run)?;
            let mut after = json(&stored);
            after["override_reason"] = json(&reason);
            append_audit(
                &tx,
                &tenant,
                Audit {
                    actor: &actor,
                    entity: "reconciliation",
                    entity_id: &run_id,
                    action: "reconciliation.completed",
                    before: json(&before),
                    after,
                },
            )?;
            tx.commit().map_err(backend)?;
            Ok(stored)
        })
        .await
    }

    async fn unlock_run(&self, tenant: &TenantId, run_id: &str, reason: &str, actor: &str) -> Result<Run, StoreError> {
        let (tenant, run_id, reason, actor) =
            (tenant.as_str().to_string(), run_id.to_string(), reason.to_string(), actor.to_string());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let before = load_run(&tx, &tenant, &run_id)?;
            if before.status != RunStatus::Reconciled {
                return Err(StoreError::Conflict(format!("reconciliation {run_id} is not reconciled")));
            }
            if reason.trim().is_empty() {
                return Err(StoreError::Invalid("unlocking needs a reason".into()));
            }
            let locked: Vec<(String, String)> = {
                let mut stmt = tx
                    .prepare("SELECT id, difference FROM matches WHERE tenant = ?1 AND reconciled_in = ?2")
                    .map_err(backend)?;
                let rows = stmt.query_map(params![tenant, run_id], |r| Ok((r.get(0)?, r.get(1)?))).map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)?
            };
            for (match_id, difference) in &locked {
                let zero = Decimal::from_str(difference).map_err(|_| corrupt("difference", difference))?.is_zero();
                for table in ["bank_transactions", "records"] {
                    tx.execute(
                        &format!("UPDATE {table} SET status = ?3 WHERE tenant = ?1 AND match_id = ?2"),
                        params![tenant, match_id, if zero { "matched" } else { "discrepancy" }],
                    )
                    .map_err(backend)?;
                }
            }
            tx.execute(
                "UPDATE matches SET state = 'confirmed', reconciled_in = NULL, updated_at = ?3, version = version + 1
                 WHERE tenant = ?1 AND reconciled_in = ?2",
                params![tenant, run_id, Utc::now().to_rfc3339()],
            )
            .map_err(backend)?;
            let mut run = before.clone();
            run.status = RunStatus::Completed;
            let stored = write_run(&tx, &tenant, &run)?;
            let mut after = json(&stored);
            after["unlock_reason"] = serde_json::Value::String(reason.clone());
            append_audit(
                &tx,
                &tenant,
                Audit {
                    actor: &actor,
                    entity: "reconciliation",
                    entity_id: &run_id,
                    action: "reconciliation.unlocked",
                    before: json(&before),
                    after,
                },
            )?;
            tx.commit().map_err(backend)?;
            Ok(stored)
        })
        .await
    }
}

fn rule_from_row(row: &Row<'_>) -> rusqlite::Result<Result<RuleVersion, StoreError>> {
    let name: String = row.get("name")?;
    let version: i64 = row.get("version")?;
    let source: String = row.get("source")?;
    let active: i64 = row.get("active")?;
    let created_by: String = row.get("created_by")?;
    let created_at: String = row.get("created_at")?;
    Ok(parse_time(&created_at).map(|created_at| RuleVersion {
        name,
        version: version as u64,
        source,
        active: active != 0,
        created_by,
        created_at,
    }))
}

fn rule_audit(
    tx: &Transaction<'_>,
    tenant: &str,
    actor: &str,
    action: &str,
    before: Option<&RuleVersion>,
    after: &RuleVersion,
) -> Result<(), StoreError> {
    // The audit keeps which version is active, not the whole script (the versions table has it).
    let brief = |r: &RuleVersion| serde_json::json!({ "name": r.name, "version": r.version });
    append_audit(
        tx,
        tenant,
        Audit {
            actor,
            entity: "rule",
            entity_id: &after.name,
            action,
            before: before.map(brief).unwrap_or(serde_json::Value::Null),
            after: brief(after),
        },
    )
}

fn active_rule(tx: &rusqlite::Connection, tenant: &str, name: &str) -> Result<Option<RuleVersion>, StoreError> {
    tx.query_row(
        "SELECT * FROM rule_versions WHERE tenant = ?1 AND name = ?2 AND active = 1",
        params![tenant, name],
        rule_from_row,
    )
    .optional()
    .map_err(backend)?
    .transpose()
}

#[async_trait]
impl RuleStore for SqliteStore {
    async fn save_rule(
        &self,
        tenant: &TenantId,
        name: &str,
        source: &str,
        actor: &str,
    ) -> Result<RuleVersion, StoreError> {
        let (tenant, name, source, actor) =
            (tenant.as_str().to_string(), name.to_string(), source.to_string(), actor.to_string());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let before = active_rule(&tx, &tenant, &name)?;
            let next: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM rule_versions WHERE tenant = ?1 AND name = ?2",
                    params![tenant, name],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            tx.execute("UPDATE rule_versions SET active = 0 WHERE tenant = ?1 AND name = ?2", params![tenant, name])
                .map_err(backend)?;
            let saved = RuleVersion {
                name: name.clone(),
                version: next as u64,
                source,
                active: true,
                created_by: actor.clone(),
                created_at: Utc::now(),
            };
            tx.execute(
                "INSERT INTO rule_versions (tenant, name, version, source, active, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
                params![tenant, name, next, saved.source, actor, saved.created_at.to_rfc3339()],
            )
            .map_err(backend)?;
            rule_audit(&tx, &tenant, &actor, "rule.saved", before.as_ref(), &saved)?;
            tx.commit().map_err(backend)?;
            Ok(saved)
        })
        .await
    }

    async fn active_rules(&self, tenant: &TenantId) -> Result<Vec<RuleVersion>, StoreError> {
        let tenant = tenant.as_str().to_string();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT * FROM rule_versions WHERE tenant = ?1 AND active = 1 ORDER BY name")
                .map_err(backend)?;
            let rows = stmt.query_map(params![tenant], rule_from_row).map_err(backend)?;
            collect(rows)
        })
        .await
    }

    async fn rule_versions(&self, tenant: &TenantId, name: &str) -> Result<Vec<RuleVersion>, StoreError> {
        let (tenant, name) = (tenant.as_str().to_string(), name.to_string());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT * FROM rule_versions WHERE tenant = ?1 AND name = ?2 ORDER BY version DESC")
                .map_err(backend)?;
            let rows = stmt.query_map(params![tenant, name], rule_from_row).map_err(backend)?;
            let versions = collect(rows)?;
            if versions.is_empty() {
                return Err(StoreError::NotFound { what: "rule", id: name });
            }
            Ok(versions)
        })
        .await
    }

    async fn activate_rule(
        &self,
        tenant: &TenantId,
        name: &str,
        version: u64,
        actor: &str,
    ) -> Result<RuleVersion, StoreError> {
        let (tenant, name, actor) = (tenant.as_str().to_string(), name.to_string(), actor.to_string());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let target = tx
                .query_row(
                    "SELECT * FROM rule_versions WHERE tenant = ?1 AND name = ?2 AND version = ?3",
                    params![tenant, name, version as i64],
                    rule_from_row,
                )
                .optional()
                .map_err(backend)?
                .transpose()?
                .ok_or(StoreError::NotFound { what: "rule version", id: format!("{name} v{version}") })?;
            let before = active_rule(&tx, &tenant, &name)?;
            tx.execute("UPDATE rule_versions SET active = 0 WHERE tenant = ?1 AND name = ?2", params![tenant, name])
                .map_err(backend)?;
            tx.execute(
                "UPDATE rule_versions SET active = 1 WHERE tenant = ?1 AND name = ?2 AND version = ?3",
                params![tenant, name, version as i64],
            )
            .map_err(backend)?;
            let after = RuleVersion { active: true, ..target };
            rule_audit(&tx, &tenant, &actor, "rule.rolled_back", before.as_ref(), &after)?;
            tx.commit().map_err(backend)?;
            Ok(after)
        })
        .await
    }

    async fn load_memory(&self, tenant: &TenantId) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        let tenant = tenant.as_str().to_string();
        self.with(move |conn| {
            conn.query_row("SELECT json, version FROM memories WHERE tenant = ?1", params![tenant], |r| {
                let v: i64 = r.get(1)?;
                Ok((r.get::<_, Vec<u8>>(0)?, v as u64))
            })
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn save_memory(&self, tenant: &TenantId, memory: &[u8], expected: u64) -> Result<u64, StoreError> {
        let (tenant, memory) = (tenant.as_str().to_string(), memory.to_vec());
        self.with(move |conn| {
            let n = if expected == 0 {
                conn.execute(
                    "INSERT OR IGNORE INTO memories (tenant, json, version) VALUES (?1, ?2, 1)",
                    params![tenant, memory],
                )
            } else {
                conn.execute(
                    "UPDATE memories SET json = ?2, version = version + 1 WHERE tenant = ?1 AND version = ?3",
                    params![tenant, memory, expected as i64],
                )
            }
            .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict("the learned memory was changed concurrently".into()));
            }
            Ok(expected + 1)
        })
        .await
    }
}
