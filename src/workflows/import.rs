//! Importing a statement file into an account: all or nothing, and idempotent — the same file
//! again, or an export that overlaps one already imported, adds no duplicate line.

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::domain::BalanceCheck;
use crate::domain::{Currency, Money};
use crate::parse::{self, Format, ParseError, ParseOptions, Warning};
use crate::store::model::new_id;
use crate::store::model::{derived_id, hex};
use crate::store::{
    Account, BlobError, BlobKey, Blobs, ItemStatus, StatementImport, Store, StoreError, StoredTransaction, TenantId,
};
use crate::store::{Discrepancy, DiscrepancyKind};

/// Why an import was refused. Nothing was stored in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read as a statement.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The file's statements are in another currency than the account.
    #[error("{file}: the statement is in {found}, the account is in {expected}")]
    CurrencyMismatch {
        /// File name.
        file: String,
        /// The statement's currency.
        found: Currency,
        /// The account's currency.
        expected: Currency,
    },
    /// The file holds statements of other accounts, or of several, and none can be chosen.
    #[error("{file}: {message}")]
    AccountMismatch {
        /// File name.
        file: String,
        /// Which accounts the file holds and what to do.
        message: String,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The raw file could not be kept.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    /// The stored import (for a repeated file: the original, with `transactions_imported = 0`).
    pub import: StatementImport,
    /// True when this call stored something new.
    pub created: bool,
    /// Things a person should know: parser warnings, balance mismatches, a broken balance chain.
    pub warnings: Vec<Warning>,
}

/// Imports `bytes` (a statement file called `file_name`) into `account_id`.
///
/// The account's currency is the default for files that state none. Where a file holds several
/// accounts, the statements whose account id matches the account's number or IBAN are taken.
pub async fn import_statement(
    store: &dyn Store,
    blobs: &dyn Blobs,
    tenant: &TenantId,
    account_id: &str,
    file_name: &str,
    bytes: &[u8],
    options: &ParseOptions,
) -> Result<ImportOutcome, ImportError> {
    let account = store.get_account(tenant, account_id).await?;
    let sha = hex(&Sha256::digest(bytes));
    if let Some(mut existing) = store.find_import(tenant, account_id, &sha).await? {
        existing.duplicates_skipped += existing.transactions_imported;
        existing.transactions_imported = 0;
        return Ok(ImportOutcome { import: existing, created: false, warnings: Vec::new() });
    }

    let mut options = options.clone();
    options.currency.get_or_insert(account.currency);
    let options = options;
    // Parsing is CPU-bound: keep it off the async workers.
    let (name, owned) = (file_name.to_string(), bytes.to_vec());
    let parsed = tokio::task::spawn_blocking(move || parse::parse(&name, &owned, &options))
        .await
        .map_err(StoreError::backend)??;
    let mut warnings = parsed.warnings.clone();
    let statements = select_statements(file_name, &account, parsed.statements)?;
    for s in &statements {
        if s.currency != account.currency {
            return Err(ImportError::CurrencyMismatch {
                file: file_name.into(),
                found: s.currency,
                expected: account.currency,
            });
        }
    }

    let statement_id = derived_id("stm", &[account_id, &sha]);
    let mut transactions = Vec::new();
    for s in &statements {
        for t in &s.transactions {
            transactions.push(StoredTransaction {
                id: derived_id("txn", &[account_id, &t.id]),
                account_id: account_id.to_string(),
                statement_id: statement_id.clone(),
                transaction: t.clone(),
                status: ItemStatus::Pending,
                match_id: None,
            });
        }
    }
    let blob_key = BlobKey::from_segments(&["statements", tenant.as_str(), account_id, &statement_id])?;
    let import = StatementImport {
        id: statement_id,
        account_id: account_id.to_string(),
        file_sha256: sha,
        file_name: file_name.to_string(),
        format: parsed.format,
        blob_key: blob_key.to_string(),
        start_date: statements.iter().filter_map(|s| s.start_date).min(),
        end_date: statements.iter().filter_map(|s| s.end_date).max(),
        opening_balance: statements.first().and_then(|s| s.opening_balance),
        closing_balance: statements.last().and_then(|s| s.closing_balance),
        transactions_imported: 0,
        duplicates_skipped: 0,
        imported_at: Utc::now(),
    };

    let chain = balance_chain_break(store, tenant, &import).await?;
    let chain_gap = chain.as_ref().map(|(_, gap)| *gap);
    warnings.extend(chain.map(|(w, _)| w));

    // The raw file first: if the store write then fails, the blob is removed again; if the
    // process dies in between, the orphan blob is overwritten by the retry (same key, same bytes).
    blobs.put(&blob_key, bytes, content_type(parsed.format)).await?;
    let stored = match store.save_import(tenant, &import, &transactions).await {
        Ok(stored) => stored,
        Err(e) => {
            let _ = blobs.delete(&blob_key).await;
            return Err(e.into());
        }
    };
    let created = stored.transactions_imported > 0 || stored.imported_at == import.imported_at;
    if created {
        // Carried forward as `balance` discrepancies, so a reconciliation cannot be completed
        // over a statement that does not add up without someone looking at it.
        let raised = balance_discrepancies(&statements, &stored, chain_gap.as_ref());
        if !raised.is_empty() {
            store.add_discrepancies(tenant, &raised, "import").await?;
        }
    }
    Ok(ImportOutcome { import: stored, created, warnings })
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Csv => "text/csv",
        Format::Ofx => "application/x-ofx",
        Format::Camt052 | Format::Camt053 | Format::Camt054 => "application/xml",
        _ => "text/plain",
    }
}

