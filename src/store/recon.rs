//! Reconciliation state: runs, the matches they propose or people make, and the append-only audit
//! trail. Holds the rule that makes matching safe under concurrency: a bank transaction or a
//! record is claimed by at most one live match, and every claim is taken atomically with the
//! match that takes it.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::model::{ItemStatus, Page, TenantId};
use super::StoreError;
use crate::matching::{Explanation, Method, Summary};

/// Where a reconciliation run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The engine is working on it.
    Running,
    /// Matches are stored and await review.
    Completed,
    /// The engine or the store failed; `error` says why.
    Failed,
    /// Completed and signed off: its items are locked.
    Reconciled,
}

impl RunStatus {
    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Reconciled => "reconciled",
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "reconciled" => RunStatus::Reconciled,
            _ => return Err(format!("unknown run status {s:?}")),
        })
    }
}

/// One reconciliation of an account over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// `rec_...`
    pub id: String,
    /// The account reconciled.
    pub account_id: String,
    /// First day of the period.
    pub start_date: NaiveDate,
    /// Last day of the period.
    pub end_date: NaiveDate,
    /// Where it stands.
    pub status: RunStatus,
    /// Counts, once the engine has run.
    pub summary: Summary,
    /// Who started it (API key id, `cli` or `system`).
    pub created_by: String,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
    /// Incremented on every change (optimistic concurrency).
    pub version: u64,
}

/// A match's state. Matched, discrepancy, confirmed, manual and reconciled matches are *live*:
/// they claim their items. Suggestions claim nothing until confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchState {
    /// Found by the engine with enough confidence to book.
    Matched,
    /// Proposed by the engine for review.
    Suggested,
    /// Belongs together with an amount difference.
    Discrepancy,
    /// A suggestion or discrepancy a person confirmed.
    Confirmed,
    /// Made by hand.
    Manual,
    /// Rejected by a person: never proposed again.
    Rejected,
    /// Undone by a person (unmatch).
    Unmatched,
    /// Replaced by a later run's proposals.
    Superseded,
    /// Part of a completed, locked reconciliation.
    Reconciled,
}

impl MatchState {
    /// Every state.
    pub const ALL: [MatchState; 9] = [
        MatchState::Matched,
        MatchState::Suggested,
        MatchState::Discrepancy,
        MatchState::Confirmed,
        MatchState::Manual,
        MatchState::Rejected,
        MatchState::Unmatched,
        MatchState::Superseded,
        MatchState::Reconciled,
    ];

    /// Whether a match in this state claims its items.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            MatchState::Matched
                | MatchState::Discrepancy
                | MatchState::Confirmed
                | MatchState::Manual
                | MatchState::Reconciled
        )
    }

    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchState::Matched => "matched",
            MatchState::Suggested => "suggested",
            MatchState::Discrepancy => "discrepancy",
            MatchState::Confirmed => "confirmed",
            MatchState::Manual => "manual",
            MatchState::Rejected => "rejected",
            MatchState::Unmatched => "unmatched",
            MatchState::Superseded => "superseded",
            MatchState::Reconciled => "reconciled",
        }
    }
}

impl std::str::FromStr for MatchState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MatchState::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| format!("unknown match status {s:?}"))
    }
}

/// A match as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMatch {
    /// `mat_...`
    pub id: String,
    /// The run that proposed it; `None` for a manual match.
    pub run_id: Option<String>,
    /// The account of its bank transactions.
    pub account_id: String,
    /// Its state.
    pub state: MatchState,
    /// Stored ids of its bank transactions.
    pub bank_transaction_ids: Vec<String>,
    /// The books' ids of its records.
    pub record_ids: Vec<String>,
    /// Calibrated confidence in [0, 1] (1 for a manual match).
    pub confidence: f64,
    /// What found it.
    pub method: Method,
    /// The rule that decided, when one did.
    pub rule: Option<String>,
    /// Bank total minus records total.
    pub difference: Decimal,
    /// Why.
    pub explanation: Explanation,
    /// A person's note.
    pub note: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
    /// Incremented on every change.
    pub version: u64,
}

