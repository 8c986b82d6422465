//! Both sides reduced once to what matching compares (integer amounts, dates, normalised names,
//! reference tokens) and indexed by amount, reference and name, so candidates come from lookups
//! rather than the cross product.

use chrono::{Datelike, NaiveDate};
use hashbrown::HashMap;
use rayon::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::text::{self, NameForm};
use crate::domain::{BankTransaction, Currency, Record};

/// Largest amount matched, in ten-thousandths (10^13 in money): far beyond any real payment, and
/// small enough that sums and differences of such amounts never overflow.
const MAX_UNITS: i64 = 100_000_000_000_000_000;

/// Amounts as integers in ten-thousandths, so indexing and subset sums use exact integer
/// arithmetic; `None` for amounts too large to represent (they are never matched).
pub fn units(amount: Decimal) -> Option<i64> {
    amount
        .checked_mul(Decimal::from(10_000))
        .map(|d| d.round())
        .and_then(|d| d.to_i64())
        .filter(|u| u.checked_abs().is_some_and(|a| a <= MAX_UNITS))
}

/// A bank line as matching sees it.
#[derive(Debug)]
pub struct BankItem<'a> {
    /// The transaction.
    pub tx: &'a BankTransaction,
    /// Amount in ten-thousandths.
    pub units: i64,
    /// Currency.
    pub currency: Currency,
    /// Booking date.
    pub date: NaiveDate,
    /// All its text (payee, description, reference, batch parts), for reference evidence.
    pub text: String,
    /// [`text::compact`] of `text`.
    pub compact: String,
    /// [`text::digit_runs`] of `text`.
    pub runs: Vec<String>,
    /// Normalised counterparty name (payee, else the name words of the description).
    pub name: String,
    /// Name index keys to look up.
    pub name_keys: Vec<String>,
    /// [`text::digit_core`] of the check number, when there is one.
    pub check_core: Option<String>,
    /// [`text::pair_bits`] of `compact`.
    pub compact_bits: u64,
    /// `name` interned across both sides (see [`intern_names`]).
    pub name_id: u32,
}

/// The name matching and learning use for a bank line's counterparty.
pub fn bank_name(tx: &BankTransaction) -> String {
    bank_name_with(tx, &text::name_words(&tx.description))
}

/// [`bank_name`] with the description's name words already found.
fn bank_name_with(tx: &BankTransaction, words: &[String]) -> String {
    match tx.payee.as_deref().map(text::normalise_name).filter(|n| !n.is_empty()) {
        Some(n) => n,
        None => words.iter().take(4).map(String::as_str).collect::<Vec<_>>().join(" "),
    }
}

impl<'a> BankItem<'a> {
    /// Prepares one line; `None` when its amount cannot be represented.
    pub fn new(tx: &'a BankTransaction) -> Option<Self> {
        let units = units(tx.amount.amount())?;
        let mut text = String::with_capacity(tx.description.len() + 32);
        for part in [tx.payee.as_deref(), Some(tx.description.as_ref()), tx.reference.as_deref()].into_iter().flatten()
        {
            text.push_str(part);
            text.push(' ');
        }
        for d in &tx.details {
            for part in [d.reference.as_deref(), d.payee.as_deref(), d.description.as_deref()].into_iter().flatten() {
                text.push_str(part);
                text.push(' ');
            }
        }
        let words = text::name_words(&tx.description);
        let name = bank_name_with(tx, &words);
        let compact = text::compact(&text);
        let mut name_keys: Vec<String> = Vec::new();
        for w in name.split(' ').chain(words.iter().map(String::as_str)) {
            let key = text::word_key(w);
            if w.chars().count() >= 3 && !name_keys.contains(&key) && name_keys.len() < 2 {
                name_keys.push(key);
            }
        }
        let mut runs = text::digit_runs(&text, 1);
        runs.shrink_to_fit();
        name_keys.shrink_to_fit();
        let compact = fitted(compact);
        Some(BankItem {
            tx,
            units,
            currency: tx.amount.currency(),
            date: tx.booking_date,
            compact_bits: text::pair_bits(&compact),
            compact,
            runs,
            text: fitted(text),
            name: fitted(name),
            name_keys,
            check_core: tx.check_number.as_deref().and_then(text::digit_core),
            name_id: 0,
        })
    }
}

