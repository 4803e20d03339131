//! [`MemoryArtifacts`]: blobs in a map in memory, for tests and
//! simulations that run a coordinator without a disk. Nothing survives the
//! process; the rules are the other stores' (a blob is visible only whole,
//! under the hash its bytes have; storing a hash again is harmless).

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use starling_protocol::ContentHash;

use super::{ArtifactError, ArtifactStore, ArtifactUpload, Stored};

/// A store of blobs in memory. Cheap to clone: clones share the blobs.
#[derive(Debug, Clone, Default)]
pub struct MemoryArtifacts {
    blobs: Arc<Mutex<HashMap<ContentHash, Bytes>>>,
}

impl MemoryArtifacts {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn stored(&self, hash: ContentHash) -> Option<Bytes> {
        self.blobs.lock().expect("blob map lock").get(&hash).cloned()
    }

    fn insert(&self, hash: ContentHash, bytes: Bytes) -> Stored {
        let mut blobs = self.blobs.lock().expect("blob map lock");
        if blobs.contains_key(&hash) {
            return Stored::AlreadyPresent;
        }
        blobs.insert(hash, bytes);
        Stored::Written
    }
}

impl ArtifactStore for MemoryArtifacts {
    type Upload = MemoryUpload;
    type Reader = Cursor<Bytes>;

    async fn begin(&self, expected: ContentHash, max_len: u64) -> Result<MemoryUpload, ArtifactError> {
        Ok(MemoryUpload {
            store: self.clone(),
            expected,
            max_len,
            bytes: Some(BytesMut::new()),
            hasher: blake3::Hasher::new(),
        })
    }

    async fn put(&self, hash: ContentHash, bytes: &[u8]) -> Result<Stored, ArtifactError> {
        let actual = ContentHash::of(bytes);
        if actual != hash {
            return Err(ArtifactError::HashMismatch { expected: hash, actual });
        }
        Ok(self.insert(hash, Bytes::copy_from_slice(bytes)))
    }

    async fn get(&self, hash: ContentHash) -> Result<Vec<u8>, ArtifactError> {
        self.stored(hash).map(|bytes| bytes.to_vec()).ok_or(ArtifactError::NotFound(hash))
    }

    async fn open(&self, hash: ContentHash) -> Result<Cursor<Bytes>, ArtifactError> {
        self.stored(hash).map(Cursor::new).ok_or(ArtifactError::NotFound(hash))
    }

    async fn contains(&self, hash: ContentHash) -> Result<bool, ArtifactError> {
        Ok(self.stored(hash).is_some())
    }

    async fn len(&self, hash: ContentHash) -> Result<Option<u64>, ArtifactError> {
        Ok(self.stored(hash).map(|bytes| bytes.len() as u64))
    }
}

/// An upload into a [`MemoryArtifacts`], gathered and hashed as it comes.
#[derive(Debug)]
pub struct MemoryUpload {
    store: MemoryArtifacts,
    expected: ContentHash,
    max_len: u64,
    /// `None` once discarded.
    bytes: Option<BytesMut>,
    hasher: blake3::Hasher,
}

impl ArtifactUpload for MemoryUpload {
    fn feed(&mut self, chunk: Bytes) -> Result<(), ArtifactError> {
        let Some(bytes) = &mut self.bytes else { return Err(ArtifactError::Discarded) };
        let received = (bytes.len() as u64).saturating_add(chunk.len() as u64);
        if received > self.max_len {
            self.bytes = None;
            return Err(ArtifactError::TooLarge { max_len: self.max_len, received });
        }
        self.hasher.update(&chunk);
        bytes.extend_from_slice(&chunk);
        Ok(())
    }

    fn written(&self) -> u64 {
        self.bytes.as_ref().map_or(0, |bytes| bytes.len() as u64)
    }

    async fn commit(self) -> Result<Stored, ArtifactError> {
        let bytes = self.bytes.ok_or(ArtifactError::Discarded)?;
        let actual = ContentHash::from_bytes(*self.hasher.finalize().as_bytes());
        if actual != self.expected {
            return Err(ArtifactError::HashMismatch { expected: self.expected, actual });
        }
        Ok(self.store.insert(actual, bytes.freeze()))
    }

    async fn discard(&mut self) {
        self.bytes = None;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn blobs_are_stored_whole_under_their_hash_once() {
        let store = MemoryArtifacts::new();
        let bytes = b"a model".to_vec();
        let hash = ContentHash::of(&bytes);
        let mut upload = store.begin(hash, 100).await.unwrap();
        upload.write(&bytes[..3]).await.unwrap();
        assert!(!store.contains(hash).await.unwrap(), "nothing is visible before the commit");
        upload.feed(Bytes::copy_from_slice(&bytes[3..])).unwrap();
        assert_eq!(upload.written(), bytes.len() as u64);
        assert_eq!(upload.commit().await.unwrap(), Stored::Written);
        assert_eq!(store.get(hash).await.unwrap(), bytes);
        assert_eq!(store.len(hash).await.unwrap(), Some(bytes.len() as u64));
        let mut read = Vec::new();
        store.open(hash).await.unwrap().read_to_end(&mut read).await.unwrap();
        assert_eq!(read, bytes);
        assert_eq!(store.put(hash, &bytes).await.unwrap(), Stored::AlreadyPresent);
    }

    #[tokio::test]
    async fn wrong_hashes_oversized_and_discarded_uploads_store_nothing() {
        let store = MemoryArtifacts::new();
        let hash = ContentHash::of(b"expected");
        let mut wrong = store.begin(hash, 100).await.unwrap();
        wrong.write(b"something else").await.unwrap();
        assert!(matches!(wrong.commit().await, Err(ArtifactError::HashMismatch { .. })));
        assert!(matches!(store.put(hash, b"other").await, Err(ArtifactError::HashMismatch { .. })));

        let mut large = store.begin(hash, 4).await.unwrap();
        assert!(matches!(large.write(b"expected").await, Err(ArtifactError::TooLarge { max_len: 4, received: 8 })));
        assert!(matches!(large.write(b"e").await, Err(ArtifactError::Discarded)));
        assert!(matches!(large.commit().await, Err(ArtifactError::Discarded)));

        let mut aborted = store.begin(hash, 100).await.unwrap();
        aborted.write(b"expected").await.unwrap();
        aborted.abort().await;
        assert!(!store.contains(hash).await.unwrap());
        assert!(matches!(store.get(hash).await, Err(ArtifactError::NotFound(_))));
    }
}
