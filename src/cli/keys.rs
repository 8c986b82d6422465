//! `bankrec keys`: API keys for the local server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bankrec::store::keys::create_key;
use bankrec::store::{SqliteKeyStore, TenantId};
use clap::{Args, Subcommand};

/// Arguments of `bankrec keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key for a tenant and print it (it is shown only this once).
    Create {
        /// The tenant the key acts for (1-64 of A-Z a-z 0-9 - _).
        #[arg(long, value_parser = parse_tenant)]
        tenant: TenantId,
        /// Data folder, as given to `bankrec serve`.
        #[arg(long, default_value = "bankrec-data")]
        data: PathBuf,
    },
}

fn parse_tenant(s: &str) -> Result<TenantId, String> {
    TenantId::new(s).map_err(|e| e.to_string())
}

/// Runs `bankrec keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeysCommand::Create { tenant, data } => {
            let keys = SqliteKeyStore::open_dir(&data)
                .with_context(|| format!("cannot open the key table in {}", data.display()))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            let new = runtime.block_on(create_key(&keys, &tenant)).context("cannot create the key")?;
            // The key alone on stdout, so that `KEY=$(bankrec keys create ...)` works.
            println!("{}", new.secret);
            eprintln!("created key {} for tenant {}; store it now, it cannot be shown again", new.key.id, tenant);
            Ok(ExitCode::SUCCESS)
        }
    }
}
