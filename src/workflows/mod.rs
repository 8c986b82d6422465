//! Workflows: what the CLI, the HTTP API and the Lambda functions do, written once against the
//! ports in [`crate::store`].

pub mod import;
pub mod matches;
pub mod reconcile;
