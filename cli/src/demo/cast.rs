//! Who takes part in the demo, and the two kinds of client that are not the
//! real trainer and validator: an adversarial trainer (a poisoner, a
//! free-rider) and a validator that colludes with the poisoner.
//!
//! Both speak the wire protocol through the client crate's [`Session`]
//! (signing, retries, refusals classified), exactly as a real client does;
//! only what they send is wrong.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use burn::prelude::Device;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use starling_client::{
    BlobCache, ClientError, Exchange, Outcome, Session, Shutdown, Transport, encode_update, model_kind, now_ms,
    run_blocking, train_config, unexpected,
};
use starling_models::train::{Features, Quiet, train_local};
use starling_net::Identity;
use starling_protocol::{
    NamedTensor, PublicKey, ResponseBody, Role, RoundInfo, RoundNumber, RoundPhase, SubmissionId, SubmitScore,
    SubmitUpdate, TaskId, TaskInfo,
};
use starling_sim::Attack;
use starling_validator::assignments;

/// What a participant is in the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Part {
    /// Posts the task and its reward pool.
    Creator,
    /// Trains on its own data and sends what it learned.
    Trainer,
    /// Trains, then sends its update sign-flipped and boosted.
    Poisoner,
    /// Sends an all-zero update: nothing learned, hoping to be paid anyway.
    FreeRider,
    /// Scores every submission on its own held-out images.
    Validator,
    /// Scores without looking: its accomplice's updates 100%, everyone else's 0%.
    DishonestValidator,
    /// Stakes behind a trainer or validator and shares its rewards (and slashes).
    Delegator,
}

impl Part {
    /// How the summary names the part.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Creator => "task creator",
            Self::Trainer => "honest trainer",
            Self::Poisoner => "poisoner",
            Self::FreeRider => "free-rider",
            Self::Validator => "honest validator",
            Self::DishonestValidator => "dishonest validator",
            Self::Delegator => "delegator",
        }
    }

    /// Whether it trains (its stake is a trainer's).
    pub(crate) fn trains(self) -> bool {
        matches!(self, Self::Trainer | Self::Poisoner | Self::FreeRider)
    }

    /// Whether it validates.
    pub(crate) fn validates(self) -> bool {
        matches!(self, Self::Validator | Self::DishonestValidator)
    }
}

/// One participant: a name for people, a key for the network.
#[derive(Debug)]
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) part: Part,
    pub(crate) identity: Identity,
}

impl Member {
    pub(crate) fn key(&self) -> PublicKey {
        self.identity.public_key()
    }
}

/// A delegation the demo makes: who, behind whom, for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backing {
    /// Index of the delegator in [`Cast::members`].
    pub(crate) delegator: usize,
    /// Index of the node it backs.
    pub(crate) node: usize,
    pub(crate) lock_days: u16,
}

/// Everyone in the demo, with identities drawn from one seed.
#[derive(Debug)]
pub(crate) struct Cast {
    /// The key allowed to issue STAR: it funds everyone else.
    pub(crate) admin: Identity,
    pub(crate) members: Vec<Member>,
    pub(crate) backings: Vec<Backing>,
}

impl Cast {
    /// `honest` trainers, the poisoner and the free-rider, two honest
    /// validators and a dishonest one, and three delegators locked for 0,
    /// 90 and 365 days: behind the first trainer, the first validator, and
    /// (unknowingly) the poisoner.
    pub(crate) fn new(seed: u64, honest: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut next = || Identity::generate(&mut ChaCha8Rng::seed_from_u64(rng.random()));
        let admin = next();
        let mut members = Vec::new();
        let mut add = |name: String, part: Part| {
            members.push(Member { name, part, identity: next() });
            members.len() - 1
        };
        add("creator".into(), Part::Creator);
        let first_trainer = add("trainer-1".into(), Part::Trainer);
        for i in 2..=honest {
            add(format!("trainer-{i}"), Part::Trainer);
        }
        let poisoner = add("poisoner".into(), Part::Poisoner);
        add("free-rider".into(), Part::FreeRider);
        let first_validator = add("validator-1".into(), Part::Validator);
        add("validator-2".into(), Part::Validator);
        add("validator-3".into(), Part::DishonestValidator);
        let mut backings = Vec::new();
        for (node, lock_days) in [(first_trainer, 0), (first_validator, 90), (poisoner, 365)] {
            let delegator = add(format!("delegator-{}", backings.len() + 1), Part::Delegator);
            backings.push(Backing { delegator, node, lock_days });
        }
        Self { admin, members, backings }
    }

