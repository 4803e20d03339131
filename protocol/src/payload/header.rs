//! The safetensors header: building it for the encoder, and reading it from
//! untrusted bytes under our own bounds before the reference reader sees it.
//!
//! Layout: an 8-byte little-endian header length `n`, `n` bytes of JSON
//! (`{"name": {"dtype": "F32", "shape": [..], "data_offsets": [start, end]},
//! ..}`, plus an optional `"__metadata__"` string map), then the data.

use std::fmt;

use safetensors::Dtype;
use safetensors::tensor::{Metadata, TensorInfo};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};

use super::error::PayloadError;
use crate::task::RESERVED_TENSOR_NAME;
use crate::tensor::TensorSpec;

/// Bytes of the little-endian header length that starts the file.
pub(crate) const LEN_PREFIX: usize = 8;

/// Largest header, in bytes, accepted when decoding a payload of these tensors.
///
/// Generous for any header a safetensors writer produces for them (names
/// escaped in the worst case, every dimension and offset at 20 digits, room
/// for a small `__metadata__` map and padding), yet small enough that a
/// hostile length prefix cannot make the decoder parse or allocate more than a
/// few kilobytes per tensor.
pub fn max_header_len(expected: &[TensorSpec]) -> usize {
    expected.iter().fold(4096usize, |total, spec| {
        let per_tensor = 128usize
            .saturating_add(spec.name.len().saturating_mul(6))
            .saturating_add(spec.shape.len().saturating_mul(24));
        total.saturating_add(per_tensor)
    })
}

/// The JSON header for `tensors`, which must be sorted by name, with data laid
/// out in that order; padded with spaces to a multiple of 8 bytes, as
/// `safetensors::serialize` does. Built by the safetensors crate's own
/// metadata type, so the bytes are exactly what its writer would produce.
pub(crate) fn build(tensors: &[(&str, &[usize])]) -> Result<Vec<u8>, PayloadError> {
    let mut offset = 0usize;
    let mut infos = Vec::with_capacity(tensors.len());
    for &(name, shape) in tensors {
        let len =
            crate::tensor::element_count(shape).and_then(|n| n.checked_mul(4)).ok_or(PayloadError::ModelTooLarge)?;
        let end = offset.checked_add(len).ok_or(PayloadError::ModelTooLarge)?;
        infos.push((
            name.to_owned(),
            TensorInfo { dtype: Dtype::F32, shape: shape.to_vec(), data_offsets: (offset, end) },
        ));
        offset = end;
    }
    // Given the offsets built above, the only way this fails is safetensors'
    // own overflow check (it counts bits, so its limit is 8× below ours).
    let metadata = Metadata::new(None, infos).map_err(|_| PayloadError::ModelTooLarge)?;
    let mut json = serde_json::to_vec(&metadata).map_err(|e| PayloadError::Malformed { reason: e.to_string() })?;
    json.resize(json.len().next_multiple_of(LEN_PREFIX), b' ');
    Ok(json)
}

/// Splits `bytes` into the header JSON and the data section, refusing a
/// declared header length above `max` or past the end of the input.
pub(crate) fn split(bytes: &[u8], max: usize) -> Result<(&[u8], &[u8]), PayloadError> {
    let Some((prefix, rest)) = bytes.split_first_chunk::<LEN_PREFIX>() else {
        return Err(PayloadError::Truncated { len: bytes.len() });
    };
    let declared = u64::from_le_bytes(*prefix);
    let n = usize::try_from(declared).map_err(|_| PayloadError::HeaderTooLarge { declared, max })?;
    if n > max {
        return Err(PayloadError::HeaderTooLarge { declared, max });
    }
    if n > rest.len() {
        return Err(PayloadError::HeaderOutOfBounds { declared, available: rest.len() });
    }
    Ok(rest.split_at(n))
}

