//! `bankrec serve`: the REST API on the embedded store (SQLite + a folder of raw files).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bankrec::api::{self, AppState};
use bankrec::reports::{LocalDispatch, LocalLinks};
use bankrec::store::{FsBlobs, SqliteKeyStore, SqliteStore};
use clap::Args;
use tracing_subscriber::EnvFilter;

/// Arguments of `bankrec serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Data folder: the SQLite database and `blobs/` for raw files.
    #[arg(long, default_value = "bankrec-data")]
    data: PathBuf,
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let store = SqliteStore::open_dir(&args.data)
        .with_context(|| format!("cannot open the database in {}", args.data.display()))?;
    let keys = SqliteKeyStore::open_dir(&args.data)
        .with_context(|| format!("cannot open the key table in {}", args.data.display()))?;
    let blobs = FsBlobs::new(args.data.join("blobs"));
    // The upload-URL signing secret lives in the data directory, so URLs survive a restart.
    let uploads = api::uploads::SignedUploads::for_data_dir(&args.data)
        .with_context(|| format!("cannot set up upload URLs in {}", args.data.display()))?;
    let (store, blobs) = (Arc::new(store), Arc::new(blobs));
    let reports = Arc::new(LocalDispatch::new(store.clone(), store.clone(), blobs.clone()));
    let state = AppState::new(store.clone(), blobs, Arc::new(keys)).with_uploads(Arc::new(uploads)).with_reports(
        store,
        Arc::new(LocalLinks),
        reports,
    );
    let listener =
        tokio::net::TcpListener::bind(args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let local = listener.local_addr().context("cannot read the listening address")?;
    tracing::info!(http.addr = %local, data.dir = %args.data.display(), "listening on http://{local}{}", api::BASE_PATH);
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
