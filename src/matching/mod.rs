//! The matching engine: which bank transactions and book records belong together, how sure it is,
//! and why.

pub mod model;

pub use model::{Explanation, Match, MatchStatus, Method, ReconcileResult, Summary};