impl StoredMatch {
    /// The status a live match gives the items it claims: `reconciled` once locked, `discrepancy`
    /// while the amounts differ, else `matched`.
    pub fn claimed_item_status(&self) -> ItemStatus {
        if self.state == MatchState::Reconciled {
            ItemStatus::Reconciled
        } else if self.state == MatchState::Discrepancy || !self.difference.is_zero() {
            ItemStatus::Discrepancy
        } else {
            ItemStatus::Matched
        }
    }
}

/// An append-only audit event: who changed what, when, and the state before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the tenant's trail (increasing).
    pub seq: u64,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: API key id, `cli` or `system`.
    pub actor: String,
    /// The kind of object (`match`, `run`, ...).
    pub entity: String,
    /// Its id.
    pub entity_id: String,
    /// What happened (`match.created`, `match.confirmed`, ...).
    pub action: String,
    /// State before, as JSON (null when created).
    pub before: serde_json::Value,
    /// State after, as JSON.
    pub after: serde_json::Value,
}

/// How a person changes a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchAction {
    /// A suggestion or discrepancy becomes confirmed (and claims its items).
    Confirm,
    /// A proposal is rejected (its claims are released; it is never proposed again).
    Reject,
    /// A live, unreconciled match is undone (its claims are released).
    Unmatch,
}

impl MatchAction {
    /// The states this action starts from.
    pub fn allowed_from(&self) -> &'static [MatchState] {
        match self {
            MatchAction::Confirm => &[MatchState::Suggested, MatchState::Discrepancy],
            MatchAction::Reject => &[MatchState::Suggested, MatchState::Matched, MatchState::Discrepancy],
            MatchAction::Unmatch => {
                &[MatchState::Matched, MatchState::Discrepancy, MatchState::Confirmed, MatchState::Manual]
            }
        }
    }

    /// The state it leads to.
    pub fn target(&self) -> MatchState {
        match self {
            MatchAction::Confirm => MatchState::Confirmed,
            MatchAction::Reject => MatchState::Rejected,
            MatchAction::Unmatch => MatchState::Unmatched,
        }
    }

    /// The match after this action, or `Conflict` when the match is not in a state the action
    /// starts from. Every adapter applies actions through this one rule.
    pub fn apply(&self, before: &StoredMatch, note: Option<&str>) -> Result<StoredMatch, StoreError> {
        if !self.allowed_from().contains(&before.state) {
            return Err(StoreError::Conflict(format!(
                "match {} is {} and cannot be {}",
                before.id,
                before.state.as_str(),
                self.target().as_str()
            )));
        }
        let mut after = before.clone();
        after.state = self.target();
        after.note = note.map(str::to_string).or_else(|| before.note.clone());
        after.updated_at = Utc::now();
        after.version += 1;
        Ok(after)
    }

    /// The audit action name.
    pub fn audit_name(&self) -> &'static str {
        match self {
            MatchAction::Confirm => "match.confirmed",
            MatchAction::Reject => "match.rejected",
            MatchAction::Unmatch => "match.unmatched",
        }
    }
}

/// How a run that records a failed statement import states its reason: the file's name and what
/// was wrong with it, written for the people who uploaded it.
pub fn import_failure_reason(file: &str, why: &str) -> String {
    format!("{IMPORT_FAILURE}{file} could not be imported: {why}")
}

/// Whether a run's error is a failed import's reason (see [`import_failure_reason`]), which may be
/// shown to the tenant; other errors are internal.
pub fn is_import_failure(error: &str) -> bool {
    error.starts_with(IMPORT_FAILURE) && error.contains(" could not be imported: ")
}

const IMPORT_FAILURE: &str = "statement ";

/// Runs, matches and the audit trail.
#[async_trait]
pub trait ReconStore: Send + Sync {
    /// Stores a new run (status `running`).
    async fn create_run(&self, tenant: &TenantId, run: &Run) -> Result<(), StoreError>;

