//! The reconciliation run: candidates from indexes, evidence and scores, rules on the few
//! survivors, bounded subset-sum for groups, then one global, conflict-free and deterministic
//! assignment with ambiguity checks.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{Datelike, Duration, NaiveDate};
use rayon::prelude::*;
use rhai::{Array, Dynamic, ImmutableString, Map};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::memory::Memory;
use super::model::{Alternative, Explanation, Match, MatchStatus, Method, ReconcileResult, Summary};
use super::prepare::{
    bank_keys, in_window, intern_names, record_keys, units, window, BankIndex, BankItem, Key, RecordIndex, RecordItem,
};
use super::score::{
    pair_features_with, ref_ties, references_tie, score_pair, score_value, sigmoid, NameCache, NameTable, PairFeatures,
    Scored, Weights,
};
use super::subset::{self, Caps};
use super::text::{self, RefEvidence};
use crate::domain::{BankTransaction, Currency, Record};
use crate::rules::{Decision, RuleError, RuleSet, Verdict};

/// Limits of the group (subset-sum) search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupConfig {
    /// Whether to look for n:1 and 1:n groups at all.
    pub enabled: bool,
    /// Candidates considered per search (the closest by evidence and date).
    pub max_candidates: usize,
    /// Largest group.
    pub max_size: usize,
    /// Search steps per search.
    pub max_steps: u64,
    /// Calendar days a batch may lag behind its oldest invoice, or instalments run after it.
    pub window_days: i64,
    /// Whether to look for payouts: groups of records without any name or reference evidence.
    pub payouts: bool,
    /// Calendar days a payout may lag behind the records it pays.
    pub payout_days: i64,
    /// Candidates considered per payout search.
    pub payout_candidates: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            enabled: true,
            max_candidates: 14,
            max_size: 6,
            max_steps: 5_000,
            window_days: 60,
            payouts: true,
            payout_days: 14,
            payout_candidates: 20,
        }
    }
}

/// Thresholds, tolerances and limits of one reconciliation. `Default` is a sensible setting for
/// business accounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Confidence at or above which an unambiguous exact match is booked without review.
    pub auto_threshold: f64,
    /// Confidence at or above which a candidate is proposed at all.
    pub suggest_threshold: f64,
    /// Confidence at or above which an unambiguous match with an amount difference is reported as
    /// a discrepancy (below it, a suggestion).
    pub discrepancy_threshold: f64,
    /// A competitor within this much log-odds (score) makes a match ambiguous: 1.5 means the
    /// winner must be about 4.5 times likelier than any rival.
    pub ambiguity_margin: f64,
    /// Smallest amount difference always tolerated (fees, short payments).
    pub tolerance_abs: Decimal,
    /// Amount difference tolerated as a percentage of the record's amount.
    pub tolerance_pct: Decimal,
    /// Largest amount difference ever tolerated.
    pub tolerance_max: Decimal,
    /// Calendar days a bank line may precede its record's date.
    pub days_before: i64,
    /// Calendar days a bank line may follow its record's date.
    pub days_after: i64,
    /// Calendar days a reference match may span.
    pub reference_days: i64,
    /// Confidence below which rules are not asked about a pair (it cannot become a match
    /// without strong native evidence, and asking costs script time).
    pub rule_floor: f64,
    /// Candidates kept per bank line after scoring.
    pub max_candidates: usize,
    /// Alternatives listed on an ambiguous match.
    pub max_alternatives: usize,
    /// Group search limits.
    pub groups: GroupConfig,
    /// The tenant's own accounts (numbers or IBANs; case, spaces and punctuation ignored). A bank
    /// line whose counterparty account is one of them, with an opposite line on another statement
    /// in the input, is paired with it as a transfer.
    pub own_accounts: Vec<String>,
    /// Business days a transfer may take to arrive.
    pub transfer_days: i64,
    /// Whether to use the confidence calibration learned in memory. Off by default: on generated
    /// workloads it trades recall for little precision, because the passed-over candidates it
    /// learns from are easier than the mistakes it should prevent.
    pub use_calibration: bool,
    /// Evidence weights.
    pub weights: Weights,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            auto_threshold: 0.95,
            suggest_threshold: 0.5,
            discrepancy_threshold: 0.8,
            ambiguity_margin: 1.5,
            tolerance_abs: Decimal::new(2500, 2),
            tolerance_pct: Decimal::TWO,
            tolerance_max: Decimal::new(5000, 2),
            days_before: 10,
            days_after: 45,
            reference_days: 120,
            rule_floor: 0.1,
            max_candidates: 5,
            max_alternatives: 3,
            groups: GroupConfig::default(),
            own_accounts: Vec::new(),
            transfer_days: 3,
            use_calibration: false,
            weights: Weights::default(),
        }
    }
}

impl EngineConfig {
    /// The dates a bank line booked on `date` may pair a record of: `days_after` before it to
    /// `days_before` after it.
    fn pair_window(&self, date: NaiveDate) -> (NaiveDate, NaiveDate) {
        (shift(date, -self.days_after), shift(date, self.days_before))
    }

    /// The amount difference tolerated for `amount`, in ten-thousandths.
    fn tolerance_units(&self, amount: i64) -> i64 {
        let pct = Decimal::from(amount.unsigned_abs())
            .checked_mul(self.tolerance_pct)
            .and_then(|d| d.checked_div(Decimal::ONE_HUNDRED))
            .unwrap_or(Decimal::ZERO);
        let abs = units(self.tolerance_abs).unwrap_or(0);
        let max = units(self.tolerance_max).unwrap_or(0);
        use rust_decimal::prelude::ToPrimitive;
        pct.to_i64().unwrap_or(0).max(abs).min(max).max(0)
    }
}

/// A reconciliation that could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A rule failed (error, limit, wrong return value).
    #[error(transparent)]
    Rule(#[from] RuleError),
}

/// A proposed group with its evidence, before assignment.
#[derive(Debug, Clone)]
struct Edge {
    bank: Members,
    recs: Members,
    confidence: f64,
    method: Method,
    rule: Option<String>,
    evidence: Evidence,
    difference: Decimal,
}

/// The bank lines or records of an edge, by position: one kept inline (nearly every edge is a
/// pair), several boxed. A million pairs then need no allocation for their members.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Members {
    One(u32),
    Many(Box<[u32]>),
}

impl Members {
    fn as_slice(&self) -> &[u32] {
        match self {
            Members::One(x) => std::slice::from_ref(x),
            Members::Many(v) => v,
        }
    }
}

impl std::ops::Deref for Members {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        self.as_slice()
    }
}

impl<'a> IntoIterator for &'a Members {
    type Item = &'a u32;
    type IntoIter = std::slice::Iter<'a, u32>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl From<Vec<u32>> for Members {
    fn from(v: Vec<u32>) -> Self {
        match v.as_slice() {
            [x] => Members::One(*x),
            _ => Members::Many(v.into_boxed_slice()),
        }
    }
}

/// What an edge's explanation is rebuilt from. Pairs keep only their features and the rules'
/// verdict (the reasons in words are written for the few that become matches); groups are few
/// and keep their score. A verdict is boxed apart: most pairs have none, and an empty one would
/// double the size of each pair's evidence.
#[derive(Debug, Clone)]
enum Evidence {
    Pair(Box<(PairFeatures, Option<Box<Verdict>>)>),
    Group(Box<Scored>),
}

impl Edge {
    fn scored(&self, weights: &Weights) -> Scored {
        match &self.evidence {
            Evidence::Pair(p) => {
                let mut s = score_pair(&p.0, weights);
                if let Some(v) = &p.1 {
                    let _ = apply((**v).clone(), &mut s);
                }
                s
            }
            Evidence::Group(s) => (**s).clone(),
        }
    }

    fn is_group(&self) -> bool {
        self.bank.len() > 1 || self.recs.len() > 1
    }

    /// Positions of the edges touching this edge's items, itself included, by way of the
    /// incidences of bank lines and records (an edge touching several items comes once for each).
    fn touching<'i>(&'i self, by_bank: &'i Incidence, by_rec: &'i Incidence) -> impl Iterator<Item = usize> + 'i {
        let banks = self.bank.iter().flat_map(|b| by_bank.of(*b));
        banks.chain(self.recs.iter().flat_map(|r| by_rec.of(*r))).map(|j| *j as usize)
    }
}

