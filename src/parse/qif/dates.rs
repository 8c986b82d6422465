//! QIF dates: the forms Quicken and its imitators write, and the day/month/year order decided once
//! for the whole file.
//!
//! Quicken writes `8/12/13`, `8/ 1/97` (space-padded), `2/10'2020` and `1/ 1'00` (an apostrophe
//! before the year marks the years from 2000), and in the Y2K era `03/25/099` (a three-digit year
//! counted from 1900), sometimes with the payee glued on. Other programs write `12/08/13` (day
//! first), `13/08/12` (two-digit year first) or `2013-08-12`. Nothing in the file says which, so
//! every date is tallied first and one order is chosen for all of them.

use std::collections::HashSet;

use chrono::{Datelike, NaiveDate};

use crate::parse::text::{self, DateOrder, DateOrderVote};

/// A date's three numbers as written, with how many digits each had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RawDate {
    fields: [u32; 3],
    digits: [usize; 3],
}

const SEPARATORS: &[u8] = b"/-.'";

/// Reads the date at the start of a `D` value. Returns the date's fields and whatever text follows
/// it (empty for a clean date), or `None` when the value does not start with a date.
pub(super) fn split_date(value: &str) -> Option<(RawDate, &str)> {
    let value = value.trim_start();
    let bytes = value.as_bytes();
    let mut i = 0;
    let mut digits = [0usize; 3];
    let mut year_separator = 0u8;
    for (field, count) in digits.iter_mut().enumerate() {
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
        let start = i;
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        *count = i - start;
        if *count == 0 {
            return None;
        }
        if field == 0 && *count == 8 {
            // `20130812`: one run of digits, year first.
            digits = [4, 2, 2];
            break;
        }
        if field < 2 {
            let sep = *bytes.get(i).filter(|b| SEPARATORS.contains(b))?;
            if field == 1 {
                year_separator = sep;
            }
            i += 1;
        }
    }
    // Everything up to `i` is ASCII, so both slices fall on character boundaries.
    let head = value.get(..i)?;
    let rest = value.get(i..).unwrap_or_default().trim();
    let mut fields = text::date_fields(head)?;
    if year_separator == b'\'' && digits[2] <= 2 {
        fields[2] += 2000;
        digits[2] = 4;
    }
    Some((RawDate { fields, digits }, rest))
}

/// The date `raw` denotes when read in `order`.
pub(super) fn resolve(raw: RawDate, order: DateOrder) -> Option<NaiveDate> {
    let year_digits = if order == DateOrder::Ymd { raw.digits[0] } else { raw.digits[2] };
    text::date_from_fields(raw.fields, order, year_digits)
}

/// The orders in the sequence they are preferred: Quicken is a US program.
const ORDERS: [DateOrder; 3] = [DateOrder::Mdy, DateOrder::Dmy, DateOrder::Ymd];

fn slot(order: DateOrder) -> usize {
    match order {
        DateOrder::Mdy => 0,
        DateOrder::Dmy => 1,
        DateOrder::Ymd => 2,
    }
}

/// Every date of the file, tallied per order.
#[derive(Debug, Default)]
pub(super) struct OrderTally {
    vote: DateOrderVote,
    /// Dates already tallied: a statement repeats few distinct dates many times.
    distinct: HashSet<RawDate>,
    failures: [usize; 3],
    years: [Option<(i32, i32)>; 3],
    /// `differs[a][b]`: some date reads differently in order `a` than in order `b`.
    differs: [[bool; 3]; 3],
}

/// The order chosen for a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OrderDecision {
    /// The order every date is read in.
    pub order: DateOrder,
    /// Another order reads every date too, some of them differently, and fits the file as well:
    /// the choice was a preference, worth telling the user.
    pub ambiguous: bool,
}

impl OrderTally {
    /// Records one date.
    pub(super) fn observe(&mut self, raw: RawDate) {
        if !self.distinct.insert(raw) {
            return;
        }
        self.vote.observe(raw.fields, raw.digits[2]);
        let read = ORDERS.map(|o| resolve(raw, o));
        for (i, date) in read.iter().enumerate() {
            match date {
                Some(d) => {
                    let y = d.year();
                    self.years[i] = Some(self.years[i].map_or((y, y), |(lo, hi)| (lo.min(y), hi.max(y))));
                }
                None => self.failures[i] += 1,
            }
            for (j, other) in read.iter().enumerate() {
                if let (Some(a), Some(b)) = (date, other) {
                    self.differs[i][j] |= a != b;
                }
            }
        }
    }

