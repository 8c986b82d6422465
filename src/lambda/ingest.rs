//! Statements dropped into the blob store under `statements/{tenant}/{account}/{name}`: each is
//! imported into its account and the statement's period is reconciled.
//!
//! Deliveries are at least once, so the same object may arrive twice (or concurrently): the
//! import is idempotent on the file's content, and only the delivery that stored the import
//! reconciles. A file that cannot be imported is recorded as a failed run of its account, with
//! the parser's message (file, line, column), and acknowledged; only backend failures are
//! returned, so that the event is delivered again.

use chrono::{NaiveDate, Utc};
use sha2::{Digest, Sha256};

use super::Retry;
use crate::matching::{EngineConfig, Summary};
use crate::parse::ParseOptions;
use crate::store::model::{derived_id, hex};
use crate::store::{BlobError, BlobKey, Blobs, Run, RunStatus, StatementImport, Store, StoreError, TenantId};
use crate::workflows::import::{import_statement, ImportError};
use crate::workflows::reconcile::{reconcile, ReconcileRequest};

/// The first segment of every uploaded statement's key.
pub const STATEMENTS_PREFIX: &str = "statements";

/// Who the runs and failures that ingestion stores are attributed to.
pub const ACTOR: &str = "ingest";

/// Where an uploaded statement goes, read from its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementObject {
    /// The tenant (second segment).
    pub tenant: TenantId,
    /// The account id (third segment).
    pub account_id: String,
    /// The file name (fourth segment), which also tells the parser the format.
    pub name: String,
    /// The whole key.
    pub key: BlobKey,
}

/// Why an object key is not an uploaded statement.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key is not percent-encoded UTF-8.
    #[error("the object key is not valid percent-encoded UTF-8")]
    Encoding,
    /// The key is not `statements/{tenant}/{account}/{name}`.
    #[error("the object key is not statements/{{tenant}}/{{account}}/{{name}}")]
    Layout,
    /// The tenant segment is not a tenant id.
    #[error(transparent)]
    Tenant(#[from] crate::store::model::InvalidId),
    /// A segment holds characters a blob key cannot.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Decodes a key as S3 event notifications carry it: URL-encoded, with `+` for a space.
pub fn decode_event_key(raw: &str) -> Result<String, KeyError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
                    _ => return Err(KeyError::Encoding),
                }
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| KeyError::Encoding)
}

/// Reads `statements/{tenant}/{account}/{name}` (already decoded).
pub fn parse_statement_key(key: &str) -> Result<StatementObject, KeyError> {
    let mut parts = key.split('/');
    let (Some(STATEMENTS_PREFIX), Some(tenant), Some(account), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(KeyError::Layout);
    };
    if account.is_empty() || name.is_empty() {
        return Err(KeyError::Layout);
    }
    let tenant = TenantId::new(tenant)?;
    let blob = BlobKey::new(key)?;
    Ok(StatementObject { tenant, account_id: account.to_string(), name: name.to_string(), key: blob })
}

/// What one delivery did.
#[derive(Debug, Clone)]
pub enum IngestOutcome {
    /// The statement was stored; its period was reconciled unless `reconciliation` says why not.
    Imported {
        /// The stored import.
        import: Box<StatementImport>,
        /// The run over the statement's period, or why there is none.
        reconciliation: Result<Box<Run>, String>,
    },
    /// The same file was imported before: nothing changed.
    Duplicate {
        /// The earlier import.
        statement_id: String,
    },
    /// The file could not be imported; a failed run of the account says why.
    Failed {
        /// The failed run that records it.
        run_id: String,
        /// What was wrong with the file.
        reason: String,
    },
    /// Not an uploaded statement (another layout, bankrec's own copy of an imported file, an
    /// object deleted since, an unknown account): nothing to do.
    Ignored {
        /// Why.
        reason: String,
    },
}

impl IngestOutcome {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            IngestOutcome::Imported { reconciliation: Ok(_), .. } => "imported",
            IngestOutcome::Imported { reconciliation: Err(_), .. } => "imported_not_reconciled",
            IngestOutcome::Duplicate { .. } => "duplicate",
            IngestOutcome::Failed { .. } => "failed",
            IngestOutcome::Ignored { .. } => "ignored",
        }
    }
}

