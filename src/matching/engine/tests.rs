//! Engine tests: small golden cases with the expected groups, learning, hostile rules, and
//! properties that must hold for any input.

use chrono::NaiveDate;
use proptest::prelude::*;
use rust_decimal::Decimal;

use super::*;
use crate::domain::{Currency, Money, RecordKind};
use crate::matching::memory::Feedback;

fn day(d: u32) -> NaiveDate {
    // March 2024; day 1 is a Friday.
    NaiveDate::from_ymd_opt(2024, 3, d.clamp(1, 31)).unwrap_or_default()
}

fn money(cents: i64) -> Money {
    Money::new(Decimal::new(cents, 2), Currency::EUR)
}

fn tx(id: &str, d: u32, cents: i64, payee: &str, description: &str) -> BankTransaction {
    let mut t = BankTransaction::new(day(d), money(cents)).with_bank_id(id);
    if !payee.is_empty() {
        t.payee = Some(payee.into());
    }
    t.description = description.into();
    t
}

fn rec(id: &str, kind: RecordKind, d: u32, cents: i64, cp: &str, reference: &str) -> Record {
    Record {
        id: id.into(),
        kind,
        date: day(d),
        due_date: None,
        amount: money(cents),
        counterparty: (!cp.is_empty()).then(|| cp.to_string()),
        reference: (!reference.is_empty()).then(|| reference.to_string()),
        description: None,
    }
}

fn inv(id: &str, d: u32, cents: i64, cp: &str, reference: &str) -> Record {
    rec(id, RecordKind::Invoice, d, cents, cp, reference)
}

fn run_with(bank: &[BankTransaction], records: &[Record], memory: &Memory) -> ReconcileResult {
    let rules = RuleSet::defaults().unwrap_or_default();
    reconcile(bank, records, &rules, memory, &EngineConfig::default()).unwrap_or_default()
}

fn run(bank: &[BankTransaction], records: &[Record]) -> ReconcileResult {
    run_with(bank, records, &Memory::default())
}

fn find<'a>(result: &'a ReconcileResult, bank_id: &str) -> Option<&'a Match> {
    result.matches.iter().find(|m| m.bank_ids.iter().any(|b| b == bank_id))
}

/// Whether the rule `35-fee-from-the-named-payer` raised the match of `bank_id` (none is not).
fn raised_as_fee(result: &ReconcileResult, bank_id: &str) -> bool {
    find(result, bank_id).is_some_and(|m| m.explanation.features.contains_key("rule:35-fee-from-the-named-payer"))
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn a_payment_with_a_mangled_reference_and_exact_amount_is_matched() {
    let bank = [tx("b1", 8, 120_050, "ACME GMBH", "SEPA CREDIT inv 00123")];
    let records = [inv("r1", 1, 120_050, "Acme GmbH", "INV-00123"), inv("r2", 2, 99_000, "Acme GmbH", "INV-00124")];
    let result = run(&bank, &records);
    let m = find(&result, "b1");
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Matched), "{result:#?}");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["r1"])));
    assert_eq!(m.map(|m| m.difference), Some(Decimal::ZERO));
    assert!(m.is_some_and(|m| m.confidence >= 0.95 && m.explanation.features.contains_key("reference")));
    assert_eq!(result.unmatched_records, strs(&["r2"]));
}

#[test]
fn a_late_payment_from_a_truncated_upper_cased_payee_is_matched_without_a_reference() {
    let bank = [tx("b1", 14, 48_731, "BRIGHTSIDE BAKERY SUPPL", "")];
    let records = [inv("r1", 1, 48_731, "Brightside Bakery Supplies Ltd", "")];
    let result = run(&bank, &records);
    assert_eq!(find(&result, "b1").map(|m| m.status), Some(MatchStatus::Matched), "{result:#?}");
}

#[test]
fn repeated_round_amounts_follow_the_names() {
    let bank = [tx("b1", 5, 50_000, "NORTHWIND TRADERS", ""), tx("b2", 5, 50_000, "CONTOSO", "")];
    let records = [inv("r1", 1, 50_000, "Contoso Ltd", ""), inv("r2", 1, 50_000, "Northwind Traders", "")];
    let result = run(&bank, &records);
    assert_eq!(find(&result, "b1").map(|m| m.record_ids.clone()), Some(strs(&["r2"])), "{result:#?}");
    assert_eq!(find(&result, "b2").map(|m| m.record_ids.clone()), Some(strs(&["r1"])));
}

#[test]
fn ambiguity_never_auto_matches_and_keeps_ranked_alternatives() {
    let bank = [tx("b1", 5, 50_000, "", "TRANSFER"), tx("b2", 5, 50_000, "", "TRANSFER")];
    let records = [inv("r1", 4, 50_000, "Contoso Ltd", ""), inv("r2", 4, 50_000, "Northwind Traders", "")];
    let result = run(&bank, &records);
    assert_eq!(result.summary.matched, 0, "{result:#?}");
    for m in &result.matches {
        assert_eq!(m.status, MatchStatus::Suggested);
        assert!(!m.explanation.alternatives.is_empty());
        assert!(m.confidence < 0.95);
    }
}

#[test]
fn a_fee_within_tolerance_is_a_discrepancy_with_a_proposed_adjustment() {
    let bank = [tx("b1", 6, 98_500, "GLOBEX CORP", "INV-2024-0042")];
    let records = [inv("r1", 1, 100_000, "Globex Corporation", "INV-2024-0042")];
    let result = run(&bank, &records);
    let m = find(&result, "b1");
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Discrepancy), "{result:#?}");
    assert_eq!(m.map(|m| m.difference), Some(Decimal::new(-1500, 2)));
    assert!(m.and_then(|m| m.explanation.proposed_adjustment.clone()).is_some_and(|a| a.contains("15.00 EUR")));
    assert_eq!(result.summary.matched, 0);
}

#[test]
fn a_wire_short_by_its_flat_fee_from_the_named_customer_is_a_discrepancy_without_review() {
    // Six business days late, no reference: only the name and the fee tie them.
    let bank = [
        tx("w1", 11, 344_890, "ACME SOFTWARE PORTO", "WIRE TRANSFER IN ACME SOFTWARE PORTO"),
        tx("w2", 11, 48_000, "", "WIRE TRANSFER IN"),
    ];
    let records = [
        inv("r1", 1, 348_390, "Acme Software Porto Co.", "INV-10459"),
        inv("r2", 1, 50_000, "Liberty Hospitality Inc.", "INV-10990"),
    ];
    let result = run(&bank, &records);
    let m = find(&result, "w1");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["r1"])), "{result:#?}");
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Discrepancy));
    assert_eq!(m.and_then(|m| m.explanation.features.get("rule:35-fee-from-the-named-payer").copied()), Some(2.0));
    // A line that names nobody is not raised by the rule, whatever its fee.
    assert!(!raised_as_fee(&result, "w2"), "{result:#?}");
}

