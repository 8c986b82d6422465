//! What the Lambda functions do with their events, written against the ports so that it runs
//! unchanged on DynamoDB and S3 in AWS and on the embedded store in tests and locally.
//!
//! The function crates under `functions/` only decode an event, call one function here and map
//! its error to the runtime: [`Retry::Transient`] errors are returned so that AWS delivers the
//! event again; everything else is recorded or logged and the event is acknowledged, so a bad
//! file never makes S3 retry forever.

pub mod ingest;
pub mod jobs;

/// Whether redelivering the event can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The backend failed (throttling, network, a missing table): try again later.
    Transient,
    /// The event itself is wrong: trying again gives the same answer.
    Permanent,
}
