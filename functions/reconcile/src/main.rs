//! The `reconcile` Lambda: wiring only.

use bankrec::aws::{AwsConfig, AwsPorts};
use bankrec::matching::EngineConfig;
use bankrec_reconcile::Payload;
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = AwsConfig::from_env()?;
    let ports = AwsPorts::connect(&config).await;
    let engine = EngineConfig::default();
    let (ports, engine) = (&ports, &engine);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Payload>| async move {
        let today = chrono::Utc::now().date_naive();
        bankrec_reconcile::handle(&ports.store, event.payload, today, engine).await.map_err(Error::from)
    }))
    .await
}