    /// The members playing `part`.
    pub(crate) fn playing(&self, part: Part) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(move |m| m.part == part)
    }

    /// The member with `key`.
    pub(crate) fn by_key(&self, key: &PublicKey) -> Option<&Member> {
        self.members.iter().find(|m| m.key() == *key)
    }
}

/// Whether `error` is only the shutdown it was asked for.
fn shut_down(error: &anyhow::Error) -> bool {
    matches!(error.downcast_ref(), Some(ClientError::ShutDown))
}

/// An adversarial trainer: joins `task`, and in every round it is sampled
/// for sends `attack` of what it trained on `data` (`None`: an all-zero
/// update, without training). The coordinator's refusals are what it is
/// here to get; what it got is read back from the coordinator's records.
/// Ends when the task does, or on `shutdown`.
pub(crate) async fn adversarial_trainer<T: Transport>(
    session: Session<T>,
    task: TaskId,
    data: Features,
    attack: Option<Attack>,
    cache: BlobCache,
    mut shutdown: Shutdown,
) -> Result<()> {
    let info = match session.join(task, Role::Trainer, &mut shutdown).await {
        Ok(Outcome::Done(info)) => info,
        Ok(_) | Err(ClientError::ShutDown) => return Ok(()),
        Err(error) => return Err(error.into()),
    };
    let me = session.public_key();
    let mut done: HashSet<RoundNumber> = HashSet::new();
    loop {
        let round = match session.round(task, &mut shutdown).await {
            Ok(Outcome::Done(round)) => round,
            Ok(Outcome::TaskOver) | Err(ClientError::ShutDown) => return Ok(()),
            Ok(Outcome::AlreadyDone | Outcome::Skip(_)) => None,
            Err(error) => return Err(error.into()),
        };
        if let Some(round) = round {
            if round.task_finished {
                return Ok(());
            }
            let open = round.phase == RoundPhase::Training && now_ms() < round.training_deadline_ms;
            if open && round.is_sampled(&me) && done.insert(round.round) {
                match attack_round(&session, &info, &round, &data, attack, &cache, &mut shutdown).await {
                    Ok(true) => continue,
                    Ok(false) => return Ok(()),
                    Err(error) if shut_down(&error) => return Ok(()),
                    Err(error) => return Err(error),
                }
            }
        }
        if shutdown.sleep(POLL).await {
            return Ok(());
        }
    }
}

/// Trains (unless free-riding), spoils the update and sends it; `false`
/// when the task ended meanwhile.
async fn attack_round<T: Transport>(
    session: &Session<T>,
    info: &TaskInfo,
    round: &RoundInfo,
    data: &Features,
    attack: Option<Attack>,
    cache: &BlobCache,
    shutdown: &mut Shutdown,
) -> Result<bool> {
    let spec = &info.spec;
    let global =
        match session.model(cache, round.global_model, &spec.model.tensors, spec.payload_limit, shutdown).await? {
            Outcome::Done(global) => global,
            Outcome::Skip(_) => return Ok(true),
            Outcome::TaskOver | Outcome::AlreadyDone => return Ok(false),
        };
    let delta: Vec<NamedTensor> = match attack {
        Some(attack) => {
            let config = train_config(spec, u64::from(round.round.get()));
            let device = Device::flex();
            let kind = model_kind(spec)?;
            let mut delta = run_blocking(|| train_local(kind, &global, data, &config, &device, &mut Quiet))?.delta;
            for tensor in &mut delta {
                attack.apply(&mut tensor.values, u64::from(round.round.get()));
            }
            delta
        }
        None => global
            .iter()
            .map(|t| NamedTensor::new(t.name.clone(), t.shape.clone(), vec![0.0; t.values.len()]))
            .collect(),
    };
    let payload = encode_update(&spec.model.tensors, &delta)?;
    let message = SubmitUpdate {
        task: info.task,
        round: round.round,
        base_model: round.global_model,
        update: *payload.hash(),
        update_len: payload.len() as u64,
        samples: data.len() as u64,
        train_loss: 0.5,
    };
    match session.signed(&message, Exchange::SubmitUpdate, Some(payload.bytes()), shutdown).await {
        Ok(Outcome::TaskOver) => Ok(false),
        Ok(Outcome::Done(ResponseBody::UpdateAccepted { .. }) | Outcome::AlreadyDone | Outcome::Skip(_)) => Ok(true),
        Ok(Outcome::Done(other)) => Err(unexpected("submit-update", &other).into()),
        // Refused as invalid: the expected answer.
        Err(ClientError::Refused { .. }) => Ok(true),
        Err(error) => Err(error.into()),
    }
}

