//! bankrec: bank reconciliation.
//!
//! The library holds the domain ([`domain`]), the statement parsers ([`parse`]) and everything the
//! `bankrec` command line, the HTTP API and the AWS Lambda functions share. Binaries only wire.

pub mod api;
#[cfg(feature = "aws")]
pub mod aws;
pub mod domain;
pub mod lambda;
pub mod matching;
pub mod parse;
pub mod reports;
pub mod rules;
pub mod store;
pub mod workflows;
pub mod workload;