/// `s` holding only the room its text needs, not what growing it left over: a million items live
/// through the whole run.
fn fitted(mut s: String) -> String {
    s.shrink_to_fit();
    s
}

/// A book record as matching sees it.
#[derive(Debug)]
pub struct RecordItem<'a> {
    /// The record.
    pub rec: &'a Record,
    /// Amount in ten-thousandths.
    pub units: i64,
    /// Currency.
    pub currency: Currency,
    /// Normalised counterparty.
    pub name: String,
    /// The digit core of its reference, when it has one of three digits or more.
    pub ref_core: Option<String>,
    /// [`text::compact`] of its reference (empty without one).
    pub ref_compact: String,
    /// The characters in `ref_compact`.
    pub ref_chars: usize,
    /// [`text::pair_bits`] of `ref_compact` and of `ref_digits`.
    pub ref_bits: text::RefBits,
    /// [`text::digit_core`] of its reference, however short.
    pub ref_digits: Option<String>,
    /// `name` interned across both sides (see [`intern_names`]).
    pub name_id: u32,
    /// Whether it has a reference at all.
    pub referenced: bool,
}

impl<'a> RecordItem<'a> {
    /// Prepares one record; `None` when its amount cannot be represented.
    pub fn new(rec: &'a Record) -> Option<Self> {
        let units = units(rec.amount.amount())?;
        let ref_digits = rec.reference.as_deref().and_then(text::digit_core);
        let ref_core = ref_digits.clone().filter(|c| c.len() >= 3);
        let ref_compact = rec.reference.as_deref().map(text::compact).map(fitted).unwrap_or_default();
        let ref_chars = ref_compact.chars().count();
        Some(RecordItem {
            ref_bits: text::RefBits {
                compact: text::pair_bits(&ref_compact),
                core: ref_digits.as_deref().map_or(0, text::pair_bits),
            },
            ref_compact,
            ref_chars,
            ref_digits,
            name_id: 0,
            referenced: rec.reference.is_some(),
            rec,
            units,
            currency: rec.amount.currency(),
            name: rec.counterparty.as_deref().map(text::normalise_name).map(fitted).unwrap_or_default(),
            ref_core,
        })
    }
}

/// Numbers every distinct name of both sides, so that equal names share an id and name
/// comparisons can be cached by a pair of integers; returns each id's prepared form.
pub fn intern_names(banks: &mut [Option<BankItem<'_>>], records: &mut [Option<RecordItem<'_>>]) -> Vec<NameForm> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut forms: Vec<NameForm> = Vec::new();
    let mut id = |name: &str| match ids.get(name) {
        Some(i) => *i,
        None => {
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            ids.insert(name.to_string(), next);
            forms.push(NameForm::new(name));
            next
        }
    };
    for b in banks.iter_mut().flatten() {
        b.name_id = id(&b.name);
    }
    for r in records.iter_mut().flatten() {
        r.name_id = id(&r.name);
    }
    forms
}

/// What candidate searches read of every item they scan, packed apart from the items: scanning a
/// long list then reads 24 bytes an item, not a whole item and the record or line behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// Amount in ten-thousandths.
    pub units: i64,
    /// The bank line's booking date or the record's date.
    pub date: NaiveDate,
    /// Currency.
    pub currency: Currency,
    /// The interned name.
    pub name_id: u32,
}

