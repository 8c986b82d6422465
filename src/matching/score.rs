//! Evidence for one candidate and its weighted score: log-odds contributions in the manner of
//! Fellegi–Sunter, turned into a confidence by the logistic function.

use std::borrow::Cow;
use std::hash::Hasher;
use std::sync::Mutex;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::memory::Memory;
use super::model::Features;
use super::prepare::{BankItem, RecordItem};
use super::text::{self, NameForm, RefEvidence};
use crate::rules::{business_days, days_between};

/// Log-odds weights of each piece of evidence. The defaults are set so that an exact amount
/// within a few days plus one independent piece of evidence (name, reference, uniqueness) reaches
/// the auto threshold, and an amount alone never does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Starting log-odds of any candidate (negative: most candidates are wrong).
    pub prior: f64,
    /// Amounts equal.
    pub exact_amount: f64,
    /// Amounts differ within tolerance.
    pub within_tolerance: f64,
    /// Paid the same business day.
    pub date_close: f64,
    /// Lost per business day of lag, up to ten days (so that the nearer of two otherwise equal
    /// candidates wins).
    pub date_decay: f64,
    /// Paid within twenty business days.
    pub date_late: f64,
    /// Further apart.
    pub date_far: f64,
    /// The whole reference appears.
    pub ref_full: f64,
    /// The reference's number appears.
    pub ref_core: f64,
    /// A three-digit number matches.
    pub ref_short: f64,
    /// A truncated reference appears.
    pub ref_truncated: f64,
    /// The line quotes another document of the reference's kind instead.
    #[serde(default = "default_ref_conflict")]
    pub ref_conflict: f64,
    /// Names (nearly) equal.
    pub name_strong: f64,
    /// Names alike.
    pub name_medium: f64,
    /// Names somewhat alike.
    pub name_weak: f64,
    /// Names clearly different.
    pub name_conflict: f64,
    /// A learned alias ties the names.
    pub alias: f64,
    /// The only candidate with this exact amount on both sides.
    pub unique_amount: f64,
    /// The lag fits the counterparty's learned habit.
    pub habit_lag: f64,
    /// The difference is the counterparty's usual fee.
    pub habit_fee: f64,
    /// The names were rejected together before.
    pub rejected_names: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            prior: -4.0,
            exact_amount: 4.0,
            within_tolerance: 1.0,
            date_close: 1.5,
            date_decay: 0.15,
            date_late: -0.5,
            date_far: -1.5,
            ref_full: 5.0,
            ref_core: 3.5,
            ref_short: 1.5,
            ref_truncated: 2.0,
            ref_conflict: default_ref_conflict(),
            name_strong: 2.5,
            name_medium: 1.5,
            name_weak: 0.5,
            name_conflict: -1.5,
            alias: 2.5,
            unique_amount: 3.0,
            habit_lag: 0.5,
            habit_fee: 1.5,
            rejected_names: -3.0,
        }
    }
}

fn default_ref_conflict() -> f64 {
    -3.0
}

/// The logistic function: log-odds to probability.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// What ties (or separates) one bank line and one record.
#[derive(Debug, Clone, PartialEq)]
pub struct PairFeatures {
    /// Amounts equal.
    pub exact: bool,
    /// Bank amount minus record amount.
    pub difference: Decimal,
    /// Business days from the record's date (or due date, whichever is closer) to the bank date.
    pub days: i64,
    /// Calendar days for the same.
    pub calendar_days: i64,
    /// Reference evidence.
    pub reference: RefEvidence,
    /// No reference evidence, and the line quotes another document of the reference's kind
    /// ([`text::quotes_another`]).
    pub ref_conflict: bool,
    /// Name similarity, when both sides name a counterparty.
    pub name: Option<f64>,
    /// A learned alias ties the names.
    pub alias: bool,
    /// The only exact-amount candidate on both sides (filled in after all candidates are known).
    pub unique: bool,
    /// The amount is a round number (a multiple of 50), which recurs by chance.
    pub round: bool,
    /// The lag fits the counterparty's habit: the learned one, or (with `run_habit`) the one this
    /// run's own plain pairs show.
    pub habit_lag: bool,
    /// The habit `habit_lag` speaks of comes from this run's pairs, not from the memory.
    pub run_habit: bool,
    /// The difference is the learned usual fee.
    pub habit_fee: bool,
    /// The names were rejected together before.
    pub rejected_names: bool,
}

