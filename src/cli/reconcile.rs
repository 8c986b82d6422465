//! `bankrec reconcile`: match a statement against the books and report matches, suggestions,
//! discrepancies and what stays open.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use bankrec::domain::{read_records, BankTransaction, Currency, Money, Record};
use bankrec::matching::{self, EngineConfig, MatchStatus, Memory, ReconcileResult};
use bankrec::parse::{self, DateOrder, ParseOptions};
use bankrec::rules::RuleSet;
use clap::Args;

use super::{display_name, FileBytes};

/// Arguments of `bankrec reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The bank statement (any format `bankrec parse` reads).
    #[arg(long)]
    statement: PathBuf,
    /// The books' records (CSV or JSON).
    #[arg(long)]
    records: PathBuf,
    /// A folder of `.rhai` rules to use instead of the built-in defaults.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// A memory file written by `bankrec learn`.
    #[arg(long)]
    memory: Option<PathBuf>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Currency for statements that do not state one (QIF, most CSV exports).
    #[arg(long)]
    currency: Option<Currency>,
    /// Day/month order for ambiguous statement dates: dmy, mdy or ymd.
    #[arg(long)]
    date_order: Option<DateOrder>,
}

/// Runs `bankrec reconcile`.
pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let (bank, records) = load_inputs(&args.statement, &args.records, args.currency, args.date_order)?;
    let rules = match &args.rules {
        Some(dir) => RuleSet::load_dir(dir)?,
        None => RuleSet::defaults()?,
    };
    let memory = match &args.memory {
        Some(path) => load_memory(path)?,
        None => Memory::default(),
    };
    let config = EngineConfig::default();
    let result =
        with_spinner(bank.len() + records.len(), || matching::reconcile(&bank, &records, &rules, &memory, &config))?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        print!("{}", summary(&result));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a statement (all its statements' lines) and a records file. When the statement states
/// no currency and the records use a single one, the statement is read in that currency.
pub fn load_inputs(
    statement: &Path,
    records_path: &Path,
    currency: Option<Currency>,
    date_order: Option<DateOrder>,
) -> anyhow::Result<(Vec<BankTransaction>, Vec<Record>)> {
    let rec_bytes = FileBytes::open(records_path)?;
    let records = read_records(&display_name(records_path), rec_bytes.bytes())?;
    let options = ParseOptions { currency, date_order, ..ParseOptions::default() };
    let file = FileBytes::open(statement)?;
    let name = display_name(statement);
    let parsed = super::with_progress(file.bytes().len() as u64, "reading statement", |progress| {
        parse::parse_with_progress(&name, file.bytes(), &options, progress)
    })
    .with_context(|| format!("cannot import {name}"))?;
    for w in &parsed.warnings {
        match w.line {
            Some(line) => eprintln!("warning: {name}:{line}: {}", w.message),
            None => eprintln!("warning: {name}: {}", w.message),
        }
    }
    let mut bank: Vec<BankTransaction> = parsed.statements.into_iter().flat_map(|s| s.transactions).collect();
    let mut book_currencies: Vec<Currency> = records.iter().map(|r| r.amount.currency()).collect();
    book_currencies.sort();
    book_currencies.dedup();
    if let ([only], None) = (book_currencies.as_slice(), currency) {
        let mut adopted = false;
        for t in bank.iter_mut().filter(|t| t.amount.currency().is_unknown()) {
            t.amount = Money::new(t.amount.amount(), *only);
            adopted = true;
        }
        if adopted {
            eprintln!("note: {name} states no currency; reading it as {only}, the records' currency");
        }
    }
    Ok((bank, records))
}

/// Reads a memory file; a missing file is an empty memory.
pub fn load_memory(path: &Path) -> anyhow::Result<Memory> {
    match std::fs::read_to_string(path) {
        Ok(text) => Memory::from_json(&text).with_context(|| format!("cannot use memory {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Memory::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read memory {}", path.display())),
    }
}

fn with_spinner<T>(items: usize, work: impl FnOnce() -> T) -> T {
    use std::io::IsTerminal;
    if items < 100_000 || !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(format!("matching {items} items"));
    bar.tick();
    let out = work();
    bar.finish_and_clear();
    out
}

const LISTED: usize = 50;

fn summary(r: &ReconcileResult) -> String {
    let s = &r.summary;
    let mut out = format!(
        "{} bank transaction(s), {} record(s)\n  matched        {}\n  suggested      {}\n  discrepancies  {}\n  unmatched bank {}\n  unmatched books {}\n  auto-match rate {:.1}%\n",
        s.bank_transactions,
        s.records,
        s.matched,
        s.suggested,
        s.discrepancies,
        s.unmatched_bank,
        s.unmatched_records,
        s.auto_match_rate * 100.0
    );
    let section = |out: &mut String, title: &str, lines: Vec<String>| {
        if lines.is_empty() {
            return;
        }
        out.push_str(&format!("\n{title} ({}):\n", lines.len()));
        for l in lines.iter().take(LISTED) {
            out.push_str(&format!("  {l}\n"));
        }
        if lines.len() > LISTED {
            out.push_str(&format!("  … and {} more (use --json for all)\n", lines.len() - LISTED));
        }
    };
    let describe = |m: &matching::Match| {
        format!(
            "bank {} ↔ books {}  confidence {:.2}{}",
            m.bank_ids.join("+"),
            m.record_ids.join("+"),
            m.confidence,
            if m.difference.is_zero() { String::new() } else { format!("  difference {}", m.difference) }
        )
    };
    let of = |status: MatchStatus| r.matches.iter().filter(|m| m.status == status).map(describe).collect::<Vec<_>>();
    section(&mut out, "Discrepancies", of(MatchStatus::Discrepancy));
    section(&mut out, "Suggestions to review", of(MatchStatus::Suggested));
    section(&mut out, "Bank transactions without a match", r.unmatched_bank.clone());
    section(&mut out, "Records without a match", r.unmatched_records.clone());
    out
}