#[test]
fn an_international_payment_short_by_a_half_unit_fee_is_a_discrepancy_without_review() {
    // UK and SWIFT wording for an incoming wire, short by 7.50 and 12.50: more than 1% of the
    // amount, but a flat intermediary fee. An odd short amount is not a flat fee.
    let bank = [
        tx("u1", 6, 49_250, "BRUECK MEDICAL DEV", "INTL PAYMENT IN BRUECK MEDICAL DEV"),
        tx("s1", 6, 48_750, "NOVA PACKAGING GRAZ", "SWIFT INCOMING PAYMENT NOVA PACKAGING GRAZ"),
        tx("o1", 6, 49_263, "CASCADE FOODS", "INTL PAYMENT IN CASCADE FOODS"),
    ];
    let records = [
        inv("r1", 1, 50_000, "Brückner Medical Devices Malmö", "INV-20001"),
        inv("r2", 1, 50_000, "Nova Packaging Graz Ltd", "INV-20002"),
        inv("r3", 1, 50_000, "Cascade Foods Ltd", "INV-20003"),
    ];
    let result = run(&bank, &records);
    for (line, record) in [("u1", "r1"), ("s1", "r2")] {
        let m = find(&result, line);
        assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&[record])), "{result:#?}");
        assert_eq!(m.map(|m| m.status), Some(MatchStatus::Discrepancy), "{m:#?}");
    }
    assert!(!raised_as_fee(&result, "o1"), "{result:#?}");
    // A customer called Swift or International is not a wire: its domestic payment 20.00 short is
    // not raised as a wire fee.
    let bank = [
        tx("d1", 6, 48_000, "SWIFT HAULAGE", "FASTER PAYMENT RECEIVED SWIFT HAULAGE"),
        tx("d2", 6, 48_000, "ACME INTERNATIONAL", "FASTER PAYMENT RECEIVED ACME INTERNATIONAL"),
    ];
    let records = [
        inv("r4", 1, 50_000, "Swift Haulage Ltd", "INV-20004"),
        inv("r5", 1, 50_000, "Acme International Ltd", "INV-20005"),
    ];
    let result = run(&bank, &records);
    for line in ["d1", "d2"] {
        assert!(!raised_as_fee(&result, line), "{line}: {result:#?}");
    }
}

#[test]
fn a_batch_deposit_is_split_into_the_invoices_it_pays() {
    let bank = [tx("b1", 12, 175_000, "INITECH INC", "BATCH DEPOSIT")];
    let records = [
        inv("r1", 1, 50_000, "Initech", ""),
        inv("r2", 2, 100_000, "Initech", ""),
        inv("r3", 3, 25_000, "Initech", ""),
        inv("r4", 3, 40_000, "Initech", ""),
        inv("r5", 3, 175_000, "Umbrella Corp", ""),
    ];
    let result = run(&bank, &records);
    let m = find(&result, "b1");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["r1", "r2", "r3"])), "{result:#?}");
    assert_eq!(m.map(|m| m.method), Some(Method::SubsetSum));
    assert_eq!(m.map(|m| m.difference), Some(Decimal::ZERO));
}

#[test]
fn a_payment_of_several_equal_invoices_takes_the_ones_it_quotes() {
    // A customer billed 39.50 again and again pays four of the invoices in one transfer that
    // quotes their numbers; older invoices of the same amount add up just as well.
    let mut records: Vec<Record> = (0..10)
        .map(|k| inv(&format!("old{k}"), 1 + k, 3_950, "Unity Engineering Ltd", &format!("INV-{}", 13_700 + k)))
        .collect();
    records.extend(
        (0..4).map(|k| inv(&format!("new{k}"), 20 + k, 3_950, "Unity Engineering Ltd", &format!("INV-{}", 13_815 + k))),
    );
    let bank = [tx("b1", 28, 15_800, "UNITY ENGINEERING", "ACH CREDIT UNITY ENGINEERING 13815 13816 13817 13818")];
    let result = run(&bank, &records);
    let m = find(&result, "b1");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["new0", "new1", "new2", "new3"])), "{result:#?}");
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Matched), "{m:#?}");
}

#[test]
fn instalments_are_grouped_under_the_invoice_they_settle() {
    let bank = [
        tx("b1", 4, 30_000, "HOOLI", "RATE 1 INV-7788"),
        tx("b2", 11, 30_000, "HOOLI", "RATE 2 INV-7788"),
        tx("b3", 18, 30_000, "HOOLI", "RATE 3 INV-7788"),
    ];
    let records = [inv("r1", 1, 90_000, "Hooli Inc", "INV-7788")];
    let result = run(&bank, &records);
    let m = result.matches.iter().find(|m| m.record_ids == strs(&["r1"]));
    assert_eq!(m.map(|m| m.bank_ids.clone()), Some(strs(&["b1", "b2", "b3"])), "{result:#?}");
}

#[test]
fn checks_match_by_number_and_bank_charges_stay_unmatched() {
    let mut check = tx("b1", 9, -25_000, "", "CHECK");
    check.check_number = Some("001042".into());
    let mut other_check = tx("b2", 9, -25_000, "", "CHECK");
    other_check.check_number = Some("1043".into());
    let charges = tx("b3", 29, -1_250, "", "ACCOUNT MAINTENANCE FEE");
    let records = [
        rec("c1", RecordKind::Check, 1, -25_000, "Paper Co", "1042"),
        rec("c2", RecordKind::Check, 2, -25_000, "Ink Ltd", "1043"),
        rec("c3", RecordKind::Check, 3, -8_000, "Outstanding Co", "1044"),
        rec("bill", RecordKind::Bill, 28, -1_250, "Someone", ""),
    ];
    let result = run(&[check, other_check, charges], &records);
    assert_eq!(
        find(&result, "b1").map(|m| (m.status, m.record_ids.clone())),
        Some((MatchStatus::Matched, strs(&["c1"]))),
        "{result:#?}"
    );
    assert_eq!(find(&result, "b2").map(|m| m.record_ids.clone()), Some(strs(&["c2"])));
    assert!(find(&result, "b3").is_none());
    assert!(result.unmatched_records.contains(&"c3".to_string()));
}

#[test]
fn absurd_amounts_are_left_unmatched_rather_than_overflowing() {
    let huge = Decimal::MAX;
    let mut a = tx("b1", 2, 0, "ACME", "INV-1234");
    a.amount = Money::new(huge, Currency::EUR);
    let mut b = tx("b2", 2, 0, "ACME", "INV-1234");
    b.amount = Money::new(-huge, Currency::EUR);
    let mut r = inv("r1", 1, 0, "Acme", "INV-1234");
    r.amount = Money::new(Decimal::new(-9_000_000_000_000_000, 0), Currency::EUR);
    let config = EngineConfig { own_accounts: vec!["x".into()], ..EngineConfig::default() };
    let result = reconcile(&[a, b], &[r], &RuleSet::defaults().unwrap_or_default(), &Memory::default(), &config);
    assert!(result.is_ok_and(|r| r.matches.is_empty()));
}

#[test]
fn currencies_never_mix() {
    let mut t = tx("b1", 2, 10_000, "ACME", "");
    t.amount = Money::new(Decimal::new(10_000, 2), Currency::USD);
    let result = run(&[t], &[inv("r1", 1, 10_000, "Acme", "")]);
    assert!(result.matches.is_empty());
}

