//! MNIST (LeCun et al. 1998) from a directory of the four IDX files.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::dataset::Dataset;
use super::error::DataError;
use super::idx::{IdxU8, read_idx_u8_hashed};

/// One of the four MNIST files: its name and the SHA-256 of its canonical
/// decompressed bytes (gzip files differ with the compressor; the content
/// does not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MnistFile {
    /// File name without `.gz`.
    pub name: &'static str,
    /// SHA-256 of the decompressed IDX bytes, hex.
    pub sha256: &'static str,
}

/// Training images.
pub const TRAIN_IMAGES: MnistFile = MnistFile {
    name: "train-images-idx3-ubyte",
    sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
};
/// Training labels.
pub const TRAIN_LABELS: MnistFile = MnistFile {
    name: "train-labels-idx1-ubyte",
    sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
};
/// Test images.
pub const TEST_IMAGES: MnistFile = MnistFile {
    name: "t10k-images-idx3-ubyte",
    sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
};
/// Test labels.
pub const TEST_LABELS: MnistFile = MnistFile {
    name: "t10k-labels-idx1-ubyte",
    sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
};

/// The MNIST training (60,000) and test (10,000) sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    /// 60,000 training digits.
    pub train: Dataset,
    /// 10,000 test digits.
    pub test: Dataset,
}

/// Whether to insist on the canonical MNIST bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Every file's decompressed bytes must have the canonical SHA-256.
    Canonical,
    /// Accept any well-formed IDX files of MNIST's shape (e.g. Fashion-MNIST,
    /// which uses the same names and layout).
    ShapeOnly,
}

impl Mnist {
    /// Loads MNIST from `dir`, which holds the four files, each either raw
    /// (`train-images-idx3-ubyte`) or gzip (`train-images-idx3-ubyte.gz`).
    ///
    /// With [`Verify::Canonical`], a file whose decompressed bytes are not
    /// MNIST's is an error naming it; either way a truncated or corrupted
    /// file, mismatched counts, images not 28×28 or labels above 9 are errors.
    pub fn load(dir: &Path, verify: Verify) -> Result<Self, DataError> {
        let train = pair(dir, TRAIN_IMAGES, TRAIN_LABELS, verify)?;
        let test = pair(dir, TEST_IMAGES, TEST_LABELS, verify)?;
        Ok(Self { train, test })
    }
}

/// The path of `file` in `dir`: the gzip file if present, else the raw one.
pub fn locate(dir: &Path, file: MnistFile) -> Result<PathBuf, DataError> {
    let gz = dir.join(format!("{}.gz", file.name));
    let raw = dir.join(file.name);
    if gz.is_file() {
        Ok(gz)
    } else if raw.is_file() {
        Ok(raw)
    } else {
        Err(DataError::Io {
            path: raw,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("neither {} nor its .gz is here", file.name),
            ),
        })
    }
}

fn read(dir: &Path, file: MnistFile, verify: Verify) -> Result<(PathBuf, IdxU8), DataError> {
    let path = locate(dir, file)?;
    let mut hasher = Sha256::new();
    let idx = read_idx_u8_hashed(&path, &mut hasher)?;
    if verify == Verify::Canonical {
        let actual = hex::encode(hasher.finalize());
        if actual != file.sha256 {
            return Err(DataError::Checksum { path, expected: file.sha256.to_owned(), actual });
        }
    }
    Ok((path, idx))
}

fn pair(dir: &Path, images: MnistFile, labels: MnistFile, verify: Verify) -> Result<Dataset, DataError> {
    let (ipath, images) = read(dir, images, verify)?;
    let (lpath, labels) = read(dir, labels, verify)?;
    if images.dims.len() != 3 || images.dims[1] != 28 || images.dims[2] != 28 {
        return Err(DataError::Mismatch(format!(
            "{}: images have dimensions {:?}, expected [n, 28, 28]",
            ipath.display(),
            images.dims
        )));
    }
    if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
        return Err(DataError::Mismatch(format!(
            "{} holds {:?} labels for the {} images of {}",
            lpath.display(),
            labels.dims,
            images.dims[0],
            ipath.display()
        )));
    }
    if let Some((index, &label)) = labels.data.iter().enumerate().find(|&(_, &l)| l >= 10) {
        return Err(DataError::Label { path: lpath, index, label: i64::from(label), classes: 10 });
    }
    Dataset::new(images.data, labels.data, [28, 28], 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::data::test_data::shared;

    #[test]
    fn loads_the_real_mnist_and_verifies_it() {
        let mnist = Mnist::load(&shared(), Verify::Canonical).unwrap();
        assert_eq!(mnist.train.len(), 60_000);
        assert_eq!(mnist.test.len(), 10_000);
        assert_eq!(mnist.train.image(0).len(), 784);
        // The first training digit is a 5, the first test digit a 7.
        assert_eq!((mnist.train.label(0), mnist.test.label(0)), (5, 7));
        let counts = mnist.train.class_counts();
        assert_eq!(counts.iter().sum::<usize>(), 60_000);
        assert_eq!(counts[1], 6742, "the number of 1s in MNIST's training set");
    }

    #[test]
    fn a_changed_file_fails_the_checksum_but_not_the_shape_check() {
        let dir = tempfile::tempdir().unwrap();
        for f in [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS] {
            let src = locate(&shared(), f).unwrap();
            std::fs::copy(&src, dir.path().join(src.file_name().unwrap())).unwrap();
        }
        // Rewrite the test labels raw, with one label changed (still < 10).
        let (_, mut labels) = read(dir.path(), TEST_LABELS, Verify::Canonical).unwrap();
        labels.data[0] = (labels.data[0] + 1) % 10;
        let mut raw = vec![0, 0, 8, 1];
        raw.extend_from_slice(&(labels.data.len() as u32).to_be_bytes());
        raw.extend_from_slice(&labels.data);
        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &raw).unwrap();
        let err = Mnist::load(dir.path(), Verify::Canonical).unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
        assert!(Mnist::load(dir.path(), Verify::ShapeOnly).is_ok());

        // A label of 10 is refused either way, by position.
        raw[8 + 3] = 10;
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &raw).unwrap();
        let err = Mnist::load(dir.path(), Verify::ShapeOnly).unwrap_err();
        assert!(matches!(err, DataError::Label { index: 3, label: 10, .. }), "{err}");

        std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
        let err = Mnist::load(dir.path(), Verify::ShapeOnly).unwrap_err();
        assert!(matches!(&err, DataError::Io { source, .. } if source.to_string().contains("neither")), "{err:?}");
    }
}
