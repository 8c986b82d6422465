//! Asynchronous invocations of the other functions (invocation type `Event`): Lambda queues the
//! payload and answers 202 at once, runs the function later and retries it on error, so the
//! API can answer before the work is done.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorSettings, SharedHttpConnector};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use serde::Serialize;

use crate::api::runs::{Launched, RunLauncher};
use crate::lambda::jobs::{FinishRunJob, ReportJob};
use crate::matching::EngineConfig;
use crate::reports::{ReportDispatch, ReportError};
use crate::store::dynamo::backoff;
use crate::store::{Store, StoreError, TenantId};

/// The status Lambda answers when it has queued an asynchronous invocation.
const QUEUED: u16 = 202;
/// Attempts of one invocation Lambda throttles (429) or fails on its side (5xx), or that
/// cannot reach it; between them the store's backoff, from about 160 ms.
const ATTEMPTS: u32 = 3;
/// The service name requests are signed for.
const SIGNING_NAME: &str = "lambda";
/// The environment variable naming the Lambda endpoint, as the AWS SDKs read it.
const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_LAMBDA";

/// Why a function could not be invoked.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The payload could not be encoded as JSON.
    #[error("cannot encode the payload for {function}")]
    Encode {
        /// The function.
        function: String,
        /// What failed.
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be built or signed: no region or credentials in the
    /// environment, or a function name that is not a valid path segment.
    #[error("cannot invoke {function}: {reason}")]
    Request {
        /// The function.
        function: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// Lambda could not be reached (network, timeout), after the retries.
    #[error("cannot invoke {function}")]
    Invoke {
        /// The function.
        function: String,
        /// The connection's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Lambda answered, but did not queue the event (no such function, no permission, or
    /// still throttled after the retries).
    #[error("{function} did not queue the event (status {status}{})", lambda_said(error_type, message))]
    NotQueued {
        /// The function.
        function: String,
        /// The status Lambda answered.
        status: u16,
        /// Lambda's error type (`x-amzn-errortype`), when it named one.
        error_type: Option<String>,
        /// Lambda's message, when it gave one.
        message: Option<String>,
    },
}

/// The one Lambda call the service makes, the asynchronous `Invoke` (invocation type
/// `Event`): a SigV4-signed `POST /2015-03-31/functions/{name}/invocations` over the SDK's
/// HTTP connector, with the SDK configuration's region and credentials.
#[derive(Debug, Clone)]
pub struct LambdaClient {
    http: SharedHttpConnector,
    credentials: Option<SharedCredentialsProvider>,
    region: Option<String>,
    /// Without a trailing slash.
    endpoint: Option<String>,
}

impl LambdaClient {
    /// A client over `sdk`'s region and credentials. The endpoint is `AWS_ENDPOINT_URL_LAMBDA`,
    /// else the configuration's endpoint override, else the region's public endpoint.
    pub fn new(sdk: &SdkConfig) -> Self {
        let endpoint = std::env::var(ENDPOINT_VAR).ok().or_else(|| sdk.endpoint_url().map(str::to_string));
        let settings = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(30))
            .build();
        let sleep = sdk.sleep_impl().or_else(aws_smithy_async::rt::sleep::default_async_sleep);
        let http = aws_smithy_http_client::default_connector(&settings, sleep)
            .expect("the rustls connector is built in (feature rustls-aws-lc)");
        LambdaClient {
            http,
            credentials: sdk.credentials_provider(),
            region: sdk.region().map(|r| r.as_ref().to_string()),
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_string()),
        }
    }

    /// The URL invoking `function`.
    fn url(&self, function: &str, region: &str) -> String {
        let base = match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => format!("https://lambda.{region}.amazonaws.com"),
        };
        format!("{base}/2015-03-31/functions/{function}/invocations")
    }

    /// Queues one invocation of `function` with `payload`; returns once Lambda has accepted
    /// it.
    pub async fn invoke_event(&self, function: &str, payload: Vec<u8>) -> Result<(), InvokeError> {
        let request_error = |reason: String| InvokeError::Request { function: function.to_string(), reason };
        // A name, a partial or a full ARN: letters, digits, '-', '_', ':' and a version.
        if function.is_empty() || !function.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:.$".contains(&b)) {
            return Err(request_error("not a function name or ARN".into()));
        }
        let region = self.region.as_deref().ok_or_else(|| request_error("no AWS region is configured".into()))?;
        let url = self.url(function, region);
        let mut attempt = 1;
        loop {
            match self.attempt(function, &url, region, &payload).await {
                Ok(()) => return Ok(()),
                Err(Failure { error, retry: true }) if attempt < ATTEMPTS => {
                    tracing::warn!(lambda.function = function, error = %error, attempt, "invocation failed; retrying");
                }
                Err(Failure { error, .. }) => return Err(error),
            }
            backoff(attempt + 2).await;
            attempt += 1;
        }
    }

    /// One signed request: whether Lambda queued the event, else why not and whether asking
    /// again may help (throttling, a failure on Lambda's side, a connection that failed).
    async fn attempt(&self, function: &str, url: &str, region: &str, payload: &[u8]) -> Result<(), Failure> {
        let request = self.signed(url, region, payload).await.map_err(|reason| Failure {
            error: InvokeError::Request { function: function.to_string(), reason },
            retry: false,
        })?;
        let response = self.http.call(request).await.map_err(|e| Failure {
            retry: e.is_io() || e.is_timeout(),
            error: InvokeError::Invoke { function: function.to_string(), source: Box::new(e) },
        })?;
        let status = response.status().as_u16();
        if status == QUEUED {
            return Ok(());
        }
        let error_type = response.headers().get("x-amzn-errortype").map(|t| {
            // `Type:http://internal.amazon.com/...` carries a suffix after a colon.
            t.split(':').next().unwrap_or(t).to_string()
        });
        let body = ByteStream::new(response.into_body()).collect().await.ok();
        let message = body.and_then(|b| error_message(&b.into_bytes()));
        Err(Failure {
            error: InvokeError::NotQueued { function: function.to_string(), status, error_type, message },
            retry: status == 429 || status >= 500,
        })
    }

    /// The signed request (signed again for each attempt, as the signature carries its time).
    async fn signed(
        &self,
        url: &str,
        region: &str,
        payload: &[u8],
    ) -> Result<aws_smithy_runtime_api::http::Request, String> {
        let provider = self.credentials.as_ref().ok_or("no AWS credentials are configured")?;
        let credentials = provider.provide_credentials().await.map_err(|e| format!("no AWS credentials: {e}"))?;
        let identity: Identity = credentials.into();
        let mut request = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/json")
            .header("x-amz-invocation-type", "Event")
            .body(SdkBody::from(payload.to_vec()))
            .map_err(|e| format!("invalid request: {e}"))?;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(SIGNING_NAME)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("cannot sign: {e}"))?
            .into();
        let headers = request.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
        let signable = SignableRequest::new("POST", url, headers, SignableBody::Bytes(payload))
            .map_err(|e| format!("cannot sign: {e}"))?;
        let (instructions, _signature) = sign(signable, &params).map_err(|e| format!("cannot sign: {e}"))?.into_parts();
        instructions.apply_to_request_http1x(&mut request);
        aws_smithy_runtime_api::http::Request::try_from(request).map_err(|e| format!("invalid request: {e}"))
    }
}

