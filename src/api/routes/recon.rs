//! Reconciliations and what people do with their outcome: starting a run, its matches, manual
//! matches, confirming, rejecting and undoing matches, resolving discrepancies, and completing
//! (locking) or unlocking a period.

use axum::extract::State;
use axum::http::{header, HeaderName, StatusCode};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::optional_text;
use crate::api::error::ApiError;
use crate::api::extract::{param, ApiPath, ApiQuery, Caller, JsonBody, RawBody};
use crate::api::pagination::{PageRequest, Paged};
use crate::api::runs::Launched;
use crate::api::{ApiRoute, AppState, BASE_PATH};
use crate::matching::{Explanation, Method, Summary};
use crate::store::{
    Discrepancy, DiscrepancyKind, MatchAction, MatchState, Resolution, ResolutionAction, Run, RunStatus, StoredMatch,
};
use crate::workflows::matches::{
    act_on_match, complete, manual_match, resolve_discrepancy, ManualMatch, ResolveRequest,
};
use crate::workflows::reconcile::{reconcile, start_run, ReconcileRequest};

/// Longest period one run may cover: a year and a leap day, so that an annual reconciliation
/// fits and a typo in a year does not make one run scan decades.
pub const MAX_PERIOD_DAYS: i64 = 366;
/// Longest note, reason or ledger account name.
const MAX_NOTE_CHARS: usize = 2000;
/// Most items one manual match may hold.
const MAX_MATCH_ITEMS: usize = 200;

/// The reconciliation, match and discrepancy routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/reconcile", start_reconciliation),
        ApiRoute::get("/accounts/{id}/reconciliations", list_reconciliations),
        ApiRoute::get("/reconciliations/{id}", get_reconciliation),
        ApiRoute::get("/reconciliations/{id}/matches", list_matches),
        ApiRoute::post("/reconciliations/{id}/complete", complete_reconciliation),
        ApiRoute::post("/reconciliations/{id}/unlock", unlock_reconciliation),
        ApiRoute::post("/matches", create_match),
        ApiRoute::get("/matches/{id}", get_match),
        ApiRoute::post("/matches/{id}/confirm", confirm_match),
        ApiRoute::post("/matches/{id}/reject", reject_match),
        ApiRoute::delete("/matches/{id}", unmatch),
        ApiRoute::get("/discrepancies", list_discrepancies),
        ApiRoute::get("/discrepancies/{id}", get_discrepancy),
        ApiRoute::post("/discrepancies/{id}/resolve", resolve),
    ]
}

/// An optional JSON body: an empty body is `None`, anything else must parse.
fn optional_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(Some(serde_json::from_slice(body)?))
}

/// A run's counts as the API shows them.
#[derive(Debug, Serialize)]
pub struct SummaryView {
    matched: usize,
    suggested: usize,
    discrepancies: usize,
    unmatched_bank: usize,
    unmatched_records: usize,
    bank_transactions: usize,
    records: usize,
}

impl From<&Summary> for SummaryView {
    fn from(s: &Summary) -> Self {
        SummaryView {
            matched: s.matched,
            suggested: s.suggested,
            discrepancies: s.discrepancies,
            unmatched_bank: s.unmatched_bank,
            unmatched_records: s.unmatched_records,
            bank_transactions: s.bank_transactions,
            records: s.records,
        }
    }
}

/// A reconciliation run as the API shows it.
#[derive(Debug, Serialize)]
pub struct RunView {
    reconciliation_id: String,
    account_id: String,
    status: &'static str,
    start_date: NaiveDate,
    end_date: NaiveDate,
    summary: SummaryView,
    dry_run: bool,
    created_by: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    error: Option<String>,
}

impl RunView {
    fn new(run: &Run, dry_run: bool) -> Self {
        RunView {
            reconciliation_id: run.id.clone(),
            account_id: run.account_id.clone(),
            status: run.status.as_str(),
            start_date: run.start_date,
            end_date: run.end_date,
            summary: (&run.summary).into(),
            dry_run,
            created_by: run.created_by.clone(),
            created_at: run.created_at,
            finished_at: run.finished_at,
            // Failures are logged in full; the client learns only that it failed, except for a
            // failed import, whose reason names the file and what was wrong with it.
            error: run.error.as_ref().map(|e| {
                if crate::store::is_import_failure(e) {
                    e.clone()
                } else {
                    "the reconciliation failed; start it again".to_string()
                }
            }),
        }
    }
}

