//! The `reconcile` function from its payloads (an asynchronous invocation, and the input an
//! EventBridge schedule sends), on the embedded store.

use bankrec::domain::Currency;
use bankrec::lambda::jobs::ReconcileJob;
use bankrec::matching::EngineConfig;
use bankrec::store::{Account, AccountStore, ReconStore, RunStatus, SqliteStore, TenantId};
use bankrec_reconcile::{handle, Reply};
use chrono::NaiveDate;

fn job(name: &str, account: &str) -> ReconcileJob {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap().replace("${ACCOUNT}", account)).unwrap()
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
