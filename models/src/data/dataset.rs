//! A labelled image dataset held in memory.

use super::error::DataError;

/// Labelled samples: `len` images of `shape` bytes each (row-major), one
/// label per image, every label below `classes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    shape: [usize; 2],
    classes: usize,
}

impl Dataset {
    /// A dataset from raw parts, checked for consistency.
    pub fn new(images: Vec<u8>, labels: Vec<u8>, shape: [usize; 2], classes: usize) -> Result<Self, DataError> {
        let per = shape[0] * shape[1];
        if per == 0 || images.len() != labels.len() * per {
            return Err(DataError::Mismatch(format!(
                "{} image bytes for {} labels of {}×{} images",
                images.len(),
                labels.len(),
                shape[0],
                shape[1]
            )));
        }
        if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| usize::from(l) >= classes) {
            return Err(DataError::Mismatch(format!("label {label} at index {index} is not below {classes}")));
        }
        Ok(Self { images, labels, shape, classes })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image height and width.
    pub fn shape(&self) -> [usize; 2] {
        self.shape
    }

    /// Number of classes; every label is below it.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The pixels of sample `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let per = self.shape[0] * self.shape[1];
        &self.images[i * per..(i + 1) * per]
    }

    /// The label of sample `i`.
    pub fn label(&self, i: usize) -> u8 {
        self.labels[i]
    }

    /// All labels, in order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// How many samples each class has.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// The samples at `indices`, in that order, as a new dataset.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> Dataset {
        let per = self.shape[0] * self.shape[1];
        let mut images = Vec::with_capacity(indices.len() * per);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.image(i));
            labels.push(self.labels[i]);
        }
        Dataset { images, labels, shape: self.shape, classes: self.classes }
    }
}
