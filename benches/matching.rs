//! Matching benchmark: generates workloads of 10k, 100k and 1M records (about as many bank lines)
//! and prints, for each matcher, wall time, peak heap, peak resident memory and F1.
//!
//! `cargo bench --bench matching -- --sizes 10k,100k [--profile hard] [--engine baseline|bankrec]`

mod common;

use std::time::Instant;

use std::error::Error;

use bankrec::matching::{self, EngineConfig, Memory, ReconcileResult};
use bankrec::rules::RuleSet;
use bankrec::workload::{self, Profile, Workload};

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// A matcher under test.
type Matcher = fn(&Workload) -> Result<ReconcileResult, Box<dyn Error>>;

fn baseline(w: &Workload) -> Result<ReconcileResult, Box<dyn Error>> {
    Ok(workload::baseline(&w.bank, &w.records))
}

/// bankrec's engine with the default rules, no memory and the default configuration; compiling
/// the rules is part of the measured time, as it is of every run.
fn bankrec(w: &Workload) -> Result<ReconcileResult, Box<dyn Error>> {
    let rules = RuleSet::defaults()?;
    Ok(matching::reconcile(&w.bank, &w.records, &rules, &Memory::default(), &EngineConfig::default())?)
}

fn matchers() -> Vec<(&'static str, Matcher)> {
    let all: Vec<(&'static str, Matcher)> = vec![("baseline", baseline), ("bankrec", bankrec)];
    match common::arg("engine") {
        Some(name) => all.into_iter().filter(|(n, _)| *n == name).collect(),
        None => all,
    }
}

/// Prints the heap after each logged event (the engine logs one per phase).
struct HeapAtEvent;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for HeapAtEvent {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        eprintln!(
            "    heap live {:.1} MiB, peak {:.1} MiB",
            common::mib(common::current() as u64),
            common::mib(common::peak() as u64)
        );
    }
}

fn main() {
    // `RUST_LOG=bankrec::matching=debug` prints the engine's phase timings, each with the heap
    // live at its end and the peak so far.
    if std::env::var_os("RUST_LOG").is_some() {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::from_default_env())
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .with(HeapAtEvent)
            .try_init();
    }
    let profile = match Profile::named(&common::arg("profile").unwrap_or_else(|| "realistic".into())) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let hwm_resettable = common::reset_vm_hwm();
    println!(
        "matching benchmark, profile {}{}",
        profile.name,
        if hwm_resettable { "" } else { " (VmHWM not resettable: whole-run peak)" }
    );
    println!("| records | bank | matcher | generate s | match s | peak heap MiB | peak RSS MiB | auto F1 | all F1 |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for size in common::sizes() {
        let profile = profile.clone().with_records(size);
        let started = Instant::now();
        let w = workload::generate(&profile, 1, 1);
        let generate_s = started.elapsed().as_secs_f64();
        for (name, matcher) in matchers() {
            let base = common::reset_peak();
            common::reset_vm_hwm();
            let started = Instant::now();
            let outcome = matcher(&w);
            let match_s = started.elapsed().as_secs_f64();
            let heap = common::peak().saturating_sub(base) as u64;
            let rss = common::vm_hwm().map(|b| format!("{:.1}", common::mib(b))).unwrap_or_else(|| "?".into());
            match outcome {
                Ok(result) => {
                    let s = workload::evaluate(&result, &w.truth);
                    println!(
                        "| {} | {} | {name} | {generate_s:.2} | {match_s:.3} | {:.1} | {rss} | {:.3} | {:.3} |",
                        w.records.len(),
                        w.bank.len(),
                        common::mib(heap),
                        s.auto.f1,
                        s.all.f1
                    );
                }
                Err(e) => println!(
                    "| {} | {} | {name} | {generate_s:.2} | FAILED: {e} | | | | |",
                    w.records.len(),
                    w.bank.len()
                ),
            }
        }
    }
}
