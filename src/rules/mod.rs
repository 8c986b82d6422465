//! The Rhai rule runtime: finance admins' matching rules as scripts, compiled once and run in a
//! hardened engine that cannot loop forever, recurse without bound, build huge values or reach
//! files, the network, `eval` or other modules.
//!
//! A rule is a script defining `fn pair(bank, record, features)` and/or
//! `fn group(banks, records, features)`. The engine calls them on the few candidates that survive
//! native blocking and scoring; each returns a [`Decision`] (`accept`, `veto`, `adjust`, or `()`
//! for no opinion) and Rust applies it. `rules/README.md` is the rule-writer's guide.

mod helpers;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, Scope, AST};
use rust_decimal::Decimal;

pub use helpers::{business_days, days_between};

/// Operations one call of a rule may perform before it is stopped.
pub const MAX_OPERATIONS: u64 = 200_000;
/// Nesting of function calls (script recursion included).
pub const MAX_CALL_LEVELS: usize = 32;
/// Nesting of expressions at the top level and inside functions.
pub const MAX_EXPR_DEPTH: (usize, usize) = (64, 32);
/// Longest string a script may build, in bytes.
pub const MAX_STRING_SIZE: usize = 16 * 1024;
/// Largest array a script may build.
pub const MAX_ARRAY_SIZE: usize = 4 * 1024;
/// Largest object map a script may build.
pub const MAX_MAP_SIZE: usize = 256;
/// Longest rule source accepted, in bytes.
pub const MAX_SOURCE_SIZE: usize = 256 * 1024;

/// The default rules shipped with bankrec, as (file name, source), in priority order.
pub const DEFAULT_RULES: &[(&str, &str)] = &[
    ("10-check-number", include_str!("../../rules/10-check-number.rhai")),
    ("20-bank-charges", include_str!("../../rules/20-bank-charges.rhai")),
    ("30-reference-with-amount", include_str!("../../rules/30-reference-with-amount.rhai")),
    ("35-fee-from-the-named-payer", include_str!("../../rules/35-fee-from-the-named-payer.rhai")),
    ("40-name-conflict", include_str!("../../rules/40-name-conflict.rhai")),
    ("50-own-transfers", include_str!("../../rules/50-own-transfers.rhai")),
    ("60-payouts", include_str!("../../rules/60-payouts.rhai")),
];

/// What a rule decided about one candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The rule has nothing to say; the next rule is asked.
    NoOpinion,
    /// The candidate is right, with this confidence in [0, 1]; later rules are not asked.
    Accept {
        /// Confidence (clamped to [0, 1]).
        confidence: f64,
        /// Why, in the rule's words.
        reason: String,
    },
    /// The candidate must not be matched; later rules are not asked.
    Veto {
        /// Why, in the rule's words.
        reason: String,
    },
    /// Add `delta` to the candidate's score (log-odds) and ask the next rule.
    Adjust {
        /// Change of score; positive makes the match likelier.
        delta: f64,
        /// Why, in the rule's words.
        reason: String,
    },
}

/// A rule that could not be compiled or failed while running.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuleError {
    /// The script does not parse (or breaks a limit while parsing).
    #[error("rule `{rule}`{}: {message}", at(*.line, *.column))]
    Compile {
        /// Rule name.
        rule: String,
        /// 1-based line.
        line: Option<usize>,
        /// 1-based column.
        column: Option<usize>,
        /// What the parser said.
        message: String,
    },
    /// The script defines neither `pair` nor `group` with the right number of parameters.
    #[error(
        "rule `{rule}` defines neither `fn pair(bank, record, features)` nor `fn group(banks, records, features)`"
    )]
    NoEntryPoint {
        /// Rule name.
        rule: String,
    },
    /// The script failed while deciding: an error, a limit reached or a wrong return value.
    #[error("rule `{rule}`{}: {kind}: {message}", at(*.line, *.column))]
    Runtime {
        /// Rule name.
        rule: String,
        /// 1-based line, when the script gives one.
        line: Option<usize>,
        /// 1-based column.
        column: Option<usize>,
        /// Which limit or failure.
        kind: RuntimeFailure,
        /// What the engine said.
        message: String,
    },
    /// A rules folder or file could not be read.
    #[error("cannot read rules from {path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's message.
        message: String,
    },
}

