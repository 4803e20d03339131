//! [`LocalArtifacts`]: blobs as files in a directory.
//!
//! Layout: `<root>/ab/<hex>` for a hash whose hex starts `ab` (256 shard
//! directories, all made when the store opens; a million blobs are ~4,000 a
//! directory), and `<root>/tmp/` for uploads in progress. An upload writes a
//! temporary file there, checks length and hash, fsyncs it, renames it to
//! its final path (atomic: `tmp/` is in the same file system) and fsyncs the
//! shard directory, so a blob under its name is always whole and survives a
//! crash once committed.
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
/// the temporary file, syncing as it goes (see [`SYNC_EVERY`]), while the
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

/// Bytes written between two syncs while an upload streams in. Syncing as
/// the bytes arrive (while the network delivers the rest) leaves the final
/// sync only the last few megabytes: on ext4 a 6.65 MB file synced once at
/// the end waits ~9 ms, synced every 2 MiB ~0.1 ms at the end. Asking the
/// kernel to start write-back early (`sync_file_range`) only brought that
/// to ~7 ms: the final sync's wait is mostly the journal commit of the block
/// allocation, which only a sync does.
const SYNC_EVERY: u64 = 2 << 20;

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

/// Address and length alignment of a direct write. A page: what Linux asks
/// of `O_DIRECT` on every common file system and device.
const DIRECT_ALIGN: usize = 4096;

/// An upload's temporary file, open twice: for direct writes (`O_DIRECT`,
/// where the file system takes them) and through the page cache.
///
/// A chunk that starts on a page, at an offset on one, and is whole pages
/// long (every piece but the last of an upload arriving over the network:
/// see `starling_net::recv_blob_pieces`) goes straight from its buffer to
/// the device: no copy into the page cache, no pages to allocate, zero and
/// later write back, which on the 2-core development machine was as much
/// CPU as hashing the upload, taken from the network receive. Anything else
/// (the short last piece, a chunk of [`ArtifactUpload::write`]) goes through
/// the page cache, and so does everything after it, since its offsets are no
/// longer aligned. An update is read back a few times at most (its
/// validators' fetches, the aggregation), later: not worth keeping in memory
/// at the cost of the write.
#[derive(Debug)]
struct BlobFile {
    direct: Option<std::fs::File>,
    buffered: std::fs::File,
    written: u64,
    /// Of `written`, the bytes that went straight to the device.
    written_directly: u64,
}

impl BlobFile {
    /// Creates the file at `path` (mode 0600); where the file system does
    /// not take direct I/O (tmpfs on older kernels), every write is buffered.
    fn create(path: &Path) -> io::Result<Self> {
        let mut options = std::fs::File::options();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let buffered = options.open(path)?;
        Ok(Self { direct: open_direct(path), buffered, written: 0, written_directly: 0 })
    }

    /// Appends `chunk`: directly if it is aligned and the file system
    /// agrees, else through the page cache.
    fn append(&mut self, chunk: &[u8]) -> io::Result<()> {
        let aligned = chunk.as_ptr().align_offset(DIRECT_ALIGN) == 0
            && chunk.len().is_multiple_of(DIRECT_ALIGN)
            && self.written.is_multiple_of(DIRECT_ALIGN as u64);
        let sent_directly =
            aligned && self.direct.as_ref().is_some_and(|file| write_at(file, chunk, self.written).is_ok());
        if sent_directly {
            self.written_directly += chunk.len() as u64;
        } else {
            // Unaligned, or refused as direct I/O (`EINVAL`): from here on
            // through the page cache (a failure there is a real one).
            self.direct = None;
            write_at(&self.buffered, chunk, self.written)?;
        }
        self.written += chunk.len() as u64;
        Ok(())
    }

    /// Makes everything appended so far durable.
    fn sync(&self) -> io::Result<()> {
        self.buffered.sync_data()
    }
}

/// The file at `path` opened again for direct writes, if this platform and
/// file system have them.
fn open_direct(path: &Path) -> Option<std::fs::File> {
    #[cfg(target_os = "linux")]
    {
        let mut options = std::fs::File::options();
        options.write(true);
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_DIRECT);
        options.open(path).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// Writes all of `bytes` at `offset` of `file`.
fn write_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::Seek as _;
        let mut file = file;
        file.seek(io::SeekFrom::Start(offset))?;
        file.write_all(bytes)
    }
}

