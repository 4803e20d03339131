//! [`LocalArtifacts`]: blobs as files in a directory.
//!
//! Layout: `<root>/ab/cd/<hex>` for a hash whose hex starts `abcd` (two
//! levels of 256 directories keep any one directory small), and
//! `<root>/tmp/` for uploads in progress. An upload writes a temporary file
//! there, checks length and hash, fsyncs it, renames it to its final path
//! (atomic: `tmp/` is in the same file system) and fsyncs the directories
//! whose entries changed, so a blob under its name is always whole and
//! survives a crash once committed.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use starling_protocol::ContentHash;
use tempfile::TempPath;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::chunk_queue::ChunkQueue;
use super::{ArtifactError, ArtifactStore, ArtifactUpload, Stored};

/// Name of the directory of uploads in progress, under the root.
const TMP: &str = "tmp";

/// A directory of content-addressed blobs. Cheap to clone; several
/// processes may share the directory (concurrent uploads of one hash are
/// harmless: each writes its own temporary file and the renames replace
/// identical bytes with identical bytes).
#[derive(Debug, Clone)]
pub struct LocalArtifacts {
    root: Arc<PathBuf>,
}

impl LocalArtifacts {
    /// Opens the store in `dir`, creating it if missing.
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self, ArtifactError> {
        let root = dir.into();
        let tmp = root.join(TMP);
        tokio::fs::create_dir_all(&tmp).await.map_err(ArtifactError::io("creating", &tmp))?;
        Ok(Self { root: Arc::new(root) })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `hash` lives: `<root>/ab/cd/<hex>`.
    fn path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_string();
        self.root.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// Deletes temporary files of uploads last written more than `older_than`
    /// ago: what a crash in the middle of an upload left behind (a dropped
    /// upload deletes its own). Returns how many were deleted. Run it at
    /// start-up with an age longer than any upload takes.
    pub async fn remove_stale_uploads(&self, older_than: Duration) -> Result<usize, ArtifactError> {
        let tmp = self.root.join(TMP);
        let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut entries = tokio::fs::read_dir(&tmp).await.map_err(ArtifactError::io("listing", &tmp))?;
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await.map_err(ArtifactError::io("listing", &tmp))? {
            let path = entry.path();
            let modified = match entry.metadata().await.and_then(|m| m.modified()) {
                Ok(modified) => modified,
                // Gone already: committed or dropped meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ArtifactError::io("inspecting", path)(e)),
            };
            if modified < cutoff {
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ArtifactError::io("removing", path)(e)),
                }
            }
        }
        Ok(removed)
    }
}

/// Runs blocking file-system work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ArtifactError> + Send + 'static,
) -> Result<T, ArtifactError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|join| {
        Err(ArtifactError::Io { action: "running", path: PathBuf::new(), source: io::Error::other(join) })
    })
}

impl ArtifactStore for LocalArtifacts {
    type Upload = LocalUpload;
    type Reader = tokio::fs::File;

    async fn begin(&self, expected: ContentHash, max_len: u64) -> Result<LocalUpload, ArtifactError> {
        let tmp = self.root.join(TMP);
        let (file, temp) = blocking(move || {
            let named = tempfile::Builder::new()
                .prefix(".upload-")
                .tempfile_in(&tmp)
                .map_err(ArtifactError::io("creating a temporary file in", &tmp))?;
            Ok(named.into_parts())
        })
        .await?;
        let temp_path = Some(temp.to_path_buf());
        let (queue, chunks) = ChunkQueue::new(max_len);
        let finished = Arc::new(AtomicBool::new(false));
        let writer = {
            let finished = finished.clone();
            tokio::task::spawn_blocking(move || write_chunks(file, temp, chunks, finished))
        };
        Ok(LocalUpload {
            root: self.root.clone(),
            destination: self.path(&expected),
            expected,
            queue,
            writer: Some(writer),
            finished,
            temp_path,
        })
    }

    async fn put(&self, hash: ContentHash, bytes: &[u8]) -> Result<Stored, ArtifactError> {
        // The whole blob is in memory: hash it once, then write, sync and
        // rename it in one blocking call, instead of the streaming path's
        // chunked hops through the blocking pool.
        let actual = ContentHash::of(bytes);
        if actual != hash {
            return Err(ArtifactError::HashMismatch { expected: hash, actual });
        }
        let destination = self.path(&hash);
        if tokio::fs::try_exists(&destination).await.map_err(ArtifactError::io("inspecting", &destination))? {
            return Ok(Stored::AlreadyPresent);
        }
        let (root, bytes) = (self.root.clone(), bytes.to_vec());
        blocking(move || {
            let tmp = root.join(TMP);
            let mut named = tempfile::Builder::new()
                .prefix(".upload-")
                .tempfile_in(&tmp)
                .map_err(ArtifactError::io("creating a temporary file in", &tmp))?;
            named.write_all(&bytes).map_err(ArtifactError::io("writing", named.path().to_path_buf()))?;
            named.as_file().sync_all().map_err(ArtifactError::io("syncing", named.path().to_path_buf()))?;
            publish(&root, named.into_temp_path(), &destination)
        })
        .await
    }

