//! The `api` function wired as in AWS ([`AwsPorts::app_state`]) from API Gateway events: on
//! DynamoDB Local (started by `scripts/test`), an in-process S3 server that checks SigV4, and an
//! in-test Lambda endpoint that queues each asynchronous invocation and then hands its payload
//! to the `reconcile` or `reports` function's handler, as Lambda does.

use std::convert::Infallible;
use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use bankrec::api::app;
use bankrec::aws::invoke::LambdaClient;
use bankrec::aws::{AwsConfig, AwsPorts};
use bankrec::domain::Currency;
use bankrec::lambda::ingest::parse_statement_key;
use bankrec::matching::EngineConfig;
use bankrec::parse::ParseOptions;
use bankrec::store::keys::create_key;
use bankrec::store::model::new_id;
use bankrec::store::{Account, AccountStore, BlobKey, Blobs, DynamoStore, ReconStore, RunStatus, S3Blobs, TenantId};
use bankrec::workflows::import::import_statement;
use bankrec_reconcile::{Payload, Reply};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lambda_http::http::StatusCode;
use tokio::sync::mpsc;

const RECONCILE_FUNCTION: &str = "bankrec-prod-ReconcileFunction";
const REPORTS_FUNCTION: &str = "bankrec-prod-ReportsFunction";
const STATEMENT: &str =
    "Date,Description,Amount\n2024-03-01,Bank fee,-5.00\n2024-03-04,ACME Corp invoice 1001,120.50\n";

fn dynamodb_configured() -> bool {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "AWS_ENDPOINT_URL_DYNAMODB is not set on CI");
    eprintln!("skipped: AWS_ENDPOINT_URL_DYNAMODB is not set (scripts/test starts DynamoDB Local)");
    false
}

/// A server on a free loopback port, stopped when dropped.
struct Server {
    endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `service` (cloned per connection) on a free loopback port.
async fn serve<S, B>(service: S) -> Server
where
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
    Server { endpoint, task }
}

/// An S3 server over a folder, checking SigV4 signatures made with `test` / `test`.
async fn s3_server(root: &Path) -> Server {
    let fs = s3s_fs::FileSystem::new(root).unwrap();
    let mut builder = s3s::service::S3ServiceBuilder::new(fs);
    builder.set_auth(s3s::auth::SimpleAuth::from_single("test", "test"));
    serve(builder.build()).await
}

/// One invocation the Lambda endpoint received, and what the function answered.
#[derive(Debug)]
struct Invocation {
    function: String,
    invocation_type: Option<String>,
    signed_for_lambda: bool,
    payload: serde_json::Value,
    reply: Result<Reply, String>,
    /// The `reports` handler's answer, for an invocation of that function.
    report: Option<Result<bankrec_reports::Reply, String>>,
}

/// The Lambda Invoke API for the functions `known` (reconcile) and [`REPORTS_FUNCTION`]: it
/// answers 202 to an invocation and then runs the function's handler over `store` and `blobs`,
/// as Lambda runs a queued event; any other function gets Lambda's 404.
async fn lambda_endpoint(
    store: DynamoStore,
    blobs: S3Blobs,
    known: &'static str,
) -> (Server, mpsc::UnboundedReceiver<Invocation>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (store, blobs, tx) = (store.clone(), blobs.clone(), tx.clone());
        async move {
            let path = req.uri().path();
            let function = path.strip_prefix("/2015-03-31/functions/").and_then(|p| p.strip_suffix("/invocations"));
            let function = function.unwrap_or_default().to_string();
            let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            let invocation_type = header("x-amz-invocation-type");
            let signed_for_lambda = header("authorization").is_some_and(|a| a.contains("/lambda/aws4_request"));
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let mut invocation = Invocation {
                function,
                invocation_type,
                signed_for_lambda,
                payload,
                reply: Err("not run".into()),
                report: None,
            };
            if invocation.function == REPORTS_FUNCTION {
                tokio::spawn(async move {
                    invocation.report = Some(match serde_json::from_value(invocation.payload.clone()) {
                        Ok(job) => {
                            bankrec_reports::handle(&store, &store, &blobs, job).await.map_err(|e| e.to_string())
                        }
                        Err(e) => Err(format!("the reports function cannot decode the payload: {e}")),
                    });
                    let _ = tx.send(invocation);
                });
                return Ok(hyper::Response::builder().status(202).body(Full::new(Bytes::new())).unwrap());
            }
            if invocation.function != known {
                let body = format!(r#"{{"Type":"User","Message":"Function not found: {}"}}"#, invocation.function);
                let _ = tx.send(invocation);
                let response = hyper::Response::builder()
                    .status(404)
                    .header("x-amzn-errortype", "ResourceNotFoundException")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap();
                return Ok::<_, Infallible>(response);
            }
            tokio::spawn(async move {
                let today = chrono::Utc::now().date_naive();
                invocation.reply = match serde_json::from_value::<Payload>(invocation.payload.clone()) {
                    Ok(job) => bankrec_reconcile::handle(&store, job, today, &EngineConfig::default())
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("the reconcile function cannot decode the payload: {e}")),
                };
                let _ = tx.send(invocation);
            });
            Ok(hyper::Response::builder().status(202).body(Full::new(Bytes::new())).unwrap())
        }
    });
    (serve(service).await, rx)
}

