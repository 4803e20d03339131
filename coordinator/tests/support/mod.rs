//! A whole network on loopback for the coordinator's end-to-end tests: a real
//! coordinator over QUIC (SQLite, or PostgreSQL when `DATABASE_URL` is set,
//! and a local artifact directory), honest trainer and validator clients,
//! and adversaries that speak the wire protocol directly.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use burn::prelude::Device;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use starling_client::{Backoff, Ended, QuicTransport, Shutdown, Transport, TrustSetting, dial, now_ms};
use starling_coordinator::artifacts::{AnyArtifacts, LocalArtifacts};
use starling_coordinator::service::{Coordinator, ModelEvaluator, ServiceConfig};
use starling_coordinator::store::{AnyCoordinatorStore, open_any};
use starling_models::data::{Dataset, Mnist, Verify, partition};
use starling_models::train::{Features, Quiet};
use starling_models::zoo::{Model, ModelKind};
use starling_net::{Identity, Limits, ServerIdentity, server_endpoint};
use starling_protocol::{
    AssignmentInfo, ContentHash, CreateTask, ErrorCode, Issue, Message, Nonce, ReadRequest, Request, Response,
    ResponseBody, Role, RoundInfo, RoundNumber, RoundPhase, Stake, SubmitScore, SubmitUpdate, TaskId, TaskSpec,
    UpdatePayload, WireError,
};
use starling_staking::{AnyLedgerStore, MICRO_PER_STAR, Params};
use starling_trainer::{TrainerClient, TrainerOptions};
use starling_validator::{ValidatorClient, ValidatorOptions};

pub const STAR: u64 = MICRO_PER_STAR;

pub fn mnist_dir() -> PathBuf {
    std::env::var_os("STARLING_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/mnist"))
}

pub fn mnist() -> Mnist {
    Mnist::load(&mnist_dir(), Verify::ShapeOnly).expect("MNIST in ../shared/datasets/mnist")
}

pub fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed))
}

/// Quick retries and polls, so rounds move at the speed of training.
pub fn fast() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        multiplier: 2.0,
        jitter: 0.5,
        max_attempts: Some(20),
    }
}

/// The story's task: logistic regression on MNIST, every trainer sampled.
pub fn spec(rounds: u32, reward_pool: u64) -> TaskSpec {
    let kind = ModelKind::LogReg;
    TaskSpec::builder(kind.model_spec(), kind.data_spec())
        .rounds(rounds)
        .reward_pool(reward_pool)
        .min_stakes(10 * STAR, 10 * STAR)
        .deadlines(120, 120)
        .max_update_norm(Some(100.0))
        .build()
        .unwrap()
}

pub type Service = Coordinator<AnyCoordinatorStore, AnyLedgerStore, AnyArtifacts>;

/// Where a network keeps its state, so that a coordinator can be stopped and
/// started again over it.
pub struct Place {
    pub dir: tempfile::TempDir,
    pub database_url: String,
    pub admin: Identity,
    /// Signed envelopes one key may send within the replay window (the
    /// protocol's default if `None`): the scale benchmark's admin funds a
    /// thousand keys.
    pub per_signer: Option<usize>,
    /// Envelopes the whole replay store holds (the protocol's default if
    /// `None`): small, to show what can and cannot fill it.
    pub max_entries: Option<usize>,
    /// Time for a request frame (and the fixed part of a blob's); the
    /// service's default if `None`.
    pub request_timeout: Option<Duration>,
    /// Connections one address may hold (the service's default if `None`):
    /// every client of a test or benchmark comes from 127.0.0.1.
    pub max_connections_per_address: Option<usize>,
    /// The artifact store (`artifacts/` in `dir` if `None`).
    pub artifacts: Option<AnyArtifacts>,
}

