//! The AWS adapters against real servers: DynamoDB Local (started by `scripts/test`) and an
//! in-process S3 server that checks SigV4 signatures. Faults the servers cannot produce on demand
//! (throttling, unprocessed batch items, a write failing half-way) are injected by an SDK
//! interceptor around the real calls.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use bankrec::api::uploads::{UploadError, UploadUrls};
use bankrec::aws::presign::{S3ReportLinks, S3Uploads};
use bankrec::domain::Currency;
use bankrec::parse::ParseOptions;
use bankrec::reports::ReportLinks;
use bankrec::store::keys::{create_key, KeyHash, KeyStore};
use bankrec::store::model::new_id;
use bankrec::store::{
    Account, AccountStore, BlobError, BlobKey, Blobs, DynamoStore, LedgerStore, ReportJob, ReportStatus, S3Blobs,
    StoreError, TenantId, TransactionQuery,
};
use bankrec::workflows::import::import_statement;
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Whether DynamoDB Local is configured; when it is not, says so (and fails on CI, where skipping
/// would hide the AWS adapters' tests).
fn dynamodb_configured() -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "AWS_ENDPOINT_URL_DYNAMODB is not set on CI: run the tests through scripts/test"
    );
    eprintln!("skipped: AWS_ENDPOINT_URL_DYNAMODB is not set (scripts/test starts DynamoDB Local)");
    false
}

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

fn fresh_table_name() -> String {
    format!("bankrec-test-{}", new_id("t"))
}

/// A store on a fresh table in DynamoDB Local, or `None` when none is configured.
pub async fn fresh_store() -> Option<DynamoStore> {
    fresh_store_with(None).await
}

async fn fresh_store_with(faults: Option<Arc<Faults>>) -> Option<DynamoStore> {
    if !dynamodb_configured() {
        return None;
    }
    let config = sdk_config().await;
    let table = fresh_table_name();
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table).create_table().await.unwrap();
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&config).retry_config(
        aws_sdk_dynamodb::config::retry::RetryConfig::standard()
            .with_initial_backoff(Duration::from_millis(5))
            .with_max_backoff(Duration::from_millis(50)),
    );
    // Every store under test refuses Scan: no access path may read a whole table.
    builder = builder.interceptor(FaultInterceptor(faults.unwrap_or_default()));
    Some(DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(builder.build()), table))
}

/// An S3 server on a free loopback port, serving a folder, checking signatures made with the
/// key `test` / `test`. Stops when dropped.
pub struct S3Server {
    endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl S3Server {
    pub async fn start(root: &Path) -> S3Server {
        let dir = root.join("s3");
        std::fs::create_dir_all(&dir).unwrap();
        let fs = s3s_fs::FileSystem::new(&dir).unwrap();
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
        S3Server { endpoint, task }
    }

    fn client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Blobs in a new, empty bucket.
    pub async fn fresh_bucket(&self) -> S3Blobs {
        let blobs = S3Blobs::new(self.client(), format!("bankrec-{}", new_id("b").replace('_', "-")));
        assert!(blobs.create_bucket().await.unwrap());
        blobs
    }
}

/// Faults to inject, by DynamoDB operation; each counter is how many more calls get the fault.
#[derive(Debug, Default)]
struct Faults {
    throttle_get_item: AtomicUsize,
    unprocess_batch_write: AtomicUsize,
    /// Transactions allowed through before every later one fails.
    transactions_before_failure: Mutex<Option<usize>>,
    /// Once set, every write fails (a process that died mid-import).
    writes_fail: Mutex<bool>,
    /// Whether the injected transaction failure also stops every later write.
    crash_on_failure: std::sync::atomic::AtomicBool,
    calls: Mutex<Vec<String>>,
    last_body: Mutex<Option<serde_json::Value>>,
}

impl Faults {
    fn count(&self, operation: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|c| *c == operation).count()
    }
}

#[derive(Debug)]
struct FaultInterceptor(Arc<Faults>);

