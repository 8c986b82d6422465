//! Parse benchmark: writes CSV, OFX and CAMT.053 statements of 10k, 100k and 1M transactions from
//! generated workloads, then prints parse throughput (MB/s), peak heap above the input and peak
//! resident memory for each. A format whose parser fails is reported as failed and the run goes on.
//!
//! `cargo bench --bench parse -- --sizes 10k,100k [--formats csv,ofx,camt] [--repeat 5]`
//! Files go to a temporary directory (`BANKREC_BENCH_DIR` to choose) and are removed after use
//! (kept with `BANKREC_BENCH_KEEP=1`, for profiling a parser on its own).
//!
//! Throughput is given twice: by wall time, and by the parsing thread's CPU time, which is what
//! the parser costs when other processes share the machine. Each file is parsed `--repeat` times;
//! times are the median run's, with the best run's throughput beside it.

mod common;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use bankrec::domain::{BankTransaction, Currency};
use bankrec::parse::{self, ParseOptions};
use bankrec::workload::{self, write, Business, Profile};
use rust_decimal::Decimal;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// Bank lines are generated a chunk (one period of a mid-sized business) at a time, so a million
/// lines never sit in memory together.
const CHUNK_RECORDS: usize = 20_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Csv,
    Ofx,
    Camt,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Csv => "csv",
            Kind::Ofx => "ofx",
            Kind::Camt => "camt.053",
        }
    }

    fn extension(&self) -> &'static str {
        match self {
            Kind::Csv => "csv",
            Kind::Ofx => "ofx",
            Kind::Camt => "xml",
        }
    }
}

