//! The JSON body of a prediction call: `{"inputs": [input, …]}`, where each
//! input is an array of numbers or nested arrays of numbers (e.g. one
//! `[28][28]` image or its 784 values flat), flattened row-major.
//!
//! Flattened while parsing, without an intermediate `serde_json::Value`, so
//! a body costs one `f32` per number. Nested arrays must be rectangular (a
//! ragged input is refused rather than silently flattened); every value must
//! be finite and in `[0, 1]`. How many values an input must have is the
//! model's business: the read model checks the count.
//!
//! A body with more inputs than the caller may send is refused after a
//! first pass that only counts them (into zero-sized `IgnoredAny`s, which
//! allocate nothing), so a flood of tiny inputs costs no memory.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// Why a JSON body is not a batch of inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum InputError {
    /// Malformed, or a value out of range; the message is for the caller.
    #[error("{0}")]
    Invalid(String),
    /// More inputs than the caller may send.
    #[error("{count} inputs: at most {max} are accepted")]
    TooMany {
        /// Inputs in the body.
        count: usize,
        /// The caller's limit.
        max: usize,
    },
}

/// The body as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body<T> {
    inputs: Vec<T>,
}

/// One input, flattened.
#[derive(Debug)]
struct Input(Vec<f32>);

/// Reads the body: at most `max` inputs, each flattened row-major, every
/// value checked.
pub(crate) fn inputs(body: &[u8], max: usize) -> Result<Vec<Vec<f32>>, InputError> {
    let malformed = |error: serde_json::Error| {
        InputError::Invalid(format!("the body is not {{\"inputs\": [arrays of numbers, …]}}: {error}"))
    };
    let Body { inputs: counted } = serde_json::from_slice::<Body<IgnoredAny>>(body).map_err(malformed)?;
    if counted.len() > max {
        return Err(InputError::TooMany { count: counted.len(), max });
    }
    let Body { inputs } = serde_json::from_slice::<Body<Input>>(body).map_err(malformed)?;
    let inputs: Vec<Vec<f32>> = inputs.into_iter().map(|input| input.0).collect();
    check_values(&inputs)?;
    Ok(inputs)
}

/// Refuses a batch with no input, or any value that is not finite or not in `[0, 1]`.
pub(crate) fn check_values(inputs: &[Vec<f32>]) -> Result<(), InputError> {
    if inputs.is_empty() {
        return Err(InputError::Invalid("no inputs: send at least one".into()));
    }
    for (i, input) in inputs.iter().enumerate() {
        if input.is_empty() {
            return Err(InputError::Invalid(format!("input {i} holds no value")));
        }
        if let Some((at, value)) = input.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
            return Err(InputError::Invalid(format!(
                "input {i} value {at} is {value}: values must be finite and in [0, 1]"
            )));
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut shape = Shape::default();
        deserializer.deserialize_any(Level { shape: &mut shape, depth: 0 })?;
        Ok(Self(shape.values))
    }
}

/// What is known of an input while it is read: its values so far, the
/// length of the arrays at each depth, and the depth its numbers sit at.
#[derive(Debug, Default)]
struct Shape {
    values: Vec<f32>,
    /// The length of the first array that ended at each depth.
    lengths: Vec<Option<usize>>,
    leaf_depth: Option<usize>,
}

/// Reads the array (or, deeper down, the number) at `depth` of an input.
struct Level<'a> {
    shape: &'a mut Shape,
    depth: usize,
}

