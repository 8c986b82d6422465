//! Reconciliations through the API end to end: reconcile, review, resolve, complete and lock;
//! rules; upload URLs.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{json, Value};

use super::api::{assert_error, spawn_app, spawn_app_with, TestApp};

const STATEMENT: &[u8] = include_bytes!("../../samples/statement-2026-03.ofx");
const RECORDS: &[u8] = include_bytes!("../../samples/records-2026-03.csv");
const VETO_INVOICES: &str =
    "fn pair(bank, record, f) {\n  if record.kind == \"invoice\" { return veto(\"no invoices\"); }\n  ()\n}\n";

/// An account with the sample statement and records: answers its id.
pub(crate) async fn loaded(app: &TestApp, key: &str) -> String {
    let account = app.account(key, "USD").await;
    let (status, body) = app.post(key, &format!("/accounts/{account}/statements"), STATEMENT).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.post(key, "/records", RECORDS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    account
}

pub(crate) fn march(account: &str) -> Value {
    json!({"account_id": account, "start_date": "2026-03-01", "end_date": "2026-03-31"})
}

fn items(body: &Value) -> Vec<Value> {
    body["items"].as_array().cloned().unwrap_or_default()
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_period_is_reconciled_reviewed_resolved_completed_and_then_locked() {
    period_flow(&spawn_app().await).await;
}

#[cfg(feature = "aws")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_period_is_reconciled_reviewed_resolved_completed_and_then_locked_on_dynamodb_and_s3() {
    if let Some(app) = super::api::spawn_aws_app().await {
        period_flow(&app).await;
    }
}

/// The whole review of a period through the API, on whichever store `app` runs.
async fn period_flow(app: &TestApp) {
    let key = &app.key_a;
    let account = loaded(app, key).await;

    let (status, run) = app.post_json(key, "/reconcile", march(&account)).await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["status"], "completed");
    for field in ["matched", "suggested", "discrepancies", "unmatched_bank", "unmatched_records"] {
        assert!(run["summary"][field].is_u64(), "summary lacks {field}: {run}");
    }
    assert!(run["summary"]["matched"].as_u64().unwrap() >= 10, "{run}");
    let run_id = run["reconciliation_id"].as_str().unwrap().to_string();
    let (status, fetched) = app.get(key, &format!("/reconciliations/{run_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&fetched["status"], &fetched["start_date"], &fetched["end_date"]),
        (&run["status"], &json!("2026-03-01"), &json!("2026-03-31"))
    );

    // The matches speak the ids the transactions listing shows and the books' own record ids.
    let (_, all) = app.get(key, &format!("/reconciliations/{run_id}/matches")).await;
    let first = &items(&all)[0];
    for field in [
        "id",
        "status",
        "bank_transaction_ids",
        "record_ids",
        "confidence",
        "method",
        "rule",
        "difference",
        "explanation",
    ] {
        assert!(first.get(field).is_some(), "match lacks {field}: {first}");
    }
    let (_, txns) = app.get(key, &format!("/accounts/{account}/transactions?limit=1000")).await;
    let txn_ids: Vec<String> = items(&txns).iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
    for m in items(&all) {
        assert!(ids(&m["bank_transaction_ids"]).iter().all(|id| txn_ids.contains(id)), "{m}");
    }
    assert!(items(&all).iter().any(|m| ids(&m["record_ids"]).contains(&"CHK-1042".to_string())));

    // Confirm the discrepancy match; confirming twice is a conflict.
    let (_, disc) = app.get(key, &format!("/reconciliations/{run_id}/matches?status=discrepancy")).await;
    let disc_match = items(&disc)[0]["id"].as_str().unwrap().to_string();
    let (status, confirmed) = app.post(key, &format!("/matches/{disc_match}/confirm"), "").await;
    assert_eq!((status, &confirmed["status"]), (StatusCode::OK, &json!("confirmed")), "{confirmed}");
    let (status, err) = app.post(key, &format!("/matches/{disc_match}/confirm"), "").await;
    assert_error(status, &err, StatusCode::CONFLICT, "conflict");

    // Reject one match, undo another and match its items again by hand.
    let (_, matched) = app.get(key, &format!("/reconciliations/{run_id}/matches?status=matched&limit=2")).await;
    let (rejected, undone) = (items(&matched)[0].clone(), items(&matched)[1].clone());
    let path = format!("/matches/{}/reject", rejected["id"].as_str().unwrap());
    let (status, body) = app.post_json(key, &path, json!({"note": "wrong customer"})).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("rejected")), "{body}");
    let (status, body) =
        app.send("DELETE", &format!("/matches/{}", undone["id"].as_str().unwrap()), Some(key), Body::empty()).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("unmatched")), "{body}");
    let manual = json!({"bank_transaction_ids": undone["bank_transaction_ids"], "record_ids": undone["record_ids"], "note": "same payment"});
    let (status, made) = app.post_json(key, "/matches", manual.clone()).await;
    assert_eq!(
        (status, &made["status"], &made["method"]),
        (StatusCode::CREATED, &json!("manual"), &json!("manual")),
        "{made}"
    );
    let (status, err) = app.post_json(key, "/matches", manual).await;
    assert_error(status, &err, StatusCode::CONFLICT, "conflict");
    let (status, again) = app.get(key, &format!("/matches/{}", made["id"].as_str().unwrap())).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &made["id"]));

    // Completing is refused while discrepancies are open.
    let (status, err) = app.post(key, &format!("/reconciliations/{run_id}/complete"), "").await;
    assert_error(status, &err, StatusCode::CONFLICT, "conflict");
    assert!(err["error"]["message"].as_str().unwrap().contains("discrepanc"), "{err}");

    let (_, open) = app.get(key, &format!("/discrepancies?account_id={account}&status=open")).await;
    let open = items(&open);
    assert!(open.len() >= 3, "{open:?}");
    let first_id = open[0]["id"].as_str().unwrap();
    let resolve = format!("/discrepancies/{first_id}/resolve");
    let (status, err) = app.post_json(key, &resolve, json!({"action": "write_off", "note": "fee"})).await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_parameter");
    let (status, err) = app.post_json(key, &resolve, json!({"action": "ignore", "note": "  "})).await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_parameter");
    for d in &open {
        let action = match d["kind"].as_str().unwrap() {
            "missing_in_books" => json!({"action": "create_record", "note": "booked from the bank line"}),
            "amount_mismatch" => json!({"action": "write_off", "account": "6800 Bank fees", "note": "wire fee"}),
            _ => json!({"action": "ignore", "note": "paid in April"}),
        };
        let (status, body) =
            app.post_json(key, &format!("/discrepancies/{}/resolve", d["id"].as_str().unwrap()), action).await;
        assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("resolved")), "{body}");
    }
    let (status, err) = app.post_json(key, &resolve, json!({"action": "ignore", "note": "again"})).await;
    assert_error(status, &err, StatusCode::CONFLICT, "conflict");
    let (_, still_open) = app.get(key, &format!("/discrepancies?account_id={account}&status=open")).await;
    assert_eq!(items(&still_open), Vec::<Value>::new());
    let (_, resolved) = app.get(key, "/discrepancies?status=resolved").await;
    assert_eq!(items(&resolved).len(), open.len());

    let (status, done) = app.post(key, &format!("/reconciliations/{run_id}/complete"), "").await;
    assert_eq!((status, &done["status"]), (StatusCode::OK, &json!("reconciled")), "{done}");

    // The period is locked: neither a run's match nor a manual one can be undone.
    for id in [&disc_match, made["id"].as_str().unwrap()] {
        let (status, err) = app.send("DELETE", &format!("/matches/{id}"), Some(key), Body::empty()).await;
        assert_error(status, &err, StatusCode::CONFLICT, "conflict");
    }
    let (_, locked) = app.get(key, &format!("/reconciliations/{run_id}")).await;
    assert_eq!(locked["status"], "reconciled");

    // Unlocking needs a reason and reopens the period.
    let unlock = format!("/reconciliations/{run_id}/unlock");
    let (status, err) = app.post_json(key, &unlock, json!({"reason": ""})).await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_parameter");
    let (status, reopened) = app.post_json(key, &unlock, json!({"reason": "late bank correction"})).await;
    assert_eq!((status, &reopened["status"]), (StatusCode::OK, &json!("completed")), "{reopened}");
    let (status, body) = app.send("DELETE", &format!("/matches/{disc_match}"), Some(key), Body::empty()).await;
    assert_eq!((status, &body["status"]), (StatusCode::OK, &json!("unmatched")), "{body}");
}

