//! Bank side of the domain: statements, their accounts and their transactions.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::{Currency, Money};

/// Where a transaction's id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdSource {
    /// The statement's own id (OFX FITID, CAMT AcctSvcrRef/NtryRef, MT940 bank reference, BAI2
    /// bank reference, a CSV id column).
    Bank,
    /// The file had no id: a stable fingerprint of account, date, amount, normalised text and the
    /// ordinal among identical lines, so that re-importing the same lines yields the same ids.
    Fingerprint,
}

/// One part of a batch entry (CAMT `TxDtls`, a lockbox deposit's items): what the bank knows about
/// each payment inside a single booked amount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TransactionDetail {
    /// Amount of this part, when the bank gives it.
    pub amount: Option<Money>,
    /// End-to-end id, remittance reference or invoice number of this part.
    pub reference: Option<String>,
    /// Counterparty name.
    pub payee: Option<String>,
    /// Counterparty account (IBAN or local number).
    pub counterparty_account: Option<String>,
    /// Unstructured remittance text.
    pub description: Option<String>,
}

/// A line on a bank statement, as the bank booked it.
///
/// One `BankTransaction` is one booked amount. For batch entries (CAMT `Ntry` with several
/// `TxDtls`) the entry is the transaction and its parts are kept in [`details`](Self::details), so
/// the statement balances and the matcher can still see every part.
///
/// Text is held as `Box<str>` and the parts as a boxed slice: they are set once, and a large
/// statement holds millions of lines, so each word saved per line is memory the parser does not
/// have to touch (the size is pinned by a test).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankTransaction {
    /// The statement's own id or a fingerprint (see [`IdSource`]); unique within its account.
    pub id: Box<str>,
    /// Where [`id`](Self::id) comes from.
    pub id_source: IdSource,
    /// Booking (posting) date.
    pub booking_date: NaiveDate,
    /// Value date, when the file gives one that differs from the booking date.
    pub value_date: Option<NaiveDate>,
    /// Signed amount: money into the account is positive.
    pub amount: Money,
    /// Free text as the bank shows it.
    pub description: Box<str>,
    /// Counterparty / payee name.
    pub payee: Option<Box<str>>,
    /// Counterparty account (IBAN or local number).
    pub counterparty_account: Option<Box<str>>,
    /// End-to-end id or remittance reference.
    pub reference: Option<Box<str>>,
    /// Check (cheque) number.
    pub check_number: Option<Box<str>>,
    /// The bank's transaction type code (OFX TRNTYPE, MT940 `N...` code, BAI2 type code, CAMT
    /// domain/family code).
    pub bank_code: Option<Box<str>>,
    /// The parts of a batch entry; empty for an ordinary line.
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub details: Box<[TransactionDetail]>,
}

impl BankTransaction {
    /// A transaction with only the essentials; the id is filled in by the parser (bank id) or by
    /// [`crate::parse`] (fingerprint) when the file has none.
    pub fn new(booking_date: NaiveDate, amount: Money) -> Self {
        BankTransaction {
            id: Box::default(),
            id_source: IdSource::Fingerprint,
            booking_date,
            value_date: None,
            amount,
            description: Box::default(),
            payee: None,
            counterparty_account: None,
            reference: None,
            check_number: None,
            bank_code: None,
            details: Box::default(),
        }
    }

    /// Sets the bank's own id (ignored when blank).
    pub fn with_bank_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() && id.trim().len() == id.len() {
            // Most ids come without blanks: the string given is kept rather than copied.
            self.id = id.into_boxed_str();
            self.id_source = IdSource::Bank;
        } else {
            self.set_bank_id(&id);
        }
        self
    }

    /// Sets the bank's own id in place (ignored when blank): a parser filling a line it has
    /// already built does not move the line through [`Self::with_bank_id`].
    pub fn set_bank_id(&mut self, id: &str) {
        let trimmed = id.trim();
        if !trimmed.is_empty() {
            self.id = trimmed.into();
            self.id_source = IdSource::Bank;
        }
    }
}

