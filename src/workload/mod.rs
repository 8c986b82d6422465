//! Realistic reconciliation workloads with ground truth, their scoring, and the naive baseline.
//!
//! [`generate()`] simulates one period of a business: invoices, bills, expenses, checks and journal
//! entries in the books, and the bank statement lines that pay them, with the phenomena that make
//! reconciliation hard (payment lags, fees and short payments, batch deposits, instalments,
//! mangled references, bank-printed names, shared round amounts, checks, noise on both sides).
//! Every workload carries the [`TruthGroup`]s a correct reconciliation finds, so that any matcher
//! can be scored with [`evaluate()`] and compared with [`baseline()`].

pub mod baseline;
pub mod business;
pub mod evaluate;
pub mod generate;
pub mod profile;
pub mod rng;
pub mod truth;
pub mod write;

pub use baseline::baseline;
pub use business::{BankStyle, Business, Channel, Counterparty, ReferenceStyle};
pub use evaluate::{evaluate, outcomes, KindScore, Outcome, PairScores, Scores};
pub use generate::{generate, generate_for};
pub use profile::{Profile, UnknownProfile};
pub use truth::{GroupKind, TruthGroup, Workload};

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use rust_decimal::Decimal;

    use super::*;
    use crate::domain::{BankTransaction, IdSource, Record};
    use crate::matching::{Match, MatchStatus, Method, ReconcileResult};

    fn small(profile: Profile) -> Profile {
        profile.with_records(3_000)
    }

    #[test]
    fn the_same_seed_and_period_give_the_same_workload() {
        let p = small(Profile::realistic());
        assert_eq!(generate(&p, 42, 1), generate(&p, 42, 1));
        assert_ne!(generate(&p, 42, 1).bank, generate(&p, 43, 1).bank);
        assert_ne!(generate(&p, 42, 1).bank, generate(&p, 42, 2).bank);
    }

    #[test]
    fn the_workload_has_about_the_requested_size_and_as_many_bank_lines() {
        for p in [Profile::easy(), Profile::realistic(), Profile::hard()] {
            let w = generate(&small(p.clone()), 5, 1);
            assert!((3_000..3_020).contains(&w.records.len()), "{}: {} records", p.name, w.records.len());
            // Batches fold several records into one line; splits and bank noise add lines.
            let ratio = w.bank.len() as f64 / w.records.len() as f64;
            assert!((0.7..1.1).contains(&ratio), "{}: {} bank lines", p.name, w.bank.len());
        }
    }

    fn index(w: &Workload) -> (HashMap<&str, &BankTransaction>, HashMap<&str, &Record>) {
        (w.bank.iter().map(|t| (t.id.as_ref(), t)).collect(), w.records.iter().map(|r| (r.id.as_str(), r)).collect())
    }

    #[test]
    fn ids_are_unique_bank_ids_and_every_truth_group_references_existing_items_once() {
        let w = generate(&small(Profile::hard()), 9, 3);
        let (bank, records) = index(&w);
        assert_eq!(bank.len(), w.bank.len(), "duplicate bank ids");
        assert_eq!(records.len(), w.records.len(), "duplicate record ids");
        assert!(w.bank.iter().all(|t| t.id_source == IdSource::Bank && !t.id.is_empty()));
        let mut seen_bank = HashSet::new();
        let mut seen_records = HashSet::new();
        for g in &w.truth {
            assert!(!g.bank_ids.is_empty() && !g.record_ids.is_empty(), "{g:?}");
            for b in &g.bank_ids {
                assert!(bank.contains_key(b.as_str()), "{b}");
                assert!(seen_bank.insert(b.clone()), "{b} in two groups");
            }
            for r in &g.record_ids {
                assert!(records.contains_key(r.as_str()), "{r}");
                assert!(seen_records.insert(r.clone()), "{r} in two groups");
            }
        }
        // Noise exists on both sides: items in no group.
        assert!(seen_bank.len() < w.bank.len());
        assert!(seen_records.len() < w.records.len());
    }

    #[test]
    fn groups_balance_as_designed() {
        let w = generate(&small(Profile::hard()), 21, 1);
        let (bank, records) = index(&w);
        let mut kinds = HashSet::new();
        for g in &w.truth {
            kinds.insert(g.kind);
            let bank_total: Decimal =
                g.bank_ids.iter().filter_map(|b| bank.get(b.as_str())).map(|t| t.amount.amount()).sum();
            let record_total: Decimal =
                g.record_ids.iter().filter_map(|r| records.get(r.as_str())).map(|r| r.amount.amount()).sum();
            assert_eq!(bank_total - record_total, g.difference, "{g:?}");
            match g.kind {
                GroupKind::Fee => assert!(g.difference < Decimal::ZERO, "{g:?}"),
                _ => assert_eq!(g.difference, Decimal::ZERO, "{g:?}"),
            }
            match g.kind {
                GroupKind::Batch => assert!(g.bank_ids.len() == 1 && g.record_ids.len() >= 2, "{g:?}"),
                GroupKind::Split => assert!(g.bank_ids.len() >= 2 && g.record_ids.len() == 1, "{g:?}"),
                _ => assert!(g.bank_ids.len() == 1 && g.record_ids.len() == 1, "{g:?}"),
            }
            if g.kind == GroupKind::Check {
                let number = bank.get(g.bank_ids[0].as_str()).and_then(|t| t.check_number.as_deref().map(String::from));
                let reference = records.get(g.record_ids[0].as_str()).and_then(|r| r.reference.clone());
                assert!(number.is_none() || number == reference, "{g:?}");
            }
        }
        assert_eq!(kinds.len(), GroupKind::ALL.len(), "every kind occurs: {kinds:?}");
    }

    #[test]
    fn payments_follow_their_records_within_the_lag() {
        let p = small(Profile::realistic());
        let w = generate(&p, 4, 1);
        let (bank, records) = index(&w);
        for g in w.truth.iter().filter(|g| g.kind == GroupKind::OneToOne) {
            let t = bank[g.bank_ids[0].as_str()];
            let r = records[g.record_ids[0].as_str()];
            let days = (t.booking_date - r.date).num_days();
            // Business-day lags plus weekends.
            assert!((0..=i64::from(p.max_lag_days) * 7 / 5 + 4).contains(&days), "{days} days: {g:?}");
            assert!(t.booking_date >= w.start && t.booking_date <= w.end);
        }
    }

    #[test]
    fn the_same_business_seed_keeps_its_counterparties_across_periods() {
        let p = small(Profile::realistic());
        let business = Business::new(&p, 77);
        let names: HashSet<&str> = business
            .customers
            .iter()
            .chain(&business.suppliers)
            .chain(&business.vendors)
            .map(|c| c.name.as_str())
            .collect();
        let first = generate(&p, 77, 1);
        let second = generate(&p, 77, 2);
        let counterparties =
            |w: &Workload| -> HashSet<String> { w.records.iter().filter_map(|r| r.counterparty.clone()).collect() };
        let (a, b) = (counterparties(&first), counterparties(&second));
        assert!(a.iter().chain(&b).all(|n| names.contains(n.as_str())));
        let shared = a.intersection(&b).count();
        assert!(shared * 10 >= a.len() * 7, "only {shared} of {} counterparties recur", a.len());
        // Each customer's payments show one of its own bank names.
        // Two customers may share a name (people do), so a name maps to all its bank names.
        let mut by_name: HashMap<&str, Vec<&String>> = HashMap::new();
        for c in business.customers.iter().chain(&business.suppliers).chain(&business.vendors) {
            by_name.entry(c.name.as_str()).or_default().extend(&c.bank_names);
        }
        let (bank, records) = index(&second);
        for g in second.truth.iter().filter(|g| g.kind == GroupKind::OneToOne) {
            let (Some(t), Some(r)) = (bank.get(g.bank_ids[0].as_str()), records.get(g.record_ids[0].as_str())) else {
                continue;
            };
            if let (Some(payee), Some(name)) = (&t.payee, r.counterparty.as_deref()) {
                let names = by_name.get(name).map(Vec::as_slice).unwrap_or(&[]);
                assert!(names.iter().any(|n| **n == **payee), "{payee} is not a name of {name}");
            }
        }
        assert_ne!(Business::new(&p, 78).customers, business.customers);
    }

    #[test]
    fn period_dates_follow_each_other_and_any_period_number_is_safe() {
        let p = small(Profile::easy());
        let one = generate(&p, 1, 1);
        let two = generate(&p, 1, 2);
        assert!(one.end < two.start);
        let far = generate(&Profile::easy().with_records(50), 1, u32::MAX);
        assert!(!far.bank.is_empty());
    }

    #[test]
    fn odd_profiles_still_generate() {
        let odd = Profile {
            max_lag_days: u32::MAX,
            records_per_day: 0,
            fee: f64::NAN,
            batch: 2.0,
            split: -1.0,
            round_amount: f64::INFINITY,
            ..Profile::hard().with_records(200)
        };
        let w = generate(&odd, 1, 1);
        assert!(w.records.len() >= 200);
        let none = Profile {
            fee: 0.0,
            batch: 0.0,
            split: 0.0,
            check: 0.0,
            transfer: 0.0,
            ..Profile::easy().with_records(100)
        };
        assert!(generate(&none, 1, 1).truth.iter().all(|g| g.kind == GroupKind::OneToOne));
    }

    #[test]
    fn references_arrive_mangled_or_missing_in_the_hard_profile() {
        let w = generate(&small(Profile::hard()), 13, 1);
        let (bank, records) = index(&w);
        let mut exact = 0;
        let mut other = 0;
        for g in w.truth.iter().filter(|g| g.kind == GroupKind::OneToOne) {
            let r = records[g.record_ids[0].as_str()];
            if r.kind != crate::domain::RecordKind::Invoice {
                continue;
            }
            if bank[g.bank_ids[0].as_str()].reference.as_deref() == r.reference.as_deref() {
                exact += 1;
            } else {
                other += 1;
            }
        }
        assert!(other > exact, "{exact} exact, {other} mangled or missing");
    }

    #[test]
    fn a_perfect_matcher_scores_one_on_a_generated_workload() {
        let w = generate(&small(Profile::realistic()), 3, 1);
        let matches = w
            .truth
            .iter()
            .enumerate()
            .map(|(i, g)| Match {
                id: i.to_string(),
                status: MatchStatus::Matched,
                bank_ids: g.bank_ids.clone(),
                record_ids: g.record_ids.clone(),
                confidence: 1.0,
                method: Method::Reference,
                rule: None,
                difference: g.difference,
                explanation: Default::default(),
            })
            .collect();
        let s = evaluate(&ReconcileResult { matches, ..Default::default() }, &w.truth);
        assert_eq!((s.auto.precision, s.auto.recall, s.all.f1), (1.0, 1.0, 1.0));
        let empty = evaluate(&ReconcileResult::default(), &w.truth);
        assert_eq!(empty.all.recall, 0.0);
    }

    #[test]
    fn the_baseline_is_far_from_perfect_on_the_hard_profile() {
        let w = generate(&small(Profile::hard()), 8, 1);
        let s = evaluate(&baseline(&w.bank, &w.records), &w.truth);
        assert!(s.auto.recall > 0.2 && s.auto.recall < 0.95, "{s}");
        assert!(s.kind_recall(GroupKind::Batch).is_some_and(|r| r < 0.05), "{s}");
    }
}
