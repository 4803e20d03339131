//! Tests across the message types: every kind through sign → bytes → verify
//! → open, kind separation, size limits, pinned kinds and golden encodings.

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use super::*;
use crate::envelope::{EnvelopeError, Message, PROTOCOL_VERSION, SignedEnvelope};
use crate::hex;
use crate::ids::{ContentHash, Nonce, RoundNumber, SubmissionId, TaskId};
use crate::keys::PublicKey;
use crate::phase::RoundPhase;
use crate::replay::{ReplayConfig, ReplayError};
use crate::task::{DataSpec, ModelSpec, TaskSpec};
use crate::tensor::TensorSpec;
use crate::verifier::Verifier;

const NOW: u64 = 1_700_000_000_000;

/// A recognisable hash.
pub(crate) fn hash(b: u8) -> ContentHash {
    ContentHash::from_bytes([b; 32])
}

/// The CNN of the FedAvg paper (McMahan et al. 2017) on MNIST, as the model
/// zoo names its tensors.
pub(crate) fn cnn_spec() -> TaskSpec {
    let tensors = vec![
        TensorSpec::new("conv1.weight", [32, 1, 5, 5]),
        TensorSpec::new("conv1.bias", [32]),
        TensorSpec::new("conv2.weight", [64, 32, 5, 5]),
        TensorSpec::new("conv2.bias", [64]),
        TensorSpec::new("fc1.weight", [3136, 512]),
        TensorSpec::new("fc1.bias", [512]),
        TensorSpec::new("fc2.weight", [512, 10]),
        TensorSpec::new("fc2.bias", [10]),
    ];
    let model = ModelSpec { name: "mnist-cnn".into(), tensors };
    let data = DataSpec { dataset: "mnist".into(), input_shape: vec![1, 28, 28], num_classes: 10 };
    TaskSpec::builder(model, data)
        .rounds(100)
        .fraction(0.1)
        .training(5, 10, 0.05)
        .reward_pool(10_000 * 1_000_000)
        .min_stakes(10 * 1_000_000, 100 * 1_000_000)
        .deadlines(600, 300)
        .build()
        .unwrap()
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn public(seed: u8) -> PublicKey {
    PublicKey::of(&key(seed))
}

/// One message of every signed kind, each valid when signed by `key(1)`.
fn every_signed_request() -> Vec<SignedRequest> {
    vec![
        CreateTask { spec: cnn_spec(), initial_model: hash(1), initial_model_len: 1_000 }.into(),
        JoinTask { task: TaskId::new(7), role: Role::Trainer }.into(),
        SubmitUpdate {
            task: TaskId::new(7),
            round: RoundNumber::new(3),
            base_model: hash(1),
            update: hash(2),
            update_len: 6_653_000,
            samples: 600,
            train_loss: 0.125,
        }
        .into(),
        SubmitScore {
            task: TaskId::new(7),
            round: RoundNumber::new(3),
            submission: SubmissionId::from_bytes([4; 32]),
            accuracy: 0.975,
            loss: 0.08,
            improvement: 0.01,
        }
        .into(),
        GetAssignments { task: TaskId::new(7), round: RoundNumber::new(3), after: None }.into(),
        FetchUpdate { task: TaskId::new(7), round: RoundNumber::new(3), submission: SubmissionId::from_bytes([4; 32]) }
            .into(),
        Stake { role: Role::Validator, amount: 250 * 1_000_000, lock_days: 90 }.into(),
        Unstake { bond: 12 }.into(),
        Delegate { node: public(2), role: Role::Trainer, amount: 5_000_000, lock_days: 365 }.into(),
        Undelegate { bond: 13 }.into(),
        SetCommission { role: Role::Trainer, ppm: 100_000 }.into(),
        Transfer { to: public(3), amount: 1 }.into(),
        Issue { to: public(3), amount: 1_000_000_000_000 }.into(),
    ]
}

fn verifier() -> Verifier {
    Verifier::new(MAX_CONTROL_MESSAGE, ReplayConfig::default())
}

fn signed(request: &SignedRequest, nonce: u8) -> SignedEnvelope {
    request.sign(&key(1), Nonce::from_bytes([nonce; 16]), NOW).unwrap()
}

#[test]
fn kinds_are_pinned() {
    // Signed with every message: changing one breaks every client in the field.
    assert_eq!(
        SignedRequest::KINDS,
        [
            "starling/task.create",
            "starling/task.join",
            "starling/round.submit-update",
            "starling/round.submit-score",
            "starling/round.assignments",
            "starling/round.fetch-update",
            "starling/ledger.stake",
            "starling/ledger.unstake",
            "starling/ledger.delegate",
            "starling/ledger.undelegate",
            "starling/ledger.set-commission",
            "starling/ledger.transfer",
            "starling/ledger.issue",
        ]
    );
    let mut unique = SignedRequest::KINDS.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), SignedRequest::KINDS.len(), "two message types share a kind");
    assert!(SignedRequest::KINDS.iter().all(|kind| kind.len() <= crate::MAX_KIND_LEN));
}