/// The names of one run with the similarities computed so far, shared by all threads: a distinct
/// pair of names is compared about once per run however many bank lines and records carry it.
#[derive(Debug)]
pub struct NameTable {
    forms: Vec<NameForm>,
    shards: Vec<Mutex<Slots>>,
}

/// A direct-mapped cache of similarities by name pair: one slot per hash, a newer pair replaces
/// an older one. No growth, no rehashing and one probe, so a lookup costs about one memory read.
#[derive(Debug)]
struct Slots {
    slots: Vec<(u64, f64)>,
}

/// A slot no pair has filled (name ids are far below `u32::MAX`, so no real key is all ones).
const EMPTY: u64 = u64::MAX;

impl Slots {
    fn new(bits: u32) -> Self {
        Slots { slots: vec![(EMPTY, 0.0); 1 << bits] }
    }

    /// `Some(similarity)` when `key` is cached (the similarity itself `None` for an empty name,
    /// stored as NaN).
    fn get(&self, key: u64, hash: u64) -> Option<Option<f64>> {
        let slot = self.slots.get(hash as usize & (self.slots.len() - 1))?;
        (slot.0 == key).then_some((!slot.1.is_nan()).then_some(slot.1))
    }

    fn put(&mut self, key: u64, hash: u64, value: Option<f64>) {
        let mask = self.slots.len() - 1;
        if let Some(slot) = self.slots.get_mut(hash as usize & mask) {
            *slot = (key, value.unwrap_or(f64::NAN));
        }
    }
}

/// Shards of the shared cache (a power of two), so that threads rarely wait on one another.
const NAME_SHARDS: usize = 64;

/// Slots per shard, as a power of two: 64 × 16,384 pairs, 16 MiB in all.
const NAME_SHARD_BITS: u32 = 14;

/// Slots of a thread's own cache, as a power of two: 8,192 pairs, 128 KiB (one is made per
/// parallel job).
const NAME_CACHE_BITS: u32 = 13;

/// Spreads a name-pair key over the slots.
fn spread(key: u64) -> u64 {
    let mut h = IdHasher::default();
    h.write_u64(key);
    h.finish()
}

impl NameTable {
    /// The table of the names interned for one run (indexed by `name_id`).
    pub fn new(forms: Vec<NameForm>) -> Self {
        NameTable { forms, shards: (0..NAME_SHARDS).map(|_| Mutex::new(Slots::new(NAME_SHARD_BITS))).collect() }
    }

    /// The similarity of two interned names (`None` also for an id that was not interned).
    fn similarity(&self, key: u64, hash: u64, bank_name: u32, record_name: u32) -> Option<f64> {
        // The shard comes from the hash's top bits, the slot within it from its low bits.
        let shard = self.shards.get((hash >> 58) as usize % NAME_SHARDS);
        if let Some(s) = shard.and_then(|m| m.lock().ok()?.get(key, hash)) {
            return s;
        }
        let s = match (self.forms.get(bank_name as usize), self.forms.get(record_name as usize)) {
            (Some(x), Some(y)) => text::similar_forms(x, y),
            _ => None,
        };
        if let Some(mut m) = shard.and_then(|m| m.lock().ok()) {
            m.put(key, hash, s);
        }
        s
    }
}

/// A thread's view of the [`NameTable`]: recent similarities without taking a lock.
#[derive(Debug)]
pub struct NameCache<'n> {
    table: &'n NameTable,
    seen: Slots,
}

impl<'n> NameCache<'n> {
    /// A cache in front of `table`.
    pub fn new(table: &'n NameTable) -> Self {
        NameCache { table, seen: Slots::new(NAME_CACHE_BITS) }
    }

    /// The similarity of the bank line's name to the record's.
    pub fn similarity(&mut self, b: &BankItem<'_>, r: &RecordItem<'_>) -> Option<f64> {
        self.similarity_of(b.name_id, r.name_id)
    }

    /// The similarity of a bank line's interned name to a record's, by their ids: what a
    /// candidate filter asks before it reads either item.
    pub fn similarity_of(&mut self, bank_name: u32, record_name: u32) -> Option<f64> {
        let key = (u64::from(bank_name) << 32) | u64::from(record_name);
        let hash = spread(key);
        if let Some(s) = self.seen.get(key, hash) {
            return s;
        }
        let s = self.table.similarity(key, hash, bank_name, record_name);
        self.seen.put(key, hash, s);
        s
    }
}

