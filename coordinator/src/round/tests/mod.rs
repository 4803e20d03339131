//! Tests of the round machine: flows, refusals, deadlines, agreement rules,
//! persistence and random event sequences.

mod agreement_rules;
mod deadlines;
mod fixtures;
mod flow;
mod persistence;
mod phase_matrix;
mod properties;
mod refusals;