#[test]
fn the_samples_cover_every_kind() {
    let kinds: Vec<&str> = every_signed_request().iter().map(SignedRequest::kind).collect();
    assert_eq!(kinds, SignedRequest::KINDS);
}

#[test]
fn every_message_survives_sign_bytes_verify_open() {
    let mut verifier = verifier();
    for (i, request) in every_signed_request().into_iter().enumerate() {
        assert_eq!(request.validate(&public(1)), Ok(()), "{request:?}");
        let wire = Request::Signed(signed(&request, i as u8)).to_bytes().unwrap();
        let Request::Signed(envelope) = Request::from_bytes(&wire, MAX_CONTROL_MESSAGE).unwrap() else {
            panic!("a signed request came back unsigned")
        };
        assert_eq!(envelope.kind(), request.kind());
        assert_eq!(SignedRequest::open(&envelope).unwrap(), request);
        let verified = SignedRequest::verify(&mut verifier, &envelope, NOW + 5).unwrap();
        assert_eq!(verified.message, request);
        assert_eq!(verified.signer, public(1));
        assert_eq!(verified.nonce, Nonce::from_bytes([i as u8; 16]));
        assert_eq!(verified.timestamp_ms, NOW);
        // A second delivery is a replay.
        assert_eq!(
            SignedRequest::verify(&mut verifier, &envelope, NOW + 6),
            Err(RequestError::Envelope(EnvelopeError::Replay(ReplayError::Replayed {
                signer: public(1),
                nonce: Nonce::from_bytes([i as u8; 16]),
            })))
        );
    }
}

#[test]
fn request_sign_matches_signed_request_sign() {
    let stake = Stake { role: Role::Trainer, amount: 1, lock_days: 0 };
    let nonce = Nonce::from_bytes([1; 16]);
    assert_eq!(
        Request::sign(&key(1), &stake, nonce, NOW).unwrap(),
        Request::Signed(SignedRequest::from(stake).sign(&key(1), nonce, NOW).unwrap())
    );
}

/// The envelope's wire layout, field by field, so tests can forge one with
/// any kind without the private fields.
fn forge(envelope: &SignedEnvelope, kind: &str) -> SignedEnvelope {
    let fields = (
        envelope.version(),
        kind,
        envelope.signer(),
        envelope.nonce(),
        envelope.timestamp_ms(),
        envelope.payload().to_vec(),
        envelope.signature(),
    );
    let bytes = postcard::to_allocvec(&fields).unwrap();
    SignedEnvelope::from_bytes(&bytes, usize::MAX).unwrap()
}

#[test]
fn a_signature_for_one_kind_never_opens_as_another() {
    for (i, request) in every_signed_request().iter().enumerate() {
        let envelope = signed(request, i as u8);
        assert_eq!(forge(&envelope, request.kind()), envelope, "the forge helper mirrors the layout");
        for &other in SignedRequest::KINDS.iter().filter(|&&k| k != request.kind()) {
            // Relabelled: the kind is under the signature.
            let relabelled = forge(&envelope, other);
            assert_eq!(
                SignedRequest::open(&relabelled),
                Err(RequestError::Envelope(EnvelopeError::BadSignature)),
                "{} relabelled as {other}",
                request.kind()
            );
            assert!(SignedRequest::verify(&mut verifier(), &relabelled, NOW).is_err());
        }
    }
    // Same layout, different kinds: the typed open refuses by kind first.
    let unstake = signed(&Unstake { bond: 1 }.into(), 1);
    assert_eq!(
        unstake.open::<Undelegate>(),
        Err(EnvelopeError::WrongKind { expected: Undelegate::KIND, found: Unstake::KIND.into() })
    );
    assert_eq!(unstake.open::<Unstake>(), Ok(Unstake { bond: 1 }));
}

