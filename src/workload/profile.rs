//! Difficulty profiles: how large a workload is, how dense, and how often each phenomenon occurs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The most records one workload may hold; larger requests are clamped so that a typo on the command
/// line cannot exhaust memory.
pub const MAX_RECORDS: usize = 5_000_000;

/// The longest payment lag honoured, in business days, whatever a profile asks for: longer lags
/// would only push payments out of the period.
pub const MAX_LAG_DAYS: u32 = 60;

/// Business days in one year: a workload grows longer at its profile's density up to a year,
/// then denser, as a larger business would.
pub const YEAR_BUSINESS_DAYS: u32 = 260;

/// The densest a workload grows, in records per business day (a large business). Past a year at
/// this density a workload spans more years instead, so that a million records are a plausible
/// business's history rather than thousands of payments a day.
pub const MAX_RECORDS_PER_DAY: usize = 400;

/// How a workload is shaped. Shares are probabilities in `[0, 1]` (they are odds of events, never
/// amounts of money).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The profile's name (`easy`, `realistic`, `hard` or a custom one).
    pub name: String,
    /// Number of book records to generate (about as many bank lines result).
    pub records: usize,
    /// Records per business day; with [`records`](Self::records) it sets the period's length, so a
    /// larger workload spans more days rather than crowding one month.
    pub records_per_day: usize,
    /// Longest payment lag in business days after the record's date.
    pub max_lag_days: u32,
    /// Share of payment events where a bank fee or short payment makes the amounts differ.
    pub fee: f64,
    /// Share of payment events where one bank credit pays several invoices.
    pub batch: f64,
    /// Share of payment events where one invoice is paid by several bank movements.
    pub split: f64,
    /// Share of payment events that are checks written to suppliers.
    pub check: f64,
    /// Share of payment events that are transfers between the business's own accounts.
    pub transfer: f64,
    /// Share of customers whose remittance references arrive mangled (no dash, digits only...).
    pub mangled_reference: f64,
    /// Share of customers who send no reference at all.
    pub missing_reference: f64,
    /// Share of amounts drawn from a small set of round amounts shared by many counterparties.
    pub round_amount: f64,
    /// Probability that a payment shows one of the counterparty's less usual bank names.
    pub name_alias: f64,
    /// Share of bank lines whose payee and reference are only in the free text (as plain CSV
    /// exports give them) rather than in separate fields.
    pub text_only: f64,
    /// Bank-only lines (charges, interest, unknown credits) per payment event.
    pub bank_noise: f64,
    /// Book-only records (unpaid invoices, outstanding checks, accruals) per payment event.
    pub record_noise: f64,
}

/// Why a profile name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown workload profile {0:?} (expected easy, realistic or hard)")]
pub struct UnknownProfile(pub String);

impl Profile {
    /// Few phenomena, clean references, low density: a matcher should be near perfect.
    pub fn easy() -> Self {
        Profile {
            name: "easy".into(),
            records: 10_000,
            records_per_day: 20,
            max_lag_days: 3,
            fee: 0.03,
            batch: 0.02,
            split: 0.01,
            check: 0.03,
            transfer: 0.005,
            mangled_reference: 0.05,
            missing_reference: 0.02,
            round_amount: 0.05,
            name_alias: 0.05,
            text_only: 0.05,
            bank_noise: 0.02,
            record_noise: 0.03,
        }
    }

    /// What a small or mid-sized business's books and bank typically look like.
    pub fn realistic() -> Self {
        Profile {
            name: "realistic".into(),
            records: 10_000,
            records_per_day: 60,
            max_lag_days: 10,
            fee: 0.06,
            batch: 0.06,
            split: 0.03,
            check: 0.06,
            transfer: 0.01,
            mangled_reference: 0.35,
            missing_reference: 0.15,
            round_amount: 0.20,
            name_alias: 0.20,
            text_only: 0.30,
            bank_noise: 0.05,
            record_noise: 0.06,
        }
    }

    /// Dense, ambiguous and noisy: many round amounts, poor references, frequent groups.
    pub fn hard() -> Self {
        Profile {
            name: "hard".into(),
            records: 10_000,
            records_per_day: 200,
            max_lag_days: 10,
            fee: 0.10,
            batch: 0.12,
            split: 0.06,
            check: 0.08,
            transfer: 0.01,
            mangled_reference: 0.60,
            missing_reference: 0.35,
            round_amount: 0.40,
            name_alias: 0.40,
            text_only: 0.60,
            bank_noise: 0.10,
            record_noise: 0.10,
        }
    }

