//! Reconciling an account over a period: the engine runs on what is still open, with the tenant's
//! active rules and learned memory; its matches, suggestions and discrepancies are stored as one
//! run, all at once. A dry run stores nothing.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, Utc};

use crate::domain::{BankTransaction, Record};
use crate::matching::{self, EngineConfig, Match, MatchStatus, Memory, ReconcileResult, Summary};
use crate::rules::{RuleError, RuleSet, DEFAULT_RULES};
use crate::store::model::new_id;
use crate::store::{
    Discrepancy, DiscrepancyKind, ItemStatus, MatchState, RecordQuery, Run, RunOutcome, RunStatus, Store, StoreError,
    StoredMatch, TenantId, TransactionQuery,
};

/// How far before the period a record may be dated and still be paid inside it.
pub const RECORDS_BEFORE_DAYS: i64 = 120;
/// How far after the period a record may be dated (paid early) and still match.
pub const RECORDS_AFTER_DAYS: i64 = 15;

/// Why a reconciliation could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The period is empty or reversed.
    #[error("invalid period: start_date {start} is after end_date {end}")]
    InvalidPeriod {
        /// First day.
        start: NaiveDate,
        /// Last day.
        end: NaiveDate,
    },
    /// A stored rule does not compile (it was valid when saved; the engine changed since).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] matching::EngineError),
    /// The stored memory is unreadable.
    #[error("the learned memory cannot be read: {0}")]
    Memory(String),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What to reconcile.
#[derive(Debug, Clone)]
pub struct ReconcileRequest {
    /// The account.
    pub account_id: String,
    /// First day of the period.
    pub start_date: NaiveDate,
    /// Last day of the period.
    pub end_date: NaiveDate,
    /// Compute everything, store nothing.
    pub dry_run: bool,
    /// Who asked (API key id, `cli`, `system`).
    pub actor: String,
}

/// What a reconciliation produced.
#[derive(Debug, Clone)]
pub struct ReconcileOutcome {
    /// The run (stored unless a dry run), with its summary.
    pub run: Run,
    /// The matches as stored (stored transaction ids, the books' record ids).
    pub matches: Vec<StoredMatch>,
    /// Discrepancies raised.
    pub discrepancies: Vec<Discrepancy>,
}

/// The tenant's rule set: the shipped defaults, where a saved rule of the same name replaces the
/// default and new names are added; all in name order (the names' numeric prefixes set priority).
pub async fn tenant_rules(store: &dyn Store, tenant: &TenantId) -> Result<RuleSet, ReconcileError> {
    tenant_rules_with(store, tenant, None).await
}

/// The tenant's rule set with one rule's source replaced (or added): the candidate set a rule
/// change is tried against before it is saved or activated.
pub async fn tenant_rules_with(
    store: &dyn Store,
    tenant: &TenantId,
    candidate: Option<(&str, &str)>,
) -> Result<RuleSet, ReconcileError> {
    let mut sources: Vec<(String, String)> =
        DEFAULT_RULES.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect();
    let saved = store.active_rules(tenant).await?.into_iter().map(|r| (r.name, r.source));
    for (name, source) in saved.chain(candidate.map(|(n, s)| (n.to_string(), s.to_string()))) {
        match sources.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = source,
            None => sources.push((name, source)),
        }
    }
    sources.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(RuleSet::from_sources(sources)?)
}

/// The tenant's learned memory and its version (0 when none is saved yet).
pub async fn tenant_memory(store: &dyn Store, tenant: &TenantId) -> Result<(Memory, u64), ReconcileError> {
    match store.load_memory(tenant).await? {
        Some((bytes, version)) => {
            let text = String::from_utf8(bytes).map_err(|e| ReconcileError::Memory(e.to_string()))?;
            Ok((Memory::from_json(&text).map_err(|e| ReconcileError::Memory(e.to_string()))?, version))
        }
        None => Ok((Memory::default(), 0)),
    }
}

/// The account's bank lines in the period that no live match holds.
async fn open_transactions(
    store: &dyn Store,
    tenant: &TenantId,
    req: &ReconcileRequest,
) -> Result<Vec<crate::store::StoredTransaction>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let q = TransactionQuery {
            from: Some(req.start_date),
            to: Some(req.end_date),
            cursor,
            limit: crate::store::MAX_PAGE,
            ..Default::default()
        };
        let page = store.list_transactions(tenant, &req.account_id, &q).await?;
        out.extend(page.items.into_iter().filter(|t| matches!(t.status, ItemStatus::Pending | ItemStatus::Unmatched)));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Records around the period, in the account's currency, that no live match holds.
