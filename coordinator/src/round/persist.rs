//! The bytes a [`RoundMachine`] is saved as, and every format it was ever
//! saved in.
//!
//! A saved machine is `[0x00, FORMAT]` followed by the machine in postcard.
//! Postcard is not self-describing, so a change to the machine's state needs
//! a new format number and a decoder for the old one here: a coordinator
//! that is upgraded in the middle of a task resumes it.
//!
//! Format 1 had no header: plain postcard, whose first byte is the task id's
//! varint, never `0x00` (the stores number tasks from 1). Its verdicts kept
//! rejected trainers without their consensus score or reason; they are
//! decided again from the round's recorded scores and stakes, with the same
//! rules, which gives the same decision (the rules are a pure function of
//! that state).

use serde::Deserialize;
use starling_protocol::{ContentHash, PublicKey, RoundNumber, RoundPhase, TaskId, TaskSpec};
use thiserror::Error;

use crate::round::agreement::decide;
use crate::round::config::RoundConfig;
use crate::round::event::Participants;
use crate::round::machine::RoundMachine;
use crate::round::state::{
    AcceptedSubmission, AggregationStatus, RoundState, RoundSummary, Running, Submission, Validation,
};
use crate::round::time::UnixMillis;

/// The format [`RoundMachine::to_bytes`] writes.
const FORMAT: u8 = 2;

/// Why saved bytes are not a machine.
#[derive(Debug, Error)]
pub enum DecodeError {
    /// A format this build does not know (written by a newer coordinator).
    #[error("saved in format {0}, which this coordinator does not know (it reads formats 1 to {FORMAT})")]
    UnknownFormat(u8),
    /// The bytes do not decode in their format.
    #[error("format {format}: {source}")]
    Corrupt {
        /// The format the bytes claim.
        format: u8,
        /// What postcard said.
        #[source]
        source: postcard::Error,
    },
}

impl RoundMachine {
    /// The machine as saved bytes, in the current format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0, FORMAT];
        // Serialising plain data into a Vec cannot fail.
        postcard::to_io(self, &mut bytes).expect("a round machine always encodes");
        bytes
    }

    /// A machine saved by [`to_bytes`](RoundMachine::to_bytes), in this
    /// format or any earlier one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes {
            [0, FORMAT, rest @ ..] => {
                postcard::from_bytes(rest).map_err(|source| DecodeError::Corrupt { format: FORMAT, source })
            }
            [0, format, ..] => Err(DecodeError::UnknownFormat(*format)),
            _ => postcard::from_bytes::<V1Machine>(bytes)
                .map(V1Machine::upgrade)
                .map_err(|source| DecodeError::Corrupt { format: 1, source }),
        }
    }
}

/// Format 1's machine: as today's but for its verdict.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct V1Machine {
    task: TaskId,
    spec: TaskSpec,
    config: RoundConfig,
    running: Option<V1Running>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct V1Running {
    participants: Participants,
    round: V1RoundState,
    history: Vec<RoundSummary>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
struct V1RoundState {
    number: RoundNumber,
    phase: RoundPhase,
    opened_at: UnixMillis,
    training_deadline: UnixMillis,
    global_model: ContentHash,
    sampled: std::collections::BTreeSet<PublicKey>,
    submissions: std::collections::BTreeMap<PublicKey, Submission>,
    validation: Option<Validation>,
    verdict: Option<V1Verdict>,
    aggregation: Option<AggregationStatus>,
}

/// Only whether there was one matters: it is decided again.
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[allow(dead_code)] // Read to skip its bytes, then decided again.
struct V1Verdict {
    accepted: Vec<AcceptedSubmission>,
    rejected: Vec<PublicKey>,
    unresolved: Vec<PublicKey>,
    validators: Vec<(PublicKey, u32)>,
}

impl V1Machine {
    fn upgrade(self) -> RoundMachine {
        let running = self.running.map(|running| {
            let old = running.round;
            let decided = old.verdict.is_some();
            let mut round = RoundState {
                number: old.number,
                phase: old.phase,
                opened_at: old.opened_at,
                training_deadline: old.training_deadline,
                global_model: old.global_model,
                sampled: old.sampled,
                submissions: old.submissions,
                validation: old.validation,
                verdict: None,
                aggregation: old.aggregation,
            };
            if decided {
                let verdict =
                    decide(&round, &running.participants.validators, self.config.kappa_ppm, self.config.harm_threshold);
                round.verdict = Some(verdict);
            }
            Running { participants: running.participants, round, history: running.history }
        });
        RoundMachine::from_parts(self.task, self.spec, self.config, running)
    }
}

/// `machine` in format 1, as a coordinator before format 2 saved it.
#[cfg(test)]
pub(crate) fn to_v1_bytes(machine: &RoundMachine) -> Vec<u8> {
    let running = machine.running().map(|running| {
        let round = &running.round;
        V1Running {
            participants: running.participants.clone(),
            round: V1RoundState {
                number: round.number,
                phase: round.phase,
                opened_at: round.opened_at,
                training_deadline: round.training_deadline,
                global_model: round.global_model,
                sampled: round.sampled.clone(),
                submissions: round.submissions.clone(),
                validation: round.validation.clone(),
                verdict: round.verdict.as_ref().map(|v| V1Verdict {
                    accepted: v.accepted.clone(),
                    rejected: v.rejected.iter().map(|r| r.trainer).collect(),
                    unresolved: v.unresolved.clone(),
                    validators: v.validators.clone(),
                }),
                aggregation: round.aggregation.clone(),
            },
            history: running.history.clone(),
        }
    });
    let v1 = V1Machine { task: machine.task(), spec: machine.spec().clone(), config: *machine.config(), running };
    postcard::to_allocvec(&v1).expect("encodes")
}