    async fn get(&self, hash: ContentHash) -> Result<Vec<u8>, ArtifactError> {
        let path = self.path(&hash);
        let bytes = tokio::fs::read(&path).await.map_err(|e| not_found_or(hash, "reading", &path, e))?;
        // BLAKE3 hashes at gigabytes per second: cheap next to the read.
        let actual = ContentHash::of(&bytes);
        if actual != hash {
            return Err(ArtifactError::Corrupt { hash, actual });
        }
        Ok(bytes)
    }

    async fn open(&self, hash: ContentHash) -> Result<tokio::fs::File, ArtifactError> {
        let path = self.path(&hash);
        tokio::fs::File::open(&path).await.map_err(|e| not_found_or(hash, "opening", &path, e))
    }

    async fn contains(&self, hash: ContentHash) -> Result<bool, ArtifactError> {
        let path = self.path(&hash);
        tokio::fs::try_exists(&path).await.map_err(ArtifactError::io("inspecting", path))
    }

    async fn len(&self, hash: ContentHash) -> Result<Option<u64>, ArtifactError> {
        let path = self.path(&hash);
        match tokio::fs::metadata(&path).await {
            Ok(metadata) => Ok(Some(metadata.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ArtifactError::io("inspecting", path)(e)),
        }
    }
}

/// [`ArtifactError::NotFound`] for a missing file, else an I/O error.
fn not_found_or(hash: ContentHash, action: &'static str, path: &Path, error: io::Error) -> ArtifactError {
    if error.kind() == io::ErrorKind::NotFound {
        ArtifactError::NotFound(hash)
    } else {
        ArtifactError::io(action, path)(error)
    }
}

/// An upload into a [`LocalArtifacts`]: a writer on the blocking pool takes
/// the chunks from a queue, hashes them and writes them to the temporary
/// file, syncing as it goes (see [`SYNC_EVERY`]), while the caller goes on
/// receiving. Dropping the
/// upload deletes its temporary file.
#[derive(Debug)]
pub struct LocalUpload {
    root: Arc<PathBuf>,
    destination: PathBuf,
    expected: ContentHash,
    /// The writer's queue.
    queue: ChunkQueue,
    writer: Option<JoinHandle<Result<Written, ArtifactError>>>,
    /// Set by `commit` before it closes the queue: the writer syncs only then.
    finished: Arc<AtomicBool>,
    /// The temporary file, deleted on drop until `commit` takes charge of it.
    temp_path: Option<PathBuf>,
}

/// What the writer made of a finished upload: a synced temporary file and
/// the hash of its bytes.
#[derive(Debug)]
struct Written {
    temp: TempPath,
    hash: ContentHash,
}

/// Bytes written between two syncs while an upload streams in. Syncing as
/// the bytes arrive (on the writer's thread, while the network delivers the
/// rest) leaves the final sync only the last few megabytes: on ext4 a 6.65 MB
/// file synced once at the end waits ~9 ms, synced every 2 MiB ~0.1 ms at
/// the end. Asking the kernel to start write-back early
/// (`sync_file_range`) only brought that to ~7 ms: the final sync's wait is
/// mostly the journal commit of the block allocation, which only a sync
/// does.
const SYNC_EVERY: u64 = 2 << 20;

/// The writer: appends every queued chunk to `file`, syncing every
/// [`SYNC_EVERY`] bytes, while a second thread hashes the same chunks (the
/// syncs block this one; the hash must not wait behind them). When the queue
/// closes it syncs the rest, unless `finished` says the upload was abandoned
/// (then the temporary file is deleted unsynced).
fn write_chunks(
    mut file: std::fs::File,
    temp: TempPath,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    finished: Arc<AtomicBool>,
) -> Result<Written, ArtifactError> {
    let (to_hasher, chunks) = std::sync::mpsc::channel::<Bytes>();
    let written = std::thread::scope(|scope| {
        let hashing = scope.spawn(move || {
            let mut hasher = blake3::Hasher::new();
            for chunk in chunks {
                hasher.update(&chunk);
            }
            ContentHash::from_bytes(*hasher.finalize().as_bytes())
        });
        let (mut written, mut synced_to) = (0u64, 0u64);
        while let Some(chunk) = queue.blocking_recv() {
            file.write_all(&chunk).map_err(ArtifactError::io("writing", temp.to_path_buf()))?;
            written += chunk.len() as u64;
            // The hasher outlives this loop: sending cannot fail.
            let _ = to_hasher.send(chunk);
            if written - synced_to >= SYNC_EVERY {
                file.sync_data().map_err(ArtifactError::io("syncing", temp.to_path_buf()))?;
                synced_to = written;
            }
        }
        drop(to_hasher);
        Ok::<_, ArtifactError>(hashing.join().expect("hashing does not panic"))
    });
    let hash = written?;
    if !finished.load(Ordering::Acquire) {
        return Err(ArtifactError::Discarded);
    }
    file.sync_data().map_err(ArtifactError::io("syncing", temp.to_path_buf()))?;
    Ok(Written { temp, hash })
}

impl LocalUpload {
    /// Stops the writer and deletes the temporary file, off the async threads.
    async fn discard(&mut self) {
        self.queue.close();
        if let Some(writer) = self.writer.take() {
            // The writer sees the queue close without `finished`, and its
            // temporary file is deleted as it returns.
            let _ = writer.await;
        }
        self.temp_path = None;
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        // Closing the queue without `finished` makes the writer stop
        // without syncing; unlink the file now (a quick blocking call) so
        // nothing is left however late the writer notices.
        self.queue.close();
        if let Some(path) = self.temp_path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl ArtifactUpload for LocalUpload {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), ArtifactError> {
        match self.feed(Bytes::copy_from_slice(chunk)) {
            Err(ArtifactError::TooLarge { max_len, received }) => {
                self.discard().await;
                Err(ArtifactError::TooLarge { max_len, received })
            }
            other => other,
        }
    }

    fn feed(&mut self, chunk: Bytes) -> Result<(), ArtifactError> {
        self.queue.feed(chunk)
    }

    fn written(&self) -> u64 {
        self.queue.written()
    }

    async fn commit(mut self) -> Result<Stored, ArtifactError> {
        let Some(writer) = self.writer.take() else { return Err(ArtifactError::Discarded) };
        if !self.queue.is_open() {
            // A feed failed: report why the writer stopped, if it did.
            let stopped = writer.await;
            self.temp_path = None;
            return match stopped {
                Ok(Err(error)) => Err(error),
                _ => Err(ArtifactError::Discarded),
            };
        }
        // From here the writer's `TempPath` deletes the file on failure.
        self.temp_path = None;
        self.finished.store(true, Ordering::Release);
        self.queue.close();
        let Written { temp, hash } = writer.await.map_err(|join| ArtifactError::Io {
            action: "running the writer of",
            path: self.destination.clone(),
            source: io::Error::other(join),
        })??;
        let destination = std::mem::take(&mut self.destination);
        let root = self.root.clone();
        let expected = self.expected;
        blocking(move || {
            if hash != expected {
                return Err(ArtifactError::HashMismatch { expected, actual: hash });
            }
            if destination.try_exists().map_err(ArtifactError::io("inspecting", &destination))? {
                return Ok(Stored::AlreadyPresent);
            }
            publish(&root, temp, &destination)
        })
        .await
    }

    async fn abort(mut self) {
        self.discard().await;
    }
}

/// Renames a synced temporary file to its blob path and makes the rename
/// durable: syncs the shard directory `ab/cd/` whose entries changed, and
/// `ab/` and the root too when this call created the directories below them.
fn publish(root: &Path, temp: TempPath, destination: &Path) -> Result<Stored, ArtifactError> {
    let shard = destination.parent().expect("blob paths have a shard directory");
    let parent = shard.parent().expect("shard directories have a parent");
    let (parent_existed, shard_existed) = (parent.is_dir(), shard.is_dir());
    std::fs::create_dir_all(shard).map_err(ArtifactError::io("creating", shard))?;
    temp.persist(destination).map_err(|e| ArtifactError::io("renaming into", destination)(e.error))?;
    sync_dir(shard)?;
    if !shard_existed {
        sync_dir(parent)?;
    }
    if !parent_existed {
        sync_dir(root)?;
    }
    Ok(Stored::Written)
}

/// Makes `dir`'s entries durable.
fn sync_dir(dir: &Path) -> Result<(), ArtifactError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(ArtifactError::io("syncing", dir))
}