#[tokio::test]
async fn a_run_that_takes_longer_than_the_wait_answers_202_and_finishes_in_the_background() {
    let app = spawn_app_with(|s| s.with_run_wait(Duration::ZERO)).await;
    let key = &app.key_a;
    let account = loaded(&app, key).await;
    let (status, run) = app.post_json(key, "/reconcile", march(&account)).await;
    assert_eq!((status, &run["status"]), (StatusCode::ACCEPTED, &json!("running")), "{run}");
    let path = format!("/reconciliations/{}", run["reconciliation_id"].as_str().unwrap());
    let mut last = Value::Null;
    for _ in 0..500 {
        last = app.get(key, &path).await.1;
        if last["status"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last["status"], "completed", "{last}");
    assert!(last["summary"]["matched"].as_u64().unwrap() > 0, "{last}");
}

#[tokio::test]
async fn a_dry_run_stores_nothing_and_a_bad_period_is_a_400() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let account = loaded(&app, key).await;
    let mut dry = march(&account);
    dry["dry_run"] = json!(true);
    let (status, run) = app.post_json(key, "/reconcile", dry).await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert!(run["summary"]["matched"].as_u64().unwrap() > 0);
    let (status, err) = app.get(key, &format!("/reconciliations/{}", run["reconciliation_id"].as_str().unwrap())).await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    let (_, matched) = app.get(key, &format!("/accounts/{account}/transactions?status=matched")).await;
    assert_eq!(items(&matched), Vec::<Value>::new());

    for (body, code) in [
        (json!({"account_id": account, "start_date": "2026-03-31", "end_date": "2026-03-01"}), "invalid_parameter"),
        (json!({"account_id": account, "start_date": "2020-01-01", "end_date": "2026-03-01"}), "invalid_parameter"),
        (json!({"account_id": account, "start_date": "2026-02-30", "end_date": "2026-03-31"}), "invalid_request"),
        (json!({"account_id": account, "start_date": "2026-03-01"}), "invalid_request"),
        (
            json!({"account_id": account, "start_date": "2026-03-01", "end_date": "2026-03-31", "dry_run": "yes"}),
            "invalid_request",
        ),
    ] {
        let (status, err) = app.post_json(key, "/reconcile", body.clone()).await;
        assert_error(status, &err, StatusCode::BAD_REQUEST, code);
    }
    let (status, err) = app.post(key, "/reconcile", "{\"account_id\": ").await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "malformed_json");
    let (status, err) = app.post_json(key, "/reconcile", march("acc_missing")).await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(items(&app.get(key, "/discrepancies").await.1), Vec::<Value>::new());
}

