//! The tenant's Rhai matching rules: the effective set (shipped defaults, replaced or extended by
//! saved versions), saving a new version (compiled first), validating, rolling back, and trying a
//! rule on real data before it goes live.
//!
//! `POST /rules/{name}/test` compares two dry runs of the same period: the active rules, and the
//! candidate set in which `{name}` is replaced by the `source` given in the body or, without one,
//! by the rule's latest saved version (which differs from the active one after a rollback).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::recon::check_period;
use crate::api::error::ApiError;
use crate::api::extract::{ApiPath, Caller, JsonBody, RawBody};
use crate::api::pagination::Paged;
use crate::api::{ApiRoute, AppState};
use crate::matching::Summary;
use crate::rules::{RuleSet, DEFAULT_RULES, MAX_SOURCE_SIZE};
use crate::store::{RuleVersion, StoreError, StoredMatch};
use crate::workflows::reconcile::{dry_run_with_rules, tenant_rules, tenant_rules_with, ReconcileRequest};

/// Longest rule name.
const MAX_NAME_LEN: usize = 64;

/// The rule routes.
pub fn routes() -> Vec<ApiRoute> {
    vec![
        ApiRoute::get("/rules", list_rules),
        ApiRoute::post("/rules/validate", validate_rule).body_limit(MAX_SOURCE_SIZE),
        ApiRoute::get("/rules/{name}", get_rule),
        ApiRoute::put("/rules/{name}", save_rule).body_limit(MAX_SOURCE_SIZE),
        ApiRoute::post("/rules/{name}/test", test_rule),
        ApiRoute::get("/rules/{name}/versions", list_versions),
        ApiRoute::post("/rules/{name}/rollback", rollback_rule),
    ]
}

/// A rule name: 1–64 ASCII letters, digits, `-` and `_` (the defaults are `10-check-number`...),
/// so that names sort into a priority order and are safe in keys and paths.
fn rule_name(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::invalid_parameter("name", "a rule name is 1-64 of A-Z a-z 0-9 - _"))
    }
}

/// A rule's source from a raw body.
fn source(body: &[u8]) -> Result<&str, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::BadRequest {
        code: "invalid_request",
        message: format!("a rule's source must be UTF-8 text: {e}"),
        details: json!({ "byte": e.valid_up_to() }),
    })?;
    if text.trim().is_empty() {
        return Err(ApiError::BadRequest {
            code: "invalid_request",
            message: "the body must be the rule's Rhai source".into(),
            details: Value::Null,
        });
    }
    Ok(text)
}

/// A rule as the API shows it: `version` is a number for a saved version and `"default"` for a
/// shipped rule no saved version replaces.
#[derive(Debug, Serialize)]
pub struct RuleView {
    name: String,
    version: Value,
    active: bool,
    source: String,
    created_by: Option<String>,
    created_at: Option<DateTime<Utc>>,
}

impl From<RuleVersion> for RuleView {
    fn from(r: RuleVersion) -> Self {
        RuleView {
            name: r.name,
            version: json!(r.version),
            active: r.active,
            source: r.source,
            created_by: Some(r.created_by),
            created_at: Some(r.created_at),
        }
    }
}

fn default_rule(name: &str) -> Option<RuleView> {
    DEFAULT_RULES.iter().find(|(n, _)| *n == name).map(|(n, s)| RuleView {
        name: n.to_string(),
        version: json!("default"),
        active: true,
        source: s.to_string(),
        created_by: None,
        created_at: None,
    })
}

/// The effective rules, in priority (name) order.
async fn effective(state: &AppState, caller: &Caller) -> Result<Vec<RuleView>, ApiError> {
    let mut rules: BTreeMap<String, RuleView> =
        DEFAULT_RULES.iter().filter_map(|(n, _)| default_rule(n)).map(|r| (r.name.clone(), r)).collect();
    for saved in state.store.active_rules(&caller.tenant).await? {
        rules.insert(saved.name.clone(), saved.into());
    }
    Ok(rules.into_values().collect())
}

async fn list_rules(State(state): State<AppState>, caller: Caller) -> Result<Json<Paged<RuleView>>, ApiError> {
    Ok(Json(Paged { items: effective(&state, &caller).await?, cursor: None }))
}

async fn get_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<RuleView>, ApiError> {
    let name = rule_name(&name)?;
    effective(&state, &caller)
        .await?
        .into_iter()
        .find(|r| r.name == name)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound { what: "rule", id: name.to_string() })
}

async fn save_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    RawBody(body): RawBody,
) -> Result<(StatusCode, Json<RuleView>), ApiError> {
    let name = rule_name(&name)?;
    let source = source(&body)?;
    RuleSet::compile(name, source)?;
    let saved = state.store.save_rule(&caller.tenant, name, source, &caller.key_id).await?;
    tracing::info!(rule.name = name, rule.version = saved.version, "rule saved");
    Ok((StatusCode::CREATED, Json(saved.into())))
}

async fn validate_rule(RawBody(body): RawBody) -> Result<Json<Value>, ApiError> {
    RuleSet::compile("candidate", source(&body)?)?;
    Ok(Json(json!({ "valid": true })))
}

async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Paged<RuleView>>, ApiError> {
    let name = rule_name(&name)?;
    let items = match state.store.rule_versions(&caller.tenant, name).await {
        Ok(versions) => versions.into_iter().map(RuleView::from).collect(),
        // A shipped rule nobody changed has one version: the default.
        Err(StoreError::NotFound { .. }) if default_rule(name).is_some() => default_rule(name).into_iter().collect(),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(Paged { items, cursor: None }))
}

/// `POST /rules/{name}/rollback` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    version: u64,
}

