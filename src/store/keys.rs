//! API keys: the port that stores them and its SQLite adapter.
//!
//! A key is `bkr_` followed by 64 hex characters of OS randomness (256 bits). Only its SHA-256 is
//! stored: with that much entropy a fast hash is enough (there is nothing to brute-force), and a
//! leaked database gives no usable key. Each key has a public id (`key_...`) that logs and audit
//! trails may carry instead of the secret.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::model::{hex, new_id, TenantId};
use super::{SqliteStore, StoreError};

/// What every key starts with, so that a leaked key is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "bkr_";

/// Longest presented key worth hashing; anything longer is not one of ours.
pub const MAX_KEY_LEN: usize = 128;

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The operating system gave no randomness; a key must never be made without it.
    #[error("no secure randomness available to generate a key")]
    Randomness(#[source] getrandom::Error),
    /// The key store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The SHA-256 of a key, lower-case hex: what is stored and looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl KeyHash {
    /// Hashes a presented key.
    pub fn of(key: &str) -> Self {
        KeyHash(hex(&Sha256::digest(key.as_bytes())))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_...`: safe to log and to show in audit trails.
    pub id: String,
    /// The tenant the key acts for.
    pub tenant: TenantId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A key just created: the secret is in memory only here and is shown once.
#[derive(Debug)]
pub struct NewKey {
    /// The key to hand to the client (`bkr_...`).
    pub secret: String,
    /// What was stored.
    pub key: ApiKey,
}

/// Stores API keys by hash.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a key under its hash; `Conflict` if the hash or the id exists.
    async fn insert_key(&self, key: &ApiKey, hash: &KeyHash) -> Result<(), StoreError>;
    /// The key with this hash, if any.
    async fn find_key(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError>;
}

/// Generates a key for `tenant` and stores its hash. The returned secret is not kept anywhere.
pub async fn create_key(keys: &dyn KeyStore, tenant: &TenantId) -> Result<NewKey, KeyError> {
    let mut secret_bytes = [0u8; 32];
    getrandom::fill(&mut secret_bytes).map_err(KeyError::Randomness)?;
    let secret = format!("{KEY_PREFIX}{}", hex(&secret_bytes));
    let key = ApiKey { id: new_id("key"), tenant: tenant.clone(), created_at: Utc::now() };
    keys.insert_key(&key, &KeyHash::of(&secret)).await?;
    Ok(NewKey { secret, key })
}

/// Keys in the embedded SQLite file, beside the rest of the data (table `api_keys`).
#[derive(Clone)]
pub struct SqliteKeyStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteKeyStore")
    }
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend(e)
}

impl SqliteKeyStore {
    /// Opens the key table in `dir`'s database (the file [`SqliteStore::open_dir`] uses),
    /// creating and migrating the database if needed.
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        // Opening the store runs the migrations, which create the key table.
        drop(SqliteStore::open_dir(dir)?);
        let conn = Connection::open(dir.join("bankrec.sqlite3")).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(backend)?;
        Ok(SqliteKeyStore { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let guard = conn.lock().map_err(|_| StoreError::Backend("the SQLite key lock is poisoned".into()))?;
            f(&guard)
        })
        .await
        .map_err(StoreError::backend)?
    }
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn insert_key(&self, key: &ApiKey, hash: &KeyHash) -> Result<(), StoreError> {
        let (key, hash) = (key.clone(), hash.clone());
        self.with(move |conn| {
            let n = conn
                .execute(
                    "INSERT OR IGNORE INTO api_keys (key_hash, id, tenant, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![hash.as_str(), key.id, key.tenant.as_str(), key.created_at.to_rfc3339()],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::Conflict(format!("key {} already exists", key.id)));
            }
            Ok(())
        })
        .await
    }

    async fn find_key(&self, hash: &KeyHash) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash.clone();
        self.with(move |conn| {
            let row: Option<(String, String, String)> = conn
                .query_row(
                    "SELECT id, tenant, created_at FROM api_keys WHERE key_hash = ?1",
                    params![hash.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()
                .map_err(backend)?;
            row.map(|(id, tenant, created)| {
                let corrupt = |what: &str| StoreError::Backend(format!("stored key {id} has an invalid {what}").into());
                Ok(ApiKey {
                    tenant: TenantId::new(&tenant).map_err(|_| corrupt("tenant"))?,
                    created_at: DateTime::parse_from_rfc3339(&created)
                        .map_err(|_| corrupt("creation time"))?
                        .with_timezone(&Utc),
                    id,
                })
            })
            .transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteKeyStore) {
        let dir = tempfile::tempdir().unwrap();
        let keys = SqliteKeyStore::open_dir(dir.path()).unwrap();
        (dir, keys)
    }

    #[tokio::test]
    async fn a_created_key_is_found_by_the_hash_of_its_secret_and_acts_for_its_tenant() {
        let (_dir, keys) = store();
        let tenant = TenantId::new("acme").unwrap();
        let new = create_key(&keys, &tenant).await.unwrap();
        assert!(new.secret.starts_with(KEY_PREFIX));
        assert_eq!(new.secret.len(), KEY_PREFIX.len() + 64);
        let found = keys.find_key(&KeyHash::of(&new.secret)).await.unwrap().unwrap();
        assert_eq!(found.tenant, tenant);
        assert_eq!(found.id, new.key.id);
    }

    #[tokio::test]
    async fn the_secret_itself_is_never_stored() {
        let (dir, keys) = store();
        let new = create_key(&keys, &TenantId::new("acme").unwrap()).await.unwrap();
        let conn = Connection::open(dir.path().join("bankrec.sqlite3")).unwrap();
        let stored: String =
            conn.query_row("SELECT group_concat(key_hash || id || tenant) FROM api_keys", [], |r| r.get(0)).unwrap();
        assert!(!stored.contains(&new.secret[KEY_PREFIX.len()..]));
    }

    #[tokio::test]
    async fn an_unknown_or_altered_key_is_not_found() {
        let (_dir, keys) = store();
        let new = create_key(&keys, &TenantId::new("acme").unwrap()).await.unwrap();
        let mut altered = new.secret.clone();
        altered.pop();
        altered.push('x');
        assert_eq!(keys.find_key(&KeyHash::of(&altered)).await.unwrap(), None);
        assert_eq!(keys.find_key(&KeyHash::of("")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn two_keys_for_one_tenant_are_distinct() {
        let (_dir, keys) = store();
        let tenant = TenantId::new("acme").unwrap();
        let a = create_key(&keys, &tenant).await.unwrap();
        let b = create_key(&keys, &tenant).await.unwrap();
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.key.id, b.key.id);
    }
}
