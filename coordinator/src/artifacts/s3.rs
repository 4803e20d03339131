//! [`S3Artifacts`]: blobs as objects in an S3 bucket (AWS, or any service
//! that speaks its API: MinIO, Ceph, R2, Garage).
//!
//! Layout: `<prefix>/ab/cd/<hex>`. (A directory store,
//! [`LocalArtifacts`](super::LocalArtifacts), shards one level deep,
//! `ab/<hex>`, since on a file system a new directory costs syncs; a bucket
//! has no directories to make, and keys sharded two levels deep spread over
//! more of S3's request partitions.)
//!
//! S3 makes an object visible only when its upload completes, whole: a
//! single `PUT`, or a multipart upload's `CompleteMultipartUpload`. An upload
//! here hashes the bytes as they stream in and sends them in parts of
//! [`part_size`](S3Artifacts::with_part_size) while the rest arrives; the
//! upload is completed only once the hash is known to match, and aborted
//! otherwise, so no object ever sits under a hash its bytes do not have. A
//! blob smaller than one part is sent as one `PUT` at commit. Parts of an
//! upload cut short by a crash stay in the bucket, invisible, until the
//! bucket's lifecycle rule `AbortIncompleteMultipartUpload` removes them:
//! set one (a day is plenty).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStoreExt as _, PutPayload};
use starling_protocol::ContentHash;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::chunk_queue::ChunkQueue;
use super::{ArtifactError, ArtifactStore, ArtifactUpload, Stored};

/// S3's smallest part but the last: 5 MiB.
pub const MIN_PART_SIZE: usize = 5 << 20;

/// The default part size: 8 MiB, so a CNN-size update (6.65 MB) goes as
/// one `PUT` and larger models stream in parts.
pub const DEFAULT_PART_SIZE: usize = 8 << 20;

/// Parts of one upload sent at once.
const PARTS_IN_FLIGHT: usize = 4;

/// A bucket (and key prefix) of content-addressed blobs. Cheap to clone.
///
/// Credentials, region and endpoint come from the usual `AWS_*` environment
/// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT` for a service other than AWS, `AWS_ALLOW_HTTP=true` for
/// one without TLS), or from [`options`](S3Artifacts::open).
#[derive(Debug, Clone)]
pub struct S3Artifacts {
    store: Arc<AmazonS3>,
    prefix: Arc<str>,
    url: Arc<str>,
    part_size: usize,
}

impl S3Artifacts {
    /// Opens the store at `url` (`s3://BUCKET` or `s3://BUCKET/PREFIX`),
    /// configured from the environment and then from `options`: pairs of an
    /// `object_store` S3 setting name (`aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_allow_http`, …) and its value. Nothing is
    /// sent until the first request.
    pub fn open<'a>(url: &str, options: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ArtifactError> {
        let invalid = |why: String| ArtifactError::Config { url: url.to_owned(), why };
        let rest = url.strip_prefix("s3://").ok_or_else(|| invalid("an S3 store's URL starts with s3://".into()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("no bucket named: use s3://BUCKET or s3://BUCKET/PREFIX".into()));
        }
        let prefix = prefix.trim_matches('/');
        ObjectPath::parse(prefix).map_err(|e| invalid(format!("the key prefix `{prefix}` is not valid: {e}")))?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in options {
            let key: AmazonS3ConfigKey = key.parse().map_err(|_| invalid(format!("unknown S3 setting `{key}`")))?;
            builder = builder.with_config(key, value);
        }
        // The bucket's HTTPS goes through reqwest's rustls, which uses the
        // process's default provider: make it Starling's one (ring).
        starling_net::install_default_provider();
        let store = builder.build().map_err(|e| invalid(e.to_string()))?;
        Ok(Self { store: Arc::new(store), prefix: prefix.into(), url: url.into(), part_size: DEFAULT_PART_SIZE })
    }

    /// Sends uploads in parts of `bytes` (at least [`MIN_PART_SIZE`]).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(MIN_PART_SIZE);
        self
    }

    /// The URL the store was opened at.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The object key of blob `hash`: `<prefix>/ab/cd/<hex>`.
    pub fn key(&self, hash: &ContentHash) -> ObjectPath {
        let hex = hash.to_string();
        let key = format!("{}/{}/{hex}", &hex[0..2], &hex[2..4]);
        if self.prefix.is_empty() { ObjectPath::from(key) } else { ObjectPath::from(format!("{}/{key}", self.prefix)) }
    }

    /// The bucket's client, for tests and tools that need to look inside.
    pub fn client(&self) -> &AmazonS3 {
        &self.store
    }
}