/// How a statement's account is identified. `id` is what people see (account number, IBAN, or
/// `BIC/number` as MT940 writes it); the other fields are kept when the file gives them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AccountIdent {
    /// The account identifier as written in the file.
    pub id: String,
    /// IBAN, when given separately or when `id` is one.
    pub iban: Option<String>,
    /// BIC of the account's bank.
    pub bic: Option<String>,
    /// Bank / routing / sort code (OFX BANKID, BAI2 originator).
    pub bank_id: Option<String>,
    /// Account name or owner, when given.
    pub name: Option<String>,
    /// Account type as the file states it (checking, savings, credit card...).
    pub kind: Option<String>,
}

/// One statement: an account's transactions over a period, with the balances the bank states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The account.
    pub account: AccountIdent,
    /// The statement's currency (`XXX` when the file does not say and none was configured).
    pub currency: Currency,
    /// The statement's own number or id (MT940 `:28C:`, CAMT `Stmt/Id`), when given.
    pub statement_id: Option<String>,
    /// First day covered (from the file, else the earliest transaction).
    pub start_date: Option<NaiveDate>,
    /// Last day covered (from the file, else the latest transaction).
    pub end_date: Option<NaiveDate>,
    /// Opening booked balance.
    pub opening_balance: Option<Money>,
    /// Closing booked balance.
    pub closing_balance: Option<Money>,
    /// Closing available balance, when given.
    pub available_balance: Option<Money>,
    /// The lines, in file order.
    pub transactions: Vec<BankTransaction>,
}

impl Statement {
    /// An empty statement for `account` in `currency`.
    pub fn new(account: AccountIdent, currency: Currency) -> Self {
        Statement {
            account,
            currency,
            statement_id: None,
            start_date: None,
            end_date: None,
            opening_balance: None,
            closing_balance: None,
            available_balance: None,
            transactions: Vec::new(),
        }
    }

    /// Sum of all transaction amounts; `None` if it overflows `Decimal` (only absurd input can).
    pub fn checked_total(&self) -> Option<Decimal> {
        self.transactions.iter().try_fold(Decimal::ZERO, |acc, t| acc.checked_add(t.amount.amount()))
    }

    /// Sum of all transaction amounts, saturating at the largest `Decimal` on overflow.
    pub fn total(&self) -> Decimal {
        self.checked_total().unwrap_or(Decimal::MAX)
    }

    /// Whether opening + sum(lines) = closing, where the file gives both balances.
    pub fn balance_check(&self) -> BalanceCheck {
        match (&self.opening_balance, &self.closing_balance) {
            (Some(open), Some(close)) => {
                let Some(computed) = self.checked_total().and_then(|t| t.checked_add(open.amount())) else {
                    return BalanceCheck::NotApplicable;
                };
                if computed == close.amount() {
                    BalanceCheck::Balanced
                } else {
                    BalanceCheck::Mismatch { computed: Money::new(computed, close.currency()), stated: *close }
                }
            }
            _ => BalanceCheck::NotApplicable,
        }
    }
}

/// Outcome of checking a statement's lines against its balances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum BalanceCheck {
    /// Opening + lines = closing.
    Balanced,
    /// The file gives both balances and the lines do not add up; carried forward as a `balance`
    /// discrepancy when imported.
    Mismatch {
        /// Opening + sum of lines.
        computed: Money,
        /// The closing balance the file states.
        stated: Money,
    },
    /// The file lacks an opening or a closing balance.
    NotApplicable,
}

impl fmt::Display for BalanceCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BalanceCheck::Balanced => f.write_str("balanced"),
            BalanceCheck::Mismatch { computed, stated } => write!(
                f,
                "MISMATCH: opening + lines = {computed}, closing balance says {stated} (difference {})",
                Money::new(stated.amount() - computed.amount(), stated.currency())
            ),
            BalanceCheck::NotApplicable => f.write_str("not checked (file gives no opening or closing balance)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bank_transaction_stays_at_160_bytes() {
        // A million-line statement is a million of these: growing the struct slows every parser.
        assert_eq!(std::mem::size_of::<BankTransaction>(), 160);
    }
}
