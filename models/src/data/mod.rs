//! Datasets: the IDX format, MNIST, CSV files trainers bring, and seeded
//! partitioners for simulation.

mod csv;
mod dataset;
pub mod download;
mod error;
mod idx;
pub mod mnist;
pub mod partition;

pub use csv::read_csv;
pub use dataset::Dataset;
pub use error::DataError;
pub use idx::{IdxU8, MAX_IDX_BYTES, read_idx_u8, read_idx_u8_hashed};
pub use mnist::{Mnist, Verify};

#[cfg(test)]
pub(crate) mod test_data {
    use std::path::{Path, PathBuf};

    /// The real MNIST files: `STARLING_DATA`, else `../shared/datasets/mnist`
    /// beside the repository.
    pub(crate) fn shared() -> PathBuf {
        std::env::var_os("STARLING_DATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"))
    }
}