impl Place {
    /// A fresh place: a SQLite file, or a fresh PostgreSQL schema when
    /// `DATABASE_URL` is set and `postgres` is asked for.
    pub async fn new(name: &str, postgres: bool) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let database_url = if postgres {
            let base = std::env::var("DATABASE_URL").ok()?;
            let schema = format!("coord_{name}_{}", std::process::id());
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&admin).await.unwrap();
            sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-c%20search_path%3D{schema}")
        } else {
            format!("sqlite://{}?mode=rwc", dir.path().join("starling.db").display())
        };
        Some(Self {
            dir,
            database_url,
            admin: identity(1_000),
            per_signer: None,
            max_entries: None,
            request_timeout: None,
            max_connections_per_address: None,
            artifacts: None,
        })
    }
}

/// A running coordinator.
pub struct Network {
    pub service: Service,
    pub addr: SocketAddr,
    identity: ServerIdentity,
    endpoint: starling_net::quinn::Endpoint,
}

impl Network {
    pub async fn start(place: &Place, join_window: Duration) -> Self {
        Self::start_at(place, join_window, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a coordinator over `place` listening on `addr` (a restarted
    /// coordinator takes its predecessor's address, so clients reconnect).
    pub async fn start_at(place: &Place, join_window: Duration, addr: SocketAddr) -> Self {
        let store = open_any(&place.database_url).await.unwrap();
        let admin = place.admin.public_key();
        let ledger = starling_staking::open_any(&place.database_url, admin, Params::default()).await.unwrap();
        let artifacts = match &place.artifacts {
            Some(artifacts) => artifacts.clone(),
            None => AnyArtifacts::Local(LocalArtifacts::open(place.dir.path().join("artifacts")).await.unwrap()),
        };
        let mut config = ServiceConfig { join_window, tick: Duration::from_millis(50), ..ServiceConfig::new(admin) };
        if let Some(n) = place.per_signer {
            config.replay.max_entries_per_signer = n;
            config.replay.max_entries = config.replay.max_entries.max(4 * n);
        }
        if let Some(n) = place.max_entries {
            config.replay.max_entries = n;
        }
        if let Some(timeout) = place.request_timeout {
            config.request_timeout = timeout;
        }
        if let Some(n) = place.max_connections_per_address {
            config.max_connections_per_address = n;
        }
        let held_out = mnist().test.subset(&(5_000..7_000).collect::<Vec<_>>());
        let evaluator = Arc::new(ModelEvaluator::new("mnist", &held_out));
        let service = Coordinator::start(store, ledger, artifacts, config, Some(evaluator)).await.unwrap();
        let identity = ServerIdentity::load_or_create(place.dir.path().join("tls")).unwrap();
        let endpoint = server_endpoint(addr, &identity, &Limits::coordinator()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let serving = service.clone();
        let accept = endpoint.clone();
        tokio::spawn(async move { serving.serve_quic(accept).await });
        Self { service, addr, identity, endpoint }
    }

    /// Stops the coordinator as a crash would, as far as clients can tell:
    /// every connection drops, nothing more is answered or driven.
    pub fn kill(self) {
        self.service.shutdown();
        self.endpoint.close(0u32.into(), b"killed");
    }

    /// The pinned fingerprint of the coordinator's certificate.
    pub fn fingerprint(&self) -> starling_net::Fingerprint {
        self.identity.fingerprint()
    }

    pub fn transport(&self) -> QuicTransport {
        dial(&self.addr.to_string(), TrustSetting::Pinned(self.identity.fingerprint())).unwrap().transport
    }
}

/// An honest trainer: the real client, run until the task ends.
pub async fn honest_trainer(
    transport: QuicTransport,
    me: Identity,
    task: TaskId,
    data: Features,
    seed: u64,
    rounds: u32,
) {
    let cache = tempfile::tempdir().unwrap();
    let options = TrainerOptions { retry: fast(), poll: Backoff { max_attempts: None, ..fast() }, seed };
    let client = TrainerClient::new(me, transport, cache.path(), Device::flex(), options).unwrap();
    let report = client.run_task(task, &data, &mut Quiet, Shutdown::never()).await.unwrap();
    assert_eq!(report.ended, Ended::TaskFinished);
    assert_eq!(report.submitted.len(), rounds as usize, "{report:?}");
}

/// An honest validator: the real client, run until the task ends.
pub async fn honest_validator(transport: QuicTransport, me: Identity, task: TaskId, data: Features, seed: u64) {
    let cache = tempfile::tempdir().unwrap();
    let options =
        ValidatorOptions { retry: fast(), poll: Backoff { max_attempts: None, ..fast() }, seed, eval_batch: 500 };
    let client = ValidatorClient::new(me, transport, cache.path(), Device::flex(), options).unwrap();
    let report = client.run_task(task, &data, &mut Quiet, Shutdown::never()).await.unwrap();
    assert_eq!(report.ended, Ended::TaskFinished);
    assert!(!report.scored.is_empty());
}

pub fn sign<M: Message>(key: &Identity, message: &M) -> Request {
    Request::sign(key.signing_key(), message, Nonce::generate(&mut rand::rng()), now_ms()).unwrap()
}

/// Sends a signed request and returns the answer.
pub async fn call<M: Message>(
    transport: &QuicTransport,
    key: &Identity,
    message: &M,
) -> Result<ResponseBody, WireError> {
    transport.call(&sign(key, message)).await.unwrap().into_result()
}

/// Issues `amount` to `to` and stakes `stake` of it in `role` (lock 0 days).
pub async fn fund(transport: &QuicTransport, admin: &Identity, to: &Identity, amount: u64, stake: Option<(Role, u64)>) {
    call(transport, admin, &Issue { to: to.public_key(), amount }).await.unwrap();
    if let Some((role, amount)) = stake {
        let body = call(transport, to, &Stake { role, amount, lock_days: 0 }).await.unwrap();
        assert!(matches!(body, ResponseBody::Bonded { .. }), "{body:?}");
    }
}

/// Creates the task over the wire, uploading a seeded initial model.
pub async fn create_task(transport: &QuicTransport, creator: &Identity, spec: TaskSpec) -> (TaskId, Vec<u8>) {
    create_task_with(transport, creator, spec, ModelKind::LogReg).await
}

/// Creates a task for a zoo model `kind` (which must be the spec's).
pub async fn create_task_with(
    transport: &QuicTransport,
    creator: &Identity,
    spec: TaskSpec,
    kind: ModelKind,
) -> (TaskId, Vec<u8>) {
    let model = Model::init(kind, 3, &Device::flex()).to_payload().unwrap();
    let create = CreateTask { spec, initial_model: *model.hash(), initial_model_len: model.len() as u64 };
    let response = transport.upload(&sign(creator, &create), model.bytes()).await.unwrap();
    match response.into_result() {
        Ok(ResponseBody::TaskCreated { task }) => (task, model.into_bytes()),
        other => panic!("task creation: {other:?}"),
    }
}

/// Non-IID training data: the paper's label shards, two per client.
pub fn shards(train: &Dataset, clients: usize, per_client: usize) -> Vec<Features> {
    // Shards over the first `clients * per_client` images only, to keep rounds quick.
    let head = train.subset(&(0..clients * per_client).collect::<Vec<_>>());
    let labels: Vec<u8> = (0..head.len()).map(|i| head.label(i)).collect();
    partition::shards(&labels, clients, 2, 7).unwrap().iter().map(|part| Features::new(&head.subset(part))).collect()
}

pub async fn round(transport: &QuicTransport, task: TaskId) -> Option<RoundInfo> {
    match transport.call(&Request::Read(ReadRequest::GetRound { task })).await {
        Ok(Response::Ok(ResponseBody::Round(info))) => Some(info),
        _ => None,
    }
}

/// Every assignment of `validator` in `round`, page by page (each page a
/// signed request); those of the pages read before a failed read.
pub async fn assignments(
    transport: &QuicTransport,
    task: TaskId,
    round: RoundNumber,
    validator: &Identity,
) -> Vec<AssignmentInfo> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let read = starling_protocol::GetAssignments { task, round, after };
        let Ok(ResponseBody::Assignments(page)) = call(transport, validator, &read).await else {
            return all;
        };
        all.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return all,
        }
    }
}

/// What an adversarial trainer uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// A well-formed update whose first value is NaN.
    NaN,
    /// Every value 10: a norm far above the task's bound.
    HugeNorm,
}

