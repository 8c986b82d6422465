//! `bankrec keys`: API keys, in the embedded store or in a DynamoDB table.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use bankrec::store::keys::{create_key, KeyStore, NewKey};
use bankrec::store::{SqliteKeyStore, TenantId};
use clap::{Args, Subcommand};

use super::store::{parse_location, Location};

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
        /// `dynamodb://TABLE` to keep the key in DynamoDB, or a folder (overrides `--data`).
        #[arg(long)]
        store: Option<String>,
    },
}

fn parse_tenant(s: &str) -> Result<TenantId, String> {
    TenantId::new(s).map_err(|e| e.to_string())
}

/// Runs `bankrec keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KeysCommand::Create { tenant, data, store } => {
            let location = match store {
                Some(text) => parse_location(&text)?,
                None => Location::Folder(data),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            let new = runtime.block_on(create_in(location, &tenant))?;
            // The key alone on stdout, so that `KEY=$(bankrec keys create ...)` works.
            println!("{}", new.secret);
            eprintln!("created key {} for tenant {}; store it now, it cannot be shown again", new.key.id, tenant);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn create_in(location: Location, tenant: &TenantId) -> anyhow::Result<NewKey> {
    let keys: Box<dyn KeyStore> = match location {
        Location::Folder(dir) => Box::new(
            SqliteKeyStore::open_dir(&dir)
                .with_context(|| format!("cannot open the key table in {}", dir.display()))?,
        ),
        Location::DynamoDb(table) => dynamo_keys(&table).await?,
        Location::S3(_) => anyhow::bail!("--store takes dynamodb://TABLE or a folder, not an S3 bucket"),
    };
    create_key(&*keys, tenant).await.context("cannot create the key")
}

#[cfg(feature = "aws")]
async fn dynamo_keys(table: &str) -> anyhow::Result<Box<dyn KeyStore>> {
    Ok(Box::new(bankrec::store::DynamoStore::from_env(table).await))
}

#[cfg(not(feature = "aws"))]
async fn dynamo_keys(_table: &str) -> anyhow::Result<Box<dyn KeyStore>> {
    anyhow::bail!("this bankrec was built without AWS support; rebuild with `--features aws`")
}