/// A failed attempt: its error, and whether another attempt may succeed.
struct Failure {
    error: InvokeError,
    retry: bool,
}

/// What Lambda said of a refusal, for [`InvokeError::NotQueued`]'s message: `, TYPE: MESSAGE`,
/// either part left out when Lambda did not give it.
fn lambda_said(error_type: &Option<String>, message: &Option<String>) -> String {
    let mut out = String::new();
    if let Some(t) = error_type {
        out.push_str(", ");
        out.push_str(t);
    }
    if let Some(m) = message {
        out.push_str(": ");
        out.push_str(m);
    }
    out
}

/// Lambda's error message in an error answer's JSON body (`Message` or `message`).
fn error_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = value.get("Message").or_else(|| value.get("message"))?.as_str()?;
    Some(message.to_string())
}

/// Invokes one function asynchronously with JSON payloads.
#[derive(Debug, Clone)]
pub struct AsyncInvoker {
    client: LambdaClient,
    function: String,
}

impl AsyncInvoker {
    /// Invokes `function` (a name or an ARN) through `client`.
    pub fn new(client: LambdaClient, function: impl Into<String>) -> Self {
        AsyncInvoker { client, function: function.into() }
    }

    /// The function invoked.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// Queues one invocation with `payload`; returns once Lambda has accepted it.
    pub async fn send<T: Serialize + ?Sized>(&self, payload: &T) -> Result<(), InvokeError> {
        let bytes = serde_json::to_vec(payload)
            .map_err(|source| InvokeError::Encode { function: self.function.clone(), source })?;
        self.client.invoke_event(&self.function, bytes).await
    }
}