/// The [`Key`] of each bank line (`None` where the line has no item).
pub fn bank_keys(banks: &[Option<BankItem<'_>>]) -> Vec<Option<Key>> {
    let key = |b: &BankItem<'_>| Key { units: b.units, date: b.date, currency: b.currency, name_id: b.name_id };
    banks.iter().map(|b| b.as_ref().map(key)).collect()
}

/// The [`Key`] of each record (`None` where the record has no item).
pub fn record_keys(records: &[Option<RecordItem<'_>>]) -> Vec<Option<Key>> {
    let key = |r: &RecordItem<'_>| Key { units: r.units, date: r.rec.date, currency: r.currency, name_id: r.name_id };
    records.iter().map(|r| r.as_ref().map(key)).collect()
}

/// Lookups from amount, reference and name to record positions, each list sorted by date.
#[derive(Debug, Default)]
pub struct RecordIndex {
    /// (currency, units) → records.
    pub by_amount: HashMap<(Currency, i64), Vec<u32>>,
    /// Reference digit core → records.
    pub by_ref: HashMap<String, Vec<u32>>,
    /// Name key → records.
    pub by_name: HashMap<String, Vec<u32>>,
    /// Name key → records by period and amount.
    pub by_name_amount: HashMap<String, NameAmounts>,
    /// All records by date.
    pub by_date: Vec<u32>,
}

impl RecordIndex {
    /// The index with only its date order left; the lookup maps are dropped.
    pub fn into_date_order(self) -> Self {
        RecordIndex { by_date: self.by_date, ..RecordIndex::default() }
    }

    /// Indexes `records` (positions into that slice; `None` entries are skipped). The lookups are
    /// independent and built side by side.
    pub fn build(records: &[Option<RecordItem<'_>>]) -> Self {
        let date = |i: &u32| records.get(*i as usize).and_then(|r| r.as_ref()).map(|r| (r.rec.date, *i));
        let items = || (0u32..).zip(records).filter_map(|(i, r)| r.as_ref().map(|r| (i, r)));
        let ((by_amount, by_ref), (by_name, by_date)) = rayon::join(
            || {
                let mut by_amount: HashMap<(Currency, i64), Vec<u32>> = HashMap::new();
                let mut by_ref: HashMap<String, Vec<u32>> = HashMap::new();
                for (i, r) in items() {
                    by_amount.entry((r.currency, r.units)).or_default().push(i);
                    if let Some(core) = &r.ref_core {
                        by_ref.entry(core.clone()).or_default().push(i);
                        // A reference in parts (`SI/2024/796943`) reaches the bank text in parts
                        // too: its long runs of digits find it where the whole core is not
                        // printed in one piece.
                        for run in r.rec.reference.as_deref().map(|t| text::digit_runs(t, REF_RUN)).unwrap_or_default()
                        {
                            if run != *core {
                                by_ref.entry(run).or_default().push(i);
                            }
                        }
                    }
                }
                for list in by_amount.values_mut().chain(by_ref.values_mut()) {
                    list.sort_by_key(date);
                }
                (by_amount, by_ref)
            },
            || {
                rayon::join(
                    || {
                        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
                        for (i, r) in items() {
                            for key in text::name_keys(&r.name) {
                                by_name.entry(key).or_default().push(i);
                            }
                        }
                        for list in by_name.values_mut() {
                            list.sort_by_key(date);
                        }
                        by_name
                    },
                    || {
                        let mut by_date: Vec<u32> = items().map(|(i, _)| i).collect();
                        by_date.sort_by_key(date);
                        by_date
                    },
                )
            },
        );
        let names: Vec<(&String, &Vec<u32>)> = by_name.iter().collect();
        let amounts: Vec<(String, NameAmounts)> =
            names.into_par_iter().map(|(k, list)| (k.clone(), NameAmounts::new(list, records))).collect();
        let by_name_amount = amounts.into_iter().collect();
        RecordIndex { by_amount, by_ref, by_name, by_name_amount, by_date }
    }
}

/// Digits in a run of a reference's digits long enough to find the record by alone (a year such
/// as `2024` is shared by every reference of the year).
const REF_RUN: usize = 5;

/// Days in one period of [`NameAmounts`]: a bank line's candidate window (ten days before, 45
/// after) spans two or three periods.
const NAME_PERIOD_DAYS: i32 = 32;

fn name_period(d: NaiveDate) -> i32 {
    d.num_days_from_ce().div_euclid(NAME_PERIOD_DAYS)
}

/// The records sharing one name key, grouped by period and sorted by amount within each, with
/// amount and date kept inline: a lookup reads only the periods a date window touches and, in
/// each, only the amounts within tolerance, however many years of records share the name.
#[derive(Debug, Default)]
pub struct NameAmounts {
    /// Each period present and where its entries start, by period.
    periods: Vec<(i32, u32)>,
    /// (units, date, record position), sorted by period, then amount, then position.
    entries: Vec<(i64, NaiveDate, u32)>,
}

impl NameAmounts {
    fn new(list: &[u32], records: &[Option<RecordItem<'_>>]) -> Self {
        let mut entries: Vec<(i64, NaiveDate, u32)> = list
            .iter()
            .filter_map(|i| records.get(*i as usize).and_then(Option::as_ref).map(|r| (r.units, r.rec.date, *i)))
            .collect();
        entries.sort_unstable_by_key(|(units, date, i)| (name_period(*date), *units, *i));
        let mut periods: Vec<(i32, u32)> = Vec::new();
        for (k, (_, date, _)) in entries.iter().enumerate() {
            let p = name_period(*date);
            if periods.last().is_none_or(|(last, _)| *last != p) {
                periods.push((p, k as u32));
            }
        }
        NameAmounts { periods, entries }
    }

    /// Positions of the records dated in `[from, to]` with an amount in `[lo, hi]`, period by
    /// period in amount order; at most `scan` entries of each period are read.
    pub fn within(
        &self,
        (from, to): (NaiveDate, NaiveDate),
        (lo, hi): (i64, i64),
        scan: usize,
    ) -> impl Iterator<Item = u32> + '_ {
        let first = self.periods.partition_point(|(p, _)| *p < name_period(from));
        let last = self.periods.partition_point(|(p, _)| *p <= name_period(to));
        self.periods.get(first..last.max(first)).unwrap_or(&[]).iter().enumerate().flat_map(move |(k, (_, start))| {
            let end = self.periods.get(first + k + 1).map_or(self.entries.len(), |(_, e)| *e as usize);
            let slice = self.entries.get(*start as usize..end).unwrap_or(&[]);
            let at = slice.partition_point(|(units, _, _)| *units < lo);
            slice
                .get(at..)
                .unwrap_or(&[])
                .iter()
                .take_while(move |(units, _, _)| *units <= hi)
                .take(scan)
                .filter(move |(_, date, _)| *date >= from && *date <= to)
                .map(|(_, _, i)| *i)
        })
    }
}

/// Lookups from reference and name to bank positions, for one-record-many-payments groups; each
/// list sorted by date.
#[derive(Debug, Default)]
pub struct BankIndex {
    /// Digit run (three digits or more) → bank lines.
    pub by_ref: HashMap<String, Vec<u32>>,
    /// Name key → bank lines.
    pub by_name: HashMap<String, Vec<u32>>,
}

impl BankIndex {
    /// Indexes `bank` (positions into that slice; `None` entries are skipped).
    pub fn build(bank: &[Option<BankItem<'_>>]) -> Self {
        Self::build_where(bank, |_| true)
    }

    /// Indexes the bank lines of `bank` that `keep` (given a position) accepts.
    pub fn build_where(bank: &[Option<BankItem<'_>>], keep: impl Fn(usize) -> bool) -> Self {
        let mut idx = BankIndex::default();
        for (i, b) in bank.iter().enumerate() {
            let Some(b) = b.as_ref().filter(|_| keep(i)) else { continue };
            let i = i as u32;
            let mut seen: Vec<&str> = Vec::new();
            for run in b.runs.iter().filter(|r| r.len() >= 3) {
                if !seen.contains(&run.as_str()) {
                    seen.push(run);
                    idx.by_ref.entry(run.clone()).or_default().push(i);
                }
            }
            for key in &b.name_keys {
                idx.by_name.entry(key.clone()).or_default().push(i);
            }
        }
        let date = |i: &u32| bank.get(*i as usize).and_then(|b| b.as_ref()).map(|b| (b.date, *i));
        for list in idx.by_ref.values_mut().chain(idx.by_name.values_mut()) {
            list.sort_by_key(date);
        }
        idx
    }
}

/// The slice of a date-sorted `list` whose dates lie in `[from, to]`.
pub fn window<'l, T>(
    list: &'l [u32],
    items: &[Option<T>],
    date: impl Fn(&T) -> NaiveDate + Copy,
    from: NaiveDate,
    to: NaiveDate,
) -> &'l [u32] {
    let key = |i: &u32| items.get(*i as usize).and_then(|x| x.as_ref()).map(date);
    let start = list.partition_point(|i| key(i).is_some_and(|d| d < from));
    let end = list.partition_point(|i| key(i).is_some_and(|d| d <= to));
    list.get(start..end.max(start)).unwrap_or(&[])
}

/// The positions in a date-sorted `list` whose date lies in `[from, to]`.
pub fn in_window<'l, T>(
    list: &'l [u32],
    items: &'l [Option<T>],
    date: impl Fn(&T) -> NaiveDate + Copy + 'l,
    from: NaiveDate,
    to: NaiveDate,
) -> impl Iterator<Item = u32> + 'l {
    let key = move |i: &u32| items.get(*i as usize).and_then(|x| x.as_ref()).map(date);
    let start = list.partition_point(|i| key(i).is_some_and(|d| d < from));
    list.get(start..).unwrap_or(&[]).iter().copied().take_while(move |i| key(i).is_some_and(|d| d <= to))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use super::*;
    use crate::domain::{Money, RecordKind};

    fn record(k: usize, day: i64, cents: i64) -> Record {
        let date = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default() + chrono::Duration::days(day);
        Record {
            id: format!("r{k}"),
            kind: RecordKind::Invoice,
            date,
            due_date: None,
            amount: Money::new(Decimal::new(cents, 2), Currency::EUR),
            counterparty: Some("Acme".into()),
            reference: None,
            description: None,
        }
    }

    proptest! {
        /// A name's lookup by date window and amount range finds exactly the records a scan of
        /// all of them finds, whichever periods the window touches.
        #[test]
        fn name_amounts_find_what_a_full_scan_finds(
            items in prop::collection::vec((0i64..400, 0i64..40), 0..80),
            from in 0i64..400,
            len in 0i64..120,
            lo in 0i64..40,
            width in 0i64..10,
        ) {
            let records: Vec<Record> = items.iter().enumerate().map(|(k, (d, c))| record(k, *d, c * 100)).collect();
            let items: Vec<Option<RecordItem<'_>>> = records.iter().map(RecordItem::new).collect();
            let list: Vec<u32> = (0..items.len() as u32).collect();
            let index = NameAmounts::new(&list, &items);
            let day = |d: i64| NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default() + chrono::Duration::days(d);
            let (from, to) = (day(from), day(from + len));
            let (lo, hi) = (lo * 10_000, (lo + width) * 10_000);
            let mut found: Vec<u32> = index.within((from, to), (lo, hi), usize::MAX).collect();
            found.sort_unstable();
            let expected: Vec<u32> = list
                .iter()
                .copied()
                .filter(|i| {
                    items.get(*i as usize).and_then(Option::as_ref).is_some_and(|r| {
                        r.rec.date >= from && r.rec.date <= to && r.units >= lo && r.units <= hi
                    })
                })
                .collect();
            prop_assert_eq!(found, expected);
        }
    }
}
