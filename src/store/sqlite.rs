//! The embedded store: one SQLite file per data directory, a real relational schema (so finance
//! users can query their data with SQL), versioned migrations, WAL mode.
//!
//! Amounts are stored as exact decimal TEXT (`'-12.34'`) beside their currency; SQL arithmetic on
//! them should `CAST(amount AS NUMERIC)` knowingly. Calls run on tokio's blocking pool so the async
//! runtime is never blocked by disk I/O.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use rust_decimal::Decimal;

use super::model::{
    Account, ItemStatus, Page, RecordImportOutcome, RecordQuery, StatementImport, StoredRecord, StoredTransaction,
    TenantId, TransactionQuery,
};
use super::sqlite_checkpoint::Checkpointer;
use super::{page_size, split_cursor, AccountStore, LedgerStore, RecordStore, StoreError};
use crate::domain::{BankTransaction, Currency, IdSource, Money, Record, RecordKind};
use crate::parse::Format;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE accounts (
    tenant          TEXT NOT NULL,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    currency        TEXT NOT NULL,
    account_number  TEXT,
    iban            TEXT,
    opening_balance TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE TABLE statement_imports (
    tenant                TEXT NOT NULL,
    id                    TEXT NOT NULL,
    account_id            TEXT NOT NULL,
    file_sha256           TEXT NOT NULL,
    file_name             TEXT NOT NULL,
    format                TEXT NOT NULL,
    blob_key              TEXT NOT NULL,
    start_date            TEXT,
    end_date              TEXT,
    currency              TEXT NOT NULL,
    opening_balance       TEXT,
    closing_balance       TEXT,
    transactions_imported INTEGER NOT NULL,
    duplicates_skipped    INTEGER NOT NULL,
    imported_at           TEXT NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, account_id, file_sha256),
    FOREIGN KEY (tenant, account_id) REFERENCES accounts (tenant, id)
);
CREATE TABLE bank_transactions (
    tenant               TEXT NOT NULL,
    id                   TEXT NOT NULL,
    account_id           TEXT NOT NULL,
    statement_id         TEXT NOT NULL,
    external_id          TEXT NOT NULL,
    id_source            TEXT NOT NULL,
    booking_date         TEXT NOT NULL,
    value_date           TEXT,
    amount               TEXT NOT NULL,
    currency             TEXT NOT NULL,
    description          TEXT NOT NULL,
    payee                TEXT,
    counterparty_account TEXT,
    reference            TEXT,
    check_number         TEXT,
    bank_code            TEXT,
    details_json         TEXT,
    status               TEXT NOT NULL,
    match_id             TEXT,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, account_id, external_id),
    FOREIGN KEY (tenant, account_id) REFERENCES accounts (tenant, id),
    FOREIGN KEY (tenant, statement_id) REFERENCES statement_imports (tenant, id)
);
CREATE INDEX bank_transactions_by_date ON bank_transactions (tenant, account_id, booking_date, id);
CREATE INDEX bank_transactions_by_status ON bank_transactions (tenant, account_id, status, booking_date, id);
CREATE TABLE records (
    tenant       TEXT NOT NULL,
    id           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    date         TEXT NOT NULL,
    due_date     TEXT,
    amount       TEXT NOT NULL,
    currency     TEXT NOT NULL,
    counterparty TEXT,
    reference    TEXT,
    description  TEXT,
    status       TEXT NOT NULL,
    match_id     TEXT,
    version      INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX records_by_date ON records (tenant, date, id);
CREATE INDEX records_by_status ON records (tenant, status, date, id);
"#,
    r#"
CREATE TABLE runs (
    tenant       TEXT NOT NULL,
    id           TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    start_date   TEXT NOT NULL,
    end_date     TEXT NOT NULL,
    status       TEXT NOT NULL,
    summary_json TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    finished_at  TEXT,
    error        TEXT,
    version      INTEGER NOT NULL,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, account_id) REFERENCES accounts (tenant, id)
);
CREATE INDEX runs_by_account ON runs (tenant, account_id, created_at);
CREATE TABLE matches (
    tenant           TEXT NOT NULL,
    id               TEXT NOT NULL,
    run_id           TEXT,
    account_id       TEXT NOT NULL,
    state            TEXT NOT NULL,
    confidence       REAL NOT NULL,
    method           TEXT NOT NULL,
    rule             TEXT,
    difference       TEXT NOT NULL,
    explanation_json TEXT NOT NULL,
    note             TEXT,
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    version          INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX matches_by_run ON matches (tenant, run_id, id);
CREATE INDEX matches_by_account_state ON matches (tenant, account_id, state);
-- Which items a match groups (for every match, live or not). Claims themselves are the items'
-- `match_id` columns, set only while the match is live.
CREATE TABLE match_items (
    tenant    TEXT NOT NULL,
    match_id  TEXT NOT NULL,
    item_kind TEXT NOT NULL CHECK (item_kind IN ('transaction', 'record')),
    item_id   TEXT NOT NULL,
    PRIMARY KEY (tenant, match_id, item_kind, item_id)
);
CREATE TABLE audit_events (
    tenant      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    action      TEXT NOT NULL,
    before_json TEXT NOT NULL,
    after_json  TEXT NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE INDEX audit_by_entity ON audit_events (tenant, entity_id, seq);
"#,
    r#"
CREATE TABLE discrepancies (
    tenant               TEXT NOT NULL,
    id                   TEXT NOT NULL,
    account_id           TEXT NOT NULL,
    run_id               TEXT,
    kind                 TEXT NOT NULL,
    amount               TEXT NOT NULL,
    transaction_ids_json TEXT NOT NULL,
    record_ids_json      TEXT NOT NULL,
    match_id             TEXT,
    date                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    proposal             TEXT,
    status               TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    resolution_json      TEXT,
    created_at           TEXT NOT NULL,
    version              INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX discrepancies_by_account ON discrepancies (tenant, account_id, status, date, id);
CREATE INDEX discrepancies_by_status ON discrepancies (tenant, status, date, id);
-- The run whose completion locked a match.
ALTER TABLE matches ADD COLUMN reconciled_in TEXT;
"#,
    r#"
CREATE TABLE rule_versions (
    tenant     TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    source     TEXT NOT NULL,
    active     INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, name, version)
);
CREATE UNIQUE INDEX one_active_rule ON rule_versions (tenant, name) WHERE active = 1;
CREATE TABLE memories (
    tenant  TEXT NOT NULL PRIMARY KEY,
    json    BLOB NOT NULL,
    version INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE api_keys (
    key_hash   TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    tenant     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, id);
"#,
    r#"
CREATE TABLE report_jobs (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    start_date  TEXT NOT NULL,
    end_date    TEXT NOT NULL,
    format      TEXT NOT NULL,
    status      TEXT NOT NULL,
    blob_key    TEXT,
    error       TEXT,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    PRIMARY KEY (tenant, id)
);
"#,
    // A match's items are found by the key alone: kept in the key's own tree (no rowid table
    // beside it), a finished run writes one tree per item instead of two.
    r#"
CREATE TABLE match_items_by_key (
    tenant    TEXT NOT NULL,
    match_id  TEXT NOT NULL,
    item_kind TEXT NOT NULL CHECK (item_kind IN ('transaction', 'record')),
    item_id   TEXT NOT NULL,
    PRIMARY KEY (tenant, match_id, item_kind, item_id)
) WITHOUT ROWID;
INSERT INTO match_items_by_key SELECT tenant, match_id, item_kind, item_id FROM match_items;
DROP TABLE match_items;
ALTER TABLE match_items_by_key RENAME TO match_items;
"#,
];

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
    /// Checkpoints the log of a database file (see [`Checkpointer`]); `None` in memory.
    checkpointer: Option<Arc<Checkpointer>>,
}

/// Read connections of a database file. WAL lets readers run beside the one writer, so reads
/// (most API requests) do not queue behind each other on the writer's lock. An in-memory
/// database has no file to share: its reads use the writer's connection.
struct Readers {
    path: Option<std::path::PathBuf>,
    idle: Mutex<Vec<Connection>>,
}

/// Idle read connections kept open; more are opened under load and closed afterwards.
const IDLE_READERS: usize = 8;

impl Readers {
    fn open(&self, path: &Path) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(backend)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

pub(super) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

/// One row of `table` by tenant and id, mapped by `map`; `NotFound` names `what` when absent.
pub(super) fn get_by_id<T>(
    conn: &Connection,
    table: &str,
    what: &'static str,
    tenant: &str,
    id: &str,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    conn.query_row(&format!("SELECT * FROM {table} WHERE tenant = ?1 AND id = ?2"), params![tenant, id], map)
        .optional()
        .map_err(backend)?
        .ok_or(StoreError::NotFound { what, id: id.to_string() })?
}

pub(super) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("stored {what} {value:?} is not valid").into())
}

