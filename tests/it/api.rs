//! The REST API end to end through the router (`oneshot`, no socket) over the embedded store:
//! the happy path, authentication, tenant isolation on every route and bad input on every route.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use bankrec::api::{self, AppState, BASE_PATH};
use bankrec::reports::{LocalDispatch, LocalLinks};
use bankrec::store::keys::create_key;
use bankrec::store::{Blobs, FsBlobs, SqliteKeyStore, SqliteStore, TenantId};
use serde_json::{json, Value};
use tower::ServiceExt;

/// A router over a fresh data folder, with one key for each of two tenants.
pub(crate) struct TestApp {
    pub(crate) router: Router,
    pub(crate) key_a: String,
    pub(crate) key_b: String,
    pub(crate) data: PathBuf,
    _dir: tempfile::TempDir,
    #[cfg(feature = "aws")]
    _s3: Option<crate::aws::S3Server>,
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_with(|state| state).await
}

/// [`spawn_app`] with the state adjusted (another run wait, another upload signer).
pub(crate) async fn spawn_app_with(adjust: impl FnOnce(AppState) -> AppState) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = SqliteStore::open_dir(&data).unwrap();
    let keys = SqliteKeyStore::open_dir(&data).unwrap();
    let key_a = create_key(&keys, &TenantId::new("tenant-a").unwrap()).await.unwrap().secret;
    let key_b = create_key(&keys, &TenantId::new("tenant-b").unwrap()).await.unwrap().secret;
    let (store, blobs) = (Arc::new(store), Arc::new(FsBlobs::new(data.join("blobs"))));
    let dispatch = Arc::new(LocalDispatch::new(store.clone(), store.clone(), blobs.clone()));
    let state = AppState::new(store.clone(), blobs, Arc::new(keys)).with_reports(store, Arc::new(LocalLinks), dispatch);
    let router = api::app(adjust(state));
    TestApp {
        router,
        key_a,
        key_b,
        data,
        _dir: dir,
        #[cfg(feature = "aws")]
        _s3: None,
    }
}

/// The same router over the AWS adapters: a fresh DynamoDB Local table (also holding the keys)
/// and a fresh bucket of the in-process S3 server; `None` (the test skips) without DynamoDB Local.
#[cfg(feature = "aws")]
pub(crate) async fn spawn_aws_app() -> Option<TestApp> {
    let store = Arc::new(crate::aws::fresh_store().await?);
    let dir = tempfile::tempdir().unwrap();
    let s3 = crate::aws::S3Server::start(dir.path()).await;
    let blobs = Arc::new(s3.fresh_bucket().await);
    let key_a = create_key(store.as_ref(), &TenantId::new("tenant-a").unwrap()).await.unwrap().secret;
    let key_b = create_key(store.as_ref(), &TenantId::new("tenant-b").unwrap()).await.unwrap().secret;
    let dispatch = Arc::new(LocalDispatch::new(store.clone(), store.clone(), blobs.clone()));
    let state = AppState::new(store.clone(), blobs, store.clone()).with_reports(store, Arc::new(LocalLinks), dispatch);
    let data = dir.path().join("data");
    Some(TestApp { router: api::app(state), key_a, key_b, data, _dir: dir, _s3: Some(s3) })
}

impl TestApp {
    /// Sends one request; `path` is below the base path. Answers the status and the JSON body.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(format!("{BASE_PATH}{path}"));
        if let Some(key) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let response = self.router.clone().oneshot(req.body(body.into()).unwrap()).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20).await.unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        (status, json)
    }

    pub(crate) async fn get(&self, key: &str, path: &str) -> (StatusCode, Value) {
        self.send("GET", path, Some(key), Body::empty()).await
    }

    pub(crate) async fn post(&self, key: &str, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        self.send("POST", path, Some(key), body).await
    }

    pub(crate) async fn post_json(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.post(key, path, body.to_string()).await
    }

    /// Creates an account and answers its id.
    pub(crate) async fn account(&self, key: &str, currency: &str) -> String {
        let (status, body) = self.post_json(key, "/accounts", json!({"name": "Operating", "currency": currency})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Files under the blob folder.
    pub(crate) fn blob_count(&self) -> usize {
        fn walk(p: &Path) -> usize {
            std::fs::read_dir(p)
                .map(|d| d.flatten().map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 }).sum::<usize>())
                .unwrap_or(0)
        }
        walk(&self.data.join("blobs"))
    }
}

