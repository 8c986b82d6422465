//! `bankrec reconcile`: match a statement against the books and report matches, suggestions,
//! discrepancies and what stays open.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use bankrec::domain::{read_records, BankTransaction, Currency, Money, Record};
use bankrec::matching::{self, EngineConfig, MatchStatus, Memory, ReconcileResult};
use bankrec::parse::{self, DateOrder, ParseOptions};
use bankrec::reports::{self, gather, Report, ReportFormat};
use bankrec::rules::RuleSet;
use chrono::NaiveDate;
use clap::Args;
use rust_decimal::Decimal;

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
    /// Also write the reconciliation report to this file; its extension chooses the format
    /// (.html, .pdf, .xlsx, .json, .csv.zip).
    #[arg(long)]
    report: Option<PathBuf>,
}

/// Runs `bankrec reconcile`.
pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let report_format = args.report.as_deref().map(|p| super::report::format_for(None, p)).transpose()?;
    let (inputs, period) = load_statement(&args.statement, &args.records, args.currency, args.date_order)?;
    let (bank, records, accounts) = inputs;
    let rules = match &args.rules {
        Some(dir) => RuleSet::load_dir(dir)?,
        None => RuleSet::defaults()?,
    };
    let memory = match &args.memory {
        Some(path) => load_memory(path)?,
        None => Memory::default(),
    };
    // A file with several accounts' statements: money moved between them is a transfer.
    let config = EngineConfig { own_accounts: accounts, ..EngineConfig::default() };
    let result =
        with_spinner(bank.len() + records.len(), || matching::reconcile(&bank, &records, &rules, &memory, &config))?;
    if let (Some(path), Some(format)) = (&args.report, report_format) {
        write_report(path, format, &args.statement, (&bank, &records), &result, &period)?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        print!("{}", summary(&result, &bank, &records));
    }
    Ok(ExitCode::SUCCESS)
}

/// The bank lines, the records and the statement file's distinct account identifiers.
pub type Inputs = (Vec<BankTransaction>, Vec<Record>, Vec<String>);

/// What a one-shot report needs of the statement file besides its lines.
#[derive(Debug, Clone, Default)]
pub struct StatementPeriod {
    /// The account id of the first statement.
    pub account: String,
    /// The first statement's opening balance.
    pub opening: Option<Decimal>,
    /// The last statement's closing balance.
    pub closing: Option<Decimal>,
    /// First and last day covered, when the file states them.
    pub dates: Option<(NaiveDate, NaiveDate)>,
}

/// Reads a statement (all its statements' lines) and a records file. When the statement states
/// no currency and the records use a single one, the statement is read in that currency.
pub fn load_inputs(
    statement: &Path,
    records_path: &Path,
    currency: Option<Currency>,
    date_order: Option<DateOrder>,
) -> anyhow::Result<Inputs> {
    Ok(load_statement(statement, records_path, currency, date_order)?.0)
}

