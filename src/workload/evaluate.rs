//! Scoring a reconciliation against the ground truth.
//!
//! Scores are pairwise: every truth group implies the (bank id, record id) pairs of its members,
//! and every proposed match implies the pairs of its own. Pairs make partial credit fair for groups
//! (a batch found with one invoice missing still earns most of its pairs) and make a wrong extra
//! member cost precision.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::truth::{GroupKind, TruthGroup};
use crate::matching::{MatchStatus, ReconcileResult};

/// Precision, recall and F1 of one set of proposed pairs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PairScores {
    /// Distinct pairs proposed.
    pub proposed: usize,
    /// Proposed pairs that are in the truth.
    pub correct: usize,
    /// `correct / proposed` (0 when nothing was proposed).
    pub precision: f64,
    /// `correct / truth pairs` (0 when the truth is empty).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
}

impl PairScores {
    fn new(proposed: usize, correct: usize, truth: usize) -> Self {
        let precision = ratio(correct, proposed);
        let recall = ratio(correct, truth);
        let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
        PairScores { proposed, correct, precision, recall, f1 }
    }
}

/// Recall on the pairs of one kind of truth group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KindScore {
    /// The kind of group.
    pub kind: GroupKind,
    /// Truth pairs of this kind.
    pub pairs: usize,
    /// Share of them among all proposals (matched, suggested, discrepancy).
    pub recall: f64,
    /// Share of them among automatic matches (`matched` or `discrepancy`).
    pub auto_recall: f64,
}

/// How well a reconciliation did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Scores {
    /// What was run (profile, matcher...), for the table's first column.
    pub label: String,
    /// Bank transactions in the run.
    pub bank_transactions: usize,
    /// Records in the run.
    pub records: usize,
    /// Pairs implied by the truth groups.
    pub truth_pairs: usize,
    /// Automatic matches: those the engine made without human review, status `matched` or
    /// `discrepancy` (a discrepancy claims its items as a match does; only its difference awaits
    /// resolution).
    pub auto: PairScores,
    /// Status `matched` alone: the part of the automatic matches whose amounts agree exactly.
    #[serde(default)]
    pub matched: PairScores,
    /// Every proposal (matched, suggested and discrepancy).
    pub all: PairScores,
    /// Share of bank transactions in an automatic match (`matched` or `discrepancy`).
    pub auto_match_rate: f64,
    /// Recall per kind of truth group, for the kinds present in the truth.
    pub per_kind: Vec<KindScore>,
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// Interns ids so that pairs are two integers rather than two strings.
#[derive(Default)]
struct Ids<'a> {
    map: HashMap<&'a str, u32>,
}

impl<'a> Ids<'a> {
    fn get(&mut self, id: &'a str) -> u32 {
        let next = self.map.len() as u32;
        *self.map.entry(id).or_insert(next)
    }
}