/// `POST /reconcile` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewReconciliation {
    account_id: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    #[serde(default)]
    dry_run: bool,
}

/// Checks a period: not reversed, not longer than [`MAX_PERIOD_DAYS`].
pub(crate) fn check_period(start: NaiveDate, end: NaiveDate) -> Result<(), ApiError> {
    if start > end {
        return Err(ApiError::invalid_parameter(
            "start_date",
            format!("`start_date` {start} is after `end_date` {end}"),
        ));
    }
    if (end - start).num_days() >= MAX_PERIOD_DAYS {
        return Err(ApiError::invalid_parameter(
            "end_date",
            format!("a reconciliation covers at most {MAX_PERIOD_DAYS} days"),
        ));
    }
    Ok(())
}

/// A run either finishes within [`AppState::run_wait`] (201 with its outcome) or goes on in the
/// background (202 with its id, to poll with `GET /reconciliations/{id}`). A dry run stores
/// nothing, so it always runs to its end here (200).
async fn start_reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewReconciliation>,
) -> Result<(StatusCode, [(HeaderName, String); 1], Json<RunView>), ApiError> {
    check_period(body.start_date, body.end_date)?;
    let req = ReconcileRequest {
        account_id: body.account_id,
        start_date: body.start_date,
        end_date: body.end_date,
        dry_run: body.dry_run,
        actor: caller.key_id.clone(),
    };
    if req.dry_run {
        let outcome = reconcile(state.store.as_ref(), &caller.tenant, &req, &state.engine).await?;
        return Ok((
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store".into())],
            Json(RunView::new(&outcome.run, true)),
        ));
    }
    let run = start_run(state.store.as_ref(), &caller.tenant, &req).await?;
    let location = (header::LOCATION, format!("{BASE_PATH}/reconciliations/{}", run.id));
    let launched = match state
        .runs
        .launch(state.store.clone(), caller.tenant.clone(), run.id.clone(), (*state.engine).clone())
        .await
    {
        Ok(launched) => launched,
        Err(e) => {
            // Nothing will finish it: say so on the run rather than leave it `running`.
            let mut failed = run.clone();
            failed.status = RunStatus::Failed;
            failed.finished_at = Some(Utc::now());
            failed.error = Some(e.to_string());
            let _ = state.store.update_run(&caller.tenant, &failed).await;
            return Err(ApiError::Internal(e));
        }
    };
    if let Launched::InProcess(mut handle) = launched {
        if let Ok(joined) = tokio::time::timeout(state.run_wait, &mut handle).await {
            let outcome = joined.map_err(|e| ApiError::Internal(Box::new(e)))??;
            return Ok((StatusCode::CREATED, [location], Json(RunView::new(&outcome.run, false))));
        }
    }
    Ok((StatusCode::ACCEPTED, [location], Json(RunView::new(&run, false))))
}

async fn get_reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RunView>, ApiError> {
    Ok(Json(RunView::new(&state.store.get_run(&caller.tenant, &id).await?, false)))
}

/// `GET /accounts/{id}/reconciliations` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RunParams {
    cursor: Option<String>,
    limit: Option<String>,
}

/// The account's runs, newest first, failed statement imports among them.
async fn list_reconciliations(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RunParams>,
) -> Result<Json<Paged<RunView>>, ApiError> {
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref())?;
    // Another tenant's account must be a 404, not an empty list.
    state.store.get_account(&caller.tenant, &id).await?;
    let runs = state.store.list_runs(&caller.tenant, &id, page.cursor.as_deref(), page.limit).await?;
    Ok(Json(Paged::from_page(runs, |run| RunView::new(&run, false))))
}

