//! Decoding untrusted payload bytes against the tensors a task expects.
//!
//! Checks run cheapest first, and nothing is allocated in proportion to a
//! size the input merely claims: the total length against the caller's limit,
//! then the header length against [`max_header_len`], then the header's names,
//! dtypes, shapes and offsets, then the reference safetensors reader, and last
//! every value's finiteness.

use std::collections::{HashMap, HashSet};

use safetensors::SafeTensors;

use super::error::PayloadError;
use super::header::{self, max_header_len};
use crate::ids::ContentHash;
use crate::tensor::{NamedTensor, TensorSpec};

/// A validated tensor inside payload bytes, borrowed rather than copied.
///
/// Only [`decode_view`] makes these, after checking name, dtype, shape and
/// that every value is finite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorBytes<'a> {
    pub(super) name: &'a str,
    pub(super) shape: &'a [usize],
    pub(super) data: &'a [u8],
}

impl<'a> TensorBytes<'a> {
    /// The tensor's name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The tensor's shape (the task's, which the payload matched).
    pub fn shape(&self) -> &'a [usize] {
        self.shape
    }

    /// The raw values: little-endian `f32`, row-major, 4 bytes each. Not
    /// necessarily 4-byte aligned in memory.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / 4
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The values, decoded on the fly.
    pub fn values(&self) -> impl ExactSizeIterator<Item = f32> + 'a {
        self.data.as_chunks::<4>().0.iter().map(|chunk| f32::from_le_bytes(*chunk))
    }

    /// The first value that is NaN or infinite, with its index.
    ///
    /// Scans blocks without stopping at each value (a NaN or infinity has
    /// all exponent bits set; OR-ing that test over a block vectorises),
    /// and only looks value by value inside a block that has one: several
    /// times faster than a short-circuiting search on megabyte tensors.
    pub fn first_non_finite(&self) -> Option<(usize, f32)> {
        const BLOCK: usize = 1024;
        const EXPONENT: u32 = 0x7f80_0000;
        let (values, _) = self.data.as_chunks::<4>();
        values.chunks(BLOCK).enumerate().find_map(|(b, block)| {
            let any = block.iter().fold(false, |any, v| any | (u32::from_le_bytes(*v) & EXPONENT == EXPONENT));
            if !any {
                return None;
            }
            block
                .iter()
                .map(|v| f32::from_le_bytes(*v))
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .map(|(i, v)| (b * BLOCK + i, v))
        })
    }

    /// The sum of the squared values, accumulated in `f64` (eight lanes, so
    /// it vectorises): the squared L2 norm.
    pub fn sum_of_squares(&self) -> f64 {
        const LANES: usize = 8;
        let (blocks, rest) = self.data.as_chunks::<{ 4 * LANES }>();
        let mut lanes = [0f64; LANES];
        for block in blocks {
            let (values, _) = block.as_chunks::<4>();
            for (lane, v) in lanes.iter_mut().zip(values) {
                let v = f64::from(f32::from_le_bytes(*v));
                *lane += v * v;
            }
        }
        let tail: f64 = rest.as_chunks::<4>().0.iter().map(|v| f64::from(f32::from_le_bytes(*v)).powi(2)).sum();
        lanes.iter().sum::<f64>() + tail
    }

    /// The values, copied into a new vector.
    pub fn to_vec(&self) -> Vec<f32> {
        self.values().collect()
    }

    /// An owned copy.
    pub fn to_named(&self) -> NamedTensor {
        NamedTensor { name: self.name.to_owned(), shape: self.shape.to_vec(), values: self.to_vec() }
    }
}

