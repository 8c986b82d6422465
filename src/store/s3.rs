//! The S3 adapter of the blob port: one bucket, the blob key is the object key.
//!
//! Besides the port, it hands out presigned URLs so that a client can upload a statement or
//! download a report directly, without the bytes passing through the API.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};

use super::blobs::{BlobError, BlobKey, Blobs};

/// Blobs in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Blobs {
    client: Client,
    bucket: String,
}

/// A presigned request: whoever holds it may perform this one operation until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    /// `GET` or `PUT`.
    pub method: String,
    /// The signed URL.
    pub url: String,
    /// Headers the request must carry as signed (for example `content-type` of an upload).
    pub headers: Vec<(String, String)>,
    /// When the signature stops being accepted.
    pub expires_at: DateTime<Utc>,
}

fn backend<E>(e: E) -> BlobError
where
    E: std::error::Error + Send + Sync + 'static,
{
    BlobError::Backend(Box::new(e))
}

impl S3Blobs {
    /// Blobs in `bucket` through `client`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Blobs { client, bucket: bucket.into() }
    }

    /// Blobs in `bucket` with the client configured from the standard AWS environment. Path-style
    /// addressing is used when an endpoint is overridden (`AWS_ENDPOINT_URL_S3` or
    /// `AWS_ENDPOINT_URL`): local S3 servers do not resolve bucket subdomains.
    pub async fn from_env(bucket: impl Into<String>) -> Self {
        let config = aws_config::load_from_env().await;
        let overridden = config.endpoint_url().is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL").is_some();
        let s3 = aws_sdk_s3::config::Builder::from(&config).force_path_style(overridden).build();
        Self::new(Client::from_conf(s3), bucket)
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists. Returns whether it was created.
    pub async fn create_bucket(&self) -> Result<bool, BlobError> {
        if self.client.head_bucket().bucket(&self.bucket).send().await.is_ok() {
            return Ok(false);
        }
        let mut create = self.client.create_bucket().bucket(&self.bucket);
        let region = self.client.config().region().map(|r| r.as_ref().to_string());
        if let Some(region) = region.filter(|r| r != "us-east-1") {
            create = create.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        match create.send().await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.code(), Some("BucketAlreadyOwnedByYou")) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }

    /// A URL that uploads one object under `key`, valid for `expires_in`. The upload must send the
    /// returned headers: with a `content_type`, `content-type` is among them; without one the
    /// URL takes a plain `PUT` of any type, which is what a client handed only a URL can do.
    pub async fn presign_put(
        &self,
        key: &BlobKey,
        content_type: Option<&str>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        let config = PresigningConfig::expires_in(expires_in).map_err(backend)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_content_type(content_type.map(str::to_string))
            .presigned(config)
            .await
            .map_err(backend)?;
        Ok(presigned(&request, expires_in))
    }

    /// A URL that downloads the object under `key`, valid for `expires_in`.
    pub async fn presign_get(&self, key: &BlobKey, expires_in: Duration) -> Result<PresignedRequest, BlobError> {
        let config = PresigningConfig::expires_in(expires_in).map_err(backend)?;
        let request =
            self.client.get_object().bucket(&self.bucket).key(key.as_str()).presigned(config).await.map_err(backend)?;
        Ok(presigned(&request, expires_in))
    }
}

fn presigned(request: &aws_sdk_s3::presigning::PresignedRequest, expires_in: Duration) -> PresignedRequest {
    let expires_at = chrono::Duration::from_std(expires_in).ok().and_then(|d| Utc::now().checked_add_signed(d));
    PresignedRequest {
        method: request.method().to_string(),
        url: request.uri().to_string(),
        headers: request.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        expires_at: expires_at.unwrap_or(DateTime::<Utc>::MAX_UTC),
    }
}

fn is_not_found<E: ProvideErrorMetadata>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    matches!(e.code(), Some("NoSuchKey" | "NotFound"))
        || matches!(e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 404)
}

#[async_trait]
impl Blobs for S3Blobs {
    async fn put(&self, key: &BlobKey, bytes: &[u8], content_type: &str) -> Result<(), BlobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(content_type)
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Vec<u8>, BlobError> {
        match self.client.get_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(out) => Ok(out.body.collect().await.map_err(backend)?.into_bytes().to_vec()),
            Err(e) if is_not_found(&e) => Err(BlobError::NotFound(key.to_string())),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.client.delete_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        match self.client.head_object().bucket(&self.bucket).key(key.as_str()).send().await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }
}
