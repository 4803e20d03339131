//! The validator client: score every submission assigned to it.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;

use burn::prelude::Device;
use starling_client::{
    Backoff, BlobCache, ClientError, Ended, Exchange, Journal, Outcome, Session, Shutdown, TaskSpecMismatch, Transport,
    UpdateError, apply_update, decode_tensors, model_kind, run_blocking, unexpected,
};
use starling_models::train::{Evaluation, Features, Progress, TrainError, evaluate};
use starling_models::zoo::{Model, ModelKind, ZooError};
use starling_net::Identity;
use starling_protocol::{
    AssignmentInfo, ContentHash, NamedTensor, ResponseBody, Role, RoundInfo, RoundNumber, RoundPhase, SubmissionId,
    TaskInfo, WireError,
};
use starling_protocol::{FetchUpdate, GetAssignments, TaskId};
use thiserror::Error;

use crate::score::Score;

/// Why a validator stopped with an error.
#[derive(Debug, Error)]
pub enum ValidatorError {
    /// Talking to the coordinator failed for good.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// This client cannot evaluate the task's model.
    #[error(transparent)]
    Spec(#[from] TaskSpecMismatch),
    /// The held-out data does not fit the model.
    #[error("evaluation failed: {0}")]
    Evaluate(#[from] TrainError),
    /// The global model could not be built.
    #[error("the global model could not be built: {0}")]
    Model(#[from] ZooError),
    /// The state directory could not be used.
    #[error("local storage failed: {0}")]
    Storage(#[from] io::Error),
}

/// How a validator behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidatorOptions {
    /// Retries of failed requests.
    pub retry: Backoff,
    /// Polling for assignments.
    pub poll: Backoff,
    /// Seeds the jitter.
    pub seed: u64,
    /// Samples evaluated per batch (memory, not results, depends on it).
    pub eval_batch: usize,
}

impl Default for ValidatorOptions {
    /// [`Backoff::RETRY`], [`Backoff::POLL`], a random seed, batches of 500.
    fn default() -> Self {
        Self { retry: Backoff::RETRY, poll: Backoff::POLL, seed: rand::random(), eval_batch: 500 }
    }
}

/// One score the coordinator accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSubmission {
    /// The round.
    pub round: RoundNumber,
    /// The submission.
    pub submission: SubmissionId,
    /// What was sent (`None` when the coordinator already had a score from
    /// this validator, from an earlier attempt).
    pub score: Option<Score>,
    /// Why the update could not be evaluated, when it could not (its score
    /// is then [`Score::rejected`]).
    pub rejected: Option<UpdateError>,
}

/// What a validator did in one task.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorReport {
    /// Why it stopped.
    pub ended: Ended,
    /// Scores the coordinator holds.
    pub scored: Vec<ScoredSubmission>,
    /// Assignments given up, with the coordinator's reason.
    pub skipped: Vec<(SubmissionId, WireError)>,
}

/// A validator: one identity, one coordinator, held-out data.
#[derive(Debug)]
pub struct ValidatorClient<T> {
    session: Session<T>,
    cache: BlobCache,
    state_dir: PathBuf,
    device: Device,
    options: ValidatorOptions,
}

/// A global model, ready to score candidates against.
struct Base {
    tensors: Vec<NamedTensor>,
    evaluation: Evaluation,
}

/// How one assignment ended.
enum Assessed {
    Scored(ScoredSubmission),
    Skipped(WireError),
    TaskOver,
}

/// Global models evaluated at once; a round scores against one, two while
/// rounds overlap.
const BASES_KEPT: usize = 4;

impl<T: Transport> ValidatorClient<T> {
    /// A validator signing as `identity` through `transport`, caching
    /// global models in `cache_dir/models` and remembering its scores in
    /// `cache_dir/state`, evaluating on `device`.
    pub fn new(
        identity: Identity,
        transport: T,
        cache_dir: impl Into<PathBuf>,
        device: Device,
        options: ValidatorOptions,
    ) -> Result<Self, ValidatorError> {
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
    /// a validator, then whenever a round is validating, scores on
    /// `held_out` every submission assigned to it that it has not scored
    /// yet (in this run or an earlier one).
    ///
    /// Each candidate is `w_global + Δ`. An update that does not decode to
    /// exactly the task's tensors with finite values, or whose sum with the
    /// global model overflows, is scored [`Score::rejected`] (accuracy 0):
    /// the coordinator should have refused it, and a score, unlike silence,
    /// lets consensus reject it. A blob that fails its hash check is never
    /// scored; it is fetched again.
    pub async fn run_task(
        &self,
        task: TaskId,
        held_out: &Features,
        progress: &mut (dyn Progress + Send),
        mut shutdown: Shutdown,
    ) -> Result<ValidatorReport, ValidatorError> {
        let mut report = ValidatorReport { ended: Ended::Shutdown, scored: Vec::new(), skipped: Vec::new() };
        let info = match self.session.join(task, Role::Validator, &mut shutdown).await {
            Ok(Outcome::Done(info)) => info,
            Ok(_) => return Ok(finished(report)),
            Err(ClientError::ShutDown) => return Ok(report),
            Err(error) => return Err(error.into()),
        };
        let kind = model_kind(&info.spec)?;
        let me = self.session.public_key();
        let mut journal = Journal::open(self.state_dir.join(format!("task-{task}-{me}.scored")))?;
        let mut given_up: HashSet<SubmissionId> = HashSet::new();
        let mut bases: HashMap<ContentHash, Base> = HashMap::new();
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
                if round.phase == RoundPhase::Validating {
                    let assignments = match assignments(&self.session, &round, &mut shutdown).await {
                        Err(ClientError::ShutDown) => return Ok(report),
                        Err(error) => return Err(error.into()),
                        Ok(Outcome::Done(assignments)) => assignments,
                        Ok(Outcome::TaskOver) => return Ok(finished(report)),
                        Ok(Outcome::AlreadyDone | Outcome::Skip(_)) => Vec::new(),
                    };
                    for assignment in assignments {
                        let key = assignment.submission.to_string();
                        if journal.contains(&key) || given_up.contains(&assignment.submission) {
                            continue;
                        }
                        let assessed = self
                            .assess(&info, kind, &round, &assignment, held_out, progress, &mut bases, &mut shutdown)
                            .await;
                        match assessed {
                            Ok(Assessed::Scored(scored)) => {
                                journal.record(&key)?;
                                report.scored.push(scored);
                            }
                            Ok(Assessed::Skipped(error)) => {
                                given_up.insert(assignment.submission);
                                report.skipped.push((assignment.submission, error));
                            }
                            Ok(Assessed::TaskOver) => return Ok(finished(report)),
                            Err(ValidatorError::Client(ClientError::ShutDown)) => return Ok(report),
                            Err(error) => return Err(error),
                        }
                    }
                }
                if round.task_finished && round.phase != RoundPhase::Validating {
                    return Ok(finished(report));
                }
            }
            let delay = poll.next_delay().unwrap_or(self.options.poll.max);
            if shutdown.sleep(delay).await {
                return Ok(report);
            }
        }
    }