impl SqliteStore {
    /// Opens (creating if needed) `bankrec.sqlite3` in `dir` and migrates it.
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(StoreError::backend)?;
        Self::open(&dir.join("bankrec.sqlite3"))
    }

    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
        // 512 MiB of page cache for the writer (the default is 2 MiB): storing a run claims
        // tens of thousands of lines and records in one transaction, and a smaller cache spills
        // changed pages to the log and re-reads the same index pages all through it.
        conn.pragma_update(None, "cache_size", -524_288).map_err(backend)?;
        // The log is copied into the file by a thread of its own, not inside a commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(backend)?;
        // A log grown by a burst of writes is cut back to this size once it starts over.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024).map_err(backend)?;
        let mut store = Self::init(conn, Some(path.to_path_buf()))?;
        store.checkpointer = Some(Arc::new(Checkpointer::start(path)?));
        Ok(store)
    }

    /// How many times the log has been copied into the database file so far (0 in memory).
    pub fn wal_checkpoints(&self) -> u64 {
        self.checkpointer.as_ref().map_or(0, |c| c.checkpoints())
    }

    /// A private in-memory database (tests, dry runs).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(backend)?, None)
    }

    fn init(conn: Connection, path: Option<std::path::PathBuf>) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON").map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(backend)?;
        let readers = Arc::new(Readers { path, idle: Mutex::new(Vec::new()) });
        let store = SqliteStore { conn: Arc::new(Mutex::new(conn)), readers, checkpointer: None };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(backend)?;
        let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::NotInitialised(format!(
                "the database was written by a newer bankrec (schema {version}, this build knows {})",
                MIGRATIONS.len()
            )));
        }
        for sql in &MIGRATIONS[version..] {
            tx.execute_batch(sql).map_err(backend)?;
        }
        tx.pragma_update(None, "user_version", MIGRATIONS.len()).map_err(backend)?;
        tx.commit().map_err(backend)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Backend("the SQLite connection lock is poisoned".into()))
    }

    /// Runs `f` with the connection on the blocking pool.
    pub(super) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        let checkpointer = self.checkpointer.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard =
                conn.lock().map_err(|_| StoreError::Backend("the SQLite connection lock is poisoned".into()))?;
            let out = f(&mut guard);
            drop(guard);
            if let Some(c) = checkpointer {
                c.nudge();
            }
            out
        })
        .await
        .map_err(StoreError::backend)?
    }

    /// Runs the read-only `f` on the blocking pool, on a read connection of its own when the
    /// database is a file (see [`Readers`]).
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let Some(path) = self.readers.path.clone() else {
            return self.with(f).await;
        };
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || {
            let mut conn = readers.open(&path)?;
            let out = f(&mut conn);
            readers.give_back(conn);
            out
        })
        .await
        .map_err(StoreError::backend)?
    }
}