/// The kind of a rule's run-time failure, so callers can tell hostile scripts from mistakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeFailure {
    /// More than [`MAX_OPERATIONS`] operations (an endless or too long loop).
    #[error("too many operations")]
    TooManyOperations,
    /// Deeper than [`MAX_CALL_LEVELS`] (runaway recursion).
    #[error("call stack too deep")]
    StackOverflow,
    /// A string, array or map beyond its size limit.
    #[error("value too large")]
    DataTooLarge,
    /// The function returned something other than a decision or `()`.
    #[error("wrong return value")]
    BadReturn,
    /// Any other script error (unknown variable, type mismatch, thrown error...).
    #[error("script error")]
    Script,
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// Builds the one hardened Rhai engine that production and tests share: every limit set,
/// strict variables, no `eval`, no module imports, no output, Decimal numbers and the native
/// helpers rules may call.
pub fn engine() -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH.0, MAX_EXPR_DEPTH.1)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_max_variables(256)
        .set_max_functions(64)
        .set_max_strings_interned(256)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        // Helpers are pure, so calls with constant arguments may be folded when a rule is
        // compiled; a rule is compiled once and called on up to a million candidates.
        .set_optimization_level(rhai::OptimizationLevel::Full);
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    helpers::register(&mut engine);
    engine
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    name: String,
    ast: AST,
    has_pair: bool,
    has_group: bool,
    /// Where `fn pair` / `fn group` are defined: the position reported for failures the engine
    /// cannot place (the operation limit carries no position).
    pair_at: Option<(usize, usize)>,
    group_at: Option<(usize, usize)>,
}

impl Rule {
    /// The rule's name (its file name without `.rhai`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the rule judges 1:1 candidates.
    pub fn judges_pairs(&self) -> bool {
        self.has_pair
    }

    /// Whether the rule judges group candidates (n:1, 1:n).
    pub fn judges_groups(&self) -> bool {
        self.has_group
    }
}

/// Compiled rules in priority order, sharing one hardened engine.
#[derive(Clone)]
pub struct RuleSet {
    engine: Arc<Engine>,
    rules: Vec<Rule>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet").field("rules", &self.rules.iter().map(|r| &r.name).collect::<Vec<_>>()).finish()
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::empty()
    }
}

impl RuleSet {
    /// No rules: native scoring alone decides.
    pub fn empty() -> Self {
        RuleSet { engine: Arc::new(engine()), rules: Vec::new() }
    }

    /// The default rules shipped with bankrec.
    pub fn defaults() -> Result<Self, RuleError> {
        RuleSet::from_sources(DEFAULT_RULES.iter().map(|(n, s)| (n.to_string(), s.to_string())))
    }

    /// Compiles one script into a set of one rule.
    pub fn compile(name: &str, source: &str) -> Result<Self, RuleError> {
        RuleSet::from_sources([(name.to_string(), source.to_string())])
    }

    /// Compiles (name, source) pairs; the order given is the priority order.
    pub fn from_sources(sources: impl IntoIterator<Item = (String, String)>) -> Result<Self, RuleError> {
        let engine = engine();
        let mut rules = Vec::new();
        for (name, source) in sources {
            rules.push(compile_rule(&engine, &name, &source)?);
        }
        Ok(RuleSet { engine: Arc::new(engine), rules })
    }

    /// Loads every `*.rhai` file of `dir`, ordered by file name (so `10-…` runs before `20-…`).
    pub fn load_dir(dir: &Path) -> Result<Self, RuleError> {
        let io = |e: std::io::Error| RuleError::Io { path: dir.to_path_buf(), message: e.to_string() };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("rhai") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut sources = Vec::new();
        for path in files {
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("rule").to_string();
            let source = std::fs::read_to_string(&path)
                .map_err(|e| RuleError::Io { path: path.clone(), message: e.to_string() })?;
            sources.push((name, source));
        }
        RuleSet::from_sources(sources)
    }

    /// The rules, in priority order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any rule judges pairs.
    pub fn judges_pairs(&self) -> bool {
        self.rules.iter().any(|r| r.has_pair)
    }

    /// Whether any rule judges groups.
    pub fn judges_groups(&self) -> bool {
        self.rules.iter().any(|r| r.has_group)
    }

    /// Asks the rules, in order, about a 1:1 candidate. Returns the final decision, the name of
    /// the rule that made it (for accept and veto) and the adjustments made on the way.
    pub fn judge_pair(&self, bank: &Dynamic, record: &Dynamic, features: &Dynamic) -> Result<Verdict, RuleError> {
        self.judge(|r| r.has_pair, "pair", bank, record, features)
    }

    /// Asks the rules, in order, about a group candidate (`banks` and `records` are arrays).
    pub fn judge_group(&self, banks: &Dynamic, records: &Dynamic, features: &Dynamic) -> Result<Verdict, RuleError> {
        self.judge(|r| r.has_group, "group", banks, records, features)
    }

