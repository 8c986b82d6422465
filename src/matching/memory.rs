//! Learned evidence: what confirmed and rejected matches taught about a business. Counterparty
//! aliases (how the bank writes a payee ↔ how the books name it), per-counterparty habits (payment
//! lag, recurring fee) and hard negatives. Kept as JSON (a file for the CLI, a store item per
//! tenant in the service).

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::prepare::{bank_name, BankItem, RecordItem};
use super::score::{pair_features, score_pair, Weights};
use super::text;
use crate::domain::{BankTransaction, Record};
use crate::rules::business_days;

/// The memory file's format version.
pub const MEMORY_VERSION: u32 = 1;

/// A person's verdict on a proposed group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// The statements' transaction ids.
    pub bank_ids: Vec<String>,
    /// The books' record ids.
    pub record_ids: Vec<String>,
    /// `true` when confirmed, `false` when rejected.
    pub confirmed: bool,
}

/// How a counterparty usually pays.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Habit {
    /// Confirmed payments seen.
    pub payments: u32,
    /// Sum of payment lags in business days (bank date minus record date).
    pub lag_sum: i64,
    /// Amount differences seen (bank minus books, as text) → times seen: recurring fees.
    #[serde(default)]
    pub differences: BTreeMap<String, u32>,
}

impl Habit {
    /// Mean payment lag in business days, once at least two payments were seen.
    pub fn mean_lag(&self) -> Option<f64> {
        (self.payments >= 2).then(|| self.lag_sum as f64 / f64::from(self.payments))
    }

    /// Whether `difference` was seen at least twice: a fee this counterparty's payments carry.
    pub fn is_usual_difference(&self, difference: Decimal) -> bool {
        self.differences.get(&difference.normalize().to_string()).is_some_and(|n| *n >= 2)
    }
}

/// What the engine has learned for one business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Format version.
    pub version: u32,
    /// Bank-side name → book counterparty → times confirmed.
    #[serde(default)]
    pub aliases: BTreeMap<String, BTreeMap<String, u32>>,
    /// Book counterparty → habits.
    #[serde(default)]
    pub habits: BTreeMap<String, Habit>,
    /// Rejected pairs as `bank id` + U+001F + `record id`: never proposed again.
    #[serde(default)]
    pub rejected_pairs: BTreeSet<String>,
    /// Bank-side name + U+001F + book counterparty → times a match between them was rejected.
    #[serde(default)]
    pub rejected_names: BTreeMap<String, u32>,
    /// Groups confirmed so far.
    #[serde(default)]
    pub confirmed: u64,
    /// Groups rejected so far.
    #[serde(default)]
    pub rejected: u64,
    /// Scores of confirmed (true) and rejected or passed-over (false) pairs, newest last, at most
    /// [`MAX_SAMPLES`]: what the calibration is fitted on.
    #[serde(default)]
    pub samples: Vec<(f64, bool)>,
    /// The confidence calibration fitted on `samples`, once there are enough of both kinds.
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

/// Samples kept for calibration.
pub const MAX_SAMPLES: usize = 5_000;
/// Samples of each kind needed before a calibration is used.
pub const MIN_SAMPLES: usize = 30;

/// A logistic calibration of the engine's score: confidence = sigmoid(slope × score + intercept),
/// fitted by maximum likelihood with a prior that keeps it near the identity (slope 1, intercept
/// 0) when evidence is thin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Multiplies the score.
    pub slope: f64,
    /// Added after.
    pub intercept: f64,
}

impl Calibration {
    /// The calibrated confidence of a score.
    pub fn confidence(&self, score: f64) -> f64 {
        super::score::sigmoid(self.slope * score + self.intercept)
    }