impl Intercept for FaultInterceptor {
    fn name(&self) -> &'static str {
        "FaultInterceptor"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let operation =
            request.headers().get("x-amz-target").and_then(|t| t.rsplit('.').next()).unwrap_or_default().to_string();
        let body = request.body().bytes().and_then(|b| serde_json::from_slice(b).ok());
        *self.0.last_body.lock().unwrap() = body;
        self.0.calls.lock().unwrap().push(operation.clone());
        if operation == "Scan" {
            return Err("a Scan is never an access path of the store".into());
        }
        let is_write = matches!(
            operation.as_str(),
            "TransactWriteItems" | "BatchWriteItem" | "UpdateItem" | "DeleteItem" | "PutItem"
        );
        if is_write && *self.0.writes_fail.lock().unwrap() {
            return Err("injected: the process stopped".into());
        }
        if operation == "TransactWriteItems" {
            let mut left = self.0.transactions_before_failure.lock().unwrap();
            match left.as_mut() {
                Some(0) => {
                    if self.0.crash_on_failure.load(Ordering::SeqCst) {
                        *self.0.writes_fail.lock().unwrap() = true;
                    }
                    return Err("injected: the transaction failed".into());
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = self.0.calls.lock().unwrap().last().cloned().unwrap_or_default();
        let take = |counter: &AtomicUsize| {
            counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        };
        let response = context.response_mut();
        if operation == "GetItem" && take(&self.0.throttle_get_item) {
            *response.status_mut() = 400u16.try_into()?;
            response.headers_mut().remove("x-amz-crc32");
            *response.body_mut() = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected throttling"}"#
                .to_string()
                .into();
        }
        if operation == "BatchWriteItem" && take(&self.0.unprocess_batch_write) {
            // The server did the writes; reporting them unprocessed makes the store send them
            // again, which deletes and puts tolerate.
            let requested = self.0.last_body.lock().unwrap().as_ref().and_then(|b| b.get("RequestItems").cloned());
            let body = serde_json::json!({ "UnprocessedItems": requested.unwrap_or_default() });
            response.headers_mut().remove("x-amz-crc32");
            *response.body_mut() = body.to_string().into();
        }
        Ok(())
    }
}

fn account(id: &str) -> Account {
    Account {
        id: id.into(),
        name: "Operating".into(),
        currency: Currency::USD,
        account_number: None,
        iban: None,
        opening_balance: None,
        created_at: Utc::now(),
    }
}

fn ofx(lines: usize) -> Vec<u8> {
    let mut s = String::from(
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\n\n<OFX><BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>\
         <STMTRS><CURDEF>USD<BANKACCTFROM><BANKID>1<ACCTID>555<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>\n",
    );
    for i in 0..lines {
        s.push_str(&format!(
            "<STMTTRN><TRNTYPE>OTHER<DTPOSTED>202603{:02}<TRNAMT>{i}.50<FITID>F{i}<NAME>Payee</STMTTRN>\n",
            1 + i % 28
        ));
    }
    s.push_str("</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n");
    s.into_bytes()
}

/// Every item in the table, read with a Scan: only tests look at a whole table.
async fn table_items(
    store: &DynamoStore,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let out = client.scan().table_name(store.table()).consistent_read(true).send().await.unwrap();
    out.items.unwrap_or_default()
}

async fn listed(store: &DynamoStore, t: &TenantId) -> usize {
    let q = TransactionQuery { limit: 1000, ..Default::default() };
    store.list_transactions(t, "acc_1", &q).await.unwrap().items.len()
}

#[tokio::test]
async fn throttled_reads_are_retried_until_they_succeed() {
    let faults = Arc::new(Faults::default());
    let Some(store) = fresh_store_with(Some(faults.clone())).await else { return };
    let t = TenantId::new("t1").unwrap();
    store.create_account(&t, &account("acc_1")).await.unwrap();
    faults.throttle_get_item.store(2, Ordering::SeqCst);
    assert_eq!(store.get_account(&t, "acc_1").await.unwrap().id, "acc_1");
    assert_eq!(faults.count("GetItem"), 3, "two throttled attempts, then the one that succeeded");
}

#[tokio::test]
async fn a_failed_import_leaves_nothing_behind_even_when_its_undo_is_throttled() {
    let faults = Arc::new(Faults::default());
    let Some(store) = fresh_store_with(Some(faults.clone())).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let blobs = bankrec::store::FsBlobs::new(dir.path());
    let t = TenantId::new("t1").unwrap();
    store.create_account(&t, &account("acc_1")).await.unwrap();
    let file = ofx(150);

    // The first 100 lines commit, the next transaction fails; undoing the 100 takes four batches,
    // the first of which comes back entirely unprocessed.
    *faults.transactions_before_failure.lock().unwrap() = Some(1);
    faults.unprocess_batch_write.store(1, Ordering::SeqCst);
    let failed = import_statement(&store, &blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(faults.count("BatchWriteItem"), 5, "four batches of 25 deletes, the unprocessed one sent again");
    let left: Vec<_> = table_items(&store).await.into_iter().filter_map(|i| i.get("type").cloned()).collect();
    assert_eq!(left, [aws_sdk_dynamodb::types::AttributeValue::S("account".into())], "only the account is left");
    assert!(store.list_imports(&t, "acc_1").await.unwrap().is_empty());

    *faults.transactions_before_failure.lock().unwrap() = None;
    let ok = import_statement(&store, &blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await.unwrap();
    assert_eq!(ok.import.transactions_imported, 150);
    assert_eq!(listed(&store, &t).await, 150);
}

#[tokio::test]
async fn an_import_interrupted_by_a_crash_is_invisible_until_a_retry_completes_it() {
    let faults = Arc::new(Faults::default());
    let Some(store) = fresh_store_with(Some(faults.clone())).await else { return };
    let store = store.with_import_lease(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let blobs = bankrec::store::FsBlobs::new(dir.path());
    let t = TenantId::new("t1").unwrap();
    store.create_account(&t, &account("acc_1")).await.unwrap();
    let file = ofx(130);

    // The process "dies" after the first transaction: nothing after it, not even the undo, runs.
    *faults.transactions_before_failure.lock().unwrap() = Some(1);
    faults.crash_on_failure.store(true, Ordering::SeqCst);
    let died = import_statement(&store, &blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await;
    assert!(died.is_err());
    let items = table_items(&store).await;
    assert!(items.len() > 100, "the crashed attempt left its first chunk and its pending import");
    assert_eq!(listed(&store, &t).await, 0, "lines of an unfinished import are not listed");
    assert!(store.list_imports(&t, "acc_1").await.unwrap().is_empty());

    faults.crash_on_failure.store(false, Ordering::SeqCst);
    *faults.writes_fail.lock().unwrap() = false;
    *faults.transactions_before_failure.lock().unwrap() = None;
    let retry = import_statement(&store, &blobs, &t, "acc_1", "s.ofx", &file, &ParseOptions::default()).await.unwrap();
    assert_eq!((retry.import.transactions_imported, retry.import.duplicates_skipped), (130, 0));
    assert_eq!(listed(&store, &t).await, 130);
}

#[tokio::test]
async fn a_missing_table_says_how_to_create_it() {
    if !dynamodb_configured() {
        return;
    }
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk_config().await), fresh_table_name());
    let err = store.get_account(&TenantId::new("t1").unwrap(), "acc_1").await.unwrap_err();
    assert!(matches!(err, StoreError::NotInitialised(_)), "{err:?}");
    assert!(err.to_string().contains("bankrec store init --store dynamodb://"), "{err}");
}

#[tokio::test]
async fn creating_the_table_and_the_bucket_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    assert!(!blobs.create_bucket().await.unwrap(), "the bucket already exists");
    if !dynamodb_configured() {
        return;
    }
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk_config().await), fresh_table_name());
    assert!(store.create_table().await.unwrap());
    assert!(!store.create_table().await.unwrap());
    store.create_account(&TenantId::new("t1").unwrap(), &account("acc_1")).await.unwrap();
}

async fn send(method: &str, url: &str, headers: &[(String, String)], body: Vec<u8>) -> (u16, Vec<u8>) {
    let client = HttpClient::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let mut request = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    let response = client.request(request.body(Full::new(bytes::Bytes::from(body))).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test]
async fn a_presigned_upload_and_download_work_and_a_tampered_signature_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    let key = BlobKey::new("uploads/t1/statement.csv").unwrap();

    let put = blobs.presign_put(&key, Some("text/csv"), Duration::from_secs(300)).await.unwrap();
    assert_eq!(put.method, "PUT");
    assert!(put.expires_at > Utc::now());
    let (status, _) = send("PUT", &put.url, &put.headers, b"id,date,amount\n1,2026-03-01,5.00\n".to_vec()).await;
    assert_eq!(status, 200);
    assert_eq!(blobs.get(&key).await.unwrap(), b"id,date,amount\n1,2026-03-01,5.00\n");

    let get = blobs.presign_get(&key, Duration::from_secs(60)).await.unwrap();
    let (status, body) = send("GET", &get.url, &get.headers, Vec::new()).await;
    assert_eq!((status, body.as_slice()), (200, b"id,date,amount\n1,2026-03-01,5.00\n".as_slice()));

    let at = get.url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut tampered = get.url.clone();
    let flipped = if tampered.as_bytes()[at] == b'0' { "1" } else { "0" };
    tampered.replace_range(at..at + 1, flipped);
    let (status, _) = send("GET", &tampered, &get.headers, Vec::new()).await;
    assert_eq!(status, 403, "the server checks the signature");
    let other = BlobKey::new("uploads/t1/other.csv").unwrap();
    let (status, _) = send("PUT", &put.url.replace("statement.csv", "other.csv"), &put.headers, b"x".to_vec()).await;
    assert_eq!(status, 403, "a signature covers its key only");
    assert!(!blobs.exists(&other).await.unwrap());
}

#[tokio::test]
async fn blobs_are_put_read_checked_and_deleted_in_s3() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    let key = BlobKey::new("statements/t1/acc_1/stm_1").unwrap();
    assert!(!blobs.exists(&key).await.unwrap());
    assert!(matches!(blobs.get(&key).await, Err(bankrec::store::BlobError::NotFound(_))));
    blobs.put(&key, b"first", "text/plain").await.unwrap();
    blobs.put(&key, b"second", "text/plain").await.unwrap();
    assert_eq!(blobs.get(&key).await.unwrap(), b"second");
    assert!(blobs.exists(&key).await.unwrap());
    blobs.delete(&key).await.unwrap();
    blobs.delete(&key).await.unwrap();
    assert!(!blobs.exists(&key).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_init_creates_the_table_and_the_bucket_once_and_then_finds_them() {
    if !dynamodb_configured() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let table = fresh_table_name();
    let bucket = format!("bankrec-{}", new_id("init").replace('_', "-"));
    let run = |table: String, bucket: String, endpoint: String| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_bankrec"))
                .args([
                    "store",
                    "init",
                    "--store",
                    &format!("dynamodb://{table}"),
                    "--blobs",
                    &format!("s3://{bucket}"),
                ])
                .env("AWS_ENDPOINT_URL_S3", endpoint)
                .output()
                .unwrap()
        })
    };
    let first = run(table.clone(), bucket.clone(), s3.endpoint.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(stdout.contains(&format!("DynamoDB table {table} created")), "{stdout}");
    assert!(stdout.contains(&format!("S3 bucket {bucket} created")), "{stdout}");
    let second = run(table.clone(), bucket.clone(), s3.endpoint.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(stdout.contains("already exists") && !stdout.contains("created"), "{stdout}");

    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk_config().await), table);
    store.create_account(&TenantId::new("t1").unwrap(), &account("acc_1")).await.unwrap();
    let blobs = S3Blobs::new(s3.client(), bucket);
    blobs.put(&BlobKey::new("k").unwrap(), b"x", "text/plain").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_is_kept_by_hash_in_dynamodb_and_found_for_its_tenant() {
    let Some(store) = fresh_store().await else { return };
    let tenant = TenantId::new("acme").unwrap();
    let new = create_key(&store, &tenant).await.unwrap();
    let found = store.find_key(&KeyHash::of(&new.secret)).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), &found.tenant), (new.key.id.as_str(), &tenant));
    assert_eq!(store.find_key(&KeyHash::of("bkr_nope")).await.unwrap(), None);
    let again = store.insert_key(&new.key, &KeyHash::of("another secret")).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "a key id is stored once: {again:?}");
    let items = table_items(&store).await;
    assert!(!format!("{items:?}").contains(&new.secret[4..]), "the secret itself is never stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_stores_a_key_in_a_dynamodb_table() {
    let Some(store) = fresh_store().await else { return };
    let table = store.table().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_bankrec"))
            .args(["keys", "create", "--tenant", "acme", "--store", &format!("dynamodb://{table}")])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let found = store.find_key(&KeyHash::of(&secret)).await.unwrap().unwrap();
    assert_eq!(found.tenant.as_str(), "acme");
}

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