#[test]
fn unknown_kinds_are_refused_by_name() {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Mystery(u8);
    impl Message for Mystery {
        const KIND: &'static str = "starling/mystery";
    }
    let envelope = SignedEnvelope::sign(&key(1), &Mystery(1), Nonce::from_bytes([0; 16]), NOW).unwrap();
    let unknown = RequestError::UnknownKind { kind: "starling/mystery".into() };
    assert_eq!(SignedRequest::open(&envelope), Err(unknown.clone()));
    let mut verifier = verifier();
    assert_eq!(SignedRequest::verify(&mut verifier, &envelope, NOW), Err(unknown.clone()));
    assert!(verifier.replay_guard().is_empty(), "an unknown kind must not burn the nonce");
    assert_eq!(ErrorCode::from(&unknown), ErrorCode::UnknownKind);
}

#[test]
fn tampered_and_stale_envelopes_are_refused() {
    let request: SignedRequest = Transfer { to: public(3), amount: 5 }.into();
    let envelope = signed(&request, 9);
    let mut bytes = Request::Signed(envelope).to_bytes().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // the signature's last byte
    let Request::Signed(forged) = Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE).unwrap() else { unreachable!() };
    assert_eq!(SignedRequest::open(&forged), Err(RequestError::Envelope(EnvelopeError::BadSignature)));

    let old = signed(&request, 10);
    let error = SignedRequest::verify(&mut verifier(), &old, NOW + 10 * 60 * 1000).unwrap_err();
    assert_eq!(ErrorCode::from(&error), ErrorCode::Stale);
    assert!(WireError::from_error(&error).is_retryable());
}

#[test]
fn signer_dependent_refusals() {
    let to_self: SignedRequest = Delegate { node: public(1), role: Role::Trainer, amount: 1, lock_days: 0 }.into();
    assert_eq!(to_self.validate(&public(1)), Err(ValidationError::SelfDelegation));
    assert_eq!(to_self.validate(&public(2)), Ok(()));
    let pay_self: SignedRequest = Transfer { to: public(1), amount: 1 }.into();
    assert_eq!(pay_self.validate(&public(1)), Err(ValidationError::SelfTransfer));
    let zero: SignedRequest = Stake { role: Role::Trainer, amount: 0, lock_days: 0 }.into();
    assert_eq!(zero.validate(&public(1)), Err(ValidationError::Zero { field: "amount" }));
}

fn every_read() -> Vec<ReadRequest> {
    vec![
        ReadRequest::GetTask { task: TaskId::new(7) },
        ReadRequest::GetRound { task: TaskId::new(7) },
        ReadRequest::RetiredGetAssignments {
            task: TaskId::new(7),
            round: RoundNumber::new(3),
            validator: public(4),
            after: None,
        },
        ReadRequest::RetiredGetAssignments {
            task: TaskId::new(7),
            round: RoundNumber::new(3),
            validator: public(4),
            after: Some(SubmissionId::from_bytes([9; 32])),
        },
        ReadRequest::FetchBlob { hash: hash(5) },
        ReadRequest::GetBalance { key: public(6) },
    ]
}

fn round_info(sampled: usize) -> RoundInfo {
    let mut sampled_trainers: Vec<PublicKey> = (0..sampled)
        .map(|i| {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
            PublicKey::from_bytes(bytes)
        })
        .collect();
    sampled_trainers.sort_unstable();
    RoundInfo {
        task: TaskId::new(7),
        round: RoundNumber::new(3),
        phase: RoundPhase::Validating,
        global_model: hash(1),
        global_model_len: 6_653_000,
        training_deadline_ms: NOW + 600_000,
        validation_deadline_ms: Some(NOW + 900_000),
        sampled_trainers,
        task_finished: false,
    }
}