    /// Fits slope and intercept by Newton's method on the log-likelihood plus a Gaussian prior
    /// around the identity.
    pub fn fit(samples: &[(f64, bool)]) -> Option<Calibration> {
        let positives = samples.iter().filter(|s| s.1).count();
        if positives < MIN_SAMPLES || samples.len() - positives < MIN_SAMPLES {
            return None;
        }
        // The prior grows with the data so that a few separable samples cannot send the slope to
        // infinity: the calibration bends the score, it does not replace it.
        let prior = 1.0 + samples.len() as f64 / 20.0;
        let (mut a, mut c) = (1.0f64, 0.0f64);
        for _ in 0..50 {
            let (mut ga, mut gc) = (prior * (a - 1.0), prior * c);
            let (mut haa, mut hac, mut hcc) = (prior, 0.0, prior);
            for &(x, y) in samples {
                let p = super::score::sigmoid(a * x + c);
                let err = p - if y { 1.0 } else { 0.0 };
                let w = (p * (1.0 - p)).max(1e-9);
                ga += err * x;
                gc += err;
                haa += w * x * x;
                hac += w * x;
                hcc += w;
            }
            let det = haa * hcc - hac * hac;
            if !det.is_finite() || det.abs() < 1e-12 {
                break;
            }
            let da = (hcc * ga - hac * gc) / det;
            let dc = (haa * gc - hac * ga) / det;
            a -= da;
            c -= dc;
            if da.abs() + dc.abs() < 1e-9 {
                break;
            }
        }
        // A calibration may sharpen or soften the score, never turn it around.
        (a.is_finite() && c.is_finite() && a > 0.05).then_some(Calibration { slope: a, intercept: c })
    }
}

impl Default for Memory {
    fn default() -> Self {
        Memory {
            version: MEMORY_VERSION,
            aliases: BTreeMap::new(),
            habits: BTreeMap::new(),
            rejected_pairs: BTreeSet::new(),
            rejected_names: BTreeMap::new(),
            confirmed: 0,
            rejected: 0,
            samples: Vec::new(),
            calibration: None,
        }
    }
}

/// A memory file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// Not the memory JSON shape.
    #[error("not a bankrec memory file: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a newer bankrec.
    #[error("memory version {found} is newer than this bankrec understands ({MEMORY_VERSION})")]
    Version {
        /// The file's version.
        found: u32,
    },
}

/// What one call of [`Memory::learn`] took in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LearnStats {
    /// Confirmed groups folded in.
    pub confirmed: usize,
    /// Rejected groups folded in.
    pub rejected: usize,
    /// Groups skipped because an id was not found in the statement or records given.
    pub skipped: usize,
}

fn pair_key(a: &str, b: &str) -> String {
    format!("{a}\u{1f}{b}")
}

impl Memory {
    /// Reads a memory file's JSON.
    pub fn from_json(text: &str) -> Result<Self, MemoryError> {
        let memory: Memory = serde_json::from_str(text)?;
        if memory.version > MEMORY_VERSION {
            return Err(MemoryError::Version { found: memory.version });
        }
        Ok(memory)
    }

    /// The memory as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// Whether the books' `counterparty` was confirmed as the bank's `bank_name` before.
    pub fn is_alias(&self, bank_name: &str, counterparty: &str) -> bool {
        !bank_name.is_empty() && self.aliases.get(bank_name).is_some_and(|m| m.contains_key(counterparty))
    }

    /// Book counterparties confirmed for a bank-side name.
    pub fn aliases_of(&self, bank_name: &str) -> impl Iterator<Item = &str> {
        self.aliases.get(bank_name).into_iter().flat_map(|m| m.keys().map(String::as_str))
    }

    /// A counterparty's habits.
    pub fn habit(&self, counterparty: &str) -> Option<&Habit> {
        self.habits.get(counterparty)
    }

    /// Whether this exact pair was rejected.
    pub fn is_rejected(&self, bank_id: &str, record_id: &str) -> bool {
        // Asked for every candidate pair: without rejections, no key is built.
        !self.rejected_pairs.is_empty() && self.rejected_pairs.contains(&pair_key(bank_id, record_id))
    }

    /// Whether pairing these names was rejected more often than confirmed.
    pub fn names_rejected(&self, bank_name: &str, counterparty: &str) -> bool {
        if self.rejected_names.is_empty() {
            return false;
        }
        let rejected = self.rejected_names.get(&pair_key(bank_name, counterparty)).copied().unwrap_or(0);
        let confirmed = self.aliases.get(bank_name).and_then(|m| m.get(counterparty)).copied().unwrap_or(0);
        rejected > 0 && rejected >= confirmed
    }

