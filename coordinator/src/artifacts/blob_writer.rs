//! The writer of a local upload: its temporary file, written straight to the
//! device where a chunk allows it (direct I/O) and through the page cache
//! where not, and synced as it goes, on the blocking pool while the network
//! delivers the rest.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use tempfile::TempPath;
use tokio::sync::mpsc;

use super::ArtifactError;

/// Bytes written between two syncs while an upload streams in. Syncing as
/// the bytes arrive (while the network delivers the rest) leaves the final
/// sync only the last few megabytes: on ext4 a 6.65 MB file synced once at
/// the end waits ~9 ms, synced every 2 MiB ~0.1 ms at the end. Asking the
/// kernel to start write-back early (`sync_file_range`) only brought that
/// to ~7 ms: the final sync's wait is mostly the journal commit of the block
/// allocation, which only a sync does.
const SYNC_EVERY: u64 = 2 << 20;

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
pub(super) fn write_chunks(
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
