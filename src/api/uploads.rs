//! Upload URLs: `POST /accounts/{id}/statements/upload-url` hands out a URL a client can `PUT` a
//! statement file to without its API key. In AWS that is a presigned S3 PUT whose object the
//! `ingest` function imports; locally it is a signed, expiring grant redeemed by this server's
//! `PUT /uploads/{token}`, which does the same import and reconciliation. The minting is a port in
//! [`super::AppState`] so that the Lambda wiring can replace it.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::store::model::hex;
use crate::store::TenantId;

/// How long an upload URL stays valid.
pub const UPLOAD_TTL_MINUTES: i64 = 15;
/// Longest token accepted: real ones are a few hundred characters.
const MAX_TOKEN_LEN: usize = 2048;
/// File holding the local signing secret inside the data folder.
pub const SECRET_FILE: &str = "upload-secret";

/// Why an upload URL could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The token is malformed, tampered with or signed with another secret.
    #[error("the upload URL is not valid")]
    Invalid,
    /// The token was valid but its time is up.
    #[error("the upload URL expired at {0}")]
    Expired(DateTime<Utc>),
    /// This deployment uploads elsewhere (to S3): tokens are not redeemed here.
    #[error("uploads go to object storage in this deployment")]
    NotHere,
    /// The secret or the presigner failed.
    #[error("cannot make an upload URL")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// An upload URL as the API answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadUrl {
    /// Where to `PUT` the file.
    pub url: String,
    /// The object key the file is stored under (`statements/{tenant}/{account}/{name}`).
    pub key: String,
    /// When the URL stops working.
    pub expires_at: DateTime<Utc>,
}

/// What a redeemed token allows: one file into one account of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadGrant {
    /// The tenant.
    pub tenant: TenantId,
    /// The account the file is imported into.
    pub account_id: String,
    /// The object key (its last segment is the file name).
    pub key: String,
    /// When the grant ends.
    pub expires_at: DateTime<Utc>,
}

/// Mints upload URLs (and, locally, redeems them).
#[async_trait]
pub trait UploadUrls: Send + Sync {
    /// A URL to `PUT` the object `key` of `tenant`'s `account_id`; `base` is this server's own
    /// origin (`http://host:port`), which a presigned S3 URL ignores.
    async fn mint(&self, tenant: &TenantId, account_id: &str, key: &str, base: &str) -> Result<UploadUrl, UploadError>;

    /// The grant a token carries, when this server redeems tokens.
    fn redeem(&self, token: &str, now: DateTime<Utc>) -> Result<UploadGrant, UploadError>;
}

/// Local upload URLs: `PUT {base}/v1/bank-reconciliation/uploads/{token}`, where the token is
/// the grant and its HMAC-SHA256 under a secret only this server knows.
#[derive(Clone)]
pub struct SignedUploads {
    secret: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for SignedUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedUploads").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl SignedUploads {
    /// Signs with `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        SignedUploads { secret, ttl: Duration::minutes(UPLOAD_TTL_MINUTES) }
    }

    /// A fresh random secret: URLs stop working when the process ends.
    pub fn random() -> Result<Self, UploadError> {
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| UploadError::Backend(Box::new(std::io::Error::other(e))))?;
        Ok(SignedUploads::new(secret))
    }

    /// The secret kept in `dir`'s [`SECRET_FILE`], created on first use, so that URLs survive a
    /// restart of `bankrec serve` on the same data folder.
    pub fn for_data_dir(dir: &Path) -> Result<Self, UploadError> {
        let path = dir.join(SECRET_FILE);
        let backend = |e: std::io::Error| UploadError::Backend(Box::new(e));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let secret = unhex(text.trim())
                    .filter(|s| s.len() >= 32)
                    .ok_or_else(|| backend(std::io::Error::other(format!("{} is not a hex secret", path.display()))))?;
                Ok(SignedUploads::new(secret))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = SignedUploads::random()?;
                std::fs::create_dir_all(dir).map_err(backend)?;
                write_private(&path, &hex(&fresh.secret)).map_err(backend)?;
                Ok(fresh)
            }
            Err(e) => Err(backend(e)),
        }
    }

    /// URLs live for `ttl` instead of [`UPLOAD_TTL_MINUTES`].
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn sign(&self, payload: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.secret, payload)
    }

    /// The token for a grant.
    pub fn token(&self, grant: &UploadGrant) -> String {
        let payload =
            format!("{}\n{}\n{}\n{}", grant.tenant.as_str(), grant.account_id, grant.key, grant.expires_at.timestamp());
        format!("{}.{}", hex(payload.as_bytes()), hex(&self.sign(payload.as_bytes())))
    }
}

