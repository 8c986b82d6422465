//! The `ingest` Lambda: wiring only.

use aws_lambda_events::s3::S3Event;
use bankrec::aws::{AwsConfig, AwsPorts};
use bankrec::matching::EngineConfig;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = AwsConfig::from_env()?;
    let ports = AwsPorts::connect(&config).await;
    let engine = EngineConfig::default();
    let (ports, engine, bucket) = (&ports, &engine, config.bucket.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<S3Event>| async move {
        bankrec_ingest::handle(&ports.store, &ports.blobs, bucket, event.payload, engine).await.map_err(Error::from)
    }))
    .await
}