#[test]
fn a_learned_alias_turns_a_suggestion_into_a_match_next_period() {
    // Period one: the bank names the payer in a way the books do not.
    let bank1 = [tx("p1", 6, 31_415, "PAYPAL *XYZWIDG", ""), tx("p1b", 20, 10_000, "PAYPAL *XYZWIDG", "")];
    let recs1 = [inv("q1", 4, 31_415, "Acme Widgets Ltd", ""), inv("q1b", 18, 10_000, "Acme Widgets Ltd", "")];
    let mut memory = Memory::default();
    memory.learn(
        &[
            Feedback { bank_ids: strs(&["p1"]), record_ids: strs(&["q1"]), confirmed: true },
            Feedback { bank_ids: strs(&["p1b"]), record_ids: strs(&["q1b"]), confirmed: true },
        ],
        &bank1,
        &recs1,
    );
    // Period two: two open invoices with the same amount, one of them from that customer.
    let bank2 = [tx("p2", 8, 27_000, "PAYPAL *XYZWIDG", "")];
    let recs2 = [inv("q2", 6, 27_000, "Acme Widgets Ltd", ""), inv("q3", 6, 27_000, "Zenith Tools", "")];
    let without = run(&bank2, &recs2);
    let with = run_with(&bank2, &recs2, &memory);
    assert_ne!(find(&without, "p2").map(|m| m.status), Some(MatchStatus::Matched), "{without:#?}");
    let m = find(&with, "p2");
    assert_eq!(m.map(|m| (m.status, m.record_ids.clone())), Some((MatchStatus::Matched, strs(&["q2"]))), "{with:#?}");
    assert_eq!(m.map(|m| m.method), Some(Method::Memory));
}

#[test]
fn a_transfer_between_own_accounts_pairs_the_two_lines() {
    let mut out = tx("c1", 5, -500_000, "", "TRANSFER TO SAVINGS");
    out.counterparty_account = Some("DE89 3704 0044 0532 0130 00".into());
    let into = tx("s1", 6, 500_000, "", "TRANSFER FROM CHECKING");
    let unrelated = tx("c2", 6, 500_000, "", "CUSTOMER");
    let config = EngineConfig { own_accounts: vec!["DE89370400440532013000".into()], ..EngineConfig::default() };
    let rules = RuleSet::defaults().unwrap_or_default();
    let r = reconcile(&[out, into, unrelated], &[], &rules, &Memory::default(), &config).unwrap_or_default();
    let m = r.matches.iter().find(|m| m.method == Method::Transfer);
    assert!(m.is_some(), "{r:#?}");
    assert!(m.is_some_and(|m| m.bank_ids.contains(&"c1".to_string()) && m.record_ids.is_empty()));
    // Two opposite lines are equally plausible: a person decides.
    assert!(m.is_some_and(|m| m.status == MatchStatus::Suggested));
}

#[test]
fn a_lone_opposite_line_on_the_other_account_is_matched_as_a_transfer() {
    let mut out = tx("c1", 5, -500_000, "", "TRANSFER TO SAVINGS");
    out.counterparty_account = Some("sav-1".into());
    let into = tx("s1", 6, 500_000, "", "TRANSFER FROM CHECKING");
    let config = EngineConfig { own_accounts: vec!["SAV1".into()], ..EngineConfig::default() };
    let r = reconcile(&[out, into], &[], &RuleSet::empty(), &Memory::default(), &config).unwrap_or_default();
    let m = r.matches.first();
    assert_eq!(m.map(|m| (m.status, m.method)), Some((MatchStatus::Matched, Method::Transfer)), "{r:#?}");
    assert_eq!(m.map(|m| m.bank_ids.clone()), Some(strs(&["c1", "s1"])));
}

#[test]
fn a_rejected_pair_is_never_proposed_again() {
    let bank = [tx("b1", 5, 50_000, "ACME", "")];
    let records = [inv("r1", 4, 50_000, "Acme", "")];
    let mut memory = Memory::default();
    memory.learn(&[Feedback { bank_ids: strs(&["b1"]), record_ids: strs(&["r1"]), confirmed: false }], &bank, &records);
    assert!(run_with(&bank, &records, &memory).matches.is_empty());
}

#[test]
fn a_hostile_rule_fails_the_run_with_its_name() {
    let rules = RuleSet::compile("spin", "fn pair(b, r, f) { loop {} }").unwrap_or_default();
    let bank = [tx("b1", 5, 50_000, "ACME", "")];
    let records = [inv("r1", 4, 50_000, "Acme", "")];
    let err = reconcile(&bank, &records, &rules, &Memory::default(), &EngineConfig::default()).err();
    assert!(err.is_some_and(|e| e.to_string().contains("rule `spin`")));
}

#[test]
fn the_summary_counts_agree_with_the_matches() {
    let bank = [tx("b1", 8, 120_050, "ACME GMBH", "INV-00123"), tx("b2", 9, -999, "", "INTEREST")];
    let records = [inv("r1", 1, 120_050, "Acme GmbH", "INV-00123"), inv("r2", 1, 5_000, "Nobody", "")];
    let r = run(&bank, &records);
    assert_eq!(r.summary.bank_transactions, 2);
    assert_eq!(r.summary.matched, 1);
    assert_eq!(r.summary.unmatched_bank, 1);
    assert_eq!(r.summary.unmatched_records, 1);
    assert!((r.summary.auto_match_rate - 0.5).abs() < 1e-9);
    let json = serde_json::to_value(&r).unwrap_or_default();
    assert_eq!(json["matches"][0]["status"], "matched");
    assert_eq!(json["matches"][0]["difference"], "0.00");
}

