//! `TaskSpec` decoding (postcard) and validation on untrusted bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_protocol::TaskSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = postcard::from_bytes::<TaskSpec>(data) else { return };
    let _ = spec.parameter_count();
    let _ = spec.f32_size();
    if spec.validate().is_ok() {
        let required = spec.encoded_payload_len().expect("a valid spec has a payload size");
        assert!(required as u64 <= spec.payload_limit);
        let again = postcard::to_allocvec(&spec).expect("a valid spec encodes");
        let back = postcard::from_bytes::<TaskSpec>(&again).expect("and decodes");
        assert_eq!(back, spec);
    }
});