async fn open_records(
    store: &dyn Store,
    tenant: &TenantId,
    req: &ReconcileRequest,
    currency: crate::domain::Currency,
) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let q = RecordQuery {
            from: Some(req.start_date - Duration::days(RECORDS_BEFORE_DAYS)),
            to: Some(req.end_date + Duration::days(RECORDS_AFTER_DAYS)),
            cursor,
            limit: crate::store::MAX_PAGE,
            ..Default::default()
        };
        let page = store.list_records(tenant, &q).await?;
        out.extend(
            page.items
                .into_iter()
                .filter(|r| matches!(r.status, ItemStatus::Pending | ItemStatus::Unmatched) && r.match_id.is_none())
                .filter(|r| r.record.amount.currency() == currency)
                .map(|r| r.record),
        );
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Runs a reconciliation.
pub async fn reconcile(
    store: &dyn Store,
    tenant: &TenantId,
    req: &ReconcileRequest,
    config: &EngineConfig,
) -> Result<ReconcileOutcome, ReconcileError> {
    if req.start_date > req.end_date {
        return Err(ReconcileError::InvalidPeriod { start: req.start_date, end: req.end_date });
    }
    let rules = tenant_rules(store, tenant).await?;
    execute(store, tenant, req, config, rules, None).await
}

/// A dry run with the given rules instead of the tenant's active ones: nothing is stored.
pub async fn dry_run_with_rules(
    store: &dyn Store,
    tenant: &TenantId,
    req: &ReconcileRequest,
    config: &EngineConfig,
    rules: RuleSet,
) -> Result<ReconcileOutcome, ReconcileError> {
    if req.start_date > req.end_date {
        return Err(ReconcileError::InvalidPeriod { start: req.start_date, end: req.end_date });
    }
    let req = ReconcileRequest { dry_run: true, ..req.clone() };
    execute(store, tenant, &req, config, rules, None).await
}

/// Stores a `running` run for `req` without running the engine, so that a caller can answer at
/// once with its id and have [`finish_started_run`] complete it elsewhere (a background task, or
/// another function in AWS). `req.dry_run` is not looked at: a dry run stores nothing, so it has
/// no run to start; call [`reconcile`] for it.
pub async fn start_run(store: &dyn Store, tenant: &TenantId, req: &ReconcileRequest) -> Result<Run, ReconcileError> {
    if req.start_date > req.end_date {
        return Err(ReconcileError::InvalidPeriod { start: req.start_date, end: req.end_date });
    }
    store.get_account(tenant, &req.account_id).await?;
    let run = Run {
        id: new_id("rec"),
        account_id: req.account_id.clone(),
        start_date: req.start_date,
        end_date: req.end_date,
        status: RunStatus::Running,
        summary: Summary::default(),
        created_by: req.actor.clone(),
        created_at: Utc::now(),
        finished_at: None,
        error: None,
        version: 1,
    };
    store.create_run(tenant, &run).await?;
    Ok(run)
}

/// Runs the engine for a run [`start_run`] stored and stores its outcome. Any failure leaves the
/// run `failed` with the reason, never stuck in `running`.
pub async fn finish_started_run(
    store: &dyn Store,
    tenant: &TenantId,
    run_id: &str,
    config: &EngineConfig,
) -> Result<ReconcileOutcome, ReconcileError> {
    let run = store.get_run(tenant, run_id).await?;
    if run.status != RunStatus::Running {
        return Err(
            StoreError::Conflict(format!("reconciliation {run_id} is {}, not running", run.status.as_str())).into()
        );
    }
    let req = ReconcileRequest {
        account_id: run.account_id.clone(),
        start_date: run.start_date,
        end_date: run.end_date,
        dry_run: false,
        actor: run.created_by.clone(),
    };
    let result = match tenant_rules(store, tenant).await {
        Ok(rules) => execute(store, tenant, &req, config, rules, Some(run.clone())).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        if let Ok(mut current) = store.get_run(tenant, run_id).await {
            if current.status == RunStatus::Running {
                current.status = RunStatus::Failed;
                current.finished_at = Some(Utc::now());
                current.error = Some(e.to_string());
                let _ = store.update_run(tenant, &current).await;
            }
        }
    }
    result
}

