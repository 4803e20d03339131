//! Why a dataset could not be read.

use std::path::PathBuf;

use thiserror::Error;

/// A dataset that cannot be used, and exactly why: a truncated or corrupted
/// file is an error, never a silently shorter dataset.
///
/// I/O and gzip errors carry the underlying error as their `source()`, not
/// in their message, so error chains (`{:#}` with anyhow) print it once.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The IDX header is not one this reader accepts.
    #[error("{path}: bad IDX header: {reason}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The data does not have the length the header promises.
    #[error("{path}: the header promises {expected} bytes of data, the file holds {actual}")]
    Length {
        /// The file.
        path: PathBuf,
        /// Bytes the header's dimensions call for.
        expected: u64,
        /// Bytes present (at most `expected + 1`: reading stops there).
        actual: u64,
    },
    /// The gzip stream is corrupted or cut short.
    #[error("{path}: corrupted gzip data")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's reason.
        source: std::io::Error,
    },
    /// A file's SHA-256 is not the one expected.
    #[error("{path}: SHA-256 is {actual}, expected {expected}: the file is corrupted or not the right one")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The expected digest, hex.
        expected: String,
        /// The digest of the bytes read, hex.
        actual: String,
    },
    /// Images and labels do not fit together.
    #[error("{0}")]
    Mismatch(String),
    /// A label outside `0..classes`.
    #[error("{path}: label {label} at index {index} is not below {classes}")]
    Label {
        /// The file.
        path: PathBuf,
        /// Position of the sample.
        index: usize,
        /// The label found.
        label: i64,
        /// Number of classes.
        classes: usize,
    },
    /// A CSV file that does not follow the format.
    #[error("{path}:{line}: {reason}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong on that line.
        reason: String,
    },
    /// A download failed at the network level.
    #[error("download failed: {0}")]
    Network(String),
    /// No mirror served a file with the right content.
    #[error("could not fetch {file} from any mirror:\n  {}", failures.join("\n  "))]
    Download {
        /// The file wanted.
        file: &'static str,
        /// What went wrong with each mirror, in order.
        failures: Vec<String>,
    },
    /// A partitioner parameter is out of range.
    #[error("cannot partition: {0}")]
    Partition(String),
}