/// A match as the API shows it (`bank_transaction_ids` are the ids the transactions listing
/// shows, `record_ids` the books' own).
#[derive(Debug, Serialize)]
pub struct MatchView {
    id: String,
    status: MatchState,
    reconciliation_id: Option<String>,
    account_id: String,
    bank_transaction_ids: Vec<String>,
    record_ids: Vec<String>,
    confidence: f64,
    method: Method,
    rule: Option<String>,
    difference: String,
    explanation: Explanation,
    note: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<StoredMatch> for MatchView {
    fn from(m: StoredMatch) -> Self {
        MatchView {
            id: m.id,
            status: m.state,
            reconciliation_id: m.run_id,
            account_id: m.account_id,
            bank_transaction_ids: m.bank_transaction_ids,
            record_ids: m.record_ids,
            confidence: m.confidence,
            method: m.method,
            rule: m.rule,
            difference: m.difference.to_string(),
            explanation: m.explanation,
            note: m.note,
            created_by: m.created_by,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// `GET /reconciliations/{id}/matches` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchParams {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list_matches(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<MatchParams>,
) -> Result<Json<Paged<MatchView>>, ApiError> {
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref())?;
    let status = param::<MatchState>("status", q.status.as_deref())?;
    // Another tenant's run must be a 404, not an empty list.
    state.store.get_run(&caller.tenant, &id).await?;
    let matches = state.store.list_matches(&caller.tenant, &id, status, page.cursor.as_deref(), page.limit).await?;
    Ok(Json(Paged::from_page(matches, MatchView::from)))
}

/// `POST /matches` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMatch {
    bank_transaction_ids: Vec<String>,
    record_ids: Vec<String>,
    #[serde(default)]
    note: Option<String>,
}

async fn create_match(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewMatch>,
) -> Result<(StatusCode, [(HeaderName, String); 1], Json<MatchView>), ApiError> {
    for (field, ids) in [("bank_transaction_ids", &body.bank_transaction_ids), ("record_ids", &body.record_ids)] {
        if ids.is_empty() {
            return Err(ApiError::invalid_parameter(field, format!("`{field}` must list at least one id")));
        }
        if ids.len() > MAX_MATCH_ITEMS {
            return Err(ApiError::invalid_parameter(field, format!("`{field}` lists more than {MAX_MATCH_ITEMS} ids")));
        }
        if ids.iter().any(|id| id.trim().is_empty() || id.len() > 256) {
            return Err(ApiError::invalid_parameter(field, format!("`{field}` holds a blank or overlong id")));
        }
    }
    let req = ManualMatch {
        bank_transaction_ids: body.bank_transaction_ids,
        record_ids: body.record_ids,
        note: optional_text("note", body.note, MAX_NOTE_CHARS)?,
    };
    let m = manual_match(state.store.as_ref(), &caller.tenant, &req, &caller.key_id).await?;
    let location = format!("{BASE_PATH}/matches/{}", m.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(m.into())))
}

async fn get_match(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MatchView>, ApiError> {
    Ok(Json(state.store.get_match(&caller.tenant, &id).await?.into()))
}

/// `{note}` of confirm, reject and unmatch.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    #[serde(default)]
    note: Option<String>,
}

async fn act(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: MatchAction,
    body: &[u8],
) -> Result<Json<MatchView>, ApiError> {
    let note = optional_body::<NoteBody>(body)?.unwrap_or_default().note;
    let note = optional_text("note", note, MAX_NOTE_CHARS)?;
    let m = act_on_match(state.store.as_ref(), &caller.tenant, id, action, &caller.key_id, note.as_deref()).await?;
    Ok(Json(m.into()))
}

async fn confirm_match(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    RawBody(body): RawBody,
) -> Result<Json<MatchView>, ApiError> {
    act(&state, &caller, &id, MatchAction::Confirm, &body).await
}

async fn reject_match(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    RawBody(body): RawBody,
) -> Result<Json<MatchView>, ApiError> {
    act(&state, &caller, &id, MatchAction::Reject, &body).await
}

async fn unmatch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    RawBody(body): RawBody,
) -> Result<Json<MatchView>, ApiError> {
    act(&state, &caller, &id, MatchAction::Unmatch, &body).await
}

/// A discrepancy as the API shows it.
#[derive(Debug, Serialize)]
pub struct DiscrepancyView {
    id: String,
    account_id: String,
    reconciliation_id: Option<String>,
    kind: DiscrepancyKind,
    status: &'static str,
    amount: String,
    date: NaiveDate,
    bank_transaction_ids: Vec<String>,
    record_ids: Vec<String>,
    match_id: Option<String>,
    description: String,
    proposal: Option<String>,
    resolution: Option<Resolution>,
    created_at: DateTime<Utc>,
}

impl From<Discrepancy> for DiscrepancyView {
    fn from(d: Discrepancy) -> Self {
        DiscrepancyView {
            id: d.id,
            account_id: d.account_id,
            reconciliation_id: d.run_id,
            kind: d.kind,
            status: if d.resolution.is_some() { "resolved" } else { "open" },
            amount: d.amount.to_string(),
            date: d.date,
            bank_transaction_ids: d.transaction_ids,
            record_ids: d.record_ids,
            match_id: d.match_id,
            description: d.description,
            proposal: d.proposal,
            resolution: d.resolution,
            created_at: d.created_at,
        }
    }
}

