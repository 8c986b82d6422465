//! Ports: what the workflows need from persistence, as small role traits, and the blob port for raw
//! files. Each port has an embedded adapter (SQLite, a local folder) and an AWS adapter; one
//! conformance suite (`tests/it/store.rs`) runs unchanged against every adapter.
//!
//! Tenant isolation is structural: every method takes the tenant, every key and every query
//! carries it, and an object of another tenant is reported as not found.

pub mod blobs;
#[cfg(feature = "aws")]
pub mod dynamo;
pub mod keys;
pub mod model;
pub mod recon;
pub mod reports;
#[cfg(feature = "aws")]
pub mod s3;
pub mod sqlite;
mod sqlite_checkpoint;
mod sqlite_recon;
mod sqlite_reports;

use async_trait::async_trait;

use crate::domain::Record;
pub use blobs::{BlobError, BlobKey, Blobs, FsBlobs};
#[cfg(feature = "aws")]
pub use dynamo::DynamoStore;
pub use keys::{ApiKey, KeyHash, KeyStore, SqliteKeyStore};
pub use model::{
    Account, ItemStatus, Page, RecordImportOutcome, RecordQuery, StatementImport, StoredRecord, StoredTransaction,
    TenantId, TransactionQuery,
};
pub use recon::{
    import_failure_reason, is_import_failure, AuditEvent, Discrepancy, DiscrepancyKind, DiscrepancyStore, MatchAction,
    MatchState, ReconStore, Resolution, ResolutionAction, RuleStore, RuleVersion, Run, RunOutcome, RunStatus,
    StoredMatch,
};
pub use reports::{ReportJob, ReportStatus, ReportStore};
#[cfg(feature = "aws")]
pub use s3::{PresignedRequest, S3Blobs};
pub use sqlite::SqliteStore;

/// Largest page any listing returns.
pub const MAX_PAGE: usize = 1000;
/// Page size when the caller gives none.
pub const DEFAULT_PAGE: usize = 100;

/// Clamps a requested page size to `1..=MAX_PAGE` (0 means the default).
pub fn page_size(limit: usize) -> usize {
    if limit == 0 {
        DEFAULT_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object for this tenant.
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of object.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The change conflicts with the stored state (already exists, already matched, locked,
    /// modified concurrently).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is invalid (bad cursor, currency mismatch).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The backing store is not set up (missing table); the message says how to create it.
    #[error("{0}")]
    NotInitialised(String),
    /// The backend failed (I/O, database error); retrying may help.
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(e))
    }
}

/// Bank accounts.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Stores a new account; `Conflict` if the id exists.
    async fn create_account(&self, tenant: &TenantId, account: &Account) -> Result<(), StoreError>;
    /// One account.
    async fn get_account(&self, tenant: &TenantId, id: &str) -> Result<Account, StoreError>;
    /// The tenant's accounts, by id.
    async fn list_accounts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError>;
}

/// Imported statements and their bank transactions.
#[async_trait]
pub trait LedgerStore: Send + Sync {
    /// The import of this exact file into this account, if it happened.
    async fn find_import(
        &self,
        tenant: &TenantId,
        account_id: &str,
        file_sha256: &str,
    ) -> Result<Option<StatementImport>, StoreError>;

    /// Atomically stores an import and those of `transactions` whose ids are not stored yet; all
    /// or nothing. Returns the stored import with `transactions_imported` and
    /// `duplicates_skipped` counted by the store. If the import itself already exists (the same
    /// file again, possibly concurrently), nothing changes and the existing import is returned
    /// with `transactions_imported = 0`.
    async fn save_import(
        &self,
        tenant: &TenantId,
        import: &StatementImport,
        transactions: &[StoredTransaction],
    ) -> Result<StatementImport, StoreError>;

    /// An account's imports, oldest period first.
    async fn list_imports(&self, tenant: &TenantId, account_id: &str) -> Result<Vec<StatementImport>, StoreError>;

    /// An account's transactions by booking date then id, filtered and paginated.
    async fn list_transactions(
        &self,
        tenant: &TenantId,
        account_id: &str,
        query: &TransactionQuery,
    ) -> Result<Page<StoredTransaction>, StoreError>;

    /// One transaction by its stored id.
    async fn get_transaction(&self, tenant: &TenantId, id: &str) -> Result<StoredTransaction, StoreError>;
}

/// Records from the books.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Inserts new records and updates changed unreconciled ones, all or nothing. A change to a
    /// reconciled record is a `Conflict` and nothing is written.
    async fn upsert_records(&self, tenant: &TenantId, records: &[Record]) -> Result<RecordImportOutcome, StoreError>;
    /// One record by the books' id.
    async fn get_record(&self, tenant: &TenantId, id: &str) -> Result<StoredRecord, StoreError>;
    /// Records by date then id, filtered and paginated.
    async fn list_records(&self, tenant: &TenantId, query: &RecordQuery) -> Result<Page<StoredRecord>, StoreError>;
}

/// Everything the workflows need from a store.
pub trait Store: AccountStore + LedgerStore + RecordStore + ReconStore + DiscrepancyStore + RuleStore {}

impl<T: AccountStore + LedgerStore + RecordStore + ReconStore + DiscrepancyStore + RuleStore> Store for T {}

/// Splits a `date~id` keyset cursor.
pub(crate) fn split_cursor(cursor: &str) -> Result<(String, String), StoreError> {
    cursor
        .split_once('~')
        .filter(|(d, id)| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok() && !id.is_empty())
        .map(|(d, id)| (d.to_string(), id.to_string()))
        .ok_or_else(|| StoreError::Invalid(format!("invalid cursor {cursor:?}")))
}