    /// One run.
    async fn get_run(&self, tenant: &TenantId, id: &str) -> Result<Run, StoreError>;

    /// The account's runs, newest first: reconciliations and statements whose import failed
    /// (status `failed`, with the reason in `error`).
    async fn list_runs(
        &self,
        tenant: &TenantId,
        account_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Run>, StoreError>;

    /// Atomically: supersedes the account's earlier open suggestions; stores `matches`, where
    /// every live one claims its items (a `Conflict` writes nothing when any item is claimed by
    /// another live match already); sets claimed items' status (`matched`, or `discrepancy` for
    /// a difference), marks `unmatched_transactions` / `unmatched_records` `unmatched` where they
    /// are not claimed; stores the run's discrepancies; stores `run` (its `version` must be the
    /// stored one; it is incremented); appends one audit event per match and one for the run.
    async fn finish_run(&self, tenant: &TenantId, run: &Run, outcome: &RunOutcome) -> Result<Run, StoreError>;

    /// Updates a run's status/summary/error (optimistic: `run.version` must be the stored one).
    async fn update_run(&self, tenant: &TenantId, run: &Run) -> Result<Run, StoreError>;

    /// One match.
    async fn get_match(&self, tenant: &TenantId, id: &str) -> Result<StoredMatch, StoreError>;

    /// A run's matches by id, optionally of one state.
    async fn list_matches(
        &self,
        tenant: &TenantId,
        run_id: &str,
        state: Option<MatchState>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<StoredMatch>, StoreError>;

    /// Stores a manual match, claiming its items atomically (`Conflict` if any is in a live
    /// match; `NotFound` if any does not exist), with an audit event.
    async fn insert_match(&self, tenant: &TenantId, m: &StoredMatch) -> Result<(), StoreError>;

    /// Applies a person's action to a match atomically, claiming or releasing its items, with an
    /// audit event. `Conflict` when the match is not in a state the action starts from, or when a
    /// confirmation would claim an item another live match holds.
    async fn apply_match_action(
        &self,
        tenant: &TenantId,
        id: &str,
        action: MatchAction,
        actor: &str,
        note: Option<&str>,
    ) -> Result<StoredMatch, StoreError>;

    /// Whether a rejected match with exactly these items exists (rejections are never proposed
    /// again).
    async fn rejected_pairs(
        &self,
        tenant: &TenantId,
        account_id: &str,
    ) -> Result<Vec<(Vec<String>, Vec<String>)>, StoreError>;

    /// The tenant's audit events, oldest first, optionally for one entity.
    async fn list_audit(
        &self,
        tenant: &TenantId,
        entity_id: Option<&str>,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}

/// What kind of discrepancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyKind {
    /// Matched items whose amounts differ (fees, short payments).
    AmountMismatch,
    /// A bank line with no record in the books (fees, interest, unknown receipts).
    MissingInBooks,
    /// A record that never reached the bank.
    MissingInBank,
    /// The same movement twice.
    Duplicate,
    /// A statement whose balances do not chain or do not add up.
    Balance,
    /// An item dated outside the reconciled period.
    DateOutOfPeriod,
}

impl DiscrepancyKind {
    /// Every kind.
    pub const ALL: [DiscrepancyKind; 6] = [
        DiscrepancyKind::AmountMismatch,
        DiscrepancyKind::MissingInBooks,
        DiscrepancyKind::MissingInBank,
        DiscrepancyKind::Duplicate,
        DiscrepancyKind::Balance,
        DiscrepancyKind::DateOutOfPeriod,
    ];

    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DiscrepancyKind::AmountMismatch => "amount_mismatch",
            DiscrepancyKind::MissingInBooks => "missing_in_books",
            DiscrepancyKind::MissingInBank => "missing_in_bank",
            DiscrepancyKind::Duplicate => "duplicate",
            DiscrepancyKind::Balance => "balance",
            DiscrepancyKind::DateOutOfPeriod => "date_out_of_period",
        }
    }
}

impl std::str::FromStr for DiscrepancyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DiscrepancyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown discrepancy kind {s:?}"))
    }
}