/// The engine over what is open in the period, with `rules`; stores the outcome unless a dry
/// run, into `started` when the run was stored already.
async fn execute(
    store: &dyn Store,
    tenant: &TenantId,
    req: &ReconcileRequest,
    config: &EngineConfig,
    rules: RuleSet,
    started: Option<Run>,
) -> Result<ReconcileOutcome, ReconcileError> {
    let started_at = std::time::Instant::now();
    let account = store.get_account(tenant, &req.account_id).await?;
    // Read side by side: on SQLite each read has a connection of its own.
    let (stored_txns, records, (memory, _), rejected) = tokio::try_join!(
        async { Ok::<_, ReconcileError>(open_transactions(store, tenant, req).await?) },
        async { Ok(open_records(store, tenant, req, account.currency).await?) },
        tenant_memory(store, tenant),
        async { Ok(store.rejected_pairs(tenant, &req.account_id).await?) },
    )?;
    let rejected = rejected_set(rejected);

    // The engine speaks the statement's own ids; the store keys lines by account + that id.
    let by_external: HashMap<String, String> =
        stored_txns.iter().map(|t| (t.transaction.id.to_string(), t.id.clone())).collect();
    let bank: Vec<BankTransaction> = stored_txns.iter().map(|t| t.transaction.clone()).collect();
    let config = config.clone();
    let records_for_engine = records.clone();
    let loaded_at = std::time::Instant::now();
    tracing::debug!(
        transactions = bank.len(),
        records = records.len(),
        seconds = (loaded_at - started_at).as_secs_f64(),
        "reconcile: open items loaded"
    );
    let mut result =
        tokio::task::spawn_blocking(move || matching::reconcile(&bank, &records_for_engine, &rules, &memory, &config))
            .await
            .map_err(StoreError::backend)??;
    let matched_at = std::time::Instant::now();
    tracing::debug!(seconds = (matched_at - loaded_at).as_secs_f64(), "reconcile: engine finished");

    let now = Utc::now();
    let run_id = started.as_ref().map(|r| r.id.clone()).unwrap_or_else(|| new_id("rec"));
    let to_stored = |ids: &[String]| ids.iter().filter_map(|e| by_external.get(e).cloned()).collect::<Vec<_>>();
    let mut matches: Vec<StoredMatch> = std::mem::take(&mut result.matches)
        .into_iter()
        .map(|m| {
            let bank_transaction_ids = to_stored(&m.bank_ids);
            stored_match(m, &run_id, &req.account_id, &req.actor, now, bank_transaction_ids)
        })
        .filter(|m| !is_rejected(m, &rejected))
        .collect();
    matches.sort_by(|a, b| a.id.cmp(&b.id));

    let unmatched_transactions = to_stored(&result.unmatched_bank);
    let discrepancies = raise_discrepancies(&result, &matches, &stored_txns, &records, req, &run_id, now);
    let summary = summarise(&result, &matches);

    let fresh = started.is_none();
    let mut run = started.unwrap_or(Run {
        id: run_id,
        account_id: req.account_id.clone(),
        start_date: req.start_date,
        end_date: req.end_date,
        status: RunStatus::Running,
        summary: Summary::default(),
        created_by: req.actor.clone(),
        created_at: now,
        finished_at: None,
        error: None,
        version: 1,
    });
    run.summary = summary.clone();
    if req.dry_run {
        run.status = RunStatus::Completed;
        run.finished_at = Some(Utc::now());
        return Ok(ReconcileOutcome { run, matches, discrepancies });
    }
    if fresh {
        store.create_run(tenant, &run).await?;
    }
    let mut finished = run.clone();
    finished.status = RunStatus::Completed;
    finished.finished_at = Some(Utc::now());
    let outcome = RunOutcome {
        matches,
        unmatched_transactions,
        unmatched_records: std::mem::take(&mut result.unmatched_records),
        discrepancies,
    };
    let prepared_at = std::time::Instant::now();
    tracing::debug!(seconds = (prepared_at - matched_at).as_secs_f64(), "reconcile: outcome prepared");
    let stored = match store.finish_run(tenant, &finished, &outcome).await {
        Ok(stored) => {
            tracing::debug!(
                matches = outcome.matches.len(),
                discrepancies = outcome.discrepancies.len(),
                seconds = prepared_at.elapsed().as_secs_f64(),
                "reconcile: outcome stored"
            );
            stored
        }
        Err(e) => {
            // Leave a visible failed run rather than one stuck in `running`.
            let mut failed = run.clone();
            failed.status = RunStatus::Failed;
            failed.finished_at = Some(Utc::now());
            failed.error = Some(e.to_string());
            let _ = store.update_run(tenant, &failed).await;
            return Err(e.into());
        }
    };
    let RunOutcome { matches, discrepancies, .. } = outcome;
    Ok(ReconcileOutcome { run: stored, matches, discrepancies })
}