#[tokio::test]
async fn an_s3_upload_url_takes_a_plain_put_of_the_file_under_the_key_ingest_reads() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    let uploads = S3Uploads::new(blobs.clone());
    let key = "statements/acme/acc_1/upl_1-march.csv";
    let url = uploads.mint(&acme(), "acc_1", key, "http://127.0.0.1:1").await.unwrap();
    assert_eq!(url.key, key);
    assert!(url.expires_at > Utc::now() + chrono::Duration::minutes(14), "{}", url.expires_at);
    assert!(!url.url.starts_with("http://127.0.0.1:1"), "the server's own origin plays no part: {}", url.url);

    let (status, _) = send("PUT", &url.url, &[], b"Date,Description,Amount\n".to_vec()).await;
    assert_eq!(status, 200);
    assert_eq!(blobs.get(&BlobKey::new(key).unwrap()).await.unwrap(), b"Date,Description,Amount\n");
    assert!(
        matches!(uploads.redeem("anything", Utc::now()), Err(UploadError::NotHere)),
        "S3 takes the file, not the API"
    );
}

#[tokio::test]
async fn a_tampered_s3_upload_url_is_refused_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    let url = S3Uploads::new(blobs.clone()).mint(&acme(), "acc_1", "statements/acme/acc_1/m.csv", "").await.unwrap();

    let other_account = url.url.replace("/acc_1/", "/acc_2/");
    let (status, _) = send("PUT", &other_account, &[], b"x".to_vec()).await;
    assert_eq!(status, 403, "the signature covers the key");
    let at = url.url.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let mut forged = url.url.clone();
    forged.replace_range(at..at + 1, if url.url.as_bytes()[at] == b'0' { "1" } else { "0" });
    let (status, _) = send("PUT", &forged, &[], b"x".to_vec()).await;
    assert_eq!(status, 403, "the server checks the signature");
    assert!(!blobs.exists(&BlobKey::new("statements/acme/acc_2/m.csv").unwrap()).await.unwrap());
    assert!(!blobs.exists(&BlobKey::new("statements/acme/acc_1/m.csv").unwrap()).await.unwrap());
}