/// A hasher for keys that are already well-spread integers (interned ids): one multiplication
/// instead of SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

/// Gathers the evidence for a pair.
pub fn pair_features(b: &BankItem<'_>, r: &RecordItem<'_>, memory: &Memory) -> PairFeatures {
    pair_features_with(b, r, memory, text::similar_normalised(&b.name, &r.name))
}

/// [`pair_features`] with the name similarity already known.
pub fn pair_features_with(b: &BankItem<'_>, r: &RecordItem<'_>, memory: &Memory, name: Option<f64>) -> PairFeatures {
    let difference = b.tx.amount.amount().checked_sub(r.rec.amount.amount()).unwrap_or(Decimal::MAX);
    let mut days = business_days(r.rec.date, b.date);
    let mut calendar_days = days_between(r.rec.date, b.date);
    if let Some(due) = r.rec.due_date {
        let d = business_days(due, b.date);
        if d.abs() < days.abs() {
            days = d;
            calendar_days = days_between(due, b.date);
        }
    }
    let reference = match r.rec.reference {
        Some(_) => text::ref_evidence_counted(
            &r.ref_compact,
            r.ref_chars,
            r.ref_bits,
            r.ref_digits.as_deref(),
            &b.compact,
            b.compact_bits,
            &b.runs,
        ),
        None => RefEvidence::None,
    };
    let check = match (b.check_core.as_deref(), r.ref_digits.as_deref()) {
        (Some(c), Some(d)) if c == d => RefEvidence::Full,
        _ => RefEvidence::None,
    };
    let alias = memory.is_alias(&b.name, &r.name);
    let habit = memory.habit(&r.name);
    let reference = reference.max(check);
    PairFeatures {
        exact: difference.is_zero(),
        difference,
        days,
        calendar_days,
        reference,
        ref_conflict: reference == RefEvidence::None && text::quotes_another(&r.ref_compact, &b.compact),
        name,
        alias,
        unique: false,
        round: is_round(b.units) || is_round(r.units),
        habit_lag: habit.and_then(|h| h.mean_lag()).is_some_and(|m| (days as f64 - m).abs() <= 2.0),
        run_habit: false,
        habit_fee: !difference.is_zero() && habit.is_some_and(|h| h.is_usual_difference(difference)),
        rejected_names: !alias && memory.names_rejected(&b.name, &r.name),
    }
}

/// Whether an amount (in ten-thousandths) is one people pick: a multiple of 50 with at most two
/// significant digits (50, 150, 2,500, 20,000), which recurs by chance far more often than 8,850.
fn is_round(units: i64) -> bool {
    if units == 0 || units % 500_000 != 0 {
        return false;
    }
    let mut n = units.unsigned_abs() / 10_000;
    while n % 10 == 0 {
        n /= 10;
    }
    n < 100
}

/// Whether the pair's reference evidence is at least [`RefEvidence::Core`], as
/// [`pair_features`] would find it, without looking for truncations: what decides whether a pair
/// whose amounts differ is a candidate at all.
pub fn references_tie(b: &BankItem<'_>, r: &RecordItem<'_>) -> bool {
    (r.referenced && ref_ties(b, r))
        || matches!((b.check_core.as_deref(), r.ref_digits.as_deref()), (Some(c), Some(d)) if c == d)
}

/// [`text::ref_ties`] of the pair, from their prepared texts.
pub fn ref_ties(b: &BankItem<'_>, r: &RecordItem<'_>) -> bool {
    text::ref_ties_prepared(&r.ref_compact, r.ref_bits, r.ref_digits.as_deref(), &b.compact, b.compact_bits, &b.runs)
}

/// A score with its breakdown by feature and the reasons in words.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scored {
    /// Sum of log-odds.
    pub score: f64,
    /// Feature → contribution.
    pub features: Features,
    /// Reasons, in order.
    pub reasons: Vec<Cow<'static, str>>,
}

impl Scored {
    /// Adds a contribution.
    pub fn add(&mut self, feature: impl Into<Cow<'static, str>>, value: f64, reason: impl Into<Cow<'static, str>>) {
        if value != 0.0 {
            self.score += value;
            self.features.add(feature, value);
            self.reasons.push(reason.into());
        }
    }
}