fn money_text(m: &Option<Money>) -> Option<String> {
    m.map(|m| m.amount().to_string())
}

fn parse_money(amount: Option<String>, currency: Currency) -> Result<Option<Money>, StoreError> {
    amount
        .map(|a| Decimal::from_str(&a).map(|d| Money::new(d, currency)).map_err(|_| corrupt("amount", &a)))
        .transpose()
}

pub(super) fn parse_date(s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| corrupt("date", s))
}

fn parse_opt_date(s: Option<String>) -> Result<Option<NaiveDate>, StoreError> {
    s.as_deref().map(parse_date).transpose()
}

fn parse_currency(s: &str) -> Result<Currency, StoreError> {
    Currency::new(s).map_err(|_| corrupt("currency", s))
}

pub(super) fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).map_err(|_| corrupt("timestamp", s))
}

fn parse_status(s: &str) -> Result<ItemStatus, StoreError> {
    ItemStatus::from_str(s).map_err(|_| corrupt("status", s))
}

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Result<Account, StoreError>> {
    let currency: String = row.get("currency")?;
    let opening: Option<String> = row.get("opening_balance")?;
    let created: String = row.get("created_at")?;
    let id: String = row.get("id")?;
    let name: String = row.get("name")?;
    let account_number: Option<String> = row.get("account_number")?;
    let iban: Option<String> = row.get("iban")?;
    Ok((|| {
        let currency = parse_currency(&currency)?;
        Ok(Account {
            id,
            name,
            currency,
            account_number,
            iban,
            opening_balance: parse_money(opening, currency)?,
            created_at: parse_time(&created)?,
        })
    })())
}

