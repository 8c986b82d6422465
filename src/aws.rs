//! Wiring for AWS: the functions' configuration, read once from the environment, and the ports
//! over DynamoDB and S3 built from it with one set of clients per process.
//!
//! Region, credentials and endpoints come from the standard AWS variables only (`AWS_REGION`,
//! `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_S3`...), so the same wiring runs against
//! DynamoDB Local and a local S3 server.

use std::ffi::OsString;
use std::sync::Arc;

use crate::api::AppState;
use crate::store::{DynamoStore, S3Blobs};

/// The variable naming the DynamoDB table.
pub const TABLE_VAR: &str = "BANKREC_TABLE";
/// The variable naming the S3 bucket.
pub const BUCKET_VAR: &str = "BANKREC_BUCKET";

/// What the functions need to know about their environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsConfig {
    /// The DynamoDB table of every tenant's objects.
    pub table: String,
    /// The S3 bucket of raw statements and reports.
    pub bucket: String,
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
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<OsString>) -> Result<Self, ConfigError> {
        let var = |name: &'static str| -> Result<String, ConfigError> {
            let value = lookup(name).ok_or(ConfigError::Missing { name })?;
            let value = value.into_string().map_err(|_| ConfigError::NotUnicode { name })?;
            let value = value.trim().to_string();
            if value.is_empty() {
                return Err(ConfigError::Missing { name });
            }
            Ok(value)
        };
        Ok(AwsConfig { table: var(TABLE_VAR)?, bucket: var(BUCKET_VAR)? })
    }
}

/// The ports over AWS, sharing one SDK configuration.
#[derive(Debug, Clone)]
pub struct AwsPorts {
    /// The DynamoDB store (also the key store).
    pub store: DynamoStore,
    /// The S3 blobs.
    pub blobs: S3Blobs,
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
        }
    }

    /// The API's state over these ports.
    pub fn app_state(&self) -> AppState {
        let store = Arc::new(self.store.clone());
        AppState::new(store.clone(), Arc::new(self.blobs.clone()), store)
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
        assert_eq!(config, AwsConfig { table: "bankrec-prod".into(), bucket: "bankrec-files".into() });
    }

    #[test]
    fn a_missing_or_empty_variable_is_named_in_the_error() {
        assert_eq!(read(&[(BUCKET_VAR, "b")]), Err(ConfigError::Missing { name: TABLE_VAR }));
        let e = read(&[(TABLE_VAR, "t"), (BUCKET_VAR, "  ")]).unwrap_err();
        assert_eq!(e.to_string(), "the environment variable BANKREC_BUCKET is not set");
    }
}
