//! Store benchmark: imports a generated statement of 10k / 100k lines (CSV, through the import
//! workflow: parse, blob, all-or-nothing store) and its records into an account, then runs and
//! persists a full reconciliation, printing the wall time of each phase. Runs on the embedded
//! SQLite store; with `--features aws` and `AWS_ENDPOINT_URL_DYNAMODB` set (DynamoDB Local), on
//! DynamoDB too (`scripts/store-bench` starts DynamoDB Local and runs both).
//!
//! `cargo bench --bench store -- --sizes 10k,100k`

mod common;

use std::time::Instant;

use bankrec::matching::EngineConfig;
use bankrec::parse::{Format, ParseOptions};
use bankrec::store::{Account, Blobs, FsBlobs, SqliteStore, Store, TenantId};
use bankrec::workflows::import::import_statement;
use bankrec::workflows::reconcile::{reconcile, ReconcileRequest};
use bankrec::workload::{self, write, Profile};

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

struct Phases {
    import_s: f64,
    records_s: f64,
    reconcile_s: f64,
    matches: usize,
}

async fn run(store: &dyn Store, blobs: &dyn Blobs, size: usize) -> Result<Phases, Box<dyn std::error::Error>> {
    let w = workload::generate(&Profile::realistic().with_records(size), 1, 1);
    let mut statement = Vec::new();
    write::statement_csv(&mut statement, &w.bank)?;
    let tenant = TenantId::new("bench")?;
    let account = Account {
        id: "acc_bench".into(),
        name: "Operating".into(),
        currency: w.currency,
        account_number: None,
        iban: None,
        opening_balance: None,
        created_at: chrono::Utc::now(),
    };
    store.create_account(&tenant, &account).await?;

    let started = Instant::now();
    let options = ParseOptions { format: Some(Format::Csv), currency: Some(w.currency), ..Default::default() };
    import_statement(store, blobs, &tenant, &account.id, "statement.csv", &statement, &options).await?;
    let import_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    for chunk in w.records.chunks(10_000) {
        store.upsert_records(&tenant, chunk).await?;
    }
    let records_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let req = ReconcileRequest {
        account_id: account.id.clone(),
        start_date: w.start,
        end_date: w.end,
        dry_run: false,
        actor: "bench".into(),
    };
    let out = reconcile(store, &tenant, &req, &EngineConfig::default()).await?;
    let reconcile_s = started.elapsed().as_secs_f64();
    Ok(Phases { import_s, records_s, reconcile_s, matches: out.matches.len() })
}

fn report(adapter: &str, size: usize, p: &Phases) {
    println!(
        "| {adapter} | {size} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.0} |",
        p.import_s,
        p.records_s,
        p.reconcile_s,
        p.import_s + p.records_s + p.reconcile_s,
        p.matches,
        common::vm_hwm().map(common::mib).unwrap_or(f64::NAN),
    );
}

fn main() {
    // `RUST_LOG=bankrec::workflows=debug` prints where a reconciliation spends its time.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    println!("store benchmark (realistic profile, one account)");
    println!("| store | lines | import s | records s | reconcile + persist s | total s | matches | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for size in common::sizes().into_iter().filter(|s| *s <= 100_000) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open_dir(&dir.path().join("data")).expect("sqlite");
        let blobs = FsBlobs::new(dir.path().join("blobs"));
        match runtime.block_on(run(&store, &blobs, size)) {
            Ok(p) => report("sqlite", size, &p),
            Err(e) => println!("| sqlite | {size} | FAILED: {e} |"),
        }
    }
    #[cfg(feature = "aws")]
    dynamodb(&runtime);
    #[cfg(not(feature = "aws"))]
    println!("DynamoDB: skipped (build with `--features aws` and set AWS_ENDPOINT_URL_DYNAMODB)");
}

/// The same phases on DynamoDB (Local, when `AWS_ENDPOINT_URL_DYNAMODB` points at it), one fresh
/// table per size. Blobs stay in a local folder: the figures are the table's.
#[cfg(feature = "aws")]
fn dynamodb(runtime: &tokio::runtime::Runtime) {
    use bankrec::store::DynamoStore;

    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() && std::env::var_os("BANKREC_BENCH_DYNAMODB").is_none() {
        println!(
            "DynamoDB: skipped (set AWS_ENDPOINT_URL_DYNAMODB to DynamoDB Local, or BANKREC_BENCH_DYNAMODB=1 for AWS)"
        );
        return;
    }
    for size in common::sizes().into_iter().filter(|s| *s <= 100_000) {
        let dir = tempfile::tempdir().expect("temp dir");
        let blobs = FsBlobs::new(dir.path().join("blobs"));
        let outcome = runtime.block_on(async {
            let table = format!("bankrec-bench-{}-{}", size, std::process::id());
            let store = DynamoStore::from_env(table).await;
            store.create_table().await?;
            run(&store, &blobs, size).await
        });
        match outcome {
            Ok(p) => report("dynamodb", size, &p),
            Err(e) => println!("| dynamodb | {size} | FAILED: {e} |"),
        }
    }
}
