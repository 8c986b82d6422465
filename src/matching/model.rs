//! What the matching engine produces: matches with their explanation, and a summary. This is the
//! contract of `bankrec reconcile --json` and of the stores.

use std::borrow::Cow;
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
    pub features: Features,
    /// The weighted score before calibration.
    pub score: f64,
    /// Human-readable reasons, in the order they were applied (the fixed ones are not copied).
    pub reasons: Vec<Cow<'static, str>>,
    /// Other candidates that were considered, best first (record ids or bank ids with confidence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative>,
    /// A proposed adjustment for a discrepancy (e.g. "book 2.50 EUR bank fee").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_adjustment: Option<String>,
}

/// Feature name → contribution to a score, in name order; written as a JSON object. Built-in
/// feature names are static and the list is one small allocation: a million matches each carry
/// one, so a map with a heap string per name would cost several hundred bytes more per match.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Features(Vec<(Cow<'static, str>, f64)>);

impl Features {
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_ref().cmp(name))
    }

    /// The contribution of `name`.
    pub fn get(&self, name: &str) -> Option<&f64> {
        self.find(name).ok().and_then(|i| self.0.get(i)).map(|(_, v)| v)
    }

    /// Whether `name` contributed.
    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// The contribution of `name`, inserted at 0 when it had none.
    fn slot(&mut self, name: Cow<'static, str>) -> Option<&mut f64> {
        let i = self.find(&name).unwrap_or_else(|i| {
            self.0.insert(i, (name, 0.0));
            i
        });
        self.0.get_mut(i).map(|(_, v)| v)
    }

    /// Sets the contribution of `name`.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: f64) {
        if let Some(v) = self.slot(name.into()) {
            *v = value;
        }
    }

    /// Adds `value` to the contribution of `name` (0 when it had none).
    pub fn add(&mut self, name: impl Into<Cow<'static, str>>, value: f64) {
        if let Some(v) = self.slot(name.into()) {
            *v += value;
        }
    }

    /// The features in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        self.0.iter().map(|(k, v)| (k.as_ref(), *v))
    }

    /// How many features contributed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none did.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each contribution mapped through `f`; those that become 0 are left out.
    pub fn map_nonzero(&self, f: impl Fn(f64) -> f64) -> Features {
        let mut out = Vec::with_capacity(self.0.len());
        out.extend(self.0.iter().map(|(k, v)| (k.clone(), f(*v))).filter(|(_, v)| *v != 0.0));
        Features(out)
    }
}

impl<K: Into<Cow<'static, str>>> FromIterator<(K, f64)> for Features {
    fn from_iter<I: IntoIterator<Item = (K, f64)>>(iter: I) -> Self {
        let mut f = Features::default();
        for (k, v) in iter {
            f.insert(k, v);
        }
        f
    }
}

impl Serialize for Features {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k.as_ref(), v)))
    }
}

impl<'de> Deserialize<'de> for Features {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, f64>::deserialize(deserializer)?;
        Ok(Features(map.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_a_json_object_in_name_order_and_read_back_the_same() {
        let mut f = Features::default();
        f.add("reference", 5.0);
        f.insert("prior", -4.0);
        f.add(format!("rule:{}", "30-reference-with-amount"), 1.5);
        f.add("amount", 4.0);
        f.add("reference", 0.5);
        let json = serde_json::to_string(&f).unwrap_or_default();
        assert_eq!(json, r#"{"amount":4.0,"prior":-4.0,"reference":5.5,"rule:30-reference-with-amount":1.5}"#);
        let back: Features = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, f);
        assert_eq!(back.get("reference"), Some(&5.5));
        assert!(!back.contains_key("name"));
    }

    #[test]
    fn mapped_features_leave_out_what_becomes_zero() {
        let f: Features = [("amount", 4.0), ("date", 0.00001), ("name", -2.5)].into_iter().collect();
        let rounded = f.map_nonzero(|v| (v * 100.0).round() / 100.0);
        assert_eq!(rounded.iter().collect::<Vec<_>>(), vec![("amount", 4.0), ("name", -2.5)]);
    }
}