fn stored_match(
    m: Match,
    run_id: &str,
    account_id: &str,
    actor: &str,
    now: chrono::DateTime<Utc>,
    bank_transaction_ids: Vec<String>,
) -> StoredMatch {
    StoredMatch {
        // Unique across runs: the engine's id is deterministic within one run only.
        id: crate::store::model::derived_id("mat", &[run_id, &m.id]),
        run_id: Some(run_id.to_string()),
        account_id: account_id.to_string(),
        state: match m.status {
            MatchStatus::Matched => MatchState::Matched,
            MatchStatus::Suggested => MatchState::Suggested,
            MatchStatus::Discrepancy => MatchState::Discrepancy,
        },
        bank_transaction_ids,
        record_ids: m.record_ids,
        confidence: m.confidence,
        method: m.method,
        rule: m.rule,
        difference: m.difference,
        explanation: m.explanation,
        note: None,
        created_by: actor.to_string(),
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

/// The groups a person rejected, each side sorted, so that a match is looked up once.
fn rejected_set(rejected: Vec<(Vec<String>, Vec<String>)>) -> std::collections::HashSet<(Vec<String>, Vec<String>)> {
    rejected
        .into_iter()
        .map(|(mut b, mut r)| {
            b.sort();
            r.sort();
            (b, r)
        })
        .collect()
}

fn is_rejected(m: &StoredMatch, rejected: &std::collections::HashSet<(Vec<String>, Vec<String>)>) -> bool {
    if rejected.is_empty() {
        return false;
    }
    let mut bank = m.bank_transaction_ids.clone();
    let mut recs = m.record_ids.clone();
    bank.sort();
    recs.sort();
    rejected.contains(&(bank, recs))
}

/// Discrepancies a run raises: amount mismatches of its discrepancy matches, bank lines the books
/// lack, and stale records (dated before the period) the bank never showed. Records dated inside
/// the period that stay open are outstanding items (checks not yet cashed, deposits in transit),
/// not discrepancies.
fn raise_discrepancies(
    result: &ReconcileResult,
    matches: &[StoredMatch],
    txns: &[crate::store::StoredTransaction],
    records: &[Record],
    req: &ReconcileRequest,
    run_id: &str,
    now: chrono::DateTime<Utc>,
) -> Vec<Discrepancy> {
    let base = |kind, amount, date, description: String, proposal: Option<String>| Discrepancy {
        id: new_id("dis"),
        account_id: req.account_id.clone(),
        run_id: Some(run_id.to_string()),
        kind,
        amount,
        transaction_ids: vec![],
        record_ids: vec![],
        match_id: None,
        date,
        description,
        proposal,
        resolution: None,
        created_at: now,
        version: 1,
    };
    let txn_by_id: HashMap<&str, &crate::store::StoredTransaction> = txns.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut out = Vec::new();
    for m in matches.iter().filter(|m| m.state == MatchState::Discrepancy) {
        let date = m
            .bank_transaction_ids
            .iter()
            .filter_map(|id| txn_by_id.get(id.as_str()).map(|t| t.transaction.booking_date))
            .max()
            .unwrap_or(req.end_date);
        let mut d = base(
            DiscrepancyKind::AmountMismatch,
            m.difference,
            date,
            format!("bank and books differ by {} for records {}", m.difference, m.record_ids.join(", ")),
            m.explanation.proposed_adjustment.clone(),
        );
        d.transaction_ids = m.bank_transaction_ids.clone();
        d.record_ids = m.record_ids.clone();
        d.match_id = Some(m.id.clone());
        out.push(d);
    }
    let unmatched: std::collections::HashSet<&str> = result.unmatched_bank.iter().map(String::as_str).collect();
    for t in txns.iter().filter(|t| unmatched.contains(t.transaction.id.as_ref())) {
        let mut d = base(
            DiscrepancyKind::MissingInBooks,
            t.transaction.amount.amount(),
            t.transaction.booking_date,
            "a bank line with no record in the books".to_string(),
            Some("create a record for it (create_record), or write it off to a ledger account".into()),
        );
        d.transaction_ids = vec![t.id.clone()];
        out.push(d);
    }
    let open_records: std::collections::HashSet<&str> = result.unmatched_records.iter().map(String::as_str).collect();
    for r in records.iter().filter(|r| open_records.contains(r.id.as_str()) && r.date < req.start_date) {
        let mut d = base(
            DiscrepancyKind::MissingInBank,
            r.amount.amount(),
            r.date,
            format!("{} {} dated before the period has not reached the bank", r.kind, r.id),
            Some("check whether it was paid; void or correct it in the books if not".into()),
        );
        d.record_ids = vec![r.id.clone()];
        out.push(d);
    }
    out
}

fn summarise(result: &ReconcileResult, matches: &[StoredMatch]) -> Summary {
    let count = |s: MatchState| matches.iter().filter(|m| m.state == s).count();
    let mut summary = result.summary.clone();
    summary.matched = count(MatchState::Matched);
    summary.suggested = count(MatchState::Suggested);
    summary.discrepancies = count(MatchState::Discrepancy);
    summary
}