/// The API as deployed, over a fresh table, a fresh bucket and the Lambda endpoint, with one
/// account holding a March 2024 statement and a key of its tenant.
struct Deployment {
    ports: AwsPorts,
    router: axum::Router,
    key: String,
    account: String,
    invocations: mpsc::UnboundedReceiver<Invocation>,
    /// The report asked for, once there is one.
    report: Option<String>,
    _servers: (Server, Server),
    _dir: tempfile::TempDir,
}

async fn deploy(reconcile_function: &str) -> Deployment {
    let sdk = aws_config::load_from_env().await;
    let table = format!("bankrec-api-{}", new_id("t"));
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    store.create_table().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let s3 = s3_server(dir.path()).await;
    let s3_config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
        .endpoint_url(&s3.endpoint)
        .force_path_style(true)
        .build();
    let bucket = format!("bankrec-{}", new_id("b").replace('_', "-"));
    let blobs = S3Blobs::new(aws_sdk_s3::Client::from_conf(s3_config), &bucket);
    assert!(blobs.create_bucket().await.unwrap());
    let (lambda, invocations) = lambda_endpoint(store.clone(), blobs.clone(), RECONCILE_FUNCTION).await;

    let tenant = TenantId::new("acme").unwrap();
    let account = Account {
        id: new_id("acc"),
        name: "Operating".into(),
        currency: Currency::new("EUR").unwrap(),
        account_number: None,
        iban: None,
        opening_balance: None,
        created_at: chrono::Utc::now(),
    };
    store.create_account(&tenant, &account).await.unwrap();
    import_statement(&store, &blobs, &tenant, &account.id, "march.csv", STATEMENT.as_bytes(), &ParseOptions::default())
        .await
        .unwrap();
    let key = create_key(&store, &tenant).await.unwrap().secret;

    let config = AwsConfig {
        reconcile_function: Some(reconcile_function.to_string()),
        reports_function: Some(REPORTS_FUNCTION.to_string()),
        ..AwsConfig::new(table, bucket)
    };
    let lambda_sdk = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "tests")))
        .endpoint_url(&lambda.endpoint)
        .build();
    let ports = AwsPorts { store, blobs, lambda: LambdaClient::new(&lambda_sdk), config };
    let router = app(ports.app_state());
    Deployment { ports, router, key, account: account.id, invocations, report: None, _servers: (s3, lambda), _dir: dir }
}

fn fixture(name: &str, d: &Deployment) -> lambda_http::Request {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap().replace("${API_KEY}", &d.key).replace("${ACCOUNT}", &d.account);
    let text = match &d.report {
        Some(report) => text.replace("${REPORT}", report),
        None => text,
    };
    lambda_http::request::from_str(&text).unwrap()
}

