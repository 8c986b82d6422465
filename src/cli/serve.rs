//! `bankrec serve`: the REST API on the embedded store (SQLite + a folder of raw files), or on
//! DynamoDB and S3 with `--store dynamodb://TABLE --blobs s3://BUCKET`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bankrec::api::{self, AppState};
use bankrec::reports::{LocalDispatch, LocalLinks};
use bankrec::store::{FsBlobs, SqliteKeyStore, SqliteStore};
use clap::Args;
use tracing_subscriber::EnvFilter;

use super::store::{parse_location, Location};

/// Arguments of `bankrec serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Data folder: the SQLite database and `blobs/` for raw files.
    #[arg(long, default_value = "bankrec-data")]
    data: PathBuf,
    /// `dynamodb://TABLE` to serve from DynamoDB (endpoint, region and credentials from the
    /// standard AWS environment variables), or a folder; default: the data folder.
    #[arg(long, requires = "blobs")]
    store: Option<String>,
    /// `s3://BUCKET` for raw files in S3 (with `--store dynamodb://...`), or a folder.
    #[arg(long, requires = "store")]
    blobs: Option<String>,
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
fn init_logging() {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (never in the binary) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs `bankrec serve` until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

/// The embedded store in `dir`, raw files in `blobs`.
fn embedded_state(dir: &Path, blobs: PathBuf) -> anyhow::Result<AppState> {
    let store = SqliteStore::open_dir(dir).with_context(|| format!("cannot open the database in {}", dir.display()))?;
    let keys =
        SqliteKeyStore::open_dir(dir).with_context(|| format!("cannot open the key table in {}", dir.display()))?;
    // The upload-URL signing secret lives in the data directory, so URLs survive a restart.
    let uploads = api::uploads::SignedUploads::for_data_dir(dir)
        .with_context(|| format!("cannot set up upload URLs in {}", dir.display()))?;
    let (store, blobs) = (Arc::new(store), Arc::new(FsBlobs::new(blobs)));
    let reports = Arc::new(LocalDispatch::new(store.clone(), store.clone(), blobs.clone()));
    Ok(AppState::new(store.clone(), blobs, Arc::new(keys)).with_uploads(Arc::new(uploads)).with_reports(
        store,
        Arc::new(LocalLinks),
        reports,
    ))
}

/// The ports `--store` and `--blobs` name.
async fn state(args: &ServeArgs) -> anyhow::Result<AppState> {
    let (Some(store), Some(blobs)) = (args.store.as_deref(), args.blobs.as_deref()) else {
        return embedded_state(&args.data, args.data.join("blobs"));
    };
    match (parse_location(store)?, parse_location(blobs)?) {
        (Location::Folder(dir), Location::Folder(blobs)) => embedded_state(&dir, blobs),
        #[cfg(feature = "aws")]
        (Location::DynamoDb(table), Location::S3(bucket)) => {
            let config = bankrec::aws::AwsConfig::new(table, bucket);
            Ok(bankrec::aws::AwsPorts::connect(&config).await.app_state())
        }
        #[cfg(not(feature = "aws"))]
        (Location::DynamoDb(_), Location::S3(_)) => {
            anyhow::bail!("this bankrec was built without AWS support: rebuild with --features aws")
        }
        _ => anyhow::bail!("use --store dynamodb://TABLE with --blobs s3://BUCKET, or two folders"),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let state = state(&args).await?;
    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    tracing::info!(http.addr = %local, store = args.store.as_deref().unwrap_or("embedded"), "listening on http://{local}{}", api::BASE_PATH);
    axum::serve(listener, api::app(state)).with_graceful_shutdown(shutdown()).await.context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, so that in-flight requests finish before the process exits.
async fn shutdown() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
