//! Amounts of STAR in integer micro-units, and the ledger's clock reading.
//!
//! The arithmetic that can fail (sums, differences, whole STAR) answers with
//! [`LedgerError`](crate::LedgerError), which itself names amounts, so it
//! lives a floor up, in `arithmetic.rs`.

use std::fmt;

/// Micro-units in one STAR (`1 STAR = 1_000_000 µSTAR`).
pub const MICRO_PER_STAR: u64 = 1_000_000;

/// The most µSTAR that may ever be issued, `i64::MAX` (about 9.2 trillion
/// STAR): every balance then fits a signed 64-bit SQL integer.
pub const MAX_SUPPLY: Amount = Amount(i64::MAX as u64);

/// An amount of µSTAR. Never negative (it is unsigned) and never a float: every
/// sum and difference goes through [`Amount::checked_add`] and
/// [`Amount::checked_sub`], which return typed errors instead of wrapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Amount(u64);

impl Amount {
    /// Nothing.
    pub const ZERO: Self = Self(0);

    /// `micro` µSTAR.
    pub const fn from_micro(micro: u64) -> Self {
        Self(micro)
    }

    /// The raw count of µSTAR.
    pub const fn micro(self) -> u64 {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// `floor(self · numerator / denominator)`, exact in 128-bit arithmetic.
    ///
    /// Requires `numerator ≤ denominator` (a fraction of the amount), so the
    /// result always fits; panics if `denominator` is zero, which every caller
    /// rules out with a constant.
    pub(crate) fn fraction_floor(self, numerator: u64, denominator: u64) -> Self {
        debug_assert!(numerator <= denominator && denominator > 0);
        Self((u128::from(self.0) * u128::from(numerator) / u128::from(denominator)) as u64)
    }
}

impl fmt::Display for Amount {
    /// Prints as STAR with six decimals, e.g. `12.500000 STAR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06} STAR", self.0 / MICRO_PER_STAR, self.0 % MICRO_PER_STAR)
    }
}

/// Seconds since the Unix epoch. The ledger never reads a clock: `now` is
/// always an argument, so every rule is deterministic and testable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// `self + days` whole days, saturating at the end of time rather than
    /// wrapping (a lock that ends at `u64::MAX` seconds never ends, which is
    /// the safe reading of an absurd clock).
    pub fn plus_days(self, days: u16) -> Self {
        Self(self.0.saturating_add(u64::from(days) * 86_400))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_floors_without_overflow() {
        let max = Amount::from_micro(u64::MAX);
        assert_eq!(max.fraction_floor(1, 2), Amount::from_micro(u64::MAX / 2));
        assert_eq!(Amount::from_micro(19).fraction_floor(500, 10_000), Amount::ZERO);
        assert_eq!(Amount::from_micro(20).fraction_floor(500, 10_000), Amount::from_micro(1));
    }

    #[test]
    fn displays_as_star() {
        assert_eq!(Amount::from_micro(12_500_000).to_string(), "12.500000 STAR");
        assert_eq!(Amount::from_micro(7).to_string(), "0.000007 STAR");
    }
}