    /// The built-in profile called `name`.
    pub fn named(name: &str) -> Result<Self, UnknownProfile> {
        match name.trim().to_ascii_lowercase().as_str() {
            "easy" => Ok(Profile::easy()),
            "realistic" => Ok(Profile::realistic()),
            "hard" => Ok(Profile::hard()),
            _ => Err(UnknownProfile(name.to_string())),
        }
    }

    /// The same profile with `records` records (clamped to [`MAX_RECORDS`]).
    pub fn with_records(mut self, records: usize) -> Self {
        self.records = records.min(MAX_RECORDS);
        self
    }

    /// Records actually generated: at least one, at most [`MAX_RECORDS`].
    pub fn record_target(&self) -> usize {
        self.records.clamp(1, MAX_RECORDS)
    }

    /// Business days in one period: enough to keep [`records_per_day`](Self::records_per_day)
    /// up to a year ([`YEAR_BUSINESS_DAYS`]), then a year at a growing density, and past
    /// [`MAX_RECORDS_PER_DAY`] (or the profile's own density, when higher) as many years as that
    /// density needs; at least four weeks.
    pub fn business_days(&self) -> u32 {
        let records = self.record_target();
        let per_day = self.records_per_day.max(1);
        let year = YEAR_BUSINESS_DAYS as usize;
        // A profile asking for more than the cap keeps its own density.
        let densest = MAX_RECORDS_PER_DAY.max(per_day);
        let days = records.div_ceil(per_day).min(year).max(records.div_ceil(densest));
        u32::try_from(days).unwrap_or(u32::MAX).max(20)
    }

    /// [`max_lag_days`](Self::max_lag_days), at most [`MAX_LAG_DAYS`].
    pub fn lag_limit(&self) -> u32 {
        self.max_lag_days.min(MAX_LAG_DAYS)
    }

    /// How many customers the business has: more records, more customers, but each customer still
    /// pays several times a period so that habits can be learned.
    pub fn customers(&self) -> usize {
        (self.record_target() / 12).clamp(8, 40_000)
    }

    /// How many suppliers the business pays.
    pub fn suppliers(&self) -> usize {
        (self.record_target() / 40).clamp(5, 10_000)
    }

    /// How many card and direct-debit vendors (utilities, software, travel) the business uses.
    pub fn vendors(&self) -> usize {
        (self.record_target() / 100).clamp(6, 2_000)
    }
}

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::named(s)
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_are_found_by_name_in_any_case() {
        assert_eq!(Profile::named("Hard").map(|p| p.name), Ok("hard".to_string()));
        assert!(Profile::named("medium").is_err());
    }

    #[test]
    fn the_period_grows_with_the_records_until_a_year_then_density_grows_then_years_are_added() {
        let small = Profile::realistic().with_records(100);
        let mid = Profile::realistic().with_records(6_000);
        let large = Profile::realistic().with_records(100_000);
        let huge = Profile::realistic().with_records(1_000_000);
        assert_eq!(small.business_days(), 20);
        assert_eq!(mid.business_days(), 100);
        // 385 a day: denser, still one year.
        assert_eq!(large.business_days(), YEAR_BUSINESS_DAYS);
        // 400 a day at most: ten years' history rather than 3,800 payments a day.
        assert_eq!(huge.business_days(), 2_500);
        assert!(huge.record_target().div_ceil(huge.business_days() as usize) <= MAX_RECORDS_PER_DAY);
    }

    #[test]
    fn a_profile_denser_than_the_cap_keeps_its_density() {
        let crowded = Profile { records_per_day: 1_000, ..Profile::hard().with_records(100_000) };
        assert_eq!(crowded.business_days(), 100);
    }

    #[test]
    fn absurd_sizes_are_clamped() {
        let p = Profile::easy().with_records(usize::MAX);
        assert_eq!(p.record_target(), MAX_RECORDS);
        let zero = Profile { records_per_day: 0, ..Profile::easy().with_records(0) };
        assert_eq!(zero.record_target(), 1);
        assert_eq!(zero.business_days(), 20);
    }
}
