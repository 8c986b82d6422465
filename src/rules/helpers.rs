//! The native functions and the decision type rules see. Heavy text work stays in Rust; scripts
//! call it by name.

use chrono::{Datelike, NaiveDate, Weekday};
use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Position};
use rust_decimal::Decimal;

use super::{decimal_to_f64, Decision};
use crate::matching::text;

type Fallible<T> = Result<T, Box<EvalAltResult>>;

fn bad(message: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(message.into(), Position::NONE))
}

fn date(s: &str) -> Fallible<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| bad(format!("not a date (YYYY-MM-DD): {s:?}")))
}

/// Calendar days from `a` to `b` (positive when `b` is later).
pub fn days_between(a: NaiveDate, b: NaiveDate) -> i64 {
    (b - a).num_days()
}

/// Business days (Monday to Friday) from `a` to `b`: positive when `b` is later, weekends not
/// counted, so a Friday to the next Monday is one day.
pub fn business_days(a: NaiveDate, b: NaiveDate) -> i64 {
    if b < a {
        return -business_days(b, a);
    }
    let days = (b - a).num_days();
    let weeks = days / 7;
    let mut count = weeks * 5;
    let mut day = a.weekday();
    for _ in 0..(days % 7) {
        day = day.succ();
        if !matches!(day, Weekday::Sat | Weekday::Sun) {
            count += 1;
        }
    }
    count
}

/// A script number (integer or decimal) as a Decimal.
fn number(v: &Dynamic) -> Fallible<Decimal> {
    if let Some(d) = v.clone().try_cast::<Decimal>() {
        return Ok(d);
    }
    v.as_int().map(Decimal::from).map_err(|t| bad(format!("expected a number, got {t}")))
}

fn confidence(c: Decimal) -> f64 {
    decimal_to_f64(c).clamp(0.0, 1.0)
}

fn strings(v: Vec<String>) -> Array {
    v.into_iter().map(Dynamic::from).collect()
}

pub(super) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Decision>("Decision");

    engine.register_fn("accept", |c: Decimal| Decision::Accept { confidence: confidence(c), reason: String::new() });
    engine.register_fn("accept", |c: Decimal, why: ImmutableString| Decision::Accept {
        confidence: confidence(c),
        reason: why.to_string(),
    });
    engine.register_fn("accept", |c: i64| Decision::Accept {
        confidence: confidence(Decimal::from(c)),
        reason: String::new(),
    });
    engine.register_fn("veto", |why: ImmutableString| Decision::Veto { reason: why.to_string() });
    engine.register_fn("veto", || Decision::Veto { reason: String::new() });
    engine.register_fn("adjust", |d: Decimal, why: ImmutableString| Decision::Adjust {
        delta: decimal_to_f64(d),
        reason: why.to_string(),
    });
    engine.register_fn("adjust", |d: i64, why: ImmutableString| Decision::Adjust {
        delta: d as f64,
        reason: why.to_string(),
    });
    engine.register_fn("no_opinion", || Dynamic::UNIT);

    engine.register_fn("tokens", |t: ImmutableString| strings(text::tokens(&t)));
    engine.register_fn("refs_in", |t: ImmutableString| strings(text::refs_in(&t)));
    engine.register_fn("normalise", |t: ImmutableString| text::normalise_name(&t));
    engine.register_fn("compact", |t: ImmutableString| text::compact(&t));
    engine.register_fn("digits", |t: ImmutableString| text::digit_core(&t).unwrap_or_default());
    engine.register_fn("similar", |a: ImmutableString, b: ImmutableString| {
        let s = text::similar(&a, &b).unwrap_or(0.0);
        Decimal::from_f64_retain(s).map(|d| d.round_dp(4)).unwrap_or_default()
    });
    engine.register_fn("has_ref", |bank_text: ImmutableString, reference: ImmutableString| {
        let runs = text::digit_runs(&bank_text, 1);
        text::ref_evidence(&reference, &text::compact(&bank_text), &runs) >= text::RefEvidence::Core
    });
    engine.register_fn("days_between", |a: ImmutableString, b: ImmutableString| -> Fallible<i64> {
        Ok(days_between(date(&a)?, date(&b)?))
    });
    engine.register_fn("business_days", |a: ImmutableString, b: ImmutableString| -> Fallible<i64> {
        Ok(business_days(date(&a)?, date(&b)?))
    });
    engine.register_fn("weekday", |a: ImmutableString| -> Fallible<i64> {
        Ok(i64::from(date(&a)?.weekday().number_from_monday()))
    });
    engine.register_fn("amount_within", |a: Dynamic, b: Dynamic, pct: Dynamic, abs: Dynamic| -> Fallible<bool> {
        let (a, b, pct, abs) = (number(&a)?, number(&b)?, number(&pct)?, number(&abs)?);
        let diff = a.checked_sub(b).map(|d| d.abs());
        let share = pct.checked_mul(b.abs()).and_then(|x| x.checked_div(Decimal::ONE_HUNDRED));
        Ok(match (diff, share) {
            (Some(diff), Some(share)) => diff <= share.max(abs.abs()),
            _ => false,
        })
    });
    engine.register_fn("abs", |a: Decimal| a.abs());
    engine.register_fn("contains_any", |t: ImmutableString, words: Array| contains_any(&t, &words));
}