fn normalise_account(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_uppercase()
}

/// Picks the statements that belong to `account`.
fn select_statements(
    file: &str,
    account: &Account,
    statements: Vec<crate::domain::Statement>,
) -> Result<Vec<crate::domain::Statement>, ImportError> {
    let mut ids: Vec<String> = statements.iter().map(|s| s.account.id.clone()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() <= 1 {
        return Ok(statements);
    }
    let known: Vec<String> =
        [&account.account_number, &account.iban].into_iter().flatten().map(|s| normalise_account(s)).collect();
    if known.is_empty() {
        return Err(ImportError::AccountMismatch {
            file: file.into(),
            message: format!(
                "the file holds statements of {} accounts ({}); set the account's number or IBAN to choose one",
                ids.len(),
                ids.join(", ")
            ),
        });
    }
    let wanted: Vec<_> = statements
        .into_iter()
        .filter(|s| {
            let id = normalise_account(&s.account.id);
            let iban = s.account.iban.as_deref().map(normalise_account);
            known.iter().any(|k| !k.is_empty() && (id.ends_with(k.as_str()) || iban.as_deref() == Some(k.as_str())))
        })
        .collect();
    if wanted.is_empty() {
        return Err(ImportError::AccountMismatch {
            file: file.into(),
            message: format!("none of the file's accounts ({}) is this account", ids.join(", ")),
        });
    }
    Ok(wanted)
}

/// A warning, and the difference, when this statement's opening balance differs from the closing
/// balance of the import that ends right before it.
async fn balance_chain_break(
    store: &dyn Store,
    tenant: &TenantId,
    import: &StatementImport,
) -> Result<Option<(Warning, Money)>, StoreError> {
    let (Some(opening), Some(start)) = (import.opening_balance, import.start_date) else {
        return Ok(None);
    };
    let previous = store
        .list_imports(tenant, &import.account_id)
        .await?
        .into_iter()
        .filter(|i| i.end_date.is_some_and(|e| e <= start) && i.closing_balance.is_some())
        .max_by_key(|i| (i.end_date, i.imported_at));
    Ok(previous.and_then(|p| {
        let closing: Money = p.closing_balance?;
        (closing.amount() != opening.amount()).then(|| {
            let warning = Warning {
                line: None,
                statement: None,
                message: format!(
                    "balance chain broken: this statement opens at {opening}, the previous one ({}) closed at {closing}",
                    p.file_name
                ),
            };
            (warning, Money::new(opening.amount() - closing.amount(), opening.currency()))
        })
    }))
}

/// The `balance` discrepancies an import raises: each statement whose lines do not add up to its
/// closing balance, and a broken chain with the previous statement.
fn balance_discrepancies(
    statements: &[crate::domain::Statement],
    import: &StatementImport,
    chain: Option<&Money>,
) -> Vec<Discrepancy> {
    let now = Utc::now();
    let date = import.end_date.or(import.start_date).unwrap_or(now.date_naive());
    let raise = |amount: rust_decimal::Decimal, date, description: String| Discrepancy {
        id: new_id("dis"),
        account_id: import.account_id.clone(),
        run_id: None,
        kind: DiscrepancyKind::Balance,
        amount,
        transaction_ids: vec![],
        record_ids: vec![],
        match_id: None,
        date,
        description,
        proposal: Some("ask the bank for the missing or corrected statement, or adjust with a note".into()),
        resolution: None,
        created_at: now,
        version: 1,
    };
    let mut out = Vec::new();
    for s in statements {
        if let BalanceCheck::Mismatch { computed, stated } = s.balance_check() {
            out.push(raise(
                stated.amount() - computed.amount(),
                s.end_date.unwrap_or(date),
                format!("{}: opening + lines = {computed}, the closing balance says {stated}", import.file_name),
            ));
        }
    }
    if let Some(gap) = chain {
        out.push(raise(
            gap.amount(),
            import.start_date.unwrap_or(date),
            format!("{}: opens {gap} away from the previous statement's closing balance", import.file_name),
        ));
    }
    out
}
