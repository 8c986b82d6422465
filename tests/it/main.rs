//! bankrec's integration suite: one test binary, one module per area.

mod api;
mod api_recon;
mod cli;
mod corpus;
mod golden;
mod store;
