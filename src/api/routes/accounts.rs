//! Accounts, their statement uploads and their bank transactions.

use axum::extract::State;
use axum::http::{header, HeaderName, StatusCode};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::optional_text;
use crate::api::error::ApiError;
use crate::api::extract::{date_param, date_range, param, ApiPath, ApiQuery, Caller, JsonBody, RawBody};
use crate::api::pagination::{PageRequest, Paged};
use crate::api::{ApiRoute, AppState, BASE_PATH, STATEMENT_BODY_LIMIT};
use crate::domain::{Currency, Money};
use crate::parse::{DateOrder, Format, ParseOptions};
use crate::store::model::new_id;
use crate::store::{Account, ItemStatus, StatementImport, StoredTransaction, TransactionQuery};
use crate::workflows::import::import_statement;

/// The account routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::post("/accounts", create_account),
        ApiRoute::get("/accounts", list_accounts),
        ApiRoute::get("/accounts/{id}", get_account),
        ApiRoute::post("/accounts/{id}/statements", upload_statement).body_limit(STATEMENT_BODY_LIMIT),
        ApiRoute::get("/accounts/{id}/statements", list_statements),
        ApiRoute::get("/accounts/{id}/transactions", list_transactions),
    ]
}

/// `POST /accounts` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Display name.
    pub name: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Local account number.
    #[serde(default)]
    pub account_number: Option<String>,
    /// IBAN.
    #[serde(default)]
    pub iban: Option<String>,
    /// Balance before the first statement, as a decimal string (never a JSON number: money is
    /// exact).
    #[serde(default)]
    pub opening_balance: Option<String>,
}

/// An account as the API shows it.
#[derive(Debug, Serialize)]
pub struct AccountView {
    id: String,
    name: String,
    currency: Currency,
    account_number: Option<String>,
    iban: Option<String>,
    opening_balance: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            name: a.name,
            currency: a.currency,
            account_number: a.account_number,
            iban: a.iban,
            opening_balance: a.opening_balance.map(|m| m.to_fixed()),
            created_at: a.created_at,
        }
    }
}

fn parse_new_account(body: NewAccount) -> Result<Account, ApiError> {
    let name = optional_text("name", Some(body.name), 200)?
        .ok_or_else(|| ApiError::invalid_parameter("name", "`name` must not be blank"))?;
    let currency = Currency::new(&body.currency).map_err(|e| ApiError::invalid_parameter("currency", e.to_string()))?;
    let opening_balance = match optional_text("opening_balance", body.opening_balance, 64)? {
        Some(text) => Some(Money::new(
            Decimal::from_str_exact(&text).map_err(|_| {
                ApiError::invalid_parameter(
                    "opening_balance",
                    format!("invalid `opening_balance` {text:?}: expected a decimal string such as \"-1234.56\""),
                )
            })?,
            currency,
        )),
        None => None,
    };
    Ok(Account {
        id: new_id("acc"),
        name,
        currency,
        account_number: optional_text("account_number", body.account_number, 64)?,
        iban: optional_text("iban", body.iban, 64)?,
        opening_balance,
        created_at: Utc::now(),
    })
}

async fn create_account(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewAccount>,
) -> Result<(StatusCode, [(HeaderName, String); 1], Json<AccountView>), ApiError> {
    let account = parse_new_account(body)?;
    state.store.create_account(&caller.tenant, &account).await?;
    let location = format!("{BASE_PATH}/accounts/{}", account.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(account.into())))
}

/// `cursor` and `limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    cursor: Option<String>,
    limit: Option<String>,
}

async fn list_accounts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageParams>,
) -> Result<Json<Paged<AccountView>>, ApiError> {
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref())?;
    let accounts = state.store.list_accounts(&caller.tenant, page.cursor.as_deref(), page.limit).await?;
    Ok(Json(Paged::from_page(accounts, AccountView::from)))
}

async fn get_account(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AccountView>, ApiError> {
    Ok(Json(state.store.get_account(&caller.tenant, &id).await?.into()))
}

/// `POST /accounts/{id}/statements` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadParams {
    format: Option<String>,
    date_order: Option<String>,
    file_name: Option<String>,
}

/// A statement import as the API shows it.
#[derive(Debug, Serialize)]
pub struct StatementView {
    statement_id: String,
    file_name: String,
    format: Format,
    transactions_imported: usize,
    duplicates_skipped: usize,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
    opening_balance: Option<String>,
    closing_balance: Option<String>,
    imported_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<Vec<String>>,
}

impl From<StatementImport> for StatementView {
    fn from(i: StatementImport) -> Self {
        StatementView {
            statement_id: i.id,
            file_name: i.file_name,
            format: i.format,
            transactions_imported: i.transactions_imported,
            duplicates_skipped: i.duplicates_skipped,
            start_date: i.start_date,
            end_date: i.end_date,
            opening_balance: i.opening_balance.map(|m| m.to_fixed()),
            closing_balance: i.closing_balance.map(|m| m.to_fixed()),
            imported_at: i.imported_at,
            warnings: None,
        }
    }
}