/// Reconciles bank lines with book records.
pub fn reconcile(
    bank: &[BankTransaction],
    records: &[Record],
    rules: &RuleSet,
    memory: &Memory,
    config: &EngineConfig,
) -> Result<ReconcileResult, EngineError> {
    let mut clock = Phases::start();
    let mut banks: Vec<Option<BankItem<'_>>> = bank.par_iter().map(BankItem::new).collect();
    let mut recs: Vec<Option<RecordItem<'_>>> = records.par_iter().map(RecordItem::new).collect();
    let names = NameTable::new(intern_names(&mut banks, &mut recs));
    let (bkeys, rkeys) = (bank_keys(&banks), record_keys(&recs));
    clock.lap("prepare");
    let rindex = RecordIndex::build(&recs);
    clock.lap("index");
    let ctx = Ctx { banks: &banks, recs: &recs, bkeys: &bkeys, rkeys: &rkeys, rindex: &rindex, memory, config, rules };

    // How many bank lines have each record as an exact candidate, all of them counted (the
    // lists keep only the best few): a record is unique on its side only if one has.
    let hits: Vec<AtomicU32> = (0..recs.len()).map(|_| AtomicU32::new(0)).collect();
    let (mut per_bank, exact): (Vec<Vec<PairCandidate>>, Vec<ExactList>) = (0..banks.len())
        .into_par_iter()
        .map_init(|| NameCache::new(&names), |names, i| ctx.pair_candidates(i as u32, names, &hits))
        .unzip();
    let hits: Vec<u32> = hits.into_iter().map(AtomicU32::into_inner).collect();
    mark_unique(&mut per_bank, &hits);
    mark_run_habits(&mut per_bank, &ctx);
    let exact = ExactCandidates::new(exact, hits);
    clock.lap("pair_candidates");
    let pair_edges: Vec<Vec<Edge>> = per_bank
        .into_par_iter()
        .enumerate()
        .map(|(i, cands)| ctx.judge_pairs(i as u32, cands))
        .collect::<Result<_, _>>()?;
    let mut edges: Vec<Edge> = pair_edges.into_iter().flatten().collect();
    clock.lap("judge_pairs");

    // The best exact pair of each item: where one is certain, no group is looked for.
    let mut best_bank = vec![0.0f64; banks.len()];
    let mut best_rec = vec![0.0f64; recs.len()];
    if config.groups.enabled {
        // Groups are looked for wherever no exact pair is certain: a near-amount pair may be one
        // part of a batch rather than a fee.
        // How well each record is already explained: 0 not at all, 1 by a suggestion, 2 by a
        // certain match.
        let mut explained = vec![0u8; recs.len()];
        // The best pair of each bank line, of its amount or short by a fee.
        let mut paired = vec![0.0f64; banks.len()];
        for e in &edges {
            for b in &e.bank {
                if let Some(x) = paired.get_mut(*b as usize) {
                    *x = x.max(e.confidence);
                }
            }
            let level = if e.confidence >= config.auto_threshold { 2 } else { 1 };
            for r in &e.recs {
                if let Some(x) = explained.get_mut(*r as usize) {
                    *x = (*x).max(level);
                }
            }
            if !e.difference.is_zero() {
                continue;
            }
            for b in &e.bank {
                if let Some(x) = best_bank.get_mut(*b as usize) {
                    *x = x.max(e.confidence);
                }
            }
            for r in &e.recs {
                if let Some(x) = best_rec.get_mut(*r as usize) {
                    *x = x.max(e.confidence);
                }
            }
        }
        let bindex = BankIndex::build(&banks);
        let open = OpenRecords::new(&rindex.by_date, explained);
        clock.lap("group_index");
        let many_recs: Vec<Vec<Edge>> = (0..banks.len())
            .into_par_iter()
            .filter(|i| best_bank.get(*i).is_some_and(|c| *c < config.auto_threshold))
            .map_init(
                || NameCache::new(&names),
                |names, i| {
                    // A line with a pair worth suggesting is not searched for a payout of
                    // unnamed records: one record of its amount, or of the payer it names short
                    // by a fee, is a simpler explanation than several others adding up to it by
                    // chance. Should that pair lose its record, the search among the leftovers
                    // still looks at the line.
                    let payouts = config.groups.payouts && paired.get(i).is_some_and(|c| *c < config.suggest_threshold);
                    ctx.bank_groups(i as u32, &open, names, payouts)
                },
            )
            .collect::<Result<_, _>>()?;
        clock.lap("bank_groups");
        let many_banks: Vec<Vec<Edge>> = (0..recs.len())
            .into_par_iter()
            .filter(|i| best_rec.get(*i).is_some_and(|c| *c < config.auto_threshold))
            .map_init(|| NameCache::new(&names), |names, i| ctx.record_groups(i as u32, &bindex, names))
            .collect::<Result<_, _>>()?;
        clock.lap("record_groups");
        edges.extend(many_recs.into_iter().flatten());
        edges.extend(many_banks.into_iter().flatten());
    }
    if !config.own_accounts.is_empty() {
        edges.extend(transfer_edges(&ctx));
    }
    // From here on only the records' date order is read (the payout search among leftovers): the
    // lookup maps go before the assignment, the run's largest allocation.
    let rindex = rindex.into_date_order();
    let ctx = Ctx { banks: &banks, recs: &recs, bkeys: &bkeys, rkeys: &rkeys, rindex: &rindex, memory, config, rules };
    let Assignment { mut chosen, rest, bank_claimed, rec_claimed } = assign_rounds(edges, &exact, &ctx)?;
    drop(exact);
    clock.lap("assign");
    if config.groups.enabled {
        let mut found: Vec<Edge> = Vec::new();
        // A record whose certain-looking pair lost its bank line to a better match was never
        // searched for instalments; it is now, among the bank lines left over.
        let skipped: Vec<u32> = (0..recs.len())
            .filter(|i| rec_claimed.get(*i).is_some_and(|c| !*c))
            .filter(|i| best_rec.get(*i).is_some_and(|c| *c >= config.auto_threshold))
            .map(|i| i as u32)
            .collect();
        // A record of the same counterparty and amount that only a suggestion claims could as
        // well be the one those instalments paid.
        let key = |r: u32| rkeys.get(r as usize).and_then(Option::as_ref).map(|k| (k.name_id, k.currency, k.units));
        let twins: HashMap<(u32, Currency, i64), u32> = chosen
            .iter()
            .filter(|(_, o)| o.status == MatchStatus::Suggested)
            .flat_map(|(e, _)| e.recs.iter())
            .filter_map(|r| Some((key(*r)?, *r)))
            .collect();
        let twin_of = |e: &Edge| match e.recs.as_slice() {
            [r] if e.bank.len() > 1 => key(*r).and_then(|k| twins.get(&k)).copied(),
            _ => None,
        };
        if !skipped.is_empty() {
            let bindex = BankIndex::build_where(&banks, |i| bank_claimed.get(i).is_some_and(|c| !*c));
            let splits: Vec<Vec<Edge>> = skipped
                .into_par_iter()
                .map_init(|| NameCache::new(&names), |names, ri| ctx.record_groups(ri, &bindex, names))
                .collect::<Result<_, _>>()?;
            found.extend(splits.into_iter().flatten());
        }
        clock.lap("leftover_splits");
        if config.groups.payouts {
            // On a busy day a payout's parts hide among many records that pairs later explain;
            // once those are claimed, the records left over are few and an exact sum among them
            // means much more. The leftovers are searched again; what is found claims only
            // leftovers.
            let levels = rec_claimed.iter().map(|c| if *c { 2 } else { 0 }).collect();
            let open = OpenRecords { caution: LEFTOVER_CAUTION, ..OpenRecords::new(&rindex.by_date, levels) };
            let payouts: Vec<Vec<Edge>> = (0..banks.len())
                .into_par_iter()
                .filter(|i| bank_claimed.get(*i).is_some_and(|c| !*c))
                .map_init(|| NameCache::new(&names), |names, i| ctx.leftover_payouts(i as u32, &open, names))
                .collect::<Result<_, _>>()?;
            found.extend(payouts.into_iter().flatten());
            clock.lap("leftover_payouts");
        }
        let mut more = assign(found, &ctx).chosen;
        for (e, outcome) in &mut more {
            let Some(twin) = twin_of(e).filter(|_| outcome.status != MatchStatus::Suggested) else { continue };
            // The same instalments paying the twin are as likely: its rival, listed as such.
            outcome.confidence = shared(e.confidence, odds(e.confidence));
            outcome.status = MatchStatus::Suggested;
            outcome.ambiguous = true;
            outcome
                .alternatives
                .insert(0, Rival { bank: e.bank.clone(), recs: Members::One(twin), confidence: e.confidence });
            outcome.alternatives.truncate(config.max_alternatives);
        }
        chosen.extend(more);
    }
    augment(&mut chosen, rest, &ctx);
    clock.lap("augment");
    in_order(&mut chosen, &ctx, &names)?;
    clock.lap("in_order");
    // What the matches were found with is not needed to write them: they are written once it is
    // gone, so that the prepared items and the written matches are never alive together.
    drop((rindex, bkeys, rkeys, names, banks, recs));
    // Which lines and records a match holds, by position: the unmatched ones are the rest.
    let (mut bank_used, mut rec_used) = (vec![false; bank.len()], vec![false; records.len()]);
    for (e, _) in &chosen {
        mark(&mut bank_used, &e.bank, true);
        mark(&mut rec_used, &e.recs, true);
    }
    let matches = build(chosen, &config.weights, bank, records);
    clock.lap("matches");
    let out = result(matches, bank, records, &bank_used, &rec_used);
    clock.lap("result");
    Ok(out)
}

/// Wall time of each phase of a run, logged at debug level (`RUST_LOG=bankrec::matching=debug`)
/// for profiling.
struct Phases {
    at: std::time::Instant,
}

impl Phases {
    fn start() -> Self {
        Phases { at: std::time::Instant::now() }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        tracing::debug!(matching.phase = phase, duration_ms = (now - self.at).as_secs_f64() * 1e3, "matching phase");
        self.at = now;
    }
}

struct Ctx<'c, 'a> {
    banks: &'c [Option<BankItem<'a>>],
    recs: &'c [Option<RecordItem<'a>>],
    /// The bank lines' keys, by position: what candidate filters read first.
    bkeys: &'c [Option<Key>],
    /// The records' keys, by position.
    rkeys: &'c [Option<Key>],
    rindex: &'c RecordIndex,
    memory: &'c Memory,
    config: &'c EngineConfig,
    rules: &'c RuleSet,
}

struct PairCandidate {
    rec: u32,
    features: PairFeatures,
}

fn shift(d: NaiveDate, days: i64) -> NaiveDate {
    d.checked_add_signed(Duration::days(days)).unwrap_or(if days < 0 { NaiveDate::MIN } else { NaiveDate::MAX })
}

fn sign(u: i64) -> i64 {
    u.signum()
}