    /// Chooses the order: the caller's if given; else the one order that reads every date; among
    /// several, year-first only when it puts the dates in fewer years (a statement covers months,
    /// not decades: `13/08/12 13/03/03` is 2013 year-first but 2012 and 2003 day-first), else
    /// month-first before day-first. When no order reads every date, the one that fails on the
    /// fewest distinct dates, so that the error lands on the odd date out.
    pub(super) fn decide(&self, forced: Option<DateOrder>) -> OrderDecision {
        if let Some(order) = forced {
            return OrderDecision { order, ambiguous: false };
        }
        if self.distinct.is_empty() {
            return OrderDecision { order: DateOrder::Mdy, ambiguous: false };
        }
        let possible: Vec<DateOrder> = ORDERS.into_iter().filter(|o| self.vote.decide(Some(*o)) == Some(*o)).collect();
        let Some(&first) = possible.first() else {
            let order = ORDERS.into_iter().min_by_key(|o| self.failures[slot(*o)]).unwrap_or(DateOrder::Mdy);
            return OrderDecision { order, ambiguous: false };
        };
        let span = |o: DateOrder| self.years[slot(o)].map_or(i32::MAX, |(lo, hi)| hi - lo);
        let order =
            if first != DateOrder::Ymd && possible.contains(&DateOrder::Ymd) && span(DateOrder::Ymd) < span(first) {
                DateOrder::Ymd
            } else {
                first
            };
        // Only a tie is a guess: an order that spreads the dates over more years lost on evidence.
        let ambiguous =
            possible.iter().any(|o| *o != order && self.differs[slot(order)][slot(*o)] && span(*o) == span(order));
        OrderDecision { order, ambiguous }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn read(value: &str, order: DateOrder) -> Option<NaiveDate> {
        split_date(value).and_then(|(raw, _)| resolve(raw, order))
    }

    fn decide(values: &[&str]) -> OrderDecision {
        let mut tally = OrderTally::default();
        for v in values {
            tally.observe(split_date(v).unwrap().0);
        }
        tally.decide(None)
    }

    #[test]
    fn quicken_date_forms_are_read() {
        assert_eq!(read("8/12/13", DateOrder::Mdy), Some(ymd(2013, 8, 12)));
        assert_eq!(read("8/ 1/97", DateOrder::Mdy), Some(ymd(1997, 8, 1)));
        assert_eq!(read(" 1/ 1'00", DateOrder::Mdy), Some(ymd(2000, 1, 1)));
        assert_eq!(read("2/10'2020", DateOrder::Mdy), Some(ymd(2020, 2, 10)));
        assert_eq!(read("12/31'75", DateOrder::Mdy), Some(ymd(2075, 12, 31)));
        assert_eq!(read("2013-08-12", DateOrder::Dmy), Some(ymd(2013, 8, 12)));
        assert_eq!(read("20130812", DateOrder::Mdy), Some(ymd(2013, 8, 12)));
        assert_eq!(read("13/08/12", DateOrder::Ymd), Some(ymd(2013, 8, 12)));
    }

    #[test]
    fn a_three_digit_year_is_counted_from_1900_and_glued_text_is_returned() {
        let (raw, rest) = split_date("03/25/099Share Withdrawal").unwrap();
        assert_eq!(resolve(raw, DateOrder::Mdy), Some(ymd(1999, 3, 25)));
        assert_eq!(rest, "Share Withdrawal");
        assert_eq!(split_date("12/31/2024 ").unwrap().1, "");
    }

    #[test]
    fn text_that_is_not_a_date_is_refused() {
        for bad in ["", "yesterday", "12/31", "12-", "1/2/123456", "/1/2", "١/٢/٢٠٢٤"] {
            assert_eq!(split_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn month_first_wins_when_the_file_cannot_tell() {
        let d = decide(&["3/4/13", "5/6/13"]);
        assert_eq!(d.order, DateOrder::Mdy);
        assert!(d.ambiguous);
    }

    #[test]
    fn one_day_above_twelve_proves_day_first() {
        let d = decide(&["12/8/13", "15/8/13", "3/3/13"]);
        assert_eq!(d, OrderDecision { order: DateOrder::Dmy, ambiguous: false });
    }

    #[test]
    fn a_two_digit_year_first_is_chosen_when_it_keeps_the_dates_in_one_year() {
        let d = decide(&["13/08/12", "13/08/15", "13/3/3", "13/3/4"]);
        assert_eq!(d, OrderDecision { order: DateOrder::Ymd, ambiguous: false });
    }

    #[test]
    fn four_digit_years_first_are_never_ambiguous() {
        let d = decide(&["2022-09-23", "2022-09-08"]);
        assert_eq!(resolve(split_date("2022-09-08").unwrap().0, d.order), Some(ymd(2022, 9, 8)));
        assert!(!d.ambiguous);
    }

    #[test]
    fn the_callers_order_overrides_the_tally() {
        let mut tally = OrderTally::default();
        tally.observe(split_date("3/4/13").unwrap().0);
        assert_eq!(tally.decide(Some(DateOrder::Dmy)).order, DateOrder::Dmy);
    }

    #[test]
    fn when_no_order_reads_every_date_the_least_failing_one_is_used() {
        let d = decide(&["12/25/13", "12/26/13", "13/13/13"]);
        assert_eq!(d.order, DateOrder::Mdy);
    }
}
