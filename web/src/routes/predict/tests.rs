//! The prediction route end to end, through a router over the fixture:
//! unsigned and signed calls, JSON and PNG bodies, every refusal with its
//! status, and the rate limits.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use png::ColorType;
use serde_json::{Value, json};
use starling_protocol::{ContentHash, PREDICT_ENVELOPE_HEADER, PredictRequest, PublicKey, SignedEnvelope, SigningKey};

use crate::config::{RateLimit, WebConfig};
use crate::predict::image::tests::{crc32, encode};
use crate::predict::signed::tests::{header as envelope, now_ms};
use crate::router::{router, router_with_config};
use crate::testing::{Chunks, MemoryModel, PredictFailure, body_bytes, send_to};
use crate::views::{Caller, PredictCall};

const URI: &str = "/api/models/1/versions/2/predict";

/// The paying test identity.
fn payer() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn address(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 40_000))
}

/// A POST of `body` as `content_type` from `from` (no `ConnectInfo` if `None`).
fn post(uri: &str, content_type: &str, body: Vec<u8>, from: Option<SocketAddr>) -> Request<Body> {
    let mut request = Request::post(uri).header(header::CONTENT_TYPE, content_type).body(Body::from(body)).unwrap();
    if let Some(address) = from {
        request.extensions_mut().insert(ConnectInfo(address));
    }
    request
}

/// `request` with the envelope header.
fn with_envelope(mut request: Request<Body>, header: &str) -> Request<Body> {
    request.headers_mut().insert(PREDICT_ENVELOPE_HEADER, header.parse().unwrap());
    request
}

/// A JSON POST of `body`, signed by `key` for model 1 version 2 with `nonce`.
fn signed_post(key: &SigningKey, body: Vec<u8>, nonce: u8) -> Request<Body> {
    let message = PredictRequest { model: 1, version: 2, body_hash: ContentHash::of(&body), max_fee: 5_000 };
    with_envelope(post(URI, "application/json", body, None), &envelope(key, &message, nonce, now_ms()))
}

/// 784 zeros with a one at `at`: the double labels it `at % 10`.
fn digit(at: usize) -> Vec<f32> {
    let mut values = vec![0.0; 784];
    values[at] = 1.0;
    values
}

fn json_body(inputs: &[Vec<f32>]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "inputs": inputs })).unwrap()
}

/// Sends `request` through `app`: status, headers and the JSON body.
async fn call(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = send_to(app, request).await;
    let (status, headers) = (response.status(), response.headers().clone());
    assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{status}");
    (status, headers, serde_json::from_slice(&body_bytes(response).await).unwrap())
}

/// The error's code and message.
fn error(body: &Value) -> (&str, &str) {
    (body["error"]["code"].as_str().unwrap(), body["error"]["message"].as_str().unwrap())
}

/// A router without the unsigned rate limit, for tests about other things.
fn app(model: &Arc<MemoryModel>) -> Router {
    router_with_config(model.clone(), WebConfig { anonymous_rate: RateLimit::UNLIMITED, ..WebConfig::default() })
}