fn assignment(id: u8) -> AssignmentInfo {
    AssignmentInfo {
        submission: SubmissionId::from_bytes([id; 32]),
        trainer: public(2),
        update: hash(2),
        update_len: u64::MAX,
        base_model: hash(1),
    }
}

fn every_response() -> Vec<Response> {
    let bond = BondInfo {
        bond: 12,
        node: public(1),
        role: Role::Validator,
        amount: 250_000_000,
        lock_days: 90,
        unlock_at_ms: NOW + 90 * 86_400_000,
    };
    vec![
        Response::Ok(ResponseBody::Ack),
        Response::Ok(ResponseBody::TaskCreated { task: TaskId::new(7) }),
        Response::Ok(ResponseBody::UpdateAccepted { submission: SubmissionId::from_bytes([4; 32]) }),
        Response::Ok(ResponseBody::Bonded { bond: 12 }),
        Response::Ok(ResponseBody::Unbonded { bond: 12, returned: 95, fee: 5 }),
        Response::Ok(ResponseBody::Task(Box::new(TaskInfo {
            task: TaskId::new(7),
            creator: public(1),
            spec: cnn_spec(),
            round: Some(round_info(10)),
        }))),
        Response::Ok(ResponseBody::Round(round_info(10))),
        Response::Ok(ResponseBody::Assignments(AssignmentPage {
            items: vec![assignment(4)],
            next: Some(SubmissionId::from_bytes([4; 32])),
        })),
        Response::Ok(ResponseBody::Blob { hash: hash(1), len: 6_653_000 }),
        Response::Ok(ResponseBody::Balance(BalanceInfo {
            key: public(1),
            free: 1,
            staked: 250_000_000,
            delegated: 0,
            bonds: vec![bond],
            more_bonds: false,
        })),
        Response::Error(WireError::new(ErrorCode::NotSampled, "not sampled")),
    ]
}

#[test]
fn reads_and_responses_round_trip() {
    for read in every_read() {
        let request = Request::Read(read);
        let bytes = request.to_bytes().unwrap();
        assert_eq!(Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE).unwrap(), request, "{}", read.name());
    }
    for response in every_response() {
        let bytes = response.to_bytes().unwrap();
        assert_eq!(Response::from_bytes(&bytes, MAX_CONTROL_MESSAGE).unwrap(), response);
        assert_eq!(Response::from(response.clone().into_result()), response);
    }
}

