//! The `api` function from real API Gateway REST proxy events, on the embedded store.

use std::sync::Arc;

use axum::Router;
use bankrec::api::{app, AppState};
use bankrec::store::keys::create_key;
use bankrec::store::{FsBlobs, SqliteKeyStore, SqliteStore, TenantId};
use http_body_util::BodyExt;
use lambda_http::http::StatusCode;

struct Api {
    router: Router,
    key: String,
    _dir: tempfile::TempDir,
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let keys = SqliteKeyStore::open_dir(dir.path()).unwrap();
    let key = create_key(&keys, &TenantId::new("acme").unwrap()).await.unwrap().secret;
    let state = AppState::new(Arc::new(store), Arc::new(FsBlobs::new(dir.path().join("blobs"))), Arc::new(keys));
    Api { router: app(state), key, _dir: dir }
}

fn fixture(name: &str, key: &str) -> lambda_http::Request {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap().replace("${API_KEY}", key);
    lambda_http::request::from_str(&text).unwrap()
}

async fn call(api: &Api, req: lambda_http::Request) -> (StatusCode, serde_json::Value) {
    let response = bankrec_api::handle(api.router.clone(), req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn health_answers_through_the_stage_prefix() {
    let api = api().await;
    let req = fixture("apigw-rest-health.json", "");
    assert_eq!(req.uri().path(), "/Prod/v1/bank-reconciliation/health");
    let (status, _) = call(&api, req).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn an_account_is_created_with_the_key_of_the_event() {
    let api = api().await;
    let (status, body) = call(&api, fixture("apigw-rest-create-account.json", &api.key)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["currency"], "EUR");
    assert!(body["id"].as_str().is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn a_request_without_a_key_is_refused_with_the_error_envelope() {
    let api = api().await;
    let (status, body) = call(&api, fixture("apigw-rest-list-accounts-no-key.json", "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn a_stage_named_like_the_base_paths_first_segment_is_not_cut_twice() {
    let text = std::fs::read_to_string(format!("{}/../fixtures/apigw-rest-health.json", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .replace("\"stage\": \"Prod\"", "\"stage\": \"v1\"");
    let req = lambda_http::request::from_str(&text).unwrap();
    assert_eq!(bankrec_api::strip_stage(req).uri().path(), "/v1/bank-reconciliation/health");
}

#[tokio::test]
async fn the_query_string_survives_the_stage_removal() {
    let api = api().await;
    let req = bankrec_api::strip_stage(fixture("apigw-rest-list-accounts-no-key.json", ""));
    assert_eq!(req.uri().path(), "/v1/bank-reconciliation/accounts");
    assert_eq!(req.uri().query(), Some("limit=10"));
    drop(api);
}