/// Finishes the runs the API starts in the `reconcile` function, invoked with
/// `{tenant, run_id}` ([`FinishRunJob`]). The function reads the run from its own store and uses
/// its own engine settings, so the store and settings handed to [`RunLauncher::launch`] stay
/// unused.
#[derive(Debug, Clone)]
pub struct LambdaRunLauncher {
    invoker: AsyncInvoker,
}

impl LambdaRunLauncher {
    /// Invokes `function` (a name or an ARN) through `client`.
    pub fn new(client: LambdaClient, function: impl Into<String>) -> Self {
        LambdaRunLauncher { invoker: AsyncInvoker::new(client, function) }
    }
}

#[async_trait]
impl RunLauncher for LambdaRunLauncher {
    async fn launch(
        &self,
        _store: Arc<dyn Store>,
        tenant: TenantId,
        run_id: String,
        _config: EngineConfig,
    ) -> Result<Launched, Box<dyn StdError + Send + Sync>> {
        let job = FinishRunJob { tenant: tenant.as_str().to_string(), run_id };
        self.invoker.send(&job).await?;
        tracing::info!(run.id = %job.run_id, lambda.function = self.invoker.function(), "reconciliation handed over");
        Ok(Launched::Elsewhere)
    }
}

/// Builds requested reports in the `reports` function, invoked with `{tenant, report_id}`
/// ([`ReportJob`]); the function reads the job from its own store and marks it ready or
/// failed.
#[derive(Debug, Clone)]
pub struct LambdaReportDispatch {
    invoker: AsyncInvoker,
}

impl LambdaReportDispatch {
    /// Invokes `function` (a name or an ARN) through `client`.
    pub fn new(client: LambdaClient, function: impl Into<String>) -> Self {
        LambdaReportDispatch { invoker: AsyncInvoker::new(client, function) }
    }
}

