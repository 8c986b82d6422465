//! Money: an exact decimal amount with its ISO 4217 currency.
//!
//! Amounts are `rust_decimal::Decimal` everywhere (never binary floating point), and every amount
//! travels with its currency so that two currencies can never be added by accident.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Why a currency code or an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not an active ISO 4217 alphabetic code.
    #[error("unknown currency code {0:?} (expected an ISO 4217 code such as EUR or USD)")]
    UnknownCurrency(String),
    /// Arithmetic between two different currencies was attempted.
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    /// The text is not a decimal number.
    #[error("invalid amount {0:?}")]
    InvalidAmount(String),
}

/// ISO 4217 alphabetic codes with their number of minor units (digits after the decimal point).
/// `XXX` ("no currency") is used when a statement does not say which currency it is in.
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("XXX", 2),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
    // Superseded codes that still appear in older statement files.
    ("HRK", 2),
    ("LTL", 2),
    ("LVL", 2),
    ("EEK", 2),
    ("SKK", 2),
    ("DEM", 2),
    ("FRF", 2),
    ("NLG", 2),
];

/// The currency table as byte codes, sorted for binary search (built once).
fn sorted_codes() -> &'static [([u8; 3], u8)] {
    static SORTED: std::sync::OnceLock<Vec<([u8; 3], u8)>> = std::sync::OnceLock::new();
    SORTED.get_or_init(|| {
        let mut v: Vec<([u8; 3], u8)> = CURRENCIES
            .iter()
            .filter_map(|(c, m)| {
                let b = c.as_bytes();
                (b.len() == 3).then(|| ([b[0], b[1], b[2]], *m as u8))
            })
            .collect();
        v.sort_unstable();
        v
    })
}

/// An ISO 4217 currency, e.g. `EUR`. Construct with [`Currency::new`] or `"EUR".parse()`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    code: [u8; 3],
    minor_units: u8,
}

impl Currency {
    /// "No currency": used when a statement does not name one and none was configured.
    pub const XXX: Currency = Currency { code: *b"XXX", minor_units: 2 };
    /// Euro.
    pub const EUR: Currency = Currency { code: *b"EUR", minor_units: 2 };
    /// US dollar.
    pub const USD: Currency = Currency { code: *b"USD", minor_units: 2 };

    /// Parses an ISO 4217 alphabetic code (case-insensitive, surrounding blanks ignored).
    pub fn new(code: &str) -> Result<Self, MoneyError> {
        let b = code.trim().as_bytes();
        if b.len() == 3 {
            let key = [b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase(), b[2].to_ascii_uppercase()];
            // Parsers call this for every line of a statement: a binary search, no allocation.
            if let Ok(i) = sorted_codes().binary_search_by(|(c, _)| c.cmp(&key)) {
                let (code, minor_units) = sorted_codes()[i];
                return Ok(Currency { code, minor_units });
            }
        }
        Err(MoneyError::UnknownCurrency(code.to_string()))
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // The code was copied from the static table, which is ASCII.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Number of digits after the decimal point (JPY 0, EUR 2, BHD 3).
    pub fn minor_units(&self) -> u32 {
        u32::from(self.minor_units)
    }

    /// True for `XXX`, the "currency not stated" marker.
    pub fn is_unknown(&self) -> bool {
        *self == Currency::XXX
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::new(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::new(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An exact amount in one currency. Positive means money into the bank account.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// An amount in a currency, kept exactly as given (no rounding).
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Money { amount: Decimal::ZERO, currency }
    }

    /// Parses a plain decimal string such as `-12.34` (no grouping, `.` as decimal point).
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        Decimal::from_str(amount.trim())
            .map(|d| Money::new(d, currency))
            .map_err(|_| MoneyError::InvalidAmount(amount.to_string()))
    }

    /// The signed amount.
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The same amount with its sign flipped.
    pub fn negate(&self) -> Self {
        Money { amount: -self.amount, currency: self.currency }
    }

    /// The absolute amount.
    pub fn abs(&self) -> Self {
        Money { amount: self.amount.abs(), currency: self.currency }
    }

    /// Sum of two amounts in the same currency.
    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(Money { amount: self.amount + other.amount, currency: self.currency })
    }

    /// Difference of two amounts in the same currency.
    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(Money { amount: self.amount - other.amount, currency: self.currency })
    }

    /// Rounded half-to-even to the currency's minor units (banker's rounding, as ledgers do).
    pub fn round(&self) -> Money {
        let amount =
            self.amount.round_dp_with_strategy(self.currency.minor_units(), RoundingStrategy::MidpointNearestEven);
        Money { amount, currency: self.currency }
    }

    /// The amount as a string with exactly the currency's minor units, e.g. `-12.30`.
    pub fn to_fixed(&self) -> String {
        fixed(self.amount, self.currency.minor_units())
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

/// Formats `amount` with at least `dp` decimals (more are kept: a statement's five-decimal amount
/// is not silently rounded).
pub fn fixed(amount: Decimal, dp: u32) -> String {
    let mut a = amount.normalize();
    if a.scale() < dp {
        a.rescale(dp);
    }
    a.to_string()
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_fixed(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({} {})", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    #[test]
    fn currencies_know_their_minor_units() {
        assert_eq!(Currency::new("jpy").unwrap().minor_units(), 0);
        assert_eq!(Currency::new("EUR").unwrap().minor_units(), 2);
        assert_eq!(Currency::new(" BHD ").unwrap().minor_units(), 3);
    }

    #[test]
    fn an_unknown_currency_code_is_refused() {
        assert!(Currency::new("EURO").is_err());
        assert!(Currency::new("ZZZ").is_err());
        assert!(Currency::new("").is_err());
    }

    #[test]
    fn adding_two_currencies_is_an_error() {
        let a = Money::new(dec("1.00"), Currency::EUR);
        let b = Money::new(dec("1.00"), Currency::USD);
        assert_eq!(a.checked_add(&b), Err(MoneyError::CurrencyMismatch(Currency::EUR, Currency::USD)));
    }

    #[test]
    fn fixed_formatting_pads_to_minor_units_but_never_drops_digits() {
        let jpy = Currency::new("JPY").unwrap();
        assert_eq!(Money::new(dec("1500"), jpy).to_fixed(), "1500");
        assert_eq!(Money::new(dec("-12.3"), Currency::EUR).to_fixed(), "-12.30");
        assert_eq!(Money::new(dec("0.12345"), Currency::EUR).to_fixed(), "0.12345");
    }

    #[test]
    fn rounding_is_half_to_even_at_the_currency_precision() {
        assert_eq!(Money::new(dec("2.345"), Currency::EUR).round().amount(), dec("2.34"));
        assert_eq!(Money::new(dec("2.355"), Currency::EUR).round().amount(), dec("2.36"));
    }

    #[test]
    fn money_serialises_the_amount_as_a_string() {
        let m = Money::new(dec("-12.34"), Currency::EUR);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"amount":"-12.34","currency":"EUR"}"#);
        let back: Money = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
    }
}
