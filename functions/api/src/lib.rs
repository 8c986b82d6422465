//! The `api` function: API Gateway REST proxy events served by the same router `bankrec serve`
//! runs locally.
//!
//! API Gateway puts the stage in front of the path (`/Prod/v1/bank-reconciliation/...`) when the
//! default endpoint is called; the router knows only the base path, so the stage is removed first.

use std::convert::Infallible;

use axum::response::Response;
use axum::Router;
use bankrec::api::BASE_PATH;
use lambda_http::http::uri::{PathAndQuery, Uri};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tower::ServiceExt;

/// The stage of a REST API event, when the request came through API Gateway.
fn stage(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.stage.clone(),
        _ => None,
    }
}

/// Removes a leading `/{stage}` from the path when the path goes on with the API's base path, so
/// that a stage that happens to share the base path's first segment is never cut off twice.
pub fn strip_stage(mut req: Request) -> Request {
    let Some(stage) = stage(&req) else { return req };
    let prefix = format!("/{stage}");
    let Some(rest) = req.uri().path().strip_prefix(&prefix) else { return req };
    if !rest.starts_with(BASE_PATH) {
        return req;
    }
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let mut parts = req.uri().clone().into_parts();
    match PathAndQuery::try_from(path_and_query) {
        Ok(pq) => parts.path_and_query = Some(pq),
        Err(_) => return req,
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

/// Serves one request with `router`.
pub async fn handle(router: Router, req: Request) -> Result<Response, Infallible> {
    router.oneshot(strip_stage(req)).await
}