impl Ctx<'_, '_> {
    fn bank(&self, i: u32) -> Option<&BankItem<'_>> {
        self.banks.get(i as usize).and_then(Option::as_ref)
    }

    fn rec(&self, i: u32) -> Option<&RecordItem<'_>> {
        self.recs.get(i as usize).and_then(Option::as_ref)
    }

    fn bkey(&self, i: u32) -> Option<&Key> {
        self.bkeys.get(i as usize).and_then(Option::as_ref)
    }

    fn rkey(&self, i: u32) -> Option<&Key> {
        self.rkeys.get(i as usize).and_then(Option::as_ref)
    }

    /// Whether the pair was rejected before; reads neither item when memory holds no rejection.
    fn rejected(&self, b: &BankItem<'_>, ri: u32) -> bool {
        !self.memory.rejected_pairs.is_empty()
            && self.rec(ri).is_some_and(|r| self.memory.is_rejected(&b.tx.id, &r.rec.id))
    }

    /// A pair's confidence: the learned calibration when memory has one, else the logistic of
    /// the score.
    fn confidence(&self, score: f64) -> f64 {
        match (&self.memory.calibration, self.config.use_calibration) {
            (Some(c), true) => c.confidence(score),
            _ => sigmoid(score),
        }
    }

    /// Name keys of a bank line, learned aliases included.
    fn bank_name_keys<'b>(&self, b: &'b BankItem<'_>) -> Cow<'b, [String]> {
        if self.memory.aliases_of(&b.name).next().is_none() {
            return Cow::Borrowed(&b.name_keys);
        }
        let mut keys = b.name_keys.clone();
        for alias in self.memory.aliases_of(&b.name) {
            for k in text::name_keys(alias) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        Cow::Owned(keys)
    }

    /// A bank line's best candidates, and all its candidates with exactly its amount (`None`
    /// when more than [`EXACT_LISTED`]).
    fn pair_candidates(
        &self,
        i: u32,
        names: &mut NameCache<'_>,
        hits: &[AtomicU32],
    ) -> (Vec<PairCandidate>, ExactList) {
        let Some(b) = self.bank(i) else { return (Vec::new(), Some(Box::default())) };
        let cfg = self.config;
        let (from, to) = cfg.pair_window(b.date);
        let date = |r: &Key| r.date;
        let mut ids: Vec<u32> = Vec::new();
        if let Some(list) = self.rindex.by_amount.get(&(b.currency, b.units)) {
            // A round amount can recur thousands of times in a dense period: the records dated
            // nearest the bank line are the only plausible ones.
            ids.extend(nearest(window(list, self.rkeys, date, from, to), self.rkeys, date, b.date, EXACT_SCAN));
        }
        let tol = cfg.tolerance_units(b.units);
        let near =
            |r: &Key| r.currency == b.currency && sign(r.units) == sign(b.units) && (r.units - b.units).abs() <= tol;
        // A reference ties the items strongly enough to tolerate any fee up to the maximum.
        let max_tol = units(cfg.tolerance_max).unwrap_or(0);
        let near_ref = |r: &Key| {
            r.currency == b.currency && sign(r.units) == sign(b.units) && (r.units - b.units).abs() <= max_tol
        };
        let mut seen_runs: Vec<&str> = Vec::new();
        for run in b.runs.iter().filter(|r| r.len() >= 3) {
            if seen_runs.contains(&run.as_str()) {
                continue;
            }
            seen_runs.push(run);
            if let Some(list) = self.rindex.by_ref.get(run) {
                let wide = shift(b.date, -cfg.reference_days);
                ids.extend(
                    in_window(list, self.rkeys, date, wide, to)
                        .filter(|r| self.rkey(*r).is_some_and(near_ref))
                        .take(64),
                );
            }
        }
        // Name lists by period and amount: only the periods of the date window and, in each,
        // the amounts within tolerance are read, however many records share the name word.
        for key in self.bank_name_keys(b).iter() {
            if let Some(list) = self.rindex.by_name_amount.get(key) {
                ids.extend(
                    list.within((from, to), (b.units - tol, b.units + tol), NAME_SCAN)
                        .filter(|i| self.rkey(*i).is_some_and(near))
                        .take(256),
                );
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut out: Vec<(f64, PairCandidate)> = ids
            .into_iter()
            .filter_map(|ri| {
                let r = self.rec(ri)?;
                if r.currency != b.currency || self.memory.is_rejected(&b.tx.id, &r.rec.id) {
                    return None;
                }
                let name = names.similarity(b, r);
                let exact = b.tx.amount.amount().checked_sub(r.rec.amount.amount()).is_some_and(|d| d.is_zero());
                if !exact
                    && (!self.memory.is_alias(&b.name, &r.name) && name.is_none_or(|n| n < 0.75)
                        || (r.units - b.units).abs() > tol)
                    && !references_tie(b, r)
                {
                    // A differing amount needs independent evidence, or every fee-sized
                    // difference would become a candidate. This is what the pair's features
                    // would say (exact amount, alias, name, reference at least its core), asked
                    // before the rest of them are gathered.
                    return None;
                }
                let features = pair_features_with(b, r, self.memory, name);
                let s = score_value(&features, &cfg.weights);
                Some((s, PairCandidate { rec: ri, features }))
            })
            .collect();
        out.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.rec.cmp(&b.1.rec)));
        // Keep every exact candidate's count for uniqueness, but only the best few for scoring.
        let exact_count = out.iter().filter(|c| c.1.features.exact).count();
        for c in out.iter().filter(|c| c.1.features.exact) {
            if let Some(h) = hits.get(c.1.rec as usize) {
                h.fetch_add(1, Ordering::Relaxed);
            }
        }
        let exact: Option<Box<[u32]>> =
            (exact_count <= EXACT_LISTED).then(|| out.iter().filter(|c| c.1.features.exact).map(|c| c.1.rec).collect());
        // A fresh vector of the kept few: collecting from `out` would reuse its allocation, sized
        // for every candidate found, and keep it alive until the pairs are judged.
        let mut kept: Vec<PairCandidate> = Vec::with_capacity(out.len().min(self.config.max_candidates.max(1)));
        kept.extend(out.into_iter().take(self.config.max_candidates.max(1)).map(|c| c.1));
        if exact_count > 1 {
            for c in &mut kept {
                c.features.unique = false;
            }
        } else {
            for c in &mut kept {
                c.features.unique = c.features.exact;
            }
        }
        (kept, exact)
    }

    fn judge_pairs(&self, i: u32, cands: Vec<PairCandidate>) -> Result<Vec<Edge>, RuleError> {
        let Some(b) = self.bank(i) else { return Ok(Vec::new()) };
        // Below the suggestion threshold a pair can be neither proposed nor a rival; dropping it
        // here keeps memory flat on large runs.
        let floor = self.config.suggest_threshold;
        let mut out = Vec::new();
        let mut bank_map: Option<Dynamic> = None;
        let competitors = cands.len() as i64 - 1;
        // Rules are asked only about candidates that could still win for this bank line: script
        // time goes to the few pairs where a decision can change the outcome.
        let best = cands.iter().map(|c| score_value(&c.features, &self.config.weights)).fold(f64::MIN, f64::max);
        for c in cands {
            let Some(r) = self.rec(c.rec) else { continue };
            let mut score = score_value(&c.features, &self.config.weights);
            let mut confidence = self.confidence(score);
            let mut method = if c.features.reference >= RefEvidence::Core {
                Method::Reference
            } else if c.features.alias || c.features.habit_fee {
                Method::Memory
            } else {
                Method::Score
            };
            let mut rule = None;
            let mut kept_verdict = None;
            if confidence >= self.config.rule_floor && score >= best - RULE_BAND && self.rules.judges_pairs() {
                let bm = bank_map.get_or_insert_with(|| read_only(bank_map_of(b))).clone();
                let verdict = self.rules.judge_pair(
                    &bm,
                    &read_only(record_map_of(r)),
                    &pair_dynamic(&c.features, score, competitors),
                )?;
                // The explanation's reasons are written later, for the pairs that become matches.
                for (_, delta, _) in verdict.adjustments.iter().filter(|a| a.1 != 0.0) {
                    score += delta;
                }
                match (&verdict.decision, &verdict.rule) {
                    (Decision::Veto { .. }, _) => continue,
                    (Decision::Accept { confidence: c, .. }, Some(name)) => {
                        confidence = *c;
                        method = Method::Rule;
                        rule = Some(name.clone());
                    }
                    _ => confidence = self.confidence(score),
                }
                if verdict != Verdict::default() {
                    kept_verdict = Some(Box::new(verdict));
                }
            }
            if confidence < floor {
                continue;
            }
            out.push(Edge {
                bank: Members::One(i),
                recs: Members::One(c.rec),
                confidence,
                method,
                rule,
                difference: c.features.difference,
                evidence: Evidence::Pair(Box::new((c.features, kept_verdict))),
            });
        }
        Ok(out)
    }

    /// n:1 — several records paid by one bank line; with `payouts` (the caller weighs the
    /// configuration and the line's own pairs), also a payout of unnamed records when no named
    /// group is found.
    fn bank_groups(
        &self,
        i: u32,
        open: &OpenRecords,
        names: &mut NameCache<'_>,
        payouts: bool,
    ) -> Result<Vec<Edge>, RuleError> {
        let Some(b) = self.bank(i) else { return Ok(Vec::new()) };
        let g = &self.config.groups;
        let (from, to) = (shift(b.date, -g.window_days), shift(b.date, self.config.days_before));
        let date = |r: &Key| r.date;
        let fits =
            |r: &Key| r.currency == b.currency && sign(r.units) == sign(b.units) && r.units.abs() < b.units.abs();
        let mut ids: Vec<u32> = Vec::new();
        for key in self.bank_name_keys(b).iter() {
            if let Some(list) = self.rindex.by_name.get(key) {
                // The records nearest the bank date, latest first: a batch pays recent invoices.
                ids.extend(window(list, self.rkeys, date, from, to).iter().rev().take(GROUP_SCAN));
            }
        }
        for run in b.runs.iter().filter(|r| r.len() >= 3) {
            if let Some(list) = self.rindex.by_ref.get(run) {
                ids.extend(in_window(list, self.rkeys, date, from, to).take(64));
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let cands: Vec<GroupCandidate> = ids
            .into_iter()
            .filter_map(|ri| {
                let k = self.rkey(ri).filter(|k| fits(k))?;
                if self.rejected(b, ri) {
                    return None;
                }
                let r = self.rec(ri)?;
                let quoted = r.referenced && ref_ties(b, r);
                let alias = self.memory.is_alias(&b.name, &r.name);
                let name = names.similarity(b, r).unwrap_or(0.0);
                GroupCandidate::new(ri, k.units.abs(), quoted, alias, name, (b.date - k.date).num_days())
            })
            .collect();
        let mut out = Vec::new();
        for group in self.group_search(b.units, cands) {
            if let Some(e) = self.group_edge(vec![i], group, (0.0, f64::INFINITY), names)? {
                out.push(e);
            }
        }
        if out.is_empty() && payouts {
            out = self.payout_groups(i, b, open, names)?;
        }
        Ok(out)
    }

    /// The groups among `cands` that add up to `units` (a bank line's or a record's): exact sums
    /// among the best ranked candidates; failing those, the groups the quoted ones make (see
    /// [`Ctx::quoted_groups`]).
    fn group_search(&self, units: i64, mut cands: Vec<GroupCandidate>) -> Vec<Vec<u32>> {
        let g = &self.config.groups;
        cands.sort_by(|a, b| b.rank.total_cmp(&a.rank).then(a.id.cmp(&b.id)));
        let caps = Caps { max_size: g.max_size, max_steps: g.max_steps, max_solutions: 4 };
        let best: Vec<(u32, i64)> = cands.iter().take(g.max_candidates).map(|c| (c.id, c.units)).collect();
        let groups = subset::find(units.abs(), 0, &best, caps);
        if groups.is_empty() {
            self.quoted_groups(units, &cands, caps)
        } else {
            groups
        }
    }

    /// Groups made of a search's quoted candidates, when no exact sum among the best ranked was
    /// found. A sum within tolerance is credible only when every member is quoted, so near sums
    /// are looked for among the quoted alone, where others cannot use up the search's caps. A
    /// reference list the bank's field cut short (`inv 14010 inv 14011 inv 14012 inv 1`) names
    /// all but the last invoices: the amount the quoted leave is then looked for among all the
    /// candidates, however far down the ranking, and taken when exactly one has it.
    fn quoted_groups(&self, units: i64, cands: &[GroupCandidate], caps: Caps) -> Vec<Vec<u32>> {
        let quoted: Vec<(u32, i64)> = cands.iter().filter(|c| c.quoted).map(|c| (c.id, c.units)).collect();
        if quoted.is_empty() {
            return Vec::new();
        }
        let target = units.abs();
        let groups = subset::find(target, self.config.tolerance_units(units), &quoted, caps);
        if !groups.is_empty() {
            return groups;
        }
        let left = target - quoted.iter().map(|c| c.1).sum::<i64>();
        if quoted.len() + 1 > caps.max_size || left <= 0 {
            return Vec::new();
        }
        let mut completions = cands.iter().filter(|c| !c.quoted && c.units == left);
        match (completions.next(), completions.next()) {
            // One candidate with exactly the amount left; two or more could be either.
            (Some(c), None) => {
                let mut group: Vec<u32> = quoted.iter().map(|q| q.0).chain([c.id]).collect();
                group.sort_unstable();
                vec![group]
            }
            _ => Vec::new(),
        }
    }

    /// Payouts of a bank line the assignment left unclaimed, among the records it left open.
    fn leftover_payouts(&self, i: u32, open: &OpenRecords, names: &mut NameCache<'_>) -> Result<Vec<Edge>, RuleError> {
        match self.bank(i) {
            Some(b) => self.payout_groups(i, b, open, names),
            None => Ok(Vec::new()),
        }
    }

    /// A processor payout or lockbox deposit pays invoices of many customers and names none of
    /// them. Its parts can only be found among records nothing else explains, dated shortly
    /// before it, adding up exactly. An exact sum that no other combination of the candidates
    /// reaches is strong evidence; one made only of records nothing else explains is matched.
    fn payout_groups(
        &self,
        i: u32,
        b: &BankItem<'_>,
        open: &OpenRecords,
        names: &mut NameCache<'_>,
    ) -> Result<Vec<Edge>, RuleError> {
        let g = &self.config.groups;
        let from = shift(b.date, -g.payout_days);
        let fits = |ri: u32| {
            self.rkey(ri).is_some_and(|r| {
                r.currency == b.currency && sign(r.units) == sign(b.units) && r.units.abs() < b.units.abs()
            }) && !self.rejected(b, ri)
        };
        // Nearest first, records nothing explains before those only suggested elsewhere; each
        // list is read backwards from the bank date a bounded number of steps, so dense days
        // cost no more than sparse ones.
        let mut cands: Vec<u32> = Vec::with_capacity(g.payout_candidates);
        for list in [&open.unexplained, &open.suggested] {
            let end = list.partition_point(|r| self.rkey(*r).is_some_and(|x| x.date <= b.date));
            let room = g.payout_candidates.saturating_sub(cands.len());
            cands.extend(
                list.get(..end)
                    .unwrap_or(&[])
                    .iter()
                    .rev()
                    .take(PAYOUT_SCAN)
                    .copied()
                    .take_while(|r| self.rkey(*r).is_some_and(|x| x.date >= from))
                    .filter(|r| fits(*r))
                    .take(room),
            );
        }
        // A card processor pays out one day's sales, a lockbox deposits one day's checks: each
        // day's open records are searched on their own too, a much smaller space in which an
        // exact sum is far less often a coincidence.
        let mut searches: Vec<Vec<u32>> = vec![cands];
        let day_from = shift(b.date, -PAYOUT_DAY_SPAN);
        let end = open.all.partition_point(|r| self.rkey(*r).is_some_and(|x| x.date <= b.date));
        let mut day: Option<(NaiveDate, Vec<u32>)> = None;
        for ri in open.all.get(..end).unwrap_or(&[]).iter().rev().take(PAYOUT_SCAN).copied() {
            let Some(d) = self.rkey(ri).map(|r| r.date).filter(|d| *d >= day_from) else { break };
            if day.as_ref().is_some_and(|(x, _)| *x != d) {
                searches.extend(day.take().map(|(_, v)| v));
            }
            let (_, list) = day.get_or_insert_with(|| (d, Vec::new()));
            if list.len() < PAYOUT_DAY_CANDIDATES && fits(ri) {
                list.push(ri);
            }
        }
        searches.extend(day.map(|(_, v)| v));
        let mut found: Vec<(Vec<u32>, f64)> = Vec::new();
        for (k, cands) in searches.iter().enumerate().filter(|(_, c)| c.len() >= 2) {
            // The wide search gets the larger budget; a day's records are fewer.
            let steps = if k == 0 { g.max_steps * 4 } else { g.max_steps };
            let caps = Caps { max_size: g.max_size, max_steps: steps, max_solutions: 2 };
            let items: Vec<(u32, i64)> =
                cands.iter().filter_map(|ri| self.rkey(*ri).map(|r| (*ri, r.units.abs()))).collect();
            // A unique sum is evidence only when a coincidence was unlikely: the subsets
            // searched, spread over the cents up to the target, would hit it by chance this often.
            let subsets: f64 = (2..=g.max_size.min(items.len())).map(|k| binomial(items.len(), k)).sum();
            let coincidence = open.caution * subsets / (b.units.unsigned_abs() as f64 / 100.0).max(1.0);
            if k > 0 && coincidence > PLAUSIBLE_COINCIDENCE {
                // A crowded day's sum would prove nothing; the wide search already proposes it.
                continue;
            }
            let (groups, complete) = subset::find_exact(b.units.abs(), &items, caps);
            let unique = complete && groups.len() == 1;
            for group in groups {
                let chance = if unique { coincidence } else { f64::INFINITY };
                match found.iter_mut().find(|(g, _)| *g == group) {
                    Some(f) => f.1 = f.1.min(chance),
                    None => found.push((group, chance)),
                }
            }
        }
        let mut out = Vec::new();
        for (group, chance) in found {
            // Records a certain match explains never reach this search; a part that a pair is
            // worth suggesting with (a deposit of its amount, say) may be paid by that line
            // instead, so the sum is then not the only reading of its parts and gets no bonus.
            let all_open = group.iter().all(|r| open.level(*r) == 0);
            // Deposits gather what arrived over a few days; a sum drawn from records weeks apart
            // is likelier a coincidence among many candidates.
            let dates: Vec<NaiveDate> = group.iter().filter_map(|r| self.rkey(*r)).map(|r| r.date).collect();
            let span = match (dates.iter().min(), dates.iter().max()) {
                (Some(a), Some(z)) => (*z - *a).num_days(),
                _ => i64::MAX,
            };
            let bonus = if chance <= MAX_COINCIDENCE && all_open && span <= PAYOUT_SPAN_DAYS {
                UNIQUE_SUM
            } else if chance <= PLAUSIBLE_COINCIDENCE {
                UNIQUE_PLAUSIBLE
            } else {
                0.0
            };
            if let Some(mut e) = self.group_edge(vec![i], group, (bonus, chance), names)? {
                if let Evidence::Group(s) = &mut e.evidence {
                    s.reasons.push("parts found among unexplained records (payout or deposit)".into());
                }
                out.push(e);
            }
        }
        Ok(out)
    }

    /// 1:n — one record settled by several bank lines.
    fn record_groups(&self, ri: u32, bindex: &BankIndex, names: &mut NameCache<'_>) -> Result<Vec<Edge>, RuleError> {
        let Some(r) = self.rec(ri) else { return Ok(Vec::new()) };
        let g = &self.config.groups;
        let (from, to) = (shift(r.rec.date, -self.config.days_before), shift(r.rec.date, g.window_days.max(90)));
        let fits = |b: &Key| {
            b.currency == r.currency
                && sign(r.units) == sign(b.units)
                && b.units.abs() < r.units.abs()
                && b.date >= from
                && b.date <= to
        };
        let date = |b: &Key| b.date;
        let mut ids: Vec<u32> = Vec::new();
        for list in text::name_keys(&r.name).filter_map(|k| bindex.by_name.get(&k)) {
            ids.extend(window(list, self.bkeys, date, from, to).iter().take(GROUP_SCAN));
        }
        if let Some(list) = r.ref_core.as_ref().and_then(|k| bindex.by_ref.get(k)) {
            ids.extend(window(list, self.bkeys, date, from, to).iter().take(GROUP_SCAN));
        }
        ids.sort_unstable();
        ids.dedup();
        let cands: Vec<GroupCandidate> = ids
            .into_iter()
            .filter_map(|bi| {
                let k = self.bkey(bi).filter(|k| fits(k))?;
                let b = self.bank(bi)?;
                if self.rejected(b, ri) {
                    return None;
                }
                let quoted = r.referenced && ref_ties(b, r);
                let alias = self.memory.is_alias(&b.name, &r.name);
                let name = names.similarity_of(k.name_id, r.name_id).unwrap_or(0.0);
                GroupCandidate::new(bi, k.units.abs(), quoted, alias, name, (k.date - r.rec.date).num_days())
            })
            .collect();
        let mut out = Vec::new();
        for group in self.group_search(r.units, cands) {
            if let Some(e) = self.group_edge(group, vec![ri], (0.0, f64::INFINITY), names)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// A group's edge; `unique` is the log-odds its exact sum earns by being the only one among
    /// open records (zero when it was not) and how many other combinations of the records searched
    /// would add up to it by chance (infinite when it was not unique).
    fn group_edge(
        &self,
        bank: Vec<u32>,
        recs: Vec<u32>,
        (unique, chance): (f64, f64),
        names: &mut NameCache<'_>,
    ) -> Result<Option<Edge>, RuleError> {
        let w = &self.config.weights;
        let bs: Vec<&BankItem<'_>> = bank.iter().filter_map(|i| self.bank(*i)).collect();
        let rs: Vec<&RecordItem<'_>> = recs.iter().filter_map(|i| self.rec(*i)).collect();
        if bs.len() != bank.len() || rs.len() != recs.len() {
            return Ok(None);
        }
        let bank_total = bs.iter().try_fold(Decimal::ZERO, |s, b| s.checked_add(b.tx.amount.amount()));
        let rec_total = rs.iter().try_fold(Decimal::ZERO, |s, r| s.checked_add(r.rec.amount.amount()));
        let Some(difference) = bank_total.zip(rec_total).and_then(|(b, r)| b.checked_sub(r)) else { return Ok(None) };
        let mut pairs = 0usize;
        let (mut named, mut referenced, mut max_lag, mut min_lag) = (0usize, 0usize, 0i64, i64::MAX);
        for b in &bs {
            for r in &rs {
                pairs += 1;
                let f = pair_features_with(b, r, self.memory, names.similarity(b, r));
                if f.alias || f.name.is_some_and(|n| n >= 0.75) {
                    named += 1;
                }
                if f.reference >= RefEvidence::Core {
                    referenced += 1;
                }
                max_lag = max_lag.max(f.days.abs());
                min_lag = min_lag.min(f.days.abs());
            }
        }
        let members = bs.len().max(rs.len());
        if !difference.is_zero() && referenced < members {
            // Near-sums are everywhere among many small amounts; only references make one credible.
            return Ok(None);
        }
        // Instalments run for weeks after the invoice: their first payment is what dates them.
        let lag = if bs.len() > 1 { min_lag } else { max_lag };
        let mut s = Scored { score: w.prior, ..Scored::default() };
        s.features.insert("prior", w.prior);
        if difference.is_zero() {
            s.add("amount", w.exact_amount, format!("{} items add up exactly", bs.len() + rs.len()));
        } else {
            s.add("amount", w.within_tolerance, format!("items add up within tolerance (difference {difference})"));
        }
        if named == pairs {
            s.add("name", w.name_strong, "every item names the same counterparty");
        } else if named > 0 {
            s.add("name", w.name_weak, format!("{named} of {pairs} pairs name the same counterparty"));
        }
        let share = referenced as f64 / members.max(1) as f64;
        if referenced > 0 {
            s.add("reference", w.ref_core * share.min(1.0), format!("{referenced} of {members} items referenced"));
        }
        let date = if lag <= 10 {
            w.date_close - 3.0 * w.date_decay
        } else if lag <= 20 {
            0.0
        } else {
            w.date_far
        };
        s.add("date", date, format!("{lag} business day(s) apart"));
        s.add("group_size", -0.3 * (members.saturating_sub(2)) as f64, format!("group of {members}"));
        if unique > 0.0 {
            s.add("unique_sum", unique, "the only combination of open records found that adds up exactly");
        }
        let mut confidence = sigmoid(s.score);
        let mut method = Method::SubsetSum;
        let mut rule = None;
        if self.rules.judges_groups() {
            // The arrays are shared and read-only like the maps, but hold plain maps: Rhai refuses
            // shared values nested inside data.
            let plain = |m: Map| Dynamic::from_map(m).into_read_only();
            let banks: Array = bs.iter().map(|b| plain(bank_map_of(b))).collect();
            let records: Array = rs.iter().map(|r| plain(record_map_of(r))).collect();
            let mut f = Map::new();
            f.insert("exact_amount".into(), Dynamic::from(difference.is_zero()));
            f.insert("amount_diff".into(), Dynamic::from(difference));
            f.insert(
                "reference_share".into(),
                Dynamic::from(Decimal::from_f64_retain(share).unwrap_or_default().round_dp(4)),
            );
            f.insert("named".into(), Dynamic::from(named == pairs));
            f.insert("max_days".into(), Dynamic::from(max_lag));
            f.insert("size".into(), Dynamic::from((bs.len() + rs.len()) as i64));
            f.insert("unique_sum".into(), Dynamic::from(unique > 0.0));
            f.insert("sum_chance".into(), Dynamic::from(dec(chance.min(SUM_CHANCE_SHOWN))));
            let dates = rs.iter().map(|r| r.rec.date);
            let span = dates.clone().max().zip(dates.min()).map_or(0, |(z, a)| (z - a).num_days());
            f.insert("span_days".into(), Dynamic::from(span));
            f.insert("score".into(), Dynamic::from(dec(s.score)));
            let shared = |a: Array| Dynamic::from_array(a).into_read_only().into_shared();
            let (banks, records) = (shared(banks), shared(records));
            let verdict = self.rules.judge_group(&banks, &records, &read_only(f))?;
            match apply(verdict, &mut s) {
                Applied::Veto => return Ok(None),
                Applied::Accept(c, name) => {
                    confidence = c;
                    method = Method::Rule;
                    rule = Some(name);
                }
                Applied::Score => confidence = sigmoid(s.score),
            }
        }
        if confidence < self.config.suggest_threshold {
            return Ok(None);
        }
        Ok(Some(Edge {
            bank: bank.into(),
            recs: recs.into(),
            confidence,
            method,
            rule,
            evidence: Evidence::Group(Box::new(s)),
            difference,
        }))
    }
}

impl Ctx<'_, '_> {
    /// Whether two 1:1 edges differ only by items that cannot be told apart (same amount, date and
    /// text): pairing them either way is equally right, so the tie is broken by position rather
    /// than reported as ambiguity.
    fn twins(&self, e: &Edge, x: &Edge) -> bool {
        let (Some(&eb), Some(&er), Some(&xb), Some(&xr)) =
            (e.bank.first(), e.recs.first(), x.bank.first(), x.recs.first())
        else {
            return false;
        };
        if e.is_group() || x.is_group() {
            return false;
        }
        let same_bank = |a: u32, b: u32| {
            a == b
                || matches!((self.bank(a), self.bank(b)), (Some(p), Some(q))
                    if p.units == q.units && p.date == q.date && p.text == q.text)
        };
        let same_rec = |a: u32, b: u32| {
            a == b
                || matches!((self.rec(a), self.rec(b)), (Some(p), Some(q))
                    if p.units == q.units && p.rec.date == q.rec.date && p.name == q.name
                        && p.rec.kind == q.rec.kind && p.rec.reference == q.rec.reference)
        };
        same_bank(eb, xb) && same_rec(er, xr)
    }
}

/// Records not yet explained by a certain match, by date, for payout searches.
struct OpenRecords {
    /// Records no edge explains.
    unexplained: Vec<u32>,
    /// Records only suggested elsewhere.
    suggested: Vec<u32>,
    /// Both of the above, by date.
    all: Vec<u32>,
    /// Per record: 0 unexplained, 1 suggested, 2 certain.
    levels: Vec<u8>,
    /// How many times likelier than the count of subsets says a coincidental sum is taken to be.
    caution: f64,
}

impl OpenRecords {
    fn new(by_date: &[u32], levels: Vec<u8>) -> Self {
        let level = |r: &u32| levels.get(*r as usize).copied().unwrap_or(2);
        let unexplained = by_date.iter().copied().filter(|r| level(r) == 0).collect();
        let suggested = by_date.iter().copied().filter(|r| level(r) == 1).collect();
        let all = by_date.iter().copied().filter(|r| level(r) <= 1).collect();
        OpenRecords { unexplained, suggested, all, levels, caution: 1.0 }
    }

    fn level(&self, r: u32) -> u8 {
        self.levels.get(r as usize).copied().unwrap_or(2)
    }
}

/// Log-odds added to a payout whose exact sum is the only one among otherwise unexplained
/// records: enough for a group of six, dated within days, to be matched without review.
const UNIQUE_SUM: f64 = 3.5;

/// The largest chance of a coincidental sum rules are shown (a sum that was not unique shows it).
const SUM_CHANCE_SHOWN: f64 = 1_000.0;

/// Expected chance hits of a unique payout sum at most which it is matched without review.
const MAX_COINCIDENCE: f64 = 0.001;

/// Expected chance hits of a unique payout sum at most which it is worth a suggestion.
const PLAUSIBLE_COINCIDENCE: f64 = 0.2;

/// Log-odds added to a payout whose unique sum is plausible but not certain evidence.
const UNIQUE_PLAUSIBLE: f64 = 1.0;

/// Calendar days back from a payout whose records are searched day by day: processors and
/// lockboxes pay within a few business days.
const PAYOUT_DAY_SPAN: i64 = 7;

/// Leftover records are searched once more after many other searches: a sum among them is taken
/// to be this many times likelier a coincidence.
const LEFTOVER_CAUTION: f64 = 3.0;

/// Open records of one day searched for a payout.
const PAYOUT_DAY_CANDIDATES: usize = 16;

/// `n` choose `k`, as a float (only compared against thresholds).
fn binomial(n: usize, k: usize) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
}

/// Calendar days between the oldest and newest part of a payout that is matched on its unique sum.
const PAYOUT_SPAN_DAYS: i64 = 4;

/// Open records read per list and payout search, nearest dates first.
const PAYOUT_SCAN: usize = 2_048;

/// Exact-amount records read per bank line, nearest dates first.
const EXACT_SCAN: usize = 48;

/// Records read from one amount-sorted name list per bank line.
const NAME_SCAN: usize = 512;

/// Up to `k` positions of a date-sorted `slice`, nearest to `center` first.
fn nearest<T>(
    slice: &[u32],
    items: &[Option<T>],
    date: impl Fn(&T) -> NaiveDate + Copy,
    center: NaiveDate,
    k: usize,
) -> Vec<u32> {
    let key = |i: usize| slice.get(i).and_then(|x| items.get(*x as usize)).and_then(|x| x.as_ref()).map(date);
    let mid = slice
        .partition_point(|x| items.get(*x as usize).and_then(|x| x.as_ref()).map(date).is_some_and(|d| d < center));
    let (mut lo, mut hi) = (mid, mid);
    let mut out = Vec::with_capacity(k.min(slice.len()));
    while out.len() < k && (lo > 0 || hi < slice.len()) {
        let before = lo.checked_sub(1).and_then(&key).map(|d| (center - d).num_days());
        let after = key(hi).map(|d| (d - center).num_days());
        let take_before = match (before, after) {
            (Some(b), Some(a)) => b <= a,
            (Some(_), None) => true,
            _ => false,
        };
        if take_before {
            lo -= 1;
            out.extend(slice.get(lo).copied());
        } else if hi < slice.len() {
            out.extend(slice.get(hi).copied());
            hi += 1;
        } else {
            break;
        }
    }
    out
}

/// How far (log-odds) below a bank line's best candidate rules are still asked.
const RULE_BAND: f64 = 3.0;

/// Items read from one name list when gathering group candidates.
const GROUP_SCAN: usize = 96;

/// A candidate of a group search (batch or instalments): a record or bank line, its amount in
/// units, and its rank among the others.
struct GroupCandidate {
    id: u32,
    units: i64,
    rank: f64,
    /// Whether the bank line quotes the record's reference.
    quoted: bool,
}

impl GroupCandidate {
    /// A candidate `days` from the item searched for, `None` when nothing ties it to that item:
    /// neither a quoted reference, nor a learned alias, nor a name similarity of 0.75. Quoted
    /// candidates rank first, then those the name points to clearly (similarity 0.9 or an alias:
    /// a common first name is shared by many customers), then the rest; within each, the nearest
    /// in days first.
    fn new(id: u32, units: i64, quoted: bool, alias: bool, name: f64, days: i64) -> Option<Self> {
        if !quoted && !alias && name < 0.75 {
            return None;
        }
        let tier = if quoted { 10_000.0 } else { 0.0 } + if alias || name >= 0.9 { 1_000.0 } else { 0.0 };
        Some(GroupCandidate { id, units, rank: tier - days.abs() as f64, quoted })
    }
}

/// Transfers between the tenant's own accounts: a line naming one of them as counterparty and an
/// opposite line (same amount, other sign) within a few business days.
fn transfer_edges(ctx: &Ctx<'_, '_>) -> Vec<Edge> {
    let own: Vec<String> = ctx.config.own_accounts.iter().map(|a| text::compact(a)).filter(|a| !a.is_empty()).collect();
    let marked = |b: &BankItem<'_>| {
        b.tx.counterparty_account.as_deref().map(text::compact).is_some_and(|c| !c.is_empty() && own.contains(&c))
    };
    let mut by_amount: HashMap<(Currency, i64), Vec<u32>> = HashMap::new();
    for (i, b) in ctx.banks.iter().enumerate() {
        if let Some(b) = b {
            by_amount.entry((b.currency, b.units)).or_default().push(i as u32);
        }
    }
    let w = &ctx.config.weights;
    let mut out = Vec::new();
    for (i, b) in ctx.banks.iter().enumerate() {
        let Some(b) = b.as_ref().filter(|b| marked(b)) else { continue };
        let Some(opposite) = b.units.checked_neg().and_then(|u| by_amount.get(&(b.currency, u))) else { continue };
        for &j in opposite.iter().take(64) {
            let Some(o) = ctx.bank(j).filter(|_| j as usize != i) else { continue };
            let days = crate::rules::business_days(b.date, o.date);
            if days.abs() > ctx.config.transfer_days || (marked(o) && (j as usize) < i) {
                continue;
            }
            let mut s = Scored { score: w.prior, ..Scored::default() };
            s.features.insert("prior", w.prior);
            s.add("amount", w.exact_amount, "opposite amounts");
            s.add("date", super::score::date_weight(days, w), format!("{days} business day(s) apart"));
            s.add("transfer", w.name_strong, "counterparty account is an own account");
            if marked(o) {
                s.add("transfer", w.name_strong, "both lines name an own account");
            }
            let mut pair = vec![i as u32, j];
            pair.sort_unstable();
            out.push(Edge {
                bank: pair.into(),
                recs: Members::Many(Box::default()),
                confidence: sigmoid(s.score),
                method: Method::Transfer,
                rule: None,
                evidence: Evidence::Group(Box::new(s)),
                difference: Decimal::ZERO,
            });
        }
    }
    out
}

/// Marks exact-amount candidates that are the only one on the record's side too.
fn mark_unique(per_bank: &mut [Vec<PairCandidate>], count: &[u32]) {
    for cands in per_bank.iter_mut() {
        for c in cands.iter_mut() {
            if c.features.unique && count.get(c.rec as usize).copied().unwrap_or(0) > 1 {
                c.features.unique = false;
            }
        }
    }
}

/// Plain pairs (see [`mark_run_habits`]) of a counterparty this run must show before their lag
/// counts as its habit.
const RUN_HABIT_PAYMENTS: u32 = 3;

/// The widest spread, in business days, of those pairs' lags for them to show a habit.
const RUN_HABIT_SPREAD: i64 = 4;

/// Counterparties pay on habits, and a run's plain pairs show them: where the memory knows no
/// habit of a counterparty, the lags of its pairs that nothing rivals stand in (three at least,
/// within four business days of each other), so that of two payments of one open invoice the one
/// arriving when this payer pays wins, not whichever is nearer. A pair is plain when the amounts
/// are equal, the line names the record's counterparty (or quotes its reference), and within ten
/// business days neither the line nor the record has another such pair.
fn mark_run_habits(per_bank: &mut [Vec<PairCandidate>], ctx: &Ctx<'_, '_>) {
    let plain = |c: &PairCandidate| {
        let f = &c.features;
        f.exact
            && f.days.abs() <= 10
            && (f.reference >= RefEvidence::Core || f.name.is_some_and(|n| n >= 0.9))
            && ctx.rec(c.rec).is_some_and(|r| !r.name.is_empty())
    };
    let mut claims: HashMap<u32, u32> = HashMap::new();
    for c in per_bank.iter().flatten().filter(|c| plain(c)) {
        *claims.entry(c.rec).or_default() += 1;
    }
    // Counterparty (interned record name) → (pairs, sum of lags, shortest, longest).
    let mut lags: HashMap<u32, (u32, i64, i64, i64)> = HashMap::new();
    for cands in per_bank.iter() {
        let mut mine = cands.iter().filter(|c| plain(c));
        let (Some(c), None) = (mine.next(), mine.next()) else { continue };
        let Some(r) = ctx.rec(c.rec).filter(|_| claims.get(&c.rec) == Some(&1)) else { continue };
        let days = c.features.days;
        let e = lags.entry(r.name_id).or_insert((0, 0, i64::MAX, i64::MIN));
        *e = (e.0 + 1, e.1 + days, e.2.min(days), e.3.max(days));
    }
    lags.retain(|_, (n, _, lo, hi)| *n >= RUN_HABIT_PAYMENTS && *hi - *lo <= RUN_HABIT_SPREAD);
    if lags.is_empty() {
        return;
    }
    for c in per_bank.iter_mut().flatten() {
        let Some(r) = ctx.rec(c.rec) else { continue };
        let Some((n, sum, _, _)) = lags.get(&r.name_id) else { continue };
        if ctx.memory.habit(&r.name).is_some_and(|h| h.mean_lag().is_some()) {
            continue;
        }
        let mean = *sum as f64 / f64::from(*n);
        c.features.habit_lag = (c.features.days as f64 - mean).abs() <= 2.0;
        c.features.run_habit = true;
    }
}

enum Applied {
    Veto,
    Accept(f64, String),
    Score,
}

fn apply(verdict: Verdict, scored: &mut Scored) -> Applied {
    for (rule, delta, reason) in verdict.adjustments {
        let why = if reason.is_empty() { format!("rule {rule}") } else { format!("rule {rule}: {reason}") };
        scored.add(format!("rule:{rule}"), delta, why);
    }
    match (verdict.decision, verdict.rule) {
        (Decision::Veto { .. }, _) => Applied::Veto,
        (Decision::Accept { confidence, reason }, Some(rule)) => {
            scored.reasons.push(
                if reason.is_empty() {
                    format!("accepted by rule {rule}")
                } else {
                    format!("accepted by rule {rule}: {reason}")
                }
                .into(),
            );
            Applied::Accept(confidence, rule)
        }
        _ => Applied::Score,
    }
}

/// A score or similarity as rules see it: a decimal to four places.
fn dec(x: f64) -> Decimal {
    let scaled = (x * 10_000.0).round();
    if scaled.abs() < 1e15 {
        // Exact below 2^53: one integer conversion instead of the float's full binary expansion.
        Decimal::new(scaled as i64, 4).normalize()
    } else {
        Decimal::from_f64_retain(x).map(|d| d.round_dp(4)).unwrap_or_default()
    }
}

/// Text as a rule sees it: a Rhai string made straight from the borrowed text.
fn text_value(s: &str) -> Dynamic {
    Dynamic::from(ImmutableString::from(s))
}

fn opt(s: Option<&str>) -> Dynamic {
    s.map_or(Dynamic::UNIT, text_value)
}

/// A date as a rule sees it, `YYYY-MM-DD`.
fn date_value(d: NaiveDate) -> Dynamic {
    // Written digit by digit: the general formatter costs more than the rest of a map's entry
    // and a map is built for nearly every pair the rules judge.
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        return Dynamic::from(d.to_string());
    }
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let y = y as u32;
    let bytes = [
        digit(y / 1000),
        digit(y / 100),
        digit(y / 10),
        digit(y),
        b'-',
        digit(m / 10),
        digit(m),
        b'-',
        digit(day / 10),
        digit(day),
    ];
    text_value(std::str::from_utf8(&bytes).unwrap_or_default())
}

/// A map as rules see it: read-only, so that a script that tries to change what it was shown
/// fails with the rule's name and line instead of changing what the next rule or candidate sees;
/// and shared, so that handing it to each rule clones a pointer rather than the map.
fn read_only(m: Map) -> Dynamic {
    Dynamic::from_map(m).into_read_only().into_shared()
}

/// What a rule sees of a bank line. Maps are built from their entries in key order: Rust then
/// builds the tree in one pass instead of searching it for each entry.
fn bank_map_of(b: &BankItem<'_>) -> Map {
    let t = b.tx;
    Map::from_iter([
        ("amount".into(), Dynamic::from(t.amount.amount())),
        ("bank_code".into(), opt(t.bank_code.as_deref())),
        ("check_number".into(), opt(t.check_number.as_deref())),
        ("counterparty_account".into(), opt(t.counterparty_account.as_deref())),
        ("currency".into(), text_value(t.amount.currency().code())),
        ("date".into(), date_value(t.booking_date)),
        ("description".into(), text_value(&t.description)),
        ("id".into(), text_value(&t.id)),
        ("name".into(), text_value(&b.name)),
        ("parts".into(), Dynamic::from(t.details.len() as i64)),
        ("payee".into(), opt(t.payee.as_deref())),
        ("reference".into(), opt(t.reference.as_deref())),
        ("text".into(), text_value(&b.text)),
        ("value_date".into(), t.value_date.map_or(Dynamic::UNIT, date_value)),
    ])
}

/// What a rule sees of a record.
fn record_map_of(r: &RecordItem<'_>) -> Map {
    let x = r.rec;
    Map::from_iter([
        ("amount".into(), Dynamic::from(x.amount.amount())),
        ("counterparty".into(), opt(x.counterparty.as_deref())),
        ("currency".into(), text_value(x.amount.currency().code())),
        ("date".into(), date_value(x.date)),
        ("description".into(), opt(x.description.as_deref())),
        ("due_date".into(), x.due_date.map_or(Dynamic::UNIT, date_value)),
        ("id".into(), text_value(&x.id)),
        ("kind".into(), text_value(x.kind.as_str())),
        ("name".into(), text_value(&r.name)),
        ("reference".into(), opt(x.reference.as_deref())),
    ])
}

/// The evidence a rule sees for a pair.
fn pair_dynamic(f: &PairFeatures, score: f64, competitors: i64) -> Dynamic {
    read_only(Map::from_iter([
        ("alias".into(), Dynamic::from(f.alias)),
        ("amount_diff".into(), Dynamic::from(f.difference)),
        ("calendar_days".into(), Dynamic::from(f.calendar_days)),
        ("competitors".into(), Dynamic::from(competitors.max(0))),
        ("confidence".into(), Dynamic::from(dec(sigmoid(score)))),
        ("days".into(), Dynamic::from(f.days)),
        ("exact_amount".into(), Dynamic::from(f.exact)),
        ("name".into(), Dynamic::from(dec(f.name.unwrap_or(0.0)))),
        ("name_known".into(), Dynamic::from(f.name.is_some())),
        ("reference".into(), Dynamic::from(dec(f.reference.value()))),
        ("reference_conflict".into(), Dynamic::from(f.ref_conflict)),
        ("score".into(), Dynamic::from(dec(score))),
        ("unique_amount".into(), Dynamic::from(f.unique)),
    ]))
}

/// The global assignment: strongest first, each bank line and record claimed at most once; a
/// close living competitor makes a match ambiguous (suggested, with ranked alternatives).
fn assign(mut edges: Vec<Edge>, ctx: &Ctx<'_, '_>) -> Assignment {
    let decided = decide(&mut edges, ctx);
    let (chosen, _) = split(edges, decided.outcomes, |_| false);
    Assignment { chosen, rest: Vec::new(), bank_claimed: decided.bank_claimed, rec_claimed: decided.rec_claimed }
}

/// What an item's owner slot holds while no match owns it.
const NO_OWNER: u32 = u32::MAX;

/// Makes `owner` (a position among the matches) the owner of `e`'s items.
fn set_owner(e: &Edge, owner: u32, bank_owner: &mut [u32], rec_owner: &mut [u32]) {
    for (owners, items) in [(bank_owner, e.bank.as_slice()), (rec_owner, e.recs.as_slice())] {
        for i in items {
            if let Some(o) = owners.get_mut(*i as usize) {
                *o = owner;
            }
        }
    }
}

/// Sets the flags of `items` (positions) to `value`.
fn mark(flags: &mut [bool], items: &[u32], value: bool) {
    for i in items {
        if let Some(f) = flags.get_mut(*i as usize) {
            *f = value;
        }
    }
}

/// Splits decided edges into the chosen ones with their outcomes and the others that `keep`
/// says are still needed; the rest are dropped before any match is written, so that edges and
/// matches are not all alive at once.
fn split(
    edges: Vec<Edge>,
    outcomes: Vec<(usize, Outcome)>,
    keep: impl Fn(&Edge) -> bool,
) -> (Vec<(Edge, Outcome)>, Vec<Edge>) {
    // Outcomes are walked alongside the edges in position order rather than spread over a slot
    // per edge: a million edges' slots would be one more large allocation at the run's peak.
    let mut outcomes = outcomes;
    outcomes.sort_by_key(|(k, _)| *k);
    let mut chosen = Vec::with_capacity(outcomes.len());
    let mut rest = Vec::new();
    let mut outcomes = outcomes.into_iter().peekable();
    for (k, e) in edges.into_iter().enumerate() {
        let mut decided = None;
        // The last outcome given for a position counts.
        while let Some((_, o)) = outcomes.next_if(|(j, _)| *j <= k) {
            decided = Some(o);
        }
        match decided {
            Some(o) => chosen.push((e, o)),
            None if keep(&e) => rest.push(e),
            None => {}
        }
    }
    (chosen, rest)
}

/// What one round of the assignment decided about the edges, by position in the sorted edges.
struct Decided {
    outcomes: Vec<(usize, Outcome)>,
    bank_claimed: Vec<bool>,
    rec_claimed: Vec<bool>,
}

/// One round of the assignment: sorts `edges` (suggestion threshold applied), then claims items
/// greedily by confidence, marking a claim ambiguous when a close rival remains.
fn decide(edges: &mut Vec<Edge>, ctx: &Ctx<'_, '_>) -> Decided {
    let cfg = ctx.config;
    edges.retain(|e| e.confidence >= cfg.suggest_threshold);
    edges.par_sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.is_group().cmp(&b.is_group()))
            .then(a.bank.as_slice().cmp(b.bank.as_slice()))
            .then(a.recs.as_slice().cmp(b.recs.as_slice()))
    });
    let by_bank = Incidence::build(ctx.banks.len(), edges.iter().map(|e| e.bank.as_slice()));
    let by_rec = Incidence::build(ctx.recs.len(), edges.iter().map(|e| e.recs.as_slice()));
    let mut best_bank = vec![f64::NEG_INFINITY; ctx.banks.len()];
    let mut best_rec = vec![f64::NEG_INFINITY; ctx.recs.len()];
    for e in edges.iter() {
        let l = logit(e.confidence);
        for b in &e.bank {
            if let Some(v) = best_bank.get_mut(*b as usize) {
                *v = v.max(l);
            }
        }
        for r in &e.recs {
            if let Some(v) = best_rec.get_mut(*r as usize) {
                *v = v.max(l);
            }
        }
    }
    // The edge that claimed each item.
    let mut bank_owner = vec![NO_OWNER; ctx.banks.len()];
    let mut rec_owner = vec![NO_OWNER; ctx.recs.len()];
    let taken = |e: &Edge, bo: &[u32], ro: &[u32]| {
        e.bank.iter().any(|b| bo.get(*b as usize).is_none_or(|o| *o != NO_OWNER))
            || e.recs.iter().any(|r| ro.get(*r as usize).is_none_or(|o| *o != NO_OWNER))
    };
    // Items claimed by a confident match: a rival touching them is no longer a real alternative.
    // A rival that lost only to a suggestion still is, so the uncertainty carries over.
    let mut bank_settled = vec![false; ctx.banks.len()];
    let mut rec_settled = vec![false; ctx.recs.len()];
    let claimed = |e: &Edge, bc: &[bool], rc: &[bool]| {
        e.bank.iter().any(|b| bc.get(*b as usize).copied().unwrap_or(true))
            || e.recs.iter().any(|r| rc.get(*r as usize).copied().unwrap_or(true))
    };
    // Two equal payments and two equal records, every pairing of them a candidate: the rival
    // `x` of `e` lost its other item to a suggestion `s` that `e`'s own other item could take
    // instead. Which payment settled which record is then as open as the suggestion is, however
    // much `x`'s other item preferred `s`.
    let crossed = |e: &Edge, x: &Edge, bo: &[u32], ro: &[u32], bs: &[bool], rs: &[bool]| {
        let one = |m: &Members| match m {
            Members::One(i) => Some(*i),
            _ => None,
        };
        let exact = |y: &Edge| y.difference.is_zero() && !y.is_group();
        let (Some(eb), Some(er), Some(xb), Some(xr)) = (one(&e.bank), one(&e.recs), one(&x.bank), one(&x.recs)) else {
            return false;
        };
        if !exact(e) || !exact(x) {
            return false;
        }
        let owner = |o: &[u32], i: u32| o.get(i as usize).copied().filter(|k| *k != NO_OWNER);
        let unsettled = |s: &[bool], i: u32| !s.get(i as usize).copied().unwrap_or(true);
        let s = if xb == eb && xr != er && unsettled(rs, xr) {
            owner(ro, xr)
        } else if xr == er && xb != eb && unsettled(bs, xb) {
            owner(bo, xb)
        } else {
            None
        };
        let Some(s) = s.and_then(|k| edges.get(k as usize)).filter(|s| exact(s)) else { return false };
        let (Some(sb), Some(sr)) = (one(&s.bank), one(&s.recs)) else { return false };
        // Only where the nearest dates pair them out of order: the earlier payment with the
        // later record. In order, both readings agree.
        let bank_order = (ctx.bkey(eb).map(|k| k.date), eb) < (ctx.bkey(sb).map(|k| k.date), sb);
        let rec_order = (ctx.rkey(er).map(|k| k.date), er) < (ctx.rkey(sr).map(|k| k.date), sr);
        if bank_order == rec_order {
            return false;
        }
        // The fourth pairing: `e`'s other item with the suggestion's.
        let (fb, fr) = if xb == eb { (sb, er) } else { (eb, sr) };
        by_bank.of(fb).iter().filter_map(|j| edges.get(*j as usize)).any(|f| exact(f) && one(&f.recs) == Some(fr))
    };
    let mut out = Vec::new();
    for k in 0..edges.len() {
        let Some(e) = edges.get(k) else { continue };
        if taken(e, &bank_owner, &rec_owner) {
            continue;
        }
        let mut rivals: Vec<usize> = e
            .touching(&by_bank, &by_rec)
            .filter(|j| *j != k)
            .filter(|j| edges.get(*j).is_some_and(|x| !claimed(x, &bank_settled, &rec_settled)))
            .collect();
        rivals.sort_unstable();
        rivals.dedup();
        rivals.sort_by(|a, b| {
            let ca = edges.get(*a).map_or(0.0, |x| x.confidence);
            let cb = edges.get(*b).map_or(0.0, |x| x.confidence);
            cb.total_cmp(&ca).then(a.cmp(b))
        });
        // A rival threatens only if it is close to this match and also (about) the best choice
        // for its own other items: a recurring bill's next payment prefers next month's bill.
        let best_elsewhere = |x: &Edge| {
            let other_banks = x.bank.iter().filter(|b| !e.bank.contains(b)).filter_map(|b| best_bank.get(*b as usize));
            let other_recs = x.recs.iter().filter(|r| !e.recs.contains(r)).filter_map(|r| best_rec.get(*r as usize));
            other_banks.chain(other_recs).fold(f64::NEG_INFINITY, |m, v| m.max(*v))
        };
        let own = logit(e.confidence);
        let close: Vec<f64> = rivals
            .iter()
            .filter_map(|j| edges.get(*j))
            .filter(|x| logit(x.confidence) >= own - cfg.ambiguity_margin)
            .filter(|x| {
                logit(x.confidence) >= best_elsewhere(x) - RIVAL_SLACK
                    || crossed(e, x, &bank_owner, &rec_owner, &bank_settled, &rec_settled)
            })
            .filter(|x| !ctx.twins(e, x))
            .map(|x| odds(x.confidence))
            .collect();
        let ambiguous = !close.is_empty();
        let confidence = if ambiguous { shared(e.confidence, close.iter().sum()) } else { e.confidence };
        let status = if ambiguous {
            MatchStatus::Suggested
        } else if !e.difference.is_zero() {
            if e.confidence >= cfg.discrepancy_threshold {
                MatchStatus::Discrepancy
            } else {
                MatchStatus::Suggested
            }
        } else if e.confidence >= cfg.auto_threshold {
            MatchStatus::Matched
        } else {
            MatchStatus::Suggested
        };
        let alternatives = rivals
            .iter()
            .filter_map(|j| edges.get(*j))
            .take(cfg.max_alternatives)
            .map(|x| Rival { bank: x.bank.clone(), recs: x.recs.clone(), confidence: x.confidence })
            .collect();
        let settled = status != MatchStatus::Suggested;
        set_owner(e, k as u32, &mut bank_owner, &mut rec_owner);
        mark(&mut bank_settled, &e.bank, settled);
        mark(&mut rec_settled, &e.recs, settled);
        out.push((k, Outcome { status, confidence, alternatives, ambiguous }));
    }
    let claims = |owners: Vec<u32>| owners.into_iter().map(|o| o != NO_OWNER).collect();
    Decided { outcomes: out, bank_claimed: claims(bank_owner), rec_claimed: claims(rec_owner) }
}

