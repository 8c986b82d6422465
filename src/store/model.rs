//! What the stores keep: tenants, accounts, imported statements, bank transactions with their
//! reconciliation status, and the books' records. Every stored object belongs to one tenant.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{BankTransaction, Currency, Money, Record};
use crate::parse::Format;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {rule}")]
pub struct InvalidId {
    /// Which kind of identifier.
    pub what: &'static str,
    /// The text given.
    pub value: String,
    /// What an identifier must look like.
    pub rule: &'static str,
}

/// The tenant every stored object belongs to. One API key belongs to exactly one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

impl TenantId {
    /// 1–64 characters of ASCII letters, digits, `-` and `_`: safe inside file paths, S3 keys and
    /// DynamoDB key prefixes.
    pub fn new(id: &str) -> Result<Self, InvalidId> {
        let ok =
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(TenantId(id.to_string()))
        } else {
            Err(InvalidId { what: "tenant id", value: id.into(), rule: "1-64 of A-Z a-z 0-9 - _" })
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TenantId::new(&s)
    }
}

impl From<TenantId> for String {
    fn from(t: TenantId) -> String {
        t.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A new id with a readable prefix (`acc_`, `stm_`...) and 20 hex characters of randomness.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).unwrap_or_else(|_| {
        // No OS randomness (never seen on supported platforms): fall back to time + counter.
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default().to_be_bytes();
        bytes.copy_from_slice(&Sha256::digest(nanos)[..10]);
    });
    format!("{prefix}_{}", hex(&bytes))
}

/// A deterministic id: the same inputs always give the same id. Used where idempotence needs it
/// (a statement line's stored id derives from its account and its bank id).
pub fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0x1f]);
    }
    format!("{prefix}_{}", hex(&h.finalize()[..10]))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A bank account whose statements are reconciled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// `acc_...`
    pub id: String,
    /// Display name.
    pub name: String,
    /// The account's currency; statements in another currency are refused.
    pub currency: Currency,
    /// Local account number, when known.
    pub account_number: Option<String>,
    /// IBAN, when known.
    pub iban: Option<String>,
    /// Balance before the first imported statement, when known.
    pub opening_balance: Option<Money>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Where a bank transaction or a record stands in reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Imported, not yet reconciled.
    Pending,
    /// In a live match.
    Matched,
    /// A reconciliation found no counterpart.
    Unmatched,
    /// In a match whose amounts differ, or flagged by a discrepancy.
    Discrepancy,
    /// Part of a completed (locked) reconciliation.
    Reconciled,
}

impl ItemStatus {
    /// The snake_case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemStatus::Pending => "pending",
            ItemStatus::Matched => "matched",
            ItemStatus::Unmatched => "unmatched",
            ItemStatus::Discrepancy => "discrepancy",
            ItemStatus::Reconciled => "reconciled",
        }
    }
}

impl std::str::FromStr for ItemStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => ItemStatus::Pending,
            "matched" => ItemStatus::Matched,
            "unmatched" => ItemStatus::Unmatched,
            "discrepancy" => ItemStatus::Discrepancy,
            "reconciled" => ItemStatus::Reconciled,
            _ => return Err(format!("unknown status {s:?} (pending, matched, unmatched, discrepancy, reconciled)")),
        })
    }
}

/// One imported statement file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementImport {
    /// `stm_...`, derived from the account and the file's SHA-256 (the same file is one import).
    pub id: String,
    /// The account it was imported into.
    pub account_id: String,
    /// SHA-256 of the raw file, hex.
    pub file_sha256: String,
    /// The uploaded file's name.
    pub file_name: String,
    /// The format it was read as.
    pub format: Format,
    /// Where the raw file is kept in blobs.
    pub blob_key: String,
    /// First day covered.
    pub start_date: Option<NaiveDate>,
    /// Last day covered.
    pub end_date: Option<NaiveDate>,
    /// Opening balance of the first statement in the file.
    pub opening_balance: Option<Money>,
    /// Closing balance of the last statement in the file.
    pub closing_balance: Option<Money>,
    /// Lines added by this import.
    pub transactions_imported: usize,
    /// Lines already present (overlapping exports) and skipped.
    pub duplicates_skipped: usize,
    /// When it was imported.
    pub imported_at: DateTime<Utc>,
}

/// A bank transaction as stored: the parsed line plus where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTransaction {
    /// `txn_...`, derived from the account and the line's bank id or fingerprint.
    pub id: String,
    /// The account.
    pub account_id: String,
    /// The statement import that brought it in.
    pub statement_id: String,
    /// The line as parsed (its `id` is the statement's own id: `external_id` in the API).
    pub transaction: BankTransaction,
    /// Reconciliation status.
    pub status: ItemStatus,
    /// The live match it belongs to.
    pub match_id: Option<String>,
}

/// A record from the books as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRecord {
    /// The record (its `id` is the books' own id, unique per tenant).
    pub record: Record,
    /// Reconciliation status.
    pub status: ItemStatus,
    /// The live match it belongs to.
    pub match_id: Option<String>,
    /// Incremented on every change (optimistic concurrency).
    pub version: u64,
}

/// One page of a listing. `cursor` is opaque; pass it back to get the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page.
    pub cursor: Option<String>,
}

/// Filters for listing an account's transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionQuery {
    /// Only this status.
    pub status: Option<ItemStatus>,
    /// Booked on or after.
    pub from: Option<NaiveDate>,
    /// Booked on or before.
    pub to: Option<NaiveDate>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Page size (capped by the store).
    pub limit: usize,
}

/// Filters for listing records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordQuery {
    /// Only this status.
    pub status: Option<ItemStatus>,
    /// Only this kind.
    pub kind: Option<crate::domain::RecordKind>,
    /// Dated on or after.
    pub from: Option<NaiveDate>,
    /// Dated on or before.
    pub to: Option<NaiveDate>,
    /// Where the previous page ended.
    pub cursor: Option<String>,
    /// Page size (capped by the store).
    pub limit: usize,
}

/// What a bulk record import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordImportOutcome {
    /// New records.
    pub imported: usize,
    /// Existing, unreconciled records whose content changed.
    pub updated: usize,
    /// Records identical to what is stored.
    pub duplicates_skipped: usize,
}
