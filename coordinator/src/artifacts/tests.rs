//! Tests of [`LocalArtifacts`]: verified streaming writes, nothing left
//! behind by failures, idempotent and concurrent puts, reads after reopening.

use std::path::{Path, PathBuf};
use std::time::Duration;

use starling_protocol::ContentHash;
use tokio::io::AsyncReadExt;

use super::*;

/// Every file under `dir`, recursively, but the store's layout marker.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else if !path.ends_with(local::LAYOUT) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// `len` bytes of a simple pattern.
fn blob(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

async fn store() -> (tempfile::TempDir, LocalArtifacts) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalArtifacts::open(dir.path().join("artifacts")).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn a_streamed_upload_is_stored_under_its_sharded_hash() {
    let (_dir, store) = store().await;
    let bytes = blob(3 << 20, 1);
    let hash = ContentHash::of(&bytes);
    let mut upload = store.begin(hash, bytes.len() as u64).await.unwrap();
    for chunk in bytes.chunks(64 << 10) {
        upload.write(chunk).await.unwrap();
    }
    assert_eq!(upload.written(), bytes.len() as u64);
    assert_eq!(upload.commit().await.unwrap(), Stored::Written);

    let hex = hash.to_string();
    let path = store.root().join(&hex[..2]).join(&hex);
    assert_eq!(files(store.root()), [path]);
    assert!(store.contains(hash).await.unwrap());
    assert_eq!(store.len(hash).await.unwrap(), Some(bytes.len() as u64));
    assert_eq!(store.get(hash).await.unwrap(), bytes);
    let mut streamed = Vec::new();
    store.open(hash).await.unwrap().read_to_end(&mut streamed).await.unwrap();
    assert_eq!(streamed, bytes);
}

#[tokio::test]
async fn a_hash_mismatch_leaves_nothing_behind() {
    let (_dir, store) = store().await;
    let bytes = blob(100_000, 2);
    let claimed = ContentHash::of(b"something else");
    let mut upload = store.begin(claimed, 1 << 20).await.unwrap();
    upload.write(&bytes).await.unwrap();
    match upload.commit().await {
        Err(ArtifactError::HashMismatch { expected, actual }) => {
            assert_eq!((expected, actual), (claimed, ContentHash::of(&bytes)));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert_eq!(files(store.root()), Vec::<PathBuf>::new());
    assert!(!store.contains(claimed).await.unwrap());
    assert!(matches!(store.put(claimed, &bytes).await, Err(ArtifactError::HashMismatch { .. })));
    assert_eq!(files(store.root()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn an_oversized_upload_is_refused_at_once_and_leaves_nothing() {
    let (_dir, store) = store().await;
    let bytes = blob(1_000, 3);
    let hash = ContentHash::of(&bytes);
    let mut upload = store.begin(hash, 999).await.unwrap();
    upload.write(&bytes[..600]).await.unwrap();
    assert!(matches!(
        upload.write(&bytes[600..]).await,
        Err(ArtifactError::TooLarge { max_len: 999, received: 1_000 })
    ));
    // Refused and discarded before commit: the temporary file is gone already.
    assert_eq!(files(store.root()), Vec::<PathBuf>::new());
    assert!(matches!(upload.write(b"x").await, Err(ArtifactError::Discarded)));
    assert!(matches!(upload.commit().await, Err(ArtifactError::Discarded)));
    assert!(!store.contains(hash).await.unwrap());
    // Exactly at the limit is fine.
    let mut upload = store.begin(hash, 1_000).await.unwrap();
    upload.write(&bytes).await.unwrap();
    assert_eq!(upload.commit().await.unwrap(), Stored::Written);
}

#[tokio::test]
async fn fed_pieces_are_stored_like_written_ones_and_refused_alike() {
    let (_dir, store) = store().await;
    // Several sync intervals' worth, in uneven pieces.
    let bytes = blob(5 * 1024 * 1024 + 17, 9);
    let hash = ContentHash::of(&bytes);
    let mut upload = store.begin(hash, bytes.len() as u64).await.unwrap();
    for piece in bytes.chunks(300_001) {
        upload.feed(bytes::Bytes::copy_from_slice(piece)).unwrap();
    }
    assert_eq!(upload.written(), bytes.len() as u64);
    assert_eq!(upload.commit().await.unwrap(), Stored::Written);
    assert_eq!(store.get(hash).await.unwrap(), bytes);

    // Past the limit: refused at once, and the upload is over.
    let small = blob(100, 1);
    let mut upload = store.begin(ContentHash::of(&small), 99).await.unwrap();
    upload.feed(bytes::Bytes::copy_from_slice(&small[..50])).unwrap();
    let refused = upload.feed(bytes::Bytes::copy_from_slice(&small[50..]));
    assert!(matches!(refused, Err(ArtifactError::TooLarge { max_len: 99, received: 100 })), "{refused:?}");
    assert!(matches!(upload.feed(bytes::Bytes::from_static(b"x")), Err(ArtifactError::Discarded)));
    assert!(matches!(upload.commit().await, Err(ArtifactError::Discarded)));

    // Fed bytes that are not the announced ones: nothing is stored.
    let wrong = ContentHash::of(b"something else");
    let mut upload = store.begin(wrong, 100).await.unwrap();
    upload.feed(bytes::Bytes::copy_from_slice(&small)).unwrap();
    assert!(matches!(upload.commit().await, Err(ArtifactError::HashMismatch { .. })));
    assert!(!store.contains(wrong).await.unwrap());
    assert!(!store.contains(ContentHash::of(&small)).await.unwrap());
    let leftover: Vec<PathBuf> = files(store.root()).into_iter().filter(|f| !f.ends_with(hash.to_string())).collect();
    assert_eq!(leftover, Vec::<PathBuf>::new(), "only the stored blob remains");
}

#[tokio::test]
async fn aborted_and_dropped_uploads_leave_nothing() {
    let (_dir, store) = store().await;
    let bytes = blob(10_000, 4);
    let hash = ContentHash::of(&bytes);
    let mut upload = store.begin(hash, 1 << 20).await.unwrap();
    upload.write(&bytes).await.unwrap();
    // The writer makes the temporary file on its own thread.
    for _ in 0..500 {
        if !files(store.root()).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(files(store.root()).len(), 1, "the temporary file");
    upload.abort().await;
    assert_eq!(files(store.root()), Vec::<PathBuf>::new());
    let mut upload = store.begin(hash, 1 << 20).await.unwrap();
    upload.write(&bytes[..10]).await.unwrap();
    drop(upload);
    assert_eq!(files(store.root()), Vec::<PathBuf>::new());
    assert!(!store.contains(hash).await.unwrap());
}

#[tokio::test]
async fn putting_a_stored_hash_again_is_harmless() {
    let (_dir, store) = store().await;
    let bytes = blob(50_000, 5);
    let hash = ContentHash::of(&bytes);
    assert_eq!(store.put(hash, &bytes).await.unwrap(), Stored::Written);
    assert_eq!(store.put(hash, &bytes).await.unwrap(), Stored::AlreadyPresent);
    let mut upload = store.begin(hash, 1 << 20).await.unwrap();
    upload.write(&bytes).await.unwrap();
    assert_eq!(upload.commit().await.unwrap(), Stored::AlreadyPresent);
    assert_eq!(files(store.root()).len(), 1);
    assert_eq!(store.get(hash).await.unwrap(), bytes);
    // The empty blob is a blob like any other.
    let empty = ContentHash::of(b"");
    assert_eq!(store.put(empty, b"").await.unwrap(), Stored::Written);
    assert_eq!(store.get(empty).await.unwrap(), b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_of_one_hash_store_it_once() {
    let (_dir, store) = store().await;
    let bytes = blob(1 << 20, 6);
    let hash = ContentHash::of(&bytes);
    let puts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let bytes = bytes.clone();
            tokio::spawn(async move {
                let mut upload = store.begin(hash, bytes.len() as u64).await?;
                for chunk in bytes.chunks(100_000) {
                    upload.write(chunk).await?;
                    tokio::task::yield_now().await;
                }
                upload.commit().await
            })
        })
        .collect();
    for put in puts {
        put.await.unwrap().unwrap();
    }
    assert_eq!(files(store.root()).len(), 1);
    assert_eq!(store.get(hash).await.unwrap(), bytes);
}

#[tokio::test]
async fn blobs_are_read_back_after_reopening() {
    let (dir, store) = store().await;
    let blobs: Vec<_> = (0..5).map(|n| blob(1_000 * (n + 1), n as u8)).collect();
    for bytes in &blobs {
        store.put(ContentHash::of(bytes), bytes).await.unwrap();
    }
    drop(store);
    let store = LocalArtifacts::open(dir.path().join("artifacts")).await.unwrap();
    for bytes in &blobs {
        let hash = ContentHash::of(bytes);
        assert_eq!(store.get(hash).await.unwrap(), *bytes);
        let mut streamed = Vec::new();
        store.open(hash).await.unwrap().read_to_end(&mut streamed).await.unwrap();
        assert_eq!(streamed, *bytes);
    }
    let missing = ContentHash::of(b"never stored");
    assert!(matches!(store.get(missing).await, Err(ArtifactError::NotFound(h)) if h == missing));
    assert!(matches!(store.open(missing).await, Err(ArtifactError::NotFound(_))));
    assert_eq!(store.len(missing).await.unwrap(), None);
    assert!(!store.contains(missing).await.unwrap());
}

#[tokio::test]
async fn a_corrupted_blob_is_reported_not_returned() {
    let (_dir, store) = store().await;
    let bytes = blob(4_000, 7);
    let hash = ContentHash::of(&bytes);
    store.put(hash, &bytes).await.unwrap();
    let path = files(store.root()).pop().unwrap();
    let mut damaged = bytes.clone();
    damaged[17] ^= 1;
    std::fs::write(&path, &damaged).unwrap();
    assert!(matches!(store.get(hash).await, Err(ArtifactError::Corrupt { hash: h, .. }) if h == hash));
}

#[tokio::test]
async fn stale_uploads_left_by_a_crash_are_swept() {
    let (_dir, store) = store().await;
    let stale = store.root().join("tmp").join(".upload-crashed");
    std::fs::write(&stale, b"half an upload").unwrap();
    let hash = ContentHash::of(b"in progress");
    let mut live = store.begin(hash, 100).await.unwrap();
    live.write(b"in progress").await.unwrap();
    // Nothing is old enough yet.
    assert_eq!(store.remove_stale_uploads(Duration::from_secs(3_600)).await.unwrap(), 0);
    assert_eq!(store.remove_stale_uploads(Duration::ZERO).await.unwrap(), 2);
    assert_eq!(files(store.root()), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_store_opens_with_every_shard_and_says_its_layout() {
    let (_dir, store) = store().await;
    let shards: Vec<String> = std::fs::read_dir(store.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.len() == 2)
        .collect();
    assert_eq!(shards.len(), 256);
    assert!(shards.iter().all(|name| u8::from_str_radix(name, 16).is_ok()));
    assert_eq!(std::fs::read_to_string(store.root().join(local::LAYOUT)).unwrap(), local::LAYOUT_TEXT);
}

#[tokio::test]
async fn blobs_of_the_two_level_layout_are_moved_into_their_shard() {
    // A store as earlier versions left it: `ab/cd/<hex>`, no layout marker.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("artifacts");
    let blobs: Vec<_> = (0..20).map(|n| blob(500 + n, n as u8)).collect();
    for bytes in &blobs {
        let hex = ContentHash::of(bytes).to_string();
        let legacy = root.join(&hex[..2]).join(&hex[2..4]);
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::write(legacy.join(&hex), bytes).unwrap();
    }
    std::fs::create_dir_all(root.join("tmp")).unwrap();

    let store = LocalArtifacts::open(&root).await.unwrap();
    let mut expected: Vec<PathBuf> = blobs
        .iter()
        .map(|bytes| {
            let hex = ContentHash::of(bytes).to_string();
            root.join(&hex[..2]).join(hex)
        })
        .collect();
    expected.sort();
    assert_eq!(files(&root), expected, "every blob moved up a level, no directory of the old layout left");
    for bytes in &blobs {
        assert_eq!(store.get(ContentHash::of(bytes)).await.unwrap(), *bytes);
    }
    // Opening again finds the marker and leaves everything as it is.
    drop(store);
    let store = LocalArtifacts::open(&root).await.unwrap();
    assert_eq!(files(&root), expected);
    assert!(store.contains(ContentHash::of(&blobs[0])).await.unwrap());
}

#[tokio::test]
async fn a_removed_shard_is_made_again_when_a_blob_needs_it() {
    let (_dir, store) = store().await;
    let bytes = blob(2_000, 8);
    let hash = ContentHash::of(&bytes);
    let shard = store.root().join(&hash.to_string()[..2]);
    std::fs::remove_dir(&shard).unwrap();
    let mut upload = store.begin(hash, 2_000).await.unwrap();
    upload.write(&bytes).await.unwrap();
    assert_eq!(upload.commit().await.unwrap(), Stored::Written);
    assert_eq!(store.get(hash).await.unwrap(), bytes);
    assert_eq!(files(&shard), [shard.join(hash.to_string())]);
}

#[tokio::test]
async fn a_writer_that_cannot_make_its_file_says_so_at_commit() {
    let (_dir, store) = store().await;
    std::fs::remove_dir(store.root().join("tmp")).unwrap();
    let bytes = blob(1_000, 1);
    let hash = ContentHash::of(&bytes);
    let mut upload = store.begin(hash, 1_000).await.unwrap();
    // Queued, or refused if the writer has stopped already.
    let _ = upload.write(&bytes).await;
    match upload.commit().await {
        Err(ArtifactError::Io { action: "creating", .. }) => {}
        other => panic!("expected the writer's error, got {other:?}"),
    }
    assert!(!store.contains(hash).await.unwrap());
}

/// `bytes` in a buffer that starts on a page, as the network hands pieces
/// out (`starling_net::recv_blob_pieces`), so the store may write it with
/// direct I/O.
fn page_aligned(bytes: &[u8]) -> bytes::Bytes {
    let mut buffer = vec![0u8; bytes.len() + 4096];
    let start = buffer.as_ptr().align_offset(4096);
    buffer[start..start + bytes.len()].copy_from_slice(bytes);
    let piece = bytes::Bytes::from(buffer).slice(start..start + bytes.len());
    assert_eq!(piece.as_ptr().align_offset(4096), 0);
    piece
}

/// Direct writes of aligned pieces, then page-cache writes from the first
/// piece that is not (misaligned in memory, or short), in one file; returns
/// how many bytes went directly.
async fn aligned_and_unaligned_pieces_round_trip(store: &LocalArtifacts) -> u64 {
    let bytes = blob(2 * (256 << 10) + 8192 + 4096 + 77, 11);
    let hash = ContentHash::of(&bytes);
    let mut upload = store.begin(hash, bytes.len() as u64).await.unwrap();
    let directly = upload.written_directly();
    let (a, rest) = bytes.split_at(256 << 10);
    let (b, rest) = rest.split_at(256 << 10);
    let (misaligned, rest) = rest.split_at(8192);
    let (after, tail) = rest.split_at(4096);
    upload.feed(page_aligned(a)).unwrap();
    upload.feed(page_aligned(b)).unwrap();
    // Whole pages but one byte off a page boundary in memory.
    let mut shifted = vec![0u8; misaligned.len() + 1];
    shifted[1..].copy_from_slice(misaligned);
    upload.feed(bytes::Bytes::from(shifted).slice(1..)).unwrap();
    upload.feed(page_aligned(after)).unwrap();
    upload.feed(bytes::Bytes::copy_from_slice(tail)).unwrap();
    assert_eq!(upload.commit().await.unwrap(), Stored::Written);
    assert_eq!(store.get(hash).await.unwrap(), bytes);
    directly.load(std::sync::atomic::Ordering::Relaxed)
}

/// The two aligned pieces went straight to the device, nothing after the
/// misaligned one did. Needs a file system that takes `O_DIRECT` under the
/// temporary directory (ext4, xfs, btrfs, tmpfs since Linux 6.6).
#[cfg(target_os = "linux")]
#[tokio::test]
async fn page_aligned_pieces_are_written_directly_and_the_rest_buffered() {
    let (_dir, store) = store().await;
    assert_eq!(aligned_and_unaligned_pieces_round_trip(&store).await, 2 * (256 << 10));
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_store_on_tmpfs_works_whether_or_not_it_takes_direct_io() {
    // tmpfs refused O_DIRECT before Linux 6.6: every write is then buffered.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let store = LocalArtifacts::open(dir.path().join("artifacts")).await.unwrap();
    let directly = aligned_and_unaligned_pieces_round_trip(&store).await;
    assert!(directly == 0 || directly == 2 * (256 << 10), "all aligned pieces or none: {directly}");
}
