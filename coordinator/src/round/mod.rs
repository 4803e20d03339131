//! The round state machine of one task (ARCHITECTURE.md, "How one round
//! flows"): pure, deterministic and serialisable.
//!
//! A shell drives a [`RoundMachine`] in a loop:
//!
//! 1. it feeds an [`Event`] with the current time ([`UnixMillis`]) to
//!    [`RoundMachine::handle`];
//! 2. on `Ok(actions)` it persists the machine ([`RoundMachine::to_bytes`],
//!    read back with [`RoundMachine::from_bytes`], which also reads every
//!    earlier format) **before** executing the [`Action`]s, so a crash never
//!    loses an acknowledged transition;
//! 3. it executes the actions (publish, assign, aggregate, settle, finish) and
//!    feeds their results back as events;
//! 4. on `Err(refusal)` nothing changed; the [`Refusal`] says exactly why, for
//!    the client.
//!
//! It ticks the machine ([`Event::Tick`]) at [`RoundMachine::next_deadline`]
//! (or simply every second). After a restart it loads the persisted machine,
//! ticks it, and re-executes [`RoundMachine::pending_actions`].

mod action;
mod agreement;
mod assignment;
mod config;
mod event;
mod machine;
mod persist;
mod refusal;
mod requests;
mod sampling;
mod state;
mod time;
mod transitions;
mod verdict;

#[cfg(test)]
mod tests;

pub use action::{Action, AggregationInput, Assignment, BestModel};
pub use config::{AssignmentPolicy, ConfigError, RoundConfig};
pub use event::{AggregationOutcome, Event, EventKind, Participants, PayloadCheck, ScoreValues};
pub use machine::RoundMachine;
pub use persist::DecodeError;
pub use refusal::Refusal;
pub use sampling::{sample_size, sample_trainers};
pub use state::RoundSummary;
pub use time::UnixMillis;
pub use verdict::{RoundVerdicts, SubmissionVerdict, ValidatorVerdict, VerdictOutcome};
