//! Who may call the prediction route: a signed call whose envelope verifies,
//! names this model version and this exact body, within its identity's rate
//! limit; or an unsigned call within its address's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::http::header::HeaderValue;
use starling_protocol::{ContentHash, PREDICT_ENVELOPE_HEADER};

use crate::error::ApiError;
use crate::predict::signed::{self, Refusal, SignedCall};
use crate::predict::unix_ms;
use crate::state::AppState;

/// Where unsigned callers are counted when the router has no `ConnectInfo`.
const UNKNOWN_CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Admits the call `request` makes to model `id` at `version`: the verified
/// call if it is signed, `None` if it is not; or the refusal. Either way one
/// call is taken from the caller's bucket.
pub(crate) fn admit(
    state: &AppState,
    request: &Request,
    id: u64,
    version: u32,
) -> Result<Option<SignedCall>, ApiError> {
    if let Some(header) = request.headers().get(PREDICT_ENVELOPE_HEADER) {
        return signed_call(state, header, id, version).map(Some);
    }
    let address = request.extensions().get::<ConnectInfo<SocketAddr>>().map_or(UNKNOWN_CLIENT, |c| c.0.ip());
    state.guards.admit_anonymous(address, Instant::now()).map_err(|wait| {
        too_many(wait, "too many unsigned prediction calls from this address; sign your calls for a larger allowance")
    })?;
    Ok(None)
}

/// Refuses `body` unless it is the one `call`'s envelope signs.
pub(crate) fn check_body(call: &SignedCall, body: &[u8]) -> Result<(), ApiError> {
    let hash = ContentHash::of(body);
    if hash != call.message.body_hash {
        return Err(ApiError::bad_request(
            "envelope_mismatch",
            format!("the envelope signs a body with hash {}, but this body's hash is {hash}", call.message.body_hash),
        ));
    }
    Ok(())
}

/// Verifies the envelope header, checks it names this model version and
/// takes a call from the signer's bucket.
fn signed_call(state: &AppState, header: &HeaderValue, id: u64, version: u32) -> Result<SignedCall, ApiError> {
    let call = signed::verify(&state.guards.verifier, header.as_bytes(), unix_ms()).map_err(refused)?;
    let (model, signed_version) = (call.message.model, call.message.version);
    if (model, signed_version) != (id, version) {
        return Err(ApiError::bad_request(
            "envelope_mismatch",
            format!("the envelope is for model {model} version {signed_version}, not model {id} version {version}"),
        ));
    }
    state
        .guards
        .admit_signed(call.signer, Instant::now())
        .map_err(|wait| too_many(wait, "too many prediction calls from this identity"))?;
    Ok(call)
}

/// The answer to a refused envelope.
fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::Invalid(message) => ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", message),
        Refusal::Replayed(message) => ApiError::new(StatusCode::CONFLICT, "replayed", message),
        Refusal::SignerBusy(message) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message).with_retry_after(60)
        }
        Refusal::Full(message) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message).with_retry_after(1),
    }
}

/// A 429 with `Retry-After` in whole seconds, rounded up (at least 1).
fn too_many(wait: Duration, message: &'static str) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message).with_retry_after(seconds.max(1))
}
