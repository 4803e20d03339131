//! Checking payload bytes piece by piece, as they arrive.
//!
//! [`StreamingCheck`] applies the rules of [`decode_view`](super::decode_view)
//! without ever holding the payload: a receiver feeds it each piece as the
//! piece arrives (while it is still in cache) and keeps only the header and
//! at most three bytes of a value split across two pieces. What it accepts,
//! `decode_view` accepts, and the other way round; when a payload breaks
//! several rules the first error found may differ (the stream meets values
//! in data order, `decode_view` checks tensors in the expected order).

use super::decode::{Segment, TensorBytes, layout};
use super::error::PayloadError;
use super::header::{LEN_PREFIX, max_header_len};
use crate::tensor::TensorSpec;

/// What a payload that passed every check measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamSummary {
    /// Bytes checked.
    pub len: usize,
    /// The sum of the squared values: the update's squared L2 norm.
    pub sum_of_squares: f64,
}

/// A payload check that consumes the bytes in pieces; see the module docs.
#[derive(Debug)]
pub struct StreamingCheck {
    expected: Vec<TensorSpec>,
    limit: usize,
    max_header: usize,
    received: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Gathering the length prefix and the header.
    Header(Vec<u8>),
    /// Scanning the data section.
    Data(Data),
    /// A rule was broken: the first error, kept for [`StreamingCheck::finish`].
    Failed(PayloadError),
}

#[derive(Debug)]
struct Data {
    /// The expected tensors in data order.
    segments: Vec<Segment>,
    /// The segment the next byte belongs to.
    current: usize,
    /// Bytes of the data section seen so far.
    offset: u64,
    /// The first bytes of a value split between two pieces.
    carry: [u8; 4],
    carried: usize,
    sum_of_squares: f64,
}

impl StreamingCheck {
    /// A check of a payload for `expected` of at most `limit` bytes.
    pub fn new(expected: Vec<TensorSpec>, limit: usize) -> Self {
        let max_header = max_header_len(&expected);
        Self { expected, limit, max_header, received: 0, state: State::Header(Vec::new()) }
    }

    /// Checks the next `piece` of the payload. After a broken rule the rest
    /// is only counted; [`finish`](Self::finish) reports the error.
    pub fn feed(&mut self, piece: &[u8]) {
        self.received = self.received.saturating_add(piece.len());
        if matches!(self.state, State::Failed(_)) {
            return;
        }
        if self.received > self.limit {
            self.state = State::Failed(PayloadError::TooLarge { len: self.received, limit: self.limit });
            return;
        }
        let rest = match &mut self.state {
            State::Header(buf) => match take_header(buf, piece, self.max_header) {
                Ok(None) => return,
                Ok(Some(used)) => {
                    match start_data(&buf[LEN_PREFIX..], &self.expected) {
                        Ok(data) => self.state = State::Data(data),
                        Err(error) => {
                            self.state = State::Failed(error);
                            return;
                        }
                    }
                    &piece[used..]
                }
                Err(error) => {
                    self.state = State::Failed(error);
                    return;
                }
            },
            State::Data(_) => piece,
            State::Failed(_) => return,
        };
        if let State::Data(data) = &mut self.state
            && let Err(error) = data.scan(rest, &self.expected)
        {
            self.state = State::Failed(error);
        }
    }

    /// The verdict once every piece was fed.
    pub fn finish(self) -> Result<StreamSummary, PayloadError> {
        match self.state {
            State::Failed(error) => Err(error),
            State::Header(buf) if buf.len() < LEN_PREFIX => Err(PayloadError::Truncated { len: self.received }),
            State::Header(buf) => Err(PayloadError::HeaderOutOfBounds {
                declared: declared_header_len(&buf),
                available: self.received - LEN_PREFIX,
            }),
            State::Data(data) => {
                let declared = data.segments.last().map_or(0, |s| s.end);
                if data.offset != declared {
                    return Err(PayloadError::DataLength {
                        declared,
                        actual: usize::try_from(data.offset).unwrap_or(usize::MAX),
                    });
                }
                Ok(StreamSummary { len: self.received, sum_of_squares: data.sum_of_squares })
            }
        }
    }
}

fn declared_header_len(buf: &[u8]) -> u64 {
    buf.first_chunk::<LEN_PREFIX>().map_or(0, |prefix| u64::from_le_bytes(*prefix))
}