prop_compose! {
    fn arb_case()(
        bank in prop::collection::vec((1u32..28, -3i64..4, 0usize..4, prop::bool::ANY), 0..25),
        recs in prop::collection::vec((1u32..28, -3i64..4, 0usize..4, 0u32..3), 0..25),
    ) -> (Vec<BankTransaction>, Vec<Record>) {
        let names = ["ACME", "GLOBEX", "INITECH", ""];
        let b = bank.iter().enumerate().map(|(i, (d, a, n, with_ref))| {
            let amount = if *a == 0 { 1 } else { *a } * 10_000 + if *with_ref { 150 } else { 0 };
            let desc = if *with_ref { format!("INV-{:05}", i) } else { String::new() };
            tx(&format!("b{i}"), *d, amount, names.get(*n).copied().unwrap_or(""), &desc)
        }).collect();
        let r = recs.iter().enumerate().map(|(i, (d, a, n, k))| {
            let amount = if *a == 0 { 2 } else { *a } * 10_000 + if *k == 1 { 150 } else { 0 };
            inv(&format!("r{i}"), *d, amount, names.get(*n).copied().unwrap_or(""), &format!("INV-{:05}", i))
        }).collect();
        (b, r)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_item_is_claimed_twice_groups_balance_and_output_is_deterministic((bank, records) in arb_case()) {
        let first = run(&bank, &records);
        let second = run(&bank, &records);
        prop_assert_eq!(&first, &second);
        let mut seen_b = std::collections::HashSet::new();
        let mut seen_r = std::collections::HashSet::new();
        let cfg = EngineConfig::default();
        for m in &first.matches {
            for b in &m.bank_ids { prop_assert!(seen_b.insert(b.clone()), "bank {} claimed twice", b); }
            for r in &m.record_ids { prop_assert!(seen_r.insert(r.clone()), "record {} claimed twice", r); }
            let bank_total: Decimal = bank.iter().filter(|t| m.bank_ids.iter().any(|id| **id == *t.id)).map(|t| t.amount.amount()).sum();
            let rec_total: Decimal = records.iter().filter(|r| m.record_ids.contains(&r.id)).map(|r| r.amount.amount()).sum();
            prop_assert_eq!(bank_total - rec_total, m.difference);
            prop_assert!(m.difference.abs() <= cfg.tolerance_max);
            prop_assert!((0.0..=1.0).contains(&m.confidence));
            if m.status == MatchStatus::Matched { prop_assert!(m.difference.is_zero()); }
        }
        prop_assert_eq!(seen_b.len() + first.unmatched_bank.len(), bank.len());
        prop_assert_eq!(seen_r.len() + first.unmatched_records.len(), records.len());
    }
}

fn truth_feedback(truth: &[crate::workload::TruthGroup]) -> Vec<Feedback> {
    truth
        .iter()
        .map(|g| Feedback { bank_ids: g.bank_ids.clone(), record_ids: g.record_ids.clone(), confirmed: true })
        .collect()
}

#[test]
fn memory_from_an_earlier_period_makes_a_later_period_of_the_same_business_score_better() {
    use crate::workload::{evaluate, generate, Profile};
    let profile = Profile::realistic().with_records(1_500);
    let rules = RuleSet::defaults().unwrap_or_default();
    let config = EngineConfig::default();
    let first = generate(&profile, 7, 1);
    let mut memory = Memory::default();
    memory.learn(&truth_feedback(&first.truth), &first.bank, &first.records);
    let second = generate(&profile, 7, 2);
    let score = |m: &Memory| {
        let r = reconcile(&second.bank, &second.records, &rules, m, &config).unwrap_or_default();
        evaluate(&r, &second.truth)
    };
    let (without, with) = (score(&Memory::default()), score(&memory));
    assert!(with.auto.recall > without.auto.recall, "{} vs {}", with.auto.recall, without.auto.recall);
    assert!(with.auto.precision >= 0.99, "{}", with.auto.precision);
}

/// The default engine's scores on a generated realistic period of `records` records.
fn realistic_scores(records: usize, seed: u64) -> crate::workload::Scores {
    use crate::workload::{evaluate, generate, Profile};
    let w = generate(&Profile::realistic().with_records(records), seed, 1);
    let rules = RuleSet::defaults().unwrap_or_default();
    let r = reconcile(&w.bank, &w.records, &rules, &Memory::default(), &EngineConfig::default()).unwrap_or_default();
    evaluate(&r, &w.truth)
}

#[test]
fn a_small_realistic_workload_meets_the_quality_bar() {
    let s = realistic_scores(1_500, 3);
    assert!(s.auto.precision >= 0.995, "auto precision {}", s.auto.precision);
    assert!(s.auto.recall >= 0.8, "auto recall {}", s.auto.recall);
    assert!(s.all.recall >= 0.88, "recall {}", s.all.recall);
}

#[test]
fn rules_see_the_bank_lines_text_as_strings() {
    let source = r#"
        fn pair(bank, record, f) {
            if bank.id == "b1" && bank.description.contains("QUARTERLY") && bank.payee.len() == 4 {
                return accept(0.99, "the bank line's id, text and payee read as strings");
            }
            ()
        }
    "#;
    let rules = RuleSet::from_sources(vec![("10-strings".to_string(), source.to_string())]).unwrap();
    let bank = [tx("b1", 10, 12_345, "ACME", "QUARTERLY FEE")];
    let records = [inv("r1", 3, 99_999, "Someone Else", "")];
    let config = EngineConfig::default();
    let r = reconcile(&bank, &records, &rules, &Memory::default(), &config).unwrap();
    assert!(r.matches.is_empty(), "different amounts, no rule asked: {:?}", r.matches);
    let records = [inv("r1", 9, 12_345, "Acme", "")];
    let r = reconcile(&bank, &records, &rules, &Memory::default(), &config).unwrap();
    let m = r.matches.first().expect("a match");
    assert_eq!(m.rule.as_deref(), Some("10-strings"), "{m:?}");
}

#[test]
fn payouts_hidden_among_a_busy_days_records_are_found_among_the_leftovers() {
    // Seed 2 has payouts whose parts the first search cannot single out among the day's records
    // (batch recall 0.81 without the second search among what the assignment left open).
    let s = realistic_scores(2_000, 2);
    let batch = s.per_kind.iter().find(|k| k.kind == crate::workload::GroupKind::Batch).map_or(0.0, |k| k.recall);
    assert!(batch >= 0.85, "batch recall {batch}");
    assert!(s.auto.precision >= 0.995, "auto precision {}", s.auto.precision);
}

#[test]
fn a_deposit_naming_nothing_is_matched_to_the_only_open_invoices_adding_up_to_it() {
    let bank = [tx("dep", 11, 730_000, "", "LOCKBOX DEPOSIT")];
    let records = [
        inv("a", 4, 210_000, "Maple & Co", "INV-0144"),
        inv("b", 5, 345_000, "Lakeside Clinic", "INV-0145"),
        inv("c", 8, 175_000, "Tidewater Books", "INV-0147"),
        inv("d", 9, 98_000, "Orchard Bakery", "INV-0151"),
    ];
    let r = run(&bank, &records);
    let m = find(&r, "dep");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["a", "b", "c"])));
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Matched));
}

#[test]
fn a_line_one_invoice_explains_is_that_invoice_rather_than_a_sum_of_others() {
    // An anonymous deposit of one open invoice's amount, and a wire 15.00 short from the payer
    // the invoice names: that invoice is the simpler explanation than two others that happen to
    // add up to the line (the wire was even matched to those automatically).
    for (line, payee, cents, y, z) in
        [("DEPOSIT", "", 100_000, 75_000, 25_000), ("WIRE", "BEACON ELECTRICAL", 98_500, 50_000, 48_500)]
    {
        let bank = [tx("b", 18, cents, payee, line)];
        let records = [
            inv("x", 12, 100_000, "Beacon Electrical", "INV-10493"),
            inv("y", 13, y, "Chloe Patel", "INV-10533"),
            inv("z", 15, z, "Granite Facility Services", "INV-10576"),
        ];
        let r = run(&bank, &records);
        let m = find(&r, "b");
        assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["x"])), "{line}: {r:#?}");
    }
}

#[test]
fn a_deposit_or_payout_that_two_combinations_explain_is_only_suggested() {
    // Even where the bank calls the line a payout of one day's records.
    for text in ["DEPOSIT", "TRANSFER FROM STRIPE PAYOUT PO4712"] {
        let bank = [tx("dep", 11, 300_000, "", text)];
        let records = [
            inv("a", 8, 100_000, "Maple & Co", "INV-1"),
            inv("b", 8, 200_000, "Lakeside Clinic", "INV-2"),
            inv("c", 8, 100_000, "Tidewater Books", "INV-3"),
        ];
        let r = run(&bank, &records);
        assert!(!r.matches.is_empty(), "{text}");
        assert!(r.matches.iter().all(|m| m.status == MatchStatus::Suggested), "{text}: {:?}", r.matches);
    }
}