/// The writer: makes the temporary file `temp`, appends every queued chunk
/// to it (the queue hashes them on the caller's side; see [`BlobFile`] for
/// how), and every [`SYNC_EVERY`] bytes starts a sync on a thread of its
/// own, so that writing goes on meanwhile and the writer is not behind the
/// network when the last chunk comes (one sync at a time; a sync covers
/// everything written before it began). When the queue closes it syncs the
/// rest, unless `finished` says the upload was abandoned (then the
/// temporary file is deleted unsynced).
fn write_chunks(
    temp: PathBuf,
    mut queue: mpsc::UnboundedReceiver<Bytes>,
    finished: Arc<AtomicBool>,
    written_directly: &AtomicU64,
) -> Result<TempPath, ArtifactError> {
    let mut file = BlobFile::create(&temp).map_err(ArtifactError::io("creating", &temp))?;
    let temp = TempPath::try_from_path(&temp).map_err(ArtifactError::io("naming", &temp))?;
    let failed = |action| ArtifactError::io(action, temp.to_path_buf());
    let syncer = file.buffered.try_clone().map_err(failed("opening"))?;
    let syncer = &syncer;
    std::thread::scope(|scope| {
        let joined = |sync: std::thread::ScopedJoinHandle<'_, io::Result<()>>| {
            sync.join().expect("a sync does not panic").map_err(failed("syncing"))
        };
        let mut syncing: Option<std::thread::ScopedJoinHandle<'_, io::Result<()>>> = None;
        let mut synced_to = 0u64;
        while let Some(chunk) = queue.blocking_recv() {
            file.append(&chunk).map_err(failed("writing"))?;
            written_directly.store(file.written_directly, Ordering::Relaxed);
            if file.written - synced_to >= SYNC_EVERY && syncing.as_ref().is_none_or(|s| s.is_finished()) {
                if let Some(done) = syncing.take() {
                    joined(done)?;
                }
                syncing = Some(scope.spawn(move || syncer.sync_data()));
                synced_to = file.written;
            }
        }
        if !finished.load(Ordering::Acquire) {
            return Err(ArtifactError::Discarded);
        }
        // The last sync runs alongside one still under way rather than
        // after it: it waits for that one's pages either way, not for its
        // cache flush too. Each reports its own error.
        file.sync().map_err(failed("syncing"))?;
        syncing.map_or(Ok(()), joined)
    })?;
    Ok(temp)
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A page-aligned buffer of `len` bytes of `fill`.
    fn aligned(len: usize, fill: u8) -> bytes::Bytes {
        let mut buffer = vec![fill; len + DIRECT_ALIGN];
        let start = buffer.as_ptr().align_offset(DIRECT_ALIGN);
        buffer.truncate(start + len);
        bytes::Bytes::from(buffer).slice(start..)
    }

    /// Which path each chunk takes. Needs a file system that takes
    /// `O_DIRECT` for the temporary directory (ext4, xfs, btrfs; tmpfs since
    /// Linux 6.6): every machine Starling is built and tested on.
    #[test]
    fn aligned_chunks_go_direct_and_everything_after_an_unaligned_one_through_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let mut file = BlobFile::create(&path).unwrap();
        assert!(file.direct.is_some(), "the temporary directory's file system opens files for direct I/O");
        let page = aligned(256 << 10, 1);
        file.append(&page).unwrap();
        file.append(&aligned(2 * DIRECT_ALIGN, 2)).unwrap();
        assert_eq!((file.written, file.written_directly), (page.len() as u64 + 8192, page.len() as u64 + 8192));
        // One byte off a page in memory: buffered, and so is all that follows,
        // aligned or not (its offsets no longer are).
        let shifted = aligned(DIRECT_ALIGN + 1, 3).slice(1..);
        file.append(&shifted).unwrap();
        file.append(&aligned(DIRECT_ALIGN, 4)).unwrap();
        assert_eq!(file.written_directly, page.len() as u64 + 8192, "nothing direct after the unaligned chunk");
        assert!(file.direct.is_none());
        file.sync().unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len() as u64, file.written);
        let expected: Vec<u8> =
            [&page[..], &aligned(8192, 2)[..], &shifted[..], &aligned(DIRECT_ALIGN, 4)[..]].concat();
        assert!(back == expected, "the file holds every chunk in order");
    }

    /// A short chunk (an upload's last piece) is buffered even when aligned
    /// in memory: its length is not whole pages.
    #[test]
    fn a_short_last_chunk_is_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = BlobFile::create(&dir.path().join("blob")).unwrap();
        file.append(&aligned(DIRECT_ALIGN, 1)).unwrap();
        file.append(&aligned(77, 2)).unwrap();
        assert_eq!((file.written, file.written_directly), (DIRECT_ALIGN as u64 + 77, DIRECT_ALIGN as u64));
    }
}
