//! Ground truth: which bank transactions and records a correct reconciliation groups together.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::domain::{BankTransaction, Currency, Record};

/// What kind of correspondence a truth group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// One bank line pays one record for the same amount.
    OneToOne,
    /// One bank line pays one record, less a bank fee or a small short payment.
    Fee,
    /// One bank credit pays several invoices (a customer's combined payment, a processor payout,
    /// a lockbox deposit).
    Batch,
    /// One invoice paid by several bank movements (instalments, partial payments).
    Split,
    /// A check written to a supplier, cashed and identified by its number.
    Check,
    /// A transfer between the business's own accounts.
    Transfer,
}

impl GroupKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [GroupKind; 6] = [
        GroupKind::OneToOne,
        GroupKind::Fee,
        GroupKind::Batch,
        GroupKind::Split,
        GroupKind::Check,
        GroupKind::Transfer,
    ];

    /// The snake_case name used in JSON and tables.
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupKind::OneToOne => "one_to_one",
            GroupKind::Fee => "fee",
            GroupKind::Batch => "batch",
            GroupKind::Split => "split",
            GroupKind::Check => "check",
            GroupKind::Transfer => "transfer",
        }
    }
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bank transactions and records that belong together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthGroup {
    /// Ids of the bank transactions.
    pub bank_ids: Vec<String>,
    /// Ids of the records.
    pub record_ids: Vec<String>,
    /// What kind of correspondence it is.
    pub kind: GroupKind,
    /// Bank total minus records total, as a matcher's `difference` should report it: zero except
    /// for [`GroupKind::Fee`], where it is minus the fee or short payment.
    #[serde(with = "rust_decimal::serde::str")]
    pub difference: Decimal,
}

/// A generated period: a bank statement's lines, the books' records, and the truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// The account's currency.
    pub currency: Currency,
    /// The account the statement is for.
    pub account: String,
    /// First business day of the period.
    pub start: NaiveDate,
    /// Last business day of the period.
    pub end: NaiveDate,
    /// The statement's lines in booking order, with bank ids as a parser would give them.
    pub bank: Vec<BankTransaction>,
    /// The books' records in date order.
    pub records: Vec<Record>,
    /// The groups a correct reconciliation finds; anything in no group should stay unmatched.
    pub truth: Vec<TruthGroup>,
}
