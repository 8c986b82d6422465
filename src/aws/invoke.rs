//! Asynchronous invocations of the other functions (invocation type `Event`): Lambda queues the
//! payload and answers 202 at once, runs the function later and retries it on error, so the
//! API can answer before the work is done.

use std::error::Error as StdError;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_lambda::Client;
use serde::Serialize;

use crate::api::runs::{Launched, RunLauncher};
use crate::lambda::jobs::{FinishRunJob, ReportJob};
use crate::matching::EngineConfig;
use crate::reports::{ReportDispatch, ReportError};
use crate::store::{Store, StoreError, TenantId};

/// The status Lambda answers when it has queued an asynchronous invocation.
const QUEUED: i32 = 202;

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
    /// The call failed (network, permissions, throttling after the SDK's retries, no such
    /// function).
    #[error("cannot invoke {function}")]
    Invoke {
        /// The function.
        function: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Lambda answered, but did not queue the event.
    #[error("{function} did not queue the event (status {status})")]
    NotQueued {
        /// The function.
        function: String,
        /// The status Lambda answered.
        status: i32,
    },
}

/// Invokes one function asynchronously with JSON payloads.
#[derive(Debug, Clone)]
pub struct AsyncInvoker {
    client: Client,
    function: String,
}

impl AsyncInvoker {
    /// Invokes `function` (a name or an ARN) through `client`.
    pub fn new(client: Client, function: impl Into<String>) -> Self {
        AsyncInvoker { client, function: function.into() }
    }

    /// The function invoked.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// Queues one invocation with `payload`; returns once Lambda has accepted it.
    pub async fn send<T: Serialize + ?Sized>(&self, payload: &T) -> Result<(), InvokeError> {
        let function = || self.function.clone();
        let bytes =
            serde_json::to_vec(payload).map_err(|source| InvokeError::Encode { function: function(), source })?;
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(bytes))
            .send()
            .await
            .map_err(|e| InvokeError::Invoke { function: function(), source: Box::new(e) })?;
        if out.status_code() != QUEUED {
            return Err(InvokeError::NotQueued { function: function(), status: out.status_code() });
        }
        Ok(())
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
    pub fn new(client: Client, function: impl Into<String>) -> Self {
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
    pub fn new(client: Client, function: impl Into<String>) -> Self {
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