fn import_from_row(row: &Row<'_>) -> rusqlite::Result<Result<StatementImport, StoreError>> {
    let currency: String = row.get("currency")?;
    let format: String = row.get("format")?;
    let start: Option<String> = row.get("start_date")?;
    let end: Option<String> = row.get("end_date")?;
    let opening: Option<String> = row.get("opening_balance")?;
    let closing: Option<String> = row.get("closing_balance")?;
    let imported_at: String = row.get("imported_at")?;
    let id: String = row.get("id")?;
    let account_id: String = row.get("account_id")?;
    let file_sha256: String = row.get("file_sha256")?;
    let file_name: String = row.get("file_name")?;
    let blob_key: String = row.get("blob_key")?;
    let transactions_imported: i64 = row.get("transactions_imported")?;
    let duplicates_skipped: i64 = row.get("duplicates_skipped")?;
    Ok((|| {
        let currency = parse_currency(&currency)?;
        Ok(StatementImport {
            id,
            account_id,
            file_sha256,
            file_name,
            format: Format::from_str(&format).map_err(|_| corrupt("format", &format))?,
            blob_key,
            start_date: parse_opt_date(start)?,
            end_date: parse_opt_date(end)?,
            opening_balance: parse_money(opening, currency)?,
            closing_balance: parse_money(closing, currency)?,
            transactions_imported: transactions_imported as usize,
            duplicates_skipped: duplicates_skipped as usize,
            imported_at: parse_time(&imported_at)?,
        })
    })())
}

fn transaction_from_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredTransaction, StoreError>> {
    let currency: String = row.get("currency")?;
    let amount: String = row.get("amount")?;
    let booking: String = row.get("booking_date")?;
    let value: Option<String> = row.get("value_date")?;
    let id_source: String = row.get("id_source")?;
    let details: Option<String> = row.get("details_json")?;
    let status: String = row.get("status")?;
    let id: String = row.get("id")?;
    let account_id: String = row.get("account_id")?;
    let statement_id: String = row.get("statement_id")?;
    let external_id: String = row.get("external_id")?;
    let description: String = row.get("description")?;
    let payee: Option<String> = row.get("payee")?;
    let counterparty_account: Option<String> = row.get("counterparty_account")?;
    let reference: Option<String> = row.get("reference")?;
    let check_number: Option<String> = row.get("check_number")?;
    let bank_code: Option<String> = row.get("bank_code")?;
    let match_id: Option<String> = row.get("match_id")?;
    Ok((|| {
        let currency = parse_currency(&currency)?;
        let amount = parse_money(Some(amount), currency)?.unwrap_or(Money::zero(currency));
        let mut t = BankTransaction::new(parse_date(&booking)?, amount);
        t.id = external_id.into();
        t.id_source = if id_source == "bank" { IdSource::Bank } else { IdSource::Fingerprint };
        t.value_date = parse_opt_date(value)?;
        t.description = description.into();
        t.payee = payee.map(Into::into);
        t.counterparty_account = counterparty_account.map(Into::into);
        t.reference = reference.map(Into::into);
        t.check_number = check_number.map(Into::into);
        t.bank_code = bank_code.map(Into::into);
        if let Some(d) = details {
            t.details = serde_json::from_str(&d).map_err(|_| corrupt("details", &d))?;
        }
        Ok(StoredTransaction { id, account_id, statement_id, transaction: t, status: parse_status(&status)?, match_id })
    })())
}

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredRecord, StoreError>> {
    let currency: String = row.get("currency")?;
    let amount: String = row.get("amount")?;
    let date: String = row.get("date")?;
    let due: Option<String> = row.get("due_date")?;
    let kind: String = row.get("kind")?;
    let status: String = row.get("status")?;
    let id: String = row.get("id")?;
    let counterparty: Option<String> = row.get("counterparty")?;
    let reference: Option<String> = row.get("reference")?;
    let description: Option<String> = row.get("description")?;
    let match_id: Option<String> = row.get("match_id")?;
    let version: i64 = row.get("version")?;
    Ok((|| {
        let currency = parse_currency(&currency)?;
        Ok(StoredRecord {
            record: Record {
                id,
                kind: RecordKind::from_str(&kind).map_err(|_| corrupt("kind", &kind))?,
                date: parse_date(&date)?,
                due_date: parse_opt_date(due)?,
                amount: parse_money(Some(amount), currency)?.unwrap_or(Money::zero(currency)),
                counterparty,
                reference,
                description,
            },
            status: parse_status(&status)?,
            match_id,
            version: version as u64,
        })
    })())
}

