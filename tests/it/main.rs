//! bankrec's integration suite: one test binary, one module per area.

mod api;
mod api_recon;
#[cfg(feature = "aws")]
mod aws;
mod cli;
mod corpus;
mod fuzz_regressions;
mod golden;
mod reports;
mod store;