/// Moves header bytes from `piece` into `buf`; returns how many bytes of
/// `piece` it used once the header is whole, `None` while it is not.
fn take_header(buf: &mut Vec<u8>, piece: &[u8], max_header: usize) -> Result<Option<usize>, PayloadError> {
    let mut used = 0;
    if buf.len() < LEN_PREFIX {
        used = (LEN_PREFIX - buf.len()).min(piece.len());
        buf.extend_from_slice(&piece[..used]);
        if buf.len() < LEN_PREFIX {
            return Ok(None);
        }
    }
    let declared = declared_header_len(buf);
    let n = usize::try_from(declared).map_err(|_| PayloadError::HeaderTooLarge { declared, max: max_header })?;
    if n > max_header {
        return Err(PayloadError::HeaderTooLarge { declared, max: max_header });
    }
    let missing = LEN_PREFIX + n - buf.len();
    let take = missing.min(piece.len() - used);
    buf.extend_from_slice(&piece[used..used + take]);
    used += take;
    Ok((buf.len() == LEN_PREFIX + n).then_some(used))
}

/// Checks a whole header: our rules, then the reference reader's (the same
/// parse and validation `SafeTensors::deserialize` does, without the data).
fn start_data(header_json: &[u8], expected: &[TensorSpec]) -> Result<Data, PayloadError> {
    let segments = layout(header_json, expected)?;
    let text = std::str::from_utf8(header_json).map_err(|e| PayloadError::Malformed { reason: e.to_string() })?;
    serde_json::from_str::<safetensors::tensor::Metadata>(text)
        .map_err(|e| PayloadError::Malformed { reason: e.to_string() })?;
    Ok(Data { segments, current: 0, offset: 0, carry: [0; 4], carried: 0, sum_of_squares: 0.0 })
}

impl Data {
    fn scan(&mut self, mut bytes: &[u8], expected: &[TensorSpec]) -> Result<(), PayloadError> {
        while !bytes.is_empty() {
            let Some(segment) = self.segments.get(self.current).copied() else {
                // Past the declared data: counted, refused by `finish`.
                self.offset = self.offset.saturating_add(bytes.len() as u64);
                return Ok(());
            };
            let room = usize::try_from(segment.end - self.offset).unwrap_or(usize::MAX);
            let (part, rest) = bytes.split_at(room.min(bytes.len()));
            self.scan_segment(segment, part, expected)?;
            bytes = rest;
            if self.offset == segment.end {
                self.current += 1;
            }
        }
        Ok(())
    }

    /// Scans `part`, which lies wholly inside `segment`, from `self.offset`.
    fn scan_segment(&mut self, segment: Segment, mut part: &[u8], expected: &[TensorSpec]) -> Result<(), PayloadError> {
        let spec = &expected[segment.spec];
        let index_at = |offset: u64| usize::try_from((offset - segment.start) / 4).unwrap_or(usize::MAX);
        if self.carried > 0 {
            let take = (4 - self.carried).min(part.len());
            self.carry[self.carried..self.carried + take].copy_from_slice(&part[..take]);
            self.carried += take;
            part = &part[take..];
            self.offset += take as u64;
            if self.carried < 4 {
                return Ok(());
            }
            self.carried = 0;
            let value = f32::from_le_bytes(self.carry);
            if !value.is_finite() {
                return Err(PayloadError::NonFinite {
                    name: spec.name.clone(),
                    index: index_at(self.offset - 4),
                    value,
                });
            }
            self.sum_of_squares += f64::from(value) * f64::from(value);
        }
        let whole = part.len() / 4 * 4;
        let (values, tail) = part.split_at(whole);
        if !values.is_empty() {
            let view = TensorBytes { name: spec.name.as_str(), shape: spec.shape.as_slice(), data: values };
            if let Some((index, value)) = view.first_non_finite() {
                return Err(PayloadError::NonFinite {
                    name: spec.name.clone(),
                    index: index_at(self.offset) + index,
                    value,
                });
            }
            self.sum_of_squares += view.sum_of_squares();
            self.offset += whole as u64;
        }
        self.carry[..tail.len()].copy_from_slice(tail);
        self.carried = tail.len();
        self.offset += tail.len() as u64;
        Ok(())
    }
}