/// An [`ArtifactError::Store`] while doing `action` on `key`; a missing
/// object is [`ArtifactError::NotFound`].
fn failed(
    action: &'static str,
    key: &ObjectPath,
    hash: ContentHash,
) -> impl FnOnce(object_store::Error) -> ArtifactError {
    let key = key.to_string();
    move |error| match error {
        object_store::Error::NotFound { .. } => ArtifactError::NotFound(hash),
        other => ArtifactError::Store { action, key, source: Box::new(other) },
    }
}

/// An [`ArtifactError::Store`] while writing `key` (a missing bucket
/// included).
fn write_failed(action: &'static str, key: &ObjectPath) -> impl FnOnce(object_store::Error) -> ArtifactError {
    let key = key.to_string();
    move |source| ArtifactError::Store { action, key, source: Box::new(source) }
}

impl ArtifactStore for S3Artifacts {
    type Upload = S3Upload;
    type Reader = S3Reader;

    async fn begin(&self, expected: ContentHash, max_len: u64) -> Result<S3Upload, ArtifactError> {
        let (queue, chunks) = ChunkQueue::new(max_len);
        let sender = tokio::spawn(send_chunks(self.clone(), self.key(&expected), chunks));
        Ok(S3Upload { store: self.clone(), expected, queue, sender: Some(sender) })
    }

    async fn put(&self, hash: ContentHash, bytes: &[u8]) -> Result<Stored, ArtifactError> {
        let actual = ContentHash::of(bytes);
        if actual != hash {
            return Err(ArtifactError::HashMismatch { expected: hash, actual });
        }
        if self.contains(hash).await? {
            return Ok(Stored::AlreadyPresent);
        }
        let key = self.key(&hash);
        let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
        self.store.put(&key, payload).await.map_err(write_failed("writing", &key))?;
        Ok(Stored::Written)
    }

    async fn get(&self, hash: ContentHash) -> Result<Vec<u8>, ArtifactError> {
        let key = self.key(&hash);
        let fetched = self.store.get(&key).await.map_err(failed("reading", &key, hash))?;
        let bytes = fetched.bytes().await.map_err(failed("reading", &key, hash))?;
        let actual = ContentHash::of(&bytes);
        if actual != hash {
            return Err(ArtifactError::Corrupt { hash, actual });
        }
        Ok(bytes.into())
    }

    async fn open(&self, hash: ContentHash) -> Result<S3Reader, ArtifactError> {
        let key = self.key(&hash);
        let fetched = self.store.get(&key).await.map_err(failed("opening", &key, hash))?;
        let stream = fetched.into_stream().map_err(std::io::Error::other);
        Ok(S3Reader(tokio_util::io::StreamReader::new(Box::pin(stream))))
    }

    async fn contains(&self, hash: ContentHash) -> Result<bool, ArtifactError> {
        Ok(self.len(hash).await?.is_some())
    }

    async fn len(&self, hash: ContentHash) -> Result<Option<u64>, ArtifactError> {
        let key = self.key(&hash);
        match self.store.head(&key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(failed("inspecting", &key, hash)(other)),
        }
    }
}

/// An object's bytes, as the bucket sends them.
type ObjectStream = Pin<Box<dyn futures_core::Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A stored blob's bytes as they arrive from the bucket.
pub struct S3Reader(tokio_util::io::StreamReader<ObjectStream, Bytes>);

impl std::fmt::Debug for S3Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3Reader")
    }
}

impl AsyncRead for S3Reader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

/// An upload into an [`S3Artifacts`]: a task takes the chunks from a queue,
/// hashes them and sends every full part while the caller goes on
/// receiving. Dropping the upload aborts it.
#[derive(Debug)]
pub struct S3Upload {
    store: S3Artifacts,
    expected: ContentHash,
    /// The sender's queue.
    queue: ChunkQueue,
    sender: Option<JoinHandle<Result<Sent, ArtifactError>>>,
}

/// What the sender made of the chunks: what is left to do.
#[derive(Debug)]
struct Sent {
    /// The multipart upload, if the blob outgrew one part.
    multipart: Option<Box<dyn MultipartUpload>>,
    /// Parts still being sent.
    in_flight: VecDeque<JoinHandle<object_store::Result<()>>>,
    /// The bytes after the last full part.
    tail: Vec<Bytes>,
}