#[tokio::test]
async fn bad_manual_matches_and_resolutions_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let account = loaded(&app, key).await;
    let (_, txns) = app.get(key, &format!("/accounts/{account}/transactions?limit=1")).await;
    let txn = items(&txns)[0]["id"].clone();
    for (body, status, code) in [
        (json!({"bank_transaction_ids": [], "record_ids": ["CHK-1042"]}), StatusCode::BAD_REQUEST, "invalid_parameter"),
        (json!({"bank_transaction_ids": [txn], "record_ids": []}), StatusCode::BAD_REQUEST, "invalid_parameter"),
        (json!({"bank_transaction_ids": [txn], "record_ids": "CHK-1042"}), StatusCode::BAD_REQUEST, "invalid_request"),
        (
            json!({"bank_transaction_ids": ["txn_missing"], "record_ids": ["CHK-1042"]}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (json!({"bank_transaction_ids": [txn], "record_ids": ["NOPE"]}), StatusCode::NOT_FOUND, "not_found"),
    ] {
        let (s, err) = app.post_json(key, "/matches", body).await;
        assert_error(s, &err, status, code);
    }
    let (_, matched) = app.get(key, &format!("/accounts/{account}/transactions?status=matched")).await;
    assert_eq!(items(&matched), Vec::<Value>::new());
    for (method, path) in [
        ("POST", "/matches/mat_missing/confirm"),
        ("POST", "/matches/mat_missing/reject"),
        ("DELETE", "/matches/mat_missing"),
        ("GET", "/matches/mat_missing"),
        ("GET", "/reconciliations/rec_missing"),
        ("GET", "/reconciliations/rec_missing/matches"),
        ("POST", "/reconciliations/rec_missing/complete"),
        ("GET", "/discrepancies/dis_missing"),
        ("GET", "/discrepancies?account_id=acc_missing"),
    ] {
        let (status, err) = app.send(method, path, Some(key), Body::empty()).await;
        assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    }
    let (status, err) =
        app.post_json(key, "/discrepancies/dis_missing/resolve", json!({"action": "ignore", "note": "x"})).await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    let (status, err) =
        app.post_json(key, "/discrepancies/dis_missing/resolve", json!({"action": "shred", "note": "x"})).await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_request");
    for path in
        ["/discrepancies?status=closed", "/reconciliations/rec_x/matches?status=done", "/discrepancies?limit=5000"]
    {
        let (status, err) = app.get(key, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {err}");
    }
}

#[tokio::test]
async fn rules_are_saved_as_versions_validated_with_positions_tested_and_rolled_back() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let account = loaded(&app, key).await;

    let (status, rules) = app.get(key, "/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(items(&rules).len() >= 5);
    assert!(items(&rules).iter().all(|r| r["version"] == "default" && r["source"].is_string()), "{rules}");
    let (_, default) = app.get(key, "/rules/20-bank-charges").await;
    assert_eq!(default["version"], "default");
    let (_, versions) = app.get(key, "/rules/20-bank-charges/versions").await;
    assert_eq!(items(&versions).len(), 1);

    let broken = "fn pair(bank, record, f) {\n  let x = ;\n}\n";
    let (status, err) = app.send("PUT", "/rules/90-mine", Some(key), Body::from(broken)).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule");
    assert_eq!(
        (err["error"]["details"]["rule"].as_str(), err["error"]["details"]["line"].as_u64()),
        (Some("90-mine"), Some(2)),
        "{err}"
    );
    assert!(err["error"]["details"]["column"].is_u64(), "{err}");
    let (status, err) = app.post(key, "/rules/validate", broken).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "invalid_rule");
    let (status, ok) = app.post(key, "/rules/validate", VETO_INVOICES).await;
    assert_eq!((status, ok), (StatusCode::OK, json!({"valid": true})));
    let (status, err) = app.get(key, "/rules/90-mine").await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");

    // Trying the candidate first: it loses the invoice matches the active rules make.
    let mut test = march(&account);
    test["source"] = json!(VETO_INVOICES);
    let (status, diff) = app.post_json(key, "/rules/90-mine/test", test).await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    assert_eq!(diff["candidate"], "body");
    let lost = diff["lost"].as_array().unwrap();
    assert!(!lost.is_empty(), "{diff}");
    assert!(lost.iter().all(|m| ids(&m["record_ids"]).iter().all(|r| r.starts_with("INV"))), "{diff}");
    assert_eq!(diff["gained"].as_array().unwrap().len(), 0, "{diff}");
    assert!(app.get(key, "/reconciliations/rec_x").await.0 == StatusCode::NOT_FOUND);

    let (status, v1) = app.send("PUT", "/rules/90-mine", Some(key), Body::from(VETO_INVOICES)).await;
    assert_eq!((status, &v1["version"]), (StatusCode::CREATED, &json!(1)), "{v1}");
    let (status, v2) =
        app.send("PUT", "/rules/90-mine", Some(key), Body::from("fn pair(bank, record, f) { () }")).await;
    assert_eq!((status, &v2["version"]), (StatusCode::CREATED, &json!(2)), "{v2}");
    let (_, current) = app.get(key, "/rules/90-mine").await;
    assert_eq!(current["version"], 2);
    let (_, versions) = app.get(key, "/rules/90-mine/versions").await;
    assert_eq!(items(&versions).iter().map(|v| v["version"].clone()).collect::<Vec<_>>(), [json!(2), json!(1)]);

    let (status, rolled) = app.post_json(key, "/rules/90-mine/rollback", json!({"version": 1})).await;
    assert_eq!((status, &rolled["version"], &rolled["active"]), (StatusCode::OK, &json!(1), &json!(true)), "{rolled}");
    assert_eq!(app.get(key, "/rules/90-mine").await.1["version"], 1);
    // Without a source the candidate is the latest saved version (2), tried against active 1.
    let (status, diff) = app.post_json(key, "/rules/90-mine/test", march(&account)).await;
    assert_eq!((status, &diff["candidate"]), (StatusCode::OK, &json!(2)), "{diff}");
    assert!(!diff["gained"].as_array().unwrap().is_empty(), "{diff}");

    for (method, path, body, status) in [
        ("POST", "/rules/90-mine/rollback", json!({"version": 9}), StatusCode::NOT_FOUND),
        ("POST", "/rules/90-mine/rollback", json!({"version": -1}), StatusCode::BAD_REQUEST),
        ("POST", "/rules/90-mine/rollback", json!({"version": "1"}), StatusCode::BAD_REQUEST),
        ("POST", "/rules/99-none/test", march(&account), StatusCode::NOT_FOUND),
        (
            "POST",
            "/rules/90-mine/test",
            json!({"account_id": account, "start_date": "2026-04-01", "end_date": "2026-03-01"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/rules/90-mine/test",
            json!({"account_id": account, "start_date": "2026-03-01", "end_date": "2026-03-31", "source": "fn ("}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, err) = app.send(method, path, Some(key), Body::from(body.to_string())).await;
        assert_eq!(s, status, "{path}: {err}");
    }
    for body in [Body::from(""), Body::from(vec![0xff, 0xfe]), Body::from("x".repeat(300 * 1024))] {
        let (status, err) = app.send("PUT", "/rules/91-bad", Some(key), body).await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    }
    let (status, _) = app.send("PUT", "/rules/bad%20name", Some(key), Body::from(VETO_INVOICES)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, err) = app.get(key, "/rules/91-bad/versions").await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn an_upload_url_imports_and_reconciles_once_and_refuses_tampering() {
    let app = spawn_app().await;
    let key = &app.key_a;
    let account = app.account(key, "USD").await;
    assert_eq!(app.post(key, "/records", RECORDS).await.0, StatusCode::OK);

    let (status, grant) =
        app.post(key, &format!("/accounts/{account}/statements/upload-url?file_name=march.ofx"), "").await;
    assert_eq!(status, StatusCode::CREATED, "{grant}");
    let url = grant["url"].as_str().unwrap();
    assert!(grant["key"].as_str().unwrap().starts_with(&format!("statements/tenant-a/{account}/")), "{grant}");
    assert!(grant["key"].as_str().unwrap().ends_with("-march.ofx"), "{grant}");
    assert!(grant["expires_at"].is_string());
    let token = url.rsplit('/').next().unwrap();
    assert!(url.ends_with(&format!("/v1/bank-reconciliation/uploads/{token}")), "{url}");
    let path = format!("/uploads/{token}");

    let mut tampered = token.to_string();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(tampered.len() - 1.., last);
    let (status, err) = app.send("PUT", &format!("/uploads/{tampered}"), None, Body::from(STATEMENT)).await;
    assert_error(status, &err, StatusCode::FORBIDDEN, "forbidden");
    let (status, err) = app.send("PUT", "/uploads/garbage", None, Body::from(STATEMENT)).await;
    assert_error(status, &err, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(items(&app.get(key, &format!("/accounts/{account}/statements")).await.1), Vec::<Value>::new());

    let huge = vec![b'\n'; bankrec::api::STATEMENT_BODY_LIMIT + 1];
    let (status, err) = app.send("PUT", "/uploads/garbage", None, Body::from(huge.clone())).await;
    assert_error(status, &err, StatusCode::FORBIDDEN, "forbidden");
    let (status, err) = app.send("PUT", &path, None, Body::from(huge)).await;
    assert_error(status, &err, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    let (status, err) = app.send("PUT", &path, None, Body::from("not a statement")).await;
    assert_error(status, &err, StatusCode::UNPROCESSABLE_ENTITY, "unparseable_statement");

    let (status, done) = app.send("PUT", &path, None, Body::from(STATEMENT)).await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    assert_eq!(done["statement"]["transactions_imported"], 20);
    assert_eq!(done["reconciliation"]["status"], "completed", "{done}");
    let run = done["reconciliation"]["reconciliation_id"].as_str().unwrap();
    let (_, fetched) = app.get(key, &format!("/reconciliations/{run}")).await;
    assert!(fetched["summary"]["matched"].as_u64().unwrap() > 0, "{fetched}");

    let (status, again) = app.send("PUT", &path, None, Body::from(STATEMENT)).await;
    assert_eq!(
        (status, &again["statement"]["transactions_imported"], &again["reconciliation"]),
        (StatusCode::OK, &json!(0), &Value::Null)
    );

    let (status, err) = app.post(&app.key_b, &format!("/accounts/{account}/statements/upload-url"), "").await;
    assert_error(status, &err, StatusCode::NOT_FOUND, "not_found");
    let (status, err) = app.post(key, &format!("/accounts/{account}/statements/upload-url?file_name=../x"), "").await;
    assert_error(status, &err, StatusCode::BAD_REQUEST, "invalid_parameter");
}

#[tokio::test]
async fn an_expired_upload_url_is_refused_with_403() {
    use bankrec::api::uploads::SignedUploads;
    let signer = SignedUploads::new(vec![3; 32]).with_ttl(chrono::Duration::seconds(-5));
    let app = spawn_app_with(|s| s.with_uploads(std::sync::Arc::new(signer))).await;
    let account = app.account(&app.key_a, "USD").await;
    let (_, grant) = app.post(&app.key_a, &format!("/accounts/{account}/statements/upload-url"), "").await;
    let token = grant["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    let (status, err) = app.send("PUT", &format!("/uploads/{token}"), None, Body::from(STATEMENT)).await;
    assert_error(status, &err, StatusCode::FORBIDDEN, "forbidden");
    assert!(err["error"]["message"].as_str().unwrap().contains("expired"), "{err}");
}

/// A launcher like the AWS one: the run is handed to someone else and not followed here.
struct HandedOff(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl bankrec::api::runs::RunLauncher for HandedOff {
    async fn launch(
        &self,
        _store: std::sync::Arc<dyn bankrec::store::Store>,
        _tenant: bankrec::store::TenantId,
        run_id: String,
        _config: bankrec::matching::EngineConfig,
    ) -> Result<bankrec::api::runs::Launched, Box<dyn std::error::Error + Send + Sync>> {
        self.0.lock().map_err(|e| e.to_string())?.push(run_id);
        Ok(bankrec::api::runs::Launched::Elsewhere)
    }
}

#[tokio::test]
async fn a_run_handed_to_another_launcher_answers_202_at_once_and_stays_running_until_finished() {
    let launcher = std::sync::Arc::new(HandedOff(std::sync::Mutex::new(Vec::new())));
    let app = spawn_app_with({
        let launcher = launcher.clone();
        |s| s.with_runs(launcher)
    })
    .await;
    let key = &app.key_a;
    let account = loaded(&app, key).await;
    let (status, run) = app.post_json(key, "/reconcile", march(&account)).await;
    assert_eq!((status, &run["status"]), (StatusCode::ACCEPTED, &json!("running")), "{run}");
    let id = run["reconciliation_id"].as_str().unwrap();
    assert_eq!(*launcher.0.lock().unwrap(), [id.to_string()]);
    assert_eq!(app.get(key, &format!("/reconciliations/{id}")).await.1["status"], "running");
}