/// Scores `result` against `truth`.
///
/// "Auto" means what the engine decided without human review: matches with status `matched` or
/// `discrepancy`, which both claim their items. Suggestions count only towards `all`.
pub fn evaluate(result: &ReconcileResult, truth: &[TruthGroup]) -> Scores {
    let mut bank_ids = Ids::default();
    let mut record_ids = Ids::default();
    let mut truth_pairs: HashMap<(u32, u32), GroupKind> = HashMap::new();
    for g in truth {
        for b in &g.bank_ids {
            let b = bank_ids.get(b);
            for r in &g.record_ids {
                truth_pairs.insert((b, record_ids.get(r)), g.kind);
            }
        }
    }
    let mut auto: HashSet<(u32, u32)> = HashSet::new();
    let mut exact: HashSet<(u32, u32)> = HashSet::new();
    let mut all: HashSet<(u32, u32)> = HashSet::new();
    let mut auto_bank: HashSet<u32> = HashSet::new();
    let mut seen_bank: HashSet<u32> = HashSet::new();
    for m in &result.matches {
        let automatic = matches!(m.status, MatchStatus::Matched | MatchStatus::Discrepancy);
        let matched = m.status == MatchStatus::Matched;
        for b in &m.bank_ids {
            let b = bank_ids.get(b);
            seen_bank.insert(b);
            if automatic {
                auto_bank.insert(b);
            }
            for r in &m.record_ids {
                let pair = (b, record_ids.get(r));
                all.insert(pair);
                if automatic {
                    auto.insert(pair);
                }
                if matched {
                    exact.insert(pair);
                }
            }
        }
    }
    for b in &result.unmatched_bank {
        seen_bank.insert(bank_ids.get(b));
    }
    let hits = |set: &HashSet<(u32, u32)>| set.iter().filter(|p| truth_pairs.contains_key(p)).count();
    let per_kind = GroupKind::ALL
        .iter()
        .filter_map(|&kind| {
            let pairs: Vec<&(u32, u32)> = truth_pairs.iter().filter(|(_, k)| **k == kind).map(|(p, _)| p).collect();
            if pairs.is_empty() {
                return None;
            }
            let found = pairs.iter().filter(|p| all.contains(p)).count();
            let found_auto = pairs.iter().filter(|p| auto.contains(p)).count();
            Some(KindScore {
                kind,
                pairs: pairs.len(),
                recall: ratio(found, pairs.len()),
                auto_recall: ratio(found_auto, pairs.len()),
            })
        })
        .collect();
    let bank_transactions =
        if result.summary.bank_transactions > 0 { result.summary.bank_transactions } else { seen_bank.len() };
    let records = if result.summary.records > 0 {
        result.summary.records
    } else {
        let in_matches: HashSet<&str> =
            result.matches.iter().flat_map(|m| m.record_ids.iter().map(String::as_str)).collect();
        in_matches.len() + result.unmatched_records.len()
    };
    Scores {
        label: String::new(),
        bank_transactions,
        records,
        truth_pairs: truth_pairs.len(),
        auto: PairScores::new(auto.len(), hits(&auto), truth_pairs.len()),
        matched: PairScores::new(exact.len(), hits(&exact), truth_pairs.len()),
        all: PairScores::new(all.len(), hits(&all), truth_pairs.len()),
        auto_match_rate: ratio(auto_bank.len(), bank_transactions),
        per_kind,
    }
}

impl Scores {
    /// The same scores with a label for the table's first column.
    pub fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// The Markdown table header (two lines) matching [`Scores`]'s `Display` row.
    pub fn markdown_header() -> String {
        let mut head =
            String::from("| run | bank | records | auto P | auto R | auto F1 | all P | all R | all F1 | auto rate |");
        let mut rule = String::from("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for kind in GroupKind::ALL {
            head.push_str(&format!(" {} R |", short(kind)));
            rule.push_str("---:|");
        }
        format!("{head}\n{rule}")
    }

    /// Recall on `kind`, when the truth has pairs of that kind.
    pub fn kind_recall(&self, kind: GroupKind) -> Option<f64> {
        self.per_kind.iter().find(|k| k.kind == kind).map(|k| k.recall)
    }
}

fn short(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::OneToOne => "1:1",
        other => other.as_str(),
    }
}

impl fmt::Display for Scores {
    /// One Markdown table row; kinds absent from the truth show `—`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = if self.label.is_empty() { "-" } else { self.label.as_str() };
        write!(
            f,
            "| {label} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            self.bank_transactions,
            self.records,
            self.auto.precision,
            self.auto.recall,
            self.auto.f1,
            self.all.precision,
            self.all.recall,
            self.all.f1,
            self.auto_match_rate
        )?;
        for kind in GroupKind::ALL {
            match self.kind_recall(kind) {
                Some(r) => write!(f, " {r:.3} |")?,
                None => f.write_str(" — |")?,
            }
        }
        Ok(())
    }
}

/// What became of one truth group, from best to worst: how a matcher's misses break down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every pair matched without review.
    Auto,
    /// Some pairs matched without review, the others suggested or missing.
    AutoPartial,
    /// Every pair proposed, but as a suggestion because a rival was nearly as likely.
    Ambiguous,
    /// Every pair proposed, but as a suggestion for want of evidence.
    Weak,
    /// Some pairs proposed, none automatically.
    Partial,
    /// No pair proposed; one of its items went to another match.
    LostToRival,
    /// No pair proposed and none of its items in any match.
    Unproposed,
}

