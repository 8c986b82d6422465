//! The REST API under `/v1/bank-reconciliation`: one axum [`Router`] built by [`app`], served by
//! `bankrec serve` locally and by the Lambda function in AWS.
//!
//! Every route is an [`ApiRoute`] in the table [`routes()`]: the router is built from it, and the
//! OpenAPI document is checked against it, so a route cannot exist without being documented. New
//! areas add a module under [`mod@routes`] and its entries to the table.

pub mod auth;
pub mod error;
pub mod extract;
pub mod pagination;
pub mod routes;
pub mod runs;
pub mod uploads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{self, MethodRouter};
use axum::Router;

pub use error::ApiError;
pub use extract::Caller;

use crate::matching::EngineConfig;
use crate::store::{Blobs, KeyStore, Store};
use runs::{RunLauncher, TaskLauncher};
use uploads::{SignedUploads, UploadUrls};

/// Every route's path starts with this.
pub const BASE_PATH: &str = "/v1/bank-reconciliation";

/// Largest JSON request body.
pub const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// Largest statement file upload.
pub const STATEMENT_BODY_LIMIT: usize = 20 * 1024 * 1024;
/// Largest records upload (CSV or JSON). Smaller than statements: a JSON array is held as a
/// tree of values while it is read, which costs several times its size.
pub const RECORDS_BODY_LIMIT: usize = 10 * 1024 * 1024;
/// How long `POST /reconcile` waits for a run before answering 202: well inside API Gateway's
/// 29 seconds.
pub const DEFAULT_RUN_WAIT: Duration = Duration::from_secs(5);

/// What the handlers share: the ports, injected so that the same router runs on SQLite and a
/// folder locally and on DynamoDB and S3 in AWS.
#[derive(Clone)]
pub struct AppState {
    /// Accounts, statements, transactions, records.
    pub store: Arc<dyn Store>,
    /// Raw statement files.
    pub blobs: Arc<dyn Blobs>,
    /// API keys.
    pub keys: Arc<dyn KeyStore>,
    /// Where reconciliations started by the API run to their end.
    pub runs: Arc<dyn RunLauncher>,
    /// Mints (and locally redeems) statement upload URLs.
    pub uploads: Arc<dyn UploadUrls>,
    /// The matching engine's settings.
    pub engine: Arc<EngineConfig>,
    /// How long `POST /reconcile` waits for the run before answering 202.
    pub run_wait: Duration,
    /// Report jobs and download links; the report routes answer 503 without them.
    pub reports: Option<ReportServices>,
}

/// What the report routes need besides the store and blobs.
#[derive(Clone)]
pub struct ReportServices {
    /// Report jobs.
    pub jobs: Arc<dyn crate::store::ReportStore>,
    /// Download URLs of finished reports.
    pub links: Arc<dyn crate::reports::ReportLinks>,
    /// Starts building a requested report.
    pub dispatch: Arc<dyn crate::reports::ReportDispatch>,
}

impl AppState {
    /// State over the given ports, with runs as tasks of this process and upload URLs signed
    /// with a secret of this process (see [`AppState::with_uploads`] to keep it across restarts).
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn Blobs>, keys: Arc<dyn KeyStore>) -> Self {
        // Without OS randomness no key could be minted either; an all-zero secret would make
        // forgeable URLs, so such a state mints none (every redeem fails).
        let uploads: Arc<dyn UploadUrls> = match SignedUploads::random() {
            Ok(signer) => Arc::new(signer),
            Err(_) => Arc::new(uploads::NoUploads),
        };
        AppState {
            store,
            blobs,
            keys,
            runs: Arc::new(TaskLauncher),
            uploads,
            engine: Arc::new(EngineConfig::default()),
            run_wait: DEFAULT_RUN_WAIT,
            reports: None,
        }
    }

    /// Runs reconciliations through `runs` (the `reconcile` function in AWS).
    pub fn with_runs(mut self, runs: Arc<dyn RunLauncher>) -> Self {
        self.runs = runs;
        self
    }

    /// Mints upload URLs with `uploads` (presigned S3 PUTs in AWS).
    pub fn with_uploads(mut self, uploads: Arc<dyn UploadUrls>) -> Self {
        self.uploads = uploads;
        self
    }

    /// Waits `wait` for a run before answering 202.
    pub fn with_run_wait(mut self, wait: Duration) -> Self {
        self.run_wait = wait;
        self
    }

    /// Reconciles with `engine` instead of the default settings.
    pub fn with_engine(mut self, engine: EngineConfig) -> Self {
        self.engine = Arc::new(engine);
        self
    }

    /// Enables the report routes.
    pub fn with_reports(
        mut self,
        jobs: Arc<dyn crate::store::ReportStore>,
        links: Arc<dyn crate::reports::ReportLinks>,
        dispatch: Arc<dyn crate::reports::ReportDispatch>,
    ) -> Self {
        self.reports = Some(ReportServices { jobs, links, dispatch });
        self
    }
}

/// One route: its method and path (relative to [`BASE_PATH`], in OpenAPI's `{param}` syntax),
/// whether it needs a key, and its handler.
pub struct ApiRoute {
    /// The HTTP method.
    pub method: Method,
    /// The path below [`BASE_PATH`].
    pub path: &'static str,
    /// False only for routes anyone may call (`/health`).
    pub authenticated: bool,
    handler: MethodRouter<AppState>,
}