/// A dishonest validator in league with `accomplice`: joins `task` and,
/// evaluating nothing, scores the accomplice's every update 100% and
/// everyone else's 0%, to get its friend paid and the competition slashed.
pub(crate) async fn colluding_validator<T: Transport>(
    session: Session<T>,
    task: TaskId,
    accomplice: PublicKey,
    mut shutdown: Shutdown,
) -> Result<()> {
    match session.join(task, Role::Validator, &mut shutdown).await {
        Ok(Outcome::Done(_)) => {}
        Ok(_) | Err(ClientError::ShutDown) => return Ok(()),
        Err(error) => return Err(error.into()),
    }
    let mut scored: HashSet<SubmissionId> = HashSet::new();
    loop {
        let round = match session.round(task, &mut shutdown).await {
            Ok(Outcome::Done(round)) => round,
            Ok(Outcome::TaskOver) | Err(ClientError::ShutDown) => return Ok(()),
            Ok(Outcome::AlreadyDone | Outcome::Skip(_)) => None,
            Err(error) => return Err(error.into()),
        };
        if let Some(round) = round.as_ref().filter(|r| r.phase == RoundPhase::Validating) {
            match collude(&session, round, accomplice, &mut scored, &mut shutdown).await {
                Ok(true) => {}
                Ok(false) | Err(ClientError::ShutDown) => return Ok(()),
                Err(error) => return Err(error.into()),
            }
        } else if round.as_ref().is_some_and(|r| r.task_finished) {
            return Ok(());
        }
        if shutdown.sleep(POLL).await {
            return Ok(());
        }
    }
}

/// Scores every assignment of `round` not yet in `scored` the colluding
/// way; `false` when the task ended meanwhile.
async fn collude<T: Transport>(
    session: &Session<T>,
    round: &RoundInfo,
    accomplice: PublicKey,
    scored: &mut HashSet<SubmissionId>,
    shutdown: &mut Shutdown,
) -> Result<bool, ClientError> {
    let assignments = match assignments(session, round, shutdown).await? {
        Outcome::Done(assignments) => assignments,
        Outcome::TaskOver => return Ok(false),
        Outcome::AlreadyDone | Outcome::Skip(_) => return Ok(true),
    };
    for assignment in assignments {
        if scored.contains(&assignment.submission) {
            continue;
        }
        let friend = assignment.trainer == accomplice;
        let score = SubmitScore {
            task: round.task,
            round: round.round,
            submission: assignment.submission,
            accuracy: if friend { 1.0 } else { 0.0 },
            loss: if friend { 0.0 } else { 10.0 },
            improvement: if friend { 1.0 } else { -1.0 },
        };
        match session.signed(&score, Exchange::SubmitScore, None, shutdown).await? {
            Outcome::Done(_) | Outcome::AlreadyDone => {
                scored.insert(assignment.submission);
            }
            Outcome::Skip(_) => {}
            Outcome::TaskOver => return Ok(false),
        }
    }
    Ok(true)
}

/// How often the adversaries look for work.
const POLL: Duration = Duration::from_millis(100);
