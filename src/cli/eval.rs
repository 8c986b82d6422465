//! `bankrec eval`: generate a workload with known truth, run a matcher on it and print its scores;
//! or write a generated statement and records as demo data.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use bankrec::domain::{BankTransaction, Record};
use bankrec::matching::{self, EngineConfig, Feedback, Memory, ReconcileResult};
use bankrec::rules::RuleSet;
use bankrec::workload::{self, write, Business, GroupKind, Outcome, Profile, Scores, Workload};
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
    /// Before matching, learn memory from the truth of this many earlier periods of the same
    /// business, as if a person had confirmed every match there (bankrec engine only).
    #[arg(long, default_value_t = 0)]
    learn: u32,
    /// Number of book records (about as many bank lines result); the profile's default otherwise.
    #[arg(long)]
    records: Option<usize>,
    /// The matcher to score.
    #[arg(long, value_enum, default_value_t = Engine::Baseline)]
    engine: Engine,
    /// Print the scores as JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
    /// After the scores, count what became of the truth groups by kind: matched automatically,
    /// suggested (ambiguous or weak), partly found, lost to another match, or never proposed.
    #[arg(long)]
    misses: bool,
    /// With `--misses`, also show up to this many groups of each kind and outcome that were not
    /// matched automatically, with the matches that touch their items.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "misses")]
    miss_examples: usize,
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
    let business = Business::new(&profile, args.seed);
    let workload = workload::generate_for(&profile, &business, args.period);
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
    // Learning replays earlier periods; it is not part of the matcher's time.
    let memory = match args.engine {
        Engine::Bankrec => learned_memory(&profile, &business, args.period, args.learn),
        Engine::Baseline => Memory::default(),
    };
    let started = Instant::now();
    let result = match args.engine {
        Engine::Baseline => workload::baseline(&workload.bank, &workload.records),
        Engine::Bankrec => run_engine(&workload, &memory)?,
    };
    let matched = started.elapsed();
    let learned = match (args.engine, args.learn) {
        (Engine::Bankrec, n) if n > 0 => format!(", learned from {n}"),
        _ => String::new(),
    };
    let scores = workload::evaluate(&result, &workload.truth).labelled(format!(
        "{}/{} seed {} period {}{learned}",
        profile.name,
        args.engine.as_str(),
        args.seed,
        args.period
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
    if args.misses {
        print_misses(&workload, &result, args.miss_examples);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what became of the truth groups, by kind and outcome, and up to `examples` groups of
/// each kind and outcome short of an automatic match.
fn print_misses(workload: &Workload, result: &ReconcileResult, examples: usize) {
    let outcomes = workload::outcomes(result, &workload.truth);
    println!();
    let mut head = String::from("| kind | groups |");
    let mut rule = String::from("|---|---:|");
    for o in Outcome::ALL {
        head.push_str(&format!(" {} |", o.as_str()));
        rule.push_str("---:|");
    }
    println!("{head}\n{rule}");
    for kind in GroupKind::ALL {
        let of_kind: Vec<Outcome> =
            workload.truth.iter().zip(&outcomes).filter(|(g, _)| g.kind == kind).map(|(_, o)| *o).collect();
        if of_kind.is_empty() {
            continue;
        }
        let mut row = format!("| {kind} | {} |", of_kind.len());
        for o in Outcome::ALL {
            row.push_str(&format!(" {} |", of_kind.iter().filter(|x| **x == o).count()));
        }
        println!("{row}");
    }
    if examples == 0 {
        return;
    }
    let bank: HashMap<&str, &BankTransaction> = workload.bank.iter().map(|t| (&*t.id, t)).collect();
    let records: HashMap<&str, &Record> = workload.records.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut shown: HashMap<(GroupKind, Outcome), usize> = HashMap::new();
    for (g, o) in workload.truth.iter().zip(&outcomes).filter(|(_, o)| **o != Outcome::Auto) {
        let n = shown.entry((g.kind, *o)).or_default();
        if *n >= examples {
            continue;
        }
        *n += 1;
        println!("\n## {} {} (difference {})", g.kind, o.as_str(), g.difference);
        for t in g.bank_ids.iter().filter_map(|b| bank.get(b.as_str())) {
            println!(
                "  bank {} {} {} | {} | payee {:?} ref {:?} parts {}",
                t.id,
                t.booking_date,
                t.amount.amount(),
                t.description,
                t.payee,
                t.reference,
                t.details.len()
            );
        }
        for r in g.record_ids.iter().filter_map(|r| records.get(r.as_str())) {
            println!("  record {} {} {} | {:?} ref {:?}", r.id, r.date, r.amount.amount(), r.counterparty, r.reference);
        }
        let items: Vec<&String> = g.bank_ids.iter().chain(&g.record_ids).collect();
        for m in result.matches.iter().filter(|m| m.bank_ids.iter().chain(&m.record_ids).any(|i| items.contains(&i))) {
            println!(
                "  match {:?} {:.3} banks {:?} records {:?}: {}",
                m.status,
                m.confidence,
                m.bank_ids,
                m.record_ids,
                m.explanation.reasons.join("; ")
            );
            for a in &m.explanation.alternatives {
                println!("    alternative {:.3} banks {:?} records {:?}", a.confidence, a.bank_ids, a.record_ids);
            }
        }
    }
}

/// Runs bankrec's matching engine on `workload` with the default rules, `memory` and the default
/// configuration.
fn run_engine(workload: &Workload, memory: &Memory) -> anyhow::Result<ReconcileResult> {
    let rules = RuleSet::defaults().context("the default rules do not compile")?;
    matching::reconcile(&workload.bank, &workload.records, &rules, memory, &EngineConfig::default())
        .context("the matching engine failed")
}

/// Memory learned from the `count` periods before `period`, every truth group confirmed.
fn learned_memory(profile: &Profile, business: &Business, period: u32, count: u32) -> Memory {
    let mut memory = Memory::default();
    for earlier in period.saturating_sub(count)..period {
        let past = workload::generate_for(profile, business, earlier);
        let feedback: Vec<Feedback> = past
            .truth
            .iter()
            .map(|g| Feedback { bank_ids: g.bank_ids.clone(), record_ids: g.record_ids.clone(), confirmed: true })
            .collect();
        memory.learn(&feedback, &past.bank, &past.records);
    }
    memory
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_sample_reads_back_as_records_and_truth() {
        let dir = std::env::temp_dir().join(format!("bankrec-eval-sample-{}", std::process::id()));
        let w = workload::generate(&Profile::easy().with_records(200), 5, 1);
        write_sample(&dir, &w).unwrap();
        let records =
            bankrec::domain::read_records("records.csv", &std::fs::read(dir.join("records.csv")).unwrap()).unwrap();
        assert_eq!(records, w.records);
        let truth: Vec<workload::TruthGroup> =
            serde_json::from_slice(&std::fs::read(dir.join("truth.json")).unwrap()).unwrap();
        assert_eq!(truth, w.truth);
        let statement = std::fs::read_to_string(dir.join("statement.csv")).unwrap();
        assert_eq!(statement.lines().count(), w.bank.len() + 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn memory_is_learned_only_from_earlier_periods_of_the_same_business() {
        let profile = Profile::easy().with_records(300);
        let business = Business::new(&profile, 2);
        assert_eq!(learned_memory(&profile, &business, 3, 0), Memory::default());
        let memory = learned_memory(&profile, &business, 3, 2);
        assert!(memory.confirmed > 0);
        assert!(!memory.aliases.is_empty());
        // Period 0 has nothing before it.
        assert_eq!(learned_memory(&profile, &business, 0, 5), Memory::default());
    }
}
