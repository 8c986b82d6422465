//! The naive matcher every engine must beat: same amount within five days, first come first
//! served, everything auto-matched.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use rust_decimal::Decimal;

use crate::domain::{BankTransaction, Money, Record};
use crate::matching::{Explanation, Match, MatchStatus, Method, ReconcileResult, Summary};

/// How far apart (calendar days) a bank line and a record may be dated.
pub const BASELINE_WINDOW_DAYS: i64 = 5;

/// Greedy exact-amount matching: in statement order, each bank line takes the unused record with
/// the same amount and currency dated closest to it (within [`BASELINE_WINDOW_DAYS`]; ties go to
/// the record listed first). Every pair is reported as `matched`. It ignores names and references
/// on purpose: it measures how far amount and date alone get.
pub fn baseline(bank: &[BankTransaction], records: &[Record]) -> ReconcileResult {
    // Per amount, records sorted by date: each bank line looks only at its date window.
    let mut by_amount: HashMap<Money, Vec<(NaiveDate, usize)>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        by_amount.entry(r.amount).or_default().push((r.date, i));
    }
    for candidates in by_amount.values_mut() {
        candidates.sort_unstable();
    }
    let window = Days::new(BASELINE_WINDOW_DAYS as u64);
    let mut used = vec![false; records.len()];
    let mut matches = Vec::new();
    let mut unmatched_bank = Vec::new();
    for t in bank {
        let from = t.booking_date.checked_sub_days(window).unwrap_or(NaiveDate::MIN);
        let to = t.booking_date.checked_add_days(window).unwrap_or(NaiveDate::MAX);
        let best = by_amount.get(&t.amount).and_then(|candidates| {
            let first = candidates.partition_point(|(date, _)| *date < from);
            candidates
                .get(first..)
                .unwrap_or(&[])
                .iter()
                .take_while(|(date, _)| *date <= to)
                .filter(|(_, i)| !used.get(*i).copied().unwrap_or(true))
                .map(|&(date, i)| ((date - t.booking_date).num_days().abs(), i))
                .min()
        });
        match best.and_then(|(gap, i)| records.get(i).map(|r| (gap, i, r))) {
            Some((gap, i, r)) => {
                if let Some(u) = used.get_mut(i) {
                    *u = true;
                }
                matches.push(Match {
                    id: format!("baseline:{}:{}", t.id, r.id),
                    status: MatchStatus::Matched,
                    bank_ids: vec![t.id.to_string()],
                    record_ids: vec![r.id.clone()],
                    confidence: 1.0,
                    method: Method::Score,
                    rule: None,
                    difference: Decimal::ZERO,
                    explanation: Explanation {
                        reasons: vec![format!("same amount, {gap} day(s) apart").into()],
                        score: 1.0,
                        ..Default::default()
                    },
                });
            }
            None => unmatched_bank.push(t.id.to_string()),
        }
    }
    let unmatched_records: Vec<String> =
        records.iter().zip(&used).filter(|(_, u)| !**u).map(|(r, _)| r.id.clone()).collect();
    let summary = Summary {
        bank_transactions: bank.len(),
        records: records.len(),
        matched: matches.len(),
        suggested: 0,
        discrepancies: 0,
        unmatched_bank: unmatched_bank.len(),
        unmatched_records: unmatched_records.len(),
        auto_match_rate: if bank.is_empty() { 0.0 } else { matches.len() as f64 / bank.len() as f64 },
    };
    ReconcileResult { summary, matches, unmatched_bank, unmatched_records }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, RecordKind};
    use crate::workload::{evaluate, GroupKind, TruthGroup};

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, d).unwrap()
    }

    fn eur(cents: i64) -> Money {
        Money::new(Decimal::new(cents, 2), Currency::EUR)
    }

    fn tx(id: &str, d: u32, cents: i64) -> BankTransaction {
        BankTransaction::new(day(d), eur(cents)).with_bank_id(id)
    }

    fn rec(id: &str, d: u32, cents: i64) -> Record {
        Record {
            id: id.into(),
            kind: RecordKind::Invoice,
            date: day(d),
            due_date: None,
            amount: eur(cents),
            counterparty: None,
            reference: None,
            description: None,
        }
    }

    fn one(bank: &str, record: &str) -> TruthGroup {
        TruthGroup {
            bank_ids: vec![bank.into()],
            record_ids: vec![record.into()],
            kind: GroupKind::OneToOne,
            difference: Decimal::ZERO,
        }
    }

    #[test]
    fn the_baseline_pairs_equal_amounts_closest_in_date_and_is_fooled_by_round_amounts() {
        // b1 and b2 both pay 100.00: the truth pairs b1 with r2 (a later invoice) but the
        // baseline takes the closest date, r1. b3 has a fee taken off and is missed. b4 is too late.
        let bank = vec![tx("b1", 10, 10_000), tx("b2", 12, 10_000), tx("b3", 12, 49_000), tx("b4", 25, 7_700)];
        let records = vec![
            rec("r1", 9, 10_000),
            rec("r2", 8, 10_000),
            rec("r3", 11, 50_000),
            rec("r4", 15, 7_700),
            rec("r5", 1, 1),
        ];
        let truth = vec![one("b1", "r2"), one("b2", "r1"), one("b3", "r3"), one("b4", "r4")];
        let result = baseline(&bank, &records);
        let pairs: Vec<(&str, &str)> =
            result.matches.iter().map(|m| (m.bank_ids[0].as_str(), m.record_ids[0].as_str())).collect();
        assert_eq!(pairs, vec![("b1", "r1"), ("b2", "r2")]);
        assert_eq!(result.unmatched_bank, vec!["b3", "b4"]);
        assert_eq!(result.unmatched_records, vec!["r3", "r4", "r5"]);
        let s = evaluate(&result, &truth);
        assert_eq!((s.auto.proposed, s.auto.correct), (2, 0));
        assert_eq!(s.auto.precision, 0.0);
        assert_eq!(s.auto.recall, 0.0);
        assert_eq!(s.auto_match_rate, 0.5);
    }

    #[test]
    fn the_baseline_finds_exact_pairs_within_the_window() {
        let bank = vec![tx("b1", 10, 1_234), tx("b2", 11, -5_000)];
        let records = vec![rec("r1", 5, 1_234), rec("r2", 16, -5_000)];
        let result = baseline(&bank, &records);
        let s = evaluate(&result, &[one("b1", "r1"), one("b2", "r2")]);
        assert_eq!((s.auto.precision, s.auto.recall, s.auto_match_rate), (1.0, 1.0, 1.0));
    }
}
