//! `bankrec store init`: create the store and the blob bucket (or folders) when missing.
//!
//! Running it again changes nothing, so deployments may run it on every release.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

/// Arguments of `bankrec store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Create the store (a DynamoDB table with its indexes, or a SQLite file) and the blob
    /// storage (an S3 bucket or a folder) unless they exist.
    Init(InitArgs),
}

/// Arguments of `bankrec store init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// `dynamodb://TABLE`, or a folder for the embedded SQLite store.
    #[arg(long)]
    store: String,
    /// `s3://BUCKET`, or a folder for raw files.
    #[arg(long)]
    blobs: Option<String>,
}

/// Where data is kept, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A DynamoDB table.
    DynamoDb(String),
    /// An S3 bucket.
    S3(String),
    /// A local folder.
    Folder(PathBuf),
}

/// Reads `dynamodb://NAME`, `s3://NAME` or a folder path, checking the name against the service's rules.
pub fn parse_location(text: &str) -> anyhow::Result<Location> {
    if let Some(table) = text.strip_prefix("dynamodb://") {
        let ok = (3..=255).contains(&table.len())
            && table.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        anyhow::ensure!(ok, "invalid DynamoDB table name {table:?}: 3-255 of A-Z a-z 0-9 _ - .");
        return Ok(Location::DynamoDb(table.to_string()));
    }
    if let Some(bucket) = text.strip_prefix("s3://") {
        let bucket = bucket.strip_suffix('/').unwrap_or(bucket);
        let ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
            && bucket.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && bucket.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
        anyhow::ensure!(ok, "invalid S3 bucket name {bucket:?}: 3-63 of a-z 0-9 - ., starting and ending alphanumeric");
        return Ok(Location::S3(bucket.to_string()));
    }
    anyhow::ensure!(!text.contains("://"), "unknown storage {text:?}: use dynamodb://TABLE, s3://BUCKET or a folder");
    anyhow::ensure!(!text.is_empty(), "the storage location is empty");
    Ok(Location::Folder(PathBuf::from(text)))
}

/// Runs `bankrec store`.
pub fn run(args: StoreArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StoreCommand::Init(init) => {
            let store = parse_location(&init.store)?;
            let blobs = init.blobs.as_deref().map(parse_location).transpose()?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            for line in runtime.block_on(init_all(store, blobs))? {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn init_all(store: Location, blobs: Option<Location>) -> anyhow::Result<Vec<String>> {
    let mut done = Vec::new();
    match store {
        Location::Folder(dir) => {
            bankrec::store::SqliteStore::open_dir(&dir)
                .with_context(|| format!("cannot create the store in {}", dir.display()))?;
            done.push(format!("store ready in {}", dir.display()));
        }
        Location::DynamoDb(table) => done.push(init_table(&table).await?),
        Location::S3(_) => anyhow::bail!("--store takes dynamodb://TABLE or a folder, not an S3 bucket"),
    }
    match blobs {
        None => {}
        Some(Location::Folder(dir)) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            done.push(format!("blobs ready in {}", dir.display()));
        }
        Some(Location::S3(bucket)) => done.push(init_bucket(&bucket).await?),
        Some(Location::DynamoDb(_)) => anyhow::bail!("--blobs takes s3://BUCKET or a folder, not a DynamoDB table"),
    }
    Ok(done)
}

#[cfg(feature = "aws")]
async fn init_table(table: &str) -> anyhow::Result<String> {
    let store = bankrec::store::DynamoStore::from_env(table).await;
    let created = store.create_table().await.with_context(|| format!("cannot create the DynamoDB table {table}"))?;
    Ok(format!("DynamoDB table {table} {}", if created { "created" } else { "already exists" }))
}

#[cfg(feature = "aws")]
async fn init_bucket(bucket: &str) -> anyhow::Result<String> {
    let blobs = bankrec::store::S3Blobs::from_env(bucket).await;
    let created = blobs.create_bucket().await.with_context(|| format!("cannot create the S3 bucket {bucket}"))?;
    Ok(format!("S3 bucket {bucket} {}", if created { "created" } else { "already exists" }))
}

#[cfg(not(feature = "aws"))]
async fn init_table(_table: &str) -> anyhow::Result<String> {
    anyhow::bail!("this bankrec was built without AWS support; rebuild with `--features aws`")
}

#[cfg(not(feature = "aws"))]
async fn init_bucket(_bucket: &str) -> anyhow::Result<String> {
    anyhow::bail!("this bankrec was built without AWS support; rebuild with `--features aws`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_bucket_and_folder_locations_are_told_apart() {
        assert_eq!(parse_location("dynamodb://bankrec-prod").unwrap(), Location::DynamoDb("bankrec-prod".into()));
        assert_eq!(parse_location("s3://bankrec-raw/").unwrap(), Location::S3("bankrec-raw".into()));
        assert_eq!(parse_location("./data").unwrap(), Location::Folder("./data".into()));
    }

    #[test]
    fn names_the_services_would_refuse_are_refused_before_any_call() {
        for bad in ["dynamodb://ab", "dynamodb://a b c", "s3://Upper", "s3://-dash", "s3://", "ftp://x", ""] {
            assert!(parse_location(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_folder_store_is_initialised_twice_without_harm() {
        let dir = tempfile::tempdir().unwrap();
        let store = Location::Folder(dir.path().join("data"));
        let blobs = Some(Location::Folder(dir.path().join("blobs")));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(init_all(store.clone(), blobs.clone())).unwrap();
        rt.block_on(init_all(store, blobs)).unwrap();
        assert!(dir.path().join("data/bankrec.sqlite3").exists());
        assert!(dir.path().join("blobs").is_dir());
    }
}