#[test]
fn decoders_refuse_oversized_truncated_and_trailing_input() {
    let request = Request::Signed(signed(&every_signed_request()[3], 1));
    let bytes = request.to_bytes().unwrap();
    assert_eq!(
        Request::from_bytes(&bytes, bytes.len() - 1),
        Err(CodecError::Oversized { len: bytes.len(), max: bytes.len() - 1 })
    );
    for cut in 0..bytes.len() {
        assert!(
            matches!(Request::from_bytes(&bytes[..cut], MAX_CONTROL_MESSAGE), Err(CodecError::Malformed(_))),
            "cut at {cut}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(Request::from_bytes(&longer, MAX_CONTROL_MESSAGE), Err(CodecError::TrailingBytes { count: 1 }));

    for response in every_response() {
        let bytes = response.to_bytes().unwrap();
        assert!(matches!(Response::from_bytes(&bytes, bytes.len() - 1), Err(CodecError::Oversized { .. })));
        for cut in 0..bytes.len() {
            assert!(Response::from_bytes(&bytes[..cut], MAX_CONTROL_MESSAGE).is_err(), "{response:?} cut at {cut}");
        }
    }
    let huge = vec![1u8; MAX_CONTROL_MESSAGE + 1];
    assert_eq!(
        Request::from_bytes(&huge, MAX_CONTROL_MESSAGE),
        Err(CodecError::Oversized { len: MAX_CONTROL_MESSAGE + 1, max: MAX_CONTROL_MESSAGE })
    );
}

#[test]
fn another_envelope_version_is_reported_as_such() {
    // Tag 0 (signed), then version 2, then bytes today's layout cannot parse.
    let error = Request::from_bytes(&[0, 2, 0xde, 0xad], MAX_CONTROL_MESSAGE).unwrap_err();
    assert_eq!(error, CodecError::Envelope(EnvelopeError::WrongVersion { found: 2, expected: PROTOCOL_VERSION }));
    assert_eq!(ErrorCode::from(&error), ErrorCode::UnsupportedVersion);
}

#[test]
fn an_over_long_kind_is_refused() {
    let envelope = signed(&Unstake { bond: 1 }.into(), 1);
    let forged = forge(&envelope, &"k".repeat(crate::MAX_KIND_LEN));
    let mut bytes = Request::Signed(forged).to_bytes().unwrap();
    // Grow the kind by one byte: its length prefix is at offset 2 (tag, version).
    assert_eq!(bytes[2] as usize, crate::MAX_KIND_LEN);
    bytes[2] += 1;
    bytes.insert(3, b'k');
    assert_eq!(
        Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE),
        Err(CodecError::Envelope(EnvelopeError::KindTooLong { len: crate::MAX_KIND_LEN + 1 }))
    );
}

#[test]
fn control_message_limit_has_headroom() {
    // The FedAvg paper's CNN, signed and framed as a request.
    let create = &every_signed_request()[0];
    let bytes = Request::Signed(signed(create, 1)).to_bytes().unwrap();
    assert!(bytes.len() < 600, "a CNN CreateTask takes {} bytes", bytes.len());

    // A model of 1 000 tensors with 40-byte names and rank-4 shapes still fits.
    let mut big = cnn_spec();
    big.model.tensors = (0..1_000).map(|i| TensorSpec::new(format!("{i:0>40}"), [512, 512, 3, 3])).collect();
    let big = SignedRequest::from(CreateTask { spec: big, initial_model: hash(1), initial_model_len: 1 });
    let bytes = Request::Signed(signed(&big, 1)).to_bytes().unwrap();
    assert!(bytes.len() < MAX_CONTROL_MESSAGE, "{} bytes", bytes.len());

    // A round with the most sampled trainers fits, so do 1 900; 2 000 do not, and the sender learns it.
    let bytes = Response::Ok(ResponseBody::Round(round_info(MAX_SAMPLED_TRAINERS))).to_bytes().unwrap();
    assert!(bytes.len() < MAX_CONTROL_MESSAGE * 4 / 5, "{} bytes", bytes.len());
    assert!(Response::Ok(ResponseBody::Round(round_info(1_900))).to_bytes().is_ok());
    assert!(matches!(
        Response::Ok(ResponseBody::Round(round_info(2_000))).to_bytes(),
        Err(CodecError::Oversized { .. })
    ));

    // A full page of assignments fits with room to spare.
    let page = AssignmentPage {
        items: (0..MAX_ASSIGNMENTS_PAGE).map(|i| assignment(i as u8)).collect(),
        next: Some(SubmissionId::from_bytes([0xff; 32])),
    };
    let bytes = Response::Ok(ResponseBody::Assignments(page)).to_bytes().unwrap();
    assert!(bytes.len() < MAX_CONTROL_MESSAGE * 3 / 5, "{} bytes", bytes.len());

    // A full list of bonds fits with room to spare.
    let bond = BondInfo {
        bond: u64::MAX,
        node: public(1),
        role: Role::Validator,
        amount: u64::MAX,
        lock_days: 365,
        unlock_at_ms: u64::MAX,
    };
    let balance = BalanceInfo {
        key: public(1),
        free: u64::MAX,
        staked: u64::MAX,
        delegated: u64::MAX,
        bonds: vec![bond; MAX_LISTED_BONDS],
        more_bonds: true,
    };
    let bytes = Response::Ok(ResponseBody::Balance(balance)).to_bytes().unwrap();
    assert!(bytes.len() < MAX_CONTROL_MESSAGE / 2, "{} bytes", bytes.len());

    // So does the longest error.
    let error = Response::Error(WireError::new(ErrorCode::Internal, "x".repeat(10_000)));
    assert!(error.to_bytes().unwrap().len() < MAX_CONTROL_MESSAGE / 32);
}

#[test]
fn golden_encodings() {
    // Any change to these bytes is a wire-format change: bump the kind (or
    // the protocol version) instead of editing the expectation.
    let score = SubmitScore {
        task: TaskId::new(7),
        round: RoundNumber::new(3),
        submission: SubmissionId::from_bytes([4; 32]),
        accuracy: 0.5,
        loss: 0.25,
        improvement: -0.125,
    };
    assert_eq!(
        hex::encode(&postcard::to_allocvec(&score).unwrap()),
        concat!(
            "0703",
            "20",
            "0404040404040404040404040404040404040404040404040404040404040404",
            "000000000000e03f",
            "000000000000d03f",
            "000000000000c0bf",
        )
    );

    // The retired read keeps its position: an old client's bytes still decode.
    let read = Request::Read(ReadRequest::RetiredGetAssignments {
        task: TaskId::new(300),
        round: RoundNumber::new(1),
        validator: PublicKey::from_bytes([0xaa; 32]),
        after: None,
    });
    assert_eq!(
        hex::encode(&read.to_bytes().unwrap()),
        concat!(
            "01",
            "02",
            "ac02",
            "01",
            "20",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "00"
        )
    );

    let refusal = Response::Error(WireError::new(ErrorCode::NotSampled, "no"));
    assert_eq!(hex::encode(&refusal.to_bytes().unwrap()), "011a026e6f");

    let stake = Request::Signed(
        SignedRequest::from(Stake { role: Role::Validator, amount: 1_000_000, lock_days: 30 })
            .sign(&key(1), Nonce::from_bytes([2; 16]), NOW)
            .unwrap(),
    );
    let bytes = stake.to_bytes().unwrap();
    // Tag, version 1, then the kind.
    assert_eq!(&bytes[..3], [0, 1, 21]);
    assert_eq!(&bytes[3..24], b"starling/ledger.stake");
    // ed25519 signatures are deterministic, so the whole request is too.
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), GOLDEN_STAKE);
}