/// The matches of the chosen edges, each edge dropped once written. The decisions depend on
/// their order; writing each match's explanation does not.
fn build(
    chosen: Vec<(Edge, Outcome)>,
    weights: &Weights,
    bank: &[BankTransaction],
    records: &[Record],
) -> Vec<((usize, usize), Match)> {
    chosen
        .into_par_iter()
        .map(|(e, outcome)| {
            let first = |items: &[u32]| items.iter().min().map_or(usize::MAX, |i| *i as usize);
            ((first(&e.bank), first(&e.recs)), to_match(&e, outcome, weights, bank, records))
        })
        .collect()
}

/// The assignment in two rounds. What the first round settles (matched or discrepancy) is final;
/// the second decides the rest again without it: a rival that a certain match claimed later in
/// the first round's order no longer makes a pair ambiguous, and an exact amount whose other
/// candidates are all settled elsewhere is now the only one left on both sides.
fn assign_rounds(mut edges: Vec<Edge>, exact: &ExactCandidates, ctx: &Ctx<'_, '_>) -> Result<Assignment, RuleError> {
    let first = decide(&mut edges, ctx);
    let (mut bank_settled, mut rec_settled) = (vec![false; ctx.banks.len()], vec![false; ctx.recs.len()]);
    let mut settled: Vec<(usize, Outcome)> = Vec::new();
    for (k, outcome) in first.outcomes {
        if outcome.status == MatchStatus::Suggested {
            continue;
        }
        if let Some(e) = edges.get(k) {
            mark(&mut bank_settled, &e.bank, true);
            mark(&mut rec_settled, &e.recs, true);
        }
        settled.push((k, outcome));
    }
    let is = |v: &[bool], i: u32| v.get(i as usize).copied().unwrap_or(true);
    let open = |e: &Edge| !e.bank.iter().any(|b| is(&bank_settled, *b)) && !e.recs.iter().any(|r| is(&rec_settled, *r));
    let (mut chosen, mut edges) = split(edges, settled, open);
    for e in &mut edges {
        let (Some(&b), Some(&r), false) = (e.bank.first(), e.recs.first(), e.is_group()) else { continue };
        let Evidence::Pair(p) = &e.evidence else { continue };
        if !p.0.exact || p.0.unique || !exact.alone(b, r, &bank_settled, &rec_settled) {
            continue;
        }
        let mut features = p.0.clone();
        features.unique = true;
        let judged = ctx.judge_pairs(b, vec![PairCandidate { rec: r, features }])?;
        if let Some(better) = judged.into_iter().next() {
            *e = better;
        }
    }
    let second = decide(&mut edges, ctx);
    // Only an edge with an item nothing claimed can take part in a swap (see [`augment`]).
    let unclaimed = |v: &[bool], i: u32| v.get(i as usize).is_some_and(|c| !*c);
    let free = |e: &Edge| {
        e.bank.iter().any(|b| unclaimed(&second.bank_claimed, *b) && unclaimed(&bank_settled, *b))
            || e.recs.iter().any(|r| unclaimed(&second.rec_claimed, *r) && unclaimed(&rec_settled, *r))
    };
    let (more, rest) = split(edges, second.outcomes, free);
    chosen.extend(more);
    let merge = |settled: Vec<bool>, claimed: Vec<bool>| settled.iter().zip(claimed).map(|(a, b)| *a || b).collect();
    Ok(Assignment {
        chosen,
        rest,
        bank_claimed: merge(bank_settled, second.bank_claimed),
        rec_claimed: merge(rec_settled, second.rec_claimed),
    })
}

