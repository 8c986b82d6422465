//! The `reports` function from its payload (`functions/fixtures/report-job.json`): the API has
//! stored a pending job; the invocation builds the report into the bucket and marks the job
//! ready, and a second delivery of the same payload changes nothing. Runs on the embedded store,
//! and on DynamoDB Local with an in-process S3 server (started by `scripts/test`).

use std::path::Path;

use bankrec::domain::Currency;
use bankrec::lambda::jobs::ReportJob as Payload;
use bankrec::parse::ParseOptions;
use bankrec::store::model::new_id;
use bankrec::store::{
    Account, BlobKey, Blobs, DynamoStore, FsBlobs, ReportJob, ReportStatus, ReportStore, S3Blobs, SqliteStore, Store,
    TenantId,
};
use bankrec::workflows::import::import_statement;
use bankrec_reports::{handle, Reply};
use chrono::{NaiveDate, Utc};
use hyper_util::rt::{TokioExecutor, TokioIo};

const STATEMENT: &str =
    "Date,Description,Amount\n2024-03-01,Bank fee,-5.00\n2024-03-04,ACME Corp invoice 1001,120.50\n";

fn payload(report_id: &str) -> Payload {
    let path = format!("{}/../fixtures/report-job.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap().replace("${REPORT}", report_id)).unwrap()
}

/// An account with a March statement and a pending PDF report job over March, as the API leaves
/// them before it dispatches the job.
async fn pending_job(store: &dyn Store, jobs: &dyn ReportStore, blobs: &dyn Blobs, tenant: &TenantId) -> ReportJob {
    let account = Account {
        id: new_id("acc"),
        name: "Operating".into(),
        currency: Currency::new("EUR").unwrap(),
        account_number: None,
        iban: None,
        opening_balance: None,
        created_at: Utc::now(),
    };
    store.create_account(tenant, &account).await.unwrap();
    let options = ParseOptions::default();
    import_statement(store, blobs, tenant, &account.id, "march.csv", STATEMENT.as_bytes(), &options).await.unwrap();
    let job = ReportJob {
        id: new_id("rpt"),
        account_id: account.id,
        start_date: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        end_date: NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
        format: "pdf".into(),
        status: ReportStatus::Pending,
        blob_key: None,
        error: None,
        created_by: "key_1".into(),
        created_at: Utc::now(),
        finished_at: None,
    };
    jobs.create_report_job(tenant, &job).await.unwrap();
    job
}

/// Delivers the payload twice; returns the blob key of the finished report.
async fn delivered_twice_builds_once(store: &dyn Store, jobs: &dyn ReportStore, blobs: &dyn Blobs) -> BlobKey {
    let tenant = TenantId::new("acme").unwrap();
    let job = pending_job(store, jobs, blobs, &tenant).await;

    let reply = handle(store, jobs, blobs, payload(&job.id)).await.unwrap();
    let Reply::Done(done) = reply else { panic!("refused: {reply:?}") };
    assert_eq!((done.status, done.error), (ReportStatus::Ready, None));
    let stored = jobs.get_report_job(&tenant, &job.id).await.unwrap();
    assert_eq!(stored.status, ReportStatus::Ready);
    let key = BlobKey::new(stored.blob_key.clone().unwrap()).unwrap();
    assert!(key.as_str().starts_with("reports/acme/"), "{key:?}");
    assert!(blobs.get(&key).await.unwrap().starts_with(b"%PDF-"));

    let again = handle(store, jobs, blobs, payload(&job.id)).await.unwrap();
    assert!(matches!(again, Reply::Done(ref d) if d.status == ReportStatus::Ready), "{again:?}");
    assert_eq!(jobs.get_report_job(&tenant, &job.id).await.unwrap(), stored, "the second delivery changed the job");
    key
}

#[tokio::test]
async fn on_the_embedded_store_a_job_delivered_twice_is_built_once_and_ready() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let blobs = FsBlobs::new(dir.path().join("blobs"));
    delivered_twice_builds_once(&store, &store, &blobs).await;
}

#[tokio::test]
async fn a_job_that_was_never_stored_is_answered_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let blobs = FsBlobs::new(dir.path().join("blobs"));
    let reply = handle(&store, &store, &blobs, payload("rpt_missing")).await.unwrap();
    assert!(matches!(reply, Reply::Refused { ref error } if error.contains("rpt_missing")), "{reply:?}");
}

#[tokio::test]
async fn a_payload_with_anything_but_tenant_and_report_id_is_refused_by_the_decoder() {
    let old = r#"{"tenant":"acme","account_id":"a","start_date":"2024-03-01","end_date":"2024-03-31","format":"pdf"}"#;
    assert!(serde_json::from_str::<Payload>(old).is_err());
}

#[tokio::test]
async fn a_job_whose_account_is_gone_is_marked_failed_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let blobs = FsBlobs::new(dir.path().join("blobs"));
    let tenant = TenantId::new("acme").unwrap();
    let mut job = pending_job(&store, &store, &blobs, &tenant).await;
    job.id = new_id("rpt");
    job.account_id = "acc_gone".into();
    store.create_report_job(&tenant, &job).await.unwrap();
    let Reply::Done(done) = handle(&store, &store, &blobs, payload(&job.id)).await.unwrap() else { panic!("refused") };
    assert_eq!((done.status, done.error.as_deref()), (ReportStatus::Failed, Some("account acc_gone not found")));
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
async fn on_dynamodb_and_s3_a_job_delivered_twice_puts_one_report_in_the_bucket_and_is_ready() {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "AWS_ENDPOINT_URL_DYNAMODB is not set on CI");
        eprintln!("skipped: AWS_ENDPOINT_URL_DYNAMODB is not set (scripts/test starts DynamoDB Local)");
        return;
    }
    let sdk = aws_config::load_from_env().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), format!("bankrec-reports-{}", new_id("t")));
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
    let client = aws_sdk_s3::Client::from_conf(s3);
    let bucket = format!("bankrec-{}", new_id("b").replace('_', "-"));
    let blobs = S3Blobs::new(client.clone(), &bucket);
    assert!(blobs.create_bucket().await.unwrap());

    let key = delivered_twice_builds_once(&store, &store, &blobs).await;
    // The object is in the bucket itself, as a download would find it.
    let listed = client.list_objects_v2().bucket(&bucket).prefix("reports/").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, [key.as_str()]);
    server.abort();
}