    /// Folds confirmed and rejected groups into the memory. Ids are looked up in `bank` and
    /// `records`; groups naming an unknown id are skipped and counted.
    pub fn learn(&mut self, feedback: &[Feedback], bank: &[BankTransaction], records: &[Record]) -> LearnStats {
        let bank_by_id: BTreeMap<&str, &BankTransaction> = bank.iter().map(|t| (t.id.as_ref(), t)).collect();
        let rec_by_id: BTreeMap<&str, &Record> = records.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut stats = LearnStats::default();
        for group in feedback {
            let txs: Option<Vec<&BankTransaction>> =
                group.bank_ids.iter().map(|id| bank_by_id.get(id.as_str()).copied()).collect();
            let recs: Option<Vec<&Record>> =
                group.record_ids.iter().map(|id| rec_by_id.get(id.as_str()).copied()).collect();
            let (Some(txs), Some(recs)) = (txs, recs) else {
                stats.skipped += 1;
                continue;
            };
            if txs.is_empty() || recs.is_empty() {
                stats.skipped += 1;
                continue;
            }
            self.sample(&txs, &recs, group.confirmed, records);
            if group.confirmed {
                self.learn_confirmed(&txs, &recs);
                stats.confirmed += 1;
                self.confirmed += 1;
            } else {
                for t in &txs {
                    for r in &recs {
                        self.rejected_pairs.insert(pair_key(&t.id, &r.id));
                        let cp = r.counterparty.as_deref().map(text::normalise_name).unwrap_or_default();
                        let bn = bank_name(t);
                        if !cp.is_empty() && !bn.is_empty() {
                            *self.rejected_names.entry(pair_key(&bn, &cp)).or_default() += 1;
                        }
                    }
                }
                stats.rejected += 1;
                self.rejected += 1;
            }
        }
        let excess = self.samples.len().saturating_sub(MAX_SAMPLES);
        self.samples.drain(..excess);
        self.calibration = Calibration::fit(&self.samples);
        stats
    }

    /// Records the engine's own score of a judged pair, and for a confirmed one the scores of the
    /// same-amount records it was not matched with (the candidates a person passed over).
    fn sample(&mut self, txs: &[&BankTransaction], recs: &[&Record], confirmed: bool, records: &[Record]) {
        let (Some(t), Some(r), 1, 1) = (txs.first(), recs.first(), txs.len(), recs.len()) else { return };
        let (Some(b), Some(ri)) = (BankItem::new(t), RecordItem::new(r)) else { return };
        let blank = Memory::default();
        let weights = Weights::default();
        let score = |x: &RecordItem<'_>| score_pair(&pair_features(&b, x, &blank), &weights).score;
        self.samples.push((score(&ri), confirmed));
        if !confirmed {
            return;
        }
        let passed_over = records
            .iter()
            .filter(|o| o.id != r.id && o.amount == r.amount && (o.date - t.booking_date).num_days().abs() <= 45)
            .take(3);
        for o in passed_over {
            if let Some(oi) = RecordItem::new(o) {
                self.samples.push((score(&oi), false));
            }
        }
    }