    /// Scores one assignment and submits the score.
    #[allow(clippy::too_many_arguments, reason = "one call site; the loop's state, passed down")]
    async fn assess(
        &self,
        info: &TaskInfo,
        kind: ModelKind,
        round: &RoundInfo,
        assignment: &AssignmentInfo,
        held_out: &Features,
        progress: &mut (dyn Progress + Send),
        bases: &mut HashMap<ContentHash, Base>,
        shutdown: &mut Shutdown,
    ) -> Result<Assessed, ValidatorError> {
        let spec = &info.spec;
        let limit = spec.payload_limit;
        if !bases.contains_key(&assignment.base_model) {
            let tensors = match self
                .session
                .model(&self.cache, assignment.base_model, &spec.model.tensors, limit, shutdown)
                .await?
            {
                Outcome::Done(tensors) => tensors,
                Outcome::Skip(error) => return Ok(Assessed::Skipped(error)),
                Outcome::TaskOver => return Ok(Assessed::TaskOver),
                Outcome::AlreadyDone => unreachable!("fetches are never already done"),
            };
            let evaluation = self.evaluate(kind, &tensors, held_out, progress)?;
            if bases.len() >= BASES_KEPT {
                bases.clear();
            }
            bases.insert(assignment.base_model, Base { tensors, evaluation });
        }
        let base = &bases[&assignment.base_model];
        let read = FetchUpdate { task: round.task, round: round.round, submission: assignment.submission };
        let max_len = assignment.update_len.min(limit);
        let bytes = match self.session.fetch_update(read, assignment.update, max_len, shutdown).await? {
            Outcome::Done(bytes) => bytes,
            Outcome::Skip(error) => return Ok(Assessed::Skipped(error)),
            Outcome::TaskOver => return Ok(Assessed::TaskOver),
            Outcome::AlreadyDone => unreachable!("fetches are never already done"),
        };
        let candidate =
            decode_tensors(&bytes, &spec.model.tensors, limit).and_then(|delta| apply_update(&base.tensors, &delta));
        let (score, rejected) = match candidate {
            Ok(weights) => (Score::new(&self.evaluate(kind, &weights, held_out, progress)?, &base.evaluation), None),
            Err(error) => (Score::rejected(&base.evaluation), Some(error)),
        };
        let message = score.message(round.task, round.round, assignment.submission);
        let scored = |score| ScoredSubmission {
            round: round.round,
            submission: assignment.submission,
            score,
            rejected: rejected.clone(),
        };
        Ok(match self.session.signed(&message, Exchange::SubmitScore, None, shutdown).await? {
            Outcome::Done(ResponseBody::Ack) => Assessed::Scored(scored(Some(score))),
            Outcome::Done(other) => return Err(unexpected("submit-score", &other).into()),
            Outcome::AlreadyDone => Assessed::Scored(scored(None)),
            Outcome::Skip(error) => Assessed::Skipped(error),
            Outcome::TaskOver => Assessed::TaskOver,
        })
    }

