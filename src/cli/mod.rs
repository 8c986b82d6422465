//! Command-line definitions and dispatch to the library's workflows.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod eval;
mod keys;
mod learn;
mod parse;
mod reconcile;
mod report;
mod serve;
mod store;

/// bankrec: bank reconciliation for finance teams.
#[derive(Debug, Parser)]
#[command(name = "bankrec", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse a bank statement and print what it holds.
    Parse(parse::ParseArgs),
    /// Match a statement against the books: matches, suggestions, discrepancies, what stays open.
    Reconcile(reconcile::ReconcileArgs),
    /// Fold confirmed and rejected matches into a memory file for later reconciliations.
    Learn(learn::LearnArgs),
    /// Score a matcher on a generated workload with known truth, or write demo data.
    Eval(eval::EvalArgs),
    /// Write the reconciliation report of an account over a period (JSON, CSV zip, XLSX, PDF, HTML).
    Report(report::ReportArgs),
    /// Serve the REST API on the embedded store.
    Serve(serve::ServeArgs),
    /// Manage API keys.
    Keys(keys::KeysArgs),
    /// Set up storage: `bankrec store init --store dynamodb://TABLE --blobs s3://BUCKET`.
    Store(store::StoreArgs),
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // One-shot commands log only when asked (`RUST_LOG=bankrec::matching=debug` prints the
    // engine's phase times); `serve` logs at `info` by default.
    if !matches!(cli.command, Command::Serve(_)) && std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
    match cli.command {
        Command::Parse(args) => parse::run(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Learn(args) => learn::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Report(args) => report::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Store(args) => store::run(args),
    }
}

/// A file's bytes, memory-mapped so that a large statement costs address space rather than heap.
pub struct FileBytes {
    map: Option<memmap2::Mmap>,
}

impl FileBytes {
    /// Opens and maps `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata().with_context(|| format!("cannot read {}", path.display()))?.len();
        if len == 0 {
            return Ok(FileBytes { map: None });
        }
        let map = map_file(&file).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(FileBytes { map: Some(map) })
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

#[allow(unsafe_code)]
fn map_file(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this process. Another process truncating the
    // file while it is mapped could fault the read; statement files handed to the CLI are not
    // written concurrently, and this is the only unsafe code in the project.
    unsafe { memmap2::MmapOptions::new().map_copy_read_only(file) }
}

/// The display name of a path for error messages.
pub fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// Runs `work` with a progress bar on stderr when stderr is a terminal and the input is large;
/// nothing is drawn when output is piped.
pub fn with_progress<T>(total: u64, label: &str, work: impl FnOnce(Option<&(dyn Fn(u64) + Sync)>) -> T) -> T {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() || total < 4 * 1024 * 1024 {
        return work(None);
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(label.to_string());
    let update = |n: u64| bar.set_position(n);
    let out = work(Some(&update));
    bar.finish_and_clear();
    out
}
