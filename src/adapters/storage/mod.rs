//! The `object_store` implementation of [`crate::ports::artifacts::BlobStore`]: a backup
//! repository on S3 (or an S3-compatible server) or on a mounted filesystem.
//!
//! The repository is named by a URL, `s3://bucket/prefix` or `file:///path`. S3 settings
//! and credentials come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL` or `AWS_ENDPOINT`), never
//! from the command line, where they would show in `ps` and shell history; a file
//! credential is read by the shell and handed in through [`S3Settings`].

mod location;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig,
    WriteMultipart,
};

pub use location::{RepositoryUrl, UrlError};

use crate::error::{Categorized, Category};
use crate::ports::artifacts::{BlobError, BlobInfo, BlobStore};

/// Objects above this go up in parts, so a retry resends one part rather than the whole.
const MULTIPART_THRESHOLD: usize = 16 << 20;
const PART_SIZE: usize = 8 << 20;

/// S3 settings beyond the URL; each `None` falls back to the environment.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `http://127.0.0.1:8333` for an S3-compatible server; plain HTTP is allowed only
    /// when the endpoint says so.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

/// The keys of an S3 credentials Secret (the reference's names, which are also the
/// environment variables the AWS tools read).
pub const S3_CREDENTIAL_KEYS: [&str; 4] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
];

impl S3Settings {
    /// Fills what is unset from a credentials Secret's entries (`lookup` answers a key's
    /// value): the operator reads the Secret, a Job reads its files.
    #[must_use]
    pub fn with_credentials(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        self.access_key_id = self.access_key_id.or_else(|| lookup("AWS_ACCESS_KEY_ID"));
        self.secret_access_key = self
            .secret_access_key
            .or_else(|| lookup("AWS_SECRET_ACCESS_KEY"));
        self.session_token = self.session_token.or_else(|| lookup("AWS_SESSION_TOKEN"));
        self.region = self.region.or_else(|| lookup("AWS_REGION"));
        self
    }
}

/// A repository that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("{url}: {message}")]
    Open { url: String, message: String },
}

impl Categorized for StoreError {
    fn category(&self) -> Category {
        match self {
            Self::Url(_) => Category::InvalidInput,
            Self::Open { .. } => Category::Config,
        }
    }
}

/// A backup repository: an object store and the prefix everything lives under.
#[derive(Debug, Clone)]
pub struct ObjectRepository {
    store: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
}