/// How a discrepancy was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionAction {
    /// Written off to a named ledger account (bank fees, small differences).
    WriteOff,
    /// Corrected by an adjustment entry.
    Adjust,
    /// A record was created in the books for it.
    CreateRecord,
    /// Accepted as is, with a note.
    Ignore,
}

impl ResolutionAction {
    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ResolutionAction::WriteOff => "write_off",
            ResolutionAction::Adjust => "adjust",
            ResolutionAction::CreateRecord => "create_record",
            ResolutionAction::Ignore => "ignore",
        }
    }
}

/// The resolution of a discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// What was done.
    pub action: ResolutionAction,
    /// The ledger account written off to (required for `write_off`).
    pub account: Option<String>,
    /// Why (required).
    pub note: String,
    /// The record created for it (`create_record`).
    pub record_id: Option<String>,
    /// Who resolved it.
    pub resolved_by: String,
    /// When.
    pub resolved_at: DateTime<Utc>,
}

/// Something that keeps a reconciliation from balancing until a person resolves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discrepancy {
    /// `dis_...`
    pub id: String,
    /// The account.
    pub account_id: String,
    /// The run that raised it (none for import-time balance discrepancies).
    pub run_id: Option<String>,
    /// What kind.
    pub kind: DiscrepancyKind,
    /// The amount that does not reconcile (signed, in the account's currency).
    pub amount: Decimal,
    /// The bank lines concerned (stored ids).
    pub transaction_ids: Vec<String>,
    /// The records concerned (the books' ids).
    pub record_ids: Vec<String>,
    /// The match concerned (amount mismatches).
    pub match_id: Option<String>,
    /// The date it concerns (to age it and to place it in a period).
    pub date: NaiveDate,
    /// What is wrong, for people.
    pub description: String,
    /// A proposed fix (e.g. "write off 2.50 to bank fees").
    pub proposal: Option<String>,
    /// `None` while open.
    pub resolution: Option<Resolution>,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
    /// Incremented on every change.
    pub version: u64,
}

/// What a finished run stores, all at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOutcome {
    /// The matches, suggestions and discrepancy matches.
    pub matches: Vec<StoredMatch>,
    /// Stored ids of bank lines left unmatched.
    pub unmatched_transactions: Vec<String>,
    /// Record ids left unmatched.
    pub unmatched_records: Vec<String>,
    /// Discrepancies raised.
    pub discrepancies: Vec<Discrepancy>,
}

/// Discrepancies, their resolution, and locking a completed period.
#[async_trait]
pub trait DiscrepancyStore: Send + Sync {
    /// Stores new discrepancies (import-time ones; a run's come with [`ReconStore::finish_run`]).
    async fn add_discrepancies(&self, tenant: &TenantId, items: &[Discrepancy], actor: &str) -> Result<(), StoreError>;

    /// One discrepancy.
    async fn get_discrepancy(&self, tenant: &TenantId, id: &str) -> Result<Discrepancy, StoreError>;

    /// Discrepancies by date then id, optionally of one account and open/resolved.
    async fn list_discrepancies(
        &self,
        tenant: &TenantId,
        account_id: Option<&str>,
        open: Option<bool>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Discrepancy>, StoreError>;

    /// Resolves an open discrepancy (`Conflict` if already resolved), with an audit event.
    async fn resolve_discrepancy(
        &self,
        tenant: &TenantId,
        id: &str,
        resolution: &Resolution,
    ) -> Result<Discrepancy, StoreError>;

    /// Completes a run: refused (`Conflict`) while the account has open discrepancies dated in
    /// the run's period, unless `override_reason` is given. Marks the run `reconciled`, its live
    /// matches and their items `reconciled` (locked: later changes are refused), with an audit
    /// event.
    async fn complete_run(
        &self,
        tenant: &TenantId,
        run_id: &str,
        override_reason: Option<&str>,
        actor: &str,
    ) -> Result<Run, StoreError>;

    /// Unlocks a reconciled run (explicit and audited): the run goes back to `completed`, its
    /// matches to `confirmed`, their items to `matched`.
    async fn unlock_run(&self, tenant: &TenantId, run_id: &str, reason: &str, actor: &str) -> Result<Run, StoreError>;
}

/// One saved version of a rule script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleVersion {
    /// The rule's name (unique per tenant).
    pub name: String,
    /// 1, 2, 3... per name.
    pub version: u64,
    /// The Rhai source.
    pub source: String,
    /// Whether this is the version in force.
    pub active: bool,
    /// Who saved it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Versions of a tenant's rule scripts (one active per name) and the engine's learned memory.
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// Saves `source` as the next version of `name` and makes it the active one, with an audit
    /// event. Validation is the caller's job (scripts are compiled before they are saved).
    async fn save_rule(
        &self,
        tenant: &TenantId,
        name: &str,
        source: &str,
        actor: &str,
    ) -> Result<RuleVersion, StoreError>;