#[async_trait]
impl ReportDispatch for LambdaReportDispatch {
    async fn dispatch(&self, tenant: &TenantId, job_id: &str) -> Result<(), ReportError> {
        let request = ReportJob { tenant: tenant.as_str().to_string(), report_id: job_id.to_string() };
        // The port's error speaks of storage; a call that did not reach the function is a
        // backend failure like a store's, and keeps its cause.
        self.invoker.send(&request).await.map_err(|e| ReportError::Store(StoreError::backend(e)))?;
        tracing::info!(report.id = %job_id, lambda.function = self.invoker.function(), "report handed over");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use aws_config::{BehaviorVersion, Region};
    use aws_credential_types::Credentials;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A loopback HTTP server answering `answers` in turn (one per connection) and keeping
    /// each request's head (lower-cased) and body.
    async fn lambda(answers: Vec<&'static str>) -> (String, Arc<Mutex<Vec<(String, Vec<u8>)>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let requests = seen.clone();
        tokio::spawn(async move {
            for answer in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut bytes = Vec::new();
                let mut buf = [0u8; 4096];
                let (head, length) = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    bytes.extend_from_slice(&buf[..n]);
                    if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&bytes[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        bytes.drain(..end + 4);
                        break (head, length);
                    }
                };
                while bytes.len() < length {
                    let n = socket.read(&mut buf).await.unwrap();
                    bytes.extend_from_slice(&buf[..n]);
                }
                requests.lock().unwrap().push((head, bytes));
                socket.write_all(answer.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
        });
        (endpoint, seen)
    }

    fn client(endpoint: &str, region: Option<&'static str>) -> LambdaClient {
        let credentials = Credentials::new("AKIDTEST", "secret", Some("session".into()), None, "tests");
        let mut sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .endpoint_url(endpoint);
        if let Some(region) = region {
            sdk = sdk.region(Region::new(region));
        }
        LambdaClient::new(&sdk.build())
    }

    const QUEUED_ANSWER: &str = "HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    const THROTTLED: &str = "HTTP/1.1 429 Too Many Requests\r\nx-amzn-errortype: TooManyRequestsException\r\n\
        content-length: 2\r\nconnection: close\r\n\r\n{}";
    const NOT_FOUND: &str = "HTTP/1.1 404 Not Found\r\nx-amzn-errortype: ResourceNotFoundException:http://internal\r\n\
        content-type: application/json\r\ncontent-length: 46\r\nconnection: close\r\n\r\n\
        {\"Type\":\"User\",\"Message\":\"Function not found\"}";

    #[tokio::test]
    async fn an_event_is_posted_signed_for_lambda_and_a_throttled_one_is_sent_again() {
        let (endpoint, seen) = lambda(vec![THROTTLED, QUEUED_ANSWER]).await;
        let client = client(&endpoint, Some("eu-west-1"));
        client.invoke_event("bankrec-prod-ReconcileFunction", br#"{"run_id":"r1"}"#.to_vec()).await.unwrap();

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "the throttled invocation was sent again");
        for (head, body) in seen.iter() {
            assert!(
                head.starts_with("post /2015-03-31/functions/bankrec-prod-reconcilefunction/invocations "),
                "{head}"
            );
            assert!(head.contains("\r\nx-amz-invocation-type: event\r\n"), "queued, not waited for: {head}");
            assert!(head.contains("credential=akidtest/"), "{head}");
            assert!(head.contains("/eu-west-1/lambda/aws4_request"), "signed for Lambda in the region: {head}");
            assert!(head.contains("signedheaders=content-type;host;x-amz-date;x-amz-invocation-type"), "{head}");
            assert!(head.contains("\r\nx-amz-security-token: session"), "the session token is sent: {head}");
            assert_eq!(body, br#"{"run_id":"r1"}"#);
        }
    }

    #[tokio::test]
    async fn an_invocation_throttled_three_times_fails_with_lambdas_answer() {
        let (endpoint, seen) = lambda(vec![THROTTLED, THROTTLED, THROTTLED, QUEUED_ANSWER]).await;
        let err = client(&endpoint, Some("us-east-1")).invoke_event("f", b"{}".to_vec()).await.unwrap_err();
        assert_eq!(err.to_string(), "f did not queue the event (status 429, TooManyRequestsException)");
        assert_eq!(seen.lock().unwrap().len(), ATTEMPTS as usize, "three attempts in all, not a fourth");
    }

    #[tokio::test]
    async fn a_missing_function_is_not_retried_and_the_error_says_what_lambda_answered() {
        let (endpoint, seen) = lambda(vec![NOT_FOUND, QUEUED_ANSWER]).await;
        let err = client(&endpoint, Some("us-east-1")).invoke_event("nope", b"{}".to_vec()).await.unwrap_err();
        match &err {
            InvokeError::NotQueued { status, error_type, message, .. } => {
                assert_eq!(*status, 404);
                assert_eq!(error_type.as_deref(), Some("ResourceNotFoundException"));
                assert_eq!(message.as_deref(), Some("Function not found"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "nope did not queue the event (status 404, ResourceNotFoundException: Function not found)"
        );
        assert_eq!(seen.lock().unwrap().len(), 1, "a 404 is final");
    }

    #[tokio::test]
    async fn without_a_region_or_with_a_name_that_is_no_path_segment_nothing_is_sent() {
        let (endpoint, seen) = lambda(vec![QUEUED_ANSWER]).await;
        let err = client(&endpoint, None).invoke_event("f", b"{}".to_vec()).await.unwrap_err();
        assert_eq!(err.to_string(), "cannot invoke f: no AWS region is configured");
        let err = client(&endpoint, Some("us-east-1")).invoke_event("../admin", b"{}".to_vec()).await.unwrap_err();
        assert_eq!(err.to_string(), "cannot invoke ../admin: not a function name or ARN");
        assert!(seen.lock().unwrap().is_empty());
    }
}
