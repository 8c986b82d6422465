//! The `reports` Lambda: wiring only.

use bankrec::aws::{AwsConfig, AwsPorts};
use bankrec::lambda::jobs::ReportJob;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = AwsConfig::from_env()?;
    let ports = AwsPorts::connect(&config).await;
    let ports = &ports;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ReportJob>| async move {
        bankrec_reports::handle(&ports.store, &ports.store, &ports.blobs, event.payload).await.map_err(Error::from)
    }))
    .await
}
