//! `bankrec report`: the reconciliation report of an account over a period, from the local data
//! folder, in any report format.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bankrec::reports::{self, ReportFormat};
use bankrec::store::{SqliteStore, TenantId};
use chrono::NaiveDate;
use clap::Args;

/// Arguments of `bankrec report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Data folder of `bankrec serve` (the SQLite database).
    #[arg(long, default_value = "bankrec-data")]
    data: PathBuf,
    /// The tenant whose account it is.
    #[arg(long, value_parser = parse_tenant)]
    tenant: TenantId,
    /// The account id (`acc_...`).
    #[arg(long)]
    account: String,
    /// First day of the period (YYYY-MM-DD).
    #[arg(long)]
    from: NaiveDate,
    /// Last day of the period (YYYY-MM-DD).
    #[arg(long)]
    to: NaiveDate,
    /// json, csv (a zip of one CSV per section), xlsx, pdf or html; by default the extension of
    /// `--out` decides.
    #[arg(long)]
    format: Option<ReportFormat>,
    /// Where to write the report.
    #[arg(long)]
    out: PathBuf,
}

fn parse_tenant(s: &str) -> Result<TenantId, String> {
    TenantId::new(s).map_err(|e| e.to_string())
}

/// The format `--format` names, else the one `out`'s extension names.
pub fn format_for(format: Option<ReportFormat>, out: &std::path::Path) -> anyhow::Result<ReportFormat> {
    match format {
        Some(f) => Ok(f),
        None => ReportFormat::from_file_name(&out.to_string_lossy()).with_context(|| {
            format!("cannot tell the report format from {}; use .json, .csv.zip, .xlsx, .pdf or .html", out.display())
        }),
    }
}

/// Runs `bankrec report`.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let format = format_for(args.format, &args.out)?;
    let store = SqliteStore::open_dir(&args.data)
        .with_context(|| format!("cannot open the database in {}", args.data.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime
        .block_on(reports::build(&store, &args.tenant, &args.account, args.from, args.to))
        .context("cannot build the report")?;
    let bytes = reports::render(&report, format)?;
    std::fs::write(&args.out, bytes).with_context(|| format!("cannot write {}", args.out.display()))?;
    let s = &report.statement;
    eprintln!(
        "wrote {} ({format}): adjusted bank balance {}, book balance {}, difference {}",
        args.out.display(),
        s.adjusted_bank_balance,
        s.book_balance,
        s.difference
    );
    Ok(ExitCode::SUCCESS)
}
