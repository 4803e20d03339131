//! Wire messages on untrusted bytes: `Request::from_bytes` and
//! `Response::from_bytes` must never panic, and whatever they accept must
//! re-encode to bytes that decode again to the same encoding. Signed requests
//! go on through `SignedRequest::open` and `validate`, and reads and
//! refusals through their accessors.

#![no_main]

use libfuzzer_sys::fuzz_target;
use starling_protocol::messages::MAX_CONTROL_MESSAGE;
use starling_protocol::{ErrorCode, Request, Response, SignedRequest};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = Request::from_bytes(data, MAX_CONTROL_MESSAGE) {
        let bytes = request.to_bytes().expect("an accepted request re-encodes within the limit");
        let again = Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE).expect("and decodes");
        assert_eq!(again, request);
        match &request {
            Request::Signed(envelope) => {
                if let Ok(opened) = SignedRequest::open(envelope) {
                    assert_eq!(opened.kind(), envelope.kind());
                    let _ = opened.validate(envelope.signer());
                }
            }
            Request::Read(read) => {
                let _ = read.name();
            }
        }
    }
    if let Ok(response) = Response::from_bytes(data, MAX_CONTROL_MESSAGE) {
        let bytes = response.to_bytes().expect("an accepted response re-encodes within the limit");
        let again = Response::from_bytes(&bytes, MAX_CONTROL_MESSAGE).expect("and decodes");
        // Compared as bytes: a decoded task spec may hold NaN, which is not equal to itself.
        assert_eq!(again.to_bytes().expect("re-encodes"), bytes);
        if let Err(error) = response.into_result() {
            let _ = error.is_retryable();
            let _ = ErrorCode::from_u16(error.code.as_u16());
        }
    }
});
