//! The framing every codec shares, and bounds-checked reading of untrusted
//! bytes.
//!
//! Every encoding starts with a 5-byte header:
//!
//! | offset | size | field                                             |
//! |--------|------|---------------------------------------------------|
//! | 0      | 1    | tag: codec in the low nibble, version in the high |
//! | 1      | 4    | element count `n` (dense length), `u32` LE        |
//!
//! followed by the codec's body, whose exact length follows from the header
//! (and, for top-k, from the count of kept entries). Decoders check the tag,
//! check `n` against the caller's `max_elements`, and check the body length
//! before allocating anything.

use rayon::prelude::*;

use crate::error::{AggregationError, Result};

/// Version 1 of the format, in the tag's high nibble.
const V1: u8 = 0x10;
/// Uncompressed `f32`.
pub(super) const TAG_F32: u8 = V1;
/// IEEE binary16.
pub(super) const TAG_F16: u8 = V1 | 0x1;
/// `i8` with one `f32` scale.
pub(super) const TAG_INT8: u8 = V1 | 0x2;
/// Top-k: ascending `u32` indices, then `f32` values.
pub(super) const TAG_TOPK: u8 = V1 | 0x3;

/// Bytes before a codec's body.
pub(super) const HEADER_LEN: usize = 5;

/// Elements per parallel job in the dense codecs.
pub(super) const PAR_CHUNK: usize = 1 << 16;

/// The codec a tag names, for error messages.
pub(super) fn tag_name(tag: u8) -> &'static str {
    match tag {
        TAG_F32 => "f32",
        TAG_F16 => "f16",
        TAG_INT8 => "int8",
        TAG_TOPK => "top-k",
        _ => "unknown",
    }
}

pub(super) fn malformed(msg: impl Into<String>) -> AggregationError {
    AggregationError::Malformed(msg.into())
}

pub(super) fn bad_values(reason: String) -> AggregationError {
    AggregationError::InvalidParameter { name: "values", reason }
}

/// A buffer of `capacity` bytes starting with the header for `n` elements.
///
/// Fails when `n` does not fit the header's `u32`.
pub(super) fn start(tag: u8, n: usize, body_len: usize) -> Result<Vec<u8>> {
    let count = u32::try_from(n)
        .map_err(|_| bad_values(format!("{n} elements exceed the {} codec's limit of {}", tag_name(tag), u32::MAX)))?;
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.push(tag);
    out.extend_from_slice(&count.to_le_bytes());
    Ok(out)
}

/// Reads the header of `bytes`: checks the tag is `tag` and the element
/// count is at most `max_elements`, and returns the count and the body.
pub(super) fn open(bytes: &[u8], tag: u8, max_elements: usize) -> Result<(usize, &[u8])> {
    let mut r = Reader::new(bytes);
    let got = r.u8()?;
    if got != tag {
        return Err(malformed(format!("tag {got:#04x} ({}), expected {tag:#04x} ({})", tag_name(got), tag_name(tag))));
    }
    let n = r.u32()? as usize;
    if n > max_elements {
        return Err(malformed(format!("{n} elements, more than the limit of {max_elements}")));
    }
    Ok((n, r.rest()))
}

/// Checks that `body` is exactly `n` elements of `width` bytes plus `extra`.
pub(super) fn expect_body(body: &[u8], n: usize, width: usize, extra: usize) -> Result<()> {
    let want = n.checked_mul(width).and_then(|b| b.checked_add(extra));
    if want != Some(body.len()) {
        return Err(malformed(format!("body of {} bytes, expected {extra} + {n} × {width}", body.len())));
    }
    Ok(())
}

/// Little-endian reads that fail with [`AggregationError::Malformed`] at the
/// end of input instead of panicking.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The next `n` bytes.
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(malformed(format!("truncated: needed {n} more bytes, {} left", self.rest.len())));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(super) fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.u32()?))
    }

    /// Everything not read yet.
    pub(super) fn rest(self) -> &'a [u8] {
        self.rest
    }
}

