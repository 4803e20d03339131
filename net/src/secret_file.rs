//! Files that hold secrets (identity keys, TLS private keys): created with
//! mode 0600 from the first byte, never overwritten, and refused on load when
//! anyone but the owner may read them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

/// Permission bits for group and others: any of them set means someone other
/// than the owner can reach the secret.
const GROUP_OR_OTHER: u32 = 0o077;

/// Secret files are small; anything larger is not one of ours and is refused
/// before it is read into memory.
const MAX_SECRET_FILE_LEN: u64 = 64 * 1024;

/// Why a secret file could not be created or read.
#[derive(Debug, Error)]
pub enum SecretFileError {
    /// Reading, writing or inspecting the file failed at the operating-system level.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file (or its temporary sibling) being accessed.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// Creating the file would have replaced an existing one; secrets are never overwritten.
    #[error("{path} already exists; refusing to overwrite it. Move it away first if you really want a new one")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file's permissions let group or others access the secret.
    #[error(
        "{path} has mode {mode:04o}, so users other than its owner can read it; \
         run `chmod 600 {path}` (and consider the key compromised if others did read it)"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path names something other than a regular file, or a file too large to be a secret.
    #[error("{path} is not a secret file written by Starling ({reason}); point to the right file")]
    NotASecretFile {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SecretFileError + '_ {
    move |source| SecretFileError::Io { path: path.to_owned(), source }
}

/// Writes `contents` to a new file at `path`, readable and writable by its
/// owner only (0600 from creation, never widened).
///
/// The contents land in a temporary sibling first and appear at `path` in one
/// step (a hard link, which unlike `rename` refuses to replace an existing
/// file), so a crash never leaves a half-written secret at `path`, and two
/// processes racing to create the same file cannot both win.
pub(crate) fn create(path: &Path, contents: &[u8]) -> Result<(), SecretFileError> {
    if path.symlink_metadata().is_ok() {
        return Err(SecretFileError::AlreadyExists { path: path.to_owned() });
    }
    let temp = temporary_sibling(path);
    let result = write_new(&temp, contents).and_then(|()| match fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            Err(SecretFileError::AlreadyExists { path: path.to_owned() })
        }
        Err(source) => Err(SecretFileError::Io { path: path.to_owned(), source }),
    });
    // The temporary name is ours alone; failing to remove it only leaves litter.
    let _ = fs::remove_file(&temp);
    result?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        // Make the new directory entry durable; not every filesystem allows
        // syncing a directory, and the file itself is already on disk.
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn write_new(path: &Path, contents: &[u8]) -> Result<(), SecretFileError> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(io_error(path))?;
    file.write_all(contents).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// A name next to `path` that no other writer uses: same directory (so the
/// final link stays on one filesystem), hidden, unique per process and call.
fn temporary_sibling(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()))
}

/// Reads a secret file, refusing it unless only its owner can access it.
///
/// The permission check uses the opened file's own metadata, so the file
/// cannot be swapped between the check and the read.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, SecretFileError> {
    let mut file = File::open(path).map_err(io_error(path))?;
    let metadata = file.metadata().map_err(io_error(path))?;
    if !metadata.is_file() {
        return Err(SecretFileError::NotASecretFile { path: path.to_owned(), reason: "not a regular file" });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & GROUP_OR_OTHER != 0 {
        return Err(SecretFileError::TooOpen { path: path.to_owned(), mode });
    }
    if metadata.len() > MAX_SECRET_FILE_LEN {
        return Err(SecretFileError::NotASecretFile { path: path.to_owned(), reason: "larger than 64 KiB" });
    }
    let mut contents = Vec::with_capacity(metadata.len() as usize);
    file.read_to_end(&mut contents).map_err(io_error(path))?;
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_files_are_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        create(&path, b"one").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&path).unwrap(), b"one");

        let err = create(&path, b"two").unwrap_err();
        assert!(matches!(err, SecretFileError::AlreadyExists { .. }), "{err}");
        assert_eq!(read(&path).unwrap(), b"one", "the original survives");
        let litter: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(litter.len(), 1, "no temporary files are left behind");
    }

    #[test]
    fn readable_by_others_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        create(&path, b"key").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, SecretFileError::TooOpen { mode: 0o640, .. }), "{err}");
        assert!(err.to_string().contains(&format!("chmod 600 {}", path.display())), "{err}");
    }

    #[test]
    fn directories_are_not_secret_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, SecretFileError::NotASecretFile { .. }), "{err}");
    }
}