#[test]
fn a_sum_whose_part_a_deposit_of_its_amount_could_pay_is_only_suggested() {
    // A payment from a payer no record names adds up to two other customers' invoices; a
    // deposit of one invoice's amount came in on its day. The sum is no longer the only reading
    // of those invoices, so it is not matched without review.
    let bank = [
        tx("dep", 11, 25_000, "", "PAID IN AT BRANCH"),
        tx("b", 13, 50_000, "GARCIA HOLDINGS", "FASTER PAYMENT RECEIVED GARCIA HOLDINGS"),
    ];
    let records = [
        inv("x", 11, 25_000, "Lakeside Textiles Lyon PLC", "INV-12452"),
        inv("y", 11, 25_000, "Société Générale de Café Textiles Graz LLP", "INV-12467"),
    ];
    let r = run(&bank, &records);
    let m = find(&r, "b");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["x", "y"])), "{r:#?}");
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Suggested), "{r:#?}");

    // Without that deposit the sum is the only reading, and matched.
    let r = run(&bank[1..], &records);
    assert_eq!(find(&r, "b").map(|m| m.status), Some(MatchStatus::Matched), "{r:#?}");
}

#[test]
fn the_nearest_dated_items_come_first_from_both_sides() {
    let items: Vec<Option<NaiveDate>> = [1, 3, 5, 8, 13, 21].iter().map(|d| Some(day(*d))).collect();
    let slice: Vec<u32> = (0..6).collect();
    let picked = nearest(&slice, &items, |d: &NaiveDate| *d, day(6), 3);
    assert_eq!(picked, vec![2, 3, 1]);
    assert_eq!(nearest(&slice, &items, |d: &NaiveDate| *d, day(30), 2), vec![5, 4]);
    assert!(nearest(&[], &items, |d: &NaiveDate| *d, day(1), 4).is_empty());
}

#[test]
fn a_rule_that_changes_what_it_sees_is_stopped_with_its_name_and_line() {
    // What a rule is shown is shared by the rules after it and, for a bank line, by all of its
    // candidates: a change would alter what they are judged on.
    let bank = [tx("b1", 4, 12_345, "Acme", "INV-1001"), tx("b2", 12, 175_000, "INITECH INC", "BATCH DEPOSIT")];
    let records = [
        inv("r1", 1, 12_345, "Acme", "INV-1001"),
        inv("r2", 1, 50_000, "Initech", ""),
        inv("r3", 2, 100_000, "Initech", ""),
        inv("r4", 3, 25_000, "Initech", ""),
    ];
    for script in [
        "fn pair(bank, record, f) {\n    record.kind = \"bill\";\n    ()\n}",
        "fn pair(bank, record, f) {\n    bank.text += \"x\";\n    ()\n}",
        "fn pair(bank, record, f) {\n    f.score = 10;\n    ()\n}",
        "fn group(banks, records, f) {\n    records[0].amount = 0;\n    ()\n}",
        "fn group(banks, records, f) {\n    banks.push(1);\n    ()\n}",
        "fn group(banks, records, f) {\n    f.size = 1;\n    ()\n}",
    ] {
        let rules = RuleSet::compile("meddler", script).unwrap_or_default();
        let outcome = reconcile(&bank, &records, &rules, &Memory::default(), &EngineConfig::default());
        match outcome {
            Err(EngineError::Rule(RuleError::Runtime { rule, line, .. })) => {
                assert_eq!((rule.as_str(), line), ("meddler", Some(2)), "{script}");
            }
            other => panic!("{script}: {other:?}"),
        }
    }
}

/// One day's open invoices, three of which a processor pays out together; no other combination
/// of them adds up to the payout, but among eight the sum alone could still be a coincidence.
fn one_days_sales() -> Vec<Record> {
    [
        ("a", 40_017, "Maple & Co"),
        ("b", 61_240, "Lakeside Clinic"),
        ("c", 48_743, "Tidewater Books"),
        ("d", 33_333, "Orchard Bakery"),
        ("e", 101_010, "Granite Dental"),
        ("f", 25_055, "Harbor Florist"),
        ("g", 77_777, "Summit Optics"),
        ("h", 9_999, "Pioneer Garden"),
    ]
    .iter()
    .map(|(id, cents, cp)| inv(id, 4, *cents, cp, &format!("INV-{id}")))
    .collect()
}

/// The match of `line` (1,500.00 on day 5) against [`one_days_sales`], which must be records a, b and
/// c: the one combination adding up to it.
fn one_days_sales_match(line: BankTransaction) -> Option<Match> {
    let id = line.id.to_string();
    let r = run(&[line], &one_days_sales());
    let m = find(&r, &id).cloned();
    assert_eq!(m.as_ref().map(|m| m.record_ids.clone()), Some(strs(&["a", "b", "c"])), "{r:#?}");
    m
}

#[test]
fn a_line_the_bank_calls_a_payout_is_matched_to_the_one_days_records_adding_up_to_it() {
    let m = one_days_sales_match(tx("po", 5, 150_000, "STRIPE", "TRANSFER FROM STRIPE PAYOUT PO4711"));
    assert_eq!(m.as_ref().map(|m| m.status), Some(MatchStatus::Matched));
    assert_eq!(m.and_then(|m| m.explanation.features.get("rule:60-payouts").copied()), Some(3.0));
}

#[test]
fn the_same_sum_on_a_line_that_does_not_say_payout_is_only_suggested() {
    let m = one_days_sales_match(tx("dep", 5, 150_000, "", "DEPOSIT"));
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Suggested));
}