#[tokio::test]
async fn unsigned_json_inputs_flat_and_nested() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    let request = post(URI, "application/json; charset=utf-8", json_body(&[digit(3)]), Some(address(1)));
    let (status, headers, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let mut probabilities = vec![0.05; 10];
    probabilities[3] = 0.55;
    assert_eq!(
        body,
        json!({
            "predictions": [{"label": 3, "probabilities": probabilities}],
            "charged": 0,
            "free_items": 1,
            "quota_left": null,
        })
    );
    assert_eq!(
        model.last_predict(),
        Some(PredictCall { model: 1, version: 2, caller: Caller::Anonymous, inputs: vec![digit(3)] })
    );

    // The same image as 28 rows of 28, and a second input flat: flattened row-major.
    let nested: Vec<Vec<f32>> = digit(7 * 28 + 7).chunks(28).map(<[f32]>::to_vec).collect();
    let body = serde_json::to_vec(&json!({"inputs": [nested, digit(2)]})).unwrap();
    let (status, _, body) = call(&app, post(URI, "application/json", body, Some(address(1)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["predictions"][0]["label"], (7 * 28 + 7) % 10);
    assert_eq!(body["predictions"][1]["label"], 2);
    assert_eq!(body["free_items"], 2);
    assert_eq!(model.last_predict().unwrap().inputs, [digit(7 * 28 + 7), digit(2)]);
}

#[tokio::test]
async fn png_inputs_become_the_models_grayscale_input() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    // 28×28: read as is. One white pixel at row 0, column 5.
    let mut pixels = vec![0u8; 784];
    pixels[5] = 255;
    let png = encode(28, 28, ColorType::Grayscale, &pixels);
    let (status, _, body) = call(&app, post(URI, "image/png", png, Some(address(1)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["predictions"][0]["label"], 5);
    let call_made = model.last_predict().unwrap();
    assert_eq!((call_made.caller, call_made.inputs.clone()), (Caller::Anonymous, vec![digit(5)]));

    // 56×56 RGB: the white 2×2 block at rows 2–3, columns 12–13 is one white value at (1, 6).
    let mut rgb = vec![0u8; 56 * 56 * 3];
    for (y, x) in [(2, 12), (2, 13), (3, 12), (3, 13)] {
        rgb[(y * 56 + x) * 3..][..3].copy_from_slice(&[255, 255, 255]);
    }
    let png = encode(56, 56, ColorType::Rgb, &rgb);
    let (status, _, body) = call(&app, post(URI, "image/png", png, Some(address(1)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let inputs = model.last_predict().unwrap().inputs;
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0].len(), 784);
    assert!((inputs[0][28 + 6] - 1.0).abs() < 1e-6, "{:?}", &inputs[0][..64]);
    assert_eq!(inputs[0].iter().filter(|&&v| v > 0.0).count(), 1);
    assert_eq!(body["predictions"][0]["label"], (28 + 6) % 10);
}

#[tokio::test]
async fn unusable_pngs_are_refused_before_the_model() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    let good = encode(28, 28, ColorType::Grayscale, &[0; 784]);
    let corrupt = good[..good.len() - 30].to_vec();
    let (status, _, body) = call(&app, post(URI, "image/png", corrupt, Some(address(1)))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body).0, "invalid_input");
    assert!(error(&body).1.starts_with("not a readable PNG"), "{body}");

    // A valid header declaring 50 000 × 50 000 pixels.
    let mut bomb = good.clone();
    bomb[16..24].copy_from_slice(&[0, 0, 0xc3, 0x50, 0, 0, 0xc3, 0x50]);
    let crc = crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let (status, _, body) = call(&app, post(URI, "image/png", bomb, Some(address(1)))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body),
        (
            "invalid_input",
            "the PNG is 50000×50000 pixels: at most 4096 pixels a side and 4194304 pixels in all are accepted"
        )
    );

    // Model 4 takes flat vectors; model 1 has no version 9; there is no model 2.
    let uri = "/api/models/4/versions/1/predict";
    let (status, _, body) = call(&app, post(uri, "image/png", good.clone(), Some(address(1)))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body).1, "model 4 takes inputs of shape [784], not images; send JSON");
    let uri = "/api/models/1/versions/9/predict";
    let (status, _, body) = call(&app, post(uri, "image/png", good.clone(), Some(address(1)))).await;
    assert_eq!((status, error(&body).1), (StatusCode::NOT_FOUND, "model 1 has no version 9"));
    let uri = "/api/models/2/versions/1/predict";
    let (status, _, body) = call(&app, post(uri, "image/png", good, Some(address(1)))).await;
    assert_eq!((status, error(&body).1), (StatusCode::NOT_FOUND, "no model 2"));
    assert_eq!(model.last_predict(), None);
}

