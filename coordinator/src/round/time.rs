//! The machine's notion of time: milliseconds since the Unix epoch, always
//! passed in by the shell.

use serde::{Deserialize, Serialize};
use starling_staking::Timestamp;

/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Every `now`, deadline and opening time of the round machine is one of
/// these; the machine never reads a clock. The ledger counts whole seconds
/// ([`Timestamp`]); [`UnixMillis::to_ledger`] converts by flooring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub u64);

impl UnixMillis {
    /// `ms` milliseconds after the epoch.
    pub const fn new(ms: u64) -> Self {
        Self(ms)
    }

    /// The raw milliseconds.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self` plus `secs` seconds, saturating at the end of time instead of
    /// wrapping: a deadline that cannot be represented is never reached,
    /// which keeps an absurd clock from closing a phase early.
    pub const fn plus_secs(self, secs: u32) -> Self {
        Self(self.0.saturating_add(secs as u64 * 1_000))
    }

    /// The same instant as the ledger's [`Timestamp`] (whole seconds,
    /// floored).
    pub const fn to_ledger(self) -> Timestamp {
        Timestamp(self.0 / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_added_and_floored() {
        assert_eq!(UnixMillis::new(1_500).plus_secs(2), UnixMillis::new(3_500));
        assert_eq!(UnixMillis::new(u64::MAX - 1).plus_secs(1), UnixMillis::new(u64::MAX));
        assert_eq!(UnixMillis::new(1_999).to_ledger(), Timestamp(1));
        assert_eq!(UnixMillis::new(2_000).to_ledger(), Timestamp(2));
    }
}