impl ApiRoute {
    fn new(method: Method, path: &'static str, handler: MethodRouter<AppState>) -> Self {
        ApiRoute { method, path, authenticated: true, handler }
    }

    /// An authenticated `GET`.
    pub fn get<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::new(Method::GET, path, routing::get(handler))
    }

    /// An authenticated `POST`.
    pub fn post<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::new(Method::POST, path, routing::post(handler))
    }

    /// An authenticated `PUT`.
    pub fn put<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::new(Method::PUT, path, routing::put(handler))
    }

    /// An authenticated `DELETE`.
    pub fn delete<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Self {
        Self::new(Method::DELETE, path, routing::delete(handler))
    }

    /// Callable without a key.
    pub fn public(mut self) -> Self {
        self.authenticated = false;
        self
    }

    /// Accepts bodies up to `bytes` instead of [`JSON_BODY_LIMIT`].
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.handler = self.handler.layer(DefaultBodyLimit::max(bytes));
        self
    }
}

/// Every route of the API.
pub fn routes() -> Vec<ApiRoute> {
    let mut all = vec![ApiRoute::get("/health", routes::health).public()];
    all.extend(routes::accounts::routes());
    all.extend(routes::records::routes());
    all.extend(routes::recon::routes());
    all.extend(routes::rules::routes());
    all.extend(routes::uploads::routes());
    all.extend(routes::reports::routes());
    all
}

/// The API router over `state`.
pub fn app(state: AppState) -> Router {
    let (mut public, mut protected) = (Router::new(), Router::new());
    for route in routes() {
        let path = format!("{BASE_PATH}{}", route.path);
        if route.authenticated {
            protected = protected.route(&path, route.handler);
        } else {
            public = public.route(&path, route.handler);
        }
    }
    let protected = protected.route_layer(middleware::from_fn_with_state(state.clone(), auth::require_key));
    public
        .merge(protected)
        .fallback(routes::no_route)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One log line per request: route template (never the raw path or query, which carry ids and
/// filters), status, duration and the key's public id.
async fn log_request(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(req).await;
    let key_id = response.extensions().get::<auth::AuthenticatedKey>().map(|k| k.0.clone());
    tracing::info!(
        http.method = %method,
        http.route = route.as_deref().unwrap_or("(none)"),
        http.status = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        auth.key_id = key_id.as_deref(),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `(METHOD, path, public)` of every operation in `openapi.yaml`. The document's layout is
    /// fixed (two-space indent: paths at 2, methods at 4, an operation's keys at 6), so a line
    /// scan is enough and keeps a YAML parser out of the build.
    fn documented() -> BTreeSet<(String, String, bool)> {
        let doc = include_str!("../../openapi.yaml");
        let mut out = BTreeSet::new();
        let (mut in_paths, mut path, mut op): (bool, Option<String>, Option<(String, bool)>) = (false, None, None);
        let mut flush = |path: &Option<String>, op: &mut Option<(String, bool)>| {
            if let (Some(p), Some((m, public))) = (path, op.take()) {
                out.insert((m, p.clone(), public));
            }
        };
        for line in doc.lines() {
            let indent = line.len() - line.trim_start().len();
            let text = line.trim();
            if indent == 0 && !text.is_empty() {
                flush(&path, &mut op);
                in_paths = text == "paths:";
                path = None;
            } else if in_paths && indent == 2 && text.starts_with('/') {
                flush(&path, &mut op);
                path = Some(text.trim_end_matches(':').to_string());
            } else if in_paths && indent == 4 && text.ends_with(':') {
                flush(&path, &mut op);
                op = Some((text.trim_end_matches(':').to_ascii_uppercase(), false));
            } else if in_paths && indent == 6 && text == "security: []" {
                if let Some((_, public)) = op.as_mut() {
                    *public = true;
                }
            }
        }
        flush(&path, &mut op);
        out
    }

    fn routed() -> BTreeSet<(String, String, bool)> {
        routes().iter().map(|r| (r.method.to_string(), r.path.to_string(), !r.authenticated)).collect()
    }

    #[test]
    fn every_route_in_the_router_is_in_the_openapi_document() {
        let documented = documented();
        let missing: Vec<_> = routed().difference(&documented).cloned().collect();
        assert!(missing.is_empty(), "routes missing from openapi.yaml (or with other auth): {missing:?}");
    }

    #[test]
    fn every_operation_in_the_openapi_document_is_routed() {
        let routed = routed();
        let extra: Vec<_> = documented().difference(&routed).cloned().collect();
        assert!(extra.is_empty(), "openapi.yaml documents routes the router lacks: {extra:?}");
    }

    #[test]
    fn only_health_and_signed_uploads_are_public() {
        let public: Vec<_> = routes().iter().filter(|r| !r.authenticated).map(|r| r.path).collect();
        assert_eq!(public, ["/health", "/uploads/{token}"]);
    }

    #[test]
    fn no_route_is_registered_twice() {
        let all = routes();
        let unique: BTreeSet<_> = all.iter().map(|r| (r.method.to_string(), r.path)).collect();
        assert_eq!(unique.len(), all.len());
    }
}