/// `GET /discrepancies` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscrepancyParams {
    account_id: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list_discrepancies(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DiscrepancyParams>,
) -> Result<Json<Paged<DiscrepancyView>>, ApiError> {
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref())?;
    let open = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some("open") => Some(true),
        Some("resolved") => Some(false),
        Some(other) => {
            return Err(ApiError::invalid_parameter("status", format!("invalid `status` {other:?}: open or resolved")))
        }
    };
    let account = q.account_id.filter(|a| !a.is_empty());
    if let Some(account) = &account {
        state.store.get_account(&caller.tenant, account).await?;
    }
    let items = state
        .store
        .list_discrepancies(&caller.tenant, account.as_deref(), open, page.cursor.as_deref(), page.limit)
        .await?;
    Ok(Json(Paged::from_page(items, DiscrepancyView::from)))
}

async fn get_discrepancy(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DiscrepancyView>, ApiError> {
    Ok(Json(state.store.get_discrepancy(&caller.tenant, &id).await?.into()))
}

/// `POST /discrepancies/{id}/resolve` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    action: ResolutionAction,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<ResolveBody>,
) -> Result<Json<DiscrepancyView>, ApiError> {
    let note = optional_text("note", body.note, MAX_NOTE_CHARS)?
        .ok_or_else(|| ApiError::invalid_parameter("note", "`note` must say why"))?;
    let account = optional_text("account", body.account, 200)?;
    if body.action == ResolutionAction::WriteOff && account.is_none() {
        return Err(ApiError::invalid_parameter("account", "write_off needs the ledger `account` to write off to"));
    }
    let req = ResolveRequest { action: body.action, account, note };
    let d = resolve_discrepancy(state.store.as_ref(), &caller.tenant, &id, &req, &caller.key_id).await?;
    Ok(Json(d.into()))
}

/// `POST /reconciliations/{id}/complete` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CompleteBody {
    #[serde(default)]
    override_reason: Option<String>,
}

async fn complete_reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    RawBody(body): RawBody,
) -> Result<Json<RunView>, ApiError> {
    let reason = optional_body::<CompleteBody>(&body)?.unwrap_or_default().override_reason;
    let reason = optional_text("override_reason", reason, MAX_NOTE_CHARS)?;
    let run = complete(state.store.as_ref(), &caller.tenant, &id, reason.as_deref(), &caller.key_id).await?;
    Ok(Json(RunView::new(&run, false)))
}

/// `POST /reconciliations/{id}/unlock` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlockBody {
    reason: String,
}

async fn unlock_reconciliation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<UnlockBody>,
) -> Result<Json<RunView>, ApiError> {
    let reason = optional_text("reason", Some(body.reason), MAX_NOTE_CHARS)?
        .ok_or_else(|| ApiError::invalid_parameter("reason", "`reason` must say why the period is reopened"))?;
    let run = state.store.unlock_run(&caller.tenant, &id, &reason, &caller.key_id).await?;
    Ok(Json(RunView::new(&run, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: &str) -> NaiveDate {
        NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_reversed_or_overlong_period_is_refused_naming_the_field() {
        let err = check_period(day("2026-03-31"), day("2026-03-01")).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { ref details, .. } if details["field"] == "start_date"));
        let err = check_period(day("2020-01-01"), day("2026-03-01")).unwrap_err();
        assert!(matches!(err, ApiError::BadRequest { ref details, .. } if details["field"] == "end_date"));
        assert!(check_period(day("2024-01-01"), day("2024-12-31")).is_ok());
        assert!(check_period(day("2026-03-01"), day("2026-03-01")).is_ok());
    }

    #[test]
    fn an_empty_optional_body_is_none_and_a_broken_one_is_refused() {
        assert!(optional_body::<NoteBody>(b"  \n").unwrap().is_none());
        assert_eq!(optional_body::<NoteBody>(br#"{"note":"n"}"#).unwrap().unwrap().note.as_deref(), Some("n"));
        assert!(optional_body::<NoteBody>(b"{").is_err());
        assert!(optional_body::<NoteBody>(br#"{"nope":1}"#).is_err());
    }

    #[test]
    fn a_resolution_with_an_unknown_action_does_not_parse() {
        assert!(serde_json::from_str::<ResolveBody>(r#"{"action":"delete","note":"x"}"#).is_err());
        let ok: ResolveBody = serde_json::from_str(r#"{"action":"write_off","account":"6800","note":"fee"}"#).unwrap();
        assert_eq!(ok.action, ResolutionAction::WriteOff);
    }
}