/// A failure worth delivering the event again for.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The uploaded object could not be read.
    #[error("the uploaded statement could not be read")]
    Blob(#[source] BlobError),
    /// The store failed.
    #[error("the store failed while importing an uploaded statement")]
    Store(#[source] StoreError),
    /// The import failed in the backend.
    #[error("the import of an uploaded statement failed")]
    Import(#[source] ImportError),
}

impl IngestError {
    /// Whether a redelivery can help; always transient, as permanent problems are recorded.
    pub fn retry(&self) -> Retry {
        Retry::Transient
    }
}

/// Whether a store error is the backend's (retry) rather than the request's (record).
fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Backend(_) | StoreError::NotInitialised(_))
}

/// Imports the object under `raw_key` (as the event carries it) and reconciles its period.
pub async fn ingest_object(
    store: &dyn Store,
    blobs: &dyn Blobs,
    raw_key: &str,
    engine: &EngineConfig,
) -> Result<IngestOutcome, IngestError> {
    let object = match decode_event_key(raw_key).and_then(|k| parse_statement_key(&k)) {
        Ok(object) => object,
        Err(e) => return Ok(IngestOutcome::Ignored { reason: e.to_string() }),
    };
    let bytes = match blobs.get(&object.key).await {
        Ok(bytes) => bytes,
        Err(BlobError::NotFound(_)) => {
            return Ok(IngestOutcome::Ignored { reason: "the object no longer exists".into() });
        }
        Err(e) => return Err(IngestError::Blob(e)),
    };
    let sha = hex(&Sha256::digest(&bytes));
    // The import keeps its raw copy under the same prefix, named by the statement id; that write
    // triggers a delivery of its own, which must not count as an upload.
    if object.name == derived_id("stm", &[&object.account_id, &sha]) {
        return Ok(IngestOutcome::Ignored { reason: "bankrec's own copy of an imported file".into() });
    }

    let imported = import_statement(
        store,
        blobs,
        &object.tenant,
        &object.account_id,
        &object.name,
        &bytes,
        &ParseOptions::default(),
    )
    .await;
    let outcome = match imported {
        Ok(outcome) => outcome,
        Err(ImportError::Store(StoreError::NotFound { what, .. })) => {
            return Ok(IngestOutcome::Ignored { reason: format!("no such {what}") });
        }
        Err(ImportError::Store(e)) if is_transient(&e) => return Err(IngestError::Store(e)),
        Err(ImportError::Blob(e @ BlobError::Backend(_))) => return Err(IngestError::Import(ImportError::Blob(e))),
        Err(e) => {
            // The reason is shown to the tenant: the parser's message names the line and field;
            // a store's or blob's message is kept out of it (and logged instead).
            let why = match &e {
                ImportError::Store(_) | ImportError::Blob(_) => {
                    tracing::warn!(error = %e, "an uploaded statement could not be stored");
                    "it could not be stored".to_string()
                }
                other => other.to_string(),
            };
            let reason = crate::store::import_failure_reason(&object.name, &why);
            let today = Utc::now().date_naive();
            let run_id =
                record_failure(store, &object, &sha, (today, today), &reason).await.map_err(IngestError::Store)?;
            return Ok(IngestOutcome::Failed { run_id, reason });
        }
    };
    if !outcome.created {
        return Ok(IngestOutcome::Duplicate { statement_id: outcome.import.id });
    }
    let import = outcome.import;
    let (Some(start_date), Some(end_date)) = (import.start_date, import.end_date) else {
        return Ok(IngestOutcome::Imported {
            import: Box::new(import),
            reconciliation: Err("the statement states no period to reconcile".into()),
        });
    };
    let request = ReconcileRequest {
        account_id: object.account_id.clone(),
        start_date,
        end_date,
        dry_run: false,
        actor: ACTOR.into(),
    };
    // The import is stored whatever happens next, and a redelivery finds it a duplicate: so a
    // failed reconciliation is recorded rather than retried, and can be run again through the API.
    let reconciliation = match reconcile(store, &object.tenant, &request, engine).await {
        Ok(done) => Ok(Box::new(done.run)),
        Err(e) => {
            let reason = format!("the reconciliation after importing statement {} failed: {e}", object.name);
            let recorded =
                record_failure(store, &object, &format!("{sha}-reconcile"), (start_date, end_date), &reason).await;
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "the failed reconciliation could not be recorded");
            }
            Err(reason)
        }
    };
    Ok(IngestOutcome::Imported { import: Box::new(import), reconciliation })
}

