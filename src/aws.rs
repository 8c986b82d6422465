//! Wiring for AWS: the functions' configuration, read once from the environment, and the ports
//! over DynamoDB, S3 and Lambda built from it with one set of clients per process.
//!
//! Region, credentials and endpoints come from the standard AWS variables only (`AWS_REGION`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_LAMBDA`...), so the
//! same wiring runs against DynamoDB Local and local S3 and Lambda endpoints.
//!
//! What `bankrec serve` does in its own process, the API function hands to AWS: long runs to
//! the `reconcile` function ([`invoke::LambdaRunLauncher`]), statement uploads to presigned S3
//! PUTs ([`presign::S3Uploads`]) that the `ingest` function picks up.

pub mod invoke;
pub mod presign;

use std::ffi::OsString;
use std::sync::Arc;

use crate::api::AppState;
use crate::store::{DynamoStore, S3Blobs};
use invoke::{LambdaClient, LambdaReportDispatch, LambdaRunLauncher};
use presign::{S3ReportLinks, S3Uploads};

/// The variable naming the DynamoDB table.
pub const TABLE_VAR: &str = "BANKREC_TABLE";
/// The variable naming the S3 bucket.
pub const BUCKET_VAR: &str = "BANKREC_BUCKET";
/// The variable naming the `reconcile` function, which finishes the runs the API starts.
pub const RECONCILE_FUNCTION_VAR: &str = "BANKREC_RECONCILE_FUNCTION";
/// The variable naming the `reports` function, which builds the reports the API is asked for.
pub const REPORTS_FUNCTION_VAR: &str = "BANKREC_REPORTS_FUNCTION";

/// What the functions need to know about their environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// The DynamoDB table of every tenant's objects.
    pub table: String,
    /// The S3 bucket of raw statements and reports.
    pub bucket: String,
    /// The function (name or ARN) the API invokes to finish a run it started. Without it the
    /// API finishes runs in its own process, which Lambda freezes once the response is sent.
    pub reconcile_function: Option<String>,
    /// The function (name or ARN) the API invokes with `{tenant, report_id}` to build a
    /// requested report. Without it the report routes answer 503.
    pub reports_function: Option<String>,
}

/// A variable is missing or unusable; the message names it, so a misconfigured function fails at
/// its first start with a message that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The variable is not set, or empty.
    #[error("the environment variable {name} is not set")]
    Missing {
        /// The variable.
        name: &'static str,
    },
    /// The variable is not valid Unicode.
    #[error("the environment variable {name} is not valid Unicode")]
    NotUnicode {
        /// The variable.
        name: &'static str,
    },
}

impl AwsConfig {
    /// The table and the bucket, with no function to hand work to: what a process outside
    /// Lambda (`bankrec serve` on AWS storage) needs.
    pub fn new(table: impl Into<String>, bucket: impl Into<String>) -> Self {
        AwsConfig { table: table.into(), bucket: bucket.into(), reconcile_function: None, reports_function: None }
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, ConfigError> {
        // Unset and empty are the same: a template passes an unused name as "".
        let optional = |name: &'static str| -> Result<Option<String>, ConfigError> {
            let Some(value) = lookup(name) else { return Ok(None) };
            let value = value.into_string().map_err(|_| ConfigError::NotUnicode { name })?;
            let value = value.trim();
            Ok((!value.is_empty()).then(|| value.to_string()))
        };
        let required = |name: &'static str| optional(name)?.ok_or(ConfigError::Missing { name });
        Ok(AwsConfig {
            table: required(TABLE_VAR)?,
            bucket: required(BUCKET_VAR)?,
            reconcile_function: optional(RECONCILE_FUNCTION_VAR)?,
            reports_function: optional(REPORTS_FUNCTION_VAR)?,
        })
    }
}

/// The ports over AWS, sharing one SDK configuration.
#[derive(Debug, Clone)]
pub struct AwsPorts {
    /// The DynamoDB store (also the key store).
    pub store: DynamoStore,
    /// The S3 blobs.
    pub blobs: S3Blobs,
    /// Invokes the other functions.
    pub lambda: LambdaClient,
    /// What the ports were built from.
    pub config: AwsConfig,
}

