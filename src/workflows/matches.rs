//! What people do with matches and discrepancies: match by hand (1:1, 1:n, n:1, n:m), confirm or
//! reject a proposal (which the engine learns from), undo a match, resolve a discrepancy, and
//! complete or unlock a reconciliation.

use chrono::Utc;
use rust_decimal::Decimal;

use crate::domain::{BankTransaction, Money, Record, RecordKind};
use crate::matching::{Explanation, Feedback, Method};
use crate::store::model::new_id;
use crate::store::{
    Discrepancy, DiscrepancyKind, MatchAction, MatchState, Resolution, ResolutionAction, Run, Store, StoreError,
    StoredMatch, TenantId,
};

use super::reconcile::tenant_memory;

/// Why a person's change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// The request is incomplete or inconsistent (no items, mixed accounts, missing note...).
    #[error("{0}")]
    Invalid(String),
    /// The store refused or failed (`NotFound`, `Conflict`...).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A manual match request: stored transaction ids and the books' record ids.
#[derive(Debug, Clone)]
pub struct ManualMatch {
    /// Stored ids of the bank lines (at least one).
    pub bank_transaction_ids: Vec<String>,
    /// Record ids (at least one).
    pub record_ids: Vec<String>,
    /// Why.
    pub note: Option<String>,
}

/// Matches items by hand. Any shape is allowed (n:m); the running difference (bank total minus
/// records total) is kept on the match, and a non-zero one marks the items `discrepancy` and
/// raises an `amount_mismatch` discrepancy to resolve.
pub async fn manual_match(
    store: &dyn Store,
    tenant: &TenantId,
    req: &ManualMatch,
    actor: &str,
) -> Result<StoredMatch, MatchError> {
    if req.bank_transaction_ids.is_empty() || req.record_ids.is_empty() {
        return Err(MatchError::Invalid("a match needs at least one bank transaction and one record".into()));
    }
    let mut bank = Vec::new();
    for id in dedup(&req.bank_transaction_ids) {
        bank.push(store.get_transaction(tenant, &id).await?);
    }
    let account_id = bank[0].account_id.clone();
    if bank.iter().any(|t| t.account_id != account_id) {
        return Err(MatchError::Invalid("all bank transactions of a match must belong to one account".into()));
    }
    let currency = bank[0].transaction.amount.currency();
    let mut records = Vec::new();
    for id in dedup(&req.record_ids) {
        let r = store.get_record(tenant, &id).await?;
        if r.record.amount.currency() != currency {
            return Err(MatchError::Invalid(format!(
                "record {id} is in {}, the bank transactions in {currency}",
                r.record.amount.currency()
            )));
        }
        records.push(r);
    }
    let bank_total: Decimal = bank.iter().map(|t| t.transaction.amount.amount()).sum();
    let record_total: Decimal = records.iter().map(|r| r.record.amount.amount()).sum();
    let difference = bank_total - record_total;
    let now = Utc::now();
    let m = StoredMatch {
        id: new_id("mat"),
        run_id: None,
        account_id: account_id.clone(),
        state: MatchState::Manual,
        bank_transaction_ids: bank.iter().map(|t| t.id.clone()).collect(),
        record_ids: records.iter().map(|r| r.record.id.clone()).collect(),
        confidence: 1.0,
        method: Method::Manual,
        rule: None,
        difference,
        explanation: Explanation { reasons: vec![format!("matched by hand by {actor}").into()], ..Default::default() },
        note: req.note.clone(),
        created_by: actor.to_string(),
        created_at: now,
        updated_at: now,
        version: 1,
    };
    store.insert_match(tenant, &m).await?;
    if !difference.is_zero() {
        let d = Discrepancy {
            id: new_id("dis"),
            account_id,
            run_id: None,
            kind: DiscrepancyKind::AmountMismatch,
            amount: difference,
            transaction_ids: m.bank_transaction_ids.clone(),
            record_ids: m.record_ids.clone(),
            match_id: Some(m.id.clone()),
            date: bank.iter().map(|t| t.transaction.booking_date).max().unwrap_or(now.date_naive()),
            description: format!("manual match differs by {}", Money::new(difference, currency)),
            proposal: Some(format!("write off {} or adjust the records", Money::new(difference, currency))),
            resolution: None,
            created_at: now,
            version: 1,
        };
        store.add_discrepancies(tenant, &[d], actor).await?;
    }
    Ok(m)
}