/// Calls `each` with consecutive chunks of generated bank lines, `total` lines in all.
fn for_each_chunk(
    total: usize,
    mut each: impl FnMut(&[BankTransaction]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let profile = Profile::realistic().with_records(CHUNK_RECORDS);
    let business = Business::new(&profile, 1);
    let mut left = total;
    let mut period = 1;
    while left > 0 {
        let w = workload::generate_for(&profile, &business, period);
        let take = w.bank.len().min(left);
        each(w.bank.get(..take).unwrap_or(&[]))?;
        left -= take;
        period += 1;
    }
    Ok(())
}

/// Writes a statement of `total` lines in every format of `kinds` into `dir`.
fn write_files(dir: &Path, total: usize, kinds: &[Kind]) -> std::io::Result<Vec<(Kind, PathBuf)>> {
    let currency = Business::new(&Profile::realistic().with_records(CHUNK_RECORDS), 1).currency();
    // First pass: the period and the closing balance, which CAMT states before its lines.
    let mut start = None;
    let mut end = None;
    let mut sum = Decimal::ZERO;
    for_each_chunk(total, |lines| {
        for t in lines {
            start = Some(start.map_or(t.booking_date, |s: chrono::NaiveDate| s.min(t.booking_date)));
            end = Some(end.map_or(t.booking_date, |e: chrono::NaiveDate| e.max(t.booking_date)));
            sum += t.amount.amount();
        }
        Ok(())
    })?;
    let opening = Decimal::new(100_000_000, 2);
    let header = write::StatementHeader {
        account: "DE89370400440532013000".into(),
        currency,
        start: start.unwrap_or_default(),
        end: end.unwrap_or_default(),
        opening,
        closing: opening + sum,
    };
    let path = |k: Kind| dir.join(format!("statement-{total}.{}", k.extension()));
    let open = |k: Kind| File::create(path(k)).map(|f| BufWriter::with_capacity(1 << 20, f));
    let mut csv = if kinds.contains(&Kind::Csv) { Some(open(Kind::Csv)?) } else { None };
    let mut ofx = match kinds.contains(&Kind::Ofx) {
        true => Some(write::OfxWriter::start(open(Kind::Ofx)?, header.clone())?),
        false => None,
    };
    let mut camt = match kinds.contains(&Kind::Camt) {
        true => Some(write::CamtWriter::start(open(Kind::Camt)?, header)?),
        false => None,
    };
    let mut first = true;
    for_each_chunk(total, |lines| {
        if let Some(out) = csv.as_mut() {
            let mut buf = Vec::with_capacity(lines.len() * 128);
            write::statement_csv(&mut buf, lines).map_err(std::io::Error::other)?;
            // Every chunk starts with the header; the file has it once.
            let body = if first {
                &buf[..]
            } else {
                buf.iter().position(|b| *b == b'\n').map_or(&buf[..0], |i| &buf[i + 1..])
            };
            out.write_all(body)?;
        }
        first = false;
        for t in lines {
            if let Some(w) = ofx.as_mut() {
                w.line(t)?;
            }
            if let Some(w) = camt.as_mut() {
                w.line(t)?;
            }
        }
        Ok(())
    })?;
    if let Some(mut out) = csv {
        out.flush()?;
    }
    if let Some(w) = ofx {
        w.finish()?;
    }
    if let Some(w) = camt {
        w.finish()?;
    }
    Ok(kinds.iter().map(|k| (*k, path(*k))).collect())
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (Linux); `None` elsewhere.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

fn kinds() -> Vec<Kind> {
    match common::arg("formats") {
        Some(list) => list
            .split(',')
            .filter_map(|f| match f.trim().to_ascii_lowercase().as_str() {
                "csv" => Some(Kind::Csv),
                "ofx" => Some(Kind::Ofx),
                "camt" | "camt.053" | "camt053" => Some(Kind::Camt),
                _ => None,
            })
            .collect(),
        None => vec![Kind::Csv, Kind::Ofx, Kind::Camt],
    }
}

fn main() {
    let dir = std::env::var_os("BANKREC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join(format!("bankrec-bench-parse-{}", std::process::id())));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let kinds = kinds();
    let repeat = common::arg("repeat").and_then(|r| r.parse::<usize>().ok()).unwrap_or(5).max(1);
    let keep = std::env::var_os("BANKREC_BENCH_KEEP").is_some_and(|v| v == "1");
    let options = ParseOptions { currency: Some(Currency::EUR), ..Default::default() };
    println!("parse benchmark (files in {})", dir.display());
    println!(
        "| transactions | format | file MiB | parse s | MB/s | CPU s | MB/s by CPU | best MB/s by CPU | peak heap above input MiB | peak RSS MiB | result |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for size in common::sizes() {
        let started = Instant::now();
        let files = match write_files(&dir, size, &kinds) {
            Ok(files) => files,
            Err(e) => {
                println!("| {size} | — | | | | | | | | FAILED to write: {e} |");
                continue;
            }
        };
        eprintln!("wrote {size}-line statements in {:.1} s", started.elapsed().as_secs_f64());
        for (kind, path) in files {
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                Err(e) => {
                    println!("| {size} | {} | | | | | | | | FAILED to read: {e} |", kind.name());
                    continue;
                }
            };
            let name = path.display().to_string();
            // Each file is parsed `--repeat` times (5 by default): the figures are the median run
            // and the best one, as a machine shared with other work slows single runs by up to a
            // third. Peak memory is the largest of the runs.
            let mut runs: Vec<(f64, Option<f64>)> = Vec::with_capacity(repeat);
            let mut heap = 0u64;
            let mut outcome = None;
            for _ in 0..repeat {
                drop(outcome.take());
                let base = common::reset_peak();
                common::reset_vm_hwm();
                let cpu_started = thread_cpu_secs();
                let started = Instant::now();
                let parsed = parse::parse(&name, &bytes, &options);
                let secs = started.elapsed().as_secs_f64();
                let cpu = cpu_started.zip(thread_cpu_secs()).map(|(a, b)| b - a);
                heap = heap.max(common::peak().saturating_sub(base) as u64);
                runs.push((secs, cpu));
                let failed = parsed.is_err();
                outcome = Some(parsed);
                if failed {
                    break;
                }
            }
            let Some(outcome) = outcome else { continue };
            let mut walls: Vec<f64> = runs.iter().map(|r| r.0).collect();
            let mut cpus: Vec<f64> = runs.iter().filter_map(|r| r.1).collect();
            walls.sort_by(f64::total_cmp);
            cpus.sort_by(f64::total_cmp);
            let secs = walls.get(walls.len() / 2).copied().unwrap_or(f64::NAN);
            let mbps_of = |s: f64| bytes.len() as f64 / 1e6 / s.max(1e-9);
            let cpu_text = cpus.get(cpus.len() / 2).map(|c| format!("{c:.3}")).unwrap_or_else(|| "?".into());
            let cpu_mbps =
                cpus.get(cpus.len() / 2).map(|c| format!("{:.1}", mbps_of(*c))).unwrap_or_else(|| "?".into());
            let best_cpu_mbps = cpus.first().map(|c| format!("{:.1}", mbps_of(*c))).unwrap_or_else(|| "?".into());
            let rss = common::vm_hwm().map(|b| format!("{:.1}", common::mib(b))).unwrap_or_else(|| "?".into());
            let file_mib = common::mib(bytes.len() as u64);
            match outcome {
                Ok(parsed) => {
                    let found = parsed.transaction_count();
                    let mbps = mbps_of(secs);
                    let mut check =
                        if found == size { "ok".to_string() } else { format!("ok, but {found} transactions read") };
                    if let Some(first) = parsed.warnings.first() {
                        check.push_str(&format!(", {} warning(s), first: {}", parsed.warnings.len(), first.message));
                    }
                    println!(
                        "| {size} | {} | {file_mib:.1} | {secs:.3} | {mbps:.1} | {cpu_text} | {cpu_mbps} | {best_cpu_mbps} | {:.1} | {rss} | {check} |",
                        kind.name(),
                        common::mib(heap)
                    );
                }
                Err(e) => {
                    println!(
                        "| {size} | {} | {file_mib:.1} | {secs:.3} | — | {cpu_text} | — | — | {:.1} | {rss} | FAILED: {e} |",
                        kind.name(),
                        common::mib(heap)
                    );
                }
            }
            drop(bytes);
            if !keep {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    if !keep {
        let _ = std::fs::remove_dir(&dir);
    }
}