impl Level<'_> {
    /// Appends a number, which must sit at the same depth as every other.
    fn number<E: de::Error>(self, value: f64) -> Result<(), E> {
        if self.depth == 0 {
            return Err(E::custom("an input must be an array of numbers, not a number"));
        }
        if *self.shape.leaf_depth.get_or_insert(self.depth) != self.depth {
            return Err(E::custom("the input is ragged: numbers and arrays are mixed at one depth"));
        }
        // Out-of-range values become ±inf or stay outside [0, 1]; `check_values` names them.
        self.shape.values.push(value as f32);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Level<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Level<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of numbers or of arrays of numbers")
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<(), E> {
        self.number(value)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.number(value as f64)
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.number(value as f64)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let depth = self.depth;
        if self.shape.leaf_depth.is_some_and(|leaf| leaf <= depth) {
            return Err(de::Error::custom("the input is ragged: numbers and arrays are mixed at one depth"));
        }
        let mut length = 0;
        while seq.next_element_seed(Level { shape: &mut *self.shape, depth: depth + 1 })?.is_some() {
            length += 1;
        }
        if self.shape.lengths.len() <= depth {
            self.shape.lengths.resize(depth + 1, None);
        }
        match self.shape.lengths[depth] {
            None => self.shape.lengths[depth] = Some(length),
            Some(expected) if expected == length => {}
            Some(expected) => {
                return Err(de::Error::custom(format!(
                    "the input is ragged: an array at depth {depth} has {length} elements, another {expected}"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: &str) -> Result<Vec<Vec<f32>>, String> {
        inputs(body.as_bytes(), usize::MAX).map_err(|error| error.to_string())
    }

    #[test]
    fn too_many_inputs_are_counted_not_read() {
        let body = format!(r#"{{"inputs": [{}[0]]}}"#, "[0], ".repeat(99_999));
        assert_eq!(inputs(body.as_bytes(), 4), Err(InputError::TooMany { count: 100_000, max: 4 }));
        // Within the limit, inputs are read and checked as usual.
        assert_eq!(inputs(br#"{"inputs": [[0.5], [1]]}"#, 2), Ok(vec![vec![0.5], vec![1.0]]));
        assert!(matches!(inputs(br#"{"inputs": [[2]]}"#, 1), Err(InputError::Invalid(_))));
        // Counting reads no input: a malformed one among too many is still "too many".
        assert_eq!(inputs(br#"{"inputs": [[0], [0], "x"]}"#, 2), Err(InputError::TooMany { count: 3, max: 2 }));
    }

    #[test]
    fn flat_and_nested_inputs_flatten_row_major() {
        assert_eq!(read(r#"{"inputs": [[0, 0.5, 1]]}"#).unwrap(), [vec![0.0, 0.5, 1.0]]);
        assert_eq!(
            read(r#"{"inputs": [[[0, 0.25], [0.5, 0.75]], [1, 1, 1, 1]]}"#).unwrap(),
            [vec![0.0, 0.25, 0.5, 0.75], vec![1.0; 4]]
        );
        let deep = r#"{"inputs": [[[[0.125], [0.25]], [[0.375], [0.5]]]]}"#;
        assert_eq!(read(deep).unwrap(), [vec![0.125, 0.25, 0.375, 0.5]]);
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        for (body, expected) in [
            ("", "the body is not"),
            ("{}", "missing field `inputs`"),
            (r#"{"inputs": [[0]], "extra": 1}"#, "unknown field `extra`"),
            (r#"{"inputs": [0.5]}"#, "an input must be an array of numbers"),
            (r#"{"inputs": [["0.5"]]}"#, "an array of numbers or of arrays of numbers"),
            (r#"{"inputs": [[null]]}"#, "invalid type: null"),
            (r#"{"inputs": [[[0, 1], [0]]]}"#, "an array at depth 1 has 1 elements, another 2"),
            (r#"{"inputs": [[[0, 1], 0.5]]}"#, "ragged"),
            (r#"{"inputs": [[0.5, [0, 1]]]}"#, "ragged"),
            (r#"{"inputs": [[NaN]]}"#, "expected value"),
            (r#"{"inputs": []}"#, "no inputs: send at least one"),
            (r#"{"inputs": [[]]}"#, "input 0 holds no value"),
            (r#"{"inputs": [[0], [[]]]}"#, "input 1 holds no value"),
            (r#"{"inputs": [[0, 1.5]]}"#, "input 0 value 1 is 1.5: values must be finite and in [0, 1]"),
            (r#"{"inputs": [[0], [-0.25]]}"#, "input 1 value 0 is -0.25"),
            (r#"{"inputs": [[1e300]]}"#, "input 0 value 0 is inf"),
        ] {
            let error = read(body).unwrap_err();
            assert!(error.contains(expected), "{body}: {error}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let body = format!(r#"{{"inputs": [{}0{}]}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(read(&body).unwrap_err().contains("recursion limit"));
    }
}
