//! Update codec decoders (fp16, int8, top-k, raw) on arbitrary bytes: they
//! must never panic, never allocate past the element limit, and whatever
//! they accept must be finite and survive a re-encode unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_aggregation::codec::{Codec, SparseUpdate, fp16, int8, raw};

const MAX_ELEMENTS: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    for values in [raw::decode(data, MAX_ELEMENTS), fp16::decode(data, MAX_ELEMENTS), int8::decode(data, MAX_ELEMENTS)]
        .into_iter()
        .flatten()
    {
        assert!(values.len() <= MAX_ELEMENTS);
        assert!(values.iter().all(|v| v.is_finite()));
    }
    if let Ok(sparse) = SparseUpdate::decode(data, MAX_ELEMENTS) {
        assert!(sparse.dim() <= MAX_ELEMENTS);
        assert!(sparse.indices().windows(2).all(|w| w[0] < w[1]));
        assert!(sparse.indices().iter().all(|&i| (i as usize) < sparse.dim()));
        let again = SparseUpdate::decode(&sparse.encode(), MAX_ELEMENTS).expect("re-encoded bytes decode");
        assert_eq!(again, sparse);
    }
    if let Ok(codec) = Codec::detect(data) {
        if let Ok(values) = codec.decode(data, MAX_ELEMENTS) {
            // Lossless codecs round-trip exactly; the lossy ones are idempotent
            // on their own output.
            if matches!(codec, Codec::F32 | Codec::F16) {
                let bytes = codec.encode(&values).expect("decoded values re-encode");
                assert_eq!(codec.decode(&bytes, MAX_ELEMENTS).expect("re-encoded bytes decode"), values);
            }
        }
    }
});
