//! The trust-on-first-use store: which certificate fingerprint each server
//! presented the first time this machine connected to it, like SSH's
//! `known_hosts`.
//!
//! One entry per line, `host:port fingerprint`; blank lines and lines
//! starting with `#` are ignored. Entries are only ever appended, each with a
//! single write, so concurrent writers never interleave inside a line; if two
//! entries for one server ever exist, the first one wins.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use thiserror::Error;

use crate::fingerprint::Fingerprint;

/// Why the known-hosts file could not be read or extended.
#[derive(Debug, Error)]
pub enum KnownHostsError {
    /// Reading or appending to the file failed at the operating-system level.
    #[error("cannot access the known-hosts file {path}: {source}")]
    Io {
        /// The known-hosts file.
        path: PathBuf,
        /// What the operating system reported.
        #[source]
        source: io::Error,
    },
    /// A line is not `host:port fingerprint`.
    #[error("line {line} of the known-hosts file {path} is malformed ({reason}); fix or delete that line")]
    Malformed {
        /// The known-hosts file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The server name cannot be written as a known-hosts key.
    #[error("cannot record `{host}` in a known-hosts file: a server name must be non-empty and free of whitespace")]
    InvalidHost {
        /// The refused `host:port` key.
        host: String,
    },
}

/// Serialises check-then-append within this process, so that concurrent
/// first connections to one server record it once.
static APPEND_LOCK: Mutex<()> = Mutex::new(());

/// A known-hosts file (it need not exist yet).
#[derive(Debug, Clone)]
pub struct KnownHosts {
    path: PathBuf,
}

impl KnownHosts {
    /// The store kept in the file at `path`; nothing is read until asked.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where the entries live.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fingerprint recorded for `host` (a `host:port` key), if any.
    pub fn lookup(&self, host: &str) -> Result<Option<Fingerprint>, KnownHostsError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(KnownHostsError::Io { path: self.path.clone(), source }),
        };
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |reason: &str| KnownHostsError::Malformed {
                path: self.path.clone(),
                line: index + 1,
                reason: reason.to_owned(),
            };
            let mut fields = line.split_whitespace();
            let (Some(entry_host), Some(fingerprint), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(malformed("expected exactly two fields: host:port and fingerprint"));
            };
            let fingerprint: Fingerprint = fingerprint.parse().map_err(|_| malformed("bad fingerprint"))?;
            if entry_host == host {
                return Ok(Some(fingerprint));
            }
        }
        Ok(None)
    }

    /// Records `fingerprint` for `host` unless an entry already exists, and
    /// returns the entry now on file: `fingerprint` itself, or the one another
    /// connection recorded first (which the caller must then compare).
    ///
    /// The line is appended with one write and flushed to disk before this
    /// returns, so an acknowledged first use survives a crash.
    pub fn remember(&self, host: &str, fingerprint: Fingerprint) -> Result<Fingerprint, KnownHostsError> {
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(KnownHostsError::InvalidHost { host: host.to_owned() });
        }
        // A poisoned lock only means another thread panicked mid-append; the
        // file is re-read below either way.
        let _guard = APPEND_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = self.lookup(host)? {
            return Ok(existing);
        }
        let io_error = |source| KnownHostsError::Io { path: self.path.clone(), source };
        if let Some(dir) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_error)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&self.path).map_err(io_error)?;
        // Start on a fresh line even if a previous writer died mid-line.
        let needs_newline = fs::read(&self.path).map_err(io_error)?.last().is_some_and(|&byte| byte != b'\n');
        let line = format!("{}{host} {fingerprint}\n", if needs_newline { "\n" } else { "" });
        file.write_all(line.as_bytes()).map_err(io_error)?;
        file.flush().map_err(io_error)?;
        file.sync_data().map_err(io_error)?;
        drop(file);
        // Another process may have appended between our lookup and our write:
        // the first entry in the file is the one that counts.
        Ok(self.lookup(host)?.unwrap_or(fingerprint))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn first_use_is_recorded_and_later_entries_do_not_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = KnownHosts::new(dir.path().join("sub").join("known_hosts"));
        let first = Fingerprint::of(b"first");
        let second = Fingerprint::of(b"second");
        assert_eq!(store.lookup("coord:4433").unwrap(), None, "a missing file knows no hosts");
        assert_eq!(store.remember("coord:4433", first).unwrap(), first);
        assert_eq!(store.remember("coord:4433", second).unwrap(), first, "the first entry stays");
        assert_eq!(store.remember("other:4433", second).unwrap(), second);
        assert_eq!(store.lookup("coord:4433").unwrap(), Some(first));
        assert_eq!(store.lookup("other:4433").unwrap(), Some(second));
        let text = fs::read_to_string(store.path()).unwrap();
        assert_eq!(text, format!("coord:4433 {first}\nother:4433 {second}\n"));
    }

    #[test]
    fn comments_blank_lines_and_a_torn_last_line_are_handled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let known = Fingerprint::of(b"known");
        fs::write(&path, format!("# pinned by hand\n\ncoord:4433 {known}")).unwrap();
        let store = KnownHosts::new(&path);
        assert_eq!(store.lookup("coord:4433").unwrap(), Some(known));
        let new = Fingerprint::of(b"new");
        assert_eq!(store.remember("new:1", new).unwrap(), new);
        assert_eq!(store.lookup("new:1").unwrap(), Some(new), "appended on its own line");
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        fs::write(&path, "# header\ncoord:4433 not-a-fingerprint\n").unwrap();
        let err = KnownHosts::new(&path).lookup("coord:4433").unwrap_err();
        assert!(matches!(err, KnownHostsError::Malformed { line: 2, .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn concurrent_first_uses_record_one_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(KnownHosts::new(dir.path().join("known_hosts")));
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let store = Arc::clone(&store);
                std::thread::spawn(move || store.remember("coord:4433", Fingerprint::of(&[i])).unwrap())
            })
            .collect();
        let winners: Vec<Fingerprint> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(winners.windows(2).all(|w| w[0] == w[1]), "every caller sees the same entry: {winners:?}");
        let text = fs::read_to_string(store.path()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(store.lookup("coord:4433").unwrap(), Some(winners[0]));
    }
}
