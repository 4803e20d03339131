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
