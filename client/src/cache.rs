//! Blobs (global models) cached on disk by content hash.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use starling_protocol::ContentHash;

/// A directory of blobs, each in a file named by its BLAKE3 hash.
///
/// Every read re-hashes the file: a corrupted or truncated file is deleted
/// and reported as absent, so the caller fetches it again. Writes go to a
/// temporary file that is renamed into place, so a crash never leaves a
/// half-written blob under a valid name.
#[derive(Debug, Clone)]
pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    /// A cache in `dir`, created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with `hash` lives (whether or not it is there).
    pub fn path(&self, hash: &ContentHash) -> PathBuf {
        self.dir.join(format!("{hash}.blob"))
    }

    /// The blob with `hash`, if cached and intact. A file whose content no
    /// longer hashes to its name is removed and `None` returned.
    pub fn get(&self, hash: &ContentHash) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(hash);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        if ContentHash::of(&bytes) == *hash {
            Ok(Some(bytes))
        } else {
            self.remove(hash)?;
            Ok(None)
        }
    }

    /// Stores `bytes` under `hash`. Refuses (with `InvalidData`) bytes that
    /// do not hash to `hash`, so nothing unchecked ever enters the cache.
    pub fn put(&self, hash: &ContentHash, bytes: &[u8]) -> io::Result<()> {
        let actual = ContentHash::of(bytes);
        if actual != *hash {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("refusing to cache a blob hashing to {actual} under {hash}"),
            ));
        }
        let path = self.path(hash);
        let temp = self.dir.join(format!(".{hash}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }

    /// Forgets the blob with `hash`; absent blobs are not an error.
    pub fn remove(&self, hash: &ContentHash) -> io::Result<()> {
        match fs::remove_file(self.path(hash)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_corruption_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path().join("models")).unwrap();
        let blob = b"a global model".to_vec();
        let hash = ContentHash::of(&blob);
        assert_eq!(cache.get(&hash).unwrap(), None);
        cache.put(&hash, &blob).unwrap();
        assert_eq!(cache.get(&hash).unwrap().as_deref(), Some(&blob[..]));

        fs::write(cache.path(&hash), b"a global modem").unwrap();
        assert_eq!(cache.get(&hash).unwrap(), None, "a corrupted file is not served");
        assert!(!cache.path(&hash).exists(), "and it is removed so it gets fetched again");
        cache.remove(&hash).unwrap();
    }

    #[test]
    fn bytes_under_the_wrong_hash_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::open(dir.path()).unwrap();
        let err = cache.put(&ContentHash::of(b"other"), b"bytes").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was written");
    }
}
