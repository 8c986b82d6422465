//! `bankrec parse`: read a statement file and show what it holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bankrec::domain::{Currency, Money, Statement};
use bankrec::parse::{self, DateOrder, Format, ParseOptions, ParsedFile};
use clap::Args;

use super::{display_name, FileBytes};

/// Arguments of `bankrec parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The statement file (CSV, OFX/QFX/QBO, QIF, CAMT.052/053/054, MT940/MT942, BAI2).
    file: PathBuf,
    /// Read the file as this format instead of detecting it.
    #[arg(long)]
    format: Option<Format>,
    /// Print the statements as JSON.
    #[arg(long)]
    json: bool,
    /// Currency for files that do not state one (QIF, most CSV exports).
    #[arg(long)]
    currency: Option<Currency>,
    /// Day/month order for ambiguous dates: dmy, mdy or ymd.
    #[arg(long)]
    date_order: Option<DateOrder>,
    /// Account id for files that carry none (QIF, CSV).
    #[arg(long)]
    account: Option<String>,
    /// A CSV column mapping (TOML or JSON profile) that overrides detection.
    #[arg(long)]
    profile: Option<PathBuf>,
}

/// Runs `bankrec parse`.
pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let csv_profile = match &args.profile {
        Some(path) => Some(parse::csv::CsvProfile::load(path)?),
        None => None,
    };
    let options = ParseOptions {
        format: args.format,
        currency: args.currency,
        date_order: args.date_order,
        account_id: args.account.clone(),
        csv_profile,
    };
    let file = FileBytes::open(&args.file)?;
    let name = display_name(&args.file);
    let parsed = super::with_progress(file.bytes().len() as u64, "parsing", |progress| {
        parse::parse_with_progress(&name, file.bytes(), &options, progress)
    })
    .with_context(|| format!("cannot import {name}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&parsed.to_json())?);
    } else {
        print!("{}", summary(&name, &parsed));
    }
    for w in &parsed.warnings {
        match w.line {
            Some(line) => eprintln!("warning: {name}:{line}: {}", w.message),
            None => eprintln!("warning: {name}: {}", w.message),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn summary(name: &str, parsed: &ParsedFile) -> String {
    let mut out = format!(
        "{name}: {} — {} statement(s), {} transaction(s)\n",
        parsed.format,
        parsed.statements.len(),
        parsed.transaction_count()
    );
    for (i, s) in parsed.statements.iter().enumerate() {
        out.push_str(&statement_summary(i, s));
    }
    out
}

fn statement_summary(i: usize, s: &Statement) -> String {
    let opt = |m: &Option<Money>| m.map(|m| m.to_string()).unwrap_or_else(|| "—".into());
    let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_else(|| "?".into());
    format!(
        "  #{n} account {acct} ({cur}){sid}\n     period   {from} .. {to}\n     opening  {open}\n     closing  {close}\n     lines    {count}\n     balance  {check}\n",
        n = i + 1,
        acct = if s.account.id.is_empty() { "(not stated)" } else { &s.account.id },
        cur = s.currency,
        sid = s.statement_id.as_ref().map(|id| format!(", statement {id}")).unwrap_or_default(),
        from = date(s.start_date),
        to = date(s.end_date),
        open = opt(&s.opening_balance),
        close = opt(&s.closing_balance),
        count = s.transactions.len(),
        check = s.balance_check(),
    )
}
