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
use std::time::{Duration, SystemTime};

use starling_protocol::ContentHash;
use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

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
        Ok(LocalUpload {
            root: self.root.clone(),
            destination: self.path(&expected),
            expected,
            max_len,
            written: 0,
            hasher: blake3::Hasher::new(),
            open: Some(Open { file: tokio::fs::File::from_std(file), temp }),
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

/// An upload into a [`LocalArtifacts`]. Dropping it deletes its temporary
/// file (a quick blocking `unlink`).
#[derive(Debug)]
pub struct LocalUpload {
    root: Arc<PathBuf>,
    destination: PathBuf,
    expected: ContentHash,
    max_len: u64,
    written: u64,
    hasher: blake3::Hasher,
    /// `None` once the upload failed.
    open: Option<Open>,
}

/// The temporary file of an upload; deleted when `temp` is dropped.
#[derive(Debug)]
struct Open {
    file: tokio::fs::File,
    temp: TempPath,
}

impl LocalUpload {
    /// Discards the temporary file off the async threads.
    async fn discard(&mut self) {
        if let Some(open) = self.open.take() {
            // Dropping `temp` deletes the file; nothing to report if that
            // fails (the sweep of stale uploads catches it).
            let _ = tokio::task::spawn_blocking(move || drop(open)).await;
        }
    }
}

impl ArtifactUpload for LocalUpload {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), ArtifactError> {
        if self.open.is_none() {
            return Err(ArtifactError::Discarded);
        }
        let received = self.written.saturating_add(chunk.len() as u64);
        if received > self.max_len {
            self.discard().await;
            return Err(ArtifactError::TooLarge { max_len: self.max_len, received });
        }
        let Some(open) = self.open.as_mut() else { return Err(ArtifactError::Discarded) };
        if let Err(e) = open.file.write_all(chunk).await {
            let error = ArtifactError::io("writing", open.temp.to_path_buf())(e);
            self.discard().await;
            return Err(error);
        }
        self.hasher.update(chunk);
        self.written = received;
        Ok(())
    }

    fn written(&self) -> u64 {
        self.written
    }

    async fn commit(mut self) -> Result<Stored, ArtifactError> {
        if self.open.is_none() {
            return Err(ArtifactError::Discarded);
        }
        let actual = ContentHash::from_bytes(*self.hasher.finalize().as_bytes());
        if actual != self.expected {
            self.discard().await;
            return Err(ArtifactError::HashMismatch { expected: self.expected, actual });
        }
        let Some(Open { mut file, temp }) = self.open.take() else { return Err(ArtifactError::Discarded) };
        let destination = std::mem::take(&mut self.destination);
        if tokio::fs::try_exists(&destination).await.map_err(ArtifactError::io("inspecting", &destination))? {
            let _ = tokio::task::spawn_blocking(move || drop((file, temp))).await;
            return Ok(Stored::AlreadyPresent);
        }
        file.flush().await.map_err(ArtifactError::io("writing", temp.to_path_buf()))?;
        let file = file.into_std().await;
        let root = self.root.clone();
        blocking(move || {
            file.sync_all().map_err(ArtifactError::io("syncing", temp.to_path_buf()))?;
            drop(file);
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
