//! bankrec's integration suite: one test binary, one module per area.

mod api;
mod cli;
mod corpus;
mod golden;
mod reports;
mod store;
