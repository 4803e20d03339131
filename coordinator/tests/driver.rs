//! Whole rounds of a task's driver in memory: a coordinator over an
//! in-memory SQLite store and ledger and an in-memory artifact store,
//! requests handed to it in process
//! ([`Coordinator::handle`], the same pipeline as over QUIC), a clock moved by
//! hand and each driver pass run by the test ([`Coordinator::drive`]). No
//! sockets, no sleeps: every deadline passes when the test says so.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use starling_coordinator::artifacts::MemoryArtifacts;
use starling_coordinator::round::{UnixMillis, VerdictOutcome};
use starling_coordinator::service::{
    Coordinator, DEFAULT_MAX_OPEN_TASKS_PER_CREATOR, Drive, Evaluator, ManualClock, ServiceConfig,
};
use starling_coordinator::store::{CoordinatorStore, SqliteCoordinatorStore, VerdictStore};
use starling_net::Identity;
use starling_protocol::{
    ContentHash, CreateTask, DataSpec, ErrorCode, Issue, JoinTask, Message, ModelSpec, NamedTensor, Nonce, PublicKey,
    Request, Response, ResponseBody, Role, RoundNumber, RoundPhase, Stake, SubmissionId, SubmitScore, SubmitUpdate,
    TaskId, TaskSpec, TensorSpec, UpdatePayload, WireError,
};
use starling_staking::{LedgerStore, MICRO_PER_STAR, Params, SqliteStore};
use starling_web::{ReadModel, SubmissionOutcome};

const STAR: u64 = MICRO_PER_STAR;
/// 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000_000;
const TRAINING_SECS: u32 = 60;
const VALIDATION_SECS: u32 = 30;

type Service = Coordinator<SqliteCoordinatorStore, SqliteStore, MemoryArtifacts>;

/// A coordinator on a manual clock whose drivers the test runs, and the
/// stores under it, kept to start another coordinator over them.
struct Bench {
    service: Service,
    clock: ManualClock,
    admin: Identity,
    store: SqliteCoordinatorStore,
    ledger: SqliteStore,
    artifacts: MemoryArtifacts,
    evaluator: Option<Arc<dyn Evaluator>>,
    rng: ChaCha8Rng,
}

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha8Rng::seed_from_u64(seed))
}

/// A task on a two-value model, every trainer sampled, FedAvg.
fn spec(rounds: u32) -> TaskSpec {
    let model = ModelSpec { name: "tiny".into(), tensors: vec![TensorSpec::new("w", [2])] };
    let data = DataSpec { dataset: "toy".into(), input_shape: vec![2], num_classes: 2 };
    TaskSpec::builder(model, data)
        .rounds(rounds)
        .reward_pool(100 * STAR)
        .min_stakes(10 * STAR, 10 * STAR)
        .deadlines(TRAINING_SECS, VALIDATION_SECS)
        .build()
        .unwrap()
}

fn payload(values: [f32; 2]) -> Vec<u8> {
    UpdatePayload::encode_owned(&[NamedTensor::new("w", vec![2], values.to_vec())]).unwrap().into_bytes()
}

fn decode(bytes: &[u8]) -> Vec<f32> {
    let spec = spec(1);
    let tensors = starling_protocol::payload::decode_view(bytes, &spec.model.tensors, usize::MAX).unwrap();
    tensors[0].values().collect()
}

fn config(admin: PublicKey, clock: &ManualClock, harm_threshold: Option<f64>) -> ServiceConfig {
    ServiceConfig {
        join_window: Duration::ZERO,
        harm_threshold,
        clock: clock.clock(),
        run_drivers: false,
        ..ServiceConfig::new(admin)
    }
}

impl Bench {
    async fn new(harm_threshold: Option<f64>) -> Self {
        Self::with_evaluator(harm_threshold, None).await
    }

    /// A bench whose coordinator measures each new global model with `evaluator`.
    async fn with_evaluator(harm_threshold: Option<f64>, evaluator: Option<Arc<dyn Evaluator>>) -> Self {
        let admin = identity(1_000);
        let clock = ManualClock::new(UnixMillis::new(T0));
        let store = SqliteCoordinatorStore::open("sqlite::memory:").await.unwrap();
        let ledger = SqliteStore::open("sqlite::memory:", admin.public_key(), Params::default()).await.unwrap();
        let artifacts = MemoryArtifacts::new();
        let config = config(admin.public_key(), &clock, harm_threshold);
        let service = Coordinator::start(store.clone(), ledger.clone(), artifacts.clone(), config, evaluator.clone())
            .await
            .unwrap();
        Self { service, clock, admin, store, ledger, artifacts, evaluator, rng: ChaCha8Rng::seed_from_u64(7) }
    }