async fn call(d: &Deployment, req: lambda_http::Request) -> (StatusCode, serde_json::Value) {
    let response = bankrec_api::handle(d.router.clone(), req).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

async fn next_invocation(d: &mut Deployment) -> Invocation {
    tokio::time::timeout(Duration::from_secs(60), d.invocations.recv()).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_started_through_the_api_is_finished_by_the_reconcile_function() {
    if !dynamodb_configured() {
        return;
    }
    let mut d = deploy(RECONCILE_FUNCTION).await;
    let (status, body) = call(&d, fixture("apigw-rest-start-reconciliation.json", &d)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "running");
    let run_id = body["reconciliation_id"].as_str().unwrap().to_string();

    let invocation = next_invocation(&mut d).await;
    assert_eq!(invocation.function, RECONCILE_FUNCTION);
    assert_eq!(invocation.invocation_type.as_deref(), Some("Event"), "queued, not waited for");
    assert!(invocation.signed_for_lambda, "the request is signed for the Lambda service");
    assert_eq!(invocation.payload, serde_json::json!({ "tenant": "acme", "run_id": run_id }));
    let Ok(Reply::Done(done)) = invocation.reply else { panic!("not finished: {:?}", invocation.reply) };
    assert_eq!((done.reconciliation_id.as_str(), done.status), (run_id.as_str(), RunStatus::Completed));

    let run = d.ports.store.get_run(&TenantId::new("acme").unwrap(), &run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.summary.bank_transactions, 2, "the run covered the imported statement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_lambda_refuses_to_queue_is_failed_not_left_running() {
    if !dynamodb_configured() {
        return;
    }
    let mut d = deploy("bankrec-prod-NoSuchFunction").await;
    let (status, body) = call(&d, fixture("apigw-rest-start-reconciliation.json", &d)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(!body.to_string().contains("NoSuchFunction"), "a 5xx says nothing internal: {body}");

    let invocation = next_invocation(&mut d).await;
    let run_id = invocation.payload["run_id"].as_str().unwrap();
    let run = d.ports.store.get_run(&TenantId::new("acme").unwrap(), run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.finished_at.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_url_from_the_api_puts_the_file_where_ingest_reads_it() {
    if !dynamodb_configured() {
        return;
    }
    let d = deploy(RECONCILE_FUNCTION).await;
    let (status, body) = call(&d, fixture("apigw-rest-upload-url.json", &d)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (url, key) = (body["url"].as_str().unwrap(), body["key"].as_str().unwrap());
    assert!(url.contains("X-Amz-Signature="), "a presigned S3 URL: {url}");
    let object = parse_statement_key(key).unwrap();
    assert_eq!((object.tenant.as_str(), object.account_id.as_str()), ("acme", d.account.as_str()));
    assert!(object.name.ends_with("march-2024.csv"), "{key}");

    // A client holds only the URL: a plain PUT, without any header the signature would need.
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let put = hyper::Request::put(url)
        .body(Full::new(Bytes::from_static(
            b"Date,Description,Amount
",
        )))
        .unwrap();
    let response = client.request(put).await.unwrap();
    assert_eq!(response.status(), 200);
    let stored = d.ports.blobs.get(&BlobKey::new(key).unwrap()).await.unwrap();
    assert_eq!(
        stored,
        b"Date,Description,Amount
"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_asked_for_through_the_api_is_built_by_the_reports_function_and_downloaded_from_s3() {
    if !dynamodb_configured() {
        return;
    }
    let mut d = deploy(RECONCILE_FUNCTION).await;
    let (status, body) = call(&d, fixture("apigw-rest-create-report.json", &d)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let report_id = body["report_id"].as_str().unwrap().to_string();

    let invocation = next_invocation(&mut d).await;
    assert_eq!(invocation.function, REPORTS_FUNCTION);
    assert_eq!(invocation.invocation_type.as_deref(), Some("Event"), "queued, not waited for");
    assert_eq!(invocation.payload, serde_json::json!({ "tenant": "acme", "report_id": report_id }));
    let reply = invocation.report.expect("the reports function ran").unwrap();
    let bankrec_reports::Reply::Done(done) = reply else { panic!("refused: {reply:?}") };
    assert_eq!(done.status.as_str(), "ready");

    d.report = Some(report_id);
    let (status, body) = call(&d, fixture("apigw-rest-get-report.json", &d)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    let url = body["download_url"].as_str().expect("a download URL once ready");
    assert!(url.contains("X-Amz-Signature="), "a presigned S3 GET: {url}");
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let pdf = response.into_body().collect().await.unwrap().to_bytes();
    assert!(pdf.starts_with(b"%PDF"), "the report itself, as PDF");
}