async fn upload_statement(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<UploadParams>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<StatementView>), ApiError> {
    let options = ParseOptions {
        format: param::<Format>("format", q.format.as_deref())?,
        date_order: param::<DateOrder>("date_order", q.date_order.as_deref())?,
        ..ParseOptions::default()
    };
    let file_name = optional_text("file_name", q.file_name, 200)?.unwrap_or_else(|| "upload".to_string());
    let started = std::time::Instant::now();
    let outcome =
        import_statement(state.store.as_ref(), state.blobs.as_ref(), &caller.tenant, &id, &file_name, &body, &options)
            .await?;
    tracing::info!(
        import.id = %outcome.import.id,
        import.format = outcome.import.format.as_str(),
        import.bytes = body.len(),
        import.transactions_imported = outcome.import.transactions_imported,
        import.duplicates_skipped = outcome.import.duplicates_skipped,
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "statement imported"
    );
    let status = if outcome.created { StatusCode::CREATED } else { StatusCode::OK };
    let mut view = StatementView::from(outcome.import);
    view.warnings = Some(outcome.warnings.into_iter().map(|w| w.message).collect());
    Ok((status, Json(view)))
}

async fn list_statements(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Paged<StatementView>>, ApiError> {
    // Another tenant's account must be a 404, not an empty list.
    state.store.get_account(&caller.tenant, &id).await?;
    let imports = state.store.list_imports(&caller.tenant, &id).await?;
    Ok(Json(Paged { items: imports.into_iter().map(StatementView::from).collect(), cursor: None }))
}

/// `GET /accounts/{id}/transactions` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionParams {
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// A bank transaction as the API shows it.
#[derive(Debug, Serialize)]
pub struct TransactionView {
    id: String,
    external_id: String,
    date: NaiveDate,
    value_date: Option<NaiveDate>,
    amount: String,
    currency: Currency,
    description: String,
    payee: Option<String>,
    reference: Option<String>,
    status: ItemStatus,
    match_id: Option<String>,
    statement_id: String,
}

impl From<StoredTransaction> for TransactionView {
    fn from(t: StoredTransaction) -> Self {
        TransactionView {
            id: t.id,
            external_id: t.transaction.id.into(),
            date: t.transaction.booking_date,
            value_date: t.transaction.value_date,
            amount: t.transaction.amount.to_fixed(),
            currency: t.transaction.amount.currency(),
            description: t.transaction.description.into(),
            payee: t.transaction.payee.map(String::from),
            reference: t.transaction.reference.map(String::from),
            status: t.status,
            match_id: t.match_id,
            statement_id: t.statement_id,
        }
    }
}

async fn list_transactions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<TransactionParams>,
) -> Result<Json<Paged<TransactionView>>, ApiError> {
    let page = PageRequest::parse(q.cursor.as_deref(), q.limit.as_deref())?;
    let (from, to) = (date_param("from", q.from.as_deref())?, date_param("to", q.to.as_deref())?);
    date_range(from, to)?;
    let query = TransactionQuery {
        status: param::<ItemStatus>("status", q.status.as_deref())?,
        from,
        to,
        cursor: page.cursor,
        limit: page.limit,
    };
    state.store.get_account(&caller.tenant, &id).await?;
    let transactions = state.store.list_transactions(&caller.tenant, &id, &query).await?;
    Ok(Json(Paged::from_page(transactions, TransactionView::from)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn body(json: &str) -> NewAccount {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_new_account_keeps_its_opening_balance_exactly() {
        let a = parse_new_account(body(r#"{"name":" Ops ","currency":"eur","opening_balance":"1234.565"}"#)).unwrap();
        assert_eq!(a.name, "Ops");
        assert_eq!(a.currency, Currency::EUR);
        assert_eq!(a.opening_balance.unwrap().amount(), Decimal::from_str("1234.565").unwrap());
        assert!(a.id.starts_with("acc_"));
    }

    #[test]
    fn a_blank_name_an_unknown_currency_or_a_bad_balance_is_refused() {
        assert!(parse_new_account(body(r#"{"name":"  ","currency":"EUR"}"#)).is_err());
        assert!(parse_new_account(body(r#"{"name":"A","currency":"EURO"}"#)).is_err());
        assert!(parse_new_account(body(r#"{"name":"A","currency":"EUR","opening_balance":"12,5"}"#)).is_err());
    }

    #[test]
    fn an_opening_balance_given_as_a_json_number_is_a_type_error() {
        assert!(serde_json::from_str::<NewAccount>(r#"{"name":"A","currency":"EUR","opening_balance":12.5}"#).is_err());
    }
}
