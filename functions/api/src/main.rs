//! The `api` Lambda: wiring only.

use bankrec::aws::{AwsConfig, AwsPorts};
use lambda_http::{service_fn, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let config = AwsConfig::from_env()?;
    let router = bankrec::api::app(AwsPorts::connect(&config).await.app_state());
    lambda_http::run(service_fn(move |req| bankrec_api::handle(router.clone(), req))).await
}
