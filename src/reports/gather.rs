//! Collects a report's [`ReportData`] from the store: the account's history up to the period end,
//! the matches that hold its items or that the period's runs proposed, its discrepancies, and the
//! audit events of all of these.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::model::{BankLine, BookLine, ReportData};
use crate::domain::{Currency, Record};
use crate::matching::{self, ReconcileResult};
use crate::store::{
    ItemStatus, MatchState, RecordQuery, Store, StoreError, StoredMatch, TenantId, TransactionQuery, MAX_PAGE,
};

/// Everything the report needs about `account_id` up to `end`.
pub async fn from_store(
    store: &dyn Store,
    tenant: &TenantId,
    account_id: &str,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<ReportData, StoreError> {
    let account = store.get_account(tenant, account_id).await?;
    let imports = store.list_imports(tenant, account_id).await?;
    let opening = account
        .opening_balance
        .or_else(|| imports.iter().find_map(|i| i.opening_balance))
        .map(|m| m.amount())
        .unwrap_or_default();
    let stated_closing = imports
        .iter()
        .filter(|i| i.end_date == Some(end))
        .filter_map(|i| {
            i.closing_balance.map(|c| (c.amount(), format!("closing balance of statement {}", i.file_name)))
        })
        .next_back();

    let mut bank_lines = Vec::new();
    let mut cursor = None;
    loop {
        let q = TransactionQuery { to: Some(end), cursor, limit: MAX_PAGE, ..Default::default() };
        let page = store.list_transactions(tenant, account_id, &q).await?;
        bank_lines.extend(page.items);
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut records = Vec::new();
    let mut cursor = None;
    loop {
        let q = RecordQuery { to: Some(end), cursor, limit: MAX_PAGE, ..Default::default() };
        let page = store.list_records(tenant, &q).await?;
        records.extend(page.items.into_iter().filter(|r| r.record.amount.currency() == account.currency));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }

    // Matches: those holding the period's items, and every match of the account's runs that
    // overlap the period (suggestions and rejections hold nothing). Runs are found in the trail.
    let mut match_ids: BTreeSet<String> = bank_lines
        .iter()
        .filter_map(|t| t.match_id.clone())
        .chain(records.iter().filter_map(|r| r.match_id.clone()))
        .collect();
    let mut audit_all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.list_audit(tenant, None, after, MAX_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        audit_all.extend(page);
    }
    let run_ids: BTreeSet<&str> =
        audit_all.iter().filter(|e| e.entity == "reconciliation").map(|e| e.entity_id.as_str()).collect();
    let mut runs = BTreeSet::new();
    for id in run_ids {
        let run = match store.get_run(tenant, id).await {
            Ok(run) => run,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        if run.account_id != account_id || run.start_date > end || run.end_date < start {
            continue;
        }
        let mut cursor: Option<String> = None;
        loop {
            let page = store.list_matches(tenant, &run.id, None, cursor.as_deref(), MAX_PAGE).await?;
            match_ids.extend(page.items.into_iter().map(|m| m.id));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        runs.insert(run.id);
    }
    let mut matches = Vec::new();
    for id in &match_ids {
        match store.get_match(tenant, id).await {
            Ok(m) => matches.push(m),
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    // Superseded and rejected proposals are history, not part of the period's picture.
    matches.retain(|m| !matches!(m.state, MatchState::Superseded));

    let mut discrepancies = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_discrepancies(tenant, Some(account_id), None, cursor.as_deref(), MAX_PAGE).await?;
        discrepancies.extend(page.items.into_iter().filter(|d| d.date <= end));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let concerned: BTreeSet<&str> = matches
        .iter()
        .map(|m| m.id.as_str())
        .chain(discrepancies.iter().map(|d| d.id.as_str()))
        .chain(runs.iter().map(String::as_str))
        .collect();
    let audit = audit_all.iter().filter(|e| concerned.contains(e.entity_id.as_str())).cloned().collect();

    Ok(ReportData {
        account_id: account.id.clone(),
        account_name: account.name.clone(),
        currency: account.currency,
        start_date: start,
        end_date: end,
        opening_balance: opening,
        stated_closing,
        bank_lines: bank_lines
            .into_iter()
            .map(|t| BankLine {
                id: t.id,
                date: t.transaction.booking_date,
                amount: t.transaction.amount.amount(),
                description: t.transaction.description.into(),
                status: t.status,
            })
            .collect(),
        records: records.into_iter().map(|r| book_line(r.record, r.status)).collect(),
        matches,
        discrepancies,
        audit,
    })
}

fn book_line(r: Record, status: ItemStatus) -> BookLine {
    let description = [r.counterparty, r.description].into_iter().flatten().collect::<Vec<_>>().join(" · ");
    BookLine {
        id: r.id,
        kind: r.kind.as_str().to_string(),
        date: r.date,
        amount: r.amount.amount(),
        description,
        status,
    }
}

/// The one-shot statement: what `bankrec reconcile --report` knows without a store.
#[derive(Debug, Clone)]
pub struct OneShot<'a> {
    /// The account's name for the header (the statement's account id).
    pub account: String,
    /// The currency.
    pub currency: Currency,
    /// The bank lines, as parsed.
    pub bank: &'a [crate::domain::BankTransaction],
    /// The records, as read.
    pub records: &'a [Record],
    /// What the engine found.
    pub result: &'a ReconcileResult,
    /// The statement's opening balance, when stated.
    pub opening_balance: Option<Decimal>,
    /// The statement's closing balance, when stated.
    pub closing_balance: Option<Decimal>,
    /// The period; the bank lines' first and last dates when not given.
    pub period: Option<(NaiveDate, NaiveDate)>,
}

/// Report data for an in-memory reconciliation: engine matches stand for stored ones (nothing is
/// confirmed, no discrepancy is raised or resolved, and there is no audit trail).
pub fn from_result(input: &OneShot<'_>) -> ReportData {
    let dates = input.bank.iter().map(|t| t.booking_date);
    let (start, end) = input.period.unwrap_or_else(|| {
        let min = dates.clone().min().unwrap_or_default();
        (min, dates.max().unwrap_or(min))
    });
    let mut state_of: BTreeMap<&str, ItemStatus> = BTreeMap::new();
    let mut matches = Vec::new();
    let now = chrono::Utc::now();
    for m in &input.result.matches {
        let state = match m.status {
            matching::MatchStatus::Matched => MatchState::Matched,
            matching::MatchStatus::Suggested => MatchState::Suggested,
            matching::MatchStatus::Discrepancy => MatchState::Discrepancy,
        };
        if state.is_live() {
            let status = if state == MatchState::Discrepancy { ItemStatus::Discrepancy } else { ItemStatus::Matched };
            for id in m.bank_ids.iter().chain(m.record_ids.iter()) {
                state_of.insert(id.as_str(), status);
            }
        }
        matches.push(StoredMatch {
            id: m.id.clone(),
            run_id: None,
            account_id: input.account.clone(),
            state,
            bank_transaction_ids: m.bank_ids.clone(),
            record_ids: m.record_ids.clone(),
            confidence: m.confidence,
            method: m.method,
            rule: m.rule.clone(),
            difference: m.difference,
            explanation: m.explanation.clone(),
            note: None,
            created_by: "cli".into(),
            created_at: now,
            updated_at: now,
            version: 1,
        });
    }
    let status = |id: &str| state_of.get(id).copied().unwrap_or(ItemStatus::Unmatched);
    let opening = input.opening_balance.unwrap_or_default();
    ReportData {
        account_id: input.account.clone(),
        account_name: input.account.clone(),
        currency: input.currency,
        start_date: start,
        end_date: end,
        opening_balance: opening,
        stated_closing: input.closing_balance.map(|c| (c, "closing balance of the statement".to_string())),
        bank_lines: input
            .bank
            .iter()
            .map(|t| BankLine {
                id: t.id.to_string(),
                date: t.booking_date,
                amount: t.amount.amount(),
                description: t.description.to_string(),
                status: status(&t.id),
            })
            .collect(),
        records: input
            .records
            .iter()
            .filter(|r| r.amount.currency() == input.currency)
            .map(|r| book_line(r.clone(), status(&r.id)))
            .collect(),
        matches,
        discrepancies: Vec::new(),
        audit: Vec::new(),
    }
}