#[tokio::test]
async fn an_expired_s3_upload_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    let uploads = S3Uploads::new(blobs.clone()).with_ttl(Duration::from_secs(1));
    let url = uploads.mint(&acme(), "acc_1", "statements/acme/acc_1/m.csv", "").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = send("PUT", &url.url, &[], b"x".to_vec()).await;
    assert_eq!(status, 403);
    assert!(!blobs.exists(&BlobKey::new("statements/acme/acc_1/m.csv").unwrap()).await.unwrap());
}

#[tokio::test]
async fn no_upload_url_is_minted_for_a_key_outside_the_accounts_statements() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let uploads = S3Uploads::new(s3.fresh_bucket().await);
    for key in [
        "statements/evil/acc_1/m.csv",
        "statements/acme/acc_2/m.csv",
        "statements/acme/acc_1/sub/m.csv",
        "reports/acme/acc_1/m.csv",
        "statements/acme/acc_1/",
    ] {
        let minted = uploads.mint(&acme(), "acc_1", key, "").await;
        assert!(matches!(minted, Err(UploadError::Backend(_))), "{key}: {minted:?}");
    }
}

fn report_job() -> ReportJob {
    ReportJob {
        id: "rpt_1".into(),
        account_id: "acc_1".into(),
        start_date: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        end_date: chrono::NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
        format: "pdf".into(),
        status: ReportStatus::Ready,
        blob_key: Some("reports/acme/rpt_1.pdf".into()),
        error: None,
        created_by: "key_1".into(),
        created_at: Utc::now(),
        finished_at: Some(Utc::now()),
    }
}