impl AwsPorts {
    /// Builds the clients once from the standard AWS environment. S3 uses path-style addressing
    /// when its endpoint is overridden: local S3 servers do not resolve bucket subdomains.
    pub async fn connect(config: &AwsConfig) -> Self {
        let sdk = aws_config::load_from_env().await;
        let overridden = sdk.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3 = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(overridden).build();
        AwsPorts {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &config.table),
            blobs: S3Blobs::new(aws_sdk_s3::Client::from_conf(s3), &config.bucket),
            lambda: LambdaClient::new(&sdk),
            config: config.clone(),
        }
    }

    /// The API's state over these ports: upload URLs are presigned S3 PUTs; runs go to the
    /// `reconcile` function and reports to the `reports` function (downloaded through
    /// presigned S3 GETs) when those are configured.
    pub fn app_state(&self) -> AppState {
        let store = Arc::new(self.store.clone());
        let mut state = AppState::new(store.clone(), Arc::new(self.blobs.clone()), store.clone())
            .with_uploads(Arc::new(S3Uploads::new(self.blobs.clone())));
        if let Some(function) = &self.config.reconcile_function {
            state = state.with_runs(Arc::new(LambdaRunLauncher::new(self.lambda.clone(), function)));
        }
        if let Some(function) = &self.config.reports_function {
            state = state.with_reports(
                store,
                Arc::new(S3ReportLinks::new(self.blobs.clone())),
                Arc::new(LambdaReportDispatch::new(self.lambda.clone(), function)),
            );
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<AwsConfig, ConfigError> {
        let map: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        AwsConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn the_table_and_the_bucket_are_read_from_their_variables() {
        let config = read(&[(TABLE_VAR, "bankrec-prod"), (BUCKET_VAR, " bankrec-files ")]).unwrap();
        assert_eq!(config, AwsConfig::new("bankrec-prod", "bankrec-files"));
    }

    #[test]
    fn the_function_names_are_optional_and_empty_means_unset() {
        let base = [(TABLE_VAR, "t"), (BUCKET_VAR, "b")];
        let with = |extra: &[(&'static str, &'static str)]| read(&[&base[..], extra].concat()).unwrap();
        assert_eq!(
            with(&[(RECONCILE_FUNCTION_VAR, " bankrec-reconcile ")]).reconcile_function.as_deref(),
            Some("bankrec-reconcile")
        );
        assert_eq!(with(&[(RECONCILE_FUNCTION_VAR, "")]).reconcile_function, None);
        assert_eq!(
            with(&[(REPORTS_FUNCTION_VAR, "bankrec-reports")]).reports_function.as_deref(),
            Some("bankrec-reports")
        );
        assert_eq!(with(&[]).reports_function, None);
    }

    #[cfg(unix)]
    #[test]
    fn a_function_name_that_is_not_unicode_is_named_in_the_error() {
        use std::os::unix::ffi::OsStringExt;
        let map = HashMap::from([
            (TABLE_VAR, OsString::from("t")),
            (BUCKET_VAR, OsString::from("b")),
            (RECONCILE_FUNCTION_VAR, OsString::from_vec(vec![0xff, 0xfe])),
        ]);
        let e = AwsConfig::from_lookup(|name| map.get(name).cloned()).unwrap_err();
        assert_eq!(e, ConfigError::NotUnicode { name: RECONCILE_FUNCTION_VAR });
    }

    #[test]
    fn a_missing_or_empty_variable_is_named_in_the_error() {
        assert_eq!(read(&[(BUCKET_VAR, "b")]), Err(ConfigError::Missing { name: TABLE_VAR }));
        let e = read(&[(TABLE_VAR, "t"), (BUCKET_VAR, "  ")]).unwrap_err();
        assert_eq!(e.to_string(), "the environment variable BANKREC_BUCKET is not set");
    }
}
