//! A small append-only record of what a client already did, so a restart
//! does not do it twice.

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Keys (round numbers, submission ids) recorded one per line in a text
/// file. Loaded whole at open; each [`Journal::record`] appends and syncs a
/// line before returning, so what it acknowledged survives a crash.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    keys: HashSet<String>,
}

impl Journal {
    /// The journal at `path`, created (with its directory) if missing.
    /// Blank lines, and a torn last line without its newline, are ignored.
    pub fn open(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
            Err(error) => return Err(error),
        };
        let complete = text.rfind('\n').map_or("", |end| &text[..=end]);
        if complete.len() != text.len() {
            // Drop the torn line, so the next record does not join it.
            fs::write(&path, complete)?;
        }
        let keys = complete.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
        Ok(Self { path, keys })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `key` was recorded.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }

    /// Records `key` (a single line of text); recording it again is a no-op.
    pub fn record(&mut self, key: &str) -> io::Result<()> {
        if key.contains('\n') || key.trim().is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a journal key is one non-blank line"));
        }
        if self.keys.contains(key) {
            return Ok(());
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        file.write_all(format!("{key}\n").as_bytes())?;
        file.sync_data()?;
        self.keys.insert(key.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/task-1.submitted");
        let mut journal = Journal::open(&path).unwrap();
        assert!(!journal.contains("3"));
        journal.record("3").unwrap();
        journal.record("3").unwrap();
        journal.record("5").unwrap();
        let reopened = Journal::open(&path).unwrap();
        assert!(reopened.contains("3") && reopened.contains("5") && !reopened.contains("4"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "3\n5\n");
        assert!(journal.record("two\nlines").is_err());
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        fs::write(&path, "1\n2\n3").unwrap();
        let journal = Journal::open(&path).unwrap();
        assert!(journal.contains("2") && !journal.contains("3"));
        let mut journal = journal;
        journal.record("4").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n2\n4\n");
    }
}
