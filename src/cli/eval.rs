//! `bankrec eval`: generate a workload with known truth, run a matcher on it and print its scores;
//! or write a generated statement and records as demo data.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use bankrec::matching::ReconcileResult;
use bankrec::workload::{self, write, Profile, Scores, Workload};
use clap::{Args, ValueEnum};

/// Which matcher `bankrec eval` scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// Same amount within five days, greedy, everything auto-matched.
    Baseline,
    /// bankrec's matching engine.
    Bankrec,
}

impl Engine {
    fn as_str(&self) -> &'static str {
        match self {
            Engine::Baseline => "baseline",
            Engine::Bankrec => "bankrec",
        }
    }
}

/// Arguments of `bankrec eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Difficulty profile: easy, realistic or hard.
    #[arg(long, default_value = "realistic")]
    profile: Profile,
    /// Business seed: the same seed is the same business (customers, suppliers, habits).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Which period of the business to generate.
    #[arg(long, default_value_t = 1)]
    period: u32,
    /// Number of book records (about as many bank lines result); the profile's default otherwise.
    #[arg(long)]
    records: Option<usize>,
    /// The matcher to score.
    #[arg(long, value_enum, default_value_t = Engine::Baseline)]
    engine: Engine,
    /// Print the scores as JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    /// Write the generated statement (statement.csv), records (records.csv) and truth (truth.json)
    /// to this directory instead of scoring a matcher.
    #[arg(long, value_name = "DIR")]
    write_sample: Option<PathBuf>,
}

/// Runs `bankrec eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let profile = match args.records {
        Some(n) => args.profile.clone().with_records(n),
        None => args.profile.clone(),
    };
    let started = Instant::now();
    let workload = workload::generate(&profile, args.seed, args.period);
    let generated = started.elapsed();
    if let Some(dir) = &args.write_sample {
        write_sample(dir, &workload)?;
        println!(
            "wrote {} bank lines, {} records and {} truth groups to {}",
            workload.bank.len(),
            workload.records.len(),
            workload.truth.len(),
            dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    let result = match args.engine {
        Engine::Baseline => workload::baseline(&workload.bank, &workload.records),
        Engine::Bankrec => run_engine(&workload)?,
    };
    let matched = started.elapsed();
    let scores = workload::evaluate(&result, &workload.truth).labelled(format!(
        "{}/{} seed {}",
        profile.name,
        args.engine.as_str(),
        args.seed
    ));
    eprintln!(
        "generated {} bank lines and {} records in {} ms; {} ran in {} ms",
        workload.bank.len(),
        workload.records.len(),
        generated.as_millis(),
        args.engine.as_str(),
        matched.as_millis()
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scores)?);
    } else {
        println!("{}", Scores::markdown_header());
        println!("{scores}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs bankrec's own matching engine on `workload` with default rules, empty memory and the
/// default configuration.
fn run_engine(_workload: &Workload) -> anyhow::Result<ReconcileResult> {
    anyhow::bail!("the bankrec matching engine is not part of this build yet; use --engine baseline")
}

fn write_sample(dir: &Path, workload: &Workload) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let create = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(std::io::BufWriter::new(file))
    };
    write::statement_csv(create("statement.csv")?, &workload.bank).context("cannot write statement.csv")?;
    write::records_csv(create("records.csv")?, &workload.records).context("cannot write records.csv")?;
    let mut truth = create("truth.json")?;
    serde_json::to_writer_pretty(&mut truth, &workload.truth).context("cannot write truth.json")?;
    std::io::Write::flush(&mut truth).context("cannot write truth.json")?;
    Ok(())
}
