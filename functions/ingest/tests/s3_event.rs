//! The `ingest` function from a real S3 event: the object is put into the bucket, the event is
//! delivered twice, and the statement is imported once and its period reconciled. Runs on the
//! embedded store, and on DynamoDB Local with an in-process S3 server (started by
//! `scripts/test`).

use std::path::Path;

use aws_lambda_events::s3::S3Event;
use bankrec::domain::Currency;
use bankrec::matching::EngineConfig;
use bankrec::store::model::new_id;
use bankrec::store::{Account, BlobKey, Blobs, DynamoStore, FsBlobs, RunStatus, S3Blobs, SqliteStore, Store, TenantId};
use bankrec_ingest::handle;
use hyper_util::rt::{TokioExecutor, TokioIo};

const STATEMENT: &str =
    "Date,Description,Amount\n2024-03-01,Bank fee,-5.00\n2024-03-04,ACME Corp invoice 1001,120.50\n";

fn event(bucket: &str, account: &str) -> S3Event {
    let path = format!("{}/../fixtures/s3-object-created.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap().replace("${BUCKET}", bucket).replace("${ACCOUNT}", account);
    serde_json::from_str(&text).unwrap()
}

async fn new_account(store: &dyn Store, tenant: &TenantId) -> String {
    let account = Account {
        id: new_id("acc"),
        name: "Operating".into(),
        currency: Currency::new("EUR").unwrap(),
        account_number: None,
        iban: None,
        opening_balance: None,
        created_at: chrono::Utc::now(),
    };
    store.create_account(tenant, &account).await.unwrap();
    account.id
}

/// Puts the statement, delivers the fixture event twice and checks the outcome.
async fn delivered_twice_imports_once_and_reconciles(store: &dyn Store, blobs: &dyn Blobs, bucket: &str) {
    let tenant = TenantId::new("acme").unwrap();
    let account = new_account(store, &tenant).await;
    let key = BlobKey::new(format!("statements/acme/{account}/march-2024.csv")).unwrap();
    blobs.put(&key, STATEMENT.as_bytes(), "text/csv").await.unwrap();

    let engine = EngineConfig::default();
    let first = handle(store, blobs, bucket, event(bucket, &account), &engine).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].outcome, "imported");
    let run_id = first[0].id.clone().unwrap();
    let run = store.get_run(&tenant, &run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.summary.bank_transactions, 2);

    let audit_before = store.list_audit(&tenant, None, 0, 1000).await.unwrap().len();
    let second = handle(store, blobs, bucket, event(bucket, &account), &engine).await.unwrap();
    assert_eq!(second[0].outcome, "duplicate");
    let imports = store.list_imports(&tenant, &account).await.unwrap();
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].transactions_imported, 2);
    assert_eq!(
        store.list_audit(&tenant, None, 0, 1000).await.unwrap().len(),
        audit_before,
        "the second delivery changed something"
    );
}

#[tokio::test]
async fn on_the_embedded_store_an_event_delivered_twice_imports_once_and_reconciles() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let blobs = FsBlobs::new(dir.path().join("blobs"));
    delivered_twice_imports_once_and_reconciles(&store, &blobs, "bankrec-files").await;
}

#[tokio::test]
async fn events_of_other_buckets_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let blobs = FsBlobs::new(dir.path().join("blobs"));
    let out = handle(&store, &blobs, "ours", event("theirs", "acc_x"), &EngineConfig::default()).await.unwrap();
    assert_eq!(out[0].outcome, "ignored");
}

/// An S3 server on a loopback port, serving a folder, checking SigV4 with `test` / `test`.
async fn s3_server(root: &Path) -> (String, tokio::task::JoinHandle<()>) {
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single("test", "test"));
    let service = builder.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        while let Ok((socket, _)) = listener.accept().await {
            let conn = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    (endpoint, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_and_s3_an_event_delivered_twice_imports_once_and_reconciles() {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "AWS_ENDPOINT_URL_DYNAMODB is not set on CI");
        eprintln!("skipped: AWS_ENDPOINT_URL_DYNAMODB is not set (scripts/test starts DynamoDB Local)");
        return;
    }
    let sdk = aws_config::load_from_env().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), format!("bankrec-ingest-{}", new_id("t")));
    store.create_table().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (endpoint, server) = s3_server(dir.path()).await;
    let s3 = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    let bucket = format!("bankrec-{}", new_id("b").replace('_', "-"));
    let blobs = S3Blobs::new(aws_sdk_s3::Client::from_conf(s3), &bucket);
    assert!(blobs.create_bucket().await.unwrap());

    delivered_twice_imports_once_and_reconciles(&store, &blobs, &bucket).await;
    server.abort();
}
