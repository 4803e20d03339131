//! Lower-case hex for the fixed-size byte types (keys, nonces, hashes), and the
//! macro that gives each of them the same Display / FromStr / serde behaviour.

use thiserror::Error;

/// Why a hex string could not be read as a fixed-size value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseHexError {
    /// The string does not have exactly twice as many digits as the value has bytes.
    #[error("expected {expected} hex digits, found {found}")]
    InvalidLength {
        /// Digits required (two per byte).
        expected: usize,
        /// Characters found.
        found: usize,
    },
    /// A character is not a hex digit.
    #[error("invalid hex digit at position {position}")]
    InvalidDigit {
        /// Byte offset of the offending character.
        position: usize,
    },
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lower-case hex.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Reads exactly `N` bytes of hex (either case).
pub(crate) fn decode<const N: usize>(text: &str) -> Result<[u8; N], ParseHexError> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return Err(ParseHexError::InvalidLength { expected: 2 * N, found: digits.len() });
    }
    let mut out = [0u8; N];
    for (i, (byte, pair)) in out.iter_mut().zip(digits.chunks_exact(2)).enumerate() {
        let hi = nibble(pair[0]).ok_or(ParseHexError::InvalidDigit { position: 2 * i })?;
        let lo = nibble(pair[1]).ok_or(ParseHexError::InvalidDigit { position: 2 * i + 1 })?;
        *byte = (hi << 4) | lo;
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Defines a `Copy` newtype over `[u8; N]` that prints and parses as hex, and
/// serialises as a hex string in human-readable formats (JSON) and as raw
/// bytes in binary ones (postcard).
macro_rules! fixed_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length of the value in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// The raw bytes, by value.
            pub const fn to_bytes(self) -> [u8; $len] {
                self.0
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&$crate::hex::encode(&self.0))
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), $crate::hex::encode(&self.0))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::hex::ParseHexError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                $crate::hex::decode::<$len>(text).map(Self)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                if serializer.is_human_readable() {
                    serializer.serialize_str(&$crate::hex::encode(&self.0))
                } else {
                    serializer.serialize_bytes(&self.0)
                }
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let visitor = $crate::hex::FixedBytesVisitor::<$len>;
                let bytes = if deserializer.is_human_readable() {
                    deserializer.deserialize_str(visitor)?
                } else {
                    deserializer.deserialize_bytes(visitor)?
                };
                Ok(Self(bytes))
            }
        }
    };
}

pub(crate) use fixed_bytes;

/// Serde visitor behind [`fixed_bytes!`]: accepts hex strings, byte strings of
/// exactly `N` bytes, or sequences of `N` integers (for formats without bytes).
pub(crate) struct FixedBytesVisitor<const N: usize>;

impl<'de, const N: usize> serde::de::Visitor<'de> for FixedBytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{N} bytes, or {} hex digits", 2 * N)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
        decode::<N>(text).map_err(E::custom)
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        bytes.try_into().map_err(|_| E::invalid_length(bytes.len(), &self))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = seq.next_element::<u8>()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
            return Err(serde::de::Error::invalid_length(N + 1, &self));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_byte() {
        let bytes: [u8; 256] = std::array::from_fn(|i| i as u8);
        assert_eq!(decode::<256>(&encode(&bytes)), Ok(bytes));
    }

    #[test]
    fn accepts_upper_case() {
        assert_eq!(decode::<2>("ABcd"), Ok([0xab, 0xcd]));
    }

    #[test]
    fn rejects_wrong_length_and_bad_digits() {
        assert_eq!(decode::<2>("abc"), Err(ParseHexError::InvalidLength { expected: 4, found: 3 }));
        assert_eq!(decode::<2>("abzd"), Err(ParseHexError::InvalidDigit { position: 2 }));
        // A multi-byte character is not a digit, and must not cause a panic on a char boundary.
        assert!(decode::<2>("é12").is_err());
    }
}