/// Pays a counterparty's equal invoices in the order they were issued. Where several lines pay
/// records of one counterparty with one and the same amount, the nearest date paired a payment
/// with the latest invoice before it, and the payment after with an older one: a customer paying
/// weekly invoices a week late had every payment shifted by one invoice. Customers settle such
/// invoices oldest first, with the lag they usually take, so the lines and records of each such
/// set of suggested pairs are paired again in date order, when every new pair is a candidate the
/// rules do not veto. The set's items stay as they were and its pairs stay suggestions, with the
/// pairing replaced as each line's first alternative. Automatic matches are left alone: paired
/// again too, they lost more right pairs than they won.
fn in_order(chosen: &mut [(Edge, Outcome)], ctx: &Ctx<'_, '_>, names: &NameTable) -> Result<(), RuleError> {
    let mut sets: std::collections::BTreeMap<(u32, Currency, i64), Vec<usize>> = std::collections::BTreeMap::new();
    for (k, (e, o)) in chosen.iter().enumerate() {
        let (Members::One(_), Members::One(r), Evidence::Pair(p)) = (&e.bank, &e.recs, &e.evidence) else { continue };
        if !p.0.exact || o.status != MatchStatus::Suggested {
            continue;
        }
        let Some(key) = ctx.rkey(*r).filter(|_| ctx.rec(*r).is_some_and(|x| !x.name.is_empty())) else { continue };
        sets.entry((key.name_id, key.currency, key.units)).or_default().push(k);
    }
    let first = |m: &Members| m.iter().next().copied().unwrap_or(u32::MAX);
    let mut cache = NameCache::new(names);
    for ks in sets.into_values().filter(|ks| ks.len() > 1) {
        let pairs: Vec<(u32, u32)> =
            ks.iter().filter_map(|k| chosen.get(*k)).map(|(e, _)| (first(&e.bank), first(&e.recs))).collect();
        let by_date = |d: Option<&Key>, i: u32| (d.map(|k| k.date), i);
        let mut banks: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let mut recs: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        banks.sort_by_key(|b| by_date(ctx.bkey(*b), *b));
        recs.sort_by_key(|r| by_date(ctx.rkey(*r), *r));
        let ordered: Vec<(u32, u32)> = banks.iter().copied().zip(recs.iter().copied()).collect();
        if ordered.iter().all(|p| pairs.contains(p)) {
            continue;
        }
        let mut edges: Vec<Edge> = Vec::with_capacity(ordered.len());
        for (b, r) in &ordered {
            let (Some(bi), Some(ri), Some(rk)) = (ctx.bank(*b), ctx.rec(*r), ctx.rkey(*r)) else { break };
            let (from, to) = ctx.config.pair_window(bi.date);
            if !(from..=to).contains(&rk.date) || ctx.rejected(bi, *r) {
                break;
            }
            let mut features = pair_features_with(bi, ri, ctx.memory, cache.similarity(bi, ri));
            features.unique = false;
            let Some(e) = ctx.judge_pairs(*b, vec![PairCandidate { rec: *r, features }])?.into_iter().next() else {
                break;
            };
            edges.push(e);
        }
        if edges.len() != ordered.len() {
            continue;
        }
        // Each line keeps its place in `chosen`; its new pair takes the old one's outcome, still
        // a suggestion, no surer than the old pair was, with the old pair as first rival.
        let slot_of = |b: u32| ks.iter().copied().find(|k| chosen.get(*k).is_some_and(|(e, _)| first(&e.bank) == b));
        let slots: Vec<Option<usize>> = ordered.iter().map(|(b, _)| slot_of(*b)).collect();
        for (e, slot) in edges.into_iter().zip(slots) {
            let Some((old, outcome)) = slot.and_then(|k| chosen.get_mut(k)) else { continue };
            if old.recs == e.recs {
                continue;
            }
            let replaced = Rival { bank: old.bank.clone(), recs: old.recs.clone(), confidence: old.confidence };
            outcome.confidence = e.confidence.min(outcome.confidence);
            // The new pair, if it was listed as a rival of the old one, is no longer its own rival.
            outcome.alternatives.retain(|a| !(a.bank == e.bank && a.recs == e.recs));
            outcome.alternatives.insert(0, replaced);
            outcome.alternatives.truncate(ctx.config.max_alternatives);
            *old = e;
        }
    }
    Ok(())
}

