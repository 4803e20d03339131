//! Starling's coordinator.
