//! Bad input to a running coordinator, over QUIC: every signed message type
//! forged, stale, from the future and replayed; malformed and oversized
//! frames; and each message's own ways of being wrong. Each is refused with
//! its typed error code, and none changes a balance, a stake or a record;
//! a task nobody pays for leaves no trace.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use burn::prelude::Device;
use starling_client::{QuicTransport, Transport, now_ms};
use starling_coordinator::artifacts::ArtifactStore;
use starling_coordinator::round::PayloadCheck;
use starling_coordinator::service::DEFAULT_MAX_MODEL_BYTES;
use starling_coordinator::store::CoordinatorStore;
use starling_models::zoo::{Model, ModelKind};
use starling_net::{Identity, Limits, Trust, client_endpoint, connect};
use starling_protocol::messages::SignedRequest;
use starling_protocol::{
    ContentHash, CreateTask, Delegate, ErrorCode, FetchUpdate, GetAssignments, Issue, JoinTask, MAX_CONTROL_MESSAGE,
    Nonce, PageRequest, PublicKey, ReadRequest, Request, Response, ResponseBody, Role, RoundNumber, RoundPhase,
    SetCommission, Stake, SubmissionId, SubmitScore, SubmitUpdate, TaskId, TaskSpec, Transfer, Undelegate, Unstake,
    UpdatePayload,
};
use starling_staking::LedgerStore;
use support::*;

/// Free balance and stakes of everyone the test knows.
async fn books(net: &Network, keys: &[PublicKey]) -> BTreeMap<PublicKey, (u64, u64, u64)> {
    let ledger = net.service.ledger();
    let mut books = BTreeMap::new();
    for key in keys {
        let b = ledger.balances(key).await.unwrap();
        books.insert(*key, (b.free.micro(), b.staked.micro(), b.delegated.micro()));
    }
    books
}

fn code(response: Response) -> ErrorCode {
    match response {
        Response::Error(error) => error.code,
        Response::Ok(body) => panic!("expected a refusal, got {body:?}"),
    }
}

async fn send(transport: &QuicTransport, request: &Request) -> ErrorCode {
    code(transport.call(request).await.unwrap())
}