    /// Stops this coordinator and starts another over the same stores, on
    /// the same clock: what a restart after a crash finds.
    async fn restart(&mut self, harm_threshold: Option<f64>) {
        self.service.shutdown();
        let config = config(self.admin.public_key(), &self.clock, harm_threshold);
        let (store, ledger, artifacts) = (self.store.clone(), self.ledger.clone(), self.artifacts.clone());
        self.service = Coordinator::start(store, ledger, artifacts, config, self.evaluator.clone()).await.unwrap();
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    async fn send<M: Message>(
        &mut self,
        who: &Identity,
        message: &M,
        blob: Option<&[u8]>,
    ) -> Result<ResponseBody, WireError> {
        let nonce = Nonce::generate(&mut self.rng);
        let request = Request::sign(who.signing_key(), message, nonce, self.clock.now().get()).unwrap();
        match self.service.handle(request, blob).await {
            Response::Ok(body) => Ok(body),
            Response::Error(error) => Err(error),
        }
    }

    async fn ok<M: Message>(&mut self, who: &Identity, message: &M, blob: Option<&[u8]>) -> ResponseBody {
        self.send(who, message, blob).await.unwrap_or_else(|e| panic!("refused: {e}"))
    }

    /// Gives `who` 1,000 STAR and bonds `stake` of it as `role`.
    async fn fund(&mut self, who: &Identity, role: Role, stake: u64) {
        let admin = self.admin.clone();
        self.ok(&admin, &Issue { to: who.public_key(), amount: 1_000 * STAR }, None).await;
        self.ok(who, &Stake { role, amount: stake, lock_days: 0 }, None).await;
    }

    /// Funds and stakes 50 STAR for each of `trainers` and `validators`.
    async fn fund_all(&mut self, trainers: &[Identity], validators: &[Identity]) {
        for t in trainers {
            self.fund(t, Role::Trainer, 50 * STAR).await;
        }
        for v in validators {
            self.fund(v, Role::Validator, 50 * STAR).await;
        }
    }

    /// The creator of every task (`identity(500)`), given 1,000 STAR more,
    /// with a request for a task of `rounds` rounds and its initial model.
    async fn create_request(&mut self, rounds: u32) -> (Identity, CreateTask, Vec<u8>) {
        let creator = identity(500);
        let admin = self.admin.clone();
        self.ok(&admin, &Issue { to: creator.public_key(), amount: 1_000 * STAR }, None).await;
        let model = payload([0.0, 0.0]);
        let initial_model = ContentHash::of(&model);
        (creator, CreateTask { spec: spec(rounds), initial_model, initial_model_len: model.len() as u64 }, model)
    }

    /// Posts a task from a funded creator and has `trainers` and
    /// `validators` join it.
    async fn task(&mut self, rounds: u32, trainers: &[Identity], validators: &[Identity]) -> TaskId {
        let (creator, create, model) = self.create_request(rounds).await;
        let ResponseBody::TaskCreated { task } = self.ok(&creator, &create, Some(&model)).await else { panic!() };
        for (who, role) in
            trainers.iter().map(|t| (t, Role::Trainer)).chain(validators.iter().map(|v| (v, Role::Validator)))
        {
            self.ok(who, &JoinTask { task, role }, None).await;
        }
        task
    }

    async fn drive(&self, task: TaskId) -> Drive {
        self.service.drive(task).await.unwrap()
    }

    async fn progress(&self, task: TaskId) -> (RoundNumber, RoundPhase) {
        self.service.machine(task).await.unwrap().progress().unwrap()
    }

    /// `trainer` sends `delta` as its update to the current round.
    async fn submit(&mut self, task: TaskId, trainer: &Identity, delta: [f32; 2], samples: u64) -> SubmissionId {
        let update = self.update(task, delta, samples).await;
        match self.ok(trainer, &update, Some(&payload(delta))).await {
            ResponseBody::UpdateAccepted { submission } => submission,
            other => panic!("{other:?}"),
        }
    }

    /// The message announcing `delta` (`samples` examples) as an update to
    /// the current round.
    async fn update(&self, task: TaskId, delta: [f32; 2], samples: u64) -> SubmitUpdate {
        let machine = self.service.machine(task).await.unwrap();
        let bytes = payload(delta);
        SubmitUpdate {
            task,
            round: machine.round().unwrap(),
            base_model: machine.global_model().unwrap(),
            update: ContentHash::of(&bytes),
            update_len: bytes.len() as u64,
            samples,
            train_loss: 0.5,
        }
    }

    async fn score(&mut self, task: TaskId, validator: &Identity, submission: SubmissionId, accuracy: f64) {
        let round = self.service.machine(task).await.unwrap().round().unwrap();
        let score = SubmitScore { task, round, submission, accuracy, loss: 1.0 - accuracy, improvement: 0.0 };
        self.ok(validator, &score, None).await;
    }

    async fn global_model(&self, task: TaskId) -> Vec<f32> {
        let hash = self.service.machine(task).await.unwrap().global_model().unwrap();
        decode(&self.service.blob(hash).await.unwrap())
    }

    async fn free(&self, who: &Identity) -> u64 {
        self.ledger.free_balance(&who.public_key()).await.unwrap().micro()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_opens_trains_validates_settles_and_the_next_one_opens() {
    let mut bench = Bench::new(None).await;
    let trainers = [identity(1), identity(2)];
    let validators = [identity(11), identity(12)];
    bench.fund_all(&trainers, &validators).await;
    let task = bench.task(2, &trainers, &validators).await;
    assert_eq!(bench.drive(task).await, Drive::Running, "the join window is zero: round 0 opens");
    assert_eq!(bench.progress(task).await, (RoundNumber::new(0), RoundPhase::Training));

    let first = bench.submit(task, &trainers[0], [1.0, 2.0], 10).await;
    bench.advance(5);
    let second = bench.submit(task, &trainers[1], [3.0, 6.0], 30).await;
    assert_eq!(bench.progress(task).await.1, RoundPhase::Validating, "everyone submitted: training closed");
    for v in validators.clone() {
        bench.score(task, &v, first, 0.8).await;
        bench.score(task, &v, second, 0.9).await;
    }
    assert_eq!(bench.progress(task).await.1, RoundPhase::Aggregating, "every score in: agreed");
    let before = bench.free(&trainers[0]).await;
    assert_eq!(bench.drive(task).await, Drive::Running);

    // Aggregated (sample-weighted mean of the deltas), settled, recorded; round 1 trains.
    assert_eq!(bench.progress(task).await, (RoundNumber::new(1), RoundPhase::Training));
    assert_eq!(bench.global_model(task).await, vec![2.5, 5.0]);
    assert!(bench.free(&trainers[0]).await > before, "trainers are paid at settlement");
    let rounds = bench.store.rounds(task, starling_staking::PageRequest::first(10)).await.unwrap().items;
    assert_eq!((rounds.len(), rounds[0].accepted, rounds[0].rejected), (1, 2, 0));
    let verdicts = bench.store.round_verdicts(task, RoundNumber::new(0)).await.unwrap().expect("recorded");
    assert!(verdicts.submissions.iter().all(|s| s.outcome == VerdictOutcome::Accepted));
    assert_eq!(verdicts.validators.iter().map(|v| v.stake).collect::<Vec<_>>(), vec![50 * u128::from(STAR); 2]);

    // Driving again changes nothing until someone acts or a deadline passes.
    assert_eq!(bench.drive(task).await, Drive::Running);
    assert_eq!(bench.progress(task).await, (RoundNumber::new(1), RoundPhase::Training));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_straggler_is_dropped_at_the_training_deadline_neither_paid_nor_slashed() {
    let mut bench = Bench::new(None).await;
    let trainers = [identity(1), identity(2), identity(3)];
    let validator = identity(11);
    bench.fund_all(&trainers, std::slice::from_ref(&validator)).await;
    let task = bench.task(1, &trainers, std::slice::from_ref(&validator)).await;
    bench.drive(task).await;
    let a = bench.submit(task, &trainers[0], [1.0, 1.0], 10).await;
    let b = bench.submit(task, &trainers[1], [1.0, 1.0], 10).await;
    let straggler_before = bench.free(&trainers[2]).await;

    // A second before the deadline the round still waits for the third.
    bench.advance(u64::from(TRAINING_SECS) - 1);
    bench.drive(task).await;
    assert_eq!(bench.progress(task).await.1, RoundPhase::Training);
    bench.advance(1);
    bench.drive(task).await;
    assert_eq!(bench.progress(task).await.1, RoundPhase::Validating, "the deadline closed training");
    bench.score(task, &validator, a, 0.7).await;
    bench.score(task, &validator, b, 0.7).await;
    assert_eq!(bench.drive(task).await, Drive::Finished);

    let verdicts = bench.store.round_verdicts(task, RoundNumber::new(0)).await.unwrap().unwrap();
    let judged: Vec<PublicKey> = verdicts.submissions.iter().map(|s| s.trainer).collect();
    assert!(!judged.contains(&trainers[2].public_key()), "the straggler has no verdict");
    let staked = bench.ledger.balances(&trainers[2].public_key()).await.unwrap().staked.micro();
    assert_eq!((bench.free(&trainers[2]).await, staked), (straggler_before, 50 * STAR));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_coordinator_resumes_the_round_it_stopped_in() {
    let mut bench = Bench::new(None).await;
    let trainers = [identity(1), identity(2)];
    let validator = identity(11);
    bench.fund_all(&trainers, std::slice::from_ref(&validator)).await;
    let task = bench.task(1, &trainers, std::slice::from_ref(&validator)).await;
    bench.drive(task).await;
    let first = bench.submit(task, &trainers[0], [2.0, 0.0], 10).await;

    // Down after one of two submissions; up again ten seconds later.
    bench.restart(None).await;
    bench.advance(10);
    assert_eq!(bench.progress(task).await, (RoundNumber::new(0), RoundPhase::Training));
    // The same update again, in a new request (a fresh nonce: not a replay).
    let again = bench.update(task, [2.0, 0.0], 10).await;
    let refused = bench.send(&trainers[0], &again, Some(&payload([2.0, 0.0]))).await.unwrap_err();
    assert_eq!(refused.code, starling_protocol::ErrorCode::Duplicate, "the acknowledged update survived: {refused}");
    let second = bench.submit(task, &trainers[1], [0.0, 2.0], 10).await;
    bench.score(task, &validator, first, 0.6).await;

    // Down again mid-validation: the recorded score is counted after the restart.
    bench.restart(None).await;
    bench.score(task, &validator, second, 0.6).await;
    assert_eq!(bench.drive(task).await, Drive::Finished);
    assert_eq!(bench.global_model(task).await, vec![1.0, 1.0]);
    let verdicts = bench.store.round_verdicts(task, RoundNumber::new(0)).await.unwrap().unwrap();
    assert_eq!(verdicts.submissions.len(), 2);
}

/// The dashboard shows the verdict the round was paid by. Three validators
/// hold 100, 60 and 50 STAR; the third scores the only submission 1.0, the
/// others 0.6. The stake-weighted median is 0.6, below the harm threshold of
/// 0.7: the trainer is slashed, and the third validator's agreement is 0.6.
/// Then the third validator stakes 1,000 STAR more. Judged again with
/// today's stakes, the median would be 1.0, the submission accepted and the
/// dissenter in full agreement; the page must still say what was paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_task_page_shows_the_verdict_that_was_paid_even_after_stakes_change() {
    let mut bench = Bench::new(Some(0.7)).await;
    let trainer = identity(1);
    let validators = [identity(11), identity(12), identity(13)];
    bench.fund(&trainer, Role::Trainer, 50 * STAR).await;
    for (v, stake) in validators.iter().zip([100, 60, 50]) {
        bench.fund(v, Role::Validator, stake * STAR).await;
    }
    let task = bench.task(1, std::slice::from_ref(&trainer), &validators).await;
    bench.drive(task).await;
    let submission = bench.submit(task, &trainer, [1.0, 1.0], 10).await;
    for (v, accuracy) in validators.clone().iter().zip([0.6, 0.6, 1.0]) {
        bench.score(task, v, submission, accuracy).await;
    }
    assert_eq!(bench.drive(task).await, Drive::Finished);

    let dissenter = validators[2].clone();
    bench.ok(&dissenter, &Stake { role: Role::Validator, amount: 900 * STAR, lock_days: 0 }, None).await;
    let detail = bench.service.task(task).await.unwrap().expect("the task");
    let shown = &detail.submissions[0];
    assert_eq!(shown.consensus_score, Some(0.6));
    assert!(
        matches!(&shown.outcome, SubmissionOutcome::Rejected { reason } if reason.contains("harm threshold")),
        "{shown:?}"
    );
    let slashed = detail.payouts.iter().find(|p| p.identity == trainer.public_key()).map(|p| p.slashed);
    assert!(slashed.is_some_and(|s| s > 0), "the ledger slashed the trainer: {:?}", detail.payouts);
    let standing = detail.validators.iter().find(|s| s.validator == dissenter.public_key()).unwrap();
    assert!((standing.agreement - 0.6).abs() < 1e-6, "{standing:?}");
    let recorded = bench.store.round_verdicts(task, RoundNumber::new(0)).await.unwrap().unwrap();
    let weighed: Vec<u128> = recorded.validators.iter().map(|v| v.stake).collect();
    assert!(weighed.contains(&(50 * u128::from(STAR))), "the stakes the round weighed: {weighed:?}");
}

/// An evaluator that fails: with an error, or by panicking.
struct Broken {
    panics: bool,
}

impl Evaluator for Broken {
    fn evaluate(&self, _: &TaskSpec, _: &[u8]) -> Result<Option<(f64, f64)>, String> {
        assert!(!self.panics, "the evaluator broke");
        Err("no data today".to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_evaluator_does_not_stall_the_task() {
    for panics in [false, true] {
        let mut bench = Bench::with_evaluator(None, Some(Arc::new(Broken { panics }))).await;
        let (trainer, validator) = (identity(1), identity(11));
        bench.fund_all(std::slice::from_ref(&trainer), std::slice::from_ref(&validator)).await;
        let task = bench.task(1, std::slice::from_ref(&trainer), std::slice::from_ref(&validator)).await;
        bench.drive(task).await;
        let submission = bench.submit(task, &trainer, [1.0, 1.0], 10).await;
        bench.score(task, &validator, submission, 0.7).await;
        assert_eq!(bench.drive(task).await, Drive::Finished, "panics: {panics}");
        let rounds = bench.store.rounds(task, starling_staking::PageRequest::first(10)).await.unwrap().items;
        assert_eq!(rounds.len(), 1, "the round is recorded");
        assert_eq!((rounds[0].accuracy, rounds[0].loss), (None, None), "unmeasured");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_from_before_a_restart_cannot_be_replayed_after_it() {
    let mut bench = Bench::new(None).await;
    let (creator, create, model) = bench.create_request(1).await;
    let nonce = Nonce::generate(&mut bench.rng);
    let request = Request::sign(creator.signing_key(), &create, nonce, bench.clock.now().get()).unwrap();
    let refusal = |response: Response| match response {
        Response::Error(error) => error.code,
        Response::Ok(body) => panic!("taken again: {body:?}"),
    };

    let created = bench.service.handle(request.clone(), Some(&model)).await;
    assert!(matches!(created, Response::Ok(ResponseBody::TaskCreated { .. })), "{created:?}");
    // Within one run the replay is caught by the nonce the coordinator remembers...
    assert_eq!(refusal(bench.service.handle(request.clone(), Some(&model)).await), ErrorCode::Replay);
    // ...and after a restart, which forgot it, by when it was signed.
    bench.advance(1);
    bench.restart(None).await;
    assert_eq!(refusal(bench.service.handle(request, Some(&model)).await), ErrorCode::Stale);

    let tasks = bench.store.tasks(starling_staking::PageRequest::first(10)).await.unwrap().items;
    assert_eq!(tasks.len(), 1, "one task, escrowed once");
    assert_eq!(bench.free(&creator).await, 900 * STAR);
    // A request signed now is taken as usual.
    assert!(matches!(bench.ok(&creator, &create, Some(&model)).await, ResponseBody::TaskCreated { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creator_cannot_open_tasks_without_end() {
    let mut bench = Bench::new(None).await;
    for _ in 0..DEFAULT_MAX_OPEN_TASKS_PER_CREATOR {
        bench.task(1, &[], &[]).await;
    }
    // The same creator, funded for one more task.
    let (creator, create, model) = bench.create_request(1).await;
    let refused = bench.send(&creator, &create, Some(&model)).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::RateLimited, "{refused}");
    let tasks = bench.store.tasks(starling_staking::PageRequest::first(100)).await.unwrap().items;
    assert_eq!(tasks.len() as u64, DEFAULT_MAX_OPEN_TASKS_PER_CREATOR);
    // Another creator is not held back by the first one's tasks.
    let other = identity(501);
    let admin = bench.admin.clone();
    bench.ok(&admin, &Issue { to: other.public_key(), amount: 1_000 * STAR }, None).await;
    assert!(matches!(bench.ok(&other, &create, Some(&model)).await, ResponseBody::TaskCreated { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_update_hears_it_is_in_after_the_round_moved_on() {
    let mut bench = Bench::new(None).await;
    let (trainer, validator) = (identity(1), identity(11));
    bench.fund_all(std::slice::from_ref(&trainer), std::slice::from_ref(&validator)).await;
    let task = bench.task(2, std::slice::from_ref(&trainer), std::slice::from_ref(&validator)).await;
    bench.drive(task).await;
    let bytes = payload([1.0, 1.0]);
    let mut updates = Vec::new();
    for round in 0..2 {
        let update = bench.update(task, [1.0, 1.0], 10).await;
        let ResponseBody::UpdateAccepted { submission } = bench.ok(&trainer, &update, Some(&bytes)).await else {
            panic!("round {round}")
        };
        bench.score(task, &validator, submission, 0.7).await;
        bench.drive(task).await;
        updates.push(update);
    }
    assert!(bench.service.machine(task).await.unwrap().is_finished());

    // Each answer was lost; the trainer sends each update again, signed
    // afresh, after its round has moved on and after the task has finished.
    for update in &updates {
        let again = bench.send(&trainer, update, Some(&bytes)).await.unwrap_err();
        assert_eq!(again.code, ErrorCode::Duplicate, "round {}: {again}", update.round);
    }
    // A key that never submitted (holding something, or it is not heard at
    // all) still hears what happened to the round.
    let stranger = identity(2);
    let admin = bench.admin.clone();
    bench.ok(&admin, &Issue { to: stranger.public_key(), amount: STAR }, None).await;
    assert_eq!(bench.send(&stranger, &updates[0], Some(&bytes)).await.unwrap_err().code, ErrorCode::TaskFinished);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_nobody_joins_is_closed_and_refunded_after_its_expiry() {
    let mut bench = Bench::new(None).await;
    let (creator, create, model) = bench.create_request(1).await;
    let before = bench.free(&creator).await;
    let ResponseBody::TaskCreated { task } = bench.ok(&creator, &create, Some(&model)).await else { panic!() };
    assert_eq!(bench.free(&creator).await, before - 100 * STAR, "escrowed");
    // Waiting: nobody eligible joins.
    assert_eq!(bench.drive(task).await, Drive::Waiting);
    let expiry = ServiceConfig::new(bench.admin.public_key()).unjoined_expiry.as_secs();
    bench.advance(expiry - 1);
    assert_eq!(bench.drive(task).await, Drive::Waiting, "not yet");
    bench.advance(1);
    assert_eq!(bench.drive(task).await, Drive::Finished);
    assert_eq!(bench.free(&creator).await, before, "the whole pool came back");
    let pool = bench.ledger.pool(task).await.unwrap().unwrap();
    assert_eq!((pool.balance.micro(), pool.rounds_left()), (0, 0));
    // The task is gone for a late joiner, and a restart does not run it again.
    let trainer = identity(1);
    bench.fund(&trainer, Role::Trainer, 50 * STAR).await;
    let late = bench.send(&trainer, &JoinTask { task, role: Role::Trainer }, None).await.unwrap_err();
    assert_eq!(late.code, ErrorCode::UnknownTask, "{late}");
    bench.restart(None).await;
    assert!(bench.store.unfinished_tasks().await.unwrap().is_empty());
    // The refund is counted once: nothing was created or lost.
    let audit = bench.ledger.audit().await.unwrap();
    assert_eq!(audit.held, audit.issued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_finishes_an_unstarted_task_whose_pool_was_refunded() {
    let mut bench = Bench::new(None).await;
    let (creator, create, model) = bench.create_request(1).await;
    let ResponseBody::TaskCreated { task } = bench.ok(&creator, &create, Some(&model)).await else { panic!() };
    // An expiry that refunded the pool and stopped before marking the task finished.
    let refund = starling_staking::Operation::RefundTask { task, to: creator.public_key() };
    bench.ledger.apply(&format!("refund:{task}"), &refund, bench.clock.now().to_ledger()).await.unwrap();
    bench.restart(None).await;
    assert!(bench.store.unfinished_tasks().await.unwrap().is_empty(), "it cannot pay anyone: finished");
}