async fn rollback_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<RollbackBody>,
) -> Result<Json<RuleView>, ApiError> {
    let name = rule_name(&name)?;
    let versions = state.store.rule_versions(&caller.tenant, name).await?;
    let target = versions
        .iter()
        .find(|v| v.version == body.version)
        .ok_or_else(|| ApiError::NotFound { what: "rule version", id: format!("{name}@{}", body.version) })?;
    // Compiled when saved, but the engine may have changed since: never activate what fails now.
    RuleSet::compile(name, &target.source)?;
    let active = state.store.activate_rule(&caller.tenant, name, body.version, &caller.key_id).await?;
    tracing::info!(rule.name = name, rule.version = active.version, "rule rolled back");
    Ok(Json(active.into()))
}

/// `POST /rules/{name}/test` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    account_id: String,
    start_date: NaiveDate,
    end_date: NaiveDate,
    #[serde(default)]
    source: Option<String>,
}

/// A match of one dry run, keyed by its items.
#[derive(Debug, Clone, Serialize)]
struct TestMatch {
    bank_transaction_ids: Vec<String>,
    record_ids: Vec<String>,
    status: crate::store::MatchState,
    confidence: f64,
    rule: Option<String>,
    difference: String,
}

/// A match both runs found with another status or deciding rule.
#[derive(Debug, Serialize)]
struct Changed {
    bank_transaction_ids: Vec<String>,
    record_ids: Vec<String>,
    before: TestMatch,
    after: TestMatch,
}

fn keyed(matches: Vec<StoredMatch>) -> BTreeMap<(Vec<String>, Vec<String>), TestMatch> {
    matches
        .into_iter()
        .map(|m| {
            let (mut bank, mut records) = (m.bank_transaction_ids, m.record_ids);
            bank.sort();
            records.sort();
            let view = TestMatch {
                bank_transaction_ids: bank.clone(),
                record_ids: records.clone(),
                status: m.state,
                confidence: m.confidence,
                rule: m.rule,
                difference: m.difference.to_string(),
            };
            ((bank, records), view)
        })
        .collect()
}

fn summary(s: &Summary) -> Value {
    json!({
        "matched": s.matched,
        "suggested": s.suggested,
        "discrepancies": s.discrepancies,
        "unmatched_bank": s.unmatched_bank,
        "unmatched_records": s.unmatched_records,
    })
}

async fn test_rule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    JsonBody(body): JsonBody<TestBody>,
) -> Result<Json<Value>, ApiError> {
    let name = rule_name(&name)?;
    check_period(body.start_date, body.end_date)?;
    let (candidate, origin) = match body.source {
        Some(source) if source.len() > MAX_SOURCE_SIZE => return Err(ApiError::PayloadTooLarge),
        Some(source) => (source, json!("body")),
        None => match state.store.rule_versions(&caller.tenant, name).await {
            Ok(versions) => {
                let latest = versions
                    .into_iter()
                    .max_by_key(|v| v.version)
                    .ok_or_else(|| ApiError::NotFound { what: "rule", id: name.to_string() })?;
                (latest.source, json!(latest.version))
            }
            Err(StoreError::NotFound { .. }) => match DEFAULT_RULES.iter().find(|(n, _)| *n == name) {
                Some((_, s)) => (s.to_string(), json!("default")),
                None => return Err(ApiError::NotFound { what: "rule", id: name.to_string() }),
            },
            Err(e) => return Err(e.into()),
        },
    };
    RuleSet::compile(name, &candidate)?;
    let req = ReconcileRequest {
        account_id: body.account_id,
        start_date: body.start_date,
        end_date: body.end_date,
        dry_run: true,
        actor: caller.key_id.clone(),
    };
    let store = state.store.as_ref();
    let active_rules = tenant_rules(store, &caller.tenant).await?;
    let candidate_rules = tenant_rules_with(store, &caller.tenant, Some((name, &candidate))).await?;
    let before = dry_run_with_rules(store, &caller.tenant, &req, &state.engine, active_rules).await?;
    let after = dry_run_with_rules(store, &caller.tenant, &req, &state.engine, candidate_rules).await?;
    let (old, new) = (keyed(before.matches), keyed(after.matches));
    let gained: Vec<&TestMatch> = new.iter().filter(|(k, _)| !old.contains_key(*k)).map(|(_, m)| m).collect();
    let lost: Vec<&TestMatch> = old.iter().filter(|(k, _)| !new.contains_key(*k)).map(|(_, m)| m).collect();
    let changed: Vec<Changed> = new
        .iter()
        .filter_map(|(k, after)| {
            let before = old.get(k)?;
            (before.status != after.status || before.rule != after.rule).then(|| Changed {
                bank_transaction_ids: k.0.clone(),
                record_ids: k.1.clone(),
                before: before.clone(),
                after: after.clone(),
            })
        })
        .collect();
    Ok(Json(json!({
        "rule": name,
        "candidate": origin,
        "active_summary": summary(&before.run.summary),
        "candidate_summary": summary(&after.run.summary),
        "gained": gained,
        "lost": lost,
        "changed": changed,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_are_short_and_safe() {
        assert!(rule_name("10-check-number").is_ok());
        assert!(rule_name("my_rule").is_ok());
        for bad in ["", "a b", "../x", "ü", &"x".repeat(65)] {
            assert!(rule_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_source_must_be_non_blank_utf8() {
        assert!(source(b"fn pair(b, r, f) { () }").is_ok());
        assert!(source(b"  \n").is_err());
        assert!(source(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn every_default_rule_is_shown_as_version_default() {
        for (name, _) in DEFAULT_RULES {
            let view = default_rule(name).unwrap();
            assert_eq!(view.version, json!("default"));
            assert!(view.active);
        }
        assert!(default_rule("99-nope").is_none());
    }
}
