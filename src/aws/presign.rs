//! Presigned S3 URLs in place of the local server's routes: a client uploads a statement
//! straight into the bucket, where the `ingest` function imports it, and downloads a report
//! straight from it. The bytes never pass through the API (API Gateway caps bodies at 10 MB).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::api::uploads::{UploadError, UploadGrant, UploadUrl, UploadUrls, UPLOAD_TTL_MINUTES};
use crate::lambda::ingest::parse_statement_key;
use crate::store::{BlobError, BlobKey, ReportJob, S3Blobs, TenantId};

/// How long a report download URL stays valid.
pub const DOWNLOAD_TTL_MINUTES: u64 = 15;

/// An upload key that is not an uploaded statement of the account it was minted for.
#[derive(Debug, thiserror::Error)]
#[error("the upload key {key} is not statements/{{tenant}}/{{account}}/{{name}} of the account it is minted for")]
pub struct ForeignKey {
    /// The key.
    pub key: String,
}

/// Upload URLs that are presigned S3 PUTs under `statements/{tenant}/{account}/{name}`, the
/// layout the `ingest` function reads. Tokens are never redeemed here.
#[derive(Debug, Clone)]
pub struct S3Uploads {
    blobs: S3Blobs,
    ttl: Duration,
}

impl S3Uploads {
    /// URLs into `blobs`' bucket, valid for [`UPLOAD_TTL_MINUTES`].
    pub fn new(blobs: S3Blobs) -> Self {
        S3Uploads { blobs, ttl: Duration::from_secs(UPLOAD_TTL_MINUTES.unsigned_abs() * 60) }
    }

    /// URLs live for `ttl` instead.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

#[async_trait]
impl UploadUrls for S3Uploads {
    async fn mint(
        &self,
        tenant: &TenantId,
        account_id: &str,
        key: &str,
        _base: &str,
    ) -> Result<UploadUrl, UploadError> {
        let foreign = || UploadError::Backend(Box::new(ForeignKey { key: key.to_string() }));
        // A key ingest would not read (or would read into another account) must never get a
        // URL: the file would sit in the bucket unimported, or land where it does not belong.
        let object = parse_statement_key(key).map_err(|_| foreign())?;
        if object.tenant != *tenant || object.account_id != account_id {
            return Err(foreign());
        }
        // No content type: the client holds only the URL, and a signed header it does not know
        // to send would make S3 refuse the upload.
        let request =
            self.blobs.presign_put(&object.key, None, self.ttl).await.map_err(|e| UploadError::Backend(Box::new(e)))?;
        Ok(UploadUrl { url: request.url, key: key.to_string(), expires_at: request.expires_at })
    }

    fn redeem(&self, _token: &str, _now: DateTime<Utc>) -> Result<UploadGrant, UploadError> {
        Err(UploadError::NotHere)
    }
}

/// Report downloads as presigned S3 GETs of the tenant's own report objects.
#[derive(Debug, Clone)]
pub struct S3ReportLinks {
    blobs: S3Blobs,
    ttl: Duration,
}

impl S3ReportLinks {
    /// Links into `blobs`' bucket, valid for [`DOWNLOAD_TTL_MINUTES`].
    pub fn new(blobs: S3Blobs) -> Self {
        S3ReportLinks { blobs, ttl: Duration::from_secs(DOWNLOAD_TTL_MINUTES * 60) }
    }

    /// Links live for `ttl` instead.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

#[async_trait]
impl crate::reports::ReportLinks for S3ReportLinks {
    async fn download_url(&self, tenant: &TenantId, _job: &ReportJob, key: &BlobKey) -> Result<String, BlobError> {
        // Reports are stored under reports/{tenant}/: a link outside it would hand out another
        // tenant's file.
        let own = key.as_str().strip_prefix("reports/").and_then(|rest| rest.strip_prefix(tenant.as_str()));
        if !own.is_some_and(|rest| rest.starts_with('/')) {
            return Err(BlobError::InvalidKey(key.to_string()));
        }
        Ok(self.blobs.presign_get(key, self.ttl).await?.url)
    }
}