/// Improves the suggestions along augmenting paths of length three. Claiming greedily keeps the
/// likeliest reading of two equal deposits for one invoice even when the other deposit is then
/// left explaining nothing. Where an edge left out (`x`) is blocked by a single suggestion (`s`)
/// and another edge left out (`y`) can explain the rest of what `s` explained and more, `x` and
/// `y` replace `s` when their log-odds add up to more than its own (each suggestion's log-odds
/// are at least those of the suggestion threshold, 0.5, so this is a heavier matching of
/// suggestions). Only suggestions are ever swapped; what replaces them is suggested, with the
/// reading it replaced as its first alternative.
fn augment(chosen: &mut Vec<(Edge, Outcome)>, pool: Vec<Edge>, ctx: &Ctx<'_, '_>) {
    if pool.is_empty() {
        return;
    }
    // Owners are positions in `chosen`; what replaces a suggestion is appended, so positions stay.
    let mut bank_owner = vec![NO_OWNER; ctx.banks.len()];
    let mut rec_owner = vec![NO_OWNER; ctx.recs.len()];
    for (n, (e, _)) in (0u32..).zip(chosen.iter()) {
        set_owner(e, n, &mut bank_owner, &mut rec_owner);
    }
    // Suggestions that may be swapped: not those that replaced one already.
    let mut swappable: Vec<bool> = chosen.iter().map(|(_, o)| o.status == MatchStatus::Suggested).collect();
    let by_bank = Incidence::build(ctx.banks.len(), pool.iter().map(|e| e.bank.as_slice()));
    let by_rec = Incidence::build(ctx.recs.len(), pool.iter().map(|e| e.recs.as_slice()));
    let mut used = vec![false; pool.len()];
    // The one match owning `e`'s claimed items, and whether `e` has a free item; `None` when
    // two own them.
    let blocker = |e: &Edge, bo: &[u32], ro: &[u32]| -> Option<(u32, bool)> {
        let owners = e
            .bank
            .iter()
            .map(|b| bo.get(*b as usize).copied().unwrap_or(NO_OWNER))
            .chain(e.recs.iter().map(|r| ro.get(*r as usize).copied().unwrap_or(NO_OWNER)));
        let (mut one, mut free) = (NO_OWNER, false);
        for o in owners {
            if o == NO_OWNER {
                free = true;
            } else if one == NO_OWNER {
                one = o;
            } else if one != o {
                return None;
            }
        }
        Some((one, free))
    };
    let mut swaps: Vec<(u32, usize, usize)> = Vec::new();
    for k in 0..pool.len() {
        let Some(x) = pool.get(k) else { continue };
        let Some((s, true)) = blocker(x, &bank_owner, &rec_owner) else { continue };
        if !swappable.get(s as usize).copied().unwrap_or(false) {
            continue;
        }
        let Some((se, _)) = chosen.get(s as usize) else { continue };
        let need = logit(se.confidence) - logit(x.confidence);
        // The likeliest edge through the blocker's items that takes none of `x`'s, has a free
        // item of its own, and with `x` covers everything the blocker explained.
        let mut best: Option<usize> = None;
        for j in se.touching(&by_bank, &by_rec) {
            if j == k || best.is_some_and(|b| b <= j) || used.get(j).copied().unwrap_or(true) {
                continue;
            }
            let Some(y) = pool.get(j) else { continue };
            if logit(y.confidence) <= need {
                continue;
            }
            let overlaps = y.bank.iter().any(|b| x.bank.contains(b)) || y.recs.iter().any(|r| x.recs.contains(r));
            if overlaps || blocker(y, &bank_owner, &rec_owner) != Some((s, true)) {
                continue;
            }
            let covers = se.bank.iter().all(|b| x.bank.contains(b) || y.bank.contains(b))
                && se.recs.iter().all(|r| x.recs.contains(r) || y.recs.contains(r));
            if covers {
                best = Some(j);
            }
        }
        let Some((j, y)) = best.and_then(|j| Some((j, pool.get(j)?))) else { continue };
        let next = (chosen.len() + 2 * swaps.len()) as u32;
        set_owner(x, next, &mut bank_owner, &mut rec_owner);
        set_owner(y, next + 1, &mut bank_owner, &mut rec_owner);
        swappable.extend([false, false]);
        if let Some(f) = swappable.get_mut(s as usize) {
            *f = false;
        }
        for u in [k, j] {
            if let Some(f) = used.get_mut(u) {
                *f = true;
            }
        }
        swaps.push((s, k, j));
    }
    if swaps.is_empty() {
        return;
    }
    let mut added: Vec<(Edge, Outcome)> = Vec::with_capacity(2 * swaps.len());
    for (s, k, j) in &swaps {
        let Some((se, _)) = chosen.get(*s as usize) else { continue };
        for (pos, other) in [(*k, *j), (*j, *k)] {
            let Some(e) = pool.get(pos) else { continue };
            let mut rivals: Vec<usize> = e.touching(&by_bank, &by_rec).filter(|x| *x != pos && *x != other).collect();
            rivals.sort_unstable();
            rivals.dedup();
            let alternatives = std::iter::once(se)
                .chain(rivals.iter().filter_map(|x| pool.get(*x)))
                .take(ctx.config.max_alternatives)
                .map(|x| Rival { bank: x.bank.clone(), recs: x.recs.clone(), confidence: x.confidence })
                .collect();
            let confidence = shared(e.confidence, odds(se.confidence));
            let outcome = Outcome { status: MatchStatus::Suggested, confidence, alternatives, ambiguous: true };
            added.push((e.clone(), outcome));
        }
    }
    let replaced: std::collections::HashSet<u32> = swaps.iter().map(|(s, _, _)| *s).collect();
    let mut n = 0u32;
    chosen.retain(|_| {
        n += 1;
        !replaced.contains(&(n - 1))
    });
    chosen.extend(added);
}