/// Sends raw frame bytes on a fresh stream and decodes the answer.
async fn raw(net: &Network, bytes: &[u8]) -> Response {
    let client =
        client_endpoint(SocketAddr::from(([127, 0, 0, 1], 0)), Trust::Pinned(net.fingerprint()), &Limits::default())
            .unwrap();
    let connection = connect(&client, &net.addr.to_string()).await.unwrap();
    let answer = starling_net::request(&connection, bytes, MAX_CONTROL_MESSAGE).await.unwrap();
    Response::from_bytes(&answer, MAX_CONTROL_MESSAGE).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_by_type_and_change_nothing() {
    let place = Place::new("bad", false).await.unwrap();
    let net = Network::start(&place, Duration::from_millis(500)).await;
    let t = net.transport();
    let admin = &place.admin;
    let (creator, trainer, validator, outsider) = (identity(1), identity(2), identity(3), identity(4));
    fund(&t, admin, &creator, 1_000 * STAR, None).await;
    fund(&t, admin, &trainer, 100 * STAR, Some((Role::Trainer, 50 * STAR))).await;
    fund(&t, admin, &validator, 100 * STAR, Some((Role::Validator, 50 * STAR))).await;
    fund(&t, admin, &outsider, 100 * STAR, Some((Role::Trainer, 50 * STAR))).await;
    // A long lock, for the early-unstake refusal.
    let locked = match call(&t, &outsider, &Stake { role: Role::Validator, amount: 10 * STAR, lock_days: 60 }).await {
        Ok(ResponseBody::Bonded { bond }) => bond,
        other => panic!("{other:?}"),
    };
    let spec = spec(1, 100 * STAR);
    let (task, initial) = create_task(&t, &creator, spec.clone()).await;
    call(&t, &trainer, &JoinTask { task, role: Role::Trainer }).await.unwrap();
    call(&t, &validator, &JoinTask { task, role: Role::Validator }).await.unwrap();

    let everyone: Vec<PublicKey> =
        [admin, &creator, &trainer, &validator, &outsider].iter().map(|i| i.public_key()).collect();
    let before = books(&net, &everyone).await;

    // --- Frames that are not requests.
    assert_eq!(code(raw(&net, b"\x07garbage").await), ErrorCode::Malformed);
    assert_eq!(code(raw(&net, &[]).await), ErrorCode::Malformed);
    let mut huge = vec![0u8; MAX_CONTROL_MESSAGE + 1];
    huge[0] = 1;
    assert!(matches!(code(raw(&net, &huge).await), ErrorCode::Oversized));

    // --- Every signed message type: forged, stale, from the future, replayed.
    let zero = ContentHash::of(b"");
    let samples: Vec<SignedRequest> = vec![
        CreateTask {
            spec: spec.clone(),
            initial_model: ContentHash::of(&initial),
            initial_model_len: initial.len() as u64,
        }
        .into(),
        JoinTask { task, role: Role::Trainer }.into(),
        SubmitUpdate {
            task,
            round: RoundNumber::FIRST,
            base_model: zero,
            update: zero,
            update_len: 10,
            samples: 1,
            train_loss: 0.1,
        }
        .into(),
        SubmitScore {
            task,
            round: RoundNumber::FIRST,
            submission: SubmissionId::from_bytes([1; 32]),
            accuracy: 0.5,
            loss: 0.5,
            improvement: 0.0,
        }
        .into(),
        Stake { role: Role::Trainer, amount: STAR, lock_days: 0 }.into(),
        Unstake { bond: locked }.into(),
        Delegate { node: trainer.public_key(), role: Role::Trainer, amount: STAR, lock_days: 0 }.into(),
        Undelegate { bond: locked }.into(),
        SetCommission { role: Role::Trainer, ppm: 100_000 }.into(),
        Transfer { to: creator.public_key(), amount: STAR }.into(),
        Issue { to: outsider.public_key(), amount: STAR }.into(),
        GetAssignments { task, round: RoundNumber::FIRST, after: None }.into(),
        FetchUpdate { task, round: RoundNumber::FIRST, submission: SubmissionId::from_bytes([1; 32]) }.into(),
    ];
    assert_eq!(samples.len(), SignedRequest::KINDS.len(), "every kind is covered");
    // Signed by a key holding 1 µSTAR (a key holding nothing is not heard at
    // all), so the first delivery of each changes nothing either.
    let stranger = identity(9);
    call(&t, admin, &Issue { to: stranger.public_key(), amount: 1 }).await.unwrap();
    for message in &samples {
        let kind = message.kind();
        let sign = |at: u64| {
            Request::Signed(message.sign(stranger.signing_key(), Nonce::generate(&mut rand::rng()), at).unwrap())
        };
        // Forged: one bit of the signature flipped.
        let mut forged = sign(now_ms()).to_bytes().unwrap();
        *forged.last_mut().unwrap() ^= 1;
        assert_eq!(code(raw(&net, &forged).await), ErrorCode::BadSignature, "{kind}");
        assert_eq!(send(&t, &sign(now_ms() - 3_600_000)).await, ErrorCode::Stale, "{kind}");
        assert_eq!(send(&t, &sign(now_ms() + 3_600_000)).await, ErrorCode::ClockSkew, "{kind}");
        // Replayed: whatever the first answer was, the second is `Replay`.
        let once = sign(now_ms());
        let _ = t.call(&once).await.unwrap();
        assert_eq!(send(&t, &once).await, ErrorCode::Replay, "{kind}");
    }
    // An unknown kind and a future protocol version.
    let mut unknown =
        Request::Signed(samples[4].sign(outsider.signing_key(), Nonce::generate(&mut rand::rng()), now_ms()).unwrap())
            .to_bytes()
            .unwrap();
    let kind = b"starling/ledger.stake";
    let at = unknown.windows(kind.len()).position(|w| w == kind).expect("the kind is in the frame");
    unknown[at + kind.len() - 1] = b'x';
    assert!(matches!(code(raw(&net, &unknown).await), ErrorCode::UnknownKind | ErrorCode::BadSignature));
    let mut future =
        Request::Signed(samples[4].sign(outsider.signing_key(), Nonce::generate(&mut rand::rng()), now_ms()).unwrap())
            .to_bytes()
            .unwrap();
    future[1] = 0x7f;
    assert_eq!(code(raw(&net, &future).await), ErrorCode::UnsupportedVersion);

    // The replays above that were valid requests (stake, transfer, ...)
    // took effect once; put the books back to compare from here on.
    let before = {
        let _ = before;
        books(&net, &everyone).await
    };

    // --- Each message's own ways of being wrong.
    // CreateTask: a bad spec, a pool above the balance, a model that does not match its hash or holds a NaN.
    let mut bad_spec = spec.clone();
    bad_spec.rounds = 0;
    let create = |spec: starling_protocol::TaskSpec, bytes: &[u8]| CreateTask {
        spec,
        initial_model: ContentHash::of(bytes),
        initial_model_len: bytes.len() as u64,
    };
    let up = |key: &Identity, message: &CreateTask, bytes: &[u8]| {
        let request = sign(key, message);
        let bytes = bytes.to_vec();
        let t = &t;
        async move { code(t.upload(&request, &bytes).await.unwrap()) }
    };
    assert_eq!(up(&creator, &create(bad_spec, &initial), &initial).await, ErrorCode::InvalidField);
    let mut rich = spec.clone();
    rich.reward_pool = 1_000_000 * STAR;
    assert_eq!(up(&creator, &create(rich, &initial), &initial).await, ErrorCode::InsufficientBalance);
    let mut other = initial.clone();
    *other.last_mut().unwrap() ^= 1;
    assert_eq!(up(&creator, &create(spec.clone(), &initial), &other).await, ErrorCode::HashMismatch);
    let mut nan = initial.clone();
    let header = u64::from_le_bytes(nan[..8].try_into().unwrap()) as usize;
    nan[8 + header..12 + header].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_eq!(up(&creator, &create(spec.clone(), &nan), &nan).await, ErrorCode::NonFinite);
    let tasks = net.service.store().tasks(starling_staking::PageRequest { after: None, limit: 10 }).await.unwrap();
    assert_eq!(tasks.items.len(), 1, "no refused task was registered");

    // JoinTask: an unknown task, too little stake.
    let missing = TaskId::new(task.get() + 50);
    assert_eq!(
        call(&t, &trainer, &JoinTask { task: missing, role: Role::Trainer }).await.unwrap_err().code,
        ErrorCode::UnknownTask
    );
    let poor = identity(5);
    assert_eq!(
        call(&t, &poor, &JoinTask { task, role: Role::Validator }).await.unwrap_err().code,
        ErrorCode::Unauthorized,
        "a key holding nothing is not heard"
    );
    call(&t, admin, &Issue { to: poor.public_key(), amount: STAR }).await.unwrap();
    assert_eq!(
        call(&t, &poor, &JoinTask { task, role: Role::Validator }).await.unwrap_err().code,
        ErrorCode::InsufficientStake
    );

    // Wait for the round to open.
    let info = loop {
        if let Some(info) = round(&t, task).await
            && info.phase == RoundPhase::Training
        {
            break info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let model = |value: f32| filled(&spec, value);
    let small = model(0.001);
    let update = |bytes: &[u8]| SubmitUpdate {
        task,
        round: info.round,
        base_model: info.global_model,
        update: ContentHash::of(bytes),
        update_len: bytes.len() as u64,
        samples: 100,
        train_loss: 0.3,
    };
    let upload = |key: &Identity, message: SubmitUpdate, bytes: Vec<u8>| {
        let request = sign(key, &message);
        let t = &t;
        async move { code(t.upload(&request, &bytes).await.unwrap()) }
    };
    // SubmitUpdate: not sampled, wrong round, stale base model, too long, bad length, wrong shape.
    assert_eq!(upload(&outsider, update(&small), small.clone()).await, ErrorCode::NotSampled);
    let later = SubmitUpdate { round: RoundNumber::new(info.round.get() + 1), ..update(&small) };
    assert_eq!(upload(&trainer, later, small.clone()).await, ErrorCode::WrongRound);
    let stale = SubmitUpdate { base_model: zero, ..update(&small) };
    assert_eq!(upload(&trainer, stale, small.clone()).await, ErrorCode::WrongBaseModel);
    let long = SubmitUpdate { update_len: spec.payload_limit + 1, ..update(&small) };
    assert_eq!(upload(&trainer, long, small.clone()).await, ErrorCode::PayloadTooLarge);
    let short = SubmitUpdate { update_len: small.len() as u64 - 4, ..update(&small) };
    assert_eq!(upload(&trainer, short, small.clone()).await, ErrorCode::LengthMismatch);
    assert_eq!(net.service.store().submissions(task, info.round).await.unwrap(), [], "nothing recorded yet");
    // The artifact store failing under an upload (its directory of uploads
    // in progress gone): an internal error, not the trainer's fault, and
    // nothing recorded; the trainer may send again once the store is back.
    let uploads = place.dir.path().join("artifacts").join("tmp");
    std::fs::remove_dir(&uploads).unwrap();
    assert_eq!(upload(&trainer, update(&small), small.clone()).await, ErrorCode::Internal);
    std::fs::create_dir(&uploads).unwrap();
    assert_eq!(net.service.store().submissions(task, info.round).await.unwrap(), [], "nothing recorded");
    // A wrong shape is the trainer's one (invalid) submission of the round; a second is a duplicate.
    let mut wrong = spec.clone();
    wrong.model.tensors[0].shape = vec![784, 9];
    wrong.model.tensors[1].shape = vec![9];
    let misshapen = {
        let tensors: Vec<_> = wrong
            .model
            .tensors
            .iter()
            .map(|s| {
                starling_protocol::NamedTensor::new(
                    s.name.clone(),
                    s.shape.clone(),
                    vec![0.0; s.shape.iter().product()],
                )
            })
            .collect();
        UpdatePayload::encode_owned(&tensors).unwrap().into_bytes()
    };
    assert_eq!(upload(&trainer, update(&misshapen), misshapen.clone()).await, ErrorCode::ShapeMismatch);
    let recorded = net.service.store().submissions(task, info.round).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert!(matches!(recorded[0].check, PayloadCheck::Failed { .. }));
    assert_eq!(upload(&trainer, update(&small), small.clone()).await, ErrorCode::Duplicate);

    // SubmitScore: out of range, not assigned.
    let score =
        SubmitScore { task, round: info.round, submission: recorded[0].id, accuracy: 1.5, loss: 0.1, improvement: 0.0 };
    assert_eq!(call(&t, &validator, &score).await.unwrap_err().code, ErrorCode::InvalidField);
    let fine = SubmitScore { accuracy: 0.5, ..score };
    assert!(matches!(
        call(&t, &outsider, &fine).await.unwrap_err().code,
        ErrorCode::NotAssigned | ErrorCode::WrongPhase
    ));

    // Ledger requests: zero, too much, too long a lock, someone else's bond, early unstake, self-delegation,
    // too high a commission, a transfer to oneself, an issue by a non-admin.
    let refused = async |key: &Identity, message: SignedRequest| {
        let request =
            Request::Signed(message.sign(key.signing_key(), Nonce::generate(&mut rand::rng()), now_ms()).unwrap());
        send(&t, &request).await
    };
    assert_eq!(
        refused(&trainer, Stake { role: Role::Trainer, amount: 0, lock_days: 0 }.into()).await,
        ErrorCode::InvalidField
    );
    assert_eq!(
        refused(&trainer, Stake { role: Role::Trainer, amount: 10_000 * STAR, lock_days: 0 }.into()).await,
        ErrorCode::InsufficientBalance
    );
    assert_eq!(
        refused(&trainer, Stake { role: Role::Trainer, amount: STAR, lock_days: 400 }.into()).await,
        ErrorCode::InvalidField
    );
    assert_eq!(refused(&trainer, Unstake { bond: locked }.into()).await, ErrorCode::Unauthorized);
    assert_eq!(refused(&outsider, Unstake { bond: locked }.into()).await, ErrorCode::Locked);
    assert_eq!(refused(&outsider, Unstake { bond: 9_999 }.into()).await, ErrorCode::UnknownBond);
    let me = outsider.public_key();
    assert_eq!(
        refused(&outsider, Delegate { node: me, role: Role::Trainer, amount: STAR, lock_days: 0 }.into()).await,
        ErrorCode::InvalidField
    );
    assert_eq!(refused(&outsider, Undelegate { bond: locked }.into()).await, ErrorCode::InvalidField);
    assert_eq!(
        refused(&trainer, SetCommission { role: Role::Trainer, ppm: 900_000 }.into()).await,
        ErrorCode::InvalidField
    );
    assert_eq!(
        refused(&trainer, Transfer { to: trainer.public_key(), amount: STAR }.into()).await,
        ErrorCode::InvalidField
    );
    assert_eq!(
        refused(&trainer, Transfer { to: me, amount: 10_000 * STAR }.into()).await,
        ErrorCode::InsufficientBalance
    );
    assert_eq!(refused(&trainer, Issue { to: me, amount: STAR }.into()).await, ErrorCode::Unauthorized);

    // Reads of things that do not exist.
    let read = async |r: ReadRequest| t.call(&Request::Read(r)).await;
    assert_eq!(code(read(ReadRequest::GetTask { task: missing }).await.unwrap()), ErrorCode::UnknownTask);
    assert_eq!(code(read(ReadRequest::GetRound { task: missing }).await.unwrap()), ErrorCode::UnknownTask);
    assert_eq!(code(read(ReadRequest::FetchBlob { hash: zero }).await.unwrap()), ErrorCode::UnknownBlob);

    // The one refusal that costs: the correctly signed but misshapen update
    // was the trainer's submission of the (only) round, and the round's
    // settlement slashed 10% of its stake. Nothing else moved a µSTAR.
    assert!(net.service.wait_finished(task, Duration::from_secs(30)).await);
    let mut expected = before;
    expected.get_mut(&trainer.public_key()).unwrap().1 -= 5 * STAR;
    assert_eq!(books(&net, &everyone).await, expected);
    let audit = net.service.ledger().audit().await.unwrap();
    assert_eq!(audit.held, audit.issued);
    net.kill();
}

/// A task nobody pays for, or larger than this coordinator takes, is
/// refused before its model is read: no task row, no stored model, not a
/// µSTAR moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_or_oversized_task_leaves_no_trace() {
    let place = Place::new("unpaid", false).await.unwrap();
    let net = Network::start(&place, Duration::from_millis(500)).await;
    let t = net.transport();
    let (creator, stranger) = (identity(1), identity(9));
    fund(&t, &place.admin, &creator, 1_000 * STAR, None).await;
    let everyone = [place.admin.public_key(), creator.public_key(), stranger.public_key()];
    let before = books(&net, &everyone).await;

    let model = Model::init(ModelKind::LogReg, 3, &Device::flex()).to_payload().unwrap();
    let create =
        |spec: TaskSpec| CreateTask { spec, initial_model: *model.hash(), initial_model_len: model.len() as u64 };
    let attempt =
        async |who: &Identity, create: CreateTask| code(t.upload(&sign(who, &create), model.bytes()).await.unwrap());

    // A key holding nothing is not heard; one holding too little is refused.
    assert_eq!(attempt(&stranger, create(spec(3, 100 * STAR))).await, ErrorCode::Unauthorized);
    let after_fund = |mut books: BTreeMap<PublicKey, (u64, u64, u64)>| {
        books.get_mut(&stranger.public_key()).unwrap().0 += STAR;
        books
    };
    fund(&t, &place.admin, &stranger, STAR, None).await;
    assert_eq!(attempt(&stranger, create(spec(3, 100 * STAR))).await, ErrorCode::InsufficientBalance);
    // A pool that cannot pay every round (here, nothing at all).
    for pool in [0, 2] {
        let cheap = TaskSpec { reward_pool: pool, ..spec(3, 100 * STAR) };
        assert_eq!(attempt(&creator, create(cheap)).await, ErrorCode::InvalidField, "pool {pool}");
    }
    // Larger than the coordinator's largest model, from a key that could pay.
    let huge = TaskSpec { payload_limit: DEFAULT_MAX_MODEL_BYTES + 1, ..spec(3, 100 * STAR) };
    assert_eq!(attempt(&creator, create(huge)).await, ErrorCode::PayloadTooLarge);

    let tasks = net.service.store().tasks(PageRequest::first(10)).await.unwrap();
    assert!(tasks.items.is_empty(), "no task row: {:?}", tasks.items.iter().map(|t| t.id).collect::<Vec<_>>());
    assert_eq!(net.service.artifacts().len(*model.hash()).await.unwrap(), None, "no stored model");
    assert_eq!(books(&net, &everyone).await, after_fund(before), "nothing moved but the 1 STAR issued");

    // The same model from a key that pays is taken.
    let (task, _) = create_task(&t, &creator, spec(3, 100 * STAR)).await;
    assert!(net.service.store().task(task).await.unwrap().is_some());
    net.kill();
}