/// Stores a failed run of the object's account saying why; the id is derived from the file, so
/// a redelivery finds it recorded already.
async fn record_failure(
    store: &dyn Store,
    object: &StatementObject,
    discriminator: &str,
    (start_date, end_date): (NaiveDate, NaiveDate),
    reason: &str,
) -> Result<String, StoreError> {
    let id = derived_id("rec", &[&object.account_id, ACTOR, discriminator]);
    let now = Utc::now();
    let run = Run {
        id: id.clone(),
        account_id: object.account_id.clone(),
        start_date,
        end_date,
        status: RunStatus::Running,
        summary: Summary::default(),
        created_by: ACTOR.into(),
        created_at: now,
        finished_at: None,
        error: None,
        version: 1,
    };
    // Looked up first: not every store reports an existing run id as a conflict.
    match store.get_run(&object.tenant, &id).await {
        Ok(_) => return Ok(id),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    match store.create_run(&object.tenant, &run).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(id),
        Err(e) => return Err(e),
    }
    let failed = Run { status: RunStatus::Failed, finished_at: Some(Utc::now()), error: Some(reason.into()), ..run };
    store.update_run(&object.tenant, &failed).await?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::Currency;
    use crate::store::{Account, AccountStore, FsBlobs, LedgerStore, ReconStore, SqliteStore};

    const CSV: &str = "Date,Description,Amount\n2024-03-01,Opening fee,-5.00\n2024-03-04,ACME payment,120.50\n";

    struct Fixture {
        store: Arc<SqliteStore>,
        blobs: FsBlobs,
        tenant: TenantId,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open_dir(dir.path()).unwrap());
        let blobs = FsBlobs::new(dir.path().join("blobs"));
        let tenant = TenantId::new("acme").unwrap();
        let account = Account {
            id: "acc_main".into(),
            name: "Main".into(),
            currency: Currency::new("EUR").unwrap(),
            account_number: None,
            iban: None,
            opening_balance: None,
            created_at: Utc::now(),
        };
        store.create_account(&tenant, &account).await.unwrap();
        Fixture { store, blobs, tenant, _dir: dir }
    }

    async fn put(f: &Fixture, key: &str, body: &str) {
        f.blobs.put(&BlobKey::new(key).unwrap(), body.as_bytes(), "text/csv").await.unwrap();
    }

    async fn ingest(f: &Fixture, key: &str) -> IngestOutcome {
        ingest_object(f.store.as_ref(), &f.blobs, key, &EngineConfig::default()).await.unwrap()
    }

    #[test]
    fn event_keys_are_url_decoded_with_plus_as_space() {
        assert_eq!(
            decode_event_key("statements/acme/acc/march+2024%281%29.csv").unwrap(),
            "statements/acme/acc/march 2024(1).csv"
        );
        assert_eq!(decode_event_key("a%C3%A9").unwrap(), "aé");
    }

    #[test]
    fn broken_percent_escapes_and_invalid_utf8_are_refused_without_panicking() {
        for raw in ["%", "%4", "%zz", "abc%", "%ff%fe", "%E2%82"] {
            assert!(matches!(decode_event_key(raw), Err(KeyError::Encoding)), "{raw}");
        }
    }

    #[test]
    fn only_four_segment_keys_under_statements_are_uploads() {
        let o = parse_statement_key("statements/acme/acc_main/march.csv").unwrap();
        assert_eq!((o.tenant.as_str(), o.account_id.as_str(), o.name.as_str()), ("acme", "acc_main", "march.csv"));
        for key in [
            "statements/acme/acc_main",
            "statements/acme/acc_main/x/march.csv",
            "reports/acme/acc_main/march.csv",
            "statements//acc/march.csv",
            "statements/acme//march.csv",
            "",
        ] {
            assert!(parse_statement_key(key).is_err(), "{key}");
        }
        assert!(matches!(parse_statement_key("statements/ac#me/acc/m.csv"), Err(KeyError::Tenant(_))));
        assert!(matches!(parse_statement_key("statements/acme/acc/march 2024.csv"), Err(KeyError::Blob(_))));
    }

    #[tokio::test]
    async fn an_uploaded_statement_is_imported_and_its_period_reconciled() {
        let f = fixture().await;
        put(&f, "statements/acme/acc_main/march.csv", CSV).await;
        let IngestOutcome::Imported { import, reconciliation } = ingest(&f, "statements/acme/acc_main/march.csv").await
        else {
            panic!("not imported");
        };
        assert_eq!(import.transactions_imported, 2);
        let run = reconciliation.unwrap();
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!((run.start_date.to_string(), run.end_date.to_string()), ("2024-03-01".into(), "2024-03-04".into()));
        assert_eq!(f.store.get_run(&f.tenant, &run.id).await.unwrap().created_by, ACTOR);
    }

    #[tokio::test]
    async fn a_second_delivery_of_the_same_object_changes_nothing() {
        let f = fixture().await;
        put(&f, "statements/acme/acc_main/march.csv", CSV).await;
        assert_eq!(ingest(&f, "statements/acme/acc_main/march.csv").await.kind(), "imported");
        let before = f.store.list_audit(&f.tenant, None, 0, 1000).await.unwrap().len();
        let again = ingest(&f, "statements/acme/acc_main/march.csv").await;
        assert!(matches!(again, IngestOutcome::Duplicate { .. }), "{again:?}");
        assert_eq!(f.store.list_imports(&f.tenant, "acc_main").await.unwrap().len(), 1);
        assert_eq!(f.store.list_audit(&f.tenant, None, 0, 1000).await.unwrap().len(), before);
    }

    #[tokio::test]
    async fn the_copy_an_import_keeps_is_not_imported_again() {
        let f = fixture().await;
        put(&f, "statements/acme/acc_main/march.csv", CSV).await;
        let IngestOutcome::Imported { import, .. } = ingest(&f, "statements/acme/acc_main/march.csv").await else {
            panic!("not imported");
        };
        assert_eq!(import.blob_key, format!("statements/acme/acc_main/{}", import.id));
        assert!(matches!(ingest(&f, &import.blob_key).await, IngestOutcome::Ignored { .. }));
    }

    #[tokio::test]
    async fn a_bad_file_is_recorded_as_a_failed_run_once_and_acknowledged() {
        let f = fixture().await;
        put(&f, "statements/acme/acc_main/broken.ofx", "<OFX><BANKTRANLIST><STMTTRN>").await;
        let outcome = ingest(&f, "statements/acme/acc_main/broken.ofx").await;
        let IngestOutcome::Failed { run_id, reason } = outcome else { panic!("not failed: {outcome:?}") };
        assert!(reason.contains("broken.ofx"), "{reason}");
        let run = f.store.get_run(&f.tenant, &run_id).await.unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.error.as_deref(), Some(reason.as_str()));
        let again = ingest(&f, "statements/acme/acc_main/broken.ofx").await;
        assert!(matches!(&again, IngestOutcome::Failed { run_id: id, .. } if *id == run_id), "{again:?}");
        assert!(f.store.list_imports(&f.tenant, "acc_main").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn objects_of_unknown_accounts_missing_objects_and_foreign_keys_are_ignored() {
        let f = fixture().await;
        put(&f, "statements/acme/acc_other/march.csv", CSV).await;
        for key in ["statements/acme/acc_other/march.csv", "statements/acme/acc_main/gone.csv", "other/key.csv"] {
            assert!(matches!(ingest(&f, key).await, IngestOutcome::Ignored { .. }), "{key}");
        }
    }
}