impl Outcome {
    /// Every outcome, best first.
    pub const ALL: [Outcome; 7] = [
        Outcome::Auto,
        Outcome::AutoPartial,
        Outcome::Ambiguous,
        Outcome::Weak,
        Outcome::Partial,
        Outcome::LostToRival,
        Outcome::Unproposed,
    ];

    /// The snake_case name used in JSON and tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Auto => "auto",
            Outcome::AutoPartial => "auto_partial",
            Outcome::Ambiguous => "ambiguous",
            Outcome::Weak => "weak",
            Outcome::Partial => "partial",
            Outcome::LostToRival => "lost_to_rival",
            Outcome::Unproposed => "unproposed",
        }
    }
}

/// What became of each truth group (in `truth`'s order): where recall is lost, by kind and reason.
pub fn outcomes(result: &ReconcileResult, truth: &[TruthGroup]) -> Vec<Outcome> {
    let mut pair_match: HashMap<(&str, &str), &crate::matching::Match> = HashMap::new();
    let mut used: HashSet<&str> = HashSet::new();
    for m in &result.matches {
        for b in &m.bank_ids {
            used.insert(b.as_str());
            for r in &m.record_ids {
                pair_match.insert((b.as_str(), r.as_str()), m);
            }
        }
        used.extend(m.record_ids.iter().map(|r| r.as_str()));
    }
    truth
        .iter()
        .map(|g| {
            let found: Vec<&crate::matching::Match> = g
                .bank_ids
                .iter()
                .flat_map(|b| g.record_ids.iter().map(move |r| (b.as_str(), r.as_str())))
                .filter_map(|p| pair_match.get(&p).copied())
                .collect();
            let pairs = g.bank_ids.len() * g.record_ids.len();
            let auto = found.iter().filter(|m| m.status != MatchStatus::Suggested).count();
            if pairs > 0 && auto == pairs {
                Outcome::Auto
            } else if auto > 0 {
                Outcome::AutoPartial
            } else if pairs > 0 && found.len() == pairs {
                let ambiguous = found.iter().any(|m| m.explanation.reasons.iter().any(|r| r.starts_with("ambiguous")));
                if ambiguous {
                    Outcome::Ambiguous
                } else {
                    Outcome::Weak
                }
            } else if !found.is_empty() {
                Outcome::Partial
            } else if g.bank_ids.iter().chain(&g.record_ids).any(|i| used.contains(i.as_str())) {
                Outcome::LostToRival
            } else {
                Outcome::Unproposed
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::matching::{Explanation, Match, Method, Summary};

    fn group(bank: &[&str], records: &[&str], kind: GroupKind) -> TruthGroup {
        TruthGroup {
            bank_ids: bank.iter().map(|s| s.to_string()).collect(),
            record_ids: records.iter().map(|s| s.to_string()).collect(),
            kind,
            difference: Decimal::ZERO,
        }
    }

    fn proposal(bank: &[&str], records: &[&str], status: MatchStatus) -> Match {
        Match {
            id: format!("m-{}", bank.join("+")),
            status,
            bank_ids: bank.iter().map(|s| s.to_string()).collect(),
            record_ids: records.iter().map(|s| s.to_string()).collect(),
            confidence: 1.0,
            method: Method::Score,
            rule: None,
            difference: Decimal::ZERO,
            explanation: Explanation::default(),
        }
    }

    fn truth() -> Vec<TruthGroup> {
        vec![
            group(&["b1"], &["r1"], GroupKind::OneToOne),
            group(&["b2"], &["r2", "r3", "r4"], GroupKind::Batch),
            group(&["b3", "b4"], &["r5"], GroupKind::Split),
        ]
    }

    #[test]
    fn a_perfect_result_scores_one_everywhere() {
        let matches = truth().into_iter().map(|g| {
            let b: Vec<&str> = g.bank_ids.iter().map(String::as_str).collect();
            let r: Vec<&str> = g.record_ids.iter().map(String::as_str).collect();
            proposal(&b, &r, MatchStatus::Matched)
        });
        let result = ReconcileResult { matches: matches.collect(), ..Default::default() };
        let s = evaluate(&result, &truth());
        assert_eq!(s.truth_pairs, 6);
        assert_eq!((s.auto.precision, s.auto.recall, s.auto.f1), (1.0, 1.0, 1.0));
        assert_eq!((s.all.precision, s.all.recall), (1.0, 1.0));
        assert_eq!(s.auto_match_rate, 1.0);
        assert!(s.per_kind.iter().all(|k| k.recall == 1.0));
    }

    #[test]
    fn an_empty_result_has_zero_recall() {
        let result = ReconcileResult {
            unmatched_bank: vec!["b1".into(), "b2".into(), "b3".into(), "b4".into()],
            ..Default::default()
        };
        let s = evaluate(&result, &truth());
        assert_eq!(s.all.recall, 0.0);
        assert_eq!(s.auto.recall, 0.0);
        assert_eq!(s.auto.f1, 0.0);
        assert_eq!(s.auto_match_rate, 0.0);
        assert_eq!(s.bank_transactions, 4);
    }

    #[test]
    fn suggestions_count_for_all_proposals_but_not_for_auto_matches() {
        let result = ReconcileResult {
            matches: vec![
                proposal(&["b1"], &["r1"], MatchStatus::Matched),
                proposal(&["b2"], &["r2", "r9"], MatchStatus::Suggested),
            ],
            summary: Summary { bank_transactions: 4, ..Default::default() },
            ..Default::default()
        };
        let s = evaluate(&result, &truth());
        assert_eq!((s.auto.proposed, s.auto.correct), (1, 1));
        assert_eq!((s.all.proposed, s.all.correct), (3, 2));
        assert!((s.all.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.all.recall - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(s.auto_match_rate, 0.25);
        assert_eq!(s.kind_recall(GroupKind::Batch), Some(1.0 / 3.0));
        assert_eq!(s.kind_recall(GroupKind::Split), Some(0.0));
        assert_eq!(s.kind_recall(GroupKind::Check), None);
    }

    #[test]
    fn discrepancies_count_as_automatic_matches_but_not_as_exact_ones() {
        let result = ReconcileResult {
            matches: vec![
                proposal(&["b1"], &["r1"], MatchStatus::Discrepancy),
                proposal(&["b2"], &["r2"], MatchStatus::Matched),
            ],
            summary: Summary { bank_transactions: 4, ..Default::default() },
            ..Default::default()
        };
        let s = evaluate(&result, &truth());
        assert_eq!((s.auto.proposed, s.auto.correct), (2, 2));
        assert_eq!((s.matched.proposed, s.matched.correct), (1, 1));
        assert_eq!(s.auto_match_rate, 0.5);
    }

    #[test]
    fn each_truth_group_is_told_what_became_of_it() {
        let mut ambiguous = proposal(&["b1"], &["r1"], MatchStatus::Suggested);
        ambiguous.explanation.reasons.push("ambiguous: a competing candidate is nearly as likely".into());
        let result = ReconcileResult {
            matches: vec![ambiguous, proposal(&["b2"], &["r2", "r3", "r4"], MatchStatus::Matched)],
            ..Default::default()
        };
        assert_eq!(outcomes(&result, &truth()), vec![Outcome::Ambiguous, Outcome::Auto, Outcome::Unproposed]);
        let result = ReconcileResult {
            matches: vec![
                proposal(&["b1"], &["r9"], MatchStatus::Matched),
                proposal(&["b2"], &["r2"], MatchStatus::Suggested),
                proposal(&["b3"], &["r5"], MatchStatus::Matched),
            ],
            ..Default::default()
        };
        assert_eq!(outcomes(&result, &truth()), vec![Outcome::LostToRival, Outcome::Partial, Outcome::AutoPartial]);
    }

    #[test]
    fn the_markdown_row_has_as_many_cells_as_the_header() {
        let s = evaluate(&ReconcileResult::default(), &truth()).labelled("realistic/baseline");
        let header = Scores::markdown_header();
        let head_cells = header.lines().next().map(|l| l.matches('|').count());
        let row = s.to_string();
        assert_eq!(Some(row.matches('|').count()), head_cells);
        assert!(row.starts_with("| realistic/baseline |"));
        assert!(row.contains("—"));
    }
}