/// An OFX statement with one line per `(day, amount, fitid)` in March 2026.
pub(crate) fn ofx(currency: &str, lines: &[(u32, &str, &str)], closing: &str) -> Vec<u8> {
    let mut s = format!(
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>\
         <STMTRS><CURDEF>{currency}<BANKACCTFROM><BANKID>1<ACCTID>555<ACCTTYPE>CHECKING</BANKACCTFROM>\
         <BANKTRANLIST><DTSTART>20260301<DTEND>20260331\n"
    );
    for (day, amount, fitid) in lines {
        s.push_str(&format!(
            "<STMTTRN><TRNTYPE>OTHER<DTPOSTED>202603{day:02}<TRNAMT>{amount}<FITID>{fitid}<NAME>Payee {fitid}</STMTTRN>\n"
        ));
    }
    s.push_str(&format!(
        "</BANKTRANLIST><LEDGERBAL><BALAMT>{closing}<DTASOF>20260331</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n"
    ));
    s.into_bytes()
}

pub(crate) fn march() -> Vec<u8> {
    ofx("EUR", &[(2, "-12.50", "F1"), (3, "100.00", "F2"), (5, "-7.25", "F3")], "80.25")
}

const RECORDS_JSON: &str = r#"[
  {"id": "INV-1", "kind": "invoice", "date": "2026-03-01", "amount": "100.00", "currency": "EUR", "counterparty": "Acme"},
  {"id": "B-7", "kind": "bill", "date": "2026-03-02", "amount": "-12.50", "currency": "EUR"}
]"#;

pub(crate) fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"].get("details").is_some(), "{body}");
}

