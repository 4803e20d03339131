//! The shape of a model as the aggregation engine sees it: an ordered list of
//! named `f32` tensors laid end to end in one flat buffer.

use std::collections::HashMap;
use std::ops::Range;

use crate::error::{AggregationError, Result};

/// One named tensor of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, unique within a model (e.g. `conv1.weight`).
    pub name: String,
    /// Its shape; the number of elements is the product (1 for a scalar).
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// A tensor description.
    pub fn new(name: impl Into<String>, shape: impl Into<Vec<usize>>) -> Self {
        Self { name: name.into(), shape: shape.into() }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The model's tensors in a fixed order, and where each sits in a flat buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    tensors: Vec<TensorInfo>,
    /// `offsets[i]..offsets[i + 1]` is tensor `i`'s range; `offsets.len() == tensors.len() + 1`.
    offsets: Vec<usize>,
    by_name: HashMap<String, usize>,
}

impl Layout {
    /// A layout over `tensors`, in the given order.
    ///
    /// Fails on a duplicate name or a tensor so large that the model's element
    /// count overflows `usize`.
    pub fn new(tensors: Vec<TensorInfo>) -> Result<Self> {
        let mut offsets = Vec::with_capacity(tensors.len() + 1);
        let mut by_name = HashMap::with_capacity(tensors.len());
        let mut total = 0usize;
        offsets.push(0);
        for (i, t) in tensors.iter().enumerate() {
            let numel = t.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            total = numel.and_then(|n| total.checked_add(n)).ok_or_else(|| AggregationError::InvalidParameter {
                name: "layout",
                reason: format!("tensor `{}` overflows the element count", t.name),
            })?;
            offsets.push(total);
            if by_name.insert(t.name.clone(), i).is_some() {
                return Err(AggregationError::InvalidParameter {
                    name: "layout",
                    reason: format!("tensor `{}` appears twice", t.name),
                });
            }
        }
        Ok(Self { tensors, offsets, by_name })
    }

    /// The tensors, in order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Total number of `f32` parameters.
    pub fn numel(&self) -> usize {
        *self.offsets.last().expect("offsets is never empty")
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the model has no tensors at all.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Where tensor `i` lives in a flat buffer.
    pub fn range(&self, i: usize) -> Range<usize> {
        self.offsets[i]..self.offsets[i + 1]
    }

    /// The index of the tensor holding flat coordinate `pos`.
    ///
    /// # Panics
    /// If `pos >= self.numel()`.
    pub fn tensor_at(&self, pos: usize) -> usize {
        assert!(pos < self.numel(), "coordinate {pos} is outside the model");
        // offsets is sorted; empty tensors share an offset with their successor.
        self.offsets.partition_point(|&o| o <= pos) - 1
    }

    /// The index of the tensor called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Splits a flat buffer laid out by `self` into `(tensor, values)` pairs.
    ///
    /// # Panics
    /// If `flat.len() != self.numel()`.
    pub fn split<'a>(&'a self, flat: &'a [f32]) -> impl Iterator<Item = (&'a TensorInfo, &'a [f32])> + 'a {
        assert_eq!(flat.len(), self.numel(), "flat buffer does not match the layout");
        self.tensors.iter().enumerate().map(move |(i, t)| (t, &flat[self.range(i)]))
    }

    /// Binds the named tensors of update number `client` to this layout.
    ///
    /// Every tensor of the layout must appear exactly once with the layout's
    /// shape; an unknown, missing or misshapen tensor is an error naming it.
    /// Values are not inspected here: [`crate::Inputs::new`] checks finiteness.
    pub fn bind<'a, 'n>(
        &self,
        client: usize,
        named: impl IntoIterator<Item = (&'n str, &'n [usize], &'a [f32])>,
    ) -> Result<UpdateView<'a>> {
        let mut parts: Vec<Option<&'a [f32]>> = vec![None; self.tensors.len()];
        for (name, shape, values) in named {
            let Some(i) = self.index_of(name) else {
                return Err(AggregationError::TensorName { client, tensor: name.to_owned(), problem: "unknown" });
            };
            let info = &self.tensors[i];
            if info.shape != shape || values.len() != info.numel() {
                let got =
                    if shape.iter().product::<usize>() == values.len() { shape.to_vec() } else { vec![values.len()] };
                return Err(AggregationError::Shape {
                    client,
                    tensor: info.name.clone(),
                    expected: info.shape.clone(),
                    got,
                });
            }
            if parts[i].replace(values).is_some() {
                return Err(AggregationError::TensorName { client, tensor: name.to_owned(), problem: "duplicate" });
            }
        }
        let parts = parts
            .into_iter()
            .zip(&self.tensors)
            .map(|(p, t)| {
                p.ok_or_else(|| AggregationError::TensorName { client, tensor: t.name.clone(), problem: "missing" })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(UpdateView { parts })
    }

    /// Views a flat buffer laid out by `self` as update number `client`.
    pub fn view_flat<'a>(&self, client: usize, flat: &'a [f32]) -> Result<UpdateView<'a>> {
        if flat.len() != self.numel() {
            return Err(AggregationError::Shape {
                client,
                tensor: "<flat>".to_owned(),
                expected: vec![self.numel()],
                got: vec![flat.len()],
            });
        }
        Ok(UpdateView { parts: (0..self.len()).map(|i| &flat[self.range(i)]).collect() })
    }
}

/// One client's update, borrowed: one slice per tensor, in layout order.
///
/// Built by [`Layout::bind`] or [`Layout::view_flat`], which guarantee that
/// every slice has its tensor's length. The slices may point anywhere: into
/// owned vectors, or straight into memory-mapped safetensors files.
#[derive(Debug, Clone)]
pub struct UpdateView<'a> {
    parts: Vec<&'a [f32]>,
}

