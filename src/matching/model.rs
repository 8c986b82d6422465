//! What the matching engine produces: matches with their explanation, and a summary. This is the
//! contract of `bankrec reconcile --json` and of the stores.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// How far a proposed match got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchStatus {
    /// Certain enough to book without review: amounts equal, no close competitor.
    Matched,
    /// Plausible but ambiguous or weaker: a person confirms or rejects it.
    Suggested,
    /// The items belong together but the amounts differ within tolerance (fees, short payments);
    /// `difference` says by how much.
    Discrepancy,
}

/// Which mechanism found a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A Rhai rule accepted it.
    Rule,
    /// A reference (invoice number, check number, end-to-end id) tied the items together.
    Reference,
    /// The weighted score of amount, date, name and reference evidence.
    Score,
    /// Learned memory (counterparty aliases, habits) decided it.
    Memory,
    /// A bounded subset-sum search found a group (batch deposit, instalments).
    SubsetSum,
    /// Two of the tenant's own accounts: a transfer.
    Transfer,
    /// A person matched it by hand.
    Manual,
}

/// Why a match was made: enough for a reviewer or an auditor to follow the decision.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Explanation {
    /// Feature name → contribution to the score (amount, date, reference, name, memory, rule...).
    pub features: BTreeMap<String, f64>,
    /// The weighted score before calibration.
    pub score: f64,
    /// Human-readable reasons, in the order they were applied.
    pub reasons: Vec<String>,
    /// Other candidates that were considered, best first (record ids or bank ids with confidence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
    /// A proposed adjustment for a discrepancy (e.g. "book 2.50 EUR bank fee").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_adjustment: Option<String>,
}

/// A competing candidate that lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    /// Bank transaction ids of the alternative.
    pub bank_ids: Vec<String>,
    /// Record ids of the alternative.
    pub record_ids: Vec<String>,
    /// Its confidence.
    pub confidence: f64,
}

/// A group of bank transactions and records that belong together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// Deterministic id (derived from the ids it groups).
    pub id: String,
    /// Matched, suggested or discrepancy.
    pub status: MatchStatus,
    /// The statements' own transaction ids.
    pub bank_ids: Vec<String>,
    /// The books' record ids.
    pub record_ids: Vec<String>,
    /// Calibrated confidence in [0, 1].
    pub confidence: f64,
    /// The mechanism that found it.
    pub method: Method,
    /// The rule that decided, when one did.
    pub rule: Option<String>,
    /// Bank total minus records total (zero for an exact match).
    #[serde(with = "rust_decimal::serde::str")]
    pub difference: Decimal,
    /// Why.
    pub explanation: Explanation,
}

/// Counts for one run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Bank transactions considered.
    pub bank_transactions: usize,
    /// Records considered.
    pub records: usize,
    /// Matches with status `matched`.
    pub matched: usize,
    /// Matches with status `suggested`.
    pub suggested: usize,
    /// Matches with status `discrepancy`.
    pub discrepancies: usize,
    /// Bank transactions in no match.
    pub unmatched_bank: usize,
    /// Records in no match.
    pub unmatched_records: usize,
    /// Share of bank transactions matched without review (status `matched` or `discrepancy`), in
    /// [0, 1].
    pub auto_match_rate: f64,
}

/// The result of one reconciliation: the `bankrec reconcile --json` object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReconcileResult {
    /// Counts.
    pub summary: Summary,
    /// Matches, suggestions and discrepancies, in a deterministic order.
    pub matches: Vec<Match>,
    /// Bank transaction ids in no match.
    pub unmatched_bank: Vec<String>,
    /// Record ids in no match.
    pub unmatched_records: Vec<String>,
}
