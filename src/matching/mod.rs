//! The matching engine: which bank transactions and book records belong together, how sure it is,
//! and why.
//!
//! Native code does the heavy lifting — indexes by amount, reference and name instead of the
//! cross product, evidence scores, bounded subset-sum for batches and instalments, one global
//! conflict-free assignment — and the Rhai rules of [`crate::rules`] decide on the few candidates
//! that reach them. Learned [`Memory`] adds aliases, habits and hard negatives.

mod engine;
pub mod memory;
pub mod model;
mod prepare;
pub mod score;
pub mod subset;
pub mod text;

pub use engine::{reconcile, EngineConfig, EngineError, GroupConfig};
pub use memory::{Feedback, LearnStats, Memory, MemoryError};
pub use model::{Explanation, Features, Match, MatchStatus, Method, ReconcileResult, Summary};
pub use score::Weights;