impl<'a> UpdateView<'a> {
    /// The values of tensor `i`.
    pub fn tensor(&self, i: usize) -> &'a [f32] {
        self.parts[i]
    }

    /// All tensors, in layout order.
    pub fn tensors(&self) -> &[&'a [f32]] {
        &self.parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(vec![TensorInfo::new("w", [2, 3]), TensorInfo::new("b", [3])]).unwrap()
    }

    #[test]
    fn offsets_follow_the_order_given() {
        let l = layout();
        assert_eq!(l.numel(), 9);
        assert_eq!(l.range(0), 0..6);
        assert_eq!(l.range(1), 6..9);
        assert_eq!(l.index_of("b"), Some(1));
        let flat: Vec<f32> = (0..9).map(|x| x as f32).collect();
        let parts: Vec<_> = l.split(&flat).map(|(t, v)| (t.name.as_str(), v.len())).collect();
        assert_eq!(parts, [("w", 6), ("b", 3)]);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let err = Layout::new(vec![TensorInfo::new("w", [1]), TensorInfo::new("w", [2])]).unwrap_err();
        assert!(err.to_string().contains("`w` appears twice"), "{err}");
    }

    #[test]
    fn bind_reorders_by_name_and_names_what_is_wrong() {
        let l = layout();
        let w = [1.0f32; 6];
        let b = [2.0f32; 3];
        let v = l.bind(0, [("b", &[3][..], &b[..]), ("w", &[2, 3][..], &w[..])]).unwrap();
        assert_eq!(v.tensor(0), &w);
        assert_eq!(v.tensor(1), &b);

        let err = l.bind(4, [("w", &[2, 3][..], &w[..])]).unwrap_err();
        assert_eq!(err, AggregationError::TensorName { client: 4, tensor: "b".into(), problem: "missing" });

        let err = l.bind(1, [("w", &[3, 2][..], &w[..]), ("b", &[3][..], &b[..])]).unwrap_err();
        assert!(matches!(err, AggregationError::Shape { client: 1, ref tensor, .. } if tensor == "w"));

        let err =
            l.bind(2, [("w", &[2, 3][..], &w[..]), ("b", &[3][..], &b[..]), ("c", &[1][..], &b[..1])]).unwrap_err();
        assert_eq!(err, AggregationError::TensorName { client: 2, tensor: "c".into(), problem: "unknown" });

        let err = l.bind(0, [("b", &[3][..], &b[..]), ("b", &[3][..], &b[..])]).unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn view_flat_checks_the_length() {
        let l = layout();
        assert!(l.view_flat(0, &[0.0; 9]).is_ok());
        assert!(matches!(l.view_flat(3, &[0.0; 8]), Err(AggregationError::Shape { client: 3, .. })));
    }
}
