//! Where a reconciliation started by `POST /reconcile` runs to its end. Locally it is a tokio
//! task in this process; in AWS the `reconcile` function is invoked asynchronously instead, so
//! the launcher is a port in [`super::AppState`] that the Lambda wiring replaces.

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::task::JoinHandle;

use crate::matching::EngineConfig;
use crate::store::{Store, TenantId};
use crate::workflows::reconcile::{finish_started_run, ReconcileError, ReconcileOutcome};

/// How a launched run can be followed.
#[derive(Debug)]
pub enum Launched {
    /// It runs in this process: the handle resolves when it is done.
    InProcess(JoinHandle<Result<ReconcileOutcome, ReconcileError>>),
    /// It runs elsewhere; its progress is visible only through the stored run.
    Elsewhere,
}

/// Finishes runs that [`crate::workflows::reconcile::start_run`] stored as `running`.
#[async_trait]
pub trait RunLauncher: Send + Sync {
    /// Starts finishing the stored run `run_id` of `tenant`. Must not wait for it to end.
    async fn launch(
        &self,
        store: Arc<dyn Store>,
        tenant: TenantId,
        run_id: String,
        config: EngineConfig,
    ) -> Result<Launched, Box<dyn StdError + Send + Sync>>;
}

/// Runs each reconciliation as a tokio task of this process (`bankrec serve`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskLauncher;

#[async_trait]
impl RunLauncher for TaskLauncher {
    async fn launch(
        &self,
        store: Arc<dyn Store>,
        tenant: TenantId,
        run_id: String,
        config: EngineConfig,
    ) -> Result<Launched, Box<dyn StdError + Send + Sync>> {
        // A task of its own: it keeps going when the request that started it has been answered.
        let handle = tokio::spawn(async move {
            let started = std::time::Instant::now();
            let result = finish_started_run(store.as_ref(), &tenant, &run_id, &config).await;
            match &result {
                Ok(_) => tracing::info!(
                    run.id = %run_id,
                    duration_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "reconciliation finished"
                ),
                Err(e) => tracing::warn!(run.id = %run_id, error = %e, "reconciliation failed"),
            }
            result
        });
        Ok(Launched::InProcess(handle))
    }
}
