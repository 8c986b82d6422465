//! `bankrec parse`: read a statement file and show what it holds.

use std::path::{Path, PathBuf};
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
    /// A CSV column mapping that overrides detection: a TOML/JSON file, or the name of a profile
    /// saved with --save-profile.
    #[arg(long)]
    profile: Option<String>,
    /// Save the CSV mapping used for this file (detected, or given with --profile) under this
    /// name, to reuse for the same bank's next exports with --profile NAME.
    #[arg(long, value_name = "NAME")]
    save_profile: Option<String>,
    /// Folder of saved CSV profiles.
    #[arg(long, env = "BANKREC_PROFILES", default_value = "bankrec-data/profiles")]
    profiles: PathBuf,
}

/// Resolves `--profile`: an existing file, else a saved profile's name.
fn load_profile(arg: &str, dir: &Path) -> anyhow::Result<parse::csv::CsvProfile> {
    let as_path = Path::new(arg);
    let path = if as_path.is_file() { as_path.to_path_buf() } else { profile_path(dir, arg)? };
    parse::csv::CsvProfile::load(&path).with_context(|| format!("cannot load CSV profile {}", path.display()))
}

fn profile_path(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
        "profile name {name:?} may use only letters, digits, '-', '_' and '.'"
    );
    Ok(dir.join(format!("{name}.toml")))
}

fn save_profile(name: &str, dir: &Path, file: &str, bytes: &[u8], options: &ParseOptions) -> anyhow::Result<PathBuf> {
    let mut profile = match &options.csv_profile {
        Some(p) => p.clone(),
        None => {
            let source = parse::Source { name: file, bytes, options, progress: None };
            parse::csv::detect_profile(&source)?
        }
    };
    profile.name.get_or_insert_with(|| name.to_string());
    let path = profile_path(dir, name)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, toml::to_string(&profile)?).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Runs `bankrec parse`.
pub fn run(args: ParseArgs) -> anyhow::Result<ExitCode> {
    let csv_profile = match &args.profile {
        Some(arg) => Some(load_profile(arg, &args.profiles)?),
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
    if let Some(name) = &args.save_profile {
        anyhow::ensure!(
            parsed.format == Format::Csv,
            "--save-profile applies to CSV files; {name} is {}",
            parsed.format
        );
        let path = save_profile(name, &args.profiles, name, file.bytes(), &options)?;
        eprintln!("saved CSV profile {name} to {}", path.display());
    }
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
