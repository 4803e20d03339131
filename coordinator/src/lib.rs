//! Starling's coordinator.
//!
//! [`round`] holds the pure round state machine: events and `now` in, actions
//! out, no I/O and no clock. The services that run tasks around it (the QUIC
//! server, the task registry, the artifact store) drive it from the edges.

pub mod artifacts;
pub mod market;
pub mod round;
pub mod service;
pub mod store;