    /// The active version of every rule, by name.
    async fn active_rules(&self, tenant: &TenantId) -> Result<Vec<RuleVersion>, StoreError>;

    /// All versions of one rule, newest first (`NotFound` if it has none).
    async fn rule_versions(&self, tenant: &TenantId, name: &str) -> Result<Vec<RuleVersion>, StoreError>;

    /// Makes an earlier version active again (rollback), with an audit event.
    async fn activate_rule(
        &self,
        tenant: &TenantId,
        name: &str,
        version: u64,
        actor: &str,
    ) -> Result<RuleVersion, StoreError>;

    /// The learned memory (JSON) and its version, if any was saved.
    async fn load_memory(&self, tenant: &TenantId) -> Result<Option<(Vec<u8>, u64)>, StoreError>;

    /// Saves the memory if the stored version is still `expected` (0: none saved yet);
    /// `Conflict` otherwise. Returns the new version.
    async fn save_memory(&self, tenant: &TenantId, memory: &[u8], expected: u64) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion() -> StoredMatch {
        StoredMatch {
            id: "mat_1".into(),
            run_id: Some("rec_1".into()),
            account_id: "acc_1".into(),
            state: MatchState::Suggested,
            bank_transaction_ids: vec!["txn_1".into()],
            record_ids: vec!["R1".into()],
            confidence: 0.7,
            method: Method::Score,
            rule: None,
            difference: Decimal::ZERO,
            explanation: Default::default(),
            note: Some("first look".into()),
            created_by: "key_a".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            version: 3,
        }
    }

    #[test]
    fn an_action_moves_the_state_bumps_the_version_and_keeps_the_note_unless_given_one() {
        let confirmed = MatchAction::Confirm.apply(&suggestion(), None).unwrap();
        assert_eq!((confirmed.state, confirmed.version), (MatchState::Confirmed, 4));
        assert_eq!(confirmed.note.as_deref(), Some("first look"));
        let rejected = MatchAction::Reject.apply(&suggestion(), Some("wrong payee")).unwrap();
        assert_eq!(rejected.note.as_deref(), Some("wrong payee"));
    }

    #[test]
    fn an_action_from_a_state_it_does_not_start_from_is_a_conflict() {
        let confirmed = MatchAction::Confirm.apply(&suggestion(), None).unwrap();
        assert!(matches!(MatchAction::Confirm.apply(&confirmed, None), Err(StoreError::Conflict(_))));
        let mut locked = suggestion();
        locked.state = MatchState::Reconciled;
        assert!(matches!(MatchAction::Unmatch.apply(&locked, None), Err(StoreError::Conflict(_))));
    }

    #[test]
    fn claimed_items_are_discrepancies_while_the_amounts_differ() {
        let mut m = suggestion();
        m.state = MatchState::Confirmed;
        assert_eq!(m.claimed_item_status(), ItemStatus::Matched);
        m.difference = Decimal::new(-250, 2);
        assert_eq!(m.claimed_item_status(), ItemStatus::Discrepancy);
        m.state = MatchState::Reconciled;
        assert_eq!(m.claimed_item_status(), ItemStatus::Reconciled);
    }
}