#[test]
fn the_payout_rule_matches_a_unique_sum_that_fewer_than_one_in_ten_searches_would_find_by_chance() {
    let rule = RuleSet::compile("60-payouts", include_str!("../../../rules/60-payouts.rhai")).unwrap_or_default();
    let judge = |chance: &str| {
        let mut bank = Map::new();
        bank.insert("text".into(), Dynamic::from("BACS CREDIT LOCKBOX PAYOUT PO1".to_string()));
        let banks: Array = vec![Dynamic::from(bank)];
        let records: Array = vec![Dynamic::from(Map::new()), Dynamic::from(Map::new())];
        let mut f = Map::new();
        f.insert("exact_amount".into(), Dynamic::from(true));
        f.insert("span_days".into(), Dynamic::from(1_i64));
        f.insert("unique_sum".into(), Dynamic::from(true));
        f.insert("sum_chance".into(), Dynamic::from(chance.parse::<Decimal>().unwrap_or_default()));
        let verdict = rule.judge_group(&Dynamic::from(banks), &Dynamic::from(records), &Dynamic::from(f));
        verdict.map(|v| v.adjustments.iter().map(|a| a.1).sum::<f64>()).ok()
    };
    assert_eq!(judge("0.08"), Some(3.0));
    assert_eq!(judge("0.1"), Some(3.0));
    assert_eq!(judge("0.12"), Some(1.0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    /// Candidates whose amounts differ are dropped on an early look at their references; it
    /// must agree with the full evidence.
    #[test]
    fn the_early_reference_test_agrees_with_the_features(
        reference in "[a-c0-9-]{0,8}",
        text in "[a-c0-9 ]{0,24}",
        check in proptest::option::of("[0-9]{1,4}"),
    ) {
        let mut t = tx("b", 1, 100, "", &text);
        t.check_number = check.map(Into::into);
        let r = inv("r", 1, 100, "", &reference);
        let (Some(b), Some(r)) = (BankItem::new(&t), RecordItem::new(&r)) else { return Ok(()) };
        let features = crate::matching::score::pair_features(&b, &r, &Memory::default());
        prop_assert_eq!(references_tie(&b, &r), features.reference >= RefEvidence::Core);
    }
}

#[test]
fn an_amount_shared_with_a_record_settled_elsewhere_becomes_unique_in_the_second_round() {
    // Two invoices of the same odd amount; the named payment with its reference settles the
    // first, so the anonymous deposit has only the second left on both sides.
    let records = [inv("r1", 4, 123_456, "Acme GmbH", "INV-2001"), inv("r2", 6, 123_456, "Globex Ltd", "INV-2002")];
    let named = tx("b1", 5, 123_456, "ACME GMBH", "SEPA CREDIT INV-2001");
    let deposit = tx("b2", 8, 123_456, "", "DEPOSIT");

    let alone = run(std::slice::from_ref(&deposit), &records);
    assert_ne!(find(&alone, "b2").map(|m| m.status), Some(MatchStatus::Matched), "{alone:#?}");

    let result = run(&[named, deposit], &records);
    assert_eq!(find(&result, "b1").map(|m| m.record_ids.clone()), Some(strs(&["r1"])), "{result:#?}");
    let m = find(&result, "b2");
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Matched), "{result:#?}");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["r2"])));
    assert!(m.is_some_and(|m| m.explanation.features.contains_key("unique_amount")));
}

#[test]
fn members_keep_one_item_inline_and_read_as_the_list_they_were_given() {
    assert_eq!(Members::from(vec![7]), Members::One(7));
    let many = Members::from(vec![3, 1, 2]);
    assert_eq!(many.as_slice(), &[3, 1, 2]);
    assert!(matches!(many, Members::Many(_)));
    assert!(Members::from(Vec::new()).is_empty());
    assert_eq!((&Members::One(5)).into_iter().copied().collect::<Vec<_>>(), vec![5]);
}

#[test]
fn rules_see_dates_as_iso_text_and_scores_to_four_places() {
    // The rule-writer's guide promises `YYYY-MM-DD` strings (zero-padded).
    for (d, text) in [((2024, 3, 1), "2024-03-01"), ((1999, 12, 31), "1999-12-31"), ((5, 1, 9), "0005-01-09")] {
        let date = NaiveDate::from_ymd_opt(d.0, d.1, d.2).unwrap_or_default();
        let seen = date_value(date).into_immutable_string().map(|s| s.to_string()).ok();
        assert_eq!(seen.as_deref(), Some(text));
    }
    assert_eq!(dec(0.95), Decimal::new(95, 2));
    assert_eq!(dec(0.123_456), Decimal::new(1235, 4));
    assert_eq!(dec(-2.0), Decimal::new(-2, 0));
    assert_eq!(dec(1e300), Decimal::ZERO);
}

#[test]
fn rules_see_dates_as_the_iso_text_chrono_writes() {
    for (y, m, d) in
        [(2024, 3, 1), (2024, 12, 31), (999, 1, 9), (1, 10, 10), (9999, 12, 31), (10_000, 1, 1), (-5, 6, 7)]
    {
        let date = NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
        let seen = date_value(date).into_immutable_string().map(|s| s.to_string());
        assert_eq!(seen.as_deref(), Ok(date.to_string().as_str()), "{date}");
    }
}

/// Two invoices of Acme's for 918.00 (r2 dated `r2_day`), one payment of that amount (b0, with
/// `b0_text`) and two instalments, b1 and b2, that add up to it.
fn one_payment_and_instalments_for_two_equal_invoices(b0_text: &str, r2_day: u32) -> ReconcileResult {
    let bank = [
        tx("b0", 4, 91_800, "ACME", b0_text),
        tx("b1", 8, 40_000, "ACME", "FASTER PAYMENT ACME"),
        tx("b2", 15, 51_800, "ACME", "FASTER PAYMENT ACME"),
    ];
    let records = [inv("r1", 1, 91_800, "Acme Ltd", "INV-2001"), inv("r2", r2_day, 91_800, "Acme Ltd", "INV-2002")];
    run(&bank, &records)
}

#[test]
fn instalments_of_an_invoice_whose_likely_payment_paid_another_are_still_found() {
    // r1's exact pair with b0 looks certain, so no instalments were looked for; but b0 quotes
    // r2, which it pays. b1 and b2 then pay r1 in two parts.
    let result = one_payment_and_instalments_for_two_equal_invoices("FASTER PAYMENT ACME INV-2002", 3);
    let paid = find(&result, "b0");
    assert_eq!(
        paid.map(|m| (m.status, m.record_ids.clone())),
        Some((MatchStatus::Matched, strs(&["r2"]))),
        "{result:#?}"
    );
    let split = find(&result, "b1");
    assert_eq!(
        split.map(|m| (m.status, m.bank_ids.clone(), m.record_ids.clone())),
        Some((MatchStatus::Matched, strs(&["b1", "b2"]), strs(&["r1"]))),
        "{result:#?}"
    );
    assert!(result.unmatched_records.is_empty() && result.unmatched_bank.is_empty(), "{result:#?}");
}

#[test]
fn instalments_that_could_pay_either_of_two_equal_invoices_are_only_suggested() {
    // b0 pays r1 or r2 (same customer, same amount, a day apart): a suggestion. The instalments
    // b1 and b2 pay the other one, but which that is rests on the guess.
    let result = one_payment_and_instalments_for_two_equal_invoices("FASTER PAYMENT ACME", 2);
    assert_eq!(find(&result, "b0").map(|m| m.status), Some(MatchStatus::Suggested), "{result:#?}");
    let split = find(&result, "b1");
    assert_eq!(split.map(|m| m.bank_ids.clone()), Some(strs(&["b1", "b2"])), "{result:#?}");
    assert_eq!(split.map(|m| m.status), Some(MatchStatus::Suggested), "{result:#?}");
    assert!(split.is_some_and(|m| m.confidence < 0.6), "{result:#?}");
    // The reviewer is shown the other reading: the same instalments paying the invoice b0 took.
    let guessed = find(&result, "b0").map(|m| m.record_ids.clone()).unwrap_or_default();
    let first = split.and_then(|m| m.explanation.alternatives.first());
    assert_eq!(first.map(|a| (a.bank_ids.clone(), a.record_ids.clone())), Some((strs(&["b1", "b2"]), guessed)));
    assert!(result.matches.iter().all(|m| m.status != MatchStatus::Matched), "{result:#?}");
}

