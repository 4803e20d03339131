//! Fetching MNIST for real users: from the first mirror that serves the
//! right bytes, verified by SHA-256 before anything is kept.
//!
//! Each file is streamed into a temporary file in the cache directory with a
//! size cap, then decompressed and hashed; only a file whose content has
//! MNIST's canonical SHA-256 is renamed into place. A truncated, corrupted
//! or wrong download is deleted and the next mirror tried, so the cache
//! never holds a partial dataset.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::DataError;
use super::idx::read_idx_u8_hashed;
use super::mnist::{MnistFile, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};

/// Public mirrors of the gzip files, tried in order.
pub const MNIST_MIRRORS: &[&str] =
    &["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"];

/// Refuse downloads above this size (64 MiB; the largest MNIST file is 9.9 MB).
const MAX_DOWNLOAD: u64 = 64 << 20;

/// Makes sure `cache` holds the four MNIST files with their canonical
/// content, downloading what is missing or wrong from `mirrors`
/// (base URLs ending in `/`). Returns `cache`, ready for
/// [`super::Mnist::load`].
///
/// Files already in the cache are verified, not trusted. On failure, the
/// error lists what each mirror did wrong, and no unverified file is left
/// behind.
pub fn ensure_mnist(cache: &Path, mirrors: &[&str]) -> Result<PathBuf, DataError> {
    std::fs::create_dir_all(cache).map_err(|source| DataError::Io { path: cache.to_owned(), source })?;
    for file in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
        let target = cache.join(format!("{}.gz", file.name));
        if verified(&target, file).is_ok() {
            continue;
        }
        let mut failures = Vec::new();
        let mut done = false;
        for mirror in mirrors {
            let url = format!("{mirror}{}.gz", file.name);
            match fetch_verified(&url, &target, file) {
                Ok(()) => {
                    done = true;
                    break;
                }
                Err(e) => failures.push(format!("{url}: {e}")),
            }
        }
        if !done {
            return Err(DataError::Download { file: file.name, failures });
        }
    }
    Ok(cache.to_owned())
}

/// Checks that `path` decompresses to `file`'s canonical bytes.
fn verified(path: &Path, file: MnistFile) -> Result<(), DataError> {
    let mut hasher = Sha256::new();
    read_idx_u8_hashed(path, &mut hasher)?;
    let actual = hex::encode(hasher.finalize());
    if actual == file.sha256 {
        Ok(())
    } else {
        Err(DataError::Checksum { path: path.to_owned(), expected: file.sha256.to_owned(), actual })
    }
}

fn fetch_verified(url: &str, target: &Path, file: MnistFile) -> Result<(), DataError> {
    let partial = target.with_extension("gz.partial");
    let result = fetch(url, &partial).and_then(|()| verified(&partial, file));
    match result {
        Ok(()) => std::fs::rename(&partial, target).map_err(|source| DataError::Io { path: target.to_owned(), source }),
        Err(e) => {
            std::fs::remove_file(&partial).ok();
            Err(e)
        }
    }
}

fn fetch(url: &str, to: &Path) -> Result<(), DataError> {
    let net = |e: ureq::Error| DataError::Network(e.to_string());
    let response = ureq::get(url).call().map_err(net)?;
    let mut body = response.into_body().into_reader().take(MAX_DOWNLOAD + 1);
    let io = |source| DataError::Io { path: to.to_owned(), source };
    let mut out = File::create(to).map_err(io)?;
    let copied = std::io::copy(&mut body, &mut out).map_err(|e| DataError::Network(e.to_string()))?;
    if copied > MAX_DOWNLOAD {
        return Err(DataError::Network(format!("more than {MAX_DOWNLOAD} bytes; refusing")));
    }
    out.flush().map_err(io)?;
    out.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::thread;

    use super::*;
    use crate::data::mnist::locate;

    use crate::data::test_data::shared;

    /// A tiny HTTP/1.1 server on loopback serving the shared MNIST files
    /// under `/good/`, byte-flipped under `/corrupt/`, cut in half under
    /// `/truncated/`, and 404 elsewhere. Serves `requests` requests, then stops.
    fn serve(requests: usize) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                reader.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (kind, name) = path.trim_start_matches('/').split_once('/').unwrap_or(("", ""));
                let file = shared().join(name);
                let body = match (kind, std::fs::read(&file)) {
                    ("good", Ok(b)) => Some(b),
                    ("corrupt", Ok(mut b)) => {
                        let mid = b.len() / 2;
                        b[mid] ^= 0x5a;
                        Some(b)
                    }
                    ("truncated", Ok(b)) => Some(b[..b.len() / 2].to_vec()),
                    _ => None,
                };
                let response = match body {
                    Some(b) => {
                        let mut r =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", b.len())
                                .into_bytes();
                        r.extend_from_slice(&b);
                        r
                    }
                    None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                };
                stream.write_all(&response).ok();
            }
        });
        base
    }

    #[test]
    fn falls_back_past_bad_mirrors_and_keeps_only_verified_files() {
        let base = serve(12);
        let cache = tempfile::tempdir().unwrap();
        let mirrors = [format!("{base}missing/"), format!("{base}corrupt/"), format!("{base}good/")];
        let mirrors: Vec<&str> = mirrors.iter().map(String::as_str).collect();
        let dir = ensure_mnist(cache.path(), &mirrors).unwrap();
        let mnist = crate::data::Mnist::load(&dir, crate::data::Verify::Canonical).unwrap();
        assert_eq!(mnist.train.len(), 60_000);
        let left: Vec<_> = std::fs::read_dir(cache.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 4, "only the four verified files remain: {left:?}");
        // A second call finds everything verified and downloads nothing
        // (the server has served all its 12 requests by now).
        ensure_mnist(cache.path(), &[]).unwrap();
    }

    #[test]
    fn truncated_or_corrupt_downloads_leave_nothing_behind() {
        let base = serve(2);
        let cache = tempfile::tempdir().unwrap();
        let mirrors = [format!("{base}truncated/"), format!("{base}corrupt/")];
        let mirrors: Vec<&str> = mirrors.iter().map(String::as_str).collect();
        let err = ensure_mnist(cache.path(), &mirrors).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("truncated/train-images-idx3-ubyte.gz"), "{text}");
        assert!(text.contains("corrupt/train-images-idx3-ubyte.gz"), "{text}");
        assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0, "no partial file kept");
        // And the shared files themselves verify.
        assert!(verified(&locate(&shared(), TRAIN_LABELS).unwrap(), TRAIN_LABELS).is_ok());
    }
}