/// Index of the first element of `values` for which `bad` holds, searching in
/// parallel but always reporting the lowest index.
pub(super) fn par_position<T: Sync>(values: &[T], bad: impl Fn(&T) -> bool + Sync) -> Option<usize> {
    values
        .par_chunks(PAR_CHUNK)
        .enumerate()
        .filter_map(|(c, chunk)| chunk.iter().position(&bad).map(|i| c * PAR_CHUNK + i))
        .min()
}

/// Fills `out` from `body` (`width` bytes per element) in parallel with
/// `convert`, which returns `None` for an element that is not allowed;
/// reports the lowest such index.
pub(super) fn par_decode(
    out: &mut [f32],
    body: &[u8],
    width: usize,
    convert: impl Fn(&[u8]) -> Option<f32> + Sync,
) -> Option<usize> {
    debug_assert_eq!(out.len() * width, body.len());
    out.par_chunks_mut(PAR_CHUNK)
        .zip(body.par_chunks(PAR_CHUNK * width))
        .enumerate()
        .filter_map(|(c, (o, b))| {
            let mut first_bad = None;
            for (i, (o, b)) in o.iter_mut().zip(b.chunks_exact(width)).enumerate() {
                match convert(b) {
                    Some(v) => *o = v,
                    None => {
                        first_bad.get_or_insert(c * PAR_CHUNK + i);
                    }
                }
            }
            first_bad
        })
        .min()
}

/// Writes `values` into `body` (`width` bytes per element) in parallel.
pub(super) fn par_encode(body: &mut [u8], values: &[f32], width: usize, convert: impl Fn(&mut [u8], &[f32]) + Sync) {
    debug_assert_eq!(values.len() * width, body.len());
    body.par_chunks_mut(PAR_CHUNK * width).zip(values.par_chunks(PAR_CHUNK)).for_each(|(b, v)| convert(b, v));
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Byte strings that look like an encoding with `tag` often enough to
    /// reach past the header: the right or a random tag, a small element
    /// count, then random bytes.
    pub(in crate::codec) fn arbitrary_encoding(tag: u8) -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![3 => Just(tag), 1 => any::<u8>()],
            prop_oneof![3 => 0u32..20, 1 => any::<u32>()],
            prop::collection::vec(any::<u8>(), 0..100),
            any::<bool>(),
        )
            .prop_map(|(tag, n, body, truncate_header)| {
                let mut b = vec![tag];
                b.extend_from_slice(&n.to_le_bytes());
                if truncate_header {
                    b.truncate(usize::from(body.first().copied().unwrap_or(0)) % HEADER_LEN);
                }
                b.extend_from_slice(&body);
                b
            })
    }

    #[test]
    fn header_round_trip_and_refusals() {
        let mut bytes = start(TAG_F16, 3, 6).unwrap();
        assert_eq!(bytes, [0x11, 3, 0, 0, 0]);
        bytes.extend_from_slice(&[0; 6]);
        let (n, body) = open(&bytes, TAG_F16, 3).unwrap();
        assert_eq!((n, body.len()), (3, 6));
        expect_body(body, n, 2, 0).unwrap();
        assert!(expect_body(body, n, 2, 1).is_err());
        assert!(expect_body(body, usize::MAX, 2, 0).is_err());

        assert!(open(&bytes, TAG_F32, 3).unwrap_err().to_string().contains("f16"));
        assert!(open(&bytes, TAG_F16, 2).unwrap_err().to_string().contains("limit"));
        for cut in 0..HEADER_LEN {
            assert!(matches!(open(&bytes[..cut], TAG_F16, 3), Err(AggregationError::Malformed(_))));
        }
    }

    #[test]
    fn parallel_search_reports_the_lowest_index() {
        let mut v = vec![0u8; 3 * PAR_CHUNK];
        v[2 * PAR_CHUNK + 1] = 1;
        v[PAR_CHUNK + 5] = 1;
        assert_eq!(par_position(&v, |&x| x == 1), Some(PAR_CHUNK + 5));
        assert_eq!(par_position(&v, |&x| x == 2), None);
    }
}