/// The sender: sends a part whenever the queued chunks since the last one
/// reach the part size (at most [`PARTS_IN_FLIGHT`] at once; the queue
/// hashes them on the caller's side). When the queue closes it hands back
/// the unsent tail. On an error it aborts the multipart upload.
async fn send_chunks(
    store: S3Artifacts,
    key: ObjectPath,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
) -> Result<Sent, ArtifactError> {
    let mut sent = Sent { multipart: None, in_flight: VecDeque::new(), tail: Vec::new() };
    let mut buffered = 0usize;
    let fail = |action: &'static str| write_failed(action, &key);
    let result: Result<(), ArtifactError> = async {
        while let Some(chunk) = queue.recv().await {
            buffered += chunk.len();
            sent.tail.push(chunk);
            if buffered < store.part_size {
                continue;
            }
            if sent.multipart.is_none() {
                sent.multipart = Some(store.store.put_multipart(&key).await.map_err(fail("starting an upload of"))?);
            }
            let part = PutPayload::from_iter(std::mem::take(&mut sent.tail));
            buffered = 0;
            let multipart = sent.multipart.as_mut().expect("started above");
            sent.in_flight.push_back(tokio::spawn(multipart.put_part(part)));
            while sent.in_flight.len() > PARTS_IN_FLIGHT {
                let oldest = sent.in_flight.pop_front().expect("more than zero in flight");
                joined(oldest).await.map_err(fail("sending a part of"))?;
            }
        }
        Ok(())
    }
    .await;
    if let Err(error) = result {
        sent.abort().await;
        return Err(error);
    }
    Ok(sent)
}

/// A part's result, a panicked or cancelled send counted as a failure.
async fn joined(part: JoinHandle<object_store::Result<()>>) -> object_store::Result<()> {
    part.await.unwrap_or_else(|join| Err(object_store::Error::JoinError { source: join }))
}

impl Sent {
    /// Abandons the multipart upload, if one started: nothing stays visible
    /// and the bucket frees the parts.
    async fn abort(&mut self) {
        for part in self.in_flight.drain(..) {
            part.abort();
        }
        if let Some(mut multipart) = self.multipart.take()
            && let Err(error) = multipart.abort().await
        {
            tracing::warn!(%error, "could not abort an S3 multipart upload; the bucket's lifecycle rule will remove it");
        }
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        // Dropped before commit: let the sender finish on its own and abort
        // whatever it started, behind the caller.
        self.queue.close();
        if let Some(sender) = self.sender.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Ok(Ok(mut sent)) = sender.await {
                    sent.abort().await;
                }
            });
        }
    }
}

impl ArtifactUpload for S3Upload {
    fn feed(&mut self, chunk: Bytes) -> Result<(), ArtifactError> {
        self.queue.feed(chunk)
    }

    fn written(&self) -> u64 {
        self.queue.written()
    }

    async fn commit(mut self) -> Result<Stored, ArtifactError> {
        let Some(sender) = self.sender.take() else { return Err(ArtifactError::Discarded) };
        let failed_earlier = !self.queue.close();
        let key = self.store.key(&self.expected);
        let mut sent = sender.await.map_err(|join| {
            write_failed("running the upload of", &key)(object_store::Error::JoinError { source: join })
        })??;
        if failed_earlier {
            // A feed was refused: the bytes are incomplete.
            sent.abort().await;
            return Err(ArtifactError::Discarded);
        }
        let actual = self.queue.hash();
        if actual != self.expected {
            sent.abort().await;
            return Err(ArtifactError::HashMismatch { expected: self.expected, actual });
        }
        match self.store.contains(self.expected).await {
            Ok(true) => {
                sent.abort().await;
                return Ok(Stored::AlreadyPresent);
            }
            Ok(false) => {}
            Err(error) => {
                sent.abort().await;
                return Err(error);
            }
        }
        let fail = |action: &'static str| write_failed(action, &key);
        let Some(mut multipart) = sent.multipart.take() else {
            let payload = PutPayload::from_iter(std::mem::take(&mut sent.tail));
            self.store.store.put(&key, payload).await.map_err(fail("writing"))?;
            return Ok(Stored::Written);
        };
        if !sent.tail.is_empty() {
            let last = PutPayload::from_iter(std::mem::take(&mut sent.tail));
            sent.in_flight.push_back(tokio::spawn(multipart.put_part(last)));
        }
        let mut result = Ok(());
        for part in sent.in_flight.drain(..) {
            if result.is_ok() {
                result = joined(part).await;
            } else {
                part.abort();
            }
        }
        let result = match result {
            Ok(()) => multipart.complete().await.map(drop),
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            if let Err(abort) = multipart.abort().await {
                tracing::warn!(error = %abort, "could not abort an S3 multipart upload");
            }
            return Err(fail("completing the upload of")(error));
        }
        Ok(Stored::Written)
    }

    async fn discard(&mut self) {
        self.queue.close();
        if let Some(sender) = self.sender.take()
            && let Ok(Ok(mut sent)) = sender.await
        {
            sent.abort().await;
        }
    }
}
