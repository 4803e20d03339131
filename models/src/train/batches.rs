//! Samples as model inputs: pixels scaled to `[0, 1]`, labels as class ids.

use burn::prelude::*;

use crate::data::Dataset;

/// A dataset ready for a model: every image flattened and scaled to
/// `[0, 1]` once, so epochs and rounds only gather rows.
#[derive(Debug, Clone)]
pub struct Features {
    values: Vec<f32>,
    labels: Vec<i64>,
    features: usize,
    classes: usize,
}

impl Features {
    /// `data`'s images as rows of `height × width` values in `[0, 1]`.
    pub fn new(data: &Dataset) -> Self {
        let [height, width] = data.shape();
        let features = height * width;
        let mut values = Vec::with_capacity(data.len() * features);
        for i in 0..data.len() {
            values.extend(data.image(i).iter().map(|&p| f32::from(p) / 255.0));
        }
        let labels = data.labels().iter().map(|&l| i64::from(l)).collect();
        Self { values, labels, features, classes: data.classes() }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per sample.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Number of classes the labels come from.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The label of every sample, in order.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// Samples `indices` as inputs `[n, features]` and labels `[n]` on `device`.
    pub(crate) fn gather(&self, indices: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let mut values = Vec::with_capacity(indices.len() * self.features);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            values.extend_from_slice(&self.values[i * self.features..(i + 1) * self.features]);
            labels.push(self.labels[i]);
        }
        self.tensors(values, labels, device)
    }

    /// Samples `start..end` as inputs and labels on `device`.
    pub(crate) fn range(&self, start: usize, end: usize, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let values = self.values[start * self.features..end * self.features].to_vec();
        self.tensors(values, self.labels[start..end].to_vec(), device)
    }

    fn tensors(&self, values: Vec<f32>, labels: Vec<i64>, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let n = labels.len();
        (
            Tensor::from_data(TensorData::new(values, [n, self.features]), device),
            Tensor::from_data(TensorData::new(labels, [n]), device),
        )
    }
}
