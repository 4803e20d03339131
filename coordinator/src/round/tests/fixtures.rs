//! Shared builders for the machine's tests.

use std::collections::BTreeMap;

use starling_protocol::{
    ContentHash, DataSpec, ModelSpec, PublicKey, RoundNumber, SubmissionId, TaskId, TaskSpec, TensorSpec,
};

use crate::round::{
    Action, Event, Participants, PayloadCheck, Refusal, RoundConfig, RoundMachine, ScoreValues, UnixMillis,
};

pub(super) const TASK: TaskId = TaskId::new(7);
/// 2023-11-14T22:13:20Z, in milliseconds.
pub(super) const T0: UnixMillis = UnixMillis::new(1_700_000_000_000);
pub(super) const TRAINING_SECS: u32 = 60;
pub(super) const VALIDATION_SECS: u32 = 30;

pub(super) fn key(n: u8) -> PublicKey {
    PublicKey::from_bytes([n; 32])
}

pub(super) fn model(n: u8) -> ContentHash {
    ContentHash::of(&[b'm', n])
}

pub(super) fn payload(trainer: u8, tag: u8) -> ContentHash {
    ContentHash::of(&[b'p', trainer, tag])
}

pub(super) fn r(n: u32) -> RoundNumber {
    RoundNumber::new(n)
}

pub(super) fn at(ms_after_t0: u64) -> UnixMillis {
    UnixMillis::new(T0.get() + ms_after_t0)
}

pub(super) fn secs(s: u64) -> u64 {
    s * 1_000
}

/// Trainers 1, 2, 3 (stake 100 each), validators 101, 102, 103 (stakes 50, 30, 20).
pub(super) const TRAINERS: [u8; 3] = [1, 2, 3];
pub(super) const VALIDATORS: [u8; 3] = [101, 102, 103];

/// A small valid task: every trainer sampled, three rounds, FedAvg.
pub(super) fn spec() -> TaskSpec {
    let model = ModelSpec { name: "tiny".into(), tensors: vec![TensorSpec::new("w", [4])] };
    let data = DataSpec { dataset: "toy".into(), input_shape: vec![4], num_classes: 2 };
    TaskSpec::builder(model, data)
        .rounds(3)
        .training(1, 1, 0.1)
        .min_stakes(10, 10)
        .deadlines(TRAINING_SECS, VALIDATION_SECS)
        .build()
        .unwrap()
}

pub(super) fn participants() -> Participants {
    Participants {
        trainers: TRAINERS.iter().map(|&t| (key(t), 100)).collect(),
        validators: [(key(101), 50), (key(102), 30), (key(103), 20)].into_iter().collect(),
    }
}

pub(super) fn machine_with(spec: TaskSpec, config: RoundConfig) -> RoundMachine {
    RoundMachine::new(TASK, spec, config).unwrap()
}

pub(super) fn machine() -> RoundMachine {
    machine_with(spec(), RoundConfig::new(11))
}

pub(super) fn start_event() -> Event {
    Event::TaskStarted { initial_model: model(0), participants: participants() }
}

pub(super) fn submission_id(round: u32, trainer: u8, tag: u8) -> SubmissionId {
    SubmissionId::derive(TASK, r(round), &key(trainer), &payload(trainer, tag))
}

/// A valid submission of `trainer` (payload tag 0, `samples` examples).
pub(super) fn submit(round: u32, trainer: u8, samples: u64) -> Event {
    submit_tagged(round, trainer, 0, samples, PayloadCheck::Passed)
}

pub(super) fn submit_tagged(round: u32, trainer: u8, tag: u8, samples: u64, check: PayloadCheck) -> Event {
    Event::SubmissionReceived {
        round: r(round),
        trainer: key(trainer),
        submission: submission_id(round, trainer, tag),
        payload: payload(trainer, tag),
        samples,
        check,
    }
}

pub(super) fn values(accuracy: f64) -> ScoreValues {
    ScoreValues { accuracy, loss: 1.0 - accuracy, improvement: accuracy - 0.5 }
}

/// `validator`'s score of `trainer`'s tag-0 submission.
pub(super) fn score(round: u32, validator: u8, trainer: u8, accuracy: f64) -> Event {
    Event::ScoreReceived {
        round: r(round),
        validator: key(validator),
        submission: submission_id(round, trainer, 0),
        values: values(accuracy),
    }
}

/// Handles `event`, and checks that a refusal left the machine untouched
/// (also in its persisted form).
pub(super) fn feed(machine: &mut RoundMachine, now: UnixMillis, event: Event) -> Result<Vec<Action>, Refusal> {
    let before = machine.clone();
    let before_bytes = before.to_bytes();
    let result = machine.handle(now, event);
    if result.is_err() {
        assert_eq!(*machine, before, "a refused event changed the machine");
        assert_eq!(machine.to_bytes(), before_bytes);
    }
    result
}

/// Like [`feed`], but the event must be accepted.
pub(super) fn ok(machine: &mut RoundMachine, now: UnixMillis, event: Event) -> Vec<Action> {
    let description = format!("{event:?}");
    feed(machine, now, event).unwrap_or_else(|refusal| panic!("{description} refused: {refusal}"))
}

/// A started machine (round 0 training since T0).
pub(super) fn started() -> RoundMachine {
    let mut m = machine();
    ok(&mut m, T0, start_event());
    m
}

/// Round 0 in validation: trainers 1 and 2 submitted (10 and 30 samples),
/// trainer 3 straggled past the training deadline.
pub(super) fn validating() -> RoundMachine {
    let mut m = started();
    ok(&mut m, at(1_000), submit(0, 1, 10));
    ok(&mut m, at(2_000), submit(0, 2, 30));
    ok(&mut m, at(secs(60)), Event::Tick);
    m
}

/// Round 0 waiting for aggregation: every validator scored 1 at 0.8 and 2 at 0.6.
pub(super) fn aggregating() -> RoundMachine {
    let mut m = validating();
    for v in VALIDATORS {
        ok(&mut m, at(secs(61)), score(0, v, 1, 0.8));
        ok(&mut m, at(secs(61)), score(0, v, 2, 0.6));
    }
    m
}

/// Round 0 waiting for settlement, the aggregate being `model(1)`.
pub(super) fn settling() -> RoundMachine {
    let mut m = aggregating();
    ok(&mut m, at(secs(62)), Event::AggregationFinished { round: r(0), outcome: succeeded(1) });
    m
}

pub(super) fn succeeded(n: u8) -> crate::round::AggregationOutcome {
    crate::round::AggregationOutcome::Succeeded { model: model(n) }
}

/// A one-round task, finished: the round aggregated to `model(1)`.
pub(super) fn finished() -> RoundMachine {
    let mut m = machine_with(TaskSpec { rounds: 1, ..spec() }, RoundConfig::new(11));
    ok(&mut m, T0, start_event());
    for t in TRAINERS {
        ok(&mut m, at(1_000), submit(0, t, 10));
    }
    for v in VALIDATORS {
        for t in TRAINERS {
            ok(&mut m, at(2_000), score(0, v, t, 0.7));
        }
    }
    ok(&mut m, at(3_000), Event::AggregationFinished { round: r(0), outcome: succeeded(1) });
    ok(&mut m, at(4_000), Event::SettlementCommitted { round: r(0), next: None });
    assert!(m.is_finished());
    m
}

/// The stakes of [`participants`]' validators.
pub(super) fn validator_stakes() -> BTreeMap<PublicKey, u128> {
    participants().validators
}