#[test]
fn a_unique_amount_people_rarely_pick_is_stronger_evidence_than_a_round_one() {
    // Anonymous counter deposits, each amount the only one on both sides: 29,200.00 is matched,
    // 1,500.00 (an amount many customers owe) only suggested.
    let bank = [tx("b1", 6, 2_920_000, "", "PAID IN AT BRANCH"), tx("b2", 6, 150_000, "", "PAID IN AT BRANCH")];
    let records =
        [inv("r1", 1, 2_920_000, "Celik Marketing PLC", "INV-1"), inv("r2", 1, 150_000, "Maple Foods", "INV-2")];
    let result = run(&bank, &records);
    assert_eq!(
        find(&result, "b1").map(|m| (m.status, m.record_ids.clone())),
        Some((MatchStatus::Matched, strs(&["r1"]))),
        "{result:#?}"
    );
    assert_eq!(
        find(&result, "b2").map(|m| (m.status, m.record_ids.clone())),
        Some((MatchStatus::Suggested, strs(&["r2"]))),
        "{result:#?}"
    );
}

#[test]
fn two_equal_deposits_for_one_invoice_each_get_a_reading_when_the_other_has_one() {
    // b1 is the likelier payment of r1 (the day after it) and could also pay r2; b2 can only pay
    // r1, a person having rejected it for r2. Claiming greedily would give r1 to b1 and leave b2
    // and r2 unexplained; the two other readings together explain everything.
    let bank = [tx("b1", 11, 97_300, "", "DEPOSIT"), tx("b2", 13, 97_300, "", "DEPOSIT")];
    let records = [inv("r1", 10, 97_300, "Muller Freight", ""), inv("r2", 12, 97_300, "Atlas Supplies", "")];
    let mut memory = Memory::default();
    memory.learn(&[Feedback { bank_ids: strs(&["b2"]), record_ids: strs(&["r2"]), confirmed: false }], &bank, &records);
    let result = run_with(&bank, &records, &memory);
    let (b1, b2) = (find(&result, "b1"), find(&result, "b2"));
    assert_eq!(b1.map(|m| m.record_ids.clone()), Some(strs(&["r2"])), "{result:#?}");
    assert_eq!(b2.map(|m| m.record_ids.clone()), Some(strs(&["r1"])), "{result:#?}");
    for m in [b1, b2].into_iter().flatten() {
        assert_eq!(m.status, MatchStatus::Suggested);
        // The reading it replaced comes first among the alternatives.
        let first = m.explanation.alternatives.first();
        assert_eq!(first.map(|a| (a.bank_ids.clone(), a.record_ids.clone())), Some((strs(&["b1"]), strs(&["r1"]))));
    }
    assert!(result.unmatched_bank.is_empty() && result.unmatched_records.is_empty());
}

/// A customer's four invoices early in the month and fourteen small invoices of a similarly
/// named customer nearer the payment, which pays the four.
fn four_invoices_among_a_namesakes(payee: &str, text: &str) -> ReconcileResult {
    let mut records = vec![
        inv("t1", 2, 71_936, "Northwind Trading GmbH", "INV-14010"),
        inv("t2", 3, 60_134, "Northwind Trading GmbH", "INV-14011"),
        inv("t3", 4, 32_596, "Northwind Trading GmbH", "INV-14012"),
        inv("t4", 5, 56_762, "Northwind Trading GmbH", "INV-14013"),
    ];
    for k in 0..14u32 {
        records.push(inv(&format!("n{k}"), 15 + k / 3, 101 + i64::from(k), "Northwind Traders Ltd", ""));
    }
    let bank = [tx("b", 20, 71_936 + 60_134 + 32_596 + 56_762, payee, text)];
    run(&bank, &records)
}

#[test]
fn a_batch_of_the_named_customer_is_found_behind_nearer_invoices_of_a_namesake() {
    let result = four_invoices_among_a_namesakes("NORTHWIND TRADING", "ACH CREDIT NORTHWIND TRADING");
    let m = find(&result, "b");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["t1", "t2", "t3", "t4"])), "{result:#?}");
}

#[test]
fn a_batch_whose_reference_list_the_bank_cut_short_is_completed_by_the_amount_left() {
    // The namesake is not named here: only the references (three of four) and the amount left.
    let result = four_invoices_among_a_namesakes("NORTHWIND TRADERS", "inv 14010 inv 14011 inv 14012 inv 1");
    let m = find(&result, "b");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["t1", "t2", "t3", "t4"])), "{result:#?}");
    assert!(m.is_some_and(|m| m.explanation.reasons.iter().any(|r| r.contains("3 of 4 items referenced"))), "{m:#?}");
}

#[test]
fn a_record_another_line_may_pay_is_not_the_only_candidate_even_when_that_line_has_many() {
    // b1 (day 2) can pay only r (day 10). b2 (day 14) could pay r or any of nine later invoices
    // of the same amount: too many to list, but r is still one of them, so neither side of
    // (b1, r) is unique.
    let bank = [tx("b1", 2, 500_000, "", "DEPOSIT"), tx("b2", 14, 500_000, "", "DEPOSIT")];
    let mut records = vec![inv("r", 10, 500_000, "Garcia Software", "")];
    for k in 0..9u32 {
        records.push(inv(&format!("o{k}"), 13 + k, 500_000, &format!("Customer {k}"), ""));
    }
    let result = run(&bank, &records);
    let unique = |m: &Match| m.explanation.reasons.iter().any(|r| r.starts_with("only candidate"));
    let m = find(&result, "b1");
    assert!(m.is_none_or(|m| m.status != MatchStatus::Matched && !unique(m)), "{m:#?}");
}

#[test]
fn a_wire_quoting_a_reference_in_parts_is_found_though_its_fee_passes_the_usual_tolerance() {
    // The bill's reference is printed with its separators, so its digits never appear in one
    // piece; the bank added a 30.00 wire fee (more than the 25.00 always tolerated, less than
    // the 50.00 a reference may carry). Found by the reference's long run of digits, it is a
    // discrepancy with the fee as its difference.
    let mut b = tx("b1", 6, -18_738, "SOCIETE GENERALE DE CA", "WIRE TRANSFER OUT SOCIETE GENERALE DE CA");
    b.reference = Some("SI/2024/796943".into());
    let records = [
        rec("r1", RecordKind::Bill, 4, -15_738, "Société Générale de Café", "SI/2024/796943"),
        rec("r2", RecordKind::Bill, 4, -15_738, "Société Générale de Café", "SI/2024/796950"),
    ];
    let result = run(&[b], &records);
    let m = find(&result, "b1");
    assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&["r1"])), "{result:#?}");
    assert_eq!(m.map(|m| m.status), Some(MatchStatus::Discrepancy));
    assert_eq!(m.map(|m| m.difference), Some(Decimal::new(-3_000, 2)));
}