/// [`load_inputs`], with the statement's balances and period.
pub fn load_statement(
    statement: &Path,
    records_path: &Path,
    currency: Option<Currency>,
    date_order: Option<DateOrder>,
) -> anyhow::Result<(Inputs, StatementPeriod)> {
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
    let mut accounts: Vec<String> = Vec::new();
    for s in &parsed.statements {
        for id in [Some(&s.account.id), s.account.iban.as_ref()].into_iter().flatten() {
            if !id.trim().is_empty() && !accounts.contains(id) {
                accounts.push(id.clone());
            }
        }
    }
    let period = StatementPeriod {
        account: parsed.statements.first().map(|s| s.account.id.clone()).unwrap_or_default(),
        opening: parsed.statements.first().and_then(|s| s.opening_balance).map(|m| m.amount()),
        closing: parsed.statements.last().and_then(|s| s.closing_balance).map(|m| m.amount()),
        dates: match (
            parsed.statements.iter().filter_map(|s| s.start_date).min(),
            parsed.statements.iter().filter_map(|s| s.end_date).max(),
        ) {
            (Some(a), Some(b)) if a <= b => Some((a, b)),
            _ => None,
        },
    };
    let distinct = parsed.statements.iter().map(|s| &s.account.id).collect::<std::collections::BTreeSet<_>>().len();
    if distinct < 2 {
        accounts.clear();
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
    Ok(((bank, records, accounts), period))
}

/// Writes the report of a one-shot reconciliation.
fn write_report(
    path: &Path,
    format: ReportFormat,
    statement: &Path,
    (bank, records): (&[BankTransaction], &[Record]),
    result: &ReconcileResult,
    period: &StatementPeriod,
) -> anyhow::Result<()> {
    let currency = bank
        .iter()
        .map(|t| t.amount.currency())
        .find(|c| !c.is_unknown())
        .or_else(|| records.first().map(|r| r.amount.currency()))
        .unwrap_or(Currency::XXX);
    let account = if period.account.trim().is_empty() { display_name(statement) } else { period.account.clone() };
    let data = gather::from_result(&gather::OneShot {
        account,
        currency,
        bank,
        records,
        result,
        // A statement that states only its closing balance still fixes where it opened.
        opening_balance: period
            .opening
            .or_else(|| period.closing.map(|c| bank.iter().fold(c, |acc, t| acc.saturating_sub(t.amount.amount())))),
        closing_balance: period.closing,
        period: period.dates,
    });
    let report = Report::build(&data, chrono::Utc::now());
    let bytes = reports::render(&report, format)?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote the {format} report to {} (difference {})", path.display(), report.statement.difference);
    Ok(())
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

/// The readable report: counts, then each exception with its date, amount and what it says, so
/// that a person can act on it without looking the ids up.
fn summary(r: &ReconcileResult, bank: &[BankTransaction], records: &[Record]) -> String {
    let bank_by_id: std::collections::HashMap<&str, &BankTransaction> =
        bank.iter().map(|t| (t.id.as_ref(), t)).collect();
    let rec_by_id: std::collections::HashMap<&str, &Record> = records.iter().map(|x| (x.id.as_str(), x)).collect();
    let bank_line = |id: &str| match bank_by_id.get(id) {
        Some(t) => {
            let text = [t.payee.as_deref(), Some(t.description.as_ref())]
                .into_iter()
                .flatten()
                .filter(|x| !x.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" / ");
            format!("{id}  {}  {:>12}  {}", t.booking_date, t.amount.amount(), squash(&text))
        }
        None => id.to_string(),
    };
    let record_line = |id: &str| match rec_by_id.get(id) {
        Some(x) => {
            let text = [x.counterparty.as_deref(), x.reference.as_deref(), x.description.as_deref()]
                .into_iter()
                .flatten()
                .filter(|x| !x.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" / ");
            format!("{id}  {}  {:>12}  {}", x.date, x.amount.amount(), squash(&text))
        }
        None => id.to_string(),
    };
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
        let mut text = format!(
            "confidence {:.2}{}",
            m.confidence,
            if m.difference.is_zero() { String::new() } else { format!("  difference {}", m.difference) }
        );
        for id in &m.bank_ids {
            text.push_str(&format!("\n    bank  {}", bank_line(id)));
        }
        for id in &m.record_ids {
            text.push_str(&format!("\n    books {}", record_line(id)));
        }
        text
    };
    let of = |status: MatchStatus| r.matches.iter().filter(|m| m.status == status).map(describe).collect::<Vec<_>>();
    section(&mut out, "Discrepancies", of(MatchStatus::Discrepancy));
    section(&mut out, "Suggestions to review", of(MatchStatus::Suggested));
    section(&mut out, "Bank transactions without a match", r.unmatched_bank.iter().map(|id| bank_line(id)).collect());
    section(&mut out, "Records without a match", r.unmatched_records.iter().map(|id| record_line(id)).collect());
    out
}

/// Free text on one line, cut to a width that keeps the report readable.
fn squash(text: &str) -> String {
    let one_line = bankrec::parse::text::squash_ws(text);
    match one_line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", one_line.get(..cut).unwrap_or_default()),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use bankrec::workload::{generate, write, Profile};

    use super::*;

    #[test]
    fn a_csv_statement_and_records_reconcile_to_the_documented_json_shape() {
        let dir = std::env::temp_dir().join(format!("bankrec-reconcile-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let w = generate(&Profile::realistic().with_records(300), 11, 1);
        let (statement, records) = (dir.join("statement.csv"), dir.join("records.csv"));
        let wrote = std::fs::File::create(&statement)
            .map_err(anyhow::Error::from)
            .and_then(|f| Ok(write::statement_csv(f, &w.bank)?))
            .and_then(|_| std::fs::File::create(&records).map_err(anyhow::Error::from))
            .and_then(|f| Ok(write::records_csv(f, &w.records)?));
        assert!(wrote.is_ok(), "{wrote:?}");
        let loaded = load_inputs(&statement, &records, None, None);
        let _ = std::fs::remove_dir_all(&dir);
        let (bank, books, accounts) = loaded.unwrap_or_default();
        assert!(accounts.is_empty(), "one account gives no transfer accounts: {accounts:?}");
        assert_eq!((bank.len(), books.len()), (w.bank.len(), w.records.len()));
        let rules = RuleSet::defaults().unwrap_or_default();
        let result = matching::reconcile(&bank, &books, &rules, &Memory::default(), &EngineConfig::default())
            .unwrap_or_default();
        let json = serde_json::to_value(&result).unwrap_or_default();
        let keys =
            |v: &serde_json::Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(keys(&json), ["matches", "summary", "unmatched_bank", "unmatched_records"]);
        assert_eq!(
            keys(&json["summary"]),
            [
                "auto_match_rate",
                "bank_transactions",
                "discrepancies",
                "matched",
                "records",
                "suggested",
                "unmatched_bank",
                "unmatched_records"
            ]
        );
        let first = &json["matches"][0];
        for key in
            ["id", "status", "bank_ids", "record_ids", "confidence", "method", "rule", "difference", "explanation"]
        {
            assert!(first.get(key).is_some(), "match lacks {key}: {first}");
        }
        assert!(result.summary.matched > 0);
        let text = summary(&result, &bank, &books);
        assert!(text.contains("auto-match rate"));
        if let Some(id) = result.unmatched_bank.first() {
            let line = bank.iter().find(|t| *t.id == **id).map(|t| t.booking_date.to_string()).unwrap_or_default();
            assert!(text.contains(&format!("{id}  {line}")), "unmatched line lacks its date: {text}");
        }
    }
}