/// An update payload for `spec`'s model with every value `value`.
pub fn filled(spec: &TaskSpec, value: f32) -> Vec<u8> {
    let tensors: Vec<_> = spec
        .model
        .tensors
        .iter()
        .map(|t| {
            starling_protocol::NamedTensor::new(t.name.clone(), t.shape.clone(), vec![value; t.shape.iter().product()])
        })
        .collect();
    UpdatePayload::encode_owned(&tensors).unwrap().into_bytes()
}

fn poisoned(spec: &TaskSpec, poison: Poison) -> Vec<u8> {
    let value = match poison {
        Poison::NaN => 0.0,
        Poison::HugeNorm => 10.0,
    };
    let mut bytes = filled(spec, value);
    if poison == Poison::NaN {
        // safetensors: u64 header length, the header, then the data.
        let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        bytes[8 + header..8 + header + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    }
    bytes
}

/// An adversarial trainer: joins, then uploads `poison` in every round it is
/// sampled in. Returns each round's answer.
pub async fn poisoner(
    transport: QuicTransport,
    me: Identity,
    task: TaskId,
    spec: TaskSpec,
    poison: Poison,
) -> Vec<(RoundNumber, Result<ResponseBody, WireError>)> {
    call(&transport, &me, &starling_protocol::JoinTask { task, role: Role::Trainer }).await.unwrap();
    let bytes = poisoned(&spec, poison);
    let mut answers: Vec<(RoundNumber, Result<ResponseBody, WireError>)> = Vec::new();
    loop {
        let Some(info) = round(&transport, task).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if info.task_finished {
            return answers;
        }
        let done = answers.iter().any(|(r, _)| *r == info.round);
        if info.phase == RoundPhase::Training && info.is_sampled(&me.public_key()) && !done {
            let update = SubmitUpdate {
                task,
                round: info.round,
                base_model: info.global_model,
                update: ContentHash::of(&bytes),
                update_len: bytes.len() as u64,
                samples: 600,
                train_loss: 0.5,
            };
            // A lost connection (the coordinator stopped before answering)
            // is tried again, as a real client does; the restarted
            // coordinator has the record and refuses the second copy.
            if let Ok(answer) = transport.upload(&sign(&me, &update), &bytes).await {
                answers.push((info.round, answer.into_result()));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A dishonest validator: joins, then scores every submission it is
/// assigned with a uniformly random accuracy, without evaluating anything.
pub async fn random_validator(transport: QuicTransport, me: Identity, task: TaskId, seed: u64) -> usize {
    call(&transport, &me, &starling_protocol::JoinTask { task, role: Role::Validator }).await.unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scored = std::collections::HashSet::new();
    loop {
        let Some(info) = round(&transport, task).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if info.task_finished {
            return scored.len();
        }
        if info.phase == RoundPhase::Validating {
            for assignment in assignments(&transport, task, info.round, &me).await {
                if !scored.insert(assignment.submission) {
                    continue;
                }
                let score = SubmitScore {
                    task,
                    round: info.round,
                    submission: assignment.submission,
                    accuracy: rng.random_range(0.0..1.0),
                    loss: 1.0,
                    improvement: 0.0,
                };
                let answer = call(&transport, &me, &score).await;
                assert!(
                    answer.is_ok() || answer.as_ref().is_err_and(|e| e.code == ErrorCode::WrongPhase),
                    "{answer:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