    fn evaluate(
        &self,
        kind: ModelKind,
        weights: &[NamedTensor],
        held_out: &Features,
        progress: &mut (dyn Progress + Send),
    ) -> Result<Evaluation, ValidatorError> {
        run_blocking(|| {
            let model = Model::from_tensors(kind, weights, &self.device)?;
            Ok(evaluate(&model, held_out, self.options.eval_batch, progress)?)
        })
    }
}

/// Every assignment of `session`'s validator in `round`, page by page.
pub async fn assignments<T: Transport>(
    session: &Session<T>,
    round: &RoundInfo,
    shutdown: &mut Shutdown,
) -> Result<Outcome<Vec<AssignmentInfo>>, ClientError> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let read = GetAssignments { task: round.task, round: round.round, after };
        match session.signed(&read, Exchange::Read, None, shutdown).await? {
            Outcome::Done(ResponseBody::Assignments(page)) => {
                all.extend(page.items);
                match page.next {
                    // A coordinator whose `next` does not advance would loop forever.
                    Some(next) if after.is_none_or(|previous| next > previous) => after = Some(next),
                    Some(_) => {
                        return Err(ClientError::UnexpectedAnswer {
                            request: "get-assignments",
                            answer: "a page that does not advance",
                        });
                    }
                    None => return Ok(Outcome::Done(all)),
                }
            }
            Outcome::Done(other) => return Err(unexpected("get-assignments", &other)),
            other => return Ok(other.map(|_| Vec::new())),
        }
    }
}

fn finished(mut report: ValidatorReport) -> ValidatorReport {
    report.ended = Ended::TaskFinished;
    report
}