#[async_trait]
impl UploadUrls for SignedUploads {
    async fn mint(&self, tenant: &TenantId, account_id: &str, key: &str, base: &str) -> Result<UploadUrl, UploadError> {
        let expires_at = Utc::now() + self.ttl;
        // Whole seconds: the token carries a Unix timestamp.
        let expires_at = Utc.timestamp_opt(expires_at.timestamp(), 0).single().ok_or(UploadError::Invalid)?;
        let grant = UploadGrant {
            tenant: tenant.clone(),
            account_id: account_id.to_string(),
            key: key.to_string(),
            expires_at,
        };
        let url = format!("{}{}/uploads/{}", base.trim_end_matches('/'), super::BASE_PATH, self.token(&grant));
        Ok(UploadUrl { url, key: key.to_string(), expires_at })
    }

    fn redeem(&self, token: &str, now: DateTime<Utc>) -> Result<UploadGrant, UploadError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(UploadError::Invalid);
        }
        let (payload, mac) = token.split_once('.').ok_or(UploadError::Invalid)?;
        let (payload, mac) = (unhex(payload).ok_or(UploadError::Invalid)?, unhex(mac).ok_or(UploadError::Invalid)?);
        if !constant_time_eq(&self.sign(&payload), &mac) {
            return Err(UploadError::Invalid);
        }
        let text = String::from_utf8(payload).map_err(|_| UploadError::Invalid)?;
        let mut parts = text.split('\n');
        let (Some(tenant), Some(account_id), Some(key), Some(expires), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(UploadError::Invalid);
        };
        let tenant = TenantId::new(tenant).map_err(|_| UploadError::Invalid)?;
        let expires_at =
            expires.parse::<i64>().ok().and_then(|s| Utc.timestamp_opt(s, 0).single()).ok_or(UploadError::Invalid)?;
        if now > expires_at {
            return Err(UploadError::Expired(expires_at));
        }
        Ok(UploadGrant { tenant, account_id: account_id.to_string(), key: key.to_string(), expires_at })
    }
}

/// Mints nothing and redeems nothing: for a deployment that cannot sign.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUploads;

#[async_trait]
impl UploadUrls for NoUploads {
    async fn mint(&self, _: &TenantId, _: &str, _: &str, _: &str) -> Result<UploadUrl, UploadError> {
        Err(UploadError::NotHere)
    }

    fn redeem(&self, _: &str, _: DateTime<Utc>) -> Result<UploadGrant, UploadError> {
        Err(UploadError::NotHere)
    }
}

/// HMAC-SHA256 (RFC 2104) over SHA-256, which the build has already.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let (mut inner, mut outer) = (Sha256::new(), Sha256::new());
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Compares without stopping at the first difference, so timing does not leak the signature.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Only ASCII hex digits remain, so every two-byte step is on a char boundary.
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> TenantId {
        TenantId::new("acme").unwrap()
    }

    #[test]
    fn hmac_matches_the_rfc_4231_test_vector() {
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(hex(&mac), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    }

    #[tokio::test]
    async fn a_minted_token_redeems_to_its_grant_until_it_expires() {
        let signer = SignedUploads::new(vec![7; 32]);
        let url = signer.mint(&tenant(), "acc_1", "statements/acme/acc_1/m.ofx", "http://h:1/").await.unwrap();
        let token = url.url.rsplit('/').next().unwrap();
        assert!(url.url.starts_with("http://h:1/v1/bank-reconciliation/uploads/"), "{}", url.url);
        let grant = signer.redeem(token, Utc::now()).unwrap();
        assert_eq!(
            (grant.tenant, grant.account_id.as_str(), grant.key.as_str()),
            (tenant(), "acc_1", url.key.as_str())
        );
        let later = url.expires_at + Duration::seconds(1);
        assert!(matches!(signer.redeem(token, later), Err(UploadError::Expired(_))));
    }

    #[tokio::test]
    async fn a_tampered_or_foreign_token_is_invalid() {
        let signer = SignedUploads::new(vec![7; 32]);
        let url = signer.mint(&tenant(), "acc_1", "statements/acme/acc_1/m.ofx", "http://h").await.unwrap();
        let token = url.url.rsplit('/').next().unwrap().to_string();
        let other = SignedUploads::new(vec![8; 32]);
        assert!(matches!(other.redeem(&token, Utc::now()), Err(UploadError::Invalid)));
        let (payload, mac) = token.split_once('.').unwrap();
        let forged = hex(String::from_utf8(unhex(payload).unwrap()).unwrap().replace("acme", "evil").as_bytes());
        assert!(matches!(signer.redeem(&format!("{forged}.{mac}"), Utc::now()), Err(UploadError::Invalid)));
        for junk in ["", ".", "zz.zz", "abc", "é.é", &"a".repeat(5000)] {
            assert!(matches!(signer.redeem(junk, Utc::now()), Err(UploadError::Invalid)), "{junk:?}");
        }
    }

    #[test]
    fn the_data_folder_secret_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = SignedUploads::for_data_dir(dir.path()).unwrap();
        let second = SignedUploads::for_data_dir(dir.path()).unwrap();
        assert_eq!(first.secret, second.secret);
        assert_eq!(first.secret.len(), 32);
    }
}