/// One tensor's entry in the header, as declared.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Entry {
    /// Dtype name, e.g. `"F32"`.
    pub(crate) dtype: String,
    /// Declared shape.
    pub(crate) shape: Vec<u64>,
    /// Declared `[start, end)` within the data section.
    pub(crate) data_offsets: (u64, u64),
}

/// Reads the header's tensor entries in the order written, duplicates
/// included (a plain map would silently keep only the last), skipping
/// `__metadata__`.
pub(crate) fn entries(header: &[u8]) -> Result<Vec<(String, Entry)>, PayloadError> {
    let Entries(entries) =
        serde_json::from_slice(header).map_err(|e| PayloadError::MalformedHeader { reason: e.to_string() })?;
    Ok(entries)
}

struct Entries(Vec<(String, Entry)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a safetensors header object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
        // Each entry takes dozens of header bytes, so the header bound already
        // bounds this vector; no size hint is trusted.
        let mut entries = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if name == RESERVED_TENSOR_NAME {
                map.next_value::<IgnoredAny>()?;
            } else {
                let entry = map.next_value::<Entry>()?;
                entries.push((name, entry));
            }
        }
        Ok(Entries(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_checks_the_declared_length() {
        assert_eq!(split(&[0; 7], 100), Err(PayloadError::Truncated { len: 7 }));
        let mut bytes = 50u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[b' '; 10]);
        assert_eq!(split(&bytes, 40), Err(PayloadError::HeaderTooLarge { declared: 50, max: 40 }));
        assert_eq!(split(&bytes, 100), Err(PayloadError::HeaderOutOfBounds { declared: 50, available: 10 }));
        let mut hostile = u64::MAX.to_le_bytes().to_vec();
        hostile.extend_from_slice(b"{}");
        assert_eq!(
            split(&hostile, usize::MAX),
            Err(PayloadError::HeaderOutOfBounds { declared: u64::MAX, available: 2 })
        );
        let mut fine = 2u64.to_le_bytes().to_vec();
        fine.extend_from_slice(b"{}xyz");
        assert_eq!(split(&fine, 100), Ok((&b"{}"[..], &b"xyz"[..])));
    }

    #[test]
    fn entries_keep_duplicates_and_skip_metadata() {
        let header = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let entries = entries(header).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|(name, _)| name == "a"));
    }

    #[test]
    fn entries_refuse_non_objects_and_survive_deep_nesting() {
        assert!(matches!(entries(b"[]"), Err(PayloadError::MalformedHeader { .. })));
        assert!(matches!(entries(b"{\"a\":1}"), Err(PayloadError::MalformedHeader { .. })));
        // serde_json skips ignored values without recursing, so deep nesting
        // in the metadata cannot overflow the stack here (the reference
        // reader refuses it later, under serde_json's recursion limit).
        let deep = format!("{{\"__metadata__\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(entries(deep.as_bytes()), Ok(vec![]));
        let deep = format!("{{\"a\":{{\"shape\":{}{}}}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(entries(deep.as_bytes()), Err(PayloadError::MalformedHeader { .. })));
    }

    #[test]
    fn the_bound_covers_worst_case_names() {
        // Control characters escape to six bytes each; big dimensions and
        // offsets take many digits.
        let name = "\u{1}".repeat(crate::task::MAX_TENSOR_NAME_LEN);
        let mut shape = vec![1usize; crate::task::MAX_TENSOR_RANK];
        shape[0] = 1_000_000_000;
        shape[1] = 100_000_000;
        let other = "x".repeat(crate::task::MAX_TENSOR_NAME_LEN);
        let header = build(&[(name.as_str(), &shape[..]), (other.as_str(), &shape[..])]).unwrap();
        let specs = [TensorSpec::new(name.clone(), shape.clone()), TensorSpec::new(other.clone(), shape.clone())];
        assert!(header.len() <= max_header_len(&specs), "{} > {}", header.len(), max_header_len(&specs));
    }
}