#[tokio::test]
async fn bad_json_inputs_are_400() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    for (body, message) in [
        (r#"{"inputs": [[0.5, 1.5]]}"#, "input 0 value 1 is 1.5: values must be finite and in [0, 1]"),
        (r#"{"inputs": [[0.5], [-0.5]]}"#, "input 1 value 0 is -0.5: values must be finite and in [0, 1]"),
        (r#"{"inputs": [[1e39]]}"#, "input 0 value 0 is inf: values must be finite and in [0, 1]"),
        (r#"{"inputs": [[NaN]]}"#, "the body is not {\"inputs\": [arrays of numbers, …]}: expected value"),
        (r#"{"inputs": []}"#, "no inputs: send at least one"),
        ("[1, 2]", "the body is not {\"inputs\": [arrays of numbers, …]}"),
    ] {
        let request = post(URI, "application/json", body.into(), Some(address(1)));
        let (status, _, answer) = call(&app, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error(&answer).0, "invalid_input", "{body}");
        assert!(error(&answer).1.starts_with(message), "{body}: {answer}");
    }
    assert_eq!(model.last_predict(), None, "nothing reached the model");

    // Too many inputs for an unsigned call.
    let request = post(URI, "application/json", json_body(&vec![digit(0); 5]), Some(address(2)));
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body), ("invalid_input", "5 inputs: unsigned calls take at most 4; sign the call to send more"));
    assert_eq!(model.last_predict(), None);

    // The model's own check: 783 values.
    let request = post(URI, "application/json", json_body(&[vec![0.5; 783]]), Some(address(2)));
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body), ("invalid_input", "input 0 has 783 values: the model takes 784 (a 28×28 image)"));
}