/// Every bank line's candidates with exactly its amount, and the inverse, so that the second
/// round can tell when all but one of them were settled elsewhere.
struct ExactCandidates {
    /// Per bank line, its exact-amount records (`None` when there were too many to list).
    of_bank: Vec<ExactList>,
    /// Per record, the bank lines listing it.
    of_rec: Incidence,
    /// Per record, the bank lines having it as an exact candidate, listed or not.
    hits: Vec<u32>,
}

/// A bank line's exact-amount records; `None` when there were more than [`EXACT_LISTED`].
type ExactList = Option<Box<[u32]>>;

/// Exact-amount candidates listed per bank line; more make the amount common, never unique.
const EXACT_LISTED: usize = 8;

impl ExactCandidates {
    fn new(of_bank: Vec<ExactList>, hits: Vec<u32>) -> Self {
        let of_rec = Incidence::build(hits.len(), of_bank.iter().map(|l| l.as_deref().unwrap_or(&[])));
        ExactCandidates { of_bank, of_rec, hits }
    }

    /// Whether `r` is bank line `b`'s only exact candidate not settled, and `b` the only bank line
    /// not settled that lists `r`.
    fn alone(&self, b: u32, r: u32, bank_settled: &[bool], rec_settled: &[bool]) -> bool {
        let Some(Some(list)) = self.of_bank.get(b as usize) else { return false };
        let settled = |v: &[bool], i: u32| v.get(i as usize).copied().unwrap_or(false);
        // A bank line with too many exact candidates to list them is not in `of_rec`: a record
        // it may be paid by is never alone.
        let listed = self.of_rec.of(r);
        list.contains(&r)
            && self.hits.get(r as usize).is_some_and(|h| *h as usize == listed.len())
            && list.iter().all(|x| *x == r || settled(rec_settled, *x))
            && listed.iter().all(|x| *x == b || settled(bank_settled, *x))
    }
}

