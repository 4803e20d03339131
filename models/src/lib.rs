//! Starling's models and data.
//!
//! So far: [`data`] (IDX and CSV readers, MNIST with checksum verification,
//! seeded partitioners). The burn model zoo and local training build on it.

pub mod data;