/// The date contribution for a lag in business days.
pub fn date_weight(days: i64, w: &Weights) -> f64 {
    // Money rarely arrives before the document it settles: an early date counts double.
    let lag = if days < 0 { days.unsigned_abs().saturating_mul(2) } else { days.unsigned_abs() };
    match lag {
        lag @ 0..=10 => w.date_close - w.date_decay * lag as f64,
        11..=20 => w.date_late,
        _ => w.date_far,
    }
}

/// Scores a pair's evidence, with its breakdown and reasons: for the explanations of the matches
/// that are output.
pub fn score_pair(f: &PairFeatures, w: &Weights) -> Scored {
    let mut s = Scored { score: w.prior, ..Scored::default() };
    s.features.insert("prior", w.prior);
    contributions(f, w, |feature, value, reason| s.add(feature, value, reason()));
    s
}

/// [`score_pair`]'s score alone, without building its breakdown: what candidate ranking needs,
/// free of allocations.
pub fn score_value(f: &PairFeatures, w: &Weights) -> f64 {
    let mut score = w.prior;
    contributions(f, w, |_, value, _| score += value);
    score
}

/// Hands each contribution of a pair's evidence to `add` as (feature, log-odds, reason); the
/// reason is built only when asked for.
fn contributions(
    f: &PairFeatures,
    w: &Weights,
    mut add: impl FnMut(&'static str, f64, &dyn Fn() -> Cow<'static, str>),
) {
    if f.exact {
        add("amount", w.exact_amount, &|| "amounts equal".into());
    } else {
        add("amount", w.within_tolerance, &|| format!("amounts differ by {} (within tolerance)", f.difference).into());
    }
    add("date", date_weight(f.days, w), &|| format!("{} business day(s) apart", f.days).into());
    let reference = match f.reference {
        RefEvidence::Full => w.ref_full,
        RefEvidence::Core => w.ref_core,
        RefEvidence::ShortCore => w.ref_short,
        RefEvidence::Truncated => w.ref_truncated,
        RefEvidence::None => 0.0,
    };
    add("reference", reference, &|| reference_reason(f.reference).into());
    if f.ref_conflict {
        add("reference", w.ref_conflict, &|| "the line quotes another document of the reference's kind".into());
    }
    let name = match f.name {
        Some(n) if n >= 0.9 => w.name_strong,
        Some(n) if n >= 0.75 => w.name_medium,
        Some(n) if n >= 0.5 => w.name_weak,
        Some(n) if n < 0.3 => w.name_conflict,
        _ => 0.0,
    };
    if f.alias && w.alias > name {
        add("memory", w.alias, &|| "learned alias of the counterparty".into());
    } else if let Some(n) = f.name {
        add("name", name, &|| format!("name similarity {n:.2}").into());
    }
    if f.unique {
        // A round amount recurs by chance far more often than an odd one.
        let (weight, why) = if f.round {
            (w.unique_amount / 2.0, "only candidate with this round amount on both sides")
        } else {
            (w.unique_amount, "only candidate with this odd amount on both sides")
        };
        add("unique_amount", weight, &|| why.into());
    }
    if f.habit_lag && f.run_habit {
        add("habit", w.habit_lag, &|| "lag fits the counterparty's habit in this statement".into());
    } else if f.habit_lag {
        add("memory", w.habit_lag, &|| "lag fits the counterparty's habit".into());
    }
    if f.habit_fee {
        add("memory", w.habit_fee, &|| "difference is the counterparty's usual fee".into());
    }
    if f.rejected_names {
        add("memory", w.rejected_names, &|| "these names were rejected together before".into());
    }
}

/// The reason a reference tie gives, by its strength.
fn reference_reason(r: RefEvidence) -> &'static str {
    match r {
        RefEvidence::Full => "reference evidence: full",
        RefEvidence::Core => "reference evidence: core",
        RefEvidence::ShortCore => "reference evidence: shortcore",
        RefEvidence::Truncated => "reference evidence: truncated",
        RefEvidence::None => "reference evidence: none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_amounts_are_the_ones_people_pick() {
        // Ten-thousandths: 50.00 is 500,000.
        for amount in [50, 150, 250, 1_500, 2_500, 5_000, 20_000, 95_000, -5_000] {
            assert!(is_round(amount * 10_000), "{amount}");
        }
        for amount in [0, 29, 125, 8_850, 29_200, 126_600] {
            assert!(!is_round(amount * 10_000), "{amount}");
        }
        assert!(!is_round(50 * 10_000 + 1), "a fraction of a cent more is not round");
    }
}