fn dedup(ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

/// Confirms, rejects or undoes a match. Confirmations and rejections of the engine's proposals
/// are folded into the tenant's learned memory, so the next run knows the alias, the habit, or
/// never to propose the pair again.
pub async fn act_on_match(
    store: &dyn Store,
    tenant: &TenantId,
    match_id: &str,
    action: MatchAction,
    actor: &str,
    note: Option<&str>,
) -> Result<StoredMatch, MatchError> {
    let after = store.apply_match_action(tenant, match_id, action, actor, note).await?;
    if matches!(action, MatchAction::Confirm | MatchAction::Reject) && after.method != Method::Manual {
        learn(store, tenant, &after, action == MatchAction::Confirm).await?;
    }
    Ok(after)
}

/// Folds one verdict into the memory, retrying when another writer got there first.
async fn learn(store: &dyn Store, tenant: &TenantId, m: &StoredMatch, confirmed: bool) -> Result<(), MatchError> {
    let mut bank: Vec<BankTransaction> = Vec::new();
    for id in &m.bank_transaction_ids {
        bank.push(store.get_transaction(tenant, id).await?.transaction);
    }
    let mut records: Vec<Record> = Vec::new();
    for id in &m.record_ids {
        records.push(store.get_record(tenant, id).await?.record);
    }
    let feedback = Feedback {
        bank_ids: bank.iter().map(|t| t.id.to_string()).collect(),
        record_ids: m.record_ids.clone(),
        confirmed,
    };
    for _ in 0..5 {
        let (mut memory, version) = tenant_memory(store, tenant).await.map_err(|e| match e {
            super::reconcile::ReconcileError::Store(e) => MatchError::Store(e),
            // An unreadable memory is the server's problem, not the request's.
            other => MatchError::Store(StoreError::Backend(other.to_string().into())),
        })?;
        memory.learn(std::slice::from_ref(&feedback), &bank, &records);
        match store.save_memory(tenant, memory.to_json().as_bytes(), version).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(MatchError::Store(StoreError::Conflict("the learned memory is being changed by others; try again".into())))
}

/// A resolution request.
#[derive(Debug, Clone)]
pub struct ResolveRequest {
    /// What to do.
    pub action: ResolutionAction,
    /// Ledger account (required for `write_off`).
    pub account: Option<String>,
    /// Why (required).
    pub note: String,
}

/// Resolves a discrepancy. `create_record` books a record for the bank line(s) of a
/// `missing_in_books` discrepancy (an expense for money out, a journal entry for money in) and
/// matches them by hand, so the line is explained in the books too.
pub async fn resolve_discrepancy(
    store: &dyn Store,
    tenant: &TenantId,
    id: &str,
    req: &ResolveRequest,
    actor: &str,
) -> Result<Discrepancy, MatchError> {
    if req.note.trim().is_empty() {
        return Err(MatchError::Invalid("a resolution needs a note".into()));
    }
    if req.action == ResolutionAction::WriteOff && req.account.as_deref().is_none_or(|a| a.trim().is_empty()) {
        return Err(MatchError::Invalid("write_off needs the ledger account to write off to".into()));
    }
    let d = store.get_discrepancy(tenant, id).await?;
    if d.resolution.is_some() {
        return Err(MatchError::Store(StoreError::Conflict(format!("discrepancy {id} is already resolved"))));
    }
    let mut record_id = None;
    if req.action == ResolutionAction::CreateRecord {
        if d.kind != DiscrepancyKind::MissingInBooks || d.transaction_ids.is_empty() {
            return Err(MatchError::Invalid("create_record resolves a missing_in_books discrepancy".into()));
        }
        let mut txns = Vec::new();
        for t in &d.transaction_ids {
            txns.push(store.get_transaction(tenant, t).await?);
        }
        let total: Decimal = txns.iter().map(|t| t.transaction.amount.amount()).sum();
        let first = &txns[0].transaction;
        let record = Record {
            id: format!("BR-{}", &d.id.trim_start_matches("dis_")),
            kind: if total < Decimal::ZERO { RecordKind::Expense } else { RecordKind::Journal },
            date: first.booking_date,
            due_date: None,
            amount: Money::new(total, first.amount.currency()),
            counterparty: first.payee.as_deref().map(String::from),
            reference: first.reference.as_deref().map(String::from),
            description: Some(if first.description.is_empty() {
                req.note.clone()
            } else {
                first.description.to_string()
            }),
        };
        store.upsert_records(tenant, std::slice::from_ref(&record)).await?;
        manual_match(
            store,
            tenant,
            &ManualMatch {
                bank_transaction_ids: d.transaction_ids.clone(),
                record_ids: vec![record.id.clone()],
                note: Some(req.note.clone()),
            },
            actor,
        )
        .await?;
        record_id = Some(record.id);
    }
    let resolution = Resolution {
        action: req.action,
        account: req.account.clone(),
        note: req.note.clone(),
        record_id,
        resolved_by: actor.to_string(),
        resolved_at: Utc::now(),
    };
    Ok(store.resolve_discrepancy(tenant, id, &resolution).await?)
}

/// Completes a reconciliation (see [`crate::store::DiscrepancyStore::complete_run`]).
pub async fn complete(
    store: &dyn Store,
    tenant: &TenantId,
    run_id: &str,
    override_reason: Option<&str>,
    actor: &str,
) -> Result<Run, MatchError> {
    Ok(store.complete_run(tenant, run_id, override_reason, actor).await?)
}