/// Whether `text` contains any of `words`, ignoring case. Rules call it on nearly every candidate:
/// short ASCII text (nearly all bank text) is lowered on the stack, and lower-case words (as rules
/// write them) are looked for as they are, so a call allocates nothing.
fn contains_any(text: &str, words: &Array) -> bool {
    const SHORT: usize = 512;
    let mut stack = [0u8; SHORT];
    let heap: String;
    let lower: &str = match stack.get_mut(..text.len()) {
        Some(buf) if text.is_ascii() => {
            buf.copy_from_slice(text.as_bytes());
            buf.make_ascii_lowercase();
            std::str::from_utf8(buf).unwrap_or_default()
        }
        _ => {
            heap = text.to_lowercase();
            &heap
        }
    };
    words.iter().filter_map(|w| w.read_lock::<ImmutableString>()).any(|w| {
        let is_lower = if w.is_ascii() {
            !w.bytes().any(|c| c.is_ascii_uppercase())
        } else {
            w.chars().flat_map(char::to_lowercase).eq(w.chars())
        };
        !w.is_empty() && if is_lower { lower.contains(w.as_str()) } else { lower.contains(&w.to_lowercase()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    fn words(w: &[&str]) -> Array {
        w.iter().map(|s| Dynamic::from(s.to_string())).collect()
    }

    #[test]
    fn contains_any_ignores_case_on_both_sides_in_ascii_and_other_text() {
        assert!(contains_any("SEPA Payout ADYEN", &words(&["payout"])));
        assert!(contains_any("sepa payout adyen", &words(&["PAYOUT"])));
        assert!(!contains_any("SEPA transfer", &words(&["payout", "lockbox"])));
        assert!(contains_any("KONTOFÜHRUNG März", &words(&["kontoführung"])));
        assert!(contains_any("Überweisung", &words(&["ÜBER"])));
        assert!(!contains_any("anything", &words(&[""])));
        assert!(!contains_any("anything", &[Dynamic::from(3_i64)].into_iter().collect()));
        // Longer than the stack buffer: lowered on the heap, same answer.
        let long = format!("{} Lockbox", "x".repeat(600));
        assert!(contains_any(&long, &words(&["lockbox"])));
    }

    #[test]
    fn business_days_skip_weekends_in_both_directions() {
        // 2024-03-01 is a Friday.
        assert_eq!(business_days(d(2024, 3, 1), d(2024, 3, 4)), 1);
        assert_eq!(business_days(d(2024, 3, 4), d(2024, 3, 1)), -1);
        assert_eq!(business_days(d(2024, 3, 1), d(2024, 3, 15)), 10);
        assert_eq!(business_days(d(2024, 3, 2), d(2024, 3, 3)), 0);
        assert_eq!(days_between(d(2024, 3, 1), d(2024, 3, 4)), 3);
    }
}