#[test]
fn equal_invoices_of_one_customer_are_paid_in_the_order_they_were_issued() {
    // Weekly invoices of one amount, each paid seven business days later: every payment is
    // nearer the invoice after the one it pays.
    let invoices = [("r1", 4), ("r2", 8), ("r3", 12)];
    let payments = [("b1", 13), ("b2", 19), ("b3", 21)];
    let bank: Vec<BankTransaction> = payments
        .iter()
        .map(|(id, d)| tx(id, *d, 8_640_000, "LUKASIEWICZ FREIGH", "FASTER PAYMENT RECEIVED LUKASIEWICZ FREIGH"))
        .collect();
    let records: Vec<Record> =
        invoices.iter().map(|(id, d)| inv(id, *d, 8_640_000, "Łukasiewicz Freight Austin PLC", "")).collect();
    let result = run(&bank, &records);
    for ((b, _), (r, _)) in payments.iter().zip(&invoices) {
        let m = find(&result, b);
        assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&[r])), "{b}: {result:#?}");
    }
    // The nearest dates paired b1 with r3 and b3 with r1, both suggestions; paired again in
    // order they stay suggestions (nothing but the order tells the readings apart).
    for b in ["b1", "b3"] {
        let m = find(&result, b);
        assert_eq!(m.map(|m| m.status), Some(MatchStatus::Suggested), "{b}");
        // The pairing replaced is listed first; the match itself is not among its rivals.
        let alternatives = m.map(|m| m.explanation.alternatives.clone()).unwrap_or_default();
        let (old, own) = if b == "b1" { ("r3", "r1") } else { ("r1", "r3") };
        assert_eq!(
            alternatives.first().map(|a| (a.bank_ids.clone(), a.record_ids.clone())),
            Some((strs(&[b]), strs(&[old])))
        );
        assert!(
            !alternatives.iter().any(|a| a.bank_ids == strs(&[b]) && a.record_ids == strs(&[own])),
            "{alternatives:?}"
        );
    }
}

#[test]
fn two_equal_payments_for_two_equal_invoices_are_not_matched_across_their_dates() {
    // Two invoices of one customer with one amount, both before two payments of it naming the
    // customer. The nearest date pairs the first payment with the second invoice, and the one
    // left is then certain; the oldest-first reading pairs them the other way. Neither is
    // certain: both are suggested, in date order.
    let text = "ACH CREDIT CASCADE TEXTILES CORK";
    let records = [
        inv("r1", 8, 94_000, "Cascade Textiles Cork Inc.", "INV-10937"),
        inv("r2", 12, 94_000, "Cascade Textiles Cork Inc.", "INV-11024"),
    ];
    let result = run(&[tx("b1", 13, 94_000, "", text), tx("b2", 18, 94_000, "", text)], &records);
    for (b, r) in [("b1", "r1"), ("b2", "r2")] {
        let m = find(&result, b);
        assert_eq!(m.map(|m| m.status), Some(MatchStatus::Suggested), "{result:#?}");
        assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&[r])), "{result:#?}");
    }

    // A monthly charge booked twice in a week, each debit on its record's day: the nearest dates
    // pair them in order, so both readings agree and both are matched.
    let cp = "Landlord Property Management Malmö";
    let records = [
        rec("r1", RecordKind::Expense, 13, -1_800, cp, "SI/2024/511400"),
        rec("r2", RecordKind::Expense, 14, -1_800, cp, "SI/2024/511400"),
    ];
    let mut b1 = tx("b1", 13, -1_800, "LANDLORD PROPERTY MGMT", "ACH DEBIT PREAUTH LANDLORD PROPERTY MGMT");
    b1.reference = Some("SI/2024/511400".into());
    let b2 = tx("b2", 14, -1_800, "", "ACH DEBIT PREAUTH LANDLORD PROPERTY MANA SI/2024/511400");
    let result = run(&[b1, b2], &records);
    for (b, r) in [("b1", "r1"), ("b2", "r2")] {
        let m = find(&result, b);
        assert_eq!(m.map(|m| m.status), Some(MatchStatus::Matched), "{result:#?}");
        assert_eq!(m.map(|m| m.record_ids.clone()), Some(strs(&[r])), "{result:#?}");
    }
}

#[test]
fn a_payment_quoting_another_invoice_of_the_customer_is_not_matched_to_this_one() {
    // The customer names invoice 09696, from before the books begin; its open invoice of the same
    // amount is another document. The line names the customer, so the pair stays possible.
    let records = [
        inv("r", 18, 4_600, "Granite Print & Media Cork LLP", "INV-10194"),
        inv("o", 20, 4_600, "Harbor Architects Bremen LLP", "INV-10230"),
    ];
    let quoting = |text: &str| run(&[tx("b", 13, 4_600, "", text)], &records);
    let r = quoting("FASTER PAYMENT RECEIVED GRANITE HOLDINGS");
    assert_eq!(find(&r, "b").map(|m| m.status), Some(MatchStatus::Matched), "{r:#?}");
    let r = quoting("FASTER PAYMENT RECEIVED GRANITE HOLDINGS inv 09696");
    assert_eq!(find(&r, "b").map(|m| m.status), Some(MatchStatus::Suggested), "{r:#?}");
    // Its own number cut short is no contradiction.
    let r = quoting("FASTER PAYMENT RECEIVED GRANITE HOLDINGS INV-101");
    assert_eq!(find(&r, "b").map(|m| m.status), Some(MatchStatus::Matched), "{r:#?}");
}

#[test]
fn of_two_payments_of_one_invoice_the_one_arriving_at_the_payers_usual_lag_is_chosen() {
    // Three payments that nothing rivals show the payer pays five business days after the
    // invoice; the fourth invoice has two payments of its amount, one two business days before
    // it (nearer, so the date alone prefers it) and one five days after.
    let pay = |id: &str, d: u32, cents: i64| tx(id, d, cents, "IRONWOOD SOFTWARE", "ACH CREDIT IRONWOOD SOFTWARE");
    let bill = |id: &str, d: u32, cents: i64| inv(id, d, cents, "Ironwood Software LLC", id);
    let bank = |lags: [u32; 3]| {
        let mut lines: Vec<BankTransaction> =
            (0..3).zip(lags).map(|(k, lag)| pay(&format!("b{k}"), 4 + k + lag, i64::from(k + 1) * 100_000)).collect();
        lines.extend([pay("early", 18, 744_000), pay("usual", 27, 744_000)]);
        lines
    };
    let mut records: Vec<Record> = (0..3).map(|k| bill(&format!("r{k}"), 4 + k, i64::from(k + 1) * 100_000)).collect();
    records.push(bill("r4", 20, 744_000));
    let holder = |result: &ReconcileResult| {
        result.matches.iter().find(|m| m.record_ids == strs(&["r4"])).map(|m| m.bank_ids.clone())
    };
    // Days 4 to 6 are Monday to Wednesday: a week later is five business days.
    let habitual = run(&bank([7, 7, 7]), &records);
    assert_eq!(holder(&habitual), Some(strs(&["usual"])), "{habitual:#?}");
    let m = find(&habitual, "usual");
    assert!(m.is_some_and(|m| m.explanation.reasons.iter().any(|r| r.contains("habit"))), "{m:#?}");
    // The run showed the habit, not the memory (there is none): the breakdown says so.
    let f = m.map(|m| &m.explanation.features);
    assert!(f.is_some_and(|f| f.contains_key("habit") && !f.contains_key("memory")), "{m:#?}");
    // Lags of one, five and nine business days show no habit: the nearer date decides.
    let scattered = run(&bank([1, 7, 13]), &records);
    assert_eq!(holder(&scattered), Some(strs(&["early"])), "{scattered:#?}");
}
