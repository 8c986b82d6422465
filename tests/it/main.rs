//! bankrec's integration suite: one test binary, one module per area.

mod api;
#[cfg(feature = "aws")]
mod aws;
mod cli;
mod corpus;
mod golden;
mod store;