/// What [`assign`] decided: the chosen edges with their outcomes (written as matches by [`build`]
/// at the end of the run), and which bank lines and records they claim.
struct Assignment {
    chosen: Vec<(Edge, Outcome)>,
    /// The edges of the last round left unchosen, likeliest first.
    rest: Vec<Edge>,
    bank_claimed: Vec<bool>,
    rec_claimed: Vec<bool>,
}

/// Which edges touch each item, as one flat list with offsets: millions of items need no map
/// and no list of their own. Positions are 32-bit: a run's edges number in the millions, far below
/// 2^32, and half the width halves these lists at the run's peak.
struct Incidence {
    starts: Vec<u32>,
    edges: Vec<u32>,
}

impl Incidence {
    fn build<'e>(items: usize, members: impl Iterator<Item = &'e [u32]> + Clone) -> Self {
        let mut starts = vec![0u32; items + 1];
        for m in members.clone() {
            for i in m {
                if let Some(c) = starts.get_mut(*i as usize + 1) {
                    *c += 1;
                }
            }
        }
        for k in 1..starts.len() {
            let before = starts.get(k - 1).copied().unwrap_or(0);
            if let Some(c) = starts.get_mut(k) {
                *c += before;
            }
        }
        let mut fill = starts.clone();
        let mut edges = vec![0u32; starts.last().copied().unwrap_or(0) as usize];
        for (k, m) in (0u32..).zip(members) {
            for i in m {
                if let Some(pos) = fill.get_mut(*i as usize) {
                    if let Some(slot) = edges.get_mut(*pos as usize) {
                        *slot = k;
                    }
                    *pos += 1;
                }
            }
        }
        Incidence { starts, edges }
    }

    /// The edges touching item `i`, in edge order.
    fn of(&self, i: u32) -> &[u32] {
        let i = i as usize;
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(a), Some(z)) => self.edges.get(*a as usize..*z as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// How much worse than its other items' best option a rival may be and still count.
const RIVAL_SLACK: f64 = 0.25;

/// A confidence shared with rivals whose odds add up to `rival_odds`: competing explanations
/// share the probability, so with one equally likely rival each is about a coin toss.
fn shared(confidence: f64, rival_odds: f64) -> f64 {
    let own = odds(confidence);
    own / (1.0 + own + rival_odds)
}

/// Log-odds of a probability.
fn logit(p: f64) -> f64 {
    odds(p).ln()
}

/// Probability to odds, bounded so that certainty stays finite.
fn odds(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    p / (1.0 - p)
}

fn round4(x: f64) -> f64 {
    (x.clamp(0.0, 1.0) * 10_000.0).round() / 10_000.0
}

fn ids<'a>(idx: &[u32], get: impl Fn(usize) -> Option<&'a str>) -> Vec<String> {
    let mut v: Vec<u32> = idx.to_vec();
    v.sort_unstable();
    v.into_iter().filter_map(|i| get(i as usize)).map(str::to_string).collect()
}

/// How the assignment judged an edge.
struct Outcome {
    status: MatchStatus,
    confidence: f64,
    alternatives: Vec<Rival>,
    ambiguous: bool,
}

/// A competing candidate that lost, by the positions of its items: ids are copied only when the
/// match is written, after the assignment's own lists are gone.
struct Rival {
    bank: Members,
    recs: Members,
    confidence: f64,
}

fn to_match(e: &Edge, outcome: Outcome, weights: &Weights, bank: &[BankTransaction], records: &[Record]) -> Match {
    let Outcome { status, confidence, alternatives, ambiguous } = outcome;
    let bank_ids = ids(&e.bank, |i| bank.get(i).map(|t| t.id.as_ref()));
    let record_ids = ids(&e.recs, |i| records.get(i).map(|r| r.id.as_str()));
    let mut hash = Sha256::new();
    for id in &bank_ids {
        hash.update(b"b:");
        hash.update(id.as_bytes());
        hash.update([0]);
    }
    for id in &record_ids {
        hash.update(b"r:");
        hash.update(id.as_bytes());
        hash.update([0]);
    }
    let id: String = hash.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    let scored = e.scored(weights);
    let mut reasons = scored.reasons.clone();
    if ambiguous {
        reasons.push("ambiguous: a competing candidate is nearly as likely".into());
    }
    let currency = bank.get(e.bank.first().copied().unwrap_or(0) as usize).map(|t| t.amount.currency());
    let proposed_adjustment = (!e.difference.is_zero()).then(|| {
        let cur = currency.map(|c| c.code().to_string()).unwrap_or_default();
        let amount = e.difference.abs();
        let what =
            if e.difference.is_sign_negative() { "bank fee or short payment" } else { "overpayment or bank credit" };
        format!("book {amount} {cur} as {what}")
    });
    let features = scored.features.map_nonzero(round4_signed);
    let alternatives = alternatives
        .into_iter()
        .map(|x| Alternative {
            bank_ids: ids(&x.bank, |i| bank.get(i).map(|t| t.id.as_ref())),
            record_ids: ids(&x.recs, |i| records.get(i).map(|r| r.id.as_str())),
            confidence: round4(x.confidence),
        })
        .collect();
    Match {
        id: format!("m-{id}"),
        status,
        bank_ids,
        record_ids,
        confidence: round4(confidence),
        method: e.method,
        rule: e.rule.clone(),
        difference: e.difference,
        explanation: Explanation {
            features,
            score: round4_signed(scored.score),
            reasons,
            alternatives,
            proposed_adjustment,
        },
    }
}

fn round4_signed(x: f64) -> f64 {
    if x.is_finite() {
        (x * 10_000.0).round() / 10_000.0
    } else {
        0.0
    }
}

/// The run's output, matches ordered by their first bank line and record; `matches` carry that
/// position as their key (the edges' own positions, so no id is looked up).
fn result(
    mut matches: Vec<((usize, usize), Match)>,
    bank: &[BankTransaction],
    records: &[Record],
    bank_used: &[bool],
    rec_used: &[bool],
) -> ReconcileResult {
    // Match ids are unique (derived from the ids each match groups), so the order is total and
    // an unstable sort, which needs no second buffer, is deterministic.
    matches.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let matches: Vec<Match> = matches.into_iter().map(|(_, m)| m).collect();
    let mut summary = Summary { bank_transactions: bank.len(), records: records.len(), ..Summary::default() };
    let mut auto_bank = 0usize;
    for m in &matches {
        match m.status {
            MatchStatus::Matched => {
                summary.matched += 1;
                auto_bank += m.bank_ids.len();
            }
            MatchStatus::Suggested => summary.suggested += 1,
            MatchStatus::Discrepancy => {
                summary.discrepancies += 1;
                auto_bank += m.bank_ids.len();
            }
        }
    }
    let open = |used: &[bool], i: usize| !used.get(i).copied().unwrap_or(false);
    let unmatched_bank: Vec<String> =
        bank.iter().enumerate().filter(|(i, _)| open(bank_used, *i)).map(|(_, t)| t.id.to_string()).collect();
    let unmatched_records: Vec<String> =
        records.iter().enumerate().filter(|(i, _)| open(rec_used, *i)).map(|(_, r)| r.id.clone()).collect();
    summary.unmatched_bank = unmatched_bank.len();
    summary.unmatched_records = unmatched_records.len();
    summary.auto_match_rate = if bank.is_empty() { 0.0 } else { round4(auto_bank as f64 / bank.len() as f64) };
    ReconcileResult { summary, matches, unmatched_bank, unmatched_records }
}

#[cfg(test)]
mod tests;
