//! Ed25519 public keys and signatures as plain, serialisable bytes.
//!
//! These types hold bytes only; whether the bytes are a valid curve point or a
//! valid signature is decided when an envelope is verified.

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::hex::fixed_bytes;

fixed_bytes! {
    /// An ed25519 public key (32 bytes): the identity of a trainer, validator,
    /// task creator or coordinator. Prints as 64 lower-case hex digits.
    PublicKey, 32
}

impl PublicKey {
    /// The public half of `key`.
    pub fn of(key: &SigningKey) -> Self {
        Self(key.verifying_key().to_bytes())
    }

    /// Decodes the key as a curve point, as signature verification needs it.
    ///
    /// Fails if the bytes are not a valid compressed Edwards point.
    pub fn to_verifying_key(&self) -> Result<VerifyingKey, ed25519_dalek::SignatureError> {
        VerifyingKey::from_bytes(&self.0)
    }
}

impl From<&SigningKey> for PublicKey {
    fn from(key: &SigningKey) -> Self {
        Self::of(key)
    }
}

impl From<VerifyingKey> for PublicKey {
    fn from(key: VerifyingKey) -> Self {
        Self(key.to_bytes())
    }
}

fixed_bytes! {
    /// An ed25519 signature (64 bytes), as carried in a signed envelope.
    Signature, 64
}

impl From<ed25519_dalek::Signature> for Signature {
    fn from(signature: ed25519_dalek::Signature) -> Self {
        Self(signature.to_bytes())
    }
}

impl From<Signature> for ed25519_dalek::Signature {
    fn from(signature: Signature) -> Self {
        ed25519_dalek::Signature::from_bytes(&signature.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_matches_the_signing_key_and_parses_back() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = PublicKey::of(&key);
        assert_eq!(public.to_verifying_key().unwrap(), key.verifying_key());
        assert_eq!(public.to_string().parse::<PublicKey>().unwrap(), public);
        assert_eq!(public.to_string().len(), 64);
    }

    #[test]
    fn signature_round_trips_through_postcard() {
        let signature = Signature::from_bytes(std::array::from_fn(|i| i as u8));
        let wire = postcard::to_allocvec(&signature).unwrap();
        assert_eq!(postcard::from_bytes::<Signature>(&wire).unwrap(), signature);
    }
}
