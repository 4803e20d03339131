//! [`LocalArtifacts`]: blobs as files in a directory.
//!
//! Layout: `<root>/ab/<hex>` for a hash whose hex starts `ab` (256 shard
//! directories, all made when the store opens; a million blobs are ~4,000 a
//! directory), and `<root>/tmp/` for uploads in progress. An upload writes a
//! temporary file there, checks length and hash, fsyncs it, renames it to
//! its final path (atomic: `tmp/` is in the same file system) and fsyncs the
//! shard directory, so a blob under its name is always whole and survives a
//! crash once committed. How the temporary file is written is `blob_writer`'s.
//!
//! The shards are one level deep and made in advance because on a file
//! system a directory made for a blob costs a sync of its own: with two
//! levels (`ab/cd/`, 65,536 shards, the layout of earlier versions, which
//! [`LocalArtifacts::open`] moves into this one) nearly every one of a
//! store's first hundred thousand uploads made a directory, and its commit
//! took three directory syncs instead of one (1.2 ms instead of 0.3 ms on
//! the development machine's ext4).

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use starling_protocol::ContentHash;
use tempfile::TempPath;
use tokio::task::JoinHandle;

use super::blob_writer::write_chunks;
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
    /// Opens the store in `dir`, creating it and its shard directories if
    /// missing, and moving blobs stored in the two-level layout of earlier
    /// versions (`ab/cd/<hex>`) into this one.
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self, ArtifactError> {
        let root = dir.into();
        let prepared = root.clone();
        blocking(move || prepare(&prepared)).await?;
        Ok(Self { root: Arc::new(root) })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `hash` lives: `<root>/ab/<hex>`.
    fn path(&self, hash: &ContentHash) -> PathBuf {
        let hex = hash.to_string();
        self.root.join(&hex[0..2]).join(hex)
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

/// The file that says a store has this layout: once it exists, opening
/// skips looking for blobs in the earlier one.
pub(super) const LAYOUT: &str = "LAYOUT";

/// What [`LAYOUT`] holds.
pub(super) const LAYOUT_TEXT: &str = "one level of 256 shards: ab/<hex>\n";

/// Makes `root`, `root/tmp` and the 256 shard directories where missing,
/// moves blobs of the two-level layout up into their shard unless
/// [`LAYOUT`] says that was done, and syncs `root` if it changed.
fn prepare(root: &Path) -> Result<(), ArtifactError> {
    let tmp = root.join(TMP);
    std::fs::create_dir_all(&tmp).map_err(ArtifactError::io("creating", &tmp))?;
    let mut changed = false;
    let mut existing = Vec::new();
    for n in 0..=u8::MAX {
        let shard = root.join(format!("{n:02x}"));
        match std::fs::create_dir(&shard) {
            Ok(()) => changed = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => existing.push(shard),
            Err(e) => return Err(ArtifactError::io("creating", shard)(e)),
        }
    }
    let layout = root.join(LAYOUT);
    if !layout.try_exists().map_err(ArtifactError::io("inspecting", &layout))? {
        for shard in &existing {
            migrate_shard(shard)?;
        }
        let mut file = std::fs::File::create(&layout).map_err(ArtifactError::io("creating", &layout))?;
        file.write_all(LAYOUT_TEXT.as_bytes()).map_err(ArtifactError::io("writing", &layout))?;
        file.sync_all().map_err(ArtifactError::io("syncing", &layout))?;
        changed = true;
    }
    if changed {
        sync_dir(root)?;
    }
    Ok(())
}

/// Moves every blob of `shard`'s second-level directories (`ab/cd/<hex>`,
/// the earlier layout) up into `shard` (`ab/<hex>`), syncs it, and removes
/// the emptied directories. A crash part-way leaves each blob under one name
/// or the other, whole (a rename is atomic), and the next open goes on; a
/// blob another process moved meanwhile is skipped.
fn migrate_shard(shard: &Path) -> Result<(), ArtifactError> {
    let listed = |dir: &Path| -> Result<Vec<(PathBuf, bool)>, ArtifactError> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(ArtifactError::io("listing", dir))? {
            let entry = entry.map_err(ArtifactError::io("listing", dir))?;
            let is_dir = entry.file_type().map_err(ArtifactError::io("inspecting", entry.path()))?.is_dir();
            entries.push((entry.path(), is_dir));
        }
        Ok(entries)
    };
    let legacy: Vec<PathBuf> = listed(shard)?.into_iter().filter(|(_, is_dir)| *is_dir).map(|(path, _)| path).collect();
    if legacy.is_empty() {
        return Ok(());
    }
    for dir in &legacy {
        for (from, _) in listed(dir)? {
            let to = shard.join(from.file_name().expect("a directory entry has a name"));
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ArtifactError::io("moving", &from)(e)),
                _ => {}
            }
        }
    }
    sync_dir(shard)?;
    for dir in &legacy {
        match std::fs::remove_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(ArtifactError::io("removing", dir)(e)),
            _ => {}
        }
    }
    Ok(())
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
        // The writer makes the temporary file itself: nothing here waits
        // for the file system, and the bytes that arrive meanwhile queue up.
        let temp = self.root.join(TMP).join(upload_name());
        let (queue, chunks) = ChunkQueue::new(max_len);
        let finished = Arc::new(AtomicBool::new(false));
        let written_directly = Arc::new(AtomicU64::new(0));
        let writer = {
            let (temp, finished, directly) = (temp.clone(), finished.clone(), written_directly.clone());
            tokio::task::spawn_blocking(move || write_chunks(temp, chunks, finished, &directly))
        };
        Ok(LocalUpload {
            root: self.root.clone(),
            destination: self.path(&expected),
            expected,
            queue,
            writer: Some(writer),
            finished,
            temp_path: Some(temp),
            written_directly,
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

/// An upload into a [`LocalArtifacts`]: each chunk is hashed as it is fed,
/// and a writer on the blocking pool takes it from a queue and writes it to
/// the temporary file, syncing as it goes (see `blob_writer`), while the
/// caller goes on receiving. Dropping the upload deletes its temporary file.
#[derive(Debug)]
pub struct LocalUpload {
    root: Arc<PathBuf>,
    destination: PathBuf,
    expected: ContentHash,
    /// The writer's queue.
    queue: ChunkQueue,
    writer: Option<JoinHandle<Result<TempPath, ArtifactError>>>,
    /// Set by `commit` before it closes the queue: the writer syncs only then.
    finished: Arc<AtomicBool>,
    /// The temporary file, deleted on drop until `commit` takes charge of it.
    temp_path: Option<PathBuf>,
    /// Bytes the writer sent straight to the device, past the page cache.
    written_directly: Arc<AtomicU64>,
}

impl LocalUpload {
    /// The count of bytes written with direct I/O, as the writer goes on.
    #[cfg(test)]
    pub(crate) fn written_directly(&self) -> Arc<AtomicU64> {
        self.written_directly.clone()
    }
}

/// A name for an upload's temporary file, unique among this process's
/// uploads (a counter) and other processes' (the process id and a random
/// number drawn once).
fn upload_name() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    static PROCESS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let process = PROCESS.get_or_init(|| std::collections::hash_map::RandomState::new().build_hasher().finish());
    format!(".upload-{}-{process:016x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
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
    fn feed(&mut self, chunk: Bytes) -> Result<(), ArtifactError> {
        self.queue.feed(chunk)
    }

    fn written(&self) -> u64 {
        self.queue.written()
    }

    async fn commit(mut self) -> Result<Stored, ArtifactError> {
        if self.writer.is_none() {
            return Err(ArtifactError::Discarded);
        }
        if !self.queue.is_open() {
            // A feed failed: report why the writer stopped, if it did.
            let stopped = self.writer.take().expect("checked above").await;
            self.temp_path = None;
            return match stopped {
                Ok(Err(error)) => Err(error),
                _ => Err(ArtifactError::Discarded),
            };
        }
        let (expected, actual) = (self.expected, self.queue.hash());
        if actual != expected {
            // Closed without `finished`, the writer stops unsynced and
            // deletes its file before `discard` returns.
            self.discard().await;
            return Err(ArtifactError::HashMismatch { expected, actual });
        }
        let writer = self.writer.take().expect("checked above");
        // From here the writer's `TempPath` deletes the file on failure.
        self.temp_path = None;
        self.finished.store(true, Ordering::Release);
        self.queue.close();
        let temp = writer.await.map_err(|join| ArtifactError::Io {
            action: "running the writer of",
            path: self.destination.clone(),
            source: io::Error::other(join),
        })??;
        tracing::debug!(
            bytes = self.queue.written(),
            direct = self.written_directly.load(Ordering::Relaxed),
            "upload written, the aligned part past the page cache"
        );
        let destination = std::mem::take(&mut self.destination);
        let root = self.root.clone();
        blocking(move || {
            if destination.try_exists().map_err(ArtifactError::io("inspecting", &destination))? {
                return Ok(Stored::AlreadyPresent);
            }
            publish(&root, temp, &destination)
        })
        .await
    }

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

/// Renames a synced temporary file to its blob path and makes the rename
/// durable by syncing the shard directory whose entries changed (made again,
/// and the root synced, if someone removed it).
fn publish(root: &Path, temp: TempPath, destination: &Path) -> Result<Stored, ArtifactError> {
    let shard = destination.parent().expect("blob paths have a shard directory");
    let temp = match temp.persist(destination) {
        Ok(()) => None,
        Err(e) if e.error.kind() == io::ErrorKind::NotFound && !shard.is_dir() => Some(e.path),
        Err(e) => return Err(ArtifactError::io("renaming into", destination)(e.error)),
    };
    if let Some(temp) = temp {
        std::fs::create_dir_all(shard).map_err(ArtifactError::io("creating", shard))?;
        sync_dir(root)?;
        temp.persist(destination).map_err(|e| ArtifactError::io("renaming into", destination)(e.error))?;
    }
    sync_dir(shard)?;
    Ok(Stored::Written)
}

/// Makes `dir`'s entries durable.
fn sync_dir(dir: &Path) -> Result<(), ArtifactError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(ArtifactError::io("syncing", dir))
}
