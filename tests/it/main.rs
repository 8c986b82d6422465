//! bankrec's integration suite: one test binary, one module per area.

mod cli;
mod corpus;
mod golden;