/// Collects rows mapped by one of the `*_from_row` functions.
pub(super) fn collect<T>(
    rows: impl Iterator<Item = rusqlite::Result<Result<T, StoreError>>>,
) -> Result<Vec<T>, StoreError> {
    rows.map(|r| r.map_err(backend).and_then(|x| x)).collect()
}

fn insert_import(
    tx: &Transaction<'_>,
    tenant: &str,
    imp: &StatementImport,
    currency: Currency,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO statement_imports (tenant, id, account_id, file_sha256, file_name, format, blob_key, start_date,
            end_date, currency, opening_balance, closing_balance, transactions_imported, duplicates_skipped, imported_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            tenant,
            imp.id,
            imp.account_id,
            imp.file_sha256,
            imp.file_name,
            imp.format.as_str(),
            imp.blob_key,
            imp.start_date.map(|d| d.to_string()),
            imp.end_date.map(|d| d.to_string()),
            currency.code(),
            money_text(&imp.opening_balance),
            money_text(&imp.closing_balance),
            imp.transactions_imported as i64,
            imp.duplicates_skipped as i64,
            imp.imported_at.to_rfc3339(),
        ],
    )
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_account(&self, tenant: &TenantId, account: &Account) -> Result<(), StoreError> {
        let (tenant, a) = (tenant.as_str().to_string(), account.clone());
        self.with(move |conn| {
            let n = conn
                .execute(
                    "INSERT OR IGNORE INTO accounts (tenant, id, name, currency, account_number, iban, opening_balance, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        tenant,
                        a.id,
                        a.name,
                        a.currency.code(),
                        a.account_number,
                        a.iban,
                        money_text(&a.opening_balance),
                        a.created_at.to_rfc3339()
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("account {} already exists", a.id)));
            }
            Ok(())
        })
        .await
    }

    async fn get_account(&self, tenant: &TenantId, id: &str) -> Result<Account, StoreError> {
        let (tenant, id) = (tenant.as_str().to_string(), id.to_string());
        self.read(move |conn| get_by_id(conn, "accounts", "account", &tenant, &id, account_from_row)).await
    }

    async fn list_accounts(
        &self,
        tenant: &TenantId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<Account>, StoreError> {
        let (tenant, after, limit) = (tenant.as_str().to_string(), cursor.unwrap_or("").to_string(), page_size(limit));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare("SELECT * FROM accounts WHERE tenant = ?1 AND id > ?2 ORDER BY id LIMIT ?3")
                .map_err(backend)?;
            let items =
                collect(stmt.query_map(params![tenant, after, limit as i64 + 1], account_from_row).map_err(backend)?)?;
            Ok(paginate(items, limit, |a| a.id.clone()))
        })
        .await
    }
}