/// Decodes untrusted payload `bytes` into exactly the `expected` tensors, in
/// `expected`'s order.
///
/// Refuses input longer than `limit` before parsing anything. Then refuses,
/// naming the tensor where there is one: a header length beyond
/// [`max_header_len`] or the input, a malformed header, duplicate, unknown
/// or missing names, a dtype other than `F32`, a wrong shape, bad data
/// offsets, and NaN or infinite values (with the element's index).
pub fn decode(bytes: &[u8], expected: &[TensorSpec], limit: usize) -> Result<Vec<NamedTensor>, PayloadError> {
    Ok(decode_view(bytes, expected, limit)?.iter().map(TensorBytes::to_named).collect())
}

/// [`verify_hash`], then [`decode`]: for bytes that arrived with an
/// announced content hash.
pub fn decode_checked(
    bytes: &[u8],
    hash: &ContentHash,
    expected: &[TensorSpec],
    limit: usize,
) -> Result<Vec<NamedTensor>, PayloadError> {
    if bytes.len() > limit {
        return Err(PayloadError::TooLarge { len: bytes.len(), limit });
    }
    verify_hash(bytes, hash)?;
    decode(bytes, expected, limit)
}

/// Checks that `bytes` hash (BLAKE3) to `expected`.
pub fn verify_hash(bytes: &[u8], expected: &ContentHash) -> Result<(), PayloadError> {
    let actual = ContentHash::of(bytes);
    if actual == *expected { Ok(()) } else { Err(PayloadError::HashMismatch { expected: *expected, actual }) }
}

/// Like [`decode`], but returns views into `bytes` instead of copies, for
/// callers that stream values straight into an accumulator.
pub fn decode_view<'a>(
    bytes: &'a [u8],
    expected: &'a [TensorSpec],
    limit: usize,
) -> Result<Vec<TensorBytes<'a>>, PayloadError> {
    if bytes.len() > limit {
        return Err(PayloadError::TooLarge { len: bytes.len(), limit });
    }
    let (header_json, data) = header::split(bytes, max_header_len(expected))?;
    let layout = layout(header_json, expected)?;
    let mut views = HashMap::with_capacity(layout.len());
    let mut cursor = 0u64;
    for segment in &layout {
        let slice = usize::try_from(segment.start)
            .ok()
            .zip(usize::try_from(segment.end).ok())
            .and_then(|(s, e)| data.get(s..e))
            .ok_or(PayloadError::DataLength { declared: segment.end, actual: data.len() })?;
        let spec = &expected[segment.spec];
        views.insert(
            spec.name.as_str(),
            TensorBytes { name: spec.name.as_str(), shape: spec.shape.as_slice(), data: slice },
        );
        cursor = segment.end;
    }
    if cursor != data.len() as u64 {
        return Err(PayloadError::DataLength { declared: cursor, actual: data.len() });
    }

    // Our checks are stricter than the reference reader's, but whatever we
    // accept, every safetensors reader must accept too.
    SafeTensors::deserialize(bytes).map_err(|e| PayloadError::Malformed { reason: e.to_string() })?;

    let mut out = Vec::with_capacity(expected.len());
    for spec in expected {
        let view = views
            .get(spec.name.as_str())
            .copied()
            .ok_or_else(|| PayloadError::MissingTensor { name: spec.name.clone() })?;
        if let Some((index, value)) = view.first_non_finite() {
            return Err(PayloadError::NonFinite { name: spec.name.clone(), index, value });
        }
        out.push(view);
    }
    Ok(out)
}