    fn learn_confirmed(&mut self, txs: &[&BankTransaction], recs: &[&Record]) {
        let bank_total = txs.iter().try_fold(Decimal::ZERO, |s, t| s.checked_add(t.amount.amount()));
        let book_total = recs.iter().try_fold(Decimal::ZERO, |s, r| s.checked_add(r.amount.amount()));
        let difference = bank_total.zip(book_total).and_then(|(b, r)| b.checked_sub(r));
        // A payout pays many customers: its processor's name is nobody's alias. Aliases are
        // learned only where every record names the same counterparty.
        let names: BTreeSet<String> =
            recs.iter().map(|r| r.counterparty.as_deref().map(text::normalise_name).unwrap_or_default()).collect();
        let one_counterparty = names.len() == 1;
        for r in recs {
            let cp = r.counterparty.as_deref().map(text::normalise_name).unwrap_or_default();
            if cp.is_empty() {
                continue;
            }
            for t in txs.iter().filter(|_| one_counterparty) {
                let bn = bank_name(t);
                if !bn.is_empty() {
                    *self.aliases.entry(bn).or_default().entry(cp.clone()).or_default() += 1;
                }
            }
            let habit = self.habits.entry(cp).or_default();
            if txs.len() == 1 && recs.len() == 1 {
                if let Some(t) = txs.first() {
                    habit.payments = habit.payments.saturating_add(1);
                    habit.lag_sum = habit.lag_sum.saturating_add(business_days(r.date, t.booking_date));
                }
                if let Some(d) = difference.filter(|d| !d.is_zero()) {
                    *habit.differences.entry(d.normalize().to_string()).or_default() += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::{Currency, Money, RecordKind};

    fn tx(id: &str, payee: &str, amount: i64, day: u32) -> BankTransaction {
        let mut t = BankTransaction::new(
            NaiveDate::from_ymd_opt(2024, 3, day).unwrap_or_default(),
            Money::new(Decimal::from(amount), Currency::EUR),
        )
        .with_bank_id(id);
        t.payee = Some(payee.into());
        t
    }

    fn rec(id: &str, cp: &str, amount: i64, day: u32) -> Record {
        Record {
            id: id.into(),
            kind: RecordKind::Invoice,
            date: NaiveDate::from_ymd_opt(2024, 3, day).unwrap_or_default(),
            due_date: None,
            amount: Money::new(Decimal::from(amount), Currency::EUR),
            counterparty: Some(cp.into()),
            reference: None,
            description: None,
        }
    }

    #[test]
    fn confirmed_groups_teach_aliases_and_habits_and_rejections_are_remembered() {
        let bank = vec![tx("b1", "PAYPAL *ACMEWIDG", 98, 6), tx("b2", "PAYPAL *ACMEWIDG", 50, 7)];
        let records = vec![rec("r1", "Acme Widgets Ltd", 100, 4), rec("r2", "Other GmbH", 50, 7)];
        let mut m = Memory::default();
        let stats = m.learn(
            &[
                Feedback { bank_ids: vec!["b1".into()], record_ids: vec!["r1".into()], confirmed: true },
                Feedback { bank_ids: vec!["b2".into()], record_ids: vec!["r2".into()], confirmed: false },
                Feedback { bank_ids: vec!["nope".into()], record_ids: vec!["r2".into()], confirmed: true },
            ],
            &bank,
            &records,
        );
        assert_eq!(stats, LearnStats { confirmed: 1, rejected: 1, skipped: 1 });
        assert!(m.is_alias("paypal acmewidg", "acme widgets"));
        assert!(m.is_rejected("b2", "r2"));
        assert!(m.names_rejected("paypal acmewidg", "other"));
        let habit = m.habit("acme widgets").cloned().unwrap_or_default();
        assert_eq!(habit.differences.get("-2"), Some(&1));
        let back = Memory::from_json(&m.to_json()).unwrap_or_default();
        assert_eq!(back, m);
    }

    #[test]
    fn a_payout_for_many_customers_teaches_no_alias() {
        let bank = vec![tx("p", "ADYEN", 150, 6)];
        let records = vec![rec("r1", "Acme", 100, 4), rec("r2", "Globex", 50, 4)];
        let mut m = Memory::default();
        m.learn(
            &[Feedback { bank_ids: vec!["p".into()], record_ids: vec!["r1".into(), "r2".into()], confirmed: true }],
            &bank,
            &records,
        );
        assert!(m.aliases.is_empty());
    }

    #[test]
    fn the_calibration_recovers_a_softer_slope_and_stays_off_without_both_kinds() {
        // Scores twice as confident as the truth: true log-odds are score / 2.
        let mut samples = Vec::new();
        for i in 0..400 {
            let score = f64::from(i % 40) / 4.0 - 5.0;
            let p = crate::matching::score::sigmoid(score / 2.0);
            // A deterministic stand-in for sampling: a share `p` of each score's samples is true.
            samples.push((score, f64::from(i / 40) / 10.0 < p));
        }
        let fitted = Calibration::fit(&samples);
        assert!(fitted.is_some_and(|c| c.slope > 0.3 && c.slope < 0.8), "{fitted:?}");
        let only_positive: Vec<(f64, bool)> = (0..100).map(|i| (f64::from(i), true)).collect();
        assert_eq!(Calibration::fit(&only_positive), None);
    }

    #[test]
    fn a_memory_from_a_newer_version_is_refused() {
        let err = Memory::from_json(r#"{"version": 99}"#).err();
        assert!(matches!(err, Some(MemoryError::Version { found: 99 })));
        assert!(Memory::from_json("[1,2]").is_err());
    }
}