#[tokio::test]
async fn a_report_link_downloads_the_tenants_own_report_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(dir.path()).await;
    let blobs = s3.fresh_bucket().await;
    let key = BlobKey::new("reports/acme/rpt_1.pdf").unwrap();
    blobs.put(&key, b"%PDF-1.7 report", "application/pdf").await.unwrap();

    let links = S3ReportLinks::new(blobs.clone());
    let url = links.download_url(&acme(), &report_job(), &key).await.unwrap();
    let (status, body) = send("GET", &url, &[], Vec::new()).await;
    assert_eq!((status, body.as_slice()), (200, b"%PDF-1.7 report".as_slice()));

    for foreign in ["reports/evil/rpt_1.pdf", "reports/acmeco/rpt_1.pdf", "statements/acme/acc_1/m.csv"] {
        let link = links.download_url(&acme(), &report_job(), &BlobKey::new(foreign).unwrap()).await;
        assert!(matches!(link, Err(BlobError::InvalidKey(_))), "{foreign}: {link:?}");
    }

    let short = S3ReportLinks::new(blobs).with_ttl(Duration::from_secs(1));
    let url = short.download_url(&acme(), &report_job(), &key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = send("GET", &url, &[], Vec::new()).await;
    assert_eq!(status, 403, "an expired link is refused");
}