/// Where one expected tensor's values lie in a payload's data section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Index of its spec in the expected list.
    pub(crate) spec: usize,
    /// `[start, end)` within the data section.
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// Checks a payload header against the `expected` tensors: every name once
/// and known, `F32`, the expected shapes, offsets contiguous from 0 and each
/// exactly as long as its shape. Returns the tensors in data order.
pub(crate) fn layout(header_json: &[u8], expected: &[TensorSpec]) -> Result<Vec<Segment>, PayloadError> {
    let entries = header::entries(header_json)?;
    let specs: HashMap<&str, (usize, &TensorSpec)> =
        expected.iter().enumerate().map(|(i, spec)| (spec.name.as_str(), (i, spec))).collect();
    let mut seen: HashSet<&str> = HashSet::with_capacity(entries.len());
    for (name, entry) in &entries {
        if !seen.insert(name) {
            return Err(PayloadError::DuplicateTensor { name: shorten(name) });
        }
        let Some((_, spec)) = specs.get(name.as_str()) else {
            return Err(PayloadError::UnknownTensor { name: shorten(name) });
        };
        if entry.dtype != "F32" {
            return Err(PayloadError::WrongDtype { name: name.clone(), dtype: shorten(&entry.dtype) });
        }
        if !same_shape(&spec.shape, &entry.shape) {
            return Err(PayloadError::WrongShape {
                name: name.clone(),
                expected: spec.shape.iter().map(|&d| d as u64).collect(),
                found: entry.shape.clone(),
            });
        }
    }
    if let Some(missing) = expected.iter().find(|spec| !seen.contains(spec.name.as_str())) {
        return Err(PayloadError::MissingTensor { name: missing.name.clone() });
    }

    // Offsets: contiguous from 0, each exactly as long as its shape says.
    // Shapes match the (validated) specs by now, so the sizes cannot
    // overflow; checked anyway.
    let mut layout: Vec<(&str, Segment)> = Vec::with_capacity(entries.len());
    for (name, entry) in &entries {
        let (start, end) = entry.data_offsets;
        let (index, _) =
            specs.get(name.as_str()).copied().ok_or_else(|| PayloadError::UnknownTensor { name: shorten(name) })?;
        layout.push((name.as_str(), Segment { spec: index, start, end }));
    }
    layout.sort_unstable_by_key(|(_, segment)| (segment.start, segment.end));
    let mut cursor = 0u64;
    for (name, segment) in &layout {
        let size = expected[segment.spec].element_count().and_then(|n| n.checked_mul(4)).map(|n| n as u64);
        if segment.start != cursor || segment.end.checked_sub(segment.start) != size {
            return Err(PayloadError::BadOffsets { name: (*name).to_owned(), start: segment.start, end: segment.end });
        }
        cursor = segment.end;
    }
    Ok(layout.into_iter().map(|(_, segment)| segment).collect())
}

/// The tensors that payload `bytes` declares, in the order of their data,
/// without a model to check them against: for tools that learn the model
/// from a first file (`starling aggregate`). Reads only the header, under a
/// bound of `max_header` bytes, and refuses duplicate names and dtypes other
/// than `F32`. [`decode_view`] with the result then checks everything else.
pub fn inspect(bytes: &[u8], max_header: usize) -> Result<Vec<TensorSpec>, PayloadError> {
    let (header_json, _) = header::split(bytes, max_header)?;
    let mut entries = header::entries(header_json)?;
    let mut seen: HashSet<&str> = HashSet::with_capacity(entries.len());
    for (name, entry) in &entries {
        if !seen.insert(name) {
            return Err(PayloadError::DuplicateTensor { name: shorten(name) });
        }
        if entry.dtype != "F32" {
            return Err(PayloadError::WrongDtype { name: shorten(name), dtype: shorten(&entry.dtype) });
        }
    }
    entries.sort_by_key(|(_, entry)| entry.data_offsets);
    entries
        .into_iter()
        .map(|(name, entry)| {
            let shape = entry.shape.iter().map(|&d| usize::try_from(d)).collect::<Result<Vec<_>, _>>();
            match shape {
                Ok(shape) => Ok(TensorSpec { name, shape }),
                Err(_) => Err(PayloadError::ModelTooLarge),
            }
        })
        .collect()
}

fn same_shape(expected: &[usize], found: &[u64]) -> bool {
    expected.len() == found.len() && expected.iter().zip(found).all(|(&e, &f)| e as u64 == f)
}

/// Untrusted strings in errors are cut to a readable length.
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 256;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(MAX_CHARS).collect();
        cut.push('…');
        cut
    }
}
