//! The blob port (raw statement files, generated reports) and its local-folder adapter.

use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

/// A blob's key: `/`-separated segments of letters, digits, `.`, `-`, `_` (no empty, `.` or `..`
/// segment), so that it is a safe relative path and a plain S3 key alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Validates a key.
    pub fn new(key: impl Into<String>) -> Result<Self, BlobError> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= 1024
            && key.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            });
        if ok {
            Ok(BlobKey(key))
        } else {
            Err(BlobError::InvalidKey(key))
        }
    }

    /// Builds a key from segments, replacing characters that are not allowed with `_`.
    pub fn from_segments(segments: &[&str]) -> Result<Self, BlobError> {
        let clean: Vec<String> = segments
            .iter()
            .map(|s| {
                s.chars()
                    .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
                    .collect::<String>()
            })
            .collect();
        BlobKey::new(clean.join("/"))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a blob call failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The key is not a valid blob key.
    #[error("invalid blob key {0:?}")]
    InvalidKey(String),
    /// No blob under this key.
    #[error("blob {0} not found")]
    NotFound(String),
    /// The backend failed.
    #[error("blob backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Raw files: statements as uploaded, generated reports.
#[async_trait]
pub trait Blobs: Send + Sync {
    /// Stores `bytes` under `key`, replacing what was there (writes are atomic: a reader sees the
    /// old or the new content, never a part).
    async fn put(&self, key: &BlobKey, bytes: &[u8], content_type: &str) -> Result<(), BlobError>;
    /// Reads a blob.
    async fn get(&self, key: &BlobKey) -> Result<Vec<u8>, BlobError>;
    /// Removes a blob; removing a missing blob is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
    /// Whether a blob exists.
    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError>;
}

/// Blobs in a local folder: the key is the relative path.
#[derive(Debug, Clone)]
pub struct FsBlobs {
    root: PathBuf,
}

impl FsBlobs {
    /// Blobs under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsBlobs { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn backend(e: std::io::Error) -> BlobError {
    BlobError::Backend(Box::new(e))
}

#[async_trait]
impl Blobs for FsBlobs {
    async fn put(&self, key: &BlobKey, bytes: &[u8], _content_type: &str) -> Result<(), BlobError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(backend)?;
        }
        // Write beside the target, then rename: readers never see half a file.
        let tmp = path.with_extension(format!("tmp-{}", super::model::new_id("w")));
        tokio::fs::write(&tmp, bytes).await.map_err(backend)?;
        tokio::fs::rename(&tmp, &path).await.map_err(backend)
    }

    async fn get(&self, key: &BlobKey) -> Result<Vec<u8>, BlobError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(BlobError::NotFound(key.to_string())),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        tokio::fs::try_exists(self.path(key)).await.map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_the_folder_are_refused() {
        assert!(BlobKey::new("statements/t1/acc_1/stm_1").is_ok());
        for bad in ["", "/abs", "a//b", "a/../b", "..", "a/./b", "a b", "a\\b"] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn segments_are_sanitised_into_a_valid_key() {
        let key = BlobKey::from_segments(&["statements", "t1", "acc 1", "März.csv"]).unwrap();
        assert_eq!(key.as_str(), "statements/t1/acc_1/M_rz.csv");
    }
}