const GOLDEN_STAKE: &str = "5c0a01a59f452616aaca8902b8b57de11427920109355954884fc8e6db054caa";

#[test]
fn a_signature_over_a_valid_request_does_not_cover_another_signer() {
    let envelope = signed(&Unstake { bond: 1 }.into(), 1);
    let fields = (
        envelope.version(),
        envelope.kind(),
        public(2),
        envelope.nonce(),
        envelope.timestamp_ms(),
        envelope.payload().to_vec(),
        envelope.signature(),
    );
    let stolen = SignedEnvelope::from_bytes(&postcard::to_allocvec(&fields).unwrap(), usize::MAX).unwrap();
    assert_eq!(SignedRequest::open(&stolen), Err(RequestError::Envelope(EnvelopeError::BadSignature)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(request) = Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE) {
            let again = request.to_bytes().unwrap();
            prop_assert_eq!(Request::from_bytes(&again, MAX_CONTROL_MESSAGE).unwrap(), request.clone());
            if let Request::Signed(envelope) = &request {
                let _ = SignedRequest::open(envelope);
            }
        }
        if let Ok(response) = Response::from_bytes(&bytes, MAX_CONTROL_MESSAGE) {
            let again = response.to_bytes().unwrap();
            let back = Response::from_bytes(&again, MAX_CONTROL_MESSAGE).unwrap();
            prop_assert_eq!(back.to_bytes().unwrap(), again);
        }
    }

    #[test]
    fn flipping_a_byte_of_a_genuine_request_never_panics_nor_verifies_as_something_else(
        which in 0..11usize,
        position in any::<usize>(),
        xor in 1..=255u8,
    ) {
        let request = every_signed_request().swap_remove(which);
        let mut bytes = Request::Signed(signed(&request, 1)).to_bytes().unwrap();
        let index = position % bytes.len();
        bytes[index] ^= xor;
        if let Ok(Request::Signed(envelope)) = Request::from_bytes(&bytes, MAX_CONTROL_MESSAGE)
            && let Ok(opened) = SignedRequest::open(&envelope)
        {
            // Only a change the signature does not cover (none should exist) may pass.
            prop_assert_eq!(opened, request);
        }
    }

    #[test]
    fn flipping_a_byte_of_a_genuine_response_never_panics(
        which in 0..11usize,
        position in any::<usize>(),
        xor in 1..=255u8,
    ) {
        let response = every_response().swap_remove(which);
        let mut bytes = response.to_bytes().unwrap();
        let index = position % bytes.len();
        bytes[index] ^= xor;
        let _ = Response::from_bytes(&bytes, MAX_CONTROL_MESSAGE);
    }
}
