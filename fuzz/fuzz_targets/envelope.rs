//! Envelope decoding and verification on untrusted bytes.
//!
//! Even first byte: the rest goes straight into `Verifier::verify` (twice, so
//! the replay path runs too) and `SignedEnvelope::from_bytes` / `open`.
//! Odd first byte: the rest builds a genuine signed envelope, one byte of its
//! wire form is XOR-ed, and the verifier must accept it only if the bytes
//! still decode to exactly the envelope that was signed.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use starling_protocol::{Message, Nonce, ReplayConfig, SignedEnvelope, SigningKey, Verifier};

#[derive(Debug, Serialize, Deserialize)]
struct Probe {
    round: u32,
    note: String,
    values: Vec<f32>,
    flag: Option<bool>,
}

impl Message for Probe {
    const KIND: &'static str = "starling/fuzz/probe";
}

const MAX_LEN: usize = 64 * 1024;
const NOW: u64 = 1_700_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode.is_multiple_of(2) { untrusted(rest) } else { tampered(rest) }
});

fn verifier() -> Verifier {
    Verifier::new(MAX_LEN, ReplayConfig::default())
}

fn untrusted(bytes: &[u8]) {
    let mut verifier = verifier();
    let first = verifier.verify::<Probe>(bytes, NOW);
    let second = verifier.verify::<Probe>(bytes, NOW);
    assert!(!(first.is_ok() && second.is_ok()), "a replay was accepted");
    if let Ok(envelope) = SignedEnvelope::from_bytes(bytes, MAX_LEN) {
        let _ = envelope.open::<Probe>();
        let _ = envelope.to_bytes();
        let _ = format!("{} {} {:?}", envelope.kind(), envelope.signer(), envelope.nonce());
    }
}

fn tampered(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let position = usize::from(u16::from_le_bytes([data[0], data[1]]));
    let xor = data[2];
    let seed = data[3];
    let body = &data[4..];

    let (head, tail) = body.split_at(body.len().min(8));
    let round = head.iter().fold(0u32, |acc, &b| acc.rotate_left(8) ^ u32::from(b));
    let note = String::from_utf8_lossy(head).into_owned();
    let values = tail.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let probe = Probe { round, note, values, flag: (!seed.is_multiple_of(3)).then_some(seed.is_multiple_of(2)) };

    let key = SigningKey::from_bytes(&[seed; 32]);
    let nonce = Nonce::from_bytes([seed.wrapping_add(1); 16]);
    let Ok(envelope) = SignedEnvelope::sign(&key, &probe, nonce, NOW) else { return };
    let Ok(mut bytes) = envelope.to_bytes() else { return };
    if bytes.len() > MAX_LEN {
        return;
    }

    let index = position % bytes.len();
    bytes[index] ^= xor;
    let result = verifier().verify::<Probe>(&bytes, NOW);
    if xor == 0 {
        assert!(result.is_ok(), "a genuine envelope was refused: {result:?}");
    }
    if result.is_ok() {
        let read = SignedEnvelope::from_bytes(&bytes, MAX_LEN).expect("verified bytes decode");
        assert_eq!(read, envelope, "a tampered envelope verified");
    }
}
