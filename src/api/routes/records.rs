//! The books' records: bulk upload (JSON array or CSV) and listing.

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::api::error::ApiError;
use crate::api::extract::{date_param, date_range, param, ApiPath, ApiQuery, Caller, RawBody};
use crate::api::pagination::{PageRequest, Paged};
use crate::api::{ApiRoute, AppState, RECORDS_BODY_LIMIT};
use crate::domain::{read_records, Currency, RecordKind};
use crate::store::{ItemStatus, RecordImportOutcome, RecordQuery, StoredRecord};

/// The record routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/records", upload_records).body_limit(RECORDS_BODY_LIMIT),
        ApiRoute::get("/records", list_records),
        ApiRoute::get("/records/{id}", get_record),
    ]
}

/// Whether a records body is JSON (and so judged as a request body) rather than a CSV file.
fn is_json(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    matches!(body.iter().find(|b| !b.is_ascii_whitespace()), Some(b'[') | Some(b'{'))
}

async fn upload_records(
    State(state): State<AppState>,
    caller: Caller,
    RawBody(body): RawBody,
) -> Result<Json<RecordImportOutcome>, ApiError> {
    let json = is_json(&body);
    if json {
        // Broken JSON is a 400 with its position, before any record is looked at.
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&body);
        serde_json::from_slice::<serde::de::IgnoredAny>(body)?;
    }
    let name = if json { "records.json" } else { "records.csv" };
    let records = read_records(name, &body).map_err(|e| ApiError::from_records(e, json))?;
    let outcome = state.store.upsert_records(&caller.tenant, &records).await?;
    tracing::info!(
        records.imported = outcome.imported,
        records.updated = outcome.updated,
        records.duplicates_skipped = outcome.duplicates_skipped,
        "records imported"
    );
    Ok(Json(outcome))
}

/// `GET /records` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordParams {
    status: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// A record as the API shows it (`id` is the books' own id).
#[derive(Debug, Serialize)]
pub struct RecordView {
    id: String,
    kind: RecordKind,
    date: NaiveDate,
    due_date: Option<NaiveDate>,
    amount: String,
    currency: Currency,
    counterparty: Option<String>,
    reference: Option<String>,
    description: Option<String>,
    status: ItemStatus,
    match_id: Option<String>,
}

impl From<StoredRecord> for RecordView {
    fn from(s: StoredRecord) -> Self {
        let r = s.record;
        RecordView {
            id: r.id,
            kind: r.kind,
            date: r.date,
            due_date: r.due_date,
            amount: r.amount.to_fixed(),
            currency: r.amount.currency(),
            counterparty: r.counterparty,
            reference: r.reference,
            description: r.description,
            status: s.status,
            match_id: s.match_id,
        }
    }
}

async fn list_records(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RecordParams>,
) -> Result<Json<Paged<RecordView>>, ApiError> {
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref())?;
    let (from, to) = (date_param("from", q.from.as_deref())?, date_param("to", q.to.as_deref())?);
    date_range(from, to)?;
    let query = RecordQuery {
        status: param::<ItemStatus>("status", q.status.as_deref())?,
        kind: param::<RecordKind>("kind", q.kind.as_deref())?,
        from,
        to,
        cursor: page.cursor,
        limit: page.limit,
    };
    let records = state.store.list_records(&caller.tenant, &query).await?;
    Ok(Json(Paged::from_page(records, RecordView::from)))
}

async fn get_record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RecordView>, ApiError> {
    Ok(Json(state.store.get_record(&caller.tenant, &id).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_json_when_it_opens_with_a_bracket_or_brace_after_blanks_and_a_bom() {
        assert!(is_json(b"  [1]"));
        assert!(is_json(b"\xEF\xBB\xBF\n{\"records\":[]}"));
        assert!(!is_json(b"id,kind,date\n"));
        assert!(!is_json(b""));
    }
}
