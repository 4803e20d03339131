//! Certificate fingerprints: what a client pins instead of trusting a CA.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// SHA-256 of a certificate's DER encoding (the leaf certificate a server
/// presents). Prints and parses as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of the certificate whose DER encoding is `der`.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }

    /// Wraps raw digest bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Why text could not be read as a [`Fingerprint`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "`{text}` is not a certificate fingerprint: expected 64 hex digits (SHA-256), \
     as printed by the coordinator at start-up"
)]
pub struct ParseFingerprintError {
    /// The text that was refused (cut to 100 characters).
    pub text: String,
}

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    /// Accepts 64 hex digits in either case, optionally with `:` between
    /// byte pairs (the way `openssl x509 -fingerprint` prints them).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || ParseFingerprintError { text: text.chars().take(100).collect() };
        let digits: String = if text.contains(':') {
            let pairs: Vec<&str> = text.split(':').collect();
            if pairs.iter().any(|pair| pair.len() != 2) {
                return Err(refuse());
            }
            pairs.concat()
        } else {
            text.to_owned()
        };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&digits, &mut bytes).map_err(|_| refuse())?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_and_round_trips_as_text() {
        // SHA-256 of "abc", from FIPS 180-2.
        let fingerprint = Fingerprint::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(fingerprint.to_string(), hex);
        assert_eq!(hex.parse::<Fingerprint>().unwrap(), fingerprint);
        assert_eq!(hex.to_uppercase().parse::<Fingerprint>().unwrap(), fingerprint);
        let colons = fingerprint.as_bytes().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":");
        assert_eq!(colons.parse::<Fingerprint>().unwrap(), fingerprint);
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        for text in ["", "abc", &"a".repeat(63), &"a".repeat(65), &"g".repeat(64), "ab:c:de"] {
            let err = text.parse::<Fingerprint>().unwrap_err();
            assert!(err.to_string().contains("64 hex digits"), "{text}: {err}");
        }
    }
}