/// Cuts one extra fetched item off and turns the last kept item into the cursor.
pub(super) fn paginate<T>(mut items: Vec<T>, limit: usize, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor_of)
    } else {
        None
    };
    Page { items, cursor }
}

#[async_trait]
impl LedgerStore for SqliteStore {
    async fn find_import(
        &self,
        tenant: &TenantId,
        account_id: &str,
        file_sha256: &str,
    ) -> Result<Option<StatementImport>, StoreError> {
        let (tenant, account_id, sha) = (tenant.as_str().to_string(), account_id.to_string(), file_sha256.to_string());
        self.with(move |conn| {
            conn.query_row(
                "SELECT * FROM statement_imports WHERE tenant = ?1 AND account_id = ?2 AND file_sha256 = ?3",
                params![tenant, account_id, sha],
                import_from_row,
            )
            .optional()
            .map_err(backend)?
            .transpose()
        })
        .await
    }

    async fn save_import(
        &self,
        tenant: &TenantId,
        import: &StatementImport,
        transactions: &[StoredTransaction],
    ) -> Result<StatementImport, StoreError> {
        let (tenant, imp, txns) = (tenant.as_str().to_string(), import.clone(), transactions.to_vec());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let account_currency: Option<String> = tx
                .query_row(
                    "SELECT currency FROM accounts WHERE tenant = ?1 AND id = ?2",
                    params![tenant, imp.account_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(backend)?;
            let currency =
                parse_currency(&account_currency.ok_or(StoreError::NotFound { what: "account", id: imp.account_id.clone() })?)?;
            let existing = tx
                .query_row(
                    "SELECT * FROM statement_imports WHERE tenant = ?1 AND (id = ?2 OR (account_id = ?3 AND file_sha256 = ?4))",
                    params![tenant, imp.id, imp.account_id, imp.file_sha256],
                    import_from_row,
                )
                .optional()
                .map_err(backend)?
                .transpose()?;
            if let Some(mut existing) = existing {
                existing.duplicates_skipped += existing.transactions_imported;
                existing.transactions_imported = 0;
                return Ok(existing);
            }
            let mut stored = imp.clone();
            stored.transactions_imported = 0;
            stored.duplicates_skipped = 0;
            insert_import(&tx, &tenant, &stored, currency)?;
            {
                let mut insert = tx
                    .prepare(
                        "INSERT OR IGNORE INTO bank_transactions (tenant, id, account_id, statement_id, external_id, id_source,
                            booking_date, value_date, amount, currency, description, payee, counterparty_account, reference,
                            check_number, bank_code, details_json, status, match_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, NULL)",
                    )
                    .map_err(backend)?;
                for st in &txns {
                    let t = &st.transaction;
                    if t.amount.currency() != currency {
                        return Err(StoreError::Invalid(format!(
                            "transaction {} is in {}, the account is in {currency}",
                            t.id,
                            t.amount.currency()
                        )));
                    }
                    let details = if t.details.is_empty() {
                        None
                    } else {
                        Some(serde_json::to_string(&t.details).map_err(StoreError::backend)?)
                    };
                    let n = insert
                        .execute(params![
                            tenant,
                            st.id,
                            imp.account_id,
                            imp.id,
                            t.id,
                            if t.id_source == IdSource::Bank { "bank" } else { "fingerprint" },
                            t.booking_date.to_string(),
                            t.value_date.map(|d| d.to_string()),
                            t.amount.amount().to_string(),
                            currency.code(),
                            t.description,
                            t.payee,
                            t.counterparty_account,
                            t.reference,
                            t.check_number,
                            t.bank_code,
                            details,
                            st.status.as_str(),
                        ])
                        .map_err(backend)?;
                    if n == 1 {
                        stored.transactions_imported += 1;
                    } else {
                        stored.duplicates_skipped += 1;
                    }
                }
            }
            tx.execute(
                "UPDATE statement_imports SET transactions_imported = ?3, duplicates_skipped = ?4 WHERE tenant = ?1 AND id = ?2",
                params![tenant, stored.id, stored.transactions_imported as i64, stored.duplicates_skipped as i64],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(stored)
        })
        .await
    }