#[tokio::test]
async fn health_answers_without_a_key() {
    let app = spawn_app().await;
    let (status, body) = app.send("GET", "/health", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn an_account_statement_and_records_go_in_and_come_back_out() {
    let app = spawn_app().await;
    let key = &app.key_a;

    let (status, account) = app
        .post_json(
            key,
            "/accounts",
            json!({"name": "Operating", "currency": "EUR", "iban": "DE89370400440532013000", "opening_balance": "0.00"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    let id = account["id"].as_str().unwrap();
    assert!(id.starts_with("acc_"));
    assert_eq!(account["currency"], "EUR");
    assert_eq!(account["opening_balance"], "0.00");
    assert_eq!(app.get(key, &format!("/accounts/{id}")).await.1, account);
    let (_, list) = app.get(key, "/accounts").await;
    assert_eq!(list["items"], json!([account]));
    assert_eq!(list["cursor"], Value::Null);

    let (status, imported) = app.post(key, &format!("/accounts/{id}/statements?file_name=march.ofx"), march()).await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    assert!(imported["statement_id"].as_str().unwrap().starts_with("stm_"));
    assert_eq!(imported["format"], "ofx");
    assert_eq!(imported["transactions_imported"], 3);
    assert_eq!(imported["duplicates_skipped"], 0);
    assert_eq!(imported["start_date"], "2026-03-01");
    assert_eq!(imported["end_date"], "2026-03-31");
    assert_eq!(imported["closing_balance"], "80.25");
    assert!(imported.get("opening_balance").is_some());

    let (status, again) = app.post(key, &format!("/accounts/{id}/statements"), march()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["transactions_imported"], 0);
    assert_eq!(again["statement_id"], imported["statement_id"]);

    let (status, txns) = app.get(key, &format!("/accounts/{id}/transactions")).await;
    assert_eq!(status, StatusCode::OK, "{txns}");
    let items = txns["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let first = &items[0];
    for field in ["id", "external_id", "date", "amount", "description", "status", "match_id"] {
        assert!(first.get(field).is_some(), "transaction lacks {field}: {first}");
    }
    assert_eq!(first["external_id"], "F1");
    assert_eq!(first["date"], "2026-03-02");
    assert_eq!(first["amount"], "-12.50");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["match_id"], Value::Null);

    let (_, filtered) = app.get(key, &format!("/accounts/{id}/transactions?from=2026-03-03&to=2026-03-04")).await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let (_, none) = app.get(key, &format!("/accounts/{id}/transactions?status=matched")).await;
    assert_eq!(none["items"], json!([]));

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit=2&cursor={c}"),
            None => "?limit=2".into(),
        };
        let (status, page) = app.get(key, &format!("/accounts/{id}/transactions{query}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|t| t["external_id"].as_str().unwrap().to_string()));
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["F1", "F2", "F3"]);

    let (_, statements) = app.get(key, &format!("/accounts/{id}/statements")).await;
    assert_eq!(statements["items"].as_array().unwrap().len(), 1);

    let (status, outcome) = app.post(key, "/records", RECORDS_JSON).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome, json!({"imported": 2, "updated": 0, "duplicates_skipped": 0}));
    let csv = "id,kind,date,amount,currency,counterparty,reference,description\n\
               INV-1,invoice,2026-03-01,100.00,EUR,Acme,,\n\
               B-7,bill,2026-03-02,-13.50,EUR,,,\n\
               EXP-1,expense,2026-03-05,-7.25,EUR,,,Coffee\n";
    let (status, outcome) = app.post(key, "/records", csv).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome, json!({"imported": 1, "updated": 1, "duplicates_skipped": 1}));

    let (_, records) = app.get(key, "/records").await;
    let ids: Vec<_> = records["items"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["INV-1", "B-7", "EXP-1"]);
    let (_, bills) = app.get(key, "/records?kind=bill&status=pending").await;
    assert_eq!(bills["items"].as_array().unwrap().len(), 1);
    assert_eq!(bills["items"][0]["amount"], "-13.50");
    let (status, record) = app.get(key, "/records/INV-1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(record["counterparty"], "Acme");
    assert_eq!(record["status"], "pending");
}

/// Every authenticated route, with `{id}` filled in.
fn authenticated_routes() -> Vec<(String, String)> {
    api::routes()
        .into_iter()
        .filter(|r| r.authenticated)
        .map(|r| (r.method.to_string(), r.path.replace("{id}", "acc_0000").replace("{name}", "10-check-number")))
        .collect()
}

#[tokio::test]
async fn every_route_but_health_refuses_a_missing_or_invalid_key_with_401() {
    let app = spawn_app().await;
    let routes = authenticated_routes();
    assert!(routes.len() >= 9);
    for (method, path) in routes {
        for auth in [None, Some("Bearer bkr_0000"), Some(&*format!("Basic {}", app.key_a)), Some("Bearer ")] {
            let mut req = Request::builder().method(method.as_str()).uri(format!("{BASE_PATH}{path}"));
            if let Some(value) = auth {
                req = req.header(header::AUTHORIZATION, value);
            }
            let response = app.router.clone().oneshot(req.body(Body::from("{}")).unwrap()).await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {path} with {auth:?}");
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            let body: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn a_second_tenant_sees_nothing_of_the_first_on_every_route() {
    second_tenant_sees_nothing(&spawn_app().await).await;
}

#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tenant_sees_nothing_of_the_first_on_every_route_on_dynamodb_and_s3() {
    if let Some(app) = spawn_aws_app().await {
        second_tenant_sees_nothing(&app).await;
    }
}

/// Every authenticated route, called with the second tenant's key on the first tenant's objects.
async fn second_tenant_sees_nothing(app: &TestApp) {
    let (a, b) = (&app.key_a, &app.key_b);
    let account = app.account(a, "EUR").await;
    assert_eq!(app.post(a, &format!("/accounts/{account}/statements"), march()).await.0, StatusCode::CREATED);
    assert_eq!(app.post(a, "/records", RECORDS_JSON).await.0, StatusCode::OK);
    let mut covered = BTreeSet::new();
    let mut cover = |method: &str, path: &str| covered.insert((method.to_string(), path.to_string()));

    cover("GET", "/accounts");
    let (status, list) = app.get(b, "/accounts").await;
    assert_eq!((status, list["items"].clone()), (StatusCode::OK, json!([])));

    cover("GET", "/accounts/{id}");
    let (status, body) = app.get(b, &format!("/accounts/{account}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    cover("POST", "/accounts/{id}/statements");
    let other = ofx("EUR", &[(9, "1.00", "B1")], "1.00");
    let (status, body) = app.post(b, &format!("/accounts/{account}/statements"), other).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = app.post(b, &format!("/accounts/{account}/statements"), march()).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    cover("GET", "/accounts/{id}/statements");
    let (status, body) = app.get(b, &format!("/accounts/{account}/statements")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    cover("GET", "/accounts/{id}/reconciliations");
    let (status, body) = app.get(b, &format!("/accounts/{account}/reconciliations")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    cover("GET", "/accounts/{id}/transactions");
    let (status, body) = app.get(b, &format!("/accounts/{account}/transactions")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    cover("GET", "/records");
    let (status, list) = app.get(b, "/records").await;
    assert_eq!((status, list["items"].clone()), (StatusCode::OK, json!([])));

    cover("GET", "/records/{id}");
    let (status, body) = app.get(b, "/records/INV-1").await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // The same books id in another tenant is another record: imported, not an update of A's.
    cover("POST", "/records");
    let changed = r#"[{"id": "INV-1", "kind": "invoice", "date": "2026-03-09", "amount": "5.00", "currency": "USD"}]"#;
    let (status, outcome) = app.post(b, "/records", changed).await;
    assert_eq!((status, outcome), (StatusCode::OK, json!({"imported": 1, "updated": 0, "duplicates_skipped": 0})));

    // B's own account and records stay B's.
    cover("POST", "/accounts");
    let b_account = app.account(b, "EUR").await;
    let (status, body) = app.get(a, &format!("/accounts/{b_account}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    // A's reconciliation state: a run, its matches, a discrepancy and a saved rule.
    let period = json!({"account_id": account, "start_date": "2026-03-01", "end_date": "2026-03-31"});
    let (status, run) = app.post_json(a, "/reconcile", period.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let run_id = run["reconciliation_id"].as_str().unwrap().to_string();
    let (_, matches) = app.get(a, &format!("/reconciliations/{run_id}/matches")).await;
    let a_match = matches["items"][0].clone();
    let match_id = a_match["id"].as_str().unwrap().to_string();
    let (_, discrepancies) = app.get(a, "/discrepancies").await;
    let dis_id = discrepancies["items"][0]["id"].as_str().unwrap().to_string();
    let rule = "fn pair(bank, record, f) { () }";
    let (status, _) = app.send("PUT", "/rules/90-a", Some(a), Body::from(rule)).await;
    assert_eq!(status, StatusCode::CREATED);

    let not_found: Vec<(&str, &str, String, Value)> = vec![
        ("POST", "/reconcile", "/reconcile".into(), period.clone()),
        ("GET", "/reconciliations/{id}", format!("/reconciliations/{run_id}"), Value::Null),
        ("GET", "/reconciliations/{id}/matches", format!("/reconciliations/{run_id}/matches"), Value::Null),
        (
            "POST",
            "/reconciliations/{id}/complete",
            format!("/reconciliations/{run_id}/complete"),
            json!({"override_reason": "b"}),
        ),
        ("POST", "/reconciliations/{id}/unlock", format!("/reconciliations/{run_id}/unlock"), json!({"reason": "b"})),
        (
            "POST",
            "/matches",
            "/matches".into(),
            json!({"bank_transaction_ids": a_match["bank_transaction_ids"], "record_ids": ["INV-1"]}),
        ),
        ("GET", "/matches/{id}", format!("/matches/{match_id}"), Value::Null),
        ("POST", "/matches/{id}/confirm", format!("/matches/{match_id}/confirm"), Value::Null),
        ("POST", "/matches/{id}/reject", format!("/matches/{match_id}/reject"), Value::Null),
        ("DELETE", "/matches/{id}", format!("/matches/{match_id}"), Value::Null),
        ("GET", "/discrepancies", format!("/discrepancies?account_id={account}"), Value::Null),
        ("GET", "/discrepancies/{id}", format!("/discrepancies/{dis_id}"), Value::Null),
        (
            "POST",
            "/discrepancies/{id}/resolve",
            format!("/discrepancies/{dis_id}/resolve"),
            json!({"action": "ignore", "note": "b"}),
        ),
        ("GET", "/rules/{name}", "/rules/90-a".into(), Value::Null),
        ("GET", "/rules/{name}/versions", "/rules/90-a/versions".into(), Value::Null),
        ("POST", "/rules/{name}/rollback", "/rules/90-a/rollback".into(), json!({"version": 1})),
        ("POST", "/rules/{name}/test", "/rules/20-bank-charges/test".into(), period.clone()),
        (
            "POST",
            "/accounts/{id}/statements/upload-url",
            format!("/accounts/{account}/statements/upload-url"),
            Value::Null,
        ),
    ];
    for (method, route, path, body) in not_found {
        cover(method, route);
        let body = if body.is_null() { Body::empty() } else { Body::from(body.to_string()) };
        let (status, err) = app.send(method, &path, Some(b), body).await;
        assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
        assert!(!err.to_string().contains("Payee"), "{route} leaks A's data: {err}");
    }
    cover("GET", "/discrepancies");
    assert_eq!(app.get(b, "/discrepancies").await.1["items"], json!([]));
    cover("GET", "/rules");
    let (_, rules) = app.get(b, "/rules").await;
    assert!(rules["items"].as_array().unwrap().iter().all(|r| r["name"] != "90-a"), "{rules}");
    cover("POST", "/rules/validate");
    assert_eq!(app.post(b, "/rules/validate", rule).await.0, StatusCode::OK);
    // B saving the same name makes B's first version, not A's second.
    cover("PUT", "/rules/{name}");
    let (status, b_rule) = app.send("PUT", "/rules/90-a", Some(b), Body::from(rule)).await;
    assert_eq!((status, &b_rule["version"]), (StatusCode::CREATED, &json!(1)));

    // A's reconciliation state is untouched.
    let (_, run_now) = app.get(a, &format!("/reconciliations/{run_id}")).await;
    assert_eq!(run_now["status"], "completed");
    assert_eq!(app.get(a, &format!("/matches/{match_id}")).await.1["status"], a_match["status"]);
    assert_eq!(app.get(a, &format!("/discrepancies/{dis_id}")).await.1["status"], "open");
    assert_eq!(app.get(a, "/rules/90-a/versions").await.1["items"].as_array().unwrap().len(), 1);

    // A's data is untouched.
    let (_, record) = app.get(a, "/records/INV-1").await;
    assert_eq!((record["amount"].as_str(), record["currency"].as_str()), (Some("100.00"), Some("EUR")));
    let (_, txns) = app.get(a, &format!("/accounts/{account}/transactions")).await;
    assert_eq!(txns["items"].as_array().unwrap().len(), 3);
    let (_, accounts) = app.get(a, "/accounts").await;
    assert_eq!(accounts["items"].as_array().unwrap().len(), 1);

    // Reports: B can neither report on A's account nor see or download A's report.
    cover("POST", "/reports");
    let request =
        json!({"account_id": account, "start_date": "2026-03-01", "end_date": "2026-03-31", "format": "json"});
    let (status, created) = app.post_json(a, "/reports", request.clone()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let (status, body) = app.post_json(b, "/reports", request).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    let report = created["report_id"].as_str().unwrap();
    cover("GET", "/reports/{id}");
    let (status, body) = app.get(b, &format!("/reports/{report}")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    cover("GET", "/reports/{id}/download");
    let (status, body) = app.get(b, &format!("/reports/{report}/download")).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");

    let all: BTreeSet<_> = api::routes()
        .into_iter()
        .filter(|r| r.authenticated)
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(covered, all, "tenant isolation must be checked on every authenticated route");
}

#[tokio::test]
async fn the_same_file_uploaded_twice_at_once_is_imported_once() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let account = app.account(key, "EUR").await;
    let path = format!("/accounts/{account}/statements");
    let (first, second) = tokio::join!(app.post(key, &path, march()), app.post(key, &path, march()));
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED], "{} / {}", first.1, second.1);
    let imported =
        first.1["transactions_imported"].as_u64().unwrap() + second.1["transactions_imported"].as_u64().unwrap();
    assert_eq!(imported, 3);
    assert_eq!(
        app.get(key, &format!("/accounts/{account}/transactions")).await.1["items"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn a_created_account_is_where_its_location_header_says() {
    let app = spawn_app().await;
    let req = Request::builder()
        .method("POST")
        .uri(format!("{BASE_PATH}/accounts"))
        .header(header::AUTHORIZATION, format!("Bearer {}", app.key_a))
        .body(Body::from(r#"{"name": "Ops", "currency": "USD"}"#))
        .unwrap();
    let response = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()[header::LOCATION].to_str().unwrap().to_string();
    let path = location.strip_prefix(BASE_PATH).unwrap();
    let (status, account) = app.get(&app.key_a, path).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(account["currency"], "USD");
}

#[tokio::test]
async fn malformed_or_mistyped_json_is_a_400_and_creates_nothing() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let cases: [(&str, &str); 7] = [
        ("{\"name\": \"Ops\", ", "malformed_json"),
        ("not json", "malformed_json"),
        ("", "malformed_json"),
        (r#"{"name": 5, "currency": "EUR"}"#, "invalid_request"),
        (r#"{"currency": "EUR"}"#, "invalid_request"),
        (r#"{"name": "Ops", "currency": "EUR", "colour": "red"}"#, "invalid_request"),
        (r#"{"name": "Ops", "currency": "EUR", "opening_balance": 12.5}"#, "invalid_request"),
    ];
    for (body, code) in cases {
        let (status, err) = app.post(key, "/accounts", body).await;
        assert_error(status, &err, StatusCode::BAD_REQUEST, code);
    }
    let (status, err) = app.post(key, "/accounts", "{\n  \"name\": \"Ops\",\n  \"currency\": }").await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "malformed_json");
    assert_eq!(err["error"]["details"]["line"], 3);
    for (body, field) in [
        (json!({"name": "Ops", "currency": "EURO"}), "currency"),
        (json!({"name": "  ", "currency": "EUR"}), "name"),
        (json!({"name": "Ops", "currency": "EUR", "opening_balance": "1.234,56"}), "opening_balance"),
        (json!({"name": "x".repeat(201), "currency": "EUR"}), "name"),
    ] {
        let (status, err) = app.post_json(key, "/accounts", body).await;
        assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_parameter");
        assert_eq!(err["error"]["details"]["field"], field);
    }
    assert_eq!(app.get(key, "/accounts").await.1["items"], json!([]));
}

#[tokio::test]
async fn bodies_over_each_routes_limit_are_refused_with_413() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let account = app.account(key, "EUR").await;

    let huge_json = format!("{{\"name\": \"{}\", \"currency\": \"EUR\"}}", "x".repeat(api::JSON_BODY_LIMIT));
    let (status, err) = app.post(key, "/accounts", huge_json).await;
    assert_error(status, &err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let mut huge_statement = march();
    huge_statement.resize(api::STATEMENT_BODY_LIMIT + 1, b'\n');
    let (status, err) = app.post(key, &format!("/accounts/{account}/statements"), huge_statement).await;
    assert_error(status, &err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let mut huge_records = b"id,kind,date,amount,currency\n".to_vec();
    huge_records.resize(api::RECORDS_BODY_LIMIT + 1, b'\n');
    let (status, err) = app.post(key, "/records", huge_records).await;
    assert_error(status, &err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // A statement over the JSON limit but under the statement limit is accepted.
    let mut big = march();
    big.resize(api::JSON_BODY_LIMIT + 1024, b'\n');
    assert_eq!(app.post(key, &format!("/accounts/{account}/statements"), big).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn an_unparseable_statement_is_a_422_with_its_position_and_nothing_is_stored() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let account = app.account(key, "EUR").await;
    let path = format!("/accounts/{account}/statements");

    let mut bad_amount = ofx("EUR", &[(2, "-12.50", "F1"), (3, "12..0", "F2")], "0");
    let (status, err) = app.post(key, &format!("{path}?file_name=bad.ofx"), bad_amount.clone()).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "unparseable_statement");
    let details = &err["error"]["details"];
    assert_eq!(details["file"], "bad.ofx");
    assert_eq!(details["format"], "ofx");
    assert!(details["line"].is_u64(), "{err}");
    assert!(details.get("column").is_some() && details.get("field").is_some(), "{err}");

    bad_amount.truncate(bad_amount.len() / 2);
    for body in [b"\x00\x01 hello".to_vec(), Vec::new(), b"   \n".to_vec(), bad_amount] {
        let (status, err) = app.post(key, &path, body).await;
        assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "unparseable_statement");
    }

    let (status, err) = app.post(key, &path, ofx("USD", &[(2, "1.00", "U1")], "1.00")).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "currency_mismatch");

    let (status, err) = app.post(key, &format!("{path}?format=mt940"), march()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");

    assert_eq!(app.get(key, &path).await.1["items"], json!([]));
    assert_eq!(app.get(key, &format!("/accounts/{account}/transactions")).await.1["items"], json!([]));
    assert_eq!(app.blob_count(), 0, "a refused statement must leave no raw file behind");
}

#[tokio::test]
async fn invalid_parameters_are_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let account = app.account(key, "EUR").await;
    let txns = format!("/accounts/{account}/transactions");
    let statements = format!("/accounts/{account}/statements");
    let cases = [
        ("GET", format!("{txns}?status=done"), Some("status")),
        ("GET", format!("{txns}?from=2026-13-01"), Some("from")),
        ("GET", format!("{txns}?to=31.03.2026"), Some("to")),
        ("GET", format!("{txns}?from=2026-03-10&to=2026-03-01"), Some("from")),
        ("GET", format!("{txns}?limit=-1"), Some("limit")),
        ("GET", format!("{txns}?limit=100000"), Some("limit")),
        ("GET", format!("{txns}?cursor=garbage"), None),
        ("GET", format!("{txns}?stauts=pending"), None),
        ("GET", "/accounts?limit=many".to_string(), Some("limit")),
        ("GET", "/accounts?page=2".to_string(), None),
        ("GET", "/records?status=open".to_string(), Some("status")),
        ("GET", "/records?kind=receipt".to_string(), Some("kind")),
        ("GET", "/records?from=2026-02-30".to_string(), Some("from")),
        ("GET", "/records?status=pending&status=matched".to_string(), None),
        ("POST", format!("{statements}?format=pdf"), Some("format")),
        ("POST", format!("{statements}?date_order=dym"), Some("date_order")),
    ];
    for (method, path, field) in cases {
        let (status, err) = app.send(method, &path, Some(key), Body::from(march())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {err}");
        assert!(err["error"]["code"].as_str().is_some_and(|c| c.starts_with("invalid")), "{path}: {err}");
        if let Some(field) = field {
            assert_eq!(err["error"]["details"]["field"], field, "{path}: {err}");
        }
    }
    assert_eq!(app.get(key, &statements).await.1["items"], json!([]));
}

#[tokio::test]
async fn unknown_ids_are_a_404_on_every_route_that_takes_one() {
    let app = spawn_app().await;
    let key = &app.key_a;
    for (method, path) in [
        ("GET", "/accounts/acc_missing"),
        ("GET", "/accounts/acc_missing/statements"),
        ("GET", "/accounts/acc_missing/transactions"),
        ("POST", "/accounts/acc_missing/statements"),
        ("GET", "/records/NOPE-1"),
        ("GET", "/accounts/%2E%2E%2Fetc"),
    ] {
        let (status, err) = app.send(method, path, Some(key), Body::from(march())).await;
        assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(app.blob_count(), 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_envelope() {
    let app = spawn_app().await;
    let (status, err) = app.get(&app.key_a, "/reconciliations").await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    let (status, err) = app.send("DELETE", "/accounts", Some(&app.key_a), Body::empty()).await;
    assert_error(status, &err, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let req = Request::builder().method("PUT").uri(format!("{BASE_PATH}/health")).body(Body::empty()).unwrap();
    let response = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET,HEAD");
}

#[tokio::test]
async fn bad_records_are_refused_whole_and_nothing_is_stored() {
    let app = spawn_app().await;
    let key = &app.key_a;

    let (status, err) = app.post(key, "/records", "[{\"id\": \"A\",").await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "malformed_json");

    let wrong_type = r#"[{"id": "A", "kind": "invoice", "date": "2026-03-01", "amount": "1.00", "currency": "EUR"},
                         {"id": 7, "kind": "invoice", "date": "2026-03-01", "amount": "1.00", "currency": "EUR"}]"#;
    let (status, err) = app.post(key, "/records", wrong_type).await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_record");
    assert_eq!(err["error"]["details"]["line"], 2);

    let bad_date = r#"[{"id": "A", "kind": "invoice", "date": "2026-02-30", "amount": "1.00", "currency": "EUR"}]"#;
    let (status, err) = app.post(key, "/records", bad_date).await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_record");
    assert_eq!(err["error"]["details"]["field"], "date");

    let not_an_array = r#"{"id": "A"}"#;
    let (status, err) = app.post(key, "/records", not_an_array).await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_record");

    let csv = "id,kind,date,amount,currency\nA,invoice,2026-03-01,1.00,EUR\nB,invoice,01/03/2026,1.00,EUR\n";
    let (status, err) = app.post(key, "/records", csv).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_records");
    assert_eq!(err["error"]["details"]["line"], 3);
    assert_eq!(err["error"]["details"]["field"], "date");

    for body in ["", "id,date\n1,2026-03-01\n", "\u{0}\u{1}\u{2}"] {
        let (status, err) = app.post(key, "/records", body).await;
        assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_records");
    }
    let (status, err) = app.post(key, "/records", vec![0xff, 0xfe, b'i', b'd']).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_records");

    assert_eq!(app.get(key, "/records").await.1["items"], json!([]));
}

/// Kills the server when the test ends, however it ends.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request over a plain socket; answers the whole response as text.
fn http(addr: &str, path: &str, key: Option<&str>) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let auth = key.map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
    write!(stream, "GET {BASE_PATH}{path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn keys_create_prints_a_key_that_bankrec_serve_accepts_for_that_tenant() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_bankrec");

    let out = Command::new(bin).args(["keys", "create", "--tenant", "acme", "--data"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(key.starts_with("bkr_") && !key.contains(char::is_whitespace), "{key:?}");
    let refused = Command::new(bin).args(["keys", "create", "--tenant", "no spaces", "--data"]).arg(&data).output();
    assert!(!refused.unwrap().status.success());

    let child = Command::new(bin)
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = ServerProcess(child);
    let mut lines = std::io::BufReader::new(server.0.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split("http.addr=").nth(1).map(|a| a.split_whitespace().next().unwrap_or("").to_string()))
        .expect("the server logs its address");
    // Keep draining the log so that the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));

    assert!(http(&addr, "/health", None).starts_with("HTTP/1.1 200"));
    assert!(http(&addr, "/accounts", None).starts_with("HTTP/1.1 401"));
    let accounts = http(&addr, "/accounts", Some(&key));
    assert!(accounts.starts_with("HTTP/1.1 200"), "{accounts}");
    assert!(accounts.contains(r#"{"items":[],"cursor":null}"#), "{accounts}");
}

#[tokio::test]
async fn a_statement_that_fails_to_import_from_storage_is_listed_as_a_failed_run_with_its_reason() {
    let app = spawn_app().await;
    let account = app.account(&app.key_a, "EUR").await;
    // The S3 trigger's path over the embedded ports: the file lands in blobs, then is ingested.
    let store = SqliteStore::open_dir(&app.data).unwrap();
    let blobs = FsBlobs::new(app.data.join("blobs"));
    let key = format!("statements/tenant-a/{account}/broken.csv");
    let file = "Date,Description,Amount\n2024-03-01,Fee,-5.00\n2024-03-04,Payment,not-a-number\n";
    blobs.put(&bankrec::store::BlobKey::new(&key).unwrap(), file.as_bytes(), "text/csv").await.unwrap();
    let outcome =
        bankrec::lambda::ingest::ingest_object(&store, &blobs, &key, &bankrec::matching::EngineConfig::default())
            .await
            .unwrap();
    assert_eq!(outcome.kind(), "failed");

    let (status, runs) = app.get(&app.key_a, &format!("/accounts/{account}/reconciliations")).await;
    assert_eq!(status, StatusCode::OK);
    let items = runs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{runs}");
    assert_eq!(items[0]["status"], "failed");
    let error = items[0]["error"].as_str().unwrap();
    assert!(error.starts_with("statement broken.csv could not be imported: "), "{error}");
    assert!(error.contains("broken.csv:3:3") && error.contains("Amount"), "line, column and field: {error}");
    assert_eq!(runs["cursor"], Value::Null);
    let (_, statements) = app.get(&app.key_a, &format!("/accounts/{account}/statements")).await;
    assert_eq!(statements["items"], json!([]), "nothing of the file is stored");
    let (status, other) = app.get(&app.key_b, &format!("/accounts/{account}/reconciliations")).await;
    assert_error(status, &other, StatusCode::NOT_FOUND, "not_found");
}
