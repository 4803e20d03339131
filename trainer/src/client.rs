//! The trainer client: join a task, then for each round it is sampled for,
//! download the global model, train, and upload the signed update.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;

use burn::prelude::Device;
use starling_client::{
    Backoff, BlobCache, ClientError, Ended, Exchange, Journal, Outcome, Session, Shutdown, TaskSpecMismatch, Transport,
    UpdateError, encode_update, model_kind, now_ms, run_blocking, train_config, unexpected,
};
use starling_models::train::{Features, Progress, TrainError, train_local};
use starling_models::zoo::ModelKind;
use starling_net::Identity;
use starling_protocol::{
    ResponseBody, Role, RoundInfo, RoundNumber, RoundPhase, SubmissionId, SubmitUpdate, TaskId, TaskInfo, WireError,
};
use thiserror::Error;

/// Why a trainer stopped with an error.
#[derive(Debug, Error)]
pub enum TrainerError {
    /// Talking to the coordinator failed for good.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// This client cannot train the task's model.
    #[error(transparent)]
    Spec(#[from] TaskSpecMismatch),
    /// Local training failed (bad data for the model, divergence).
    #[error("local training failed: {0}")]
    Train(#[from] TrainError),
    /// The trained update is not a valid update for the task.
    #[error("the local update is invalid: {0}")]
    Update(#[from] UpdateError),
    /// The cache or state directory could not be used.
    #[error("local storage failed: {0}")]
    Storage(#[from] io::Error),
}

/// How a trainer behaves, beyond what the task prescribes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainerOptions {
    /// Retries of failed requests.
    pub retry: Backoff,
    /// Polling for the next round.
    pub poll: Backoff,
    /// Seeds the jitter and, with the round number, the batch order.
    pub seed: u64,
}

impl Default for TrainerOptions {
    /// [`Backoff::RETRY`], [`Backoff::POLL`] and a random seed, so that
    /// trainers do not retry in step.
    fn default() -> Self {
        Self { retry: Backoff::RETRY, poll: Backoff::POLL, seed: rand::random() }
    }
}

/// What a trainer did in one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerReport {
    /// Why it stopped.
    pub ended: Ended,
    /// Rounds whose update the coordinator holds, with the submission id
    /// (`None` when it was already in, from an earlier attempt or run).
    pub submitted: Vec<(RoundNumber, Option<SubmissionId>)>,
    /// Rounds given up, with the coordinator's reason (the deadline passed,
    /// the round moved on).
    pub skipped: Vec<(RoundNumber, WireError)>,
}

/// A trainer: one identity, one coordinator, local data.
///
/// Training runs on the calling task; on a multi-threaded tokio runtime it
/// moves the worker aside ([`tokio::task::block_in_place`]) so the QUIC
/// connection keeps being served meanwhile.
#[derive(Debug)]
pub struct TrainerClient<T> {
    session: Session<T>,
    cache: BlobCache,
    state_dir: PathBuf,
    device: Device,
    options: TrainerOptions,
}

/// What one round came to.
enum RoundResult {
    Submitted(Option<SubmissionId>),
    Skipped(WireError),
    TaskOver,
}

impl<T: Transport> TrainerClient<T> {
    /// A trainer signing as `identity`, talking through `transport`,
    /// caching global models in `cache_dir/models` and remembering its
    /// submissions in `cache_dir/state`, training on `device`.
    pub fn new(
        identity: Identity,
        transport: T,
        cache_dir: impl Into<PathBuf>,
        device: Device,
        options: TrainerOptions,
    ) -> Result<Self, TrainerError> {
        let cache_dir = cache_dir.into();
        let cache = BlobCache::open(cache_dir.join("models"))?;
        let state_dir = cache_dir.join("state");
        std::fs::create_dir_all(&state_dir)?;
        let session = Session::new(transport, identity, options.retry, options.seed);
        Ok(Self { session, cache, state_dir, device, options })
    }

    /// The session (identity and transport).
    pub fn session(&self) -> &Session<T> {
        &self.session
    }

    /// Takes part in `task` until it finishes or `shutdown` fires: joins as
    /// a trainer, then for every round it is sampled for and has not
    /// submitted to (in this run or an earlier one), trains on `data` and
    /// uploads the update; between rounds it polls.
    pub async fn run_task(
        &self,
        task: TaskId,
        data: &Features,
        progress: &mut (dyn Progress + Send),
        mut shutdown: Shutdown,
    ) -> Result<TrainerReport, TrainerError> {
        let mut report = TrainerReport { ended: Ended::Shutdown, submitted: Vec::new(), skipped: Vec::new() };
        let info = match self.session.join(task, Role::Trainer, &mut shutdown).await {
            Ok(Outcome::Done(info)) => info,
            Ok(_) => return Ok(finished(report)),
            Err(ClientError::ShutDown) => return Ok(report),
            Err(error) => return Err(error.into()),
        };
        let kind = model_kind(&info.spec)?;
        let me = self.session.public_key();
        let mut journal = Journal::open(self.state_dir.join(format!("task-{task}-{me}.submitted")))?;
        let mut given_up: HashSet<RoundNumber> = HashSet::new();
        let mut poll = self.options.poll.start(self.session.next_seed());
        let mut last_seen = None;
        loop {
            if shutdown.is_requested() {
                return Ok(report);
            }
            let round = match self.session.round(task, &mut shutdown).await {
                Err(ClientError::ShutDown) => return Ok(report),
                Err(error) => return Err(error.into()),
                Ok(Outcome::TaskOver) => return Ok(finished(report)),
                Ok(Outcome::Done(round)) => round,
                Ok(Outcome::AlreadyDone | Outcome::Skip(_)) => None,
            };
            if let Some(round) = round {
                let seen = Some((round.round, round.phase));
                if seen != last_seen {
                    poll.reset();
                    last_seen = seen;
                }
                let key = round.round.to_string();
                if round.phase == RoundPhase::Training
                    && round.is_sampled(&me)
                    && now_ms() < round.training_deadline_ms
                    && !journal.contains(&key)
                    && !given_up.contains(&round.round)
                {
                    match self.train_round(&info, kind, &round, data, progress, &mut shutdown).await {
                        Ok(RoundResult::Submitted(id)) => {
                            journal.record(&key)?;
                            report.submitted.push((round.round, id));
                            continue;
                        }
                        Ok(RoundResult::Skipped(error)) => {
                            given_up.insert(round.round);
                            report.skipped.push((round.round, error));
                        }
                        Ok(RoundResult::TaskOver) => return Ok(finished(report)),
                        Err(TrainerError::Client(ClientError::ShutDown)) => return Ok(report),
                        Err(error) => return Err(error),
                    }
                }
                if round.task_finished {
                    return Ok(finished(report));
                }
            }
            let delay = poll.next_delay().unwrap_or(self.options.poll.max);
            if shutdown.sleep(delay).await {
                return Ok(report);
            }
        }
    }

    /// Trains one round and submits the update.
    async fn train_round(
        &self,
        info: &TaskInfo,
        kind: ModelKind,
        round: &RoundInfo,
        data: &Features,
        progress: &mut (dyn Progress + Send),
        shutdown: &mut Shutdown,
    ) -> Result<RoundResult, TrainerError> {
        let spec = &info.spec;
        let global = match self
            .session
            .model(&self.cache, round.global_model, &spec.model.tensors, spec.payload_limit, shutdown)
            .await?
        {
            Outcome::Done(global) => global,
            Outcome::Skip(error) => return Ok(RoundResult::Skipped(error)),
            Outcome::TaskOver => return Ok(RoundResult::TaskOver),
            Outcome::AlreadyDone => unreachable!("fetches are never already done"),
        };
        let seed = self.options.seed ^ u64::from(round.round.get()).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let config = train_config(spec, seed);
        let update = run_blocking(|| train_local(kind, &global, data, &config, &self.device, progress))?;
        let payload = encode_update(&spec.model.tensors, &update.delta)?;
        let message = SubmitUpdate {
            task: info.task,
            round: round.round,
            base_model: round.global_model,
            update: *payload.hash(),
            update_len: payload.len() as u64,
            samples: update.samples as u64,
            train_loss: update.loss.max(0.0),
        };
        Ok(match self.session.signed(&message, Exchange::SubmitUpdate, Some(payload.bytes()), shutdown).await? {
            Outcome::Done(ResponseBody::UpdateAccepted { submission }) => RoundResult::Submitted(Some(submission)),
            Outcome::Done(other) => return Err(unexpected("submit-update", &other).into()),
            Outcome::AlreadyDone => RoundResult::Submitted(None),
            Outcome::Skip(error) => RoundResult::Skipped(error),
            Outcome::TaskOver => RoundResult::TaskOver,
        })
    }
}

fn finished(mut report: TrainerReport) -> TrainerReport {
    report.ended = Ended::TaskFinished;
    report
}