#[tokio::test]
async fn media_types_ids_methods_and_sizes() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    for content_type in ["text/plain", "application/jsonx", "image/jpeg"] {
        let (status, _, body) = call(&app, post(URI, content_type, b"{}".to_vec(), None)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        assert_eq!(error(&body).0, "unsupported_media_type");
    }
    let bare = Request::post(URI).body(Body::from("{}")).unwrap();
    assert_eq!(call(&app, bare).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    for (uri, code) in [
        ("/api/models/x/versions/1/predict", "invalid_model_id"),
        ("/api/models/1/versions/4294967296/predict", "invalid_version"),
    ] {
        let (status, _, body) = call(&app, post(uri, "application/json", json_body(&[digit(0)]), None)).await;
        assert_eq!((status, error(&body).0), (StatusCode::BAD_REQUEST, code), "{uri}");
    }
    let (status, _, _) = call(&app, Request::get(URI).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // Bodies over the prediction limit: declared, or streamed without a length.
    let small = router_with_config(model.clone(), WebConfig { max_predict_body_bytes: 100, ..WebConfig::default() });
    let (status, _, body) = call(&small, post(URI, "application/json", vec![b' '; 101], None)).await;
    assert_eq!((status, error(&body).0), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    let chunks = Chunks(VecDeque::from([Bytes::from(vec![b' '; 60]), Bytes::from(vec![b' '; 60])]));
    let request =
        Request::post(URI).header(header::CONTENT_TYPE, "application/json").body(Body::from_stream(chunks)).unwrap();
    let (status, _, _) = call(&small, request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // The default allows a full batch written at full precision, beyond the other routes' 64 KiB.
    let batch = json_body(&vec![vec![0.123_456_79; 784]; 8]);
    assert!(batch.len() > 64 * 1024);
    let request = signed_post(&payer(), batch, 1);
    let (status, _, body) = call(&app, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unsigned_callers_are_rate_limited_per_address() {
    let model = MemoryModel::fixture();
    let app = router(model.clone());
    let request = |from| post(URI, "application/json", json_body(&[digit(1)]), from);
    for _ in 0..5 {
        assert_eq!(call(&app, request(Some(address(1)))).await.0, StatusCode::OK);
    }
    let (status, headers, body) = call(&app, request(Some(address(1)))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=3).contains(&retry), "20 a minute: one every 3 s, {retry}");
    assert_eq!(error(&body).0, "too_many_requests");
    assert!(error(&body).1.contains("from this address"), "{body}");
    // Another address is served; a signed caller from the limited one too.
    assert_eq!(call(&app, request(Some(address(2)))).await.0, StatusCode::OK);
    let mut signed = signed_post(&payer(), json_body(&[digit(1)]), 1);
    signed.extensions_mut().insert(ConnectInfo(address(1)));
    assert_eq!(call(&app, signed).await.0, StatusCode::OK);

    // Without connect info every unsigned caller is one address.
    let strict = RateLimit { per_minute: 1, burst: 1 };
    let app = router_with_config(model.clone(), WebConfig { anonymous_rate: strict, ..WebConfig::default() });
    assert_eq!(call(&app, request(None)).await.0, StatusCode::OK);
    assert_eq!(call(&app, request(None)).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(call(&app, request(Some(address(3)))).await.0, StatusCode::OK);
}

#[tokio::test]
async fn signed_calls_reach_the_model_with_the_callers_terms() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    // Six inputs: more than an unsigned call may send.
    let inputs: Vec<Vec<f32>> = (0..6).map(digit).collect();
    let body = json_body(&inputs);
    let message = PredictRequest { model: 1, version: 2, body_hash: ContentHash::of(&body), max_fee: 5_000 };
    let header = envelope(&payer(), &message, 1, now_ms());
    let request = with_envelope(post(URI, "application/json", body, None), &header);
    let (status, _, answer) = call(&app, request).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((answer["charged"].clone(), answer["quota_left"].clone()), (json!(1_600), json!(0)));
    let labels: Vec<u64> =
        answer["predictions"].as_array().unwrap().iter().map(|p| p["label"].as_u64().unwrap()).collect();
    assert_eq!(labels, [0, 1, 2, 3, 4, 5]);
    let signature = *SignedEnvelope::from_bytes(&hex::decode(&header).unwrap(), 1024).unwrap().signature();
    assert_eq!(
        model.last_predict(),
        Some(PredictCall {
            model: 1,
            version: 2,
            caller: Caller::Signed {
                key: PublicKey::of(&payer()),
                max_fee: 5_000,
                request: ContentHash::of(signature.as_bytes()),
            },
            inputs,
        })
    );

    // A signed PNG: the hash covers the PNG bytes.
    let png = encode(28, 28, ColorType::Grayscale, &[0; 784]);
    let message = PredictRequest { model: 1, version: 2, body_hash: ContentHash::of(&png), max_fee: 1 };
    let request = with_envelope(post(URI, "image/png", png, None), &envelope(&payer(), &message, 2, now_ms()));
    assert_eq!(call(&app, request).await.0, StatusCode::OK);
    assert!(matches!(model.last_predict().unwrap().caller, Caller::Signed { max_fee: 1, .. }));
}

#[tokio::test]
async fn replayed_envelopes_are_409() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    let body = json_body(&[digit(1)]);
    let message = PredictRequest { model: 1, version: 2, body_hash: ContentHash::of(&body), max_fee: 5_000 };
    let header = envelope(&payer(), &message, 1, now_ms());
    let request = || with_envelope(post(URI, "application/json", body.clone(), None), &header);
    assert_eq!(call(&app, request()).await.0, StatusCode::OK);
    let (status, _, answer) = call(&app, request()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error(&answer).0, "replayed");
    assert!(error(&answer).1.contains("was already used"), "{answer}");

    // The ledger's own idempotency check answers the same way.
    model.fail_predict_with(Some(PredictFailure::Replayed));
    let (status, _, answer) = call(&app, signed_post(&payer(), json_body(&[digit(1)]), 2)).await;
    assert_eq!((status, error(&answer).0), (StatusCode::CONFLICT, "replayed"));
}

#[tokio::test]
async fn forged_malformed_and_stale_envelopes_are_401() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    let body = json_body(&[digit(1)]);
    let message = PredictRequest { model: 1, version: 2, body_hash: ContentHash::of(&body), max_fee: 5_000 };
    let mut forged = hex::decode(envelope(&payer(), &message, 1, now_ms())).unwrap();
    *forged.last_mut().unwrap() ^= 1;
    let stale = envelope(&payer(), &message, 2, now_ms() - 10 * 60 * 1000);
    // Signed for another message kind's layout: a garbled kind.
    let mut wrong_kind = hex::decode(envelope(&payer(), &message, 3, now_ms())).unwrap();
    let kind_at = wrong_kind.windows(8).position(|w| w == b"starling").unwrap();
    wrong_kind[kind_at] = b'S';
    for (header, expected) in [
        (hex::encode(&forged), "bad signature"),
        (stale, "stale"),
        (hex::encode(&wrong_kind), "expected a `starling/predict-request` message"),
        ("not hex".to_owned(), "not hex"),
        ("00".to_owned(), "envelope unreadable"),
    ] {
        let request = with_envelope(post(URI, "application/json", body.clone(), None), &header);
        let (status, _, answer) = call(&app, request).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{expected}: {answer}");
        assert_eq!(error(&answer).0, "invalid_signature");
        assert!(error(&answer).1.contains(expected), "{expected}: {answer}");
    }
    assert_eq!(model.last_predict(), None);
}

#[tokio::test]
async fn envelopes_must_match_the_path_and_the_body() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    let body = json_body(&[digit(1)]);
    let hash = ContentHash::of(&body);
    for (message, expected) in [
        (
            PredictRequest { model: 1, version: 2, body_hash: ContentHash::of(b"other"), max_fee: 5 },
            format!(
                "the envelope signs a body with hash {}, but this body's hash is {hash}",
                ContentHash::of(b"other")
            ),
        ),
        (
            PredictRequest { model: 4, version: 2, body_hash: hash, max_fee: 5 },
            "the envelope is for model 4 version 2, not model 1 version 2".to_owned(),
        ),
        (
            PredictRequest { model: 1, version: 1, body_hash: hash, max_fee: 5 },
            "the envelope is for model 1 version 1, not model 1 version 2".to_owned(),
        ),
    ] {
        let header = envelope(&payer(), &message, message.version as u8 + message.model as u8, now_ms());
        let request = with_envelope(post(URI, "application/json", body.clone(), None), &header);
        let (status, _, answer) = call(&app, request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(error(&answer), ("envelope_mismatch", expected.as_str()));
    }
    assert_eq!(model.last_predict(), None);
}

#[tokio::test]
async fn signed_callers_are_rate_limited_per_identity() {
    let model = MemoryModel::fixture();
    let config = WebConfig { signed_rate: RateLimit { per_minute: 60, burst: 2 }, ..WebConfig::default() };
    let app = router_with_config(model.clone(), config);
    let body = || json_body(&[digit(1)]);
    assert_eq!(call(&app, signed_post(&payer(), body(), 1)).await.0, StatusCode::OK);
    assert_eq!(call(&app, signed_post(&payer(), body(), 2)).await.0, StatusCode::OK);
    let (status, headers, answer) = call(&app, signed_post(&payer(), body(), 3)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert!(error(&answer).1.contains("from this identity"), "{answer}");
    // Another identity has its own allowance.
    let other = SigningKey::from_bytes(&[8; 32]);
    assert_eq!(call(&app, signed_post(&other, body(), 1)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn refusals_of_the_read_model_map_to_their_status() {
    let model = MemoryModel::fixture();
    let app = app(&model);
    let (status, _, body) = call(&app, signed_post(&MemoryModel::broke(), json_body(&[digit(1)]), 1)).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(
        error(&body),
        (
            "payment_required",
            "payment required: the call costs 0.001100 STAR beyond your free quota, your free balance is \
             0.001000 STAR and your max_fee is 0.005000 STAR; nothing was charged"
        )
    );

    model.fail_predict_with(Some(PredictFailure::Busy));
    let (status, headers, body) = call(&app, post(URI, "application/json", json_body(&[digit(1)]), None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "1");
    assert_eq!(error(&body), ("busy", "inference is busy; try again in a second"));

    model.fail_predict_with(Some(PredictFailure::NotFound));
    let (status, _, body) = call(&app, post(URI, "application/json", json_body(&[digit(1)]), None)).await;
    assert_eq!((status, error(&body)), (StatusCode::NOT_FOUND, ("not_found", "model 1 has no version 2")));

    model.fail_predict_with(None);
    let uri = "/api/models/1/versions/9/predict";
    let (status, _, body) = call(&app, post(uri, "application/json", json_body(&[digit(1)]), None)).await;
    assert_eq!((status, error(&body).1), (StatusCode::NOT_FOUND, "model 1 has no version 9"));

    model.fail_with_internal("inference worker 3 crashed at 0xdeadbeef");
    let (status, _, body) = call(&app, post(URI, "application/json", json_body(&[digit(1)]), None)).await;
    assert_eq!((status, error(&body)), (StatusCode::INTERNAL_SERVER_ERROR, ("internal", "internal server error")));
    model.fail_with_unavailable("postgres down");
    let (status, _, body) = call(&app, post(URI, "application/json", json_body(&[digit(1)]), None)).await;
    assert_eq!((status, error(&body).0), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
}