    async fn list_imports(&self, tenant: &TenantId, account_id: &str) -> Result<Vec<StatementImport>, StoreError> {
        let (tenant, account_id) = (tenant.as_str().to_string(), account_id.to_string());
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT * FROM statement_imports WHERE tenant = ?1 AND account_id = ?2
                     ORDER BY start_date, end_date, imported_at, id",
                )
                .map_err(backend)?;
            let rows = stmt.query_map(params![tenant, account_id], import_from_row).map_err(backend)?;
            collect(rows)
        })
        .await
    }

    async fn list_transactions(
        &self,
        tenant: &TenantId,
        account_id: &str,
        query: &TransactionQuery,
    ) -> Result<Page<StoredTransaction>, StoreError> {
        let (tenant, account_id, q) = (tenant.as_str().to_string(), account_id.to_string(), query.clone());
        let after = q.cursor.as_deref().map(split_cursor).transpose()?;
        let limit = page_size(q.limit);
        self.read(move |conn| {
            let (after_date, after_id) = after.unwrap_or_default();
            let mut stmt = conn
                .prepare(
                    "SELECT * FROM bank_transactions
                     WHERE tenant = ?1 AND account_id = ?2
                       AND (?3 IS NULL OR status = ?3)
                       AND (?4 IS NULL OR booking_date >= ?4)
                       AND (?5 IS NULL OR booking_date <= ?5)
                       AND (booking_date, id) > (?6, ?7)
                     ORDER BY booking_date, id LIMIT ?8",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        tenant,
                        account_id,
                        q.status.map(|s| s.as_str()),
                        q.from.map(|d| d.to_string()),
                        q.to.map(|d| d.to_string()),
                        after_date,
                        after_id,
                        limit as i64 + 1
                    ],
                    transaction_from_row,
                )
                .map_err(backend)?;
            let items = collect(rows)?;
            Ok(paginate(items, limit, |t| format!("{}~{}", t.transaction.booking_date, t.id)))
        })
        .await
    }

    async fn get_transaction(&self, tenant: &TenantId, id: &str) -> Result<StoredTransaction, StoreError> {
        let (tenant, id) = (tenant.as_str().to_string(), id.to_string());
        self.read(move |conn| get_by_id(conn, "bank_transactions", "transaction", &tenant, &id, transaction_from_row))
            .await
    }
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn upsert_records(&self, tenant: &TenantId, records: &[Record]) -> Result<RecordImportOutcome, StoreError> {
        let (tenant, records) = (tenant.as_str().to_string(), records.to_vec());
        self.with(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(backend)?;
            let mut outcome = RecordImportOutcome::default();
            for r in &records {
                // The record's columns as ?1..?10, in the order both statements below name them.
                let (date, due, amount) =
                    (r.date.to_string(), r.due_date.map(|d| d.to_string()), r.amount.amount().to_string());
                let currency = r.amount.currency();
                let columns: [&dyn rusqlite::ToSql; 10] = [
                    &tenant,
                    &r.id,
                    &r.kind.as_str(),
                    &date,
                    &due,
                    &amount,
                    &currency.code(),
                    &r.counterparty,
                    &r.reference,
                    &r.description,
                ];
                // Cached statements: a bulk import runs them for every record. A new record is
                // inserted straight away; only one already there (its key taken, and nothing else
                // ignored) is read and compared.
                let inserted = tx
                    .prepare_cached(
                        "INSERT INTO records (tenant, id, kind, date, due_date, amount, currency, counterparty,
                            reference, description, status, match_id, version)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', NULL, 1)
                         ON CONFLICT (tenant, id) DO NOTHING",
                    )
                    .and_then(|mut st| st.execute(&columns[..]))
                    .map_err(backend)?;
                if inserted == 1 {
                    outcome.imported += 1;
                    continue;
                }
                let old = tx
                    .prepare_cached("SELECT * FROM records WHERE tenant = ?1 AND id = ?2")
                    .and_then(|mut st| st.query_row(params![tenant, r.id], record_from_row))
                    .map_err(backend)??;
                if old.record == *r {
                    outcome.duplicates_skipped += 1;
                } else if old.status == ItemStatus::Reconciled {
                    return Err(StoreError::Conflict(format!(
                        "record {} is reconciled and cannot be changed (unlock its period first)",
                        r.id
                    )));
                } else {
                    let (next, current) = (old.version as i64 + 1, old.version as i64);
                    let versions: [&dyn rusqlite::ToSql; 2] = [&next, &current];
                    tx.prepare_cached(
                        "UPDATE records SET kind = ?3, date = ?4, due_date = ?5, amount = ?6, currency = ?7,
                            counterparty = ?8, reference = ?9, description = ?10, version = ?11
                         WHERE tenant = ?1 AND id = ?2 AND version = ?12",
                    )
                    .and_then(|mut st| st.execute(rusqlite::params_from_iter(columns.iter().chain(&versions))))
                    .map_err(backend)?;
                    outcome.updated += 1;
                }
            }
            tx.commit().map_err(backend)?;
            Ok(outcome)
        })
        .await
    }

    async fn get_record(&self, tenant: &TenantId, id: &str) -> Result<StoredRecord, StoreError> {
        let (tenant, id) = (tenant.as_str().to_string(), id.to_string());
        self.read(move |conn| get_by_id(conn, "records", "record", &tenant, &id, record_from_row)).await
    }

    async fn list_records(&self, tenant: &TenantId, query: &RecordQuery) -> Result<Page<StoredRecord>, StoreError> {
        let (tenant, q) = (tenant.as_str().to_string(), query.clone());
        let after = q.cursor.as_deref().map(split_cursor).transpose()?;
        let limit = page_size(q.limit);
        self.read(move |conn| {
            let (after_date, after_id) = after.unwrap_or_default();
            let mut stmt = conn
                .prepare(
                    "SELECT * FROM records
                     WHERE tenant = ?1
                       AND (?2 IS NULL OR status = ?2)
                       AND (?3 IS NULL OR kind = ?3)
                       AND (?4 IS NULL OR date >= ?4)
                       AND (?5 IS NULL OR date <= ?5)
                       AND (date, id) > (?6, ?7)
                     ORDER BY date, id LIMIT ?8",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(
                    params![
                        tenant,
                        q.status.map(|s| s.as_str()),
                        q.kind.map(|k| k.as_str()),
                        q.from.map(|d| d.to_string()),
                        q.to.map(|d| d.to_string()),
                        after_date,
                        after_id,
                        limit as i64 + 1
                    ],
                    record_from_row,
                )
                .map_err(backend)?;
            let items = collect(rows)?;
            Ok(paginate(items, limit, |r| format!("{}~{}", r.record.date, r.record.id)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_the_previous_schema_keeps_its_match_items_through_the_migration() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(StoreError::backend)?;
        let path = dir.path().join("bankrec.sqlite3");
        {
            let conn = Connection::open(&path).map_err(backend)?;
            let previous = MIGRATIONS.len() - 1;
            for sql in &MIGRATIONS[..previous] {
                conn.execute_batch(sql).map_err(backend)?;
            }
            conn.pragma_update(None, "user_version", previous).map_err(backend)?;
            conn.execute(
                "INSERT INTO match_items (tenant, match_id, item_kind, item_id) VALUES ('t', 'mat_1', 'record', 'INV-1')",
                [],
            )
            .map_err(backend)?;
        }
        drop(SqliteStore::open(&path)?);
        let conn = Connection::open(&path).map_err(backend)?;
        let items: Vec<(String, String, String, String)> = conn
            .prepare("SELECT tenant, match_id, item_kind, item_id FROM match_items")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect())
            .map_err(backend)?;
        assert_eq!(items, vec![("t".into(), "mat_1".into(), "record".into(), "INV-1".into())]);
        let sql: String = conn
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'match_items'", [], |r| r.get(0))
            .map_err(backend)?;
        assert!(sql.contains("WITHOUT ROWID"), "{sql}");
        let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(backend)?;
        assert_eq!(version, MIGRATIONS.len());
        Ok(())
    }
}
