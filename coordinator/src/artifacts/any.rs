//! [`AnyArtifacts`]: the store a `--store-url` names, chosen at run time.

use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use starling_protocol::ContentHash;
use tokio::io::{AsyncRead, ReadBuf};

use super::{ArtifactError, ArtifactStore, ArtifactUpload, LocalArtifacts, LocalUpload, Stored};
#[cfg(feature = "s3")]
use super::{S3Artifacts, S3Reader, S3Upload};

/// Where the artifacts live, as a store URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// A local directory: a path, or `file://PATH`.
    Dir(PathBuf),
    /// An S3 bucket and key prefix: `s3://BUCKET[/PREFIX]`.
    S3(String),
}

impl ArtifactLocation {
    /// Reads a store URL: `s3://BUCKET[/PREFIX]`, `file://DIR` or a plain
    /// directory path. An `s3://` URL is refused by a build without the
    /// `s3` feature, with the reason.
    pub fn parse(url: &str) -> Result<Self, ArtifactError> {
        let invalid = |why: String| ArtifactError::Config { url: url.to_owned(), why };
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(Self::Dir(PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            if rest.split('/').next().is_none_or(str::is_empty) {
                return Err(invalid("no bucket named: use s3://BUCKET or s3://BUCKET/PREFIX".into()));
            }
            if cfg!(feature = "s3") {
                return Ok(Self::S3(url.to_owned()));
            }
            return Err(invalid(
                "this binary was built without S3 support (the `s3` feature of starling-cli); \
                 use a local directory (or file://DIR)"
                    .into(),
            ));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(invalid(format!("unknown scheme `{scheme}://`; use s3://BUCKET/PREFIX or a local directory")));
        }
        Ok(Self::Dir(PathBuf::from(url)))
    }
}

impl std::fmt::Display for ArtifactLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::S3(url) => f.write_str(url),
        }
    }
}

/// One of the artifact stores, so a binary can serve whichever its
/// configuration names.
#[derive(Debug, Clone)]
pub enum AnyArtifacts {
    /// A directory.
    Local(LocalArtifacts),
    /// An S3 bucket.
    #[cfg(feature = "s3")]
    S3(S3Artifacts),
}

impl AnyArtifacts {
    /// Opens the store at `location`, creating a directory if missing. An
    /// S3 store is configured from the `AWS_*` environment variables.
    pub async fn open(location: &ArtifactLocation) -> Result<Self, ArtifactError> {
        match location {
            ArtifactLocation::Dir(dir) => Ok(Self::Local(LocalArtifacts::open(dir).await?)),
            #[cfg(feature = "s3")]
            ArtifactLocation::S3(url) => Ok(Self::S3(S3Artifacts::open(url, [])?)),
            #[cfg(not(feature = "s3"))]
            ArtifactLocation::S3(url) => {
                Err(ArtifactError::Config { url: url.clone(), why: "this binary was built without S3 support".into() })
            }
        }
    }

    /// Removes what uploads cut short by a crash left behind, where the store
    /// can see it: a directory's temporary files older than `older_than`.
    /// (An S3 bucket's unfinished multipart uploads are its lifecycle rule's
    /// to remove.) Returns how many were removed.
    pub async fn remove_stale_uploads(&self, older_than: Duration) -> Result<usize, ArtifactError> {
        match self {
            Self::Local(local) => local.remove_stale_uploads(older_than).await,
            #[cfg(feature = "s3")]
            Self::S3(_) => Ok(0),
        }
    }
}

/// An upload into an [`AnyArtifacts`].
#[derive(Debug)]
pub enum AnyUpload {
    /// Into a directory.
    Local(LocalUpload),
    /// Into an S3 bucket.
    #[cfg(feature = "s3")]
    S3(S3Upload),
}

/// A blob read from an [`AnyArtifacts`].
#[derive(Debug)]
pub enum AnyReader {
    /// From a directory.
    Local(tokio::fs::File),
    /// From an S3 bucket.
    #[cfg(feature = "s3")]
    S3(S3Reader),
}

impl AsyncRead for AnyReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Local(file) => Pin::new(file).poll_read(cx, buf),
            #[cfg(feature = "s3")]
            Self::S3(reader) => Pin::new(reader).poll_read(cx, buf),
        }
    }
}

/// Runs `$body` with `$store` bound to whichever store `$any` holds.
macro_rules! each {
    ($any:expr, $store:ident => $body:expr) => {
        match $any {
            AnyArtifacts::Local($store) => $body,
            #[cfg(feature = "s3")]
            AnyArtifacts::S3($store) => $body,
        }
    };
}

impl ArtifactStore for AnyArtifacts {
    type Upload = AnyUpload;
    type Reader = AnyReader;

    async fn begin(&self, expected: ContentHash, max_len: u64) -> Result<AnyUpload, ArtifactError> {
        match self {
            Self::Local(store) => store.begin(expected, max_len).await.map(AnyUpload::Local),
            #[cfg(feature = "s3")]
            Self::S3(store) => store.begin(expected, max_len).await.map(AnyUpload::S3),
        }
    }

    async fn put(&self, hash: ContentHash, bytes: &[u8]) -> Result<Stored, ArtifactError> {
        each!(self, store => store.put(hash, bytes).await)
    }

    async fn get(&self, hash: ContentHash) -> Result<Vec<u8>, ArtifactError> {
        each!(self, store => store.get(hash).await)
    }

    async fn open(&self, hash: ContentHash) -> Result<AnyReader, ArtifactError> {
        match self {
            Self::Local(store) => store.open(hash).await.map(AnyReader::Local),
            #[cfg(feature = "s3")]
            Self::S3(store) => store.open(hash).await.map(AnyReader::S3),
        }
    }

    async fn contains(&self, hash: ContentHash) -> Result<bool, ArtifactError> {
        each!(self, store => store.contains(hash).await)
    }

    async fn len(&self, hash: ContentHash) -> Result<Option<u64>, ArtifactError> {
        each!(self, store => store.len(hash).await)
    }
}

/// Runs `$body` with `$upload` bound to whichever upload `$any` holds.
macro_rules! each_upload {
    ($any:expr, $upload:ident => $body:expr) => {
        match $any {
            AnyUpload::Local($upload) => $body,
            #[cfg(feature = "s3")]
            AnyUpload::S3($upload) => $body,
        }
    };
}

impl ArtifactUpload for AnyUpload {
    fn feed(&mut self, chunk: Bytes) -> Result<(), ArtifactError> {
        each_upload!(self, upload => upload.feed(chunk))
    }

    fn written(&self) -> u64 {
        each_upload!(self, upload => upload.written())
    }

    async fn commit(self) -> Result<Stored, ArtifactError> {
        each_upload!(self, upload => upload.commit().await)
    }

    async fn discard(&mut self) {
        each_upload!(self, upload => upload.discard().await)
    }
}