    fn judge(
        &self,
        applies: impl Fn(&Rule) -> bool,
        function: &str,
        a: &Dynamic,
        b: &Dynamic,
        features: &Dynamic,
    ) -> Result<Verdict, RuleError> {
        let mut verdict = Verdict::default();
        // One scope for all the rules of a candidate, emptied after each call: the arguments are
        // pushed into it, and a fresh scope would allocate its storage again for every rule.
        let mut scope = Scope::new();
        for rule in self.rules.iter().filter(|r| applies(r)) {
            // A rule's top-level statements cannot reach its functions (Rhai functions see no
            // outer scope), so running them before every call would only cost time.
            let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
            let out = self
                .engine
                .call_fn_with_options::<Dynamic>(
                    options,
                    &mut scope,
                    &rule.ast,
                    function,
                    (a.clone(), b.clone(), features.clone()),
                )
                .map_err(|e| {
                    let fallback = if function == "pair" { rule.pair_at } else { rule.group_at };
                    runtime_error(&rule.name, &e, fallback)
                })?;
            let returned = out.type_name();
            let decision = if out.is_unit() {
                Decision::NoOpinion
            } else if let Some(d) = out.try_cast::<Decision>() {
                d
            } else {
                return Err(RuleError::Runtime {
                    rule: rule.name.clone(),
                    line: None,
                    column: None,
                    kind: RuntimeFailure::BadReturn,
                    message: format!(
                        "`{function}` returned {returned}; expected accept(..), veto(..), adjust(..) or ()"
                    ),
                });
            };
            match decision {
                Decision::NoOpinion => {}
                Decision::Adjust { delta, reason } => {
                    verdict.adjustments.push((rule.name.clone(), delta, reason));
                }
                final_decision @ (Decision::Accept { .. } | Decision::Veto { .. }) => {
                    verdict.decision = final_decision;
                    verdict.rule = Some(rule.name.clone());
                    break;
                }
            }
        }
        // Verdicts are kept on up to a million candidates: each keeps only the room it uses.
        verdict.adjustments.shrink_to_fit();
        Ok(verdict)
    }
}

/// The outcome of asking every rule about one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `Accept`, `Veto` or `NoOpinion` (adjustments are listed separately).
    pub decision: Decision,
    /// The rule that accepted or vetoed.
    pub rule: Option<String>,
    /// (rule, score change, reason) for every `adjust`, in order.
    pub adjustments: Vec<(String, f64, String)>,
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict { decision: Decision::NoOpinion, rule: None, adjustments: Vec::new() }
    }
}

fn compile_rule(engine: &Engine, name: &str, source: &str) -> Result<Rule, RuleError> {
    if source.len() > MAX_SOURCE_SIZE {
        return Err(RuleError::Compile {
            rule: name.into(),
            line: None,
            column: None,
            message: format!("script is {} bytes; the limit is {MAX_SOURCE_SIZE}", source.len()),
        });
    }
    let ast = engine.compile(source).map_err(|e| {
        let pos = e.position();
        RuleError::Compile {
            rule: name.into(),
            line: pos.line(),
            column: pos.position(),
            message: e.err_type().to_string(),
        }
    })?;
    let has = |f: &str| ast.iter_functions().any(|m| m.name == f && m.params.len() == 3);
    let (has_pair, has_group) = (has("pair"), has("group"));
    if !has_pair && !has_group {
        return Err(RuleError::NoEntryPoint { rule: name.into() });
    }
    Ok(Rule {
        name: name.into(),
        ast,
        has_pair,
        has_group,
        pair_at: definition(source, "pair"),
        group_at: definition(source, "group"),
    })
}

/// Line and column (1-based) of `fn <function>` in `source`.
fn definition(source: &str, function: &str) -> Option<(usize, usize)> {
    source.lines().enumerate().find_map(|(i, line)| {
        let trimmed = line.trim_start();
        let rest = trimmed.strip_prefix("fn")?;
        let name = rest.trim_start().strip_prefix(function)?;
        if name.trim_start().starts_with('(') {
            Some((i + 1, line.len() - trimmed.len() + 1))
        } else {
            None
        }
    })
}

fn runtime_error(rule: &str, err: &EvalAltResult, fallback: Option<(usize, usize)>) -> RuleError {
    let inner = err.unwrap_inner();
    let kind = match inner {
        EvalAltResult::ErrorTooManyOperations(..) => RuntimeFailure::TooManyOperations,
        EvalAltResult::ErrorStackOverflow(..) => RuntimeFailure::StackOverflow,
        EvalAltResult::ErrorDataTooLarge(..) => RuntimeFailure::DataTooLarge,
        _ => RuntimeFailure::Script,
    };
    let pos = if inner.position().is_none() { err.position() } else { inner.position() };
    let (line, column) = match (pos.line(), fallback) {
        (Some(l), _) => (Some(l), pos.position()),
        (None, Some((l, c))) => (Some(l), Some(c)),
        (None, None) => (None, None),
    };
    RuleError::Runtime { rule: rule.into(), line, column, kind, message: inner.to_string() }
}

/// Turns a confidence or score given by a script (Decimal or integer) into `f64`.
pub(crate) fn decimal_to_f64(d: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(0.0)
}

#[cfg(test)]
mod tests;
