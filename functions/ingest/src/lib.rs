//! The `ingest` function: S3 `ObjectCreated` notifications of uploaded statements, each imported
//! and its period reconciled by [`bankrec::lambda::ingest`].
//!
//! An error is returned only when the store or the bucket failed, so that Lambda delivers the
//! event again; every record of the event is idempotent, so a redelivery repeats no work.

use aws_lambda_events::s3::S3Event;
use bankrec::lambda::ingest::{ingest_object, IngestError, IngestOutcome};
use bankrec::matching::EngineConfig;
use bankrec::store::{Blobs, Store};
use serde::Serialize;

/// What happened to one record of the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordResult {
    /// `imported`, `imported_not_reconciled`, `duplicate`, `failed` or `ignored`.
    pub outcome: &'static str,
    /// The import, the failed run or the reconciliation, where there is one.
    pub id: Option<String>,
}

/// Handles one S3 event: every `ObjectCreated` record of `bucket`; records of other buckets or
/// other event types are skipped.
pub async fn handle(
    store: &dyn Store,
    blobs: &dyn Blobs,
    bucket: &str,
    event: S3Event,
    engine: &EngineConfig,
) -> Result<Vec<RecordResult>, IngestError> {
    let mut results = Vec::with_capacity(event.records.len());
    for record in event.records {
        let created = record.event_name.as_deref().is_some_and(|n| n.starts_with("ObjectCreated:"));
        let (Some(key), Some(name)) = (record.s3.object.key.as_deref(), record.s3.bucket.name.as_deref()) else {
            results.push(RecordResult { outcome: "ignored", id: None });
            continue;
        };
        if !created || name != bucket {
            results.push(RecordResult { outcome: "ignored", id: None });
            continue;
        }
        let outcome = ingest_object(store, blobs, key, engine).await?;
        let id = match &outcome {
            IngestOutcome::Imported { reconciliation: Ok(run), .. } => Some(run.id.clone()),
            IngestOutcome::Imported { import, .. } => Some(import.id.clone()),
            IngestOutcome::Duplicate { statement_id } => Some(statement_id.clone()),
            IngestOutcome::Failed { run_id, .. } => Some(run_id.clone()),
            IngestOutcome::Ignored { .. } => None,
        };
        tracing::info!(ingest.outcome = outcome.kind(), ingest.id = id.as_deref(), "statement object");
        results.push(RecordResult { outcome: outcome.kind(), id });
    }
    Ok(results)
}