impl ObjectRepository {
    /// Opens the repository `url` names. A `file://` directory is created if missing.
    pub fn open(url: &str, s3: &S3Settings) -> Result<Self, StoreError> {
        let parsed = RepositoryUrl::parse(url)?;
        let open_error = |message: String| StoreError::Open {
            url: url.to_owned(),
            message,
        };
        let (store, root): (Arc<dyn ObjectStore>, Path) = match &parsed {
            RepositoryUrl::File { dir } => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| open_error(format!("creating {}: {e}", dir.display())))?;
                let local = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| open_error(e.to_string()))?
                    // Every write lands under a temporary name and is renamed into place,
                    // so a reader never sees half an object; deleting a backup's last
                    // object removes its directory too.
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                (Arc::new(local), Path::default())
            }
            RepositoryUrl::S3 { bucket, prefix } => {
                // reqwest is built without a provider of its own and panics without a
                // process default: make it ring, the one provider of this binary (a no-op
                // when the CLI installed it already).
                let _ = rustls::crypto::ring::default_provider().install_default();
                let store = s3_builder(bucket, s3)
                    .build()
                    .map_err(|e| open_error(e.to_string()))?;
                (Arc::new(store), Path::from(prefix.as_str()))
            }
        };
        Ok(Self {
            store,
            root,
            url: url.to_owned(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> Path {
        key.split('/')
            .filter(|part| !part.is_empty())
            .fold(self.root.clone(), Path::join)
    }

    fn relative(&self, path: &Path) -> Option<String> {
        let parts: Vec<String> = path
            .prefix_match(&self.root)?
            .map(|part| part.as_ref().to_owned())
            .collect();
        Some(parts.join("/"))
    }

    async fn put_object(&self, key: &str, bytes: Vec<u8>) -> Result<(), object_store::Error> {
        let path = self.path(key);
        if bytes.len() <= MULTIPART_THRESHOLD {
            self.store.put(&path, PutPayload::from(bytes)).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&path).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        writer.put(Bytes::from(bytes));
        // An error here aborts the upload, so no part outlives a failed write.
        writer.finish().await?;
        Ok(())
    }

    async fn get_object(&self, key: &str, limit: u64) -> Result<Vec<u8>, BlobError> {
        let path = self.path(key);
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|e| blob_error("get", key, e))?;
        let size = result.meta.size;
        if size > limit {
            return Err(BlobError::TooLarge {
                key: key.to_owned(),
                size,
                limit,
            });
        }
        let bytes = result
            .bytes()
            .await
            .map_err(|e| blob_error("get", key, e))?;
        Ok(bytes.to_vec())
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<BlobInfo>, BlobError> {
        let path = self.path(prefix);
        let mut stream = self.store.list(Some(&path));
        let mut out = Vec::new();
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(|e| blob_error("list", prefix, e))?;
            if let Some(key) = self.relative(&meta.location) {
                out.push(BlobInfo {
                    key,
                    size: meta.size,
                });
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn list_directories(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let path = self.path(prefix);
        let listing = match self.store.list_with_delimiter(Some(&path)).await {
            Ok(listing) => listing,
            // A directory that does not exist yet on a filesystem repository is empty.
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(blob_error("list", prefix, e)),
        };
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|dir| dir.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    async fn delete_object(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(blob_error("delete", key, e)),
        }
    }
}

impl BlobStore for ObjectRepository {
    fn put(&self, key: &str, bytes: Vec<u8>) -> BoxFuture<'_, Result<(), BlobError>> {
        let key = key.to_owned();
        Box::pin(async move {
            self.put_object(&key, bytes)
                .await
                .map_err(|e| blob_error("put", &key, e))
        })
    }

    fn get(&self, key: &str, limit: u64) -> BoxFuture<'_, Result<Vec<u8>, BlobError>> {
        let key = key.to_owned();
        Box::pin(async move { self.get_object(&key, limit).await })
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<BlobInfo>, BlobError>> {
        let prefix = prefix.to_owned();
        Box::pin(async move { self.list_objects(&prefix).await })
    }

    fn list_dirs(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<String>, BlobError>> {
        let prefix = prefix.to_owned();
        Box::pin(async move { self.list_directories(&prefix).await })
    }

    fn delete(&self, key: &str) -> BoxFuture<'_, Result<(), BlobError>> {
        let key = key.to_owned();
        Box::pin(async move { self.delete_object(&key).await })
    }
}

fn s3_builder(bucket: &str, s3: &S3Settings) -> AmazonS3Builder {
    // Client options first: they hold `allow_http`, which the endpoint below may set.
    let mut builder = AmazonS3Builder::from_env()
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(300)),
        )
        .with_bucket_name(bucket);
    let endpoint = s3
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
    if let Some(endpoint) = endpoint {
        // S3-compatible servers are addressed path-style; plain HTTP only when the
        // endpoint itself asks for it (a test server on loopback).
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .with_endpoint(endpoint);
    }
    if let Some(region) = &s3.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &s3.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &s3.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = &s3.session_token {
        builder = builder.with_token(token);
    }
    // A restarted or briefly unreachable server delays an upload; it does not fail it.
    builder.with_retry(RetryConfig {
        backoff: BackoffConfig::default(),
        max_retries: 10,
        retry_timeout: Duration::from_secs(120),
    })
}

fn blob_error(operation: &'static str, key: &str, error: object_store::Error) -> BlobError {
    match error {
        object_store::Error::NotFound { .. } => BlobError::Missing {
            key: key.to_owned(),
        },
        other => BlobError::Unavailable {
            operation,
            key: key.to_owned(),
            message: chain(&other),
        },
    }
}

/// The error and its causes on one line: object_store's own message often names only the
/// request, and the reason (refused, TLS, signature) is further down.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
