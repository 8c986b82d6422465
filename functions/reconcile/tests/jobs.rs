//! The `reconcile` function from its payloads (a run the API started, a period invoked by hand,
//! and the input an EventBridge schedule sends), on the embedded store.

use bankrec::domain::Currency;
use bankrec::matching::EngineConfig;
use bankrec::store::{Account, AccountStore, ReconStore, RunStatus, SqliteStore, TenantId};
use bankrec::workflows::reconcile::{start_run, ReconcileRequest};
use bankrec_reconcile::{handle, Payload, Reply};
use chrono::NaiveDate;

/// A fixture with its placeholders (`${ACCOUNT}`, `${RUN}`) filled in, decoded as the runtime
/// decodes the invocation.
fn payload(name: &str, fill: &[(&str, &str)]) -> Payload {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = fill.iter().fold(std::fs::read_to_string(path).unwrap(), |t, (k, v)| t.replace(&format!("${{{k}}}"), v));
    serde_json::from_str(&text).unwrap()
}

fn job(name: &str, account: &str) -> Payload {
    payload(name, &[("ACCOUNT", account)])
}

async fn store_with_account(dir: &std::path::Path) -> SqliteStore {
    let store = SqliteStore::open_dir(dir).unwrap();
    let account = Account {
        id: "acc_ops".into(),
        name: "Operating".into(),
        currency: Currency::new("EUR").unwrap(),
        account_number: None,
        iban: None,
        opening_balance: None,
        created_at: chrono::Utc::now(),
    };
    store.create_account(&TenantId::new("acme").unwrap(), &account).await.unwrap();
    store
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 4, 2).unwrap()
}

#[tokio::test]
async fn an_invocation_runs_the_reconciliation_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_account(dir.path()).await;
    let reply = handle(&store, job("reconcile-job.json", "acc_ops"), today(), &EngineConfig::default()).await.unwrap();
    let Reply::Done(done) = reply else { panic!("refused: {reply:?}") };
    let run = store.get_run(&TenantId::new("acme").unwrap(), &done.reconciliation_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.start_date, NaiveDate::from_ymd_opt(2024, 3, 1).unwrap());
}

#[tokio::test]
async fn a_scheduled_invocation_covers_the_last_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_account(dir.path()).await;
    let reply =
        handle(&store, job("reconcile-scheduled.json", "acc_ops"), today(), &EngineConfig::default()).await.unwrap();
    let Reply::Done(done) = reply else { panic!("refused: {reply:?}") };
    let run = store.get_run(&TenantId::new("acme").unwrap(), &done.reconciliation_id).await.unwrap();
    assert_eq!((run.start_date, run.end_date), (NaiveDate::from_ymd_opt(2024, 3, 3).unwrap(), today()));
}

#[tokio::test]
async fn a_job_for_an_unknown_account_is_answered_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_account(dir.path()).await;
    let reply = handle(&store, job("reconcile-job.json", "acc_gone"), today(), &EngineConfig::default()).await.unwrap();
    assert!(matches!(reply, Reply::Refused { .. }), "{reply:?}");
}

#[tokio::test]
async fn a_run_the_api_started_is_finished_once_and_a_repeated_delivery_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_account(dir.path()).await;
    let tenant = TenantId::new("acme").unwrap();
    let req = ReconcileRequest {
        account_id: "acc_ops".into(),
        start_date: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
        dry_run: false,
        actor: "key_1".into(),
    };
    let run = start_run(&store, &tenant, &req).await.unwrap();
    let job = payload("reconcile-finish-run.json", &[("RUN", &run.id)]);
    assert!(matches!(job, Payload::Finish(_)), "{job:?}");

    let reply = handle(&store, job.clone(), today(), &EngineConfig::default()).await.unwrap();
    let Reply::Done(done) = reply else { panic!("refused: {reply:?}") };
    assert_eq!((done.reconciliation_id.as_str(), done.status), (run.id.as_str(), RunStatus::Completed));
    let stored = store.get_run(&tenant, &run.id).await.unwrap();
    assert_eq!((stored.status, stored.created_by.as_str()), (RunStatus::Completed, "key_1"));

    let again = handle(&store, job, today(), &EngineConfig::default()).await.unwrap();
    assert!(matches!(again, Reply::Refused { .. }), "{again:?}");
    assert_eq!(store.get_run(&tenant, &run.id).await.unwrap(), stored, "the finished run is left as it was");
}

#[tokio::test]
async fn a_payload_mixing_both_shapes_is_not_a_job() {
    let mixed = r#"{"tenant":"acme","run_id":"rec_1","request":{"account_id":"a","last_days":1}}"#;
    assert!(serde_json::from_str::<Payload>(mixed).is_err());
}
