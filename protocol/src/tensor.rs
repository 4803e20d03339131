//! Named `f32` tensors: the declared shape of a model's tensors, and their values.

use serde::{Deserialize, Serialize};

/// The name and shape of one of a model's tensors, as a task declares it.
///
/// A shape of `[]` is a scalar (one element). Shapes are row-major, as in
/// safetensors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Unique name within the model, e.g. `"conv1.weight"`.
    pub name: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
}

impl TensorSpec {
    /// A spec for tensor `name` of the given shape.
    pub fn new(name: impl Into<String>, shape: impl Into<Vec<usize>>) -> Self {
        Self { name: name.into(), shape: shape.into() }
    }

    /// Number of elements, or `None` if the product overflows `usize`.
    pub fn element_count(&self) -> Option<usize> {
        element_count(&self.shape)
    }
}

/// Product of the dimensions, or `None` on overflow. `[]` has one element.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// An owned, named `f32` tensor: what the payload decoder returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    /// The tensor's name.
    pub name: String,
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in row-major order; `values.len()` is the product of `shape`.
    pub values: Vec<f32>,
}

impl NamedTensor {
    /// Bundles a name, a shape and values. Nothing is checked here; the
    /// payload encoder checks that the values fit the shape.
    pub fn new(name: impl Into<String>, shape: impl Into<Vec<usize>>, values: Vec<f32>) -> Self {
        Self { name: name.into(), shape: shape.into(), values }
    }

    /// A borrowed view, as the payload encoder takes it.
    pub fn view(&self) -> TensorRef<'_> {
        TensorRef { name: &self.name, shape: &self.shape, values: &self.values }
    }

    /// The tensor's name and shape.
    pub fn spec(&self) -> TensorSpec {
        TensorSpec { name: self.name.clone(), shape: self.shape.clone() }
    }
}

/// A borrowed, named `f32` tensor: what the payload encoder takes, so callers
/// holding flat buffers need not copy them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorRef<'a> {
    /// The tensor's name.
    pub name: &'a str,
    /// Dimensions, outermost first.
    pub shape: &'a [usize],
    /// Values in row-major order.
    pub values: &'a [f32],
}

impl<'a> TensorRef<'a> {
    /// Bundles a name, a shape and values.
    pub fn new(name: &'a str, shape: &'a [usize], values: &'a [f32]) -> Self {
        Self { name, shape, values }
    }
}

impl<'a> From<&'a NamedTensor> for TensorRef<'a> {
    fn from(tensor: &'a NamedTensor) -> Self {
        tensor.view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_counts() {
        assert_eq!(TensorSpec::new("s", []).element_count(), Some(1));
        assert_eq!(TensorSpec::new("w", [3, 4]).element_count(), Some(12));
        assert_eq!(TensorSpec::new("e", [3, 0]).element_count(), Some(0));
        assert_eq!(TensorSpec::new("big", [usize::MAX, 2]).element_count(), None);
    }
}
